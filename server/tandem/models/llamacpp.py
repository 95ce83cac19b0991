"""llama.cpp's ``llama-server``: ``/infill`` with cross-file ``input_extra``, ``/completion``,
OpenAI-style chat, and ``/tokenize`` for exact token counts.

With no ``fim`` setting the server applies the model's own FIM tokens (``/infill``);
with one, we render the template and send it to ``/completion``.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Sequence
from typing import Any

from tandem.models.base import (
    ChatMessage,
    ChatOptions,
    FimRequest,
    ModelClient,
    WireRequest,
    cut_at_stops,
)
from tandem.models.errors import ModelHTTPError, ModelNotFound, ModelResponseError
from tandem.models.fim import FimTemplate, by_file, get_template
from tandem.models.http import HttpEndpoint
from tandem.models.tokens import CALIBRATION_TEXT, EstimatedTokenizer, Tokenizer, calibrate
from tandem.models.wire import dig, sse_events

# The server applies the model's FIM tokens itself; no stops of ours are needed.
INFILL = FimTemplate("infill", "fim")
CHAT_PATH = "v1/chat/completions"
log = logging.getLogger(__name__)


class LlamaCppClient(ModelClient):
    provider = "llamacpp"
    schema_in_prompt = False  # a grammar, not prompt tokens

    def __init__(self, endpoint: HttpEndpoint, model: str, template: FimTemplate | None) -> None:
        self.endpoint = endpoint
        self.model = model or "default"
        self.template = template or INFILL
        self._tokenizer: Tokenizer | None = None

    def fim_request(self, request: FimRequest) -> WireRequest:
        stops = self.stop_sequences(request)
        common = {
            "n_predict": request.max_tokens,
            "temperature": request.temperature,
            "stop": stops,
            "stream": True,
            "cache_prompt": True,
        }
        if self.template is INFILL:
            body = {
                "input_prefix": request.prefix,
                "input_suffix": request.suffix,
                "input_extra": [
                    {"filename": s.path, "text": s.text} for s in by_file(request.snippets)
                ],
                **common,
            }
            return WireRequest("infill", body, stop=tuple(stops))
        if self.template.kind == "chat":
            messages = self.messages_for(request)
            body = self._chat_body(messages, request.max_tokens, request.temperature, None, stops)
            return WireRequest(CHAT_PATH, body, chat=True, stop=tuple(stops))
        prompt = self.prompt_for(request)
        return WireRequest("completion", {"prompt": prompt, **common}, stop=tuple(stops))

    async def complete(self, request: FimRequest) -> AsyncIterator[str]:
        """``send(fim_request(request))``, rendered again once if ``/infill`` says 501."""
        wire = self.fim_request(request)
        try:
            async for piece in self.send(wire):
                yield piece
        except ModelHTTPError:
            if wire.path != "infill" or self.template is INFILL:  # send did not switch
                raise
            async for piece in self.send(self.fim_request(request)):
                yield piece

    async def send(self, wire: WireRequest) -> AsyncIterator[str]:
        try:
            async for piece in self._send(wire):
                yield piece
        except ModelHTTPError as exc:
            # llama.cpp answers /infill with 501 (before any text) when the model has no FIM
            # tokens: from the next request on, prompt with the prefix instead.
            if exc.status != 501 or wire.path != "infill" or self.template is not INFILL:
                raise
            log.warning("%s has no FIM tokens; completing from the prefix", self.describe())
            self.template = get_template("prefix")
            exc.hint = "the model has no FIM tokens: the next request sends the prefix only"
            raise

    async def _send(self, wire: WireRequest) -> AsyncIterator[str]:
        if wire.chat:
            stream = self._chat_stream(wire.body)
        else:
            stream = self._content_stream(wire.path, wire.body)
        async for piece in cut_at_stops(stream, wire.stop):
            yield piece

    async def _content_stream(self, path: str, body: dict[str, Any]) -> AsyncIterator[str]:
        lines = self.endpoint.stream_lines(path, body)
        async for event in sse_events(lines, self.endpoint.url(path)):
            text = event.get("content")
            if text:
                yield text

    def chat(
        self, messages: Sequence[ChatMessage], options: ChatOptions | None = None
    ) -> AsyncIterator[str]:
        options = options or ChatOptions()
        body = self._chat_body(
            [m.as_dict() for m in messages],
            options.max_tokens,
            options.temperature,
            options.json_schema,
            None,
        )
        return self._chat_stream(body)

    def _chat_body(
        self,
        messages: list[dict[str, str]],
        max_tokens: int,
        temperature: float,
        json_schema: dict[str, Any] | None,
        stop: list[str] | None,
    ) -> dict[str, Any]:
        body: dict[str, Any] = {
            "model": self.model,
            "messages": messages,
            "max_tokens": max_tokens,
            "temperature": temperature,
            "stream": True,
        }
        if stop:
            body["stop"] = stop
        if json_schema is not None:
            body["response_format"] = {"type": "json_object", "schema": json_schema}
        return body

    async def _chat_stream(self, body: dict[str, Any]) -> AsyncIterator[str]:
        lines = self.endpoint.stream_lines(CHAT_PATH, body)
        async for event in sse_events(lines, self.endpoint.url(CHAT_PATH)):
            text = dig(event, "choices", 0, "delta", "content")
            if text:
                yield text

    async def count_tokens(self, text: str) -> int:
        """The server's exact count (one round trip): for final budget checks."""
        answer = await self.endpoint.post_json("tokenize", {"content": text})
        tokens = answer.get("tokens") if isinstance(answer, dict) else None
        if not isinstance(tokens, list):
            raise ModelResponseError(f"{self.endpoint.url('tokenize')} answered without tokens")
        return len(tokens)

    async def tokenizer(self) -> Tokenizer:
        """An estimate calibrated once against the server's real tokenizer.

        Counting only sizes the prompt, so a server without a working ``/tokenize`` (older
        builds, proxies in front of llama.cpp) gets the generic estimate, not a failed
        completion; only the completion request itself may fail a completion.
        """
        if self._tokenizer is None:
            try:
                counted = await self.count_tokens(CALIBRATION_TEXT)
            except (ModelHTTPError, ModelNotFound, ModelResponseError) as exc:
                log.warning("token counts for %s are estimated: %s", self.describe(), exc)
                self._tokenizer = EstimatedTokenizer(f"estimate ({self.model}: no /tokenize)")
            else:
                name = f"llama.cpp /tokenize calibrated ({self.model})"
                self._tokenizer = calibrate(name, counted)
        return self._tokenizer

    async def aclose(self) -> None:
        await self.endpoint.aclose()
