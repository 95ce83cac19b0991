"""Ollama: raw ``/api/generate`` with FIM tokens written by us, ``/api/chat`` for chat.

``raw: true`` because Ollama's own ``suffix`` field only works for models whose
Modelfile template handles it; writing the tokens ourselves works for all.
"""

from __future__ import annotations

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
from tandem.models.fim import FimTemplate
from tandem.models.http import HttpEndpoint
from tandem.models.tokens import Tokenizer, known_tokenizer
from tandem.models.wire import dig, ndjson_events


class OllamaClient(ModelClient):
    provider = "ollama"
    schema_in_prompt = False  # a grammar, not prompt tokens

    def __init__(self, endpoint: HttpEndpoint, model: str, template: FimTemplate) -> None:
        self.endpoint = endpoint
        self.model = model
        self.template = template

    def fim_request(self, request: FimRequest) -> WireRequest:
        options = {
            "num_predict": request.max_tokens,
            "temperature": request.temperature,
            "stop": self.stop_sequences(request),
        }
        stops = tuple(options["stop"])
        if self.template.kind == "chat":
            messages = self.messages_for(request)
            body = self._chat_body(messages, options, None)
            return WireRequest("api/chat", body, chat=True, stop=stops)
        prompt = self.prompt_for(request)
        body = {"model": self.model, "prompt": prompt, "raw": True, "stream": True}
        return WireRequest("api/generate", {**body, "options": options}, stop=stops)

    async def send(self, wire: WireRequest) -> AsyncIterator[str]:
        stream = self._chat_stream(wire.body) if wire.chat else self._generate_stream(wire.body)
        async for piece in cut_at_stops(stream, wire.stop):
            yield piece

    async def _generate_stream(self, body: dict[str, Any]) -> AsyncIterator[str]:
        lines = self.endpoint.stream_lines("api/generate", body)
        async for event in ndjson_events(lines, self.endpoint.url("api/generate")):
            text = event.get("response")
            if text:
                yield text

    def chat(
        self, messages: Sequence[ChatMessage], options: ChatOptions | None = None
    ) -> AsyncIterator[str]:
        options = options or ChatOptions()
        body = self._chat_body(
            [m.as_dict() for m in messages],
            {"num_predict": options.max_tokens, "temperature": options.temperature},
            options.json_schema,
        )
        return self._chat_stream(body)

    def _chat_body(
        self,
        messages: list[dict[str, str]],
        options: dict[str, Any],
        json_schema: dict[str, Any] | None,
    ) -> dict[str, Any]:
        body: dict[str, Any] = {
            "model": self.model,
            "messages": messages,
            "stream": True,
            "options": options,
        }
        if json_schema is not None:
            body["format"] = json_schema
        return body

    async def _chat_stream(self, body: dict[str, Any]) -> AsyncIterator[str]:
        lines = self.endpoint.stream_lines("api/chat", body)
        async for event in ndjson_events(lines, self.endpoint.url("api/chat")):
            text = dig(event, "message", "content")
            if text:
                yield text

    async def tokenizer(self) -> Tokenizer:
        return await known_tokenizer(self.model)

    async def aclose(self) -> None:
        await self.endpoint.aclose()
