"""Where one completion request spends its time: per-stage timers, off unless asked for.

``TANDEM_STAGES=1`` in the server's environment turns them on: each inline request then
logs one line (logger ``tandem.stages``, level INFO, on stderr) such as
``stages model 104.2 ms: apply 0.31 | prepare.parse 0.02 | ...``. Off (the default),
``stage()`` returns one shared do-nothing context manager and ``begin()`` returns None:
no clock is read and nothing is stored, so the timers may sit on the hot path.

The current request's record travels in a ``ContextVar``, so stages timed on a worker
thread (``asyncio.to_thread`` copies the context) land in the request that started them.
"""

from __future__ import annotations

import contextlib
import logging
import os
import time
from collections.abc import Callable, Iterator
from contextvars import ContextVar
from dataclasses import dataclass, field
from typing import TypeVar

T = TypeVar("T")

log = logging.getLogger("tandem.stages")

ENV = "TANDEM_STAGES"
ENABLED = os.environ.get(ENV, "") not in ("", "0")
if ENABLED:  # shown whatever --log-level says: asking for the timers is asking for this line
    log.setLevel(logging.INFO)

_NOTHING = contextlib.nullcontext()


@dataclass
class Record:
    """Milliseconds per stage of one request, in the order the stages first ran."""

    started: float = field(default_factory=time.perf_counter)
    ms: dict[str, float] = field(default_factory=dict)

    def add(self, name: str, ms: float) -> None:
        self.ms[name] = self.ms.get(name, 0.0) + ms

    def line(self, outcome: str) -> str:
        total = (time.perf_counter() - self.started) * 1000
        stages = " | ".join(f"{name} {value:.2f}" for name, value in self.ms.items())
        return f"stages {outcome} {total:.2f} ms: {stages}"


_current: ContextVar[Record | None] = ContextVar("tandem_stages", default=None)


def begin() -> Record | None:
    """Start a request's record (None when the timers are off)."""
    if not ENABLED:
        return None
    record = Record()
    _current.set(record)
    return record


def end(record: Record | None, outcome: str) -> None:
    """Log the request's breakdown; ``outcome`` says how it was answered."""
    if record is not None:
        log.info("%s", record.line(outcome))
        _current.set(None)


def stage(name: str) -> contextlib.AbstractContextManager[object]:
    """Time the ``with`` block as ``name`` in the current request's record, if any."""
    if not ENABLED:
        return _NOTHING
    record = _current.get()
    if record is None:
        return _NOTHING
    return _timed(record, name)


def note(name: str, ms: float) -> None:
    """Add a duration measured elsewhere (e.g. a document edit applied before the request)."""
    if ENABLED:
        record = _current.get()
        if record is not None:
            record.add(name, ms)


def timed(work: Callable[[], T], sink: Callable[[float], None]) -> Callable[[], T]:
    """``work`` that gives its duration in ms to ``sink`` (for work done before a request,
    such as applying a document edit on the document thread)."""

    def run() -> T:
        started = time.perf_counter()
        try:
            return work()
        finally:
            sink((time.perf_counter() - started) * 1000)

    return run


@contextlib.contextmanager
def _timed(record: Record, name: str) -> Iterator[None]:
    started = time.perf_counter()
    try:
        yield
    finally:
        record.add(name, (time.perf_counter() - started) * 1000)
