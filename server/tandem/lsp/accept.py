"""Where an accepted suggestion went, from what the editor says when the user takes one.

``tandem.acceptCompletion`` carries ``{uri, text, line, character}`` (``server.accept_command``
puts them there); Copilot's ``didPartiallyAcceptCompletion`` carries ``{item,
acceptedLength}``, the item holding that command. The session prefetches after the text.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any


def accepted_at(arguments: Any) -> tuple[str, int, int, str] | None:
    """``(uri, line, character, text)`` of an accepted suggestion, from the arguments of
    ``tandem.acceptCompletion`` or the item of ``didPartiallyAcceptCompletion``; None
    when they do not say (older clients, hand-made calls)."""
    if isinstance(arguments, list | tuple):
        arguments = arguments[0] if arguments else None
    arguments = _plain(arguments)
    uri, line, character = arguments.get("uri"), arguments.get("line"), arguments.get("character")
    text = arguments.get("text")
    if not (isinstance(uri, str) and isinstance(text, str)):
        return None
    if not (isinstance(line, int) and isinstance(character, int)) or line < 0 or character < 0:
        return None
    return uri, line, character, text


def partially_accepted_at(params: Any) -> tuple[str, int, int, str] | None:
    """The same for ``didPartiallyAcceptCompletion`` ``{item, acceptedLength}``: the part
    of the item's text the user took."""
    params = _plain(params)
    item = _plain(params.get("item"))
    length = params.get("acceptedLength")
    command = _plain(item.get("command"))
    found = accepted_at(command.get("arguments"))
    if found is None or not isinstance(length, int) or length <= 0:
        return None
    uri, line, character, text = found
    return uri, line, character, text[:length]


def _plain(value: Any) -> dict[str, Any]:
    """pygls hands unknown notifications' params over as attribute objects."""
    if isinstance(value, Mapping):
        return dict(value)
    if hasattr(value, "_asdict"):
        return dict(value._asdict())
    if hasattr(value, "__dict__"):
        return {k: v for k, v in vars(value).items() if not k.startswith("_")}
    return {}
