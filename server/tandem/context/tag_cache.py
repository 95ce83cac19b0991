"""The workspace index's disk cache: each file's tags as JSON rows, failing soft.

The cache is an optimisation only: if it cannot be opened or a read or write fails,
it warns once and the index carries on without it. It stores JSON (``JSONOnlyDisk``),
never pickle, and a cached value of the wrong shape reads as absent, so the file is
parsed again.
"""

from __future__ import annotations

import contextlib
import logging
import operator
import sys
from collections.abc import Iterable
from dataclasses import fields
from pathlib import Path
from typing import Any

import diskcache

from tandem.cache import UnsafeCacheRow, open_cache
from tandem.context.tags import Tag

log = logging.getLogger(__name__)

TAGS_VERSION = 2  # bump when the cached value's meaning changes
CACHE_SIZE_LIMIT = 512 * 2**20
_FIELDS = [f.name for f in fields(Tag)]
SCHEMA = ",".join(_FIELDS)  # a changed Tag invalidates the cache
_ROW = operator.attrgetter(*_FIELDS)
_ROW_TYPES = tuple(str if f.type in ("str", str) else int for f in fields(Tag))

Pending = list[tuple[tuple[Any, ...], Any]]  # cache writes waiting for a transaction


def rows(tags: Iterable[Tag]) -> tuple[tuple[Any, ...], ...]:
    """Tags as plain tuples: small JSON, and no class path in the cache."""
    return tuple(map(_ROW, tags))


def tags_of(rows: Iterable[tuple[Any, ...]]) -> tuple[Tag, ...]:
    return tuple(Tag(sys.intern(row[0]), *row[1:]) for row in rows)


def cached_value(value: Any) -> tuple[Any, Any, Any] | None:
    """A cached (definitions, imports, names) as the index writes it, else None."""
    if not (isinstance(value, list | tuple) and len(value) == 3):
        return None
    found, imports, names = value
    try:
        ok = (
            all(
                len(row) == len(_ROW_TYPES)
                and all(type(v) is t for v, t in zip(row, _ROW_TYPES, strict=True))
                for row in found
            )
            and all(len(pair) == 2 and all(type(n) is int for n in pair) for pair in imports)
            and all(type(name) is str for name in names)
        )
    except TypeError:
        return None
    return (found, [tuple(pair) for pair in imports], names) if ok else None


class TagCache:
    """A diskcache of tags under ``path`` (None: no cache); any failure disables it."""

    def __init__(self, path: Path | None) -> None:
        self.path = path
        self._warned = False
        self.disk: diskcache.Cache | None = None
        if path is not None:
            try:
                cache = open_cache(path, size_limit=CACHE_SIZE_LIMIT)
                cache.get(("probe",))
                self.disk = cache
            except Exception as exc:
                self._failed(exc)

    def _failed(self, exc: BaseException) -> None:
        cache, self.disk = self.disk, None
        if not self._warned:
            self._warned = True
            log.warning(
                "tags cache %s is unusable (%s: %s); indexing without it",
                self.path, type(exc).__name__, exc,
            )  # fmt: skip
        if cache is not None:
            with contextlib.suppress(Exception):
                cache.close()

    def get(self, key: tuple[Any, ...]) -> Any:
        cache = self.disk
        try:
            return cache.get(key) if cache is not None else None
        except (UnsafeCacheRow, ValueError, UnicodeDecodeError):
            return None  # a row this index did not write: parse the file again
        except Exception as exc:
            self._failed(exc)
            return None

    def write(self, pending: Pending) -> None:
        """Write ``pending`` in one transaction, and empty it."""
        cache = self.disk
        if cache is not None and pending:
            try:
                with cache.transact():
                    for key, value in pending:
                        cache.set(key, value)
            except Exception as exc:
                self._failed(exc)
        pending.clear()

    def close(self) -> None:
        cache, self.disk = self.disk, None
        if cache is not None:
            cache.close()
