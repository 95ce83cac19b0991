"""Chat on a selection and code actions (Explain, Fix, Add docstring, Write tests).

Thin handlers: they check and convert LSP messages and call ``tandem.assist``, which
knows nothing of LSP. ``tandem.chat`` streams the answer as ``tandem/chatDelta``
notifications when the client gives a token, like Copilot Chat's and Tabby's chat
panels; the result is the whole answer. Code actions are offered for free and cost a
model call only when ``codeAction/resolve`` asks for one; Explain is a ``tandem.chat``
command for the editor to show as a chat.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from lsprotocol import types as t
from pygls.exceptions import JsonRpcException, JsonRpcInvalidParams

from tandem import assist
from tandem.chat_prompts import parse_history
from tandem.lsp.connection import CHAT, CHAT_DELTA, TandemServer
from tandem.models.base import ChatMessage

EXPLAIN_QUESTION = "Explain this code"


@dataclass(frozen=True)
class Offer:
    action: str
    title: str
    kind: t.CodeActionKind


OFFERS = (
    # Explain edits nothing, so it is neither a fix nor a refactoring: the empty kind.
    Offer("explain", "Tandem: Explain", t.CodeActionKind.Empty),
    Offer("fix", "Tandem: Fix", t.CodeActionKind.QuickFix),
    Offer("docstring", "Tandem: Add docstring/comments", t.CodeActionKind.RefactorRewrite),
    # Writes a new file (or the end of this one): a source action, like organize imports.
    Offer("tests", "Tandem: Write tests", t.CodeActionKind.Source),
)
KINDS = [o.kind for o in OFFERS]


@dataclass(frozen=True)
class ChatRequest:
    uri: str
    span: assist.Span
    question: str
    token: str | int | None
    history: list[ChatMessage]


def register(server: TandemServer) -> None:
    """Add the chat command and the code-action handlers to ``server``."""

    @server.command(CHAT)
    async def chat(ls: TandemServer, *args: Any) -> dict[str, str]:
        follow_cancel(ls)
        with response_errors():
            request = chat_request(args)
            session = ls.require()
            await session.settle()

            def on_delta(piece: str) -> None:
                if request.token is not None:
                    ls.protocol.notify(CHAT_DELTA, {"token": request.token, "delta": piece})

            answer = await assist.chat(
                session, request.uri, request.span, request.question, request.history, on_delta
            )
        return {"answer": answer}

    options = t.CodeActionOptions(code_action_kinds=KINDS, resolve_provider=True)

    @server.feature(t.TEXT_DOCUMENT_CODE_ACTION, options)
    async def code_actions(ls: TandemServer, params: t.CodeActionParams) -> list[t.CodeAction]:
        """The four actions, without asking the model; none where there is no code."""
        session = ls.session
        if session is not None:
            await session.settle()
        uri, span = params.text_document.uri, span_of(params.range)
        if session is None or not assist.actionable(session, uri, span):
            return []
        document = session.documents.get(uri)
        version = document.version if document is not None else None
        only = params.context.only
        out = []
        for offer in OFFERS:
            if only is not None and not any(_within(offer.kind, kind) for kind in only):
                continue
            data = {"uri": uri, "range": range_json(span), "action": offer.action}
            action = t.CodeAction(offer.title, kind=offer.kind, data={**data, "version": version})
            if offer.action == "explain":
                action.command = explain_command(CHAT, uri, span)
            out.append(action)
        return out

    @server.feature(t.CODE_ACTION_RESOLVE)
    async def resolve(ls: TandemServer, action: t.CodeAction) -> t.CodeAction:
        with response_errors():
            name, uri, span, version = action_data(action.data)
            if name == "explain":
                action.command = explain_command(CHAT, uri, span)
                return action
            session = ls.require()
            await session.settle()
            versioned, create = edit_support(ls.client_capabilities)
            if name == "tests":
                insertion = await assist.write_tests(session, uri, span, version, new_files=create)
                action.edit = insertion_edit(insertion, versioned)
            else:
                replacement = await assist.rewrite(session, name, uri, span, version)
                action.edit = replacement_edit(replacement, versioned)
        return action


# ---- requests in, results out ---------------------------------------------------------------


@contextmanager
def response_errors() -> Iterator[None]:
    """Turn our failures into JSON-RPC errors with one-line messages (cancellation passes)."""
    try:
        yield
    except assist.BadRequest as exc:
        raise JsonRpcInvalidParams(str(exc)) from None
    except assist.StaleDocument as exc:
        raise JsonRpcException(str(exc), code=t.LSPErrorCodes.ContentModified) from None
    except (assist.AnswerError, assist.Excluded) as exc:
        raise JsonRpcException(str(exc), code=t.LSPErrorCodes.RequestFailed) from None


def follow_cancel(ls: TandemServer) -> None:
    """Make ``$/cancelRequest`` cancel this command's task, which aborts the model request.

    pygls runs a command from inside its own ``workspace/executeCommand`` handler, in a
    task apart from the request's future: a cancel request cancels only that future (and
    answers the client), while the command would run on to the model's last token.
    """
    task = asyncio.current_task()
    futures = getattr(ls.protocol, "_request_futures", None)
    outer = futures.get(ls.protocol.msg_id) if isinstance(futures, Mapping) else None
    if task is None or outer is None or outer is task:
        return
    loop = asyncio.get_running_loop()

    def on_done(future: Any) -> None:
        if future.cancelled():
            loop.call_soon_threadsafe(task.cancel)

    outer.add_done_callback(on_done)


def chat_request(args: Sequence[Any]) -> ChatRequest:
    usage = "tandem.chat takes one argument: {uri, range, question, token?, history?}"
    if len(args) != 1 or not isinstance(args[0], Mapping):
        raise assist.BadRequest(usage)
    arg = args[0]
    uri, question, token = arg.get("uri"), arg.get("question"), arg.get("token")
    if not isinstance(uri, str) or not uri:
        raise assist.BadRequest(f"{usage}: uri is missing")
    if not isinstance(question, str) or not question.strip():
        raise assist.BadRequest(f"{usage}: question is missing or empty")
    if token is not None and (not isinstance(token, str | int) or isinstance(token, bool)):
        raise assist.BadRequest(f"{usage}: token must be a string or an integer")
    try:
        history = parse_history(arg.get("history"))
    except ValueError as exc:
        raise assist.BadRequest(str(exc)) from None
    return ChatRequest(uri, span_json(arg.get("range")), question, token, history)


def action_data(data: Any) -> tuple[Any, str, assist.Span, int | None]:
    """What a code action offered: (action, uri, span, document version)."""
    if not isinstance(data, Mapping):
        raise assist.BadRequest("not a Tandem code action (no data)")
    name, uri, version = data.get("action"), data.get("uri"), data.get("version")
    if name not in {o.action for o in OFFERS} or not isinstance(uri, str):
        raise assist.BadRequest(f"not a Tandem code action: {dict(data)!r}")
    if version is not None and not _is_int(version):
        raise assist.BadRequest("the code action's version is not an integer")
    return name, uri, span_json(data.get("range")), version


def span_json(value: Any) -> assist.Span:
    """A span from an LSP range given as JSON (command arguments and ``data`` are plain)."""
    try:
        start, end = value["start"], value["end"]
        numbers = (start["line"], start["character"], end["line"], end["character"])
    except (TypeError, KeyError):
        raise assist.BadRequest("invalid range: expected {start, end} positions") from None
    if not all(_is_int(n) for n in numbers):
        raise assist.BadRequest("invalid range: lines and characters must be integers")
    return (numbers[0], numbers[1]), (numbers[2], numbers[3])


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def span_of(r: t.Range) -> assist.Span:
    return (r.start.line, r.start.character), (r.end.line, r.end.character)


def lsp_range(span: assist.Span) -> t.Range:
    (a, b), (c, d) = span
    return t.Range(t.Position(a, b), t.Position(c, d))


def range_json(span: assist.Span) -> dict[str, Any]:
    (a, b), (c, d) = span
    return {"start": {"line": a, "character": b}, "end": {"line": c, "character": d}}


def _within(kind: str, only: str) -> bool:
    """LSP kinds are hierarchical: ``refactor`` asks for ``refactor.rewrite`` too."""
    return kind == only or (only != "" and kind.startswith(only + "."))


def explain_command(command: str, uri: str, span: assist.Span) -> t.Command:
    args = {"uri": uri, "range": range_json(span), "question": EXPLAIN_QUESTION}
    return t.Command(title="Tandem: Explain", command=command, arguments=[args])


def edit_support(caps: t.ClientCapabilities) -> tuple[bool, bool]:
    """Whether the client takes versioned document edits, and whether it can create files."""
    workspace_edit = caps.workspace.workspace_edit if caps.workspace else None
    versioned = bool(workspace_edit and workspace_edit.document_changes)
    operations = (workspace_edit.resource_operations or []) if workspace_edit else []
    return versioned, versioned and t.ResourceOperationKind.Create in operations


def replacement_edit(r: assist.Replacement, versioned: bool) -> t.WorkspaceEdit:
    """Replace the range only; versioned, so a client that changed meanwhile refuses it."""
    edit = t.TextEdit(lsp_range(r.span), r.text)
    if not versioned:
        return t.WorkspaceEdit(changes={r.uri: [edit]})
    doc = t.OptionalVersionedTextDocumentIdentifier(version=r.version, uri=r.uri)
    return t.WorkspaceEdit(document_changes=[t.TextDocumentEdit(doc, [edit])])


def insertion_edit(i: assist.Insertion, versioned: bool) -> t.WorkspaceEdit:
    at = t.Position(*i.at)
    edit = t.TextEdit(t.Range(at, at), i.text)
    if not versioned:
        return t.WorkspaceEdit(changes={i.uri: [edit]})
    doc = t.OptionalVersionedTextDocumentIdentifier(version=i.version, uri=i.uri)
    changes: list[Any] = [t.TextDocumentEdit(doc, [edit])]
    if i.create:
        options = t.CreateFileOptions(overwrite=False, ignore_if_exists=True)
        changes.insert(0, t.CreateFile(uri=i.uri, options=options))
    return t.WorkspaceEdit(document_changes=changes)
