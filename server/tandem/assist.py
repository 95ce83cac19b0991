"""Chat and code actions on a selection, for one editor session, with no LSP types.

The language server's handlers (``tandem.lsp.chat``) convert messages and call these.
A selection goes to the chat model with what a reader needs to understand it: the
headers of the scopes around it and the definitions, from other files, of the names it
uses (found by the same context engine as completions). Answers stream; cancelling the
task that awaits them aborts the HTTP request.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from pathlib import Path, PurePosixPath

from tandem.chat_prompts import (
    Action,
    Layout,
    Selection,
    action_messages,
    chat_messages,
    extract_code,
    fit,
    layout,
    where_tests_go,
)
from tandem.context.documents import Snapshot, uri_path
from tandem.context.engine import ContextEngine, Cursor
from tandem.context.positions import InvalidPosition, LineIndex
from tandem.context.prompt import MAX_DEFINITIONS, relative, scope_headers
from tandem.models import ChatMessage, ChatOptions
from tandem.models.base import bounded
from tandem.models.errors import ModelError
from tandem.models.redact import restore
from tandem.models.tokens import EstimatedTokenizer
from tandem.session import Session, snapshot_cursor

Position = tuple[int, int]  # (line, character) in the session's position encoding
Span = tuple[Position, Position]

NAME_WINDOW_LINES = 30  # nearby_names looks this far back from its offset
MAX_NAME_WINDOWS = 4  # a longer selection's first lines add no definitions


class BadRequest(ValueError):
    """The editor asked about something that is not there: unknown document, bad range."""


class StaleDocument(Exception):
    """The document changed since the code action was offered; its range may be wrong."""


class AnswerError(Exception):
    """The model failed, or gave nothing usable; the message is one line for the user."""


class Excluded(Exception):
    """The document is excluded (ignore rules, the secrets deny list, the exclude setting)."""


@dataclass(frozen=True)
class Picked:
    """A selection in one version of a document, with the context that goes with it."""

    snapshot: Snapshot
    span: Span
    selection: Selection
    layout: Layout


@dataclass(frozen=True)
class Replacement:
    """New text for the selected range of ``uri`` at ``version``."""

    uri: str
    version: int
    span: Span
    text: str


@dataclass(frozen=True)
class Insertion:
    """Text to insert at ``at`` in ``uri``; ``create`` when the file does not exist yet."""

    uri: str
    version: int | None  # None: a file the editor does not have open
    at: Position
    text: str
    create: bool = False


# ---- finding the selection ------------------------------------------------------------------


def locate(session: Session, uri: str, span: Span, version: int | None = None) -> Snapshot:
    """The document's current snapshot, once the span is known to fit it."""
    document = session.documents.get(uri)
    if document is None:
        raise BadRequest(f"document not open: {uri}")
    snapshot = document.snapshot()
    if version is not None and snapshot.version != version:
        raise StaleDocument(f"{uri} changed (version {version} -> {snapshot.version})")
    offsets(session, snapshot, span)
    return snapshot


def offsets(session: Session, snapshot: Snapshot, span: Span) -> tuple[int, int]:
    encoding = session.documents.encoding
    try:
        start = snapshot.lines.offset(*span[0], encoding)
        end = snapshot.lines.offset(*span[1], encoding)
    except InvalidPosition as exc:
        raise BadRequest(f"invalid range: {exc}") from None
    if end < start:
        raise BadRequest("invalid range: it ends before it starts")
    return start, end


def actionable(session: Session, uri: str, span: Span) -> bool:
    """Whether code actions fit here: an open document and a range holding some code."""
    try:
        snapshot = locate(session, uri, span)
        start, end = offsets(session, snapshot, span)
    except BadRequest:
        return False
    if session.excluded(uri, snapshot) is not None:
        return False
    return bool(snapshot.text[start:end].strip())


async def pick(session: Session, uri: str, span: Span, version: int | None = None) -> Picked:
    snapshot = locate(session, uri, span, version)
    refuse_excluded(session, uri, snapshot)
    start, end = offsets(session, snapshot, span)
    line_start = snapshot.lines.line_bounds(snapshot.lines.line_of(start))[0]
    shown, place = layout(snapshot.text[start:end], snapshot.text[line_start:start])
    path = Path(uri_path(uri))
    engine = session.workspace.engine
    scopes, definitions = await asyncio.to_thread(
        selection_context,
        engine,
        snapshot_cursor(snapshot, start),
        end,
        session.settings.chat.context_tokens,
    )
    first, last = span[0][0] + 1, span[1][0] + 1
    if last > first and span[1][1] == 0:
        last -= 1  # a selection of whole lines ends at the start of the next
    selection = Selection(
        path=relative(path, engine.root) if uri.startswith("file:") else path.name,
        code=shown,
        language=snapshot.language.name if snapshot.language else None,
        lines=(first, last),
        scopes=scopes,
        definitions=definitions,
    )
    return Picked(snapshot, span, selection, place)


def refuse_excluded(session: Session, uri: str, snapshot: Snapshot) -> None:
    """No chat or code action on an excluded document: nothing of it may reach a model."""
    reason = session.excluded(uri, snapshot)
    if reason is not None:
        name = Path(uri_path(uri)).name
        session.set_status("inactive", f"{name}: {reason}")
        raise Excluded(f"{name} is excluded from Tandem ({reason}): no chat or code actions")


def selection_context(
    engine: ContextEngine, cursor: Cursor, end: int, budget: int
) -> tuple[list[str], list[tuple[str, str]]]:
    """Headers of the scopes around the selection [cursor.offset, end), and definitions.

    The engine finds definitions of the names near an offset (the lines before it),
    so a long selection is read in windows from its end. The cap is a soft one, so an
    estimate counts the tokens: gathering needs no model.
    """
    cursor = engine.parse(cursor)
    text, start = cursor.text, cursor.offset
    # Scopes from the selection's first code: at column 0 of an indented line the cursor
    # would be outside every Python block.
    body = start + len(text[start:end]) - len(text[start:end].lstrip())
    anchor = body if body < end else start
    source = text.encode("utf-8")
    headers = scope_headers(cursor.tree, cursor.spec, source, len(text[:anchor].encode("utf-8")))
    tokenizer = EstimatedTokenizer("estimate")
    found: list[tuple[str, str]] = []
    used = 0
    for offset in _windows(text, start, end):
        candidates = engine.candidates(replace(cursor, offset=offset), tokenizer)
        for part in candidates.definitions:
            if (part.path, part.text) in found or len(found) >= MAX_DEFINITIONS:
                continue
            if used + part.tokens > budget:
                continue
            found.append((part.path, part.text))
            used += part.tokens
    return [h for _, h in headers], found


def _windows(text: str, start: int, end: int) -> list[int]:
    """Offsets from ``end`` back towards ``start``, a name window apart."""
    out = [end]
    while len(out) < MAX_NAME_WINDOWS:
        at = out[-1]
        for _ in range(NAME_WINDOW_LINES):
            at = text.rfind("\n", 0, at)
            if at <= start:
                return out
        out.append(at)
    return out


# ---- asking the model -----------------------------------------------------------------------


async def ask(
    session: Session,
    messages: Sequence[ChatMessage],
    on_delta: Callable[[str], None] | None = None,
) -> str:
    """Stream the chat model's answer, passing each piece on; the whole answer at the end.

    A model failure becomes the error status and an ``AnswerError``; cancellation is
    passed on untouched (it is what aborts the HTTP request).
    """
    client = session.models.chat
    chat = session.settings.chat
    options = ChatOptions(max_tokens=chat.max_tokens, temperature=chat.temperature)
    pieces: list[str] = []
    session.set_status("busy", f"asking {client.describe()}")
    stream = bounded(client.chat(messages, options), options.max_tokens, client.describe())
    try:
        async for piece in stream:
            if piece:
                pieces.append(piece)
                if on_delta is not None:
                    on_delta(piece)
    except ModelError as exc:
        session.stats.errors += 1
        message = " ".join(exc.one_line().split())
        session.set_status("error", message)
        raise AnswerError(message) from exc
    except asyncio.CancelledError:
        session.set_status("ready", session.models.completion.describe())
        raise
    session.set_status("ready", session.models.completion.describe())
    return "".join(pieces)


async def chat(
    session: Session,
    uri: str,
    span: Span,
    question: str,
    history: Sequence[ChatMessage] = (),
    on_delta: Callable[[str], None] | None = None,
) -> str:
    picked = await pick(session, uri, span)
    return await ask(session, chat_messages(question, picked.selection, history), on_delta)


async def _code(session: Session, messages: Sequence[ChatMessage], source: str) -> str:
    """The code of the answer, with the secrets of ``source`` it was shown redacted put back.

    Writing ``<redacted:...>`` into the file would destroy the real value; a placeholder
    that cannot be traced to one secret of ``source`` refuses the edit instead.
    """
    code = extract_code(await ask(session, messages))
    if code is None:
        raise AnswerError("the model answered without any code")
    restored = restore(code, source)
    if restored is None:
        raise AnswerError(
            "the answer holds a redacted secret (<redacted:...>) that cannot be put back; "
            "nothing was changed"
        )
    return restored


async def rewrite(
    session: Session, action: Action, uri: str, span: Span, version: int | None = None
) -> Replacement:
    """Fix or document the selection: the model's code, indented to take its place."""
    picked = await pick(session, uri, span, version)
    # The edit replaces the selection in place: secrets of this document may be put back.
    code = await _code(session, action_messages(action, picked.selection), picked.snapshot.text)
    return Replacement(uri, picked.snapshot.version, span, fit(code, picked.layout))


async def write_tests(
    session: Session, uri: str, span: Span, version: int | None = None, *, new_files: bool
) -> Insertion:
    """Tests for the selection: in a test file next to the source, or at the file's end.

    A test file is used when the editor can create files (``new_files``) and the
    document is a file; an existing one, open or on disk, gets the tests at its end.
    """
    picked = await pick(session, uri, span, version)
    language = picked.selection.language
    tests_name = None
    if new_files and uri.startswith("file:"):
        tests_name = where_tests_go(picked.selection.path, language)
    encoding = session.documents.encoding
    if tests_name is None:
        code = await _code(session, action_messages("tests", picked.selection), "")
        snapshot = picked.snapshot
        return _append(uri, snapshot.version, snapshot.lines, code, language, encoding)
    target = Path(uri_path(uri)).with_name(PurePosixPath(tests_name).name)
    # New code elsewhere: a placeholder there is refused, never filled with a copied secret.
    code = await _code(session, action_messages("tests", picked.selection, tests_name), "")
    open_doc = session.documents.get(target.as_uri())
    if open_doc is not None:
        snap = open_doc.snapshot()
        return _append(snap.uri, snap.version, snap.lines, code, language, encoding)
    if target.exists():
        try:
            existing = target.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            raise AnswerError(f"cannot read {target}: {exc}") from None
        lines = LineIndex(existing)
        return _append(target.as_uri(), None, lines, code, language, encoding)
    return Insertion(target.as_uri(), None, (0, 0), code + "\n", create=True)


def _append(
    uri: str,
    version: int | None,
    lines: LineIndex,
    code: str,
    language: str | None,
    encoding: str,
) -> Insertion:
    """Insert ``code`` at the end of a file, a blank line (two in Python) below its text."""
    text = lines.text
    blank = 2 if language == "python" else 1
    trailing = text[len(text.rstrip("\r\n")) :].count("\n")
    gap = "\n" * max(0, blank + 1 - trailing) if text.strip() else ""
    return Insertion(uri, version, lines.position(len(text), encoding), gap + code + "\n")
