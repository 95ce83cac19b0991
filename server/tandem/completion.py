"""The completion pipeline shared by the CLI and the language server.

Today: the text around the cursor -> the completion model -> clean-up. The
context engine (tree-sitter windows, cross-file definitions) and the cache
plug in here, so every caller gets them at once.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

from tandem.models import FimRequest, ModelClient, collect

# Characters of text kept on each side of the cursor until the context engine
# budgets by tokens: prefix favoured, as the model continues from it.
PREFIX_CHARS = 6000
SUFFIX_CHARS = 2000

LANGUAGES = {
    ".py": "python", ".js": "javascript", ".mjs": "javascript", ".ts": "typescript",
    ".tsx": "tsx", ".go": "go", ".rs": "rust", ".java": "java", ".c": "c", ".h": "c",
    ".cpp": "cpp", ".cc": "cpp", ".hpp": "cpp", ".cs": "c_sharp", ".rb": "ruby",
    ".php": "php", ".sh": "bash", ".lua": "lua",
}  # fmt: skip


class PositionError(ValueError):
    """A cursor position outside the file."""


@dataclass(frozen=True)
class Completion:
    text: str
    model: str
    template: str
    multiline: bool
    elapsed_ms: float


def offset_at(text: str, line: int, column: int) -> int:
    """The string index of a 1-based line and column (columns count characters)."""
    lines = text.splitlines(keepends=True) or [""]
    if line < 1 or line > len(lines) + (1 if text.endswith("\n") else 0):
        raise PositionError(f"line {line} is outside the file (1-{len(lines)})")
    if line == len(lines) + 1:
        lines.append("")
    body = lines[line - 1].rstrip("\r\n")
    if column < 1 or column > len(body) + 1:
        raise PositionError(f"column {column} is outside line {line} (1-{len(body) + 1})")
    return sum(len(x) for x in lines[: line - 1]) + column - 1


def language_of(path: str | Path) -> str | None:
    return LANGUAGES.get(Path(path).suffix.lower())


def wants_multiline(text: str, offset: int) -> bool:
    """A block is wanted at the start of an empty line; mid-line, one line."""
    line_start = text.rfind("\n", 0, offset) + 1
    line_end = text.find("\n", offset)
    before = text[line_start:offset]
    after = text[offset : line_end if line_end >= 0 else len(text)]
    return not before.strip() and not after.strip()


def clean(raw: str, suffix: str, multiline: bool, indent: int = 0) -> str:
    """Trim what the model said to what belongs at the cursor.

    ``indent`` is the cursor line's indentation: a line indented less than it
    closes the block being written, so the completion ends there.
    """
    text = raw.replace("\r\n", "\n")
    if not multiline:
        text = text.lstrip("\n").split("\n", 1)[0]
        tail = suffix.split("\n", 1)[0].strip()
        if tail and text.rstrip().endswith(tail):
            text = text.rstrip()[: -len(tail)]  # the classic doubled ")" or "}"
        return text.rstrip()
    # A model with no FIM training restarts a new paragraph when it is done.
    text = text.split("\n\n\n", 1)[0]
    next_line = next((ln.strip() for ln in suffix.splitlines() if ln.strip()), "")
    kept: list[str] = []
    for i, line in enumerate(text.split("\n")):
        if next_line and line.strip() == next_line:
            break  # it is repeating the code that follows the cursor
        if i and line.strip() and len(line) - len(line.lstrip()) < indent:
            break  # dedented: the block is finished
        kept.append(line.rstrip())
    return "\n".join(kept).rstrip()


async def complete(
    client: ModelClient,
    text: str,
    offset: int,
    *,
    path: str | None = None,
    max_tokens: int = 128,
    temperature: float = 0.2,
) -> Completion:
    """Ask ``client`` to fill the hole at ``offset`` of ``text``; cleaned-up answer."""
    started = time.perf_counter()
    multiline = wants_multiline(text, offset)
    prefix = text[max(0, offset - PREFIX_CHARS) : offset]
    suffix = text[offset : offset + SUFFIX_CHARS]
    request = FimRequest(
        prefix=prefix,
        suffix=suffix,
        path=path,
        language=language_of(path) if path else None,
        max_tokens=max_tokens if multiline else min(max_tokens, 48),
        temperature=temperature,
    )
    raw = await _read(client, request, multiline)
    return Completion(
        text=clean(raw, suffix, multiline, _indent_at(text, offset)),
        model=client.describe(),
        template=client.template.name,
        multiline=multiline,
        elapsed_ms=(time.perf_counter() - started) * 1000,
    )


def _indent_at(text: str, offset: int) -> int:
    line_start = text.rfind("\n", 0, offset) + 1
    line = text[line_start:offset]
    return len(line) - len(line.lstrip())


async def _read(client: ModelClient, request: FimRequest, multiline: bool) -> str:
    """The model's answer; for one line, stop reading (and generating) once it is whole."""
    if multiline:
        return await collect(client.complete(request))
    pieces: list[str] = []
    stream = client.complete(request)
    try:
        async for piece in stream:
            pieces.append(piece)
            if "\n" in "".join(pieces).lstrip("\n"):
                break
    finally:
        await stream.aclose()  # type: ignore[attr-defined]
    return "".join(pieces)
