"""One editor connection's state and the inline-completion logic, with no LSP types.

The session holds what belongs to one connection: the open documents, the requests in
flight, type-ahead and the status shown to the user. Models, index, context engine,
cache and exclusion rules are the ``Workspace``'s, built by ``open_workspace`` as for
every other entry point. The pygls handlers (``tandem.lsp``) and the chat and code
actions (``tandem.assist``) call these methods; everything here is plain Python that
tests can drive directly. The order of an inline request: type-ahead (free) -> position
cache (free) -> debounce (optional) -> prompt -> cache -> one of a bounded number of
model calls -> post-process -> cache.
"""

from __future__ import annotations

import asyncio
import logging
import time
import weakref
from collections.abc import AsyncIterator, Callable, Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Any, Literal

from tandem import stages
from tandem.cache import CompletionCache, TypeAhead, request_key
from tandem.completion import finish, prepare
from tandem.config import Settings, editor_options, load_settings
from tandem.context.documents import MAX_PARSE_BYTES, DocumentStore, Snapshot, uri_path
from tandem.context.engine import Cursor
from tandem.context.positions import InvalidPosition
from tandem.context.reasons import Reason, Why
from tandem.document_events import INLINE_EDIT_CHARS, DocumentEvents
from tandem.inflight import Typing, Watch
from tandem.models import Models
from tandem.models.errors import ModelError
from tandem.status import State, StatusLine, StatusSink
from tandem.workspace import Neighbour, Workspace

log = logging.getLogger(__name__)

POSITION_CHARS = 4000  # text before the cursor that identifies a position for the cache
FLUSH_AFTER = 0.5  # seconds: the cache's disk writes, when no answer is written before
WarningSink = Callable[[str], None]


@dataclass
class Stats:
    """Counters kept on this machine only (shown in logs; nothing is sent anywhere)."""

    requests: int = 0
    typeahead_hits: int = 0
    cache_hits: int = 0
    model_calls: int = 0
    cancelled: int = 0
    errors: int = 0
    shown: int = 0
    accepted: int = 0
    partially_accepted: int = 0
    reused: int = 0  # answered by following a model call already in flight
    debounced: int = 0  # held before a new call (debounce_ms or the adaptive one)
    prefetched: int = 0  # calls started after an accept, at the new cursor
    wasted: int = 0  # calls cancelled after the model had started


@dataclass(frozen=True)
class InlineAnswer:
    text: str
    offset: int  # where it is inserted (the cursor)
    source: Literal["typeahead", "cache", "model", "reused"]
    elapsed_ms: float


@dataclass
class Session:
    """What one connected editor has: documents, requests in flight, type-ahead, status."""

    workspace: Workspace
    status: StatusSink = lambda state, message: None
    warn: WarningSink = lambda message: None  # once per problem, for the editor's log
    documents: DocumentStore = field(default_factory=DocumentStore)
    typeahead: TypeAhead = field(default_factory=TypeAhead)
    stats: Stats = field(default_factory=Stats)

    def __post_init__(self) -> None:
        if self.workspace.cache is None:
            raise ValueError("an editor session needs a workspace with a completion cache")
        self.cache: CompletionCache = self.workspace.cache
        self.cache.write_behind = True  # flushed after each answer (after_answer)
        self._flush: asyncio.TimerHandle | None = None
        self.line = StatusLine(self.status, self.settings.max_concurrent)
        self._inflight: dict[str, asyncio.Task[Any]] = {}
        self._superseded: weakref.WeakSet[asyncio.Task[Any]] = weakref.WeakSet()
        self._warming: asyncio.Future[None] | None = None
        self.events = DocumentEvents()  # requests wait only for the edits before them
        self._cache_reported = False
        self.typing = Typing(self, self.line.full, snapshot_cursor)  # inflight.py

    @property
    def settings(self) -> Settings:
        return self.workspace.settings

    @property
    def models(self) -> Models:
        return self.workspace.models

    # ---- lifecycle -------------------------------------------------------------------------

    def start(self) -> None:
        """Index in the background: a completion before it is done uses what is there."""
        if self.workspace.index is not None:
            self.workspace.index.start()
        if self.cache.warning:
            self.report_cache()
            self.set_status("ready", self.cache.warning)
        else:
            self.set_status("ready", f"{self.models.completion.describe()}")
        self._warming = asyncio.ensure_future(self.workspace.warm_up())

    async def reconfigure(self, options: Mapping[str, Any], source: str) -> None:
        """New settings from the editor: new model clients; the cache and index stay.

        The cache is keyed by model, but type-ahead is not: its suggestions may come
        from the old model, so they go.
        """
        settings = load_settings(
            self.workspace.root, overrides=editor_options(options), overrides_source=source
        )
        old = self.workspace.reconfigure(settings)
        self.typeahead = TypeAhead()
        self.typing.close()  # calls in flight are the old model's
        self.line.limit(settings.max_concurrent)
        await old.aclose()
        self.set_status("ready", f"{self.models.completion.describe()}")

    def edit(self, apply: Callable[[], Any], what: str, size: int = INLINE_EDIT_CHARS + 1) -> None:
        """Apply a document event (open, change, close) in order (``DocumentEvents``)."""
        self.events.apply(apply, what, size)

    def prepare_opened(self, uri: str) -> None:
        """Do a new document's first-request work now (``ContextEngine.prepare``), at the
        loop's next turn once its didOpen is applied.

        An editor opens a file well before the first keystroke in it, so the first
        request finds both ready (2-3 ms of it on a 300-line file, issue 12); no delay is
        added, and a request already queued behind the didOpen does the same work no
        later than it would have. Big documents are prepared on a worker thread.
        """
        self.events.after(partial(self._prepare, uri))

    def _prepare(self, uri: str) -> None:
        document = self.documents.get(uri)
        if document is None:
            return
        snapshot = document.snapshot()
        if snapshot.tree is None or snapshot.language is None:
            return
        if self.excluded(uri, snapshot) is not None:
            return  # nothing is read for a document Tandem will not complete
        engine, path = self.workspace.engine, Path(uri_path(uri))

        def work() -> None:
            try:
                assert snapshot.tree is not None and snapshot.language is not None
                spec, tree, generation = snapshot.language, snapshot.tree, snapshot.generation
                self.workspace.warm_up_language(spec)  # its queries, once
                engine.prepare(spec, tree, path, snapshot.text, generation)
            except Exception as exc:  # the first request will meet it and report it
                log.info("preparing %s failed: %s", uri, exc)

        if len(snapshot.text) > INLINE_EDIT_CHARS:
            asyncio.get_running_loop().run_in_executor(None, work)
        else:
            work()

    async def settle(self) -> None:
        """Wait until the document events received so far are applied."""
        await self.events.settle()

    async def close(self) -> None:
        if self._warming is not None:
            self._warming.cancel()
        for task in list(self._inflight.values()):
            task.cancel()
        self.typing.close()
        if self._flush is not None:
            self._flush.cancel()
        log.info("session counters: %s", self.stats)
        await self.workspace.aclose()
        self.events.close()

    def report_cache(self) -> None:
        """Warn once that the disk cache is gone, whether at start or when it broke later.

        The cache itself logs to stderr, which editors hide; without this a cache that
        failed mid-session would go unnoticed, or a per-request status would nag.
        """
        if self.cache.warning is not None and not self._cache_reported:
            self._cache_reported = True
            self.warn(self.cache.warning)

    def set_status(self, state: State, message: str) -> None:
        self.line.set(state, message)

    # ---- inline completion -----------------------------------------------------------------

    def cursor(self, snapshot: Snapshot, line: int, character: int) -> Cursor:
        return snapshot_cursor(
            snapshot, snapshot.lines.offset(line, character, self.documents.encoding)
        )

    async def inline(
        self, uri: str, line: int, character: int, manual: bool = False
    ) -> InlineAnswer | None:
        """A suggestion at the position, or None when there is nothing good to say.

        A newer request for the same document cancels this one, which aborts its
        HTTP request. Model failures become a status and an empty answer.
        """
        started = time.perf_counter()
        self.stats.requests += 1
        record = stages.begin()  # issue 12: per-stage timers (off: None, nothing done)
        answer = None
        try:
            answer = await self._inline_timed(uri, line, character, started, manual)
            return answer
        finally:
            stages.end(record, answer.source if answer is not None else "none")

    async def _inline_timed(
        self, uri: str, line: int, character: int, started: float, manual: bool
    ) -> InlineAnswer | None:
        with stages.stage("settle (wait for edits)"):
            await self.settle()
        stages.note("document apply (last edit)", self.events.applied_ms)
        document = self.documents.get(uri)
        if document is None:
            return None
        snapshot = document.snapshot()
        excluded = self.excluded(uri, snapshot)
        if excluded is not None:
            self.set_status("inactive", f"{Path(uri_path(uri)).name}: {excluded}")
            return None
        if self.line.state == "inactive":
            # "inactive" was about another file; this one can be completed
            self.set_status("ready", self.models.completion.describe())
        try:
            cursor = self.cursor(snapshot, line, character)
        except InvalidPosition as exc:
            log.info("inline completion at an invalid position: %s", exc)
            return None
        with stages.stage("type-ahead"):
            rest = self.typeahead.lookup(uri, cursor.text, cursor.offset)
        if rest is not None:
            self.stats.typeahead_hits += 1
            return InlineAnswer(rest, cursor.offset, "typeahead", _ms(started))
        task = asyncio.current_task()
        previous = self._inflight.get(uri)
        if previous is not None and previous is not task and not previous.done():
            self._superseded.add(previous)
            previous.cancel()
        if task is not None:
            self._inflight[uri] = task
        try:
            return await self._inline(uri, cursor, started, manual)
        except asyncio.CancelledError:
            self.stats.cancelled += 1
            if task is not None and task in self._superseded and task.cancelling() == 1:
                # Replaced by a newer request, not cancelled by the editor: an empty
                # answer, since an error response would be logged as a failure.
                task.uncancel()
                return None
            raise
        finally:
            self.report_cache()
            if task is not None:
                self._superseded.discard(task)
                if self._inflight.get(uri) is task:
                    del self._inflight[uri]

    def excluded(self, uri: str, snapshot: Snapshot) -> Reason | None:
        """Why Tandem will not read this document: binary, too large, ignored or excluded.

        Ignore rules (.gitignore, .tandemignore, the deny lists, the exclude setting) are
        the workspace's, judged once per file and again when an ignore file changes. An
        excluded document gets no completion, chat or code action, and is nobody's snippet.
        """
        reason = snapshot.reason
        if reason is not None and reason.why in (Why.BINARY, Why.TOO_LARGE):
            return Reason(reason.why)  # the short form: "binary", "too large"
        if not uri.startswith("file:"):
            return None
        return self.workspace.excluded(Path(uri_path(uri)), max_bytes=MAX_PARSE_BYTES)

    def position_key(self, cursor: Cursor) -> str:
        """A cheap key for "this text around this cursor", looked up before any prompt work.

        The prompt key needs the whole prompt built (~10 ms on a big file); this one
        needs two slices of text, so a repeated request costs well under a millisecond.
        """
        client = self.models.completion
        body = {
            "path": str(cursor.path),
            "before": cursor.text[max(0, cursor.offset - POSITION_CHARS) : cursor.offset],
            "after": cursor.text[cursor.offset : cursor.offset + POSITION_CHARS // 4],
            "budget": self.settings.completion.context_tokens,
            "max_tokens": self.settings.completion.max_tokens,
        }
        return request_key(client.describe(), client.template.name, "position", body)

    async def _inline(
        self, uri: str, cursor: Cursor, started: float, manual: bool
    ) -> InlineAnswer | None:
        with stages.stage("position cache"):
            position = self.position_key(cursor)
            known = self.cache.get(position)
        if known is not None:
            self.stats.cache_hits += 1
            if not known:
                return None
            self.typeahead.remember(uri, cursor.text, cursor.offset, known)
            return InlineAnswer(known, cursor.offset, "cache", _ms(started))
        # A call in flight that this position extends, the debounce, the new call: inflight.py
        ask = partial(self.ask, uri, cursor, started)
        return await self.typing.complete(uri, cursor, ask, manual=manual)  # type: ignore[no-any-return]

    async def ask(
        self, uri: str, cursor: Cursor, started: float, watch: Watch
    ) -> InlineAnswer | None:
        """Prompt, cache, one model call, post-processing: the answer at ``cursor``."""
        position = self.position_key(cursor)
        client = self.models.completion
        engine = self.workspace.engine
        try:
            prepared = await prepare(
                engine,
                client,
                cursor,
                budget=self.workspace.completion_budget(),
                max_tokens=self.settings.completion.max_tokens,
                temperature=self.settings.completion.temperature,
                neighbours=self._neighbours_timed(uri, cursor),
            )
            gate = watch.gate(self._model_call())
            result = await finish(client, prepared, self.cache, started, gate, watch.piece)
        except ModelError as exc:
            self.stats.errors += 1
            self.set_status("error", exc.one_line())
            return None
        if result.cached:
            self.stats.cache_hits += 1
        elif self.line.state != "busy":  # busy: ready comes after
            self.set_status("ready", client.describe())
        self.cache.set(position, result.text)
        self._flush_soon()
        if not result.text:
            return None
        self.typeahead.remember(uri, cursor.text, cursor.offset, result.text)
        source: Literal["cache", "model"] = "cache" if result.cached else "model"
        return InlineAnswer(result.text, cursor.offset, source, _ms(started))

    def after_answer(self) -> None:
        """An answer was written to the editor: now the cache's disk writes."""
        if self._flush is not None:
            self._flush.cancel()
            self._flush = None
        self.cache.flush()

    def _flush_soon(self) -> None:
        """Flush the cache's writes even if no answer follows (a prefetch, a call whose
        request was cancelled): at the latest ``FLUSH_AFTER`` seconds from now."""
        if self._flush is None:
            self._flush = asyncio.get_running_loop().call_later(FLUSH_AFTER, self.after_answer)

    @asynccontextmanager
    async def _model_call(self) -> AsyncIterator[None]:
        """One of at most ``max_concurrent`` model calls, shown as busy while it runs long."""
        async with self.line.call(self.models.completion.describe()):
            self.stats.model_calls += 1
            yield

    def _neighbours_timed(self, uri: str, cursor: Cursor) -> list[tuple[Path, str]]:
        with stages.stage("neighbours"):
            return self.neighbours(uri, cursor)

    def neighbours(self, uri: str, cursor: Cursor) -> list[tuple[Path, str]]:
        """Open documents of the same language, most recently edited first.

        An excluded document (a .env open in a tab) is never one: its text would be
        quoted in another file's prompt.
        """

        def reader(doc: Any) -> Callable[[], str | None]:
            snapshot = doc.snapshot()
            return lambda: None if self.excluded(doc.uri, snapshot) else snapshot.text

        candidates = (
            Neighbour(Path(uri_path(doc.uri)), doc.language, reader(doc))
            for doc in self.documents.recent(12, exclude=uri)
        )
        return self.workspace.neighbours(cursor, candidates)

    # ---- documents and workspace ------------------------------------------------------------

    async def file_changed(self, uri: str) -> None:
        if uri.endswith((".gitignore", ".tandemignore")):
            self.workspace.ignore_rules_changed()
        index = self.workspace.index
        if index is not None and uri.startswith("file:"):
            await asyncio.to_thread(index.update, Path(uri_path(uri)))


def snapshot_cursor(snapshot: Snapshot, offset: int) -> Cursor:
    """A cursor in one version of a document, with the tree the document keeps.

    A document too large or binary to parse is completed from plain-text windows only;
    one of an unknown language is still searched for names (``syntax``).
    """
    path = Path(uri_path(snapshot.uri))
    unknown = snapshot.reason is not None and snapshot.reason.why is Why.UNKNOWN_LANGUAGE
    syntax = snapshot.parsed or unknown
    text, spec, tree, version = snapshot.text, snapshot.language, snapshot.tree, snapshot.generation
    return Cursor(text, offset, path, spec, tree, syntax, False, version, snapshot.change)


def _ms(started: float) -> float:
    return (time.perf_counter() - started) * 1000
