"""Every setting key and the check its value must pass.

Kept apart from the merging in ``tandem.config``: adding a key is one line here,
and a check is a plain function of the raw value (TOML, environment string or LSP
option), raising ``ValueError`` with what was wrong; ``config`` adds the key and
where the value came from.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

from tandem.models import PROVIDERS
from tandem.models.fim import TEMPLATES


def _text(value: Any) -> str:
    if not isinstance(value, str) or not value.strip():
        raise ValueError("must be a non-empty string")
    return value.strip()


def _choice(options: tuple[str, ...]) -> Callable[[Any], str]:
    def check(value: Any) -> str:
        text = _text(value).lower()
        if text not in options:
            raise ValueError(f"{value!r} is not one of {', '.join(options)}")
        return text

    return check


def _url(value: Any) -> str:
    text = _text(value).rstrip("/")
    if not text.startswith(("http://", "https://")):
        raise ValueError(f"{value!r} is not an http:// or https:// URL")
    return text


def _positive_int(value: Any) -> int:
    try:
        number = int(value)
    except (TypeError, ValueError):
        raise ValueError(f"{value!r} is not a whole number") from None
    if isinstance(value, bool) or number <= 0 or (isinstance(value, float) and number != value):
        raise ValueError(f"{value!r} is not a positive whole number")
    return number


def _float_range(low: float, high: float) -> Callable[[Any], float]:
    def check(value: Any) -> float:
        try:
            number = float(value)
        except (TypeError, ValueError):
            raise ValueError(f"{value!r} is not a number") from None
        if isinstance(value, bool) or not low < number <= high:
            raise ValueError(f"{value!r} is not in ({low:g}, {high:g}]")
        return number

    return check


def _temperature(value: Any) -> float:
    return 0.0 if value in (0, "0", 0.0) else _float_range(0.0, 2.0)(value)


MODEL_KEYS: dict[str, Callable[[Any], Any]] = {
    "provider": _choice(PROVIDERS),
    "endpoint": _url,
    "model": _text,
    "api_key": _text,
    "api_version": _text,
    "entra_token": _text,
    "fim": _choice(tuple(TEMPLATES)),
    "max_tokens": _positive_int,
    "temperature": _temperature,
    "context_tokens": _positive_int,
    "model_path": lambda v: os.path.expanduser(_text(v)),
    "n_ctx": _positive_int,
    "threads": lambda v: _non_negative_int(v),
    "parallel": _positive_int,
}


def _non_negative_int(value: Any) -> int:
    return 0 if value in (0, "0") else _positive_int(value)


def _bool(value: Any) -> bool:
    if isinstance(value, bool):
        return value
    text = str(value).strip().lower()
    if text in ("1", "true", "yes", "on"):
        return True
    if text in ("0", "false", "no", "off"):
        return False
    raise ValueError(f"{value!r} is not true or false")


def exclude_patterns(value: Any) -> tuple[str, ...]:
    """Gitignore patterns: a list, or one string separated by commas or lines (environment)."""
    items = value.replace(",", "\n").splitlines() if isinstance(value, str) else value
    if not isinstance(items, list | tuple) or not all(isinstance(i, str) for i in items):
        raise ValueError("must be a list of gitignore patterns")
    patterns = tuple(p.strip() for p in items if p.strip())
    for pattern in patterns:
        if pattern.startswith("!"):
            raise ValueError(
                f"{pattern!r}: exclude only leaves files out; re-admit with ! in .tandemignore"
            )
    return patterns


TOP_KEYS: dict[str, Callable[[Any], Any]] = {
    "timeout": _float_range(0.0, 3600.0),
    "debounce_ms": _non_negative_int,
    "completion_fallback": _bool,
    "max_concurrent": _positive_int,
    "reuse_inflight": _bool,
    "adaptive_debounce": _bool,
    "prefetch_after_accept": _bool,
    "exclude": exclude_patterns,
    "cache_dir": lambda v: Path(os.path.expanduser(_text(v))),
}
SECTIONS = ("completion", "chat")
