"""code-server for the VS Code end-to-end tests: where setup put it, and one running instance.

``editors/vscode/e2e/setup.sh`` installs code-server (with its own Node), Chromium and
chromedriver, and builds the extension's .vsix; it records the paths in ``$CACHE/ready``.
Each test starts its own code-server with a scratch user data directory and extensions
directory, on a port the kernel picks (``--bind-addr 127.0.0.1:0``: no race with other
servers for a "free" port), and reads the real port from code-server's own log line.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
SETUP = ROOT / "editors" / "vscode" / "e2e" / "setup.sh"
CACHE = Path(os.environ.get("TANDEM_E2E_CACHE") or Path.home() / ".cache" / "tandem-vscode-e2e")
LISTENING = re.compile(r"HTTP server listening on (http://127\.0\.0\.1:\d+)/")

# A quiet workbench: no tours, no built-in AI chat, no update or extension-gallery checks.
QUIET_SETTINGS: dict[str, Any] = {
    "workbench.startupEditor": "none",
    "workbench.tips.enabled": False,
    "workbench.enableExperiments": False,
    "workbench.secondarySideBar.defaultVisibility": "hidden",
    "chat.disableAIFeatures": True,
    "telemetry.telemetryLevel": "off",
    "update.mode": "none",
    "extensions.autoUpdate": False,
    "extensions.autoCheckUpdates": False,
    "extensions.ignoreRecommendations": True,
    "git.enabled": False,
    "editor.quickSuggestions": {"other": False, "comments": False, "strings": False},
    "editor.suggestOnTriggerCharacters": False,
    "editor.minimap.enabled": False,
    "editor.inlineSuggest.enabled": True,
    "files.autoSave": "off",
    "window.confirmBeforeClose": "never",
}


@dataclass(frozen=True)
class Install:
    node: Path
    code_server: Path  # its out/node/entry.js
    chromium: Path
    chromedriver: Path
    vsix: Path


def installed() -> Install | str:
    """The paths setup recorded (the .vsix rebuilt if its sources changed), or why not."""
    ready = CACHE / "ready"
    if not ready.is_file():
        return f"the e2e tools are not installed: run `bash {SETUP.relative_to(ROOT)}` ({ready})"
    paths = dict(line.split("=", 1) for line in ready.read_text().splitlines() if "=" in line)
    for key in ("node", "code_server", "chromium", "chromedriver"):
        if not paths.get(key) or not Path(paths[key]).exists():
            return f"{key} is missing ({paths.get(key)!r}): run `bash {SETUP.relative_to(ROOT)}`"
    built = subprocess.run(
        ["bash", str(SETUP), "--vsix-only"],
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    if built.returncode != 0:
        raise RuntimeError(f"building the .vsix failed:\n{built.stderr}")
    vsix = Path(built.stdout.strip().splitlines()[-1])
    return Install(
        node=Path(paths["node"]),
        code_server=Path(paths["code_server"]),
        chromium=Path(paths["chromium"]),
        chromedriver=Path(paths["chromedriver"]),
        vsix=vsix,
    )


def install_extension(install: Install, extensions: Path, scratch: Path) -> None:
    """``code-server --install-extension`` of our .vsix into ``extensions`` (once a session)."""
    result = subprocess.run(
        [
            str(install.node),
            str(install.code_server),
            "--user-data-dir",
            str(scratch),
            "--extensions-dir",
            str(extensions),
            "--install-extension",
            str(install.vsix),
        ],
        capture_output=True,
        text=True,
        timeout=180,
        env=code_server_env(scratch),
        check=False,
    )
    if result.returncode != 0 or not list(extensions.glob("tandem.tandem-*")):
        raise RuntimeError(f"installing {install.vsix} failed:\n{result.stdout}\n{result.stderr}")


def code_server_env(home: Path) -> dict[str, str]:
    """code-server writes its own config.yaml under XDG_CONFIG_HOME: keep it scratch too."""
    env = {**os.environ, "XDG_CONFIG_HOME": str(home / "xdg-config")}
    for name in ("PORT", "PASSWORD", "HASHED_PASSWORD", "VSCODE_IPC_HOOK_CLI"):
        env.pop(name, None)
    return env


class CodeServer:
    """One code-server on 127.0.0.1 with scratch directories; stopped with its process group."""

    def __init__(
        self,
        install: Install,
        work: Path,
        extensions: Path,
        settings: dict[str, Any],
    ) -> None:
        self.install = install
        self.work = work
        self.user_data = work / "code-server-data"
        self.extensions = work / "extensions"
        shutil.copytree(extensions, self.extensions)
        # In a remote window (code-server is one) VS Code takes machine-scoped settings, such as
        # tandem.path (machine-overridable), only from the remote's Machine/settings.json; a
        # person sets them in "Remote [code-server]" settings. Both files hold the same here.
        text = json.dumps({**QUIET_SETTINGS, **settings}, indent=1)
        for scope in ("User", "Machine"):
            (self.user_data / scope).mkdir(parents=True)
            (self.user_data / scope / "settings.json").write_text(text)
        self.log = work / "code-server.log"
        self.process: subprocess.Popen[bytes] | None = None
        self.url = ""

    def start(self, timeout: float = 120) -> CodeServer:
        config = self.work / "code-server.yaml"
        config.write_text("bind-addr: 127.0.0.1:0\nauth: none\ncert: false\n")
        command = [
            str(self.install.node),
            str(self.install.code_server),
            "--config",
            str(config),
            "--bind-addr",
            "127.0.0.1:0",
            "--auth",
            "none",
            "--disable-telemetry",
            "--disable-update-check",
            "--disable-getting-started-override",
            "--ignore-last-opened",
            "--user-data-dir",
            str(self.user_data),
            "--extensions-dir",
            str(self.extensions),
        ]
        with self.log.open("wb") as log:
            self.process = subprocess.Popen(
                command,
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                env=code_server_env(self.work),
                start_new_session=True,
            )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            found = LISTENING.search(self.log.read_text(errors="replace"))
            if found:
                self.url = found.group(1)
                return self
            if self.process.poll() is not None:
                break
            time.sleep(0.2)
        self.stop()
        raise RuntimeError(f"code-server did not start in {timeout:.0f} s:\n{self.logs()}")

    def logs(self) -> str:
        return self.log.read_text(errors="replace")[-6000:] if self.log.exists() else ""

    def folder_url(self, folder: Path) -> str:
        return f"{self.url}/?folder={folder}"

    def stop(self) -> None:
        """The whole group: code-server, its extension host, and the tandem server under it."""
        if self.process is None:
            return
        for sig, wait in ((signal.SIGTERM, 10), (signal.SIGKILL, 10)):
            try:
                os.killpg(self.process.pid, sig)
            except ProcessLookupError:
                break
            try:
                self.process.wait(wait)
                break
            except subprocess.TimeoutExpired:
                continue
        self.process = None

    def __enter__(self) -> CodeServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def server_log(self) -> str:
        """What the Tandem output channel received (the server's stderr, INFO and up)."""
        texts = []
        for path in sorted(self.user_data.glob("logs/**/*Tandem*.log")):
            texts.append(path.read_text(errors="replace"))
        return "\n".join(texts)
