"""One editor connection's state and the inline-completion logic, with no LSP types.

The pygls handlers in ``server.py`` convert messages and call these methods;
everything here is plain Python that tests can drive directly. The order of an
inline request: type-ahead (free) -> debounce (optional) -> prompt -> cache
(free) -> one of a bounded number of model calls -> post-process -> cache.
"""

from __future__ import annotations

import asyncio
import gc
import logging
import time
import weakref
from collections.abc import Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from tandem.cache import CompletionCache, TypeAhead, request_key
from tandem.completion import Completion, Prepared, cache_key, finish, prepare
from tandem.config import ConfigError, Settings, load_settings
from tandem.context.documents import MAX_PARSE_BYTES, DocumentStore, Snapshot, uri_path
from tandem.context.engine import ContextEngine, Cursor
from tandem.context.index import WorkspaceIndex
from tandem.context.positions import InvalidPosition
from tandem.context.prompt import PromptBudget
from tandem.context.workspace import excluded as exclusion_reason
from tandem.models import Models, build_models
from tandem.models.errors import ModelError
from tandem.models.redact import warm_up as warm_up_redaction

log = logging.getLogger(__name__)

POSITION_CHARS = 4000  # text before the cursor that identifies a position for the cache

State = Literal["ready", "busy", "error", "inactive"]
StatusSink = Callable[[State, str], None]
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


@dataclass(frozen=True)
class InlineAnswer:
    text: str
    offset: int  # where it is inserted (the cursor)
    source: Literal["typeahead", "cache", "model"]
    elapsed_ms: float


@dataclass
class Session:
    """Everything one connected editor has: settings, models, documents, caches."""

    root: Path | None
    settings: Settings
    status: StatusSink = lambda state, message: None
    warn: WarningSink = lambda message: None  # once per problem, for the editor's log
    documents: DocumentStore = field(default_factory=DocumentStore)
    typeahead: TypeAhead = field(default_factory=TypeAhead)
    stats: Stats = field(default_factory=Stats)

    def __post_init__(self) -> None:
        self.models: Models = build_models(self.settings)
        self.cache = CompletionCache(self.settings.cache_dir / "completions")
        self.index: WorkspaceIndex | None = None
        if self.root is not None:
            self.index = WorkspaceIndex(
                self.root, self.settings.cache_dir, exclude=self.settings.exclude
            )
        self.engine = ContextEngine(self.root or Path.cwd(), self.index, self.settings.exclude)
        self._gate = asyncio.Semaphore(self.settings.max_concurrent)
        self._inflight: dict[str, asyncio.Task[Any]] = {}
        self._superseded: weakref.WeakSet[asyncio.Task[Any]] = weakref.WeakSet()
        self._state: tuple[State, str] | None = None
        self._warming: asyncio.Future[None] | None = None
        # Document events are applied in order on one thread: parsing a big file
        # must not stall message handling, and requests wait only for the edits
        # that arrived before them.
        self._editor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="tandem-documents")
        self._last_edit: asyncio.Future[Any] | None = None
        self._ignored: dict[str, str | None] = {}
        self._cache_reported = False

    # ---- lifecycle -------------------------------------------------------------------------

    def start(self) -> None:
        """Index in the background: a completion before it is done uses what is there."""
        if self.index is not None:
            self.index.start()
        if self.cache.warning:
            self.report_cache()
            self.set_status("ready", self.cache.warning)
        else:
            self.set_status("ready", f"{self.models.completion.describe()}")
        self._warming = asyncio.ensure_future(self._warm_up())
        # The redactor's rules import detect-secrets (~0.1 s): now, not on the first keystroke.
        asyncio.get_running_loop().run_in_executor(None, warm_up_redaction)

    async def _warm_up(self) -> None:
        """Load the tokenizer now, not on the first keystroke; then calm the collector.

        Loading a BPE took ~0.5 s of the first completion. Once the index is built,
        ``gc.freeze()`` moves its ~100k long-lived objects out of the collector's
        generations: full collections dropped from ~70 ms pauses to almost nothing.
        """
        try:
            await self.models.completion.tokenizer()
        except Exception as exc:  # the first completion will report it properly
            log.info("tokenizer warm-up failed: %s", exc)
        if self.index is not None:
            await asyncio.to_thread(self.index.wait)
            gc.freeze()

    async def reconfigure(self, options: Mapping[str, Any], source: str) -> None:
        """New settings from the editor: new model clients; the cache and index stay.

        The cache is keyed by model, but type-ahead is not: its suggestions may come
        from the old model, so they go.
        """
        settings = load_settings(self.root, overrides=_flatten(options), overrides_source=source)
        old_exclude = self.settings.exclude
        old, self.settings = self.models, settings
        self.models = build_models(settings)
        self.typeahead = TypeAhead()
        self._gate = asyncio.Semaphore(settings.max_concurrent)
        if settings.exclude != old_exclude:
            self._ignored.clear()
            self.engine.forget_exclusions(settings.exclude)
            if self.index is not None:
                self.index.exclude = settings.exclude
                self.index.start()  # a rebuild drops the files now excluded
        await old.aclose()
        self.set_status("ready", f"{self.models.completion.describe()}")

    def edit(self, apply: Callable[[], Any], what: str) -> None:
        """Run a document event (open, change, close) on the document thread, in order."""
        future = asyncio.get_running_loop().run_in_executor(self._editor, apply)

        def report(done: asyncio.Future[Any]) -> None:
            if not done.cancelled() and done.exception() is not None:
                log.warning("%s ignored: %s", what, done.exception())

        future.add_done_callback(report)
        self._last_edit = future

    async def settle(self) -> None:
        """Wait until the document events received so far are applied."""
        last = self._last_edit
        if last is not None and not last.done():
            await asyncio.wait([last])

    async def close(self) -> None:
        if self._warming is not None:
            self._warming.cancel()
        for task in list(self._inflight.values()):
            task.cancel()
        await self.models.aclose()
        if self.index is not None:
            self.index.close()
        self.cache.close()
        self._editor.shutdown(wait=False)

    def report_cache(self) -> None:
        """Warn once that the disk cache is gone, whether at start or when it broke later.

        The cache itself logs to stderr, which editors hide; without this a cache that
        failed mid-session would go unnoticed, or a per-request status would nag.
        """
        if self.cache.warning is not None and not self._cache_reported:
            self._cache_reported = True
            self.warn(self.cache.warning)

    def set_status(self, state: State, message: str) -> None:
        if self._state != (state, message):
            self._state = (state, message)
            self.status(state, message)

    # ---- inline completion -----------------------------------------------------------------

    def budget(self) -> PromptBudget:
        return PromptBudget(total=self.settings.completion.context_tokens)

    def cursor(self, snapshot: Snapshot, line: int, character: int) -> Cursor:
        offset = snapshot.lines.offset(line, character, self.documents.encoding)
        path = Path(uri_path(snapshot.uri))
        syntax = snapshot.parsed or (snapshot.reason or "").startswith("unknown language")
        return Cursor(snapshot.text, offset, path, snapshot.language, snapshot.tree, syntax)

    async def inline(self, uri: str, line: int, character: int) -> InlineAnswer | None:
        """A suggestion at the position, or None when there is nothing good to say.

        A newer request for the same document cancels this one, which aborts its
        HTTP request. Model failures become a status and an empty answer.
        """
        started = time.perf_counter()
        self.stats.requests += 1
        await self.settle()
        document = self.documents.get(uri)
        if document is None:
            return None
        snapshot = document.snapshot()
        excluded = self.excluded(uri, snapshot)
        if excluded is not None:
            self.set_status("inactive", f"{Path(uri_path(uri)).name}: {excluded}")
            return None
        if self._state is not None and self._state[0] == "inactive":
            # "inactive" was about another file; this one can be completed
            self.set_status("ready", self.models.completion.describe())
        try:
            cursor = self.cursor(snapshot, line, character)
        except InvalidPosition as exc:
            log.info("inline completion at an invalid position: %s", exc)
            return None
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
            return await self._inline(uri, cursor, started)
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

    def excluded(self, uri: str, snapshot: Snapshot) -> str | None:
        """Why Tandem will not read this document: binary, too large, ignored or excluded.

        Ignore rules (.gitignore, .tandemignore, the deny lists, the exclude setting) are
        judged once per document and again when an ignore file changes. An excluded
        document gets no completion, chat or code action, and is nobody's snippet.
        """
        reason = snapshot.reason or ""
        if reason.startswith(("binary", "too large")):
            return reason.split(":")[0]
        if uri not in self._ignored:
            verdict = None
            if uri.startswith("file:"):
                path = Path(uri_path(uri))
                verdict = exclusion_reason(
                    self.root or path.parent,
                    path,
                    max_bytes=MAX_PARSE_BYTES,
                    exclude=self.settings.exclude,
                )
            self._ignored[uri] = verdict
        return self._ignored[uri]

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

    async def _inline(self, uri: str, cursor: Cursor, started: float) -> InlineAnswer | None:
        position = self.position_key(cursor)
        known = self.cache.get(position)
        if known is not None:
            self.stats.cache_hits += 1
            if not known:
                return None
            self.typeahead.remember(uri, cursor.text, cursor.offset, known)
            return InlineAnswer(known, cursor.offset, "cache", _ms(started))
        if self.settings.debounce_ms:
            await asyncio.sleep(self.settings.debounce_ms / 1000)
        client = self.models.completion
        try:
            prepared = await prepare(
                self.engine,
                client,
                cursor,
                budget=self.budget(),
                max_tokens=self.settings.completion.max_tokens,
                temperature=self.settings.completion.temperature,
                neighbours=self.neighbours(uri, cursor),
            )
            result = await self._generate(prepared, started)
        except ModelError as exc:
            self.stats.errors += 1
            self.set_status("error", exc.one_line())
            return None
        if result.cached:
            self.stats.cache_hits += 1
        else:
            self.set_status("ready", client.describe())
        self.cache.set(position, result.text)
        if not result.text:
            return None
        self.typeahead.remember(uri, cursor.text, cursor.offset, result.text)
        source: Literal["cache", "model"] = "cache" if result.cached else "model"
        return InlineAnswer(result.text, cursor.offset, source, _ms(started))

    async def _generate(self, prepared: Prepared, started: float) -> Completion:
        client = self.models.completion
        if self.cache.get(cache_key(client, prepared)) is not None:
            return await finish(client, prepared, self.cache, started)
        async with self._gate:
            self.stats.model_calls += 1
            self.set_status("busy", f"asking {client.describe()}")
            try:
                return await finish(client, prepared, self.cache, started)
            finally:
                if self._state and self._state[0] == "busy":
                    self.set_status("ready", client.describe())

    def neighbours(self, uri: str, cursor: Cursor) -> list[tuple[Path, str]]:
        """Open documents of the same language, most recently edited first.

        An excluded document (a .env open in a tab) is never one: its text would be
        quoted in another file's prompt.
        """
        out: list[tuple[Path, str]] = []
        for doc in self.documents.recent(12, exclude=uri):
            if doc.language is None or doc.language != cursor.spec:
                continue
            if self.excluded(doc.uri, doc.snapshot()) is None:
                out.append((Path(uri_path(doc.uri)), doc.text))
        return out[:8]

    # ---- documents and workspace ------------------------------------------------------------

    async def file_changed(self, uri: str) -> None:
        if uri.endswith((".gitignore", ".tandemignore")):
            self._ignored.clear()
            self.engine.forget_exclusions()
        if self.index is not None and uri.startswith("file:"):
            await asyncio.to_thread(self.index.update, Path(uri_path(uri)))


def _ms(started: float) -> float:
    return (time.perf_counter() - started) * 1000


def _flatten(options: Mapping[str, Any]) -> dict[str, Any]:
    """Editor settings, either bare or under a "tandem" section."""
    inner = options.get("tandem", options) if isinstance(options, Mapping) else {}
    return dict(inner) if isinstance(inner, Mapping) else {}


def load_session_settings(root: Path | None, options: Mapping[str, Any] | None) -> Settings:
    """Settings for a new session; invalid editor options fall back to the files' settings."""
    try:
        return load_settings(
            root, overrides=_flatten(options or {}), overrides_source="initializationOptions"
        )
    except ConfigError:
        log.exception("invalid initializationOptions; using the configuration files only")
        return load_settings(root)
