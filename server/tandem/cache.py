"""Completion caches: a persistent one keyed by the exact request, and type-ahead reuse.

``CompletionCache`` lives in diskcache under the cache directory: size-bounded,
safe for several servers at once (two editor windows share it through SQLite),
kept across restarts. A corrupt or unwritable directory costs one warning and
the server goes on with memory only.

Every diskcache of the project stores JSON through ``JSONOnlyDisk``, never pickle:
diskcache's default disk unpickles what it reads, so a cache folder someone else could
write (a pull request that commits one) would run code. A row that is not ours (pickled,
an older format, a file outside the folder) reads as a miss: the cache is then empty.

``Recent`` is the small in-memory map the context engine keeps per file: the last few
keys put, safe across threads.

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
import os
import threading
from collections import OrderedDict, deque
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Generic, TypeVar

import diskcache
from diskcache.core import MODE_BINARY, MODE_RAW

log = logging.getLogger(__name__)

CACHE_VERSION = 1
SIZE_LIMIT = 64 * 1024 * 1024
MEMORY_ITEMS = 2048


class UnsafeCacheRow(ValueError):
    """A cache row this disk did not write (pickled, text mode, outside the folder)."""


class JSONOnlyDisk(diskcache.Disk):
    """Keys and values as JSON bytes; reading never unpickles and never leaves the folder.

    ``diskcache.JSONDisk`` is not enough: its ``fetch`` and ``get`` call the pickling base
    class first, so a planted row in pickle mode still runs code.
    """

    def put(self, key: Any) -> tuple[Any, bool]:
        return super().put(_json_bytes(key))

    def get(self, key: Any, raw: bool) -> Any:
        if not raw or not isinstance(key, bytes | memoryview):
            raise UnsafeCacheRow("a cache key that is not JSON")
        return json.loads(bytes(key))

    def store(self, value: Any, read: bool, key: Any = diskcache.core.UNKNOWN) -> Any:
        if read:
            raise UnsafeCacheRow("file values are not stored")
        return super().store(_json_bytes(value), False, key=key)

    def fetch(self, mode: int, filename: str | None, value: Any, read: bool) -> Any:
        if read:
            raise UnsafeCacheRow("file values are not read")
        if mode == MODE_RAW and isinstance(value, bytes | memoryview):
            data = bytes(value)
        elif mode == MODE_BINARY and filename:
            with open(self._inside(filename), "rb") as handle:
                data = handle.read()
        else:  # pickle or text mode: never written by this disk
            raise UnsafeCacheRow(f"a cache row in mode {mode}")
        return json.loads(data)

    def remove(self, file_path: str) -> None:
        with contextlib.suppress(UnsafeCacheRow):
            self._inside(file_path)
            super().remove(file_path)

    def _inside(self, filename: str) -> str:
        """The value file's path, refused unless it lies inside the cache folder."""
        folder = os.path.realpath(self._directory)
        full = os.path.realpath(os.path.join(folder, filename))
        if not full.startswith(folder + os.sep):
            raise UnsafeCacheRow("a cache value file outside the cache folder")
        return full


def _json_bytes(value: Any) -> bytes:
    return json.dumps(value, ensure_ascii=False, separators=(",", ":")).encode(
        "utf-8", "surrogatepass"
    )


def open_cache(folder: Path, **settings: Any) -> diskcache.Cache:
    """A diskcache that stores JSON only (see ``JSONOnlyDisk``)."""
    return diskcache.Cache(str(folder), disk=JSONOnlyDisk, **settings)


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
        self.write_behind = False  # True: set() queues disk writes until flush()
        self._pending: list[tuple[str, str]] = []
        self.warning: str | None = None
        if folder is not None:
            try:
                self._disk = open_cache(
                    folder,
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
            except (UnsafeCacheRow, ValueError, UnicodeDecodeError, OSError):
                value = None  # not a row of ours, or a value file gone: a miss
            except Exception as exc:
                self._fall_back(f"completion cache read failed ({exc}); memory only")
        if isinstance(value, str):
            self._remember(key, value)
            return value
        return None

    def set(self, key: str, value: str) -> None:
        """Remember ``value`` (``get`` sees it at once) and write it to disk, or, with
        ``write_behind``, queue the write for ``flush``.

        The language server writes behind: two SQLite writes took ~1.5 ms of every
        answer; it flushes once the answer is sent (issue 12). A thread for the writes
        competed for the GIL with the answer being written, which cost as much.
        """
        self._remember(key, value)
        if self._disk is None:
            return
        if self.write_behind:
            with self._lock:
                self._pending.append((key, value))
            return
        self._write(key, value)

    def _write(self, key: str, value: str) -> None:
        disk = self._disk
        if disk is None:
            return
        try:
            disk.set(key, value)
        except Exception as exc:
            self._fall_back(f"completion cache write failed ({exc}); memory only")

    def flush(self) -> None:
        """Write what ``write_behind`` queued, in order."""
        with self._lock:
            pending, self._pending = self._pending, []
        for key, value in pending:
            self._write(key, value)

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
        self.flush()  # what was set is written first
        if self._disk is not None:
            self._disk.close()


# ---- type-ahead ---------------------------------------------------------------------------------

CONTEXT_CHARS = 2000  # how much text around the anchor must be unchanged
PER_DOCUMENT = 32


K = TypeVar("K")
V = TypeVar("V")


class Recent(Generic[K, V]):
    """The ``capacity`` keys put last and their values, safe across threads: what the
    context engine keeps per file (resolved imports, names, fingerprints) for the next
    request."""

    def __init__(self, capacity: int) -> None:
        self.capacity = capacity
        self._lock = threading.Lock()
        self._items: OrderedDict[K, V] = OrderedDict()

    def get(self, key: K, touch: bool = False) -> V | None:
        """The value, or None; ``touch``: it counts as put now."""
        with self._lock:
            value = self._items.get(key)
            if touch and value is not None:
                self._items.move_to_end(key)
            return value

    def __len__(self) -> int:
        return len(self._items)

    def __contains__(self, key: object) -> bool:
        return key in self._items

    def __iter__(self) -> Iterator[K]:
        """The keys, oldest first (of a copy: others may put meanwhile)."""
        with self._lock:
            return iter(list(self._items))

    def put(self, key: K, value: V) -> None:
        with self._lock:
            self._items[key] = value
            self._items.move_to_end(key)
            while len(self._items) > self.capacity:
                self._items.popitem(last=False)


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
