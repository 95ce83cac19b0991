"""Completion caches: a persistent one keyed by the exact request, and type-ahead reuse.

``CompletionCache`` lives in diskcache under the cache directory: size-bounded,
safe for several servers at once (two editor windows share it through SQLite),
kept across restarts. A corrupt or unwritable directory costs one warning and
the server goes on with memory only.

``TypeAhead`` answers without any model call while the user types what was
just suggested: it keeps recent suggestions per document, anchored at the
offset they were made for, and checks that the text around the anchor is
unchanged before offering the rest.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import threading
from collections import OrderedDict, deque
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import diskcache

log = logging.getLogger(__name__)

CACHE_VERSION = 1
SIZE_LIMIT = 64 * 1024 * 1024
MEMORY_ITEMS = 2048


def request_key(model: str, template: str, path: str, body: dict[str, Any]) -> str:
    """The identity of a completion: model, template, and the exact request sent."""
    blob = json.dumps([CACHE_VERSION, model, template, path, body], sort_keys=True)
    return hashlib.sha256(blob.encode("utf-8", "surrogatepass")).hexdigest()


class CompletionCache:
    """Post-processed completions by request key; disk when it can, memory when it cannot."""

    def __init__(self, folder: Path | None, size_limit: int = SIZE_LIMIT) -> None:
        self._memory: OrderedDict[str, str] = OrderedDict()
        self._lock = threading.Lock()
        self._disk: diskcache.Cache | None = None
        self.warning: str | None = None
        if folder is not None:
            try:
                self._disk = diskcache.Cache(
                    str(folder),
                    size_limit=size_limit,
                    eviction_policy="least-recently-used",
                    timeout=1,
                )
                self._disk.get("__probe__")
            except Exception as exc:  # any failure here means: no disk cache
                self._fall_back(f"completion cache at {folder} is unusable ({exc}); memory only")

    def _fall_back(self, message: str) -> None:
        if self.warning is None:
            self.warning = message
            log.warning(message)
        disk, self._disk = self._disk, None
        if disk is not None:
            with contextlib.suppress(Exception):
                disk.close()

    def get(self, key: str) -> str | None:
        with self._lock:
            if key in self._memory:
                self._memory.move_to_end(key)
                return self._memory[key]
        value = None
        if self._disk is not None:
            try:
                value = self._disk.get(key)
            except Exception as exc:
                self._fall_back(f"completion cache read failed ({exc}); memory only")
        if isinstance(value, str):
            self._remember(key, value)
            return value
        return None

    def set(self, key: str, value: str) -> None:
        self._remember(key, value)
        if self._disk is not None:
            try:
                self._disk.set(key, value)
            except Exception as exc:
                self._fall_back(f"completion cache write failed ({exc}); memory only")

    def _remember(self, key: str, value: str) -> None:
        with self._lock:
            self._memory[key] = value
            self._memory.move_to_end(key)
            while len(self._memory) > MEMORY_ITEMS:
                self._memory.popitem(last=False)

    @property
    def persistent(self) -> bool:
        return self._disk is not None

    def close(self) -> None:
        if self._disk is not None:
            self._disk.close()


# ---- type-ahead ---------------------------------------------------------------------------------

CONTEXT_CHARS = 2000  # how much text around the anchor must be unchanged
PER_DOCUMENT = 32


def _digest(text: str) -> bytes:
    return hashlib.blake2b(text.encode("utf-8", "surrogatepass"), digest_size=16).digest()


@dataclass(frozen=True)
class Suggestion:
    """A completion shown at ``anchor``, with fingerprints of the text around it."""

    anchor: int
    before: bytes
    after: bytes
    text: str


class TypeAhead:
    """Recent suggestions per document, reused while the user types into them."""

    def __init__(self) -> None:
        self._by_uri: dict[str, deque[Suggestion]] = {}
        self._lock = threading.Lock()

    def remember(self, uri: str, text: str, offset: int, suggestion: str) -> None:
        if not suggestion:
            return
        entry = Suggestion(
            offset,
            _digest(text[max(0, offset - CONTEXT_CHARS) : offset]),
            _digest(text[offset : offset + CONTEXT_CHARS]),
            suggestion,
        )
        with self._lock:
            entries = self._by_uri.setdefault(uri, deque(maxlen=PER_DOCUMENT))
            if entry not in entries:
                entries.appendleft(entry)

    def lookup(self, uri: str, text: str, offset: int) -> str | None:
        """The rest of a suggestion whose start the user has typed, or None.

        Backspacing to where a suggestion was made finds it whole again.
        """
        with self._lock:
            entries = list(self._by_uri.get(uri, ()))
        after = None
        for entry in entries:
            if entry.anchor > offset:
                continue
            typed = text[entry.anchor : offset]
            if not entry.text.startswith(typed) or len(typed) >= len(entry.text):
                continue
            if after is None:
                after = _digest(text[offset : offset + CONTEXT_CHARS])
            if entry.after != after:
                continue
            start = max(0, entry.anchor - CONTEXT_CHARS)
            if _digest(text[start : entry.anchor]) != entry.before:
                continue
            return entry.text[len(typed) :]
        return None

    def forget(self, uri: str) -> None:
        with self._lock:
            self._by_uri.pop(uri, None)
