"""Every entry point leaves excluded files out, inside a git repository and outside one.

Entry points: the CLI's complete, context and chat; ``tandem review`` with ``--diff`` and
with ``--base``; the language server's inline completion and chat. Each is checked on what
the loopback model server received: an excluded file is refused when it is the target, and
never quoted as context (a definition) when another file imports it. ``notes.py`` is
excluded by the ``exclude`` setting in ``.tandem.toml`` (the rule a review outside git used
to forget); ``secrets.py`` by the deny list of files that may hold secrets.

Also here: what ``tandem context`` prints is the body the model server receives, byte for
byte, and one completion parses its document once and sends the very request it rendered.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from lsprotocol import types as t
from pygls.exceptions import JsonRpcException

from tandem.cli import main
from tandem.context.languages import LanguageSpec
from tandem.models.openai import OpenAIClient

from lsp_support import inline, lsp_session, model_env, open_text
from modelserver import Behaviour, ModelServer
from review_support import GIT_ENV

APP = """from notes import load_note_token
from secrets import load_db_password
from session import open_session


def connect():
    token = load_note_token()
    password = load_db_password()
    return open_session(token, password)
"""
EXCLUDED = {
    "notes.py": ('def load_note_token():\n    return "MARKER-NOTES"\n', "exclude setting"),
    "secrets.py": ('def load_db_password():\n    return "MARKER-SECRETS"\n', "may hold secrets"),
}
MARKERS = ["MARKER-NOTES", "MARKER-SECRETS"]
SESSION = "def open_session(token, password):\n    return (token, password)\n"
END = f"{APP.count(chr(10))}:{len(APP.splitlines()[-1]) + 1}"  # the end of the last line


def git(root: Path, *args: str) -> None:
    subprocess.run(["git", *args], cwd=root, check=True, capture_output=True,
                   env={**os.environ, **GIT_ENV})  # fmt: skip


@pytest.fixture(params=[True, False], ids=["git", "no-git"])
def ws(request: pytest.FixtureRequest, tmp_path: Path, model_server: ModelServer,
       monkeypatch: pytest.MonkeyPatch) -> Path:  # fmt: skip
    """The workspace, the current folder, with the model server in the environment."""
    root = tmp_path / "ws"
    root.mkdir()
    (root / ".tandem.toml").write_text('exclude = ["notes.py"]\n')
    (root / "session.py").write_text(SESSION)
    (root / "app.py").write_text(APP)
    for name, (text, _) in EXCLUDED.items():
        (root / name).write_text(text)
    if request.param:
        git(root, "init", "-q", "-b", "main")
    monkeypatch.chdir(root)  # outside git, the workspace root is the current folder
    for key, value in {**model_env(model_server.url), **GIT_ENV,
                       "TANDEM_CACHE_DIR": str(tmp_path / "cache")}.items():  # fmt: skip
        monkeypatch.setenv(key, value)
    return root


def bodies(server: ModelServer) -> list[str]:
    return [json.dumps(r.body) for r in server.requests if r.path != "/tokenize"]


def assert_no_marker(server: ModelServer) -> None:
    for body in bodies(server):
        assert [m for m in MARKERS if m in body] == [], body[:400]


def test_cli_complete_context_and_chat(ws: Path, model_server: ModelServer, capsys):
    for name, (_, why) in EXCLUDED.items():
        for args in (["complete", f"{ws / name}:2:5"], ["context", f"{ws / name}:2:5"],
                     ["chat", "--file", str(ws / name), "Explain"]):  # fmt: skip
            assert main(args) == 2, args
            err = capsys.readouterr().err
            assert "is excluded from Tandem" in err and why in err, err
    assert model_server.requests == []
    assert main(["context", "--json", f"{ws / 'app.py'}:{END}"]) == 0
    paths = {part["path"] for part in json.loads(capsys.readouterr().out)["parts"]}
    assert "session.py" in paths and paths.isdisjoint(EXCLUDED)  # definitions do work
    assert main(["complete", "--no-cache", f"{ws / 'app.py'}:{END}"]) == 0
    assert main(["chat", "--file", str(ws / "app.py"), "Explain"]) == 0
    sent = bodies(model_server)
    assert len(sent) == 2 and "def open_session" in sent[0]
    assert_no_marker(model_server)


def _new_file_diff(files: dict[str, str]) -> str:
    out = []
    for name, text in files.items():
        lines = text.splitlines()
        out += [f"diff --git a/{name} b/{name}", "new file mode 100644", "--- /dev/null",
                f"+++ b/{name}", f"@@ -0,0 +1,{len(lines)} @@"]  # fmt: skip
        out += ["+" + line for line in lines]
    return "\n".join(out) + "\n"


def review_json(capsys: pytest.CaptureFixture[str], *args: str) -> dict[str, Any]:
    assert main(["review", "--format", "json", "--quiet", *args]) == 0, capsys.readouterr().err
    return json.loads(capsys.readouterr().out)


def test_review_with_diff(ws: Path, model_server: ModelServer, tmp_path: Path, capsys):
    """The case that leaked: outside git, --diff built a context engine with no exclusions."""
    model_server.default = Behaviour(tokens=['{"findings": []}'])
    patch = tmp_path / "change.diff"
    patch.write_text(_new_file_diff({"app.py": APP, "notes.py": EXCLUDED["notes.py"][0]}))
    report = review_json(capsys, "--diff", str(patch), "--trust-checkout-config")
    skipped = {s["path"]: s["reason"] for s in report["skipped"]}
    assert "exclude setting" in skipped["notes.py"]
    assert report["summary"]["files_reviewed"] == 1
    sent = bodies(model_server)
    assert sent and any("def open_session" in body for body in sent)  # definitions do work
    assert_no_marker(model_server)


def test_review_with_diff_reads_no_checkout_settings(ws: Path, model_server: ModelServer,
                                                     tmp_path: Path, capsys):  # fmt: skip
    """Without a base revision, review reads no repository settings (a pull request could
    write them), so the checkout's ``exclude`` does not apply; the secrets deny list, which is
    not a setting, still does."""
    model_server.default = Behaviour(tokens=['{"findings": []}'])
    patch = tmp_path / "change.diff"
    patch.write_text(_new_file_diff({name: text for name, (text, _) in EXCLUDED.items()}))
    report = review_json(capsys, "--diff", str(patch))
    skipped = {s["path"]: s["reason"] for s in report["skipped"]}
    assert "may hold secrets" in skipped["secrets.py"] and "notes.py" not in skipped
    assert report["summary"]["files_reviewed"] == 1
    sent = " ".join(bodies(model_server))
    assert "MARKER-NOTES" in sent and "MARKER-SECRETS" not in sent


def test_review_with_base(ws: Path, model_server: ModelServer, capsys):
    if not (ws / ".git").exists():
        pytest.skip("--base compares git revisions")
    (ws / "app.py").unlink()
    git(ws, "add", "-A")
    git(ws, "commit", "-q", "-m", "base")
    git(ws, "checkout", "-q", "-b", "feature")
    (ws / "app.py").write_text(APP)
    for name, (text, _) in EXCLUDED.items():
        (ws / name).write_text(text + "# changed\n")
    git(ws, "add", "-A")
    git(ws, "commit", "-q", "-m", "change")
    model_server.default = Behaviour(tokens=['{"findings": []}'])
    report = review_json(capsys, "--base", "main")
    skipped = {s["path"]: s["reason"] for s in report["skipped"]}
    for name, (_, why) in EXCLUDED.items():
        assert why in skipped[name]
    assert any("def open_session" in body for body in bodies(model_server))
    assert_no_marker(model_server)


async def test_language_server_inline_and_chat(ws: Path, model_server: ModelServer):
    model_server.default = Behaviour(tokens=["x"])
    async with lsp_session(ws, model_env(model_server.url)) as (client, _):
        app = open_text(client, ws / "app.py", APP)
        for name, (text, _) in EXCLUDED.items():
            uri = open_text(client, ws / name, text)  # a tab, and nobody's snippet
            assert await inline(client, uri, 1, 4) == []
            argument = {"uri": uri, "range": _range(0, 0, 1, 10), "question": "Explain"}
            with pytest.raises(JsonRpcException, match="is excluded from Tandem"):
                await client.workspace_execute_command_async(
                    t.ExecuteCommandParams("tandem.chat", arguments=[argument]))  # fmt: skip
        assert model_server.requests == []
        lines = APP.splitlines()
        assert await inline(client, app, len(lines) - 1, len(lines[-1])) != []
        argument = {"uri": app, "range": _range(5, 0, 8, 40), "question": "Explain"}
        await client.workspace_execute_command_async(
            t.ExecuteCommandParams(command="tandem.chat", arguments=[argument]))  # fmt: skip
    sent = bodies(model_server)
    assert len(sent) == 2 and all("def open_session" in body for body in sent)
    assert_no_marker(model_server)


def _range(a: int, b: int, c: int, d: int) -> dict[str, Any]:
    return {"start": {"line": a, "character": b}, "end": {"line": c, "character": d}}


TOKEN = "ghp_" + "x1Y2z3" * 6  # a GitHub token: redacted in what is shown and what is sent


def test_printed_context_is_the_body_received(ws: Path, model_server: ModelServer, capsys):
    text = APP + f'\nTOKEN = "{TOKEN}"\n\n\ndef again():\n    return connect('
    (ws / "app.py").write_text(text)
    at = f"{ws / 'app.py'}:{text.count(chr(10)) + 1}:{len(text.splitlines()[-1]) + 1}"
    assert main(["context", at]) == 0
    printed = capsys.readouterr().out
    assert main(["context", "--json", at]) == 0
    shown = json.loads(capsys.readouterr().out)["request"]
    assert main(["complete", "--no-cache", at]) == 0
    received = model_server.requests[-1]
    assert received.path == "/v1/" + shown["path"]
    assert printed.encode("utf-8") == received.body["prompt"].encode("utf-8")
    canonical = json.dumps(received.body, sort_keys=True, ensure_ascii=False).encode("utf-8")
    assert json.dumps(shown["body"], sort_keys=True, ensure_ascii=False).encode() == canonical
    assert TOKEN not in printed and "<redacted" in printed


def test_one_parse_and_one_render_per_completion(ws: Path, model_server: ModelServer,
                                                 monkeypatch: pytest.MonkeyPatch):  # fmt: skip
    """The pipeline parses the document once; the request sent is the one rendered last.

    Parses elsewhere are not the pipeline's: the workspace index reads every file once
    (not per request), and post-processing parses a window of its own (``multiline``).
    """
    document = (ws / "app.py").read_bytes()
    parses: list[tuple[str, bytes]] = []
    rendered: list[Any] = []
    sent: list[Any] = []
    parser, fim_request, send = LanguageSpec.parser, OpenAIClient.fim_request, OpenAIClient.send

    class Counting:
        def __init__(self, inner: Any) -> None:
            self.inner = inner

        def parse(self, data: bytes, *args: Any) -> Any:
            parses.append((sys._getframe(1).f_globals["__name__"], data))
            return self.inner.parse(data, *args)

    def render(self: OpenAIClient, request: Any) -> Any:
        rendered.append(fim_request(self, request))
        return rendered[-1]

    def record(self: OpenAIClient, wire: Any) -> Any:
        sent.append((wire, len(rendered)))
        return send(self, wire)

    monkeypatch.setattr(LanguageSpec, "parser", lambda self: Counting(parser(self)))
    monkeypatch.setattr(OpenAIClient, "fim_request", render)
    monkeypatch.setattr(OpenAIClient, "send", record)
    assert main(["complete", "--no-cache", f"{ws / 'app.py'}:{END}"]) == 0
    by = [module for module, data in parses if data == document]
    assert by.count("tandem.context.engine") == 1, by
    assert set(by) <= {"tandem.context.engine", "tandem.context.index", "tandem.context.multiline"}
    assert len(sent) == 1
    wire, renders_before = sent[0]
    assert wire is rendered[-1] and renders_before == len(rendered)
    assert model_server.requests[-1].body == wire.body
