"""OpenAI and OpenAI-compatible servers (vLLM, LM Studio, TGI, llama-cpp-python), and Azure.

FIM goes to ``/completions`` with the model's FIM tokens in ``prompt``; chat
goes to ``/chat/completions``; both stream server-sent events. Templates of
kind ``chat`` serve inline completions through a hole-filling conversation.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping, Sequence
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
from tandem.models.wire import dig, sse_events

# api.openai.com rejects more than four stop sequences; the rest are cut client-side.
MAX_SERVER_STOPS = 4


class OpenAIClient(ModelClient):
    provider = "openai"

    def __init__(
        self,
        endpoint: HttpEndpoint,
        model: str,
        template: FimTemplate,
        *,
        send_model: bool = True,
    ) -> None:
        self.endpoint = endpoint
        self.model = model
        self.template = template
        self._send_model = send_model

    # Paths and query parameters differ on Azure; everything else is shared.
    completions_path = "completions"
    chat_path = "chat/completions"
    params: Mapping[str, str] | None = None

    def _body(self, **fields: Any) -> dict[str, Any]:
        body = {"model": self.model} if self._send_model else {}
        body.update({k: v for k, v in fields.items() if v is not None})
        return body

    def fim_request(self, request: FimRequest) -> WireRequest:
        stops = self.stop_sequences(request)[:MAX_SERVER_STOPS] or None
        if self.template.kind == "chat":
            messages = self.messages_for(request)
            body = self._chat_body(messages, request.max_tokens, request.temperature, stops)
            return WireRequest(self.chat_path, body, chat=True, stop=self._stops(request))
        prompt = self.prompt_for(request)
        body = self._body(
            prompt=prompt,
            max_tokens=request.max_tokens,
            temperature=request.temperature,
            stop=stops,
            stream=True,
        )
        return WireRequest(self.completions_path, body, stop=self._stops(request))

    def _stops(self, request: FimRequest) -> tuple[str, ...]:
        return tuple(self.stop_sequences(request))

    async def send(self, wire: WireRequest) -> AsyncIterator[str]:
        if wire.chat:
            stream = self._chat_stream(wire.body, wire.path)
        else:
            stream = self._text_stream(wire.body, wire.path)
        async for piece in cut_at_stops(stream, wire.stop):
            yield piece

    async def _text_stream(self, body: dict[str, Any], path: str) -> AsyncIterator[str]:
        lines = self.endpoint.stream_lines(path, body, params=self.params)
        async for event in sse_events(lines, self.endpoint.url(path)):
            text = dig(event, "choices", 0, "text")
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
            None,
            options.json_schema,
        )
        return self._chat_stream(body, self.chat_path)

    def _chat_body(
        self,
        messages: list[dict[str, str]],
        max_tokens: int,
        temperature: float,
        stop: list[str] | None,
        json_schema: dict[str, Any] | None = None,
    ) -> dict[str, Any]:
        response_format = None
        if json_schema is not None:
            response_format = {
                "type": "json_schema",
                "json_schema": {"name": "answer", "schema": json_schema, "strict": True},
            }
        return self._body(
            messages=messages,
            max_tokens=max_tokens,
            temperature=temperature,
            stop=stop or None,
            response_format=response_format,
            stream=True,
        )

    async def _chat_stream(self, body: dict[str, Any], path: str) -> AsyncIterator[str]:
        lines = self.endpoint.stream_lines(path, body, params=self.params)
        async for event in sse_events(lines, self.endpoint.url(path)):
            text = dig(event, "choices", 0, "delta", "content")
            if text:
                yield text

    async def tokenizer(self) -> Tokenizer:
        return await known_tokenizer(self.model)

    async def aclose(self) -> None:
        await self.endpoint.aclose()


class AzureOpenAIClient(OpenAIClient):
    """Azure OpenAI: the deployment is in the path, the API version in the query."""

    provider = "azure"

    def __init__(
        self,
        endpoint: HttpEndpoint,
        deployment: str,
        template: FimTemplate,
        *,
        api_version: str,
        model_name: str | None = None,
    ) -> None:
        super().__init__(endpoint, deployment, template, send_model=False)
        self.completions_path = f"openai/deployments/{deployment}/completions"
        self.chat_path = f"openai/deployments/{deployment}/chat/completions"
        self.params = {"api-version": api_version}
        self._model_name = model_name or deployment

    async def tokenizer(self) -> Tokenizer:
        return await known_tokenizer(self._model_name)
