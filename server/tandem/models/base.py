"""The one model interface every caller uses: streaming FIM and streaming chat.

Callers (the completion pipeline, the language server, the reviewer) hold a
``ModelClient`` and never know which provider is behind it. Cancelling the task
that iterates a stream closes the HTTP response, which aborts the request.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass, field, replace
from typing import Any, Literal

from tandem.models.errors import ModelResponseError
from tandem.models.fim import FimTemplate, Snippet
from tandem.models.tokens import Tokenizer

Role = Literal["system", "user", "assistant"]


@dataclass(frozen=True)
class ChatMessage:
    role: Role
    content: str

    def as_dict(self) -> dict[str, str]:
        return {"role": self.role, "content": self.content}


@dataclass(frozen=True)
class FimRequest:
    """What to fill: the text around the cursor plus cross-file snippets."""

    prefix: str
    suffix: str = ""
    snippets: Sequence[Snippet] = ()
    path: str | None = None
    language: str | None = None
    max_tokens: int = 128
    temperature: float = 0.2
    stop: Sequence[str] = ()
    comment: str = "#"  # the file's line comment, for snippets rendered as comments


@dataclass(frozen=True)
class WireRequest:
    """Exactly what a completion sends: the endpoint path and the JSON body.

    Rendered once per completion (``ModelClient.fim_request``); ``tandem context`` prints
    this object and ``ModelClient.send`` sends this object, so what users are shown is
    what the model gets.
    """

    path: str
    body: dict[str, Any]
    chat: bool = False  # the body carries chat messages rather than a prompt
    # Every stop string, enforced as the answer streams in: the body may carry only as
    # many as the server accepts (OpenAI: 4).
    stop: tuple[str, ...] = ()

    @property
    def prompt(self) -> str:
        """The text the model reads: the prompt, or the messages one after another."""
        if "prompt" in self.body:
            return str(self.body["prompt"])
        if "messages" in self.body:
            return "\n\n".join(str(m["content"]) for m in self.body["messages"])
        parts = [self.body.get("input_prefix", ""), self.body.get("input_suffix", "")]
        extra = "".join(f"{e['filename']}\n{e['text']}\n" for e in self.body.get("input_extra", []))
        return extra + "".join(parts)

    def asked_again(self, note: str) -> WireRequest:
        """The same chat with ``note`` added to its last (user) turn."""
        if not self.chat:
            raise ValueError("only a chat request can be asked again")
        *earlier, last = self.body["messages"]
        turn = {**last, "content": last["content"] + note}
        return replace(self, body={**self.body, "messages": [*earlier, turn]})


@dataclass(frozen=True)
class ChatOptions:
    max_tokens: int = 1024
    temperature: float = 0.2
    json_schema: dict[str, Any] | None = field(default=None)


class ModelClient(ABC):
    """A code model behind some provider; streams text, cancellable."""

    provider: str
    model: str
    template: FimTemplate
    # Whether a ``json_schema`` costs prompt tokens: OpenAI's structured outputs put it in
    # the context; llama.cpp and Ollama compile it to a grammar outside the prompt.
    schema_in_prompt: bool = True

    @abstractmethod
    def fim_request(self, request: FimRequest) -> WireRequest:
        """The exact request ``complete`` sends for ``request``."""

    @abstractmethod
    def send(self, wire: WireRequest) -> AsyncIterator[str]:
        """Stream the answer to ``wire``, a request ``fim_request`` rendered, as it is."""

    def complete(self, request: FimRequest) -> AsyncIterator[str]:
        """Stream the text that fills the hole between prefix and suffix."""
        return self.send(self.fim_request(request))

    @abstractmethod
    def chat(
        self, messages: Sequence[ChatMessage], options: ChatOptions | None = None
    ) -> AsyncIterator[str]:
        """Stream an assistant answer to ``messages``."""

    @abstractmethod
    async def tokenizer(self) -> Tokenizer:
        """A synchronous token counter for this model (exact where possible)."""

    async def count_tokens(self, text: str) -> int:
        """The count the model itself would give, as closely as this provider allows."""
        return (await self.tokenizer()).count(text)

    async def aclose(self) -> None:  # noqa: B027 - optional hook
        """Release connections or model memory."""

    def describe(self) -> str:
        return f"{self.provider}:{self.model}"

    def messages_for(self, request: FimRequest) -> list[dict[str, str]]:
        """The hole-filling conversation for chat-only models (the ``chat`` template)."""
        return self.template.render_chat(
            request.prefix,
            request.suffix,
            request.snippets,
            path=request.path,
            language=request.language,
        )

    def prompt_for(self, request: FimRequest) -> str:
        """The prompt text for FIM and prefix templates."""
        return self.template.render(
            request.prefix,
            request.suffix,
            request.snippets,
            path=request.path,
            comment=request.comment,
        )

    def stop_sequences(self, request: FimRequest) -> list[str]:
        """The template's stops plus the caller's, without duplicates, in order."""
        return list(dict.fromkeys([*self.template.stop, *request.stop]))


async def cut_at_stops(stream: AsyncIterator[str], stops: Sequence[str]) -> AsyncIterator[str]:
    """Pass ``stream`` through until any stop string appears, then end it.

    Servers cap how many stops they accept (OpenAI: 4) and some print special
    tokens as text, so every stop is also enforced here. Text that could be
    the start of a stop is held back until it is known not to be one; other text
    passes at once, so the first piece is not delayed. Leaving
    the loop closes ``stream``, which aborts its HTTP request.
    """
    stops = [s for s in stops if s]
    if not stops:
        async for piece in stream:
            yield piece
        return
    pending = ""
    try:
        async for piece in stream:
            pending += piece
            cut = min((i for i in (pending.find(s) for s in stops) if i >= 0), default=-1)
            if cut >= 0:
                if cut:
                    yield pending[:cut]
                return
            hold = _partial_stop(pending, stops)
            if len(pending) > hold:
                yield pending[: len(pending) - hold]
                pending = pending[len(pending) - hold :]
        if pending:
            yield pending
    finally:
        closer = getattr(stream, "aclose", None)
        if closer is not None:
            await closer()


def _partial_stop(text: str, stops: Sequence[str]) -> int:
    """Length of the longest end of ``text`` that is the start of a stop (0 if none)."""
    longest = 0
    for stop in stops:
        for size in range(min(len(stop) - 1, len(text)), longest, -1):
            if text.endswith(stop[:size]):
                longest = size
                break
    return longest


async def collect(stream: AsyncIterator[str]) -> str:
    """The whole text of a stream (for callers that do not show partial answers)."""
    return "".join([piece async for piece in stream])


def answer_limit(max_tokens: int) -> int:
    """The longest answer believable for ``max_tokens``: no token is 64 characters long."""
    return max(16 * 1024, 64 * max_tokens)


async def bounded(stream: AsyncIterator[str], max_tokens: int, source: str) -> AsyncIterator[str]:
    """Pass ``stream`` through until it exceeds ``answer_limit(max_tokens)``: then an error.

    Completions and chat both read through this: a server that ignores ``max_tokens``
    must cost an error status, not megabytes held in memory and shown in the editor.
    Leaving the loop closes ``stream``, which aborts its HTTP request.
    """
    limit = answer_limit(max_tokens)
    size = 0
    try:
        async for piece in stream:
            size += len(piece)
            if size > limit:
                raise ModelResponseError(
                    f"{source} sent over {limit} characters for {max_tokens} tokens; "
                    "stopped reading",
                    hint="the server ignores max_tokens",
                )
            yield piece
    finally:
        closer = getattr(stream, "aclose", None)
        if closer is not None:
            await closer()
