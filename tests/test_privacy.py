"""No planted secret reaches a model, in any mode: checked in the test model server's log.

The workspace is the corpus of tests/data/secrets (fake secrets of every kind in many
languages). Its ``.tandemignore`` re-admits the ``.env`` and the key file, which the deny
list would drop, so that their text is sent and its redaction is what is tested (the
exclusion itself is tested in test_exclusion.py).
"""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from lsprotocol import types as t

from tandem import assist
from tandem.cli import main
from tandem.config import load_settings
from tandem.session import Session
from tandem.workspace import open_workspace

from lsp_support import inline, lsp_session, model_env, open_text
from modelserver import Behaviour, ModelServer
from review_support import GIT_ENV

TANDEM = str(Path(sys.executable).parent / "tandem")
CORPUS = Path(__file__).parent / "data" / "secrets"
PLANTED: dict[str, list[str]] = json.loads((CORPUS / "planted.json").read_text())
ALL_SECRETS = sorted({s for values in PLANTED.values() for s in values})
LANGUAGES = {".py": "python", ".js": "javascript", ".ts": "typescript", ".go": "go",
             ".java": "java", ".rb": "ruby", ".json": "json", ".yaml": "yaml",
             ".yml": "yaml", ".toml": "toml", ".ini": "ini", ".pem": "plaintext"}  # fmt: skip


def leaked(text: str) -> list[str]:
    return [s for s in ALL_SECRETS if s in text]


def sent(server: ModelServer) -> list[str]:
    """Every request body the model server received, as JSON text."""
    return [json.dumps(rec.body, ensure_ascii=False) for rec in server.requests]


def marker(name: str) -> str | None:
    """A line of the file that holds no secret: proof that the file itself was sent."""
    lines = (CORPUS / name).read_text().splitlines()
    clean = (line.strip() for line in lines if len(line.strip()) > 12 and not leaked(line))
    return next((line for line in clean if "PRIVATE KEY" not in line), None)  # None: all key


def assert_clean(server: ModelServer, names: list[str]) -> None:
    bodies = sent(server)
    assert bodies, "nothing reached the model server"
    for body in bodies:
        assert leaked(body) == [], body[:400]
    everything = "\n".join(bodies)
    for name in names:
        line = marker(name)
        shown = json.dumps(line, ensure_ascii=False)[1:-1] if line else "<redacted:private-key>"
        assert shown in everything, f"{name} was never sent: the check would prove nothing"
    assert "<redacted:" in everything


@pytest.fixture
def ws(tmp_path: Path) -> Path:
    root = tmp_path / "ws"
    shutil.copytree(CORPUS, root, ignore=shutil.ignore_patterns("planted.json"))
    (root / ".git").mkdir()
    (root / ".tandemignore").write_text("!.env\n!id_deploy.pem\n")
    return root


def run(*args: str, env: dict[str, str], cwd: Path | None = None) -> subprocess.CompletedProcess:
    return subprocess.run(
        [TANDEM, *args],
        capture_output=True,
        text=True,
        env={**os.environ, **env},
        cwd=cwd,
        timeout=120,
    )


def end_of(path: Path) -> str:
    """PATH:LINE:COL of the end of the file: the whole file is in the prompt."""
    return f"{path}:{path.read_text().count(chr(10)) + 1}:1"


def test_cli_complete_context_and_chat(model_server: ModelServer, ws: Path, monkeypatch, capsys):
    """The CLI's ``main`` in this process (the console script itself: the test below)."""
    for key, value in model_env(model_server.url).items():
        monkeypatch.setenv(key, value)
    # The token estimate for a model with no tokenizer at hand counts base64 at a token a
    # character (erring high): gcp-ci.json's one-line key alone is ~1,700 of them, and the
    # default budget would leave it out, which would prove nothing about its redaction.
    (ws / ".tandem.toml").write_text("[completion]\ncontext_tokens = 8192\n")
    for name in sorted(PLANTED):
        path = ws / name
        jobs = [["complete", "--no-cache", end_of(path)]]
        jobs.append(["chat", "--max-tokens", "16", "--file", str(path), "What", "is", "this?"])
        if name in ("settings.py", "client.js", ".env", "gcp-ci.json", "tls.py"):
            jobs.append(["context", "--json", end_of(path)])
        for args in jobs:
            code = main(args)
            out = capsys.readouterr()
            assert code == 0, (args, out.err)
            if args[0] == "context":  # shows what is sent: the redacted prompt
                assert leaked(out.out) == [], args
                assert "<redacted:" in out.out, args
    assert len(model_server.requests) == 2 * len(PLANTED)
    assert_clean(model_server, sorted(PLANTED))


def test_an_echoed_placeholder_is_never_inserted(model_server: ModelServer, ws: Path):
    """Through the real console script: the model echoes a placeholder, nothing is inserted."""
    model_server.default = Behaviour(tokens=['"<redacted:', 'api-key>"'])
    done = run("complete", "--json", "--no-cache", end_of(ws / "settings.py"), env=model_env(
        model_server.url))  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["text"] == ""
    assert len(model_server.requests) == 1


def _language(name: str) -> str:
    return LANGUAGES.get(Path(name).suffix, "plaintext")


def _full_range(text: str) -> dict[str, Any]:
    lines = text.split("\n")
    end = {"line": len(lines) - 1, "character": len(lines[-1])}
    return {"start": {"line": 0, "character": 0}, "end": end}


async def test_language_server_completion_and_chat(model_server: ModelServer, ws: Path):
    async with lsp_session(ws, model_env(model_server.url)) as (client, _):
        uris = {}
        for name in sorted(PLANTED):  # all open: each is a snippet candidate for the others
            text = (ws / name).read_text()
            uris[name] = open_text(client, ws / name, text, _language(name))
        for name, uri in uris.items():
            text = (ws / name).read_text()
            lines = text.split("\n")
            await inline(client, uri, len(lines) - 1, len(lines[-1]))
            params = t.ExecuteCommandParams(
                command="tandem.chat",
                arguments=[{"uri": uri, "range": _full_range(text), "question": "Explain"}],
            )
            await asyncio.wait_for(client.workspace_execute_command_async(params), 20)
    assert len(model_server.requests) == 2 * len(PLANTED)
    assert_clean(model_server, sorted(PLANTED))


def _git(root: Path, *args: str) -> None:
    subprocess.run(["git", *args], cwd=root, check=True, capture_output=True,
                   env={**os.environ, **GIT_ENV})  # fmt: skip


def test_review(model_server: ModelServer, tmp_path: Path):
    """Every corpus file added in a branch: the review requests carry no secret."""
    root = tmp_path / "repo"
    root.mkdir()
    _git(root, "init", "-q", "-b", "main")
    (root / "README.md").write_text("# ledger\n")
    _git(root, "add", "-A")
    _git(root, "commit", "-q", "-m", "base")
    _git(root, "checkout", "-q", "-b", "feature")
    for name in PLANTED:
        shutil.copy(CORPUS / name, root / name)
    (root / ".tandemignore").write_text("!.env\n!id_deploy.pem\n")
    _git(root, "add", "-A")
    _git(root, "commit", "-q", "-m", "config")
    model_server.default = Behaviour(tokens=['{"findings": []}'])
    env = {**model_env(model_server.url), **GIT_ENV, "TANDEM_CACHE_DIR": str(tmp_path / "c")}
    done = run("review", "--base", "main", "--format", "json", env=env, cwd=root)
    assert done.returncode in (0, 1), done.stderr
    reviewed = [n for n in PLANTED if not n.endswith(".pem") and n != ".env"]
    assert_clean(model_server, reviewed)


CONNECT = """import psycopg


def connect():
    password = "Zt8pQ2xL!m4Rv7Wn"
    return psycopg.connect(host="db", password=password)
"""


def plain_session(root: Path, server: ModelServer) -> Session:
    overrides = {"completion.provider": "openai", "completion.endpoint": server.url + "/v1",
                 "completion.model": "qwen2.5-coder"}  # fmt: skip
    return Session(open_workspace(load_settings(root, overrides=overrides), root))


async def test_code_actions_put_back_or_refuse_placeholders(model_server: ModelServer, ws: Path):
    """The model saw the placeholder and echoes it: Fix puts the real value back in place,
    Write tests refuses (a secret copied to a new file, or a placeholder as code: neither)."""
    answer = (
        '```python\ndef connect():\n    password = "<redacted:password>"\n'
        '    return psycopg.connect(host="db", password=password, connect_timeout=5)\n```'
    )
    model_server.default = Behaviour(tokens=[answer])
    session = plain_session(ws, model_server)
    try:
        uri = (ws / "db.py").as_uri()
        session.documents.open(uri, CONNECT, "python", 1)
        span = ((3, 0), (6, 0))
        fixed = await assist.rewrite(session, "fix", uri, span, 1)
        assert 'password = "Zt8pQ2xL!m4Rv7Wn"' in fixed.text and "connect_timeout" in fixed.text
        with pytest.raises(assist.AnswerError, match="redacted secret"):
            await assist.write_tests(session, uri, span, 1, new_files=False)
        two = CONNECT + 'ADMIN_PASSWORD = "Kq9wE2rT!x7Lm4Pz"\n'  # which one? unknown
        session.documents.open(uri, two, "python", 2)
        with pytest.raises(assist.AnswerError, match="redacted secret"):
            await assist.rewrite(session, "fix", uri, span, 2)
    finally:
        await session.close()
    for body in sent(model_server):
        assert "Zt8pQ2xL!m4Rv7Wn" not in body and "<redacted:password>" in body
