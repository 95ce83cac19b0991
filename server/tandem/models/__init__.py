"""Code-model clients behind one interface (``ModelClient``), built from settings.

``build_models`` returns the completion and chat clients; when both sections
point at the same server they share one ``HttpEndpoint`` (one connection pool).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from tandem.models.base import ChatMessage, ChatOptions, FimRequest, ModelClient, collect
from tandem.models.errors import ModelError
from tandem.models.fim import FimTemplate, Snippet, default_template, get_template
from tandem.models.http import HttpEndpoint

# The providers ``build_client`` knows; the settings check names against this list.
PROVIDERS = ("local", "openai", "azure", "ollama", "llamacpp")

__all__ = [
    "PROVIDERS",
    "ChatMessage",
    "ChatOptions",
    "FimRequest",
    "FimTemplate",
    "ModelClient",
    "ModelError",
    "ModelSettings",
    "Models",
    "Snippet",
    "build_client",
    "build_models",
    "collect",
]


class ModelSettings(Protocol):
    """What a client is built from: ``tandem.config.ModelSettings`` has these fields.

    A protocol rather than an import: the settings sit above the models (they check names
    against ``PROVIDERS`` and the FIM templates), so the models must not import them.
    """

    @property
    def provider(self) -> str: ...
    @property
    def model(self) -> str | None: ...
    @property
    def fim(self) -> str | None: ...
    @property
    def api_key(self) -> str | None: ...
    @property
    def api_version(self) -> str: ...
    @property
    def entra_token(self) -> str | None: ...
    @property
    def resolved_endpoint(self) -> str | None: ...
    @property
    def model_path(self) -> str | None: ...
    @property
    def n_ctx(self) -> int: ...
    @property
    def threads(self) -> int: ...
    @property
    def parallel(self) -> int: ...


class Settings(Protocol):
    """The two model sections and the timeout, as ``tandem.config.Settings`` holds them."""

    @property
    def completion(self) -> ModelSettings: ...
    @property
    def chat(self) -> ModelSettings: ...
    @property
    def timeout(self) -> float: ...


@dataclass
class Models:
    completion: ModelClient
    chat: ModelClient

    async def aclose(self) -> None:
        await self.completion.aclose()
        if self.chat is not self.completion:
            await self.chat.aclose()


def _headers(s: ModelSettings) -> tuple[dict[str, str], str]:
    """Auth headers for a provider, and the setting a 401 should point the user to."""
    if s.provider == "azure":
        if s.entra_token:
            return {"Authorization": f"Bearer {s.entra_token}"}, "TANDEM_AZURE_AD_TOKEN"
        return ({"api-key": s.api_key} if s.api_key else {}), "TANDEM_API_KEY / api_key"
    if s.api_key:
        return {"Authorization": f"Bearer {s.api_key}"}, "TANDEM_API_KEY / api_key"
    return {}, "TANDEM_API_KEY / api_key"


def _template(s: ModelSettings) -> FimTemplate:
    return get_template(s.fim) if s.fim else default_template(s.provider, s.model)


def build_endpoint(s: ModelSettings, timeout: float) -> HttpEndpoint:
    endpoint = s.resolved_endpoint
    if endpoint is None:
        raise ValueError(f"the {s.provider} provider has no endpoint")
    headers, key_setting = _headers(s)
    return HttpEndpoint(endpoint, headers=headers, timeout=timeout, key_setting=key_setting)


def build_client(
    s: ModelSettings, timeout: float, endpoint: HttpEndpoint | None = None
) -> ModelClient:
    """The client for one model section; ``endpoint`` lets two sections share a pool."""
    if s.provider not in PROVIDERS:
        raise ValueError(f"unknown provider {s.provider!r}")
    if s.provider == "local":
        from tandem.models.embedded import (
            EmbeddedServer,
            EmbeddedSpec,
            ManagedEndpoint,
        )
        from tandem.models.local import LocalClient

        given = s.model_path or s.model  # `model` named the file before model_path existed
        path = Path(given).expanduser().resolve() if given else None
        spec = EmbeddedSpec(path, s.n_ctx, s.threads, s.parallel)
        endpoint = ManagedEndpoint(EmbeddedServer.shared(spec), timeout)
        return LocalClient(endpoint, get_template(s.fim) if s.fim else None)
    endpoint = endpoint or build_endpoint(s, timeout)
    if s.provider == "openai":
        from tandem.models.openai import OpenAIClient

        return OpenAIClient(endpoint, s.model or "", _template(s))
    if s.provider == "azure":
        from tandem.models.openai import AzureOpenAIClient

        template = get_template(s.fim) if s.fim else get_template("chat")
        return AzureOpenAIClient(endpoint, s.model or "", template, api_version=s.api_version)
    if s.provider == "ollama":
        from tandem.models.ollama import OllamaClient

        return OllamaClient(endpoint, s.model or "", _template(s))
    if s.provider == "llamacpp":
        from tandem.models.llamacpp import LlamaCppClient

        return LlamaCppClient(endpoint, s.model or "", get_template(s.fim) if s.fim else None)
    raise ValueError(f"unknown provider {s.provider!r}")


def build_models(settings: Settings) -> Models:
    completion = build_client(settings.completion, settings.timeout)
    same_server = (
        settings.chat.provider == settings.completion.provider
        and settings.chat.resolved_endpoint == settings.completion.resolved_endpoint
        and _headers(settings.chat) == _headers(settings.completion)
    )
    shared = getattr(completion, "endpoint", None) if same_server else None
    chat = build_client(settings.chat, settings.timeout, shared)
    return Models(completion, chat)
