"""The VS Code extension's own tests (editors/vscode), run from the project's pytest.

``npm test`` there type-checks the whole extension (``tsc --noEmit``), bundles it with
esbuild, and runs its Node tests against the real ``tandem serve`` of this virtualenv
and ``tests/modelserver.py``. VS Code itself cannot be downloaded here, so the Node tests
drive the protocol modules over stdio and activate the bundle against a stand-in
``vscode`` module. ``npm ci`` installs the locked packages first when node_modules is
missing (a fresh checkout downloads them from the npm registry once).
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import pytest

EXTENSION = Path(__file__).resolve().parent.parent / "editors" / "vscode"


def _run(command: list[str], env: dict[str, str], timeout: float) -> tuple[int, str]:
    """Exit status and output; on timeout the whole process group goes (servers included)."""
    process = subprocess.Popen(
        command,
        cwd=EXTENSION,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
    )
    try:
        output, _ = process.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        output, _ = process.communicate()
        pytest.fail(f"{' '.join(command)} took over {timeout:.0f} s:\n{output}")
    return process.returncode, output


@pytest.mark.timeout(600)
def test_vscode_extension_npm_test():
    npm = shutil.which("npm")
    assert npm is not None, "npm is needed for the VS Code extension's tests (Node 20+)"
    bin_dir = Path(sys.executable).parent
    env = {
        **os.environ,
        "TANDEM_BIN": str(bin_dir / "tandem"),
        "TANDEM_PYTHON": sys.executable,
        "NO_COLOR": "1",
        "npm_config_audit": "false",
        "npm_config_fund": "false",
        "npm_config_update_notifier": "false",
    }
    if not (EXTENSION / "node_modules").is_dir():
        status, output = _run([npm, "ci"], env, timeout=360)
        assert status == 0, f"npm ci failed in {EXTENSION}:\n{output}"
    status, output = _run([npm, "test"], env, timeout=220)
    assert status == 0, f"npm test failed in {EXTENSION}:\n{output}"
    assert "ℹ fail 0" in output, output
