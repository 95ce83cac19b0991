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
        elif not os.environ.get("TANDEM_E2E_KEEP"):
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
