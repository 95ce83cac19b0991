"""Render a ReviewResult in any of the output formats ``tandem review --format`` offers."""

from __future__ import annotations

from collections.abc import Callable

from tandem import __version__
from tandem.review.findings import ReviewResult
from tandem.review.formats.common import encodable, neutralised
from tandem.review.formats.human import render_markdown, render_text
from tandem.review.formats.machine import (
    dump,
    render_github,
    render_gitlab,
    render_json,
    render_rdjson,
)
from tandem.review.formats.sarif import render_sarif_log

FORMATS = ("text", "markdown", "json", "sarif", "github", "gitlab", "rdjson")

_RENDERERS: dict[str, Callable[[ReviewResult, str], str]] = {
    "text": render_text,
    "markdown": render_markdown,
    "json": render_json,
    "sarif": lambda result, version: dump(render_sarif_log(result, version)),
    "github": render_github,
    "gitlab": render_gitlab,
    "rdjson": render_rdjson,
}


def render(result: ReviewResult, fmt: str, *, tool_version: str | None = None) -> str:
    """The whole output as one string ending in a newline; the same result gives the same bytes.

    Raises ValueError for a format not in FORMATS (the CLI's choices make that a usage error).
    Every format gets the result with untrusted names and code neutralised first.
    """
    try:
        renderer = _RENDERERS[fmt]
    except KeyError:
        raise ValueError(f"unknown format {fmt!r}; choose one of {', '.join(FORMATS)}") from None
    return encodable(renderer(neutralised(result), tool_version or __version__))


__all__ = ["FORMATS", "render"]
