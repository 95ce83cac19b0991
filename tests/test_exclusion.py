"""Excluded files never reach a prompt, by every road a file could take.

Roads: completion in the file, chat and code actions on it, the workspace index,
definitions followed from another file's imports or found in the index, an open document
used as a snippet, and the CLI's complete, context and chat. Three kinds of exclusion:
the deny list of files that may hold secrets, ``.tandemignore``, and the ``exclude``
setting (``.tandem.toml`` or the editor's options).
"""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from lsprotocol import types as t
from pygls.exceptions import JsonRpcException

from tandem.cli import main
from tandem.config import ConfigError, build_settings, flatten, load_settings
from tandem.context.index import WorkspaceIndex
from tandem.context.workspace import (
    exclude_setting_reason,
    is_ignored,
    secret_file_reason,
    walk,
)

from lsp_support import inline, lsp_session, model_env, open_text
from modelserver import Behaviour, ModelServer
from review_support import GIT_ENV

TANDEM = str(Path(sys.executable).parent / "tandem")
REQUEST_FAILED = -32803
APP = """from secrets import load_db_password
from vendor_keys import load_vendor_key
from notes import load_note_token
from more import load_more_token
from session import open_session


def connect():
    password = load_db_password()
    key = load_vendor_key()
    token = load_note_token()
    extra = load_more_token()
    return open_session(password, key, token, extra)
"""
EXCLUDED = {  # file -> (its text, why it is excluded)
    "secrets.py": ('def load_db_password():\n    return "MARKER-SECRETS-PY"\n', "secrets.*"),
    "vendor_keys.py": ('def load_vendor_key():\n    return "MARKER-VENDOR"\n', ".tandemignore"),
    "notes.py": ('def load_note_token():\n    return "MARKER-NOTES"\n', "exclude setting"),
    ".env": ('def load_env():\n    return "MARKER-DOTENV"\n', ".env"),
    ".env.example": ('def load_example():\n    return "MARKER-EXAMPLE"\n', ".env.*"),
}
MORE = 'def load_more_token():\n    return "MARKER-MORE"\n'  # excluded by the editor's option
MARKERS = [text.split('"')[1] for text, _ in EXCLUDED.values()] + ["MARKER-MORE"]
SESSION = "def open_session(password, key, token, extra):\n    return (password, key)\n"


@pytest.fixture
def ws(tmp_path: Path) -> Path:
    root = tmp_path / "ws"
    (root / ".git").mkdir(parents=True)
    (root / ".tandem.toml").write_text('exclude = ["notes.py"]\n')
    (root / ".tandemignore").write_text("vendor_keys.py\n!notes.py\n")  # cannot re-admit it
    (root / ".gitignore").write_text("!.env.example\n")  # about git, not about prompts
    (root / "app.py").write_text(APP)
    (root / "session.py").write_text(SESSION)
    (root / "more.py").write_text(MORE)
    for name, (text, _) in EXCLUDED.items():
        (root / name).write_text(text)
    return root


DENIED = [
    ".env", "config/.env.production", "deploy/prod.env", ".envrc", "tls/server.pem",
    "server.key", "cert.p12", "cert.pfx", "id_rsa", "home/.ssh/known_hosts", "id_ed25519.pub",
    ".aws/credentials", ".netrc", ".pgpass", ".npmrc", ".pypirc", ".git-credentials",
    "credentials", "gcp/credentials.json", "service-account-prod.json", "ops/.kube/config",
    "kubeconfig", "kubeconfig.prod.yaml", "secrets.yaml", "app/secrets.json", "infra.tfstate",
    "prod.tfvars", ".docker/config.json",
]  # fmt: skip
ALLOWED = [
    "app/credentials.py", "auth/secret_service.py", "key_utils.py", "tokens.ts", "env.py",
    "environment.ts", "config/settings.yaml", "kube.go", "docs/secrets-management.md",
    ".github/workflows/ci.yml", "keys/README.md",
]  # fmt: skip


@pytest.mark.parametrize("rel", DENIED)
def test_the_deny_list(tmp_path: Path, rel: str):
    assert (is_ignored(tmp_path, rel) or "").startswith("may hold secrets"), rel
    assert secret_file_reason(rel) is not None or rel.endswith("known_hosts")  # by folder


@pytest.mark.parametrize("rel", ALLOWED)
def test_ordinary_names_are_not_denied(tmp_path: Path, rel: str):
    assert is_ignored(tmp_path, rel) is None
    assert secret_file_reason(rel) is None


def test_only_tandemignore_re_admits_a_denied_file(ws: Path):
    assert "may hold secrets" in (is_ignored(ws, ".env.example") or "")  # .gitignore's ! no
    (ws / ".tandemignore").write_text("!.env.example\n")
    assert is_ignored(ws, ".env.example") is None
    assert "may hold secrets" in (is_ignored(ws, ".env") or "")


def test_the_exclude_setting(ws: Path, monkeypatch: pytest.MonkeyPatch):
    settings = load_settings(ws)
    assert settings.exclude == ("notes.py",)
    reason = is_ignored(ws, "notes.py", exclude=settings.exclude)
    assert reason == "excluded by the exclude setting"  # the .tandemignore "!" does not win
    assert exclude_setting_reason("notes.py", settings.exclude) == reason
    walked = {p.name for p in walk(ws, exclude=settings.exclude)}
    assert walked >= {"app.py", "session.py", "more.py"}
    assert walked.isdisjoint(EXCLUDED)
    with pytest.raises(ConfigError, match=r"re-admit with ! in \.tandemignore"):
        build_settings(flatten({"exclude": ["!notes.py"]}, "test"))
    # every layer's patterns apply: the user's, the workspace's, the environment's
    user = ws.parent / "xdg-config" / "tandem" / "config.toml"
    user.parent.mkdir(parents=True)
    user.write_text('exclude = ["drafts/"]\n')
    monkeypatch.setenv("TANDEM_EXCLUDE", "*.sql")
    assert load_settings(ws).exclude == ("drafts/", "notes.py", "*.sql")


def test_the_index_never_holds_an_excluded_file(ws: Path, tmp_path: Path):
    index = WorkspaceIndex(ws, tmp_path / "cache", exclude=("notes.py",))
    index.build()
    names = {Path(p).name for p in index.files()}
    assert {"app.py", "session.py", "more.py"} <= names
    assert names.isdisjoint(EXCLUDED)
    (ws / "notes.py").write_text(EXCLUDED["notes.py"][0] + "# saved again\n")
    index.update(ws / "notes.py")  # a save does not bring it back
    assert "notes.py" not in {Path(p).name for p in index.files()}
    index.close()


@pytest.mark.parametrize("name", sorted(EXCLUDED))
def test_the_cli_refuses_an_excluded_file(ws: Path, name: str, model_server: ModelServer,
                                          monkeypatch, capsys):  # fmt: skip
    for key, value in model_env(model_server.url).items():
        monkeypatch.setenv(key, value)
    for args in (["complete", f"{ws / name}:2:5"], ["context", f"{ws / name}:2:5"],
                 ["chat", "--file", str(ws / name), "Explain"]):  # fmt: skip
        assert main(args) == 2, args
        err = capsys.readouterr().err
        assert err.count("\n") == 1 and "is excluded from Tandem" in err, err
        assert EXCLUDED[name][1] in err
    assert model_server.requests == []


def test_the_cli_prompt_leaves_excluded_files_out(ws: Path, model_server: ModelServer,
                                                  monkeypatch, capsys):  # fmt: skip
    (ws / ".tandem.toml").write_text('exclude = ["notes.py", "more.py"]\n')
    for key, value in model_env(model_server.url).items():
        monkeypatch.setenv(key, value)
    at = f"{ws / 'app.py'}:{APP.count(chr(10)) + 1}:1"
    assert main(["context", "--json", at]) == 0
    shown = json.loads(capsys.readouterr().out)
    paths = {part["path"] for part in shown["parts"]}
    assert "session.py" in paths  # definitions still work
    assert paths.isdisjoint([*EXCLUDED, "more.py"])
    assert main(["complete", "--no-cache", at]) == 0
    body = json.dumps(model_server.requests[0].body)
    assert "def open_session" in body
    assert [m for m in MARKERS if m in body] == []


async def test_the_language_server(ws: Path, model_server: ModelServer):
    model_server.default = Behaviour(tokens=["x"])
    options = {"exclude": ["more.py"]}  # from the editor; .tandem.toml's still applies
    async with lsp_session(ws, model_env(model_server.url), options) as (client, recorder):
        app = open_text(client, ws / "app.py", APP)
        uris = {name: open_text(client, ws / name, text) for name, (text, _) in EXCLUDED.items()}
        uris["more.py"] = open_text(client, ws / "more.py", MORE)  # all "python": neighbours
        for name, uri in uris.items():
            before = len(recorder.status)
            argument = {"uri": uri, "range": _range(0, 0, 1, 10), "question": "Explain"}
            with pytest.raises(JsonRpcException) as info:
                await client.workspace_execute_command_async(
                    t.ExecuteCommandParams(command="tandem.chat", arguments=[argument])
                )
            assert info.value.code == REQUEST_FAILED
            assert "is excluded from Tandem" in info.value.message
            assert name in (await recorder.wait_status("inactive", since=before))["message"]
            assert await inline(client, uri, 1, 4) == [], name
            assert recorder.state == "inactive"
            actions = await client.text_document_code_action_async(
                t.CodeActionParams(t.TextDocumentIdentifier(uri), _lsp_range(0, 0, 1, 10),
                                   t.CodeActionContext(diagnostics=[]))
            )  # fmt: skip
            assert not actions
            data = {"uri": uri, "range": _range(0, 0, 1, 10), "action": "fix", "version": 1}
            crafted = t.CodeAction("Tandem: Fix", data=data)
            with pytest.raises(JsonRpcException) as info:
                await client.code_action_resolve_async(crafted)
            assert "is excluded from Tandem" in info.value.message
        assert model_server.requests == []
        lines = APP.split("\n")
        assert await inline(client, app, len(lines) - 2, len(lines[-2])) is not None
        argument = {"uri": app, "range": _range(7, 0, 12, 40), "question": "Explain"}
        await asyncio.wait_for(client.workspace_execute_command_async(
            t.ExecuteCommandParams(command="tandem.chat", arguments=[argument])), 20)  # fmt: skip
    assert len(model_server.requests) == 2
    for rec in model_server.requests:
        body = json.dumps(rec.body)
        assert [m for m in MARKERS if m in body] == []
    assert "def open_session" in json.dumps(model_server.requests[1].body)


def _range(a: int, b: int, c: int, d: int) -> dict:
    return {"start": {"line": a, "character": b}, "end": {"line": c, "character": d}}


def _lsp_range(a: int, b: int, c: int, d: int) -> t.Range:
    return t.Range(t.Position(a, b), t.Position(c, d))


def test_review_skips_excluded_files_with_the_reason(tmp_path: Path, model_server: ModelServer):
    root = tmp_path / "repo"
    root.mkdir()

    def git(*args: str) -> None:
        subprocess.run(["git", *args], cwd=root, check=True, capture_output=True,
                       env={**os.environ, **GIT_ENV})  # fmt: skip

    git("init", "-q", "-b", "main")
    (root / ".tandem.toml").write_text('exclude = ["notes.py"]\n')
    (root / "session.py").write_text(SESSION)
    git("add", "-A")
    git("commit", "-q", "-m", "base")
    git("checkout", "-q", "-b", "feature")
    (root / "app.py").write_text(APP)
    for name in ("secrets.py", "notes.py", ".env"):
        (root / name).write_text(EXCLUDED[name][0])
    git("add", "-A")
    git("commit", "-q", "-m", "change")
    model_server.default = Behaviour(tokens=['{"findings": []}'])
    env = {**os.environ, **model_env(model_server.url), **GIT_ENV,
           "TANDEM_CACHE_DIR": str(tmp_path / "cache")}  # fmt: skip
    done = subprocess.run([TANDEM, "review", "--base", "main", "--format", "json"], cwd=root,
                          env=env, capture_output=True, text=True, timeout=120)  # fmt: skip
    assert done.returncode == 0, done.stderr
    skipped = {s["path"]: s["reason"] for s in json.loads(done.stdout)["skipped"]}
    assert "may hold secrets" in skipped.get("secrets.py", "")
    assert "may hold secrets" in skipped.get(".env", "")
    assert "exclude setting" in skipped.get("notes.py", "")
    for rec in model_server.requests:
        body = json.dumps(rec.body)
        assert [m for m in MARKERS if m in body] == []
