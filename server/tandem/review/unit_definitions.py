"""The definitions a change's new lines use, shown beside its review unit.

A reviewer judges ``parse(x, strict=True)`` by what ``parse`` takes: the unit carries
the signatures of the names its added lines use, from the same file first (outside the
unit's own lines), then from other files through the context engine (imports first,
then the workspace index), as many as fit a share of the unit's budget.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from pathlib import Path

from tandem.context.definitions import DOTTED, WORD, ParsedFile, definition_of
from tandem.context.engine import ContextEngine
from tandem.context.imports import Import
from tandem.context.prompt import MAX_DEFINITIONS


class Uncounted:
    """A tokenizer stand-in for work done before the real one has loaded (counted later)."""

    name = "uncounted"
    exact = False

    def count(self, text: str) -> int:
        return 0


def used_names(texts: list[str]) -> Counter[str]:
    """Identifiers the lines use, qualified ones (``mod.name``) counted as such too."""
    names: Counter[str] = Counter()
    for text in texts:
        for match in DOTTED.finditer(text):
            names[f"{match.group(1)}.{match.group(2)}"] += 1
        names.update(WORD.findall(text))
    return names


def definitions_used(
    parsed: ParsedFile,
    path: Path,
    rel: str,
    lines: tuple[int, int],
    names: Counter[str],
    engine: ContextEngine | None,
    imports: list[Import],
) -> list[tuple[str, str]]:
    """(where, text) of the definitions ``names`` refer to: this file's outside ``lines``
    (1-based, inclusive: the unit shows those itself), most used first; then other files'."""
    first, last = lines
    used = [
        tag
        for tag in parsed.tags.definitions
        if tag.name in names
        and len(tag.name) > 2
        and not (first <= tag.start_line + 1 and tag.end_line + 1 <= last)
    ]
    found = [
        (f"{rel} (line {tag.line + 1})", definition_of(parsed, path, tag, 0.0).text)
        for tag in sorted(used, key=lambda t: (-names[t.name], t.line))
    ]
    if engine is not None:
        parts = engine.definitions_for(path, parsed.spec, parsed.tree, names, Uncounted(), imports)
        found.extend((p.path, p.text) for p in parts if p.path != rel)
    return found


def fitted(
    found: list[tuple[str, str]], room: int, count: Callable[[str], int]
) -> tuple[tuple[str, str, int], ...]:
    """The definitions that fit ``room`` tokens, in order, each once, at most
    ``MAX_DEFINITIONS``: (where, text, tokens)."""
    chosen: list[tuple[str, str, int]] = []
    for where, text in found:
        tokens = count(f"{where}:\n{text}") + 2
        if len(chosen) >= MAX_DEFINITIONS or tokens > room:
            continue
        if any(text == t for _, t, _ in chosen):
            continue
        chosen.append((where, text, tokens))
        room -= tokens
    return tuple(chosen)
