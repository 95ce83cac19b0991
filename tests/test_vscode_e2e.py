"""The VS Code extension in a real VS Code: code-server's workbench in headless Chromium.

Each test starts its own code-server (scratch user data and extensions directories, the
extension's .vsix installed, user settings pointing ``tandem.path`` at this virtualenv's
``tandem`` and the model at ``tests/modelserver.py``), opens a workspace in Chromium and
acts as a person would: keys, the command palette, menus. The assertions read what is on
screen (the workbench DOM) and what the model server received. A PNG of each step is kept
under ``e2e-artifacts/<test>/`` when a test fails (always with TANDEM_E2E_KEEP=1).

``bash editors/vscode/e2e/setup.sh`` (part of the test command) installs code-server,
Chromium and chromedriver; without it these tests are skipped, saying so.
"""

from __future__ import annotations

import os
import shutil
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from selenium.webdriver.common.keys import Keys

from lsp_support import TANDEM
from modelserver import Behaviour, ModelServer
from vscode_e2e_support import ROOT, CodeServer, Install, install_extension, installed
from vscode_workbench import Workbench

pytestmark = pytest.mark.timeout(900)  # code-server and Chromium on a loaded 2-core machine

ARTIFACTS = Path(os.environ.get("TANDEM_E2E_ARTIFACTS") or ROOT / "e2e-artifacts")
# Read once at import: the autouse isolated_env fixture removes every TANDEM_* variable.
KEEP = bool(os.environ.get("TANDEM_E2E_KEEP"))
CALC = """def add(a, b):


def mean(values):
    total = 0
    for value in values:
        total += value
    return total / len(values)


print(add(1, 2), mean([1, 2, 3]))
"""
SUGGESTION = "return a + b"


@pytest.fixture(scope="session")
def e2e(tmp_path_factory: pytest.TempPathFactory) -> tuple[Install, Path]:
    """The installed tools and an extensions directory holding our .vsix (once a session)."""
    found = installed()
    if isinstance(found, str):
        pytest.skip(found)
    work = tmp_path_factory.mktemp("vscode-extensions")
    extensions = work / "extensions"
    extensions.mkdir()
    install_extension(found, extensions, work / "scratch")
    return found, extensions


@dataclass
class Session:
    server: CodeServer
    bench: Workbench
    model: ModelServer
    folder: Path

    def completions(self) -> int:
        return sum(1 for r in self.model.requests if r.path.endswith("/v1/completions"))


def user_settings(model: ModelServer, **extra: object) -> dict[str, object]:
    return {
        "tandem.path": TANDEM,
        "tandem.logLevel": "INFO",
        "tandem.completion.provider": "openai",
        "tandem.completion.endpoint": model.url + "/v1",
        "tandem.completion.model": "qwen2.5-coder",
        "security.workspace.trust.enabled": False,
        **extra,
    }


@pytest.fixture
def workspace(tmp_path: Path) -> Path:
    folder = tmp_path / "project"
    folder.mkdir()
    (folder / "calc.py").write_text(CALC)
    return folder


@pytest.fixture
def vscode(
    request: pytest.FixtureRequest,
    e2e: tuple[Install, Path],
    tmp_path: Path,
    model_server: ModelServer,
    workspace: Path,
) -> Iterator[Session]:
    install, extensions = e2e
    marker = request.node.get_closest_marker("vscode_settings")
    settings = user_settings(model_server, **(marker.kwargs if marker else {}))
    shots = ARTIFACTS / request.node.name
    shutil.rmtree(shots, ignore_errors=True)
    server = CodeServer(install, tmp_path, extensions, settings).start()
    bench: Workbench | None = None
    try:
        bench = Workbench(install.chromium, install.chromedriver, tmp_path / "chromium", shots)
        bench.open(server.folder_url(workspace))
        yield Session(server, bench, model_server, workspace)
    finally:
        report = getattr(request.node, "rep_call", None)
        failed = report is None or report.failed
        if bench is not None:
            if failed:
                bench.shot("end")
            bench.close()
        server.stop()
        if failed:
            (shots / "code-server.log").parent.mkdir(parents=True, exist_ok=True)
            (shots / "code-server.log").write_text(server.logs())
            (shots / "tandem.log").write_text(server.server_log())
        elif not KEEP:
            shutil.rmtree(shots, ignore_errors=True)


def wait_ready(s: Session) -> None:
    s.bench.wait(lambda: s.bench.status()[0] == "check", "the Tandem status item at ready", 180)


def test_ghost_text_from_the_model_and_tab_accepts(vscode: Session):
    """Typing into an empty function body shows the model's ghost text; so does the trigger
    command; Tab inserts it and the server counts the acceptance."""
    s, bench = vscode, vscode.bench
    s.model.tokens = ["return", " a", " +", " b"]
    wait_ready(s)
    bench.open_file("calc.py")
    bench.go_to(1, 15)
    bench.keys(Keys.ENTER)  # the cursor lands in the empty body: VS Code asks by itself
    bench.wait(lambda: SUGGESTION in bench.ghost_text(), "ghost text after typing")
    bench.shot("ghost-text-typing")
    assert s.completions() >= 1
    bench.keys(Keys.ESCAPE)
    bench.wait(lambda: not bench.ghost_text(), "the ghost text gone after Escape", 30)

    bench.command("Trigger Inline Suggestion")  # editor.action.inlineSuggest.trigger
    bench.wait(lambda: SUGGESTION in bench.ghost_text(), "ghost text after the trigger command")
    bench.shot("ghost-text-command")
    bench.keys(Keys.TAB)
    bench.wait(lambda: bench.lines()[1].strip() == SUGGESTION, "the suggestion in the file")
    bench.shot("accepted")
    assert bench.lines()[0] == "def add(a, b):"
    assert not bench.ghost_text()
    bench.wait(
        lambda: "completion accepted (1 this session)" in s.server.server_log(),
        "the server's log line for the acceptance",
    )


def empty_body_suggestion(s: Session) -> None:
    """Open calc.py, Enter after ``def add(a, b):`` and wait for the model's ghost text."""
    wait_ready(s)
    s.bench.open_file("calc.py")
    s.bench.go_to(1, 15)
    s.bench.keys(Keys.ENTER)
    s.bench.wait(lambda: SUGGESTION in s.bench.ghost_text(), "the model's ghost text")


def test_type_ahead_keeps_the_rest_without_asking_again(vscode: Session):
    s, bench = vscode, vscode.bench
    s.model.tokens = ["return", " a", " +", " b"]
    empty_body_suggestion(s)
    asked = s.completions()
    bench.keys("ret")
    bench.wait(
        lambda: bench.lines()[1] == "    ret" and bench.ghost_text() == "urn a + b",
        "the rest of the suggestion after typing its first characters",
    )
    bench.shot("type-ahead")
    time.sleep(3)  # a request sent for the typed characters would have arrived by now
    assert s.completions() == asked, [r.path for r in s.model.requests]
    assert bench.ghost_text() == "urn a + b"


def test_status_bar_busy_ready_error_and_back(vscode: Session):
    s, bench = vscode, vscode.bench
    s.model.tokens = ["return", " a", " +", " b"]
    s.model.default = Behaviour(delay=1.0)  # about 4 s of "asking the model" to be seen
    wait_ready(s)
    bench.open_file("calc.py")
    bench.go_to(1, 15)
    bench.keys(Keys.ENTER)
    bench.wait(lambda: bench.status()[0] == "loading", "the status item busy")
    assert "asking the model" in bench.status()[1]
    bench.shot("busy")
    bench.wait(lambda: SUGGESTION in bench.ghost_text(), "the model's ghost text")
    bench.wait(lambda: bench.status()[0] == "check", "the status item ready again")
    bench.shot("ready")

    port = int(s.model.url.rsplit(":", 1)[1])
    s.model.stop()
    bench.keys(Keys.ESCAPE)
    bench.go_to(9, 31)  # the end of `return total / len(values)`: not in the cache
    bench.command("Trigger Inline Suggestion")
    bench.wait(lambda: bench.status()[0] == "error", "the status item in error", 120)
    label = bench.status()[1]
    bench.shot("error")
    assert "Tandem: error — " in label, label
    assert f"127.0.0.1:{port}" in label or "unreachable" in label.lower(), label

    with ModelServer(tokens=[" + 0"], port=port) as back:
        bench.go_to(5, 14)  # the end of `total = 0`
        bench.command("Trigger Inline Suggestion")
        bench.wait(lambda: bench.status()[0] == "check", "the status item ready again", 120)
        bench.shot("ready-again")
        assert back.requests, "the model server that came back was asked"


def test_show_context_sent_and_set_api_key(vscode: Session):
    s, bench = vscode, vscode.bench
    s.model.tokens = ["return", " a", " +", " b"]
    wait_ready(s)
    bench.open_file("calc.py")
    bench.go_to(8, 5)
    bench.command("Tandem: Show context sent")
    bench.wait(
        lambda: any(
            "Context sent 1" in (t.get_attribute("aria-label") or t.text)
            for t in bench.css(".tab.active")
        ),
        "the context document",
    )
    shown = bench.wait(lambda: "\n".join(bench.lines()), "the context document's text")
    bench.shot("context-sent")
    assert "def mean(values):" in shown or "total" in shown, shown

    key = "sk-e2e-secret-4242"
    s.model.api_key = key  # from now on a request without it gets 401
    bench.open_file("calc.py")
    bench.command("Tandem: Set API key")
    bench.answer(key)
    bench.wait(
        lambda: any("API key for the completion model saved" in n for n in bench.notifications()),
        "the notification that the key was saved",
    )
    bench.shot("api-key-saved")
    bench.dismiss_notifications()
    bench.focus_editor()
    before = len(s.model.requests)
    bench.go_to(1, 15)
    bench.keys(Keys.ENTER)
    bench.wait(lambda: SUGGESTION in bench.ghost_text(), "ghost text from the keyed request")
    sent = [r for r in s.model.requests[before:] if r.path.endswith("/v1/completions")]
    assert sent and sent[-1].headers.get("authorization") == f"Bearer {key}"
    assert key not in s.server.server_log()  # the output channel masks it


@pytest.mark.vscode_settings(
    **{
        "security.workspace.trust.enabled": True,
        "security.workspace.trust.startupPrompt": "never",
        "security.workspace.trust.emptyWindow": False,
    }
)
def test_untrusted_workspace_runs_only_the_users_executable(vscode: Session):
    """The workspace's own tandem.path (a script that leaves a mark) is never run."""
    s, bench = vscode, vscode.bench
    folder = s.folder
    mark = folder.parent / "workspace-executable-ran"
    script = folder / "evil.sh"
    script.write_text(f"#!/bin/sh\ntouch {mark}\nexit 1\n")
    script.chmod(0o755)
    (folder / ".vscode").mkdir()
    (folder / ".vscode" / "settings.json").write_text(f'{{"tandem.path": "{script}"}}')
    bench.driver.refresh()  # reload: the extension reads the workspace settings afresh
    bench.wait(lambda: bench.css(".monaco-workbench .part.statusbar"), "the workbench", 180)
    bench.wait(
        lambda: any("Restricted Mode" in e.text for e in bench.css(".statusbar-item, .banner")),
        "the Restricted Mode indicator",
    )
    wait_ready(s)
    bench.shot("untrusted-ready")
    assert not mark.exists(), "the workspace's tandem.path ran in an untrusted workspace"
    s.model.tokens = ["return", " a", " +", " b"]
    bench.open_file("calc.py")
    bench.go_to(1, 15)
    bench.keys(Keys.ENTER)
    bench.wait(lambda: SUGGESTION in bench.ghost_text(), "ghost text in Restricted Mode")
    bench.shot("untrusted-ghost-text")
    assert not mark.exists()


CHAT_ANSWER = [
    "It ",
    "adds ",
    "up ",
    "the ",
    "values ",
    "and ",
    "divides ",
    "by ",
    "their ",
    "count.",
]
FIXED = [
    "```python\n",
    "def mean(values):\n",
    "    total = 0\n",
    "    for value in values:\n",
    "        total += value\n",
    "    return total / max(len(values), 1)\n",
    "```\n",
]


def test_chat_explain_and_fix_on_a_selection(vscode: Session):
    s, bench = vscode, vscode.bench
    wait_ready(s)
    bench.open_file("calc.py")
    bench.select_lines(4, 8)
    s.model.enqueue(Behaviour(tokens=CHAT_ANSWER, delay=0.5))
    bench.command("Tandem: Chat about selection")
    bench.answer("What does this compute?")
    seen: list[str] = []

    def streamed() -> bool:
        text = bench.webview_text("Tandem Chat")
        if not seen or seen[-1] != text:
            seen.append(text)
            if "It adds" in text and "count." not in text and len(seen) < 50:
                bench.shot("chat-streaming")
        return "divides by their count." in text

    bench.wait(streamed, "the whole chat answer in the chat view", 120)
    bench.shot("chat-answer")
    partial = [t for t in seen if "It adds" in t and "count." not in t]
    assert partial, f"the answer never showed part-way: {seen}"
    assert "What does this compute?" in seen[-1]

    s.model.enqueue(Behaviour(tokens=["The ", "mean ", "of ", "the ", "values."]))
    bench.select_lines(4, 8)
    bench.context_menu("Explain")
    bench.wait(
        lambda: "The mean of the values." in bench.webview_text("Tandem Chat"),
        "Explain's answer in the chat view",
        120,
    )
    bench.shot("explain")

    # Fix from the light bulb (Ctrl+.): the proposal in a diff editor; Discard leaves the file.
    original = CALC.splitlines()
    s.model.enqueue(Behaviour(tokens=FIXED))
    bench.select_lines(4, 8)
    bench.quick_fix("Tandem: Fix")
    proposed = propose_fix(s, "fix-diff-light-bulb")
    assert proposed[3:8] == FIXED_LINES, proposed
    bench.notification_button(FIX_QUESTION, "Discard")
    bench.wait(lambda: bench.diff_lines() is None, "the diff editor closed after Discard")
    bench.wait(lambda: bench.lines()[:11] == original, "calc.py unchanged after Discard")
    bench.shot("fix-discarded")

    # Fix from the editor's context menu: Apply writes the proposal into the selection only.
    s.model.enqueue(Behaviour(tokens=FIXED))
    bench.select_lines(4, 8)
    bench.context_menu("Fix")
    propose_fix(s, "fix-diff")
    bench.notification_button(FIX_QUESTION, "Apply")
    bench.wait(lambda: bench.diff_lines() is None, "the diff editor closed after Apply")
    bench.wait(
        lambda: "max(len(values), 1)" in "\n".join(bench.lines()), "the fix in the file", 120
    )
    bench.shot("fixed")
    lines = bench.lines()
    assert lines[:3] == original[:3], lines
    assert lines[3:8] == FIXED_LINES, lines
    assert lines[8:11] == original[8:11], lines
    bench.focus_editor()
    bench.chord(Keys.CONTROL, "s")
    bench.wait(
        lambda: "max(len(values), 1)" in (s.folder / "calc.py").read_text(), "calc.py saved", 60
    )
    saved = (s.folder / "calc.py").read_text().splitlines()
    assert saved[:3] + saved[8:] == original[:3] + original[8:], saved
    assert saved[3:8] == FIXED_LINES, saved


FIX_QUESTION = "apply the proposed fix to calc.py:4-8?"
FIXED_LINES = [line.rstrip("\n") for line in FIXED[1:6]]


def propose_fix(s: Session, step: str) -> list[str]:
    """Wait for Fix's diff editor and its question; the proposed side's lines."""
    bench = s.bench

    def shown() -> list[str] | None:
        lines = bench.diff_lines()
        return lines if lines and "max(len(values), 1)" in "\n".join(lines) else None

    proposed = bench.wait(shown, "the proposed fix in a diff editor", 120)
    titles = bench.tab_titles()
    assert any("Tandem fix: calc.py (proposed)" in t for t in titles), titles
    bench.wait(
        lambda: any(FIX_QUESTION in n for n in bench.notifications()), "the Apply/Discard question"
    )
    actions = bench.title_actions()
    assert any("Apply fix" in a for a in actions), actions
    assert any("Discard fix" in a for a in actions), actions
    bench.shot(step)
    return proposed
