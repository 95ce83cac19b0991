"""The ``local`` provider: the ``llamacpp`` client on the embedded, Tandem-managed server.

Nothing here generates text: ``EmbeddedServer`` runs llama.cpp's own server in a child
process and this client speaks to it over HTTP like to any llama.cpp server. What the
embedded case adds is only a choice it can make once the server runs: ``/infill`` when the
model has FIM tokens (the server says so), else the prefix template on ``/completion``.
"""

from __future__ import annotations

from collections.abc import AsyncIterator

from tandem.models.base import FimRequest
from tandem.models.embedded import ManagedEndpoint
from tandem.models.fim import FimTemplate, get_template
from tandem.models.llamacpp import INFILL, LlamaCppClient
from tandem.models.tokens import Tokenizer


class LocalClient(LlamaCppClient):
    provider = "local"

    def __init__(self, endpoint: ManagedEndpoint, template: FimTemplate | None) -> None:
        super().__init__(endpoint, endpoint.server.spec.name, template)
        self.managed = endpoint
        self._chosen = template is not None  # the fim setting decides; else the server

    async def ready(self) -> None:
        """Start the server if need be and take its FIM support into the template."""
        info = await self.managed.server.ensure()
        if not self._chosen:
            self.template = INFILL if info.fim else get_template("prefix")

    async def tokenizer(self) -> Tokenizer:
        # Prompts are sized before they are rendered (and then sent as rendered with
        # ``send``): the template is known from here on. Chat needs no template; its
        # request starts the server through the endpoint.
        await self.ready()
        return await super().tokenizer()

    async def complete(self, request: FimRequest) -> AsyncIterator[str]:
        await self.ready()
        async for piece in super().complete(request):
            yield piece

    async def aclose(self) -> None:
        """Close the connections; the child stays for the next client of this process."""
        await self.endpoint.aclose()
