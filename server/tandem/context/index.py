"""The workspace index: every readable file's tags, kept current and cached on disk.

Parsing a big workspace takes seconds, so a restart should not pay for it again:
each file's tags are cached under a key of everything that could change them (its
path, mtime and size, the grammar's version, the tags query's text and the format
of the cached value). The disk cache (``tag_cache``) is an optimisation only: if it
cannot be opened or used, the index warns once and carries on without it.

Memory and disk are kept small for big workspaces: each file keeps its definitions,
imports and the set of names it references (ranking needs only how many files use a
name). Reference tags, by far the most numerous, are neither kept nor cached:
``file_tags`` re-parses the one file asked for.
"""

from __future__ import annotations

import hashlib
import heapq
import logging
import os
import re
import sys
import threading
import time
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NamedTuple

from tandem.context.languages import QUERIES, LanguageSpec, language_for_path
from tandem.context.tag_cache import (
    SCHEMA,
    TAGS_VERSION,
    Pending,
    TagCache,
    cached_value,
    rows,
    tags_of,
)
from tandem.context.tags import FileTags, Tag, extract_tags
from tandem.context.workspace import MAX_BYTES, is_ignored, walk

log = logging.getLogger(__name__)

COMMON_NAME_FILES = 40  # names defined in more files than this are not looked up
FLUSH_EVERY = 256  # cache writes per transaction
_EMPTY = FileTags((), (), ())


@dataclass(frozen=True, slots=True)
class IndexedTag:
    path: Path  # absolute
    rel: str  # relative to the workspace root, with "/" separators
    tag: Tag


@dataclass(frozen=True, slots=True)
class IndexStats:
    files: int = 0
    parsed: int = 0
    reused: int = 0  # taken from the disk cache
    seconds: float = 0.0


class _Entry(NamedTuple):
    mtime_ns: int
    definitions: tuple[Tag, ...]
    imports: tuple[tuple[int, int], ...]
    referenced: frozenset[str]  # names this file references


def _dir_distance(a: tuple[str, ...], b: tuple[str, ...]) -> int:
    """Folder steps from ``a`` to ``b`` through their deepest common folder."""
    common = 0
    for x, y in zip(a, b, strict=False):
        if x != y:
            break
        common += 1
    return len(a) + len(b) - 2 * common


class WorkspaceIndex:
    """Tags of every file under ``root`` whose language Tandem knows."""

    def __init__(
        self,
        root: Path,
        cache_dir: Path | None = None,
        *,
        max_bytes: int = MAX_BYTES,
        exclude: Sequence[str] = (),
    ) -> None:
        self.root = Path(root).resolve()
        self.max_bytes = max_bytes
        self.exclude = tuple(exclude)  # the exclude setting: such files are never indexed
        self._lock = threading.Lock()
        self._entries: dict[str, _Entry] = {}
        self._defs: dict[str, dict[str, tuple[Tag, ...]]] = {}  # name -> rel -> tags
        self._users: Counter[str] = Counter()  # name -> files referencing it
        self._stats = IndexStats()
        self._ready = threading.Event()
        self._thread: threading.Thread | None = None
        self.tag_cache = TagCache(cache_dir / "tags" if cache_dir is not None else None)

    def close(self) -> None:
        self.tag_cache.close()

    # ---- building ----------------------------------------------------------------------------

    @property
    def ready(self) -> bool:
        return self._ready.is_set()

    @property
    def stats(self) -> IndexStats:
        return self._stats

    def wait(self, timeout: float | None = None) -> bool:
        """Block until the first build finished (tests and command-line tools)."""
        return self._ready.wait(timeout)

    def start(self) -> None:
        """Build in a daemon thread; queries meanwhile see the files indexed so far."""
        if self._thread is not None and self._thread.is_alive():
            return
        self._thread = threading.Thread(target=self._build_quietly, name="tandem-index")
        self._thread.daemon = True
        self._thread.start()

    def _build_quietly(self) -> None:
        try:
            self.build()
        except Exception:
            log.exception("indexing %s failed", self.root)
        finally:
            self._ready.set()

    def build(self) -> IndexStats:
        """Index every walked file, reusing cached tags; drop files that are gone."""
        started = time.perf_counter()
        with self._lock:
            before = set(self._entries)
        hashes: dict[str, str] = {}
        pending: Pending = []
        seen: set[str] = set()
        parsed = reused = 0
        for path in walk(self.root, max_bytes=self.max_bytes, exclude=self.exclude):
            spec = language_for_path(path.name)
            if spec is None:
                continue
            rel = path.relative_to(self.root).as_posix()
            outcome = self._index_file(path, rel, spec, hashes, pending, newer_only=True)
            if outcome is None:
                continue
            seen.add(rel)
            parsed += outcome
            reused += not outcome
            if len(pending) >= FLUSH_EVERY:
                self.tag_cache.write(pending)
        self.tag_cache.write(pending)
        with self._lock:
            for rel in before - seen:
                self._drop(rel)
            files = len(self._entries)
        self._stats = IndexStats(files, parsed, reused, time.perf_counter() - started)
        self._ready.set()
        return self._stats

    def update(self, path: Path | str) -> None:
        """Re-index one file (after a save); a deleted or now-ignored file is removed."""
        rel = self._rel(path)
        if rel is None:
            return
        full = self.root / rel
        spec = language_for_path(full.name)
        ignored = not full.is_file() or is_ignored(
            self.root, full, max_bytes=self.max_bytes, exclude=self.exclude
        )
        if ignored or spec is None:
            self.remove(full)
            return
        pending: Pending = []
        if self._index_file(full, rel, spec, {}, pending, newer_only=False) is None:
            self.remove(full)
        self.tag_cache.write(pending)

    def remove(self, path: Path | str) -> None:
        rel = self._rel(path)
        if rel is not None:
            with self._lock:
                self._drop(rel)

    def _index_file(
        self,
        path: Path,
        rel: str,
        spec: LanguageSpec,
        hashes: dict[str, str],
        pending: Pending,
        *,
        newer_only: bool,
    ) -> bool | None:
        """Index one file: True if parsed, False if cached, None if it cannot be read."""
        if spec.name not in hashes:
            hashes[spec.name] = _query_hash(spec)
        try:
            st = path.stat()
        except OSError:
            return None
        key = (rel, st.st_mtime_ns, st.st_size, spec.name, spec.grammar_version, TAGS_VERSION)
        key += (hashes[spec.name],)
        value = cached_value(self.tag_cache.get(key))
        parsed = value is None
        if value is None:
            try:
                source = path.read_bytes()
                again = path.stat()
            except OSError:
                return None
            tags = _parse(spec, source, rel)
            # Which names a file uses only feeds popularity: words are enough, and a
            # hundred times cheaper than reference tags on a big file.
            names = tuple({w.decode("ascii") for w in WORDS.findall(source)})
            value = (rows(tags.definitions), tags.imports, names)
            if (again.st_mtime_ns, again.st_size) == (st.st_mtime_ns, st.st_size):
                pending.append((key, value))
        definitions, imports, referenced = value
        names = frozenset(map(sys.intern, referenced))
        entry = _Entry(st.st_mtime_ns, tags_of(definitions), tuple(imports), names)
        with self._lock:
            old = self._entries.get(rel)
            if newer_only and old is not None and old.mtime_ns > entry.mtime_ns:
                return parsed  # a save re-indexed it while this build was reading
            self._drop(rel)
            self._entries[rel] = entry
            for tag in entry.definitions:
                files = self._defs.setdefault(tag.name, {})
                files[rel] = (*files.get(rel, ()), tag)
            self._users.update(entry.referenced)
        return parsed

    def _drop(self, rel: str) -> None:
        """Forget one file (the lock is held)."""
        entry = self._entries.pop(rel, None)
        if entry is None:
            return
        for tag in entry.definitions:
            files = self._defs.get(tag.name)
            if files is not None:
                files.pop(rel, None)
                if not files:
                    del self._defs[tag.name]
        self._users.subtract(entry.referenced)
        for name in entry.referenced:
            if self._users[name] <= 0:
                del self._users[name]

    def _rel(self, path: Path | str) -> str | None:
        full = Path(path)
        if not full.is_absolute():
            full = self.root / full
        full = Path(os.path.abspath(full))
        try:
            return full.relative_to(self.root).as_posix()
        except ValueError:
            try:
                return full.resolve().relative_to(self.root).as_posix()
            except ValueError:
                return None

    # ---- queries -------------------------------------------------------------------------

    def files(self) -> list[Path]:
        with self._lock:
            rels = sorted(self._entries)
        return [self.root / rel for rel in rels]

    def definitions(self, name: str) -> list[IndexedTag]:
        with self._lock:
            found = sorted(self._defs.get(name, {}).items())
        return [IndexedTag(self.root / rel, rel, tag) for rel, tags in found for tag in tags]

    def file_tags(self, path: Path | str) -> FileTags | None:
        """All tags of one indexed file, references included (re-parsed: they are not kept)."""
        rel = self._rel(path)
        with self._lock:
            entry = self._entries.get(rel) if rel is not None else None
        spec = language_for_path(rel) if rel is not None else None
        if rel is None or entry is None or spec is None:
            return None
        try:
            source = (self.root / rel).read_bytes()
        except OSError:
            return FileTags(entry.definitions, (), entry.imports)
        return _parse(spec, source, rel, references=True)

    def rank(
        self,
        names: Iterable[str] | Mapping[str, float],
        near: Path | str | None = None,
        *,
        limit: int | None = None,
    ) -> list[IndexedTag]:
        """Definitions for the names near the cursor, most useful first.

        ``names`` is a list (repeats count) or a Counter (any name -> weight mapping)
        of the identifiers used near the cursor. Each definition of one of those names
        is scored; scores compare in this order:

        1. match: the weight (use count) of its name, plus, for a definition that
           encloses others (a class), the weights of the other given names defined
           inside it, so ``Point`` used with ``.norm`` and ``.scale`` ranks the class
           that has both above another ``Point``;
        2. proximity to ``near``: the same file first, then the fewest folder steps
           between the two files' folders;
        3. popularity: how many workspace files reference the name (aider's
           personalisation, in small);
        4. then path and line, so the order is stable.

        Names that no file defines contribute nothing, and neither do names defined
        in more than ``COMMON_NAME_FILES`` files (``get``, ``add``, ``run``): a
        definition picked among hundreds is noise in a prompt, and scoring them all
        cost milliseconds per request.
        """
        weights = Counter(names)
        near_rel = self._rel(near) if near is not None else None
        near_dir = tuple(near_rel.split("/")[:-1]) if near_rel else ()
        by_file: dict[str, list[Tag]] = {}  # file -> its definitions of the given names
        with self._lock:
            for name in weights:
                defined = self._defs.get(name, {})
                if len(defined) > COMMON_NAME_FILES:
                    continue
                for rel, tags in defined.items():
                    by_file.setdefault(rel, []).extend(tags)
            users = {name: self._users.get(name, 0) for name in weights}
        scored = {
            (rel, tag): _match(tag, tags, weights) for rel, tags in by_file.items() for tag in tags
        }

        def order(item: tuple[tuple[str, Tag], float]) -> tuple[Any, ...]:
            (rel, tag), match = item
            parts = tuple(rel.split("/"))
            same = near_rel is not None and rel == near_rel
            distance = _dir_distance(parts[:-1], near_dir) if near_rel is not None else 0
            return (-match, not same, distance, -users[tag.name], rel, tag.line)

        if limit is None:
            best = sorted(scored.items(), key=order)
        else:
            best = heapq.nsmallest(limit, scored.items(), key=order)
        return [IndexedTag(self.root / rel, rel, tag) for (rel, tag), _ in best]


def _match(tag: Tag, definitions: list[Tag], weights: Mapping[str, float]) -> float:
    """The weight of the tag's name plus that of other given names defined inside it."""
    total = weights[tag.name]
    inside = {
        d.name
        for d in definitions
        if d.name != tag.name
        and d.name in weights
        and tag.start_byte <= d.start_byte
        and d.end_byte <= tag.end_byte
    }
    return total + sum(weights[n] for n in inside)


def _query_hash(spec: LanguageSpec) -> str:
    """The tags query's text, hashed: editing a query re-parses that language's files."""
    try:
        text = (QUERIES / f"{spec.name}-tags.scm").read_bytes()
    except OSError:
        text = b""
    return hashlib.sha1(text + SCHEMA.encode()).hexdigest()[:16]


WORDS = re.compile(rb"[A-Za-z_][A-Za-z0-9_]*")


def _parse(spec: LanguageSpec, source: bytes, rel: str, *, references: bool = False) -> FileTags:
    """A file's tags; a language without a usable query yet gives none rather than failing."""
    try:
        return extract_tags(spec, spec.parser().parse(source), references=references)
    except Exception as exc:
        log.debug("no tags for %s (%s): %s", rel, spec.name, exc)
        return _EMPTY
