"""The review's trust boundary: what the change under review may never decide.

A pull request writes files into the checkout that CI reviews, while the job holds an
API key. Two things are refused outright, before anything is read or sent:

- a key sent to an endpoint that a repository file chose: the key and the endpoint it
  goes to must come from the same place (the environment, the flags, or the user's own
  config file), so a ``.tandem.toml`` that sets only ``endpoint`` cannot collect the
  CI's ``TANDEM_API_KEY``;
- a cache folder inside the checkout: the pull request could commit it, and plant
  answers (or, with a pickling cache, code) in it.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

from tandem.config import ConfigError, Settings

SECRET_SETTINGS = ("api_key", "entra_token")
ENDPOINT_VARIABLE = "TANDEM_CHAT_ENDPOINT"
_INHERITED = re.compile(r"completion\.\w+ \((.*)\)")


class UnsafeCacheDir(ValueError):
    """The cache folder lies inside the reviewed checkout: exit 2."""

    exit_code = 2


def origin(source: str) -> str:
    """Where a setting really came from (a chat value inherited names its completion source)."""
    match = _INHERITED.fullmatch(source)
    return match.group(1) if match else source


def check_key_binding(settings: Settings, repository_source: str) -> None:
    """Refuse a chat endpoint chosen by ``repository_source`` for a key that came elsewhere."""
    model = settings.chat
    endpoint_from = origin(settings.source_of("chat.endpoint"))
    if endpoint_from != repository_source:
        return
    for name in SECRET_SETTINGS:
        if getattr(model, name) is None:
            continue
        key_from = origin(settings.source_of(f"chat.{name}"))
        if key_from != endpoint_from:
            raise ConfigError(
                "chat.endpoint",
                repository_source,
                f"a file in the repository may not choose where the {name} from {key_from} "
                f"is sent; set the endpoint where the key is set ({ENDPOINT_VARIABLE} or "
                "your own ~/.config/tandem/config.toml)",
            )


def check_cache_dir(cache_dir: Path, checkout: Path) -> None:
    """Refuse a cache folder inside the checkout (a pull request could have written it)."""
    folder = os.path.realpath(cache_dir)
    root = os.path.realpath(checkout)
    if folder == root or folder.startswith(root.rstrip(os.sep) + os.sep):
        raise UnsafeCacheDir(
            f"the cache folder {cache_dir} is inside the reviewed checkout {checkout}: a pull "
            "request could plant answers in it; set TANDEM_CACHE_DIR outside the checkout "
            "(in CI: the runner's temp folder, e.g. ${{ runner.temp }}/tandem-cache)"
        )
