"""Build the completion prompt within a token budget, from parts that each say where they came from.

Parts, in the order they are given up when the budget is short (last first):
the prefix and suffix around the cursor (never dropped, only shortened, and
always at line boundaries), the headers of enclosing scopes above the prefix
window, definitions of imported names used near the cursor, similar snippets
from open/recent files, and definitions found through the workspace index.

The split: cross-file context may take at most ``context_share`` of the budget;
of what is left, the suffix gets at most ``suffix_share`` and the prefix all the
rest. The prefix is favoured because the model continues it; a suffix past a
screenful rarely changes what belongs at the cursor, but it does tell the
model where to stop.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from functools import lru_cache
from pathlib import Path
from typing import Literal

import tree_sitter as ts

from tandem.context.languages import LanguageSpec
from tandem.context.tags import header_text
from tandem.models.base import FimRequest, ModelClient, WireRequest
from tandem.models.fim import Snippet
from tandem.models.tokens import Tokenizer
from tandem.stages import stage

Kind = Literal["prefix", "suffix", "scope", "definition", "snippet"]
# Lower is kept longer. Prefix and suffix are never dropped.
RANKS: dict[Kind, int] = {"prefix": 0, "suffix": 0, "scope": 1, "definition": 2, "snippet": 3}
INDEX_DEFINITION_RANK = 4
# Definitions from other files one request quotes at most: a completion's found through
# the index, a chat selection's, a review unit's.
MAX_DEFINITIONS = 6


@dataclass(frozen=True)
class PromptPart:
    kind: Kind
    path: str
    text: str
    tokens: int
    rank: int = 0
    score: float = 0.0
    start: int = -1  # scope headers: where they start in the current text

    def as_dict(self) -> dict[str, object]:
        return {"kind": self.kind, "path": self.path, "text": self.text, "tokens": self.tokens}


@dataclass(frozen=True)
class PromptBudget:
    """How many tokens the prompt may use, and how they are shared."""

    total: int = 2048
    context_share: float = 0.35
    suffix_share: float = 0.25
    max_prefix_lines: int = 400
    max_suffix_lines: int = 120


@dataclass(frozen=True)
class ContextCandidates:
    """What could go into the prompt besides the text around the cursor, best first."""

    scopes: Sequence[tuple[int, str]] = ()  # (start offset in the text, header)
    definitions: Sequence[PromptPart] = ()
    snippets: Sequence[PromptPart] = ()


@dataclass(frozen=True)
class Prompt:
    parts: tuple[PromptPart, ...]
    request: FimRequest
    wire: WireRequest
    tokens: int
    budget: int
    dropped: tuple[PromptPart, ...] = field(default=())

    @property
    def prefix(self) -> str:
        return self.request.prefix

    @property
    def suffix(self) -> str:
        return self.request.suffix


def scope_headers(
    tree: ts.Tree | None, spec: LanguageSpec | None, source: bytes, byte_offset: int
) -> list[tuple[int, str]]:
    """Headers of the scopes enclosing the cursor, outermost first, with their line's start.

    Starts are character offsets into ``source.decode()``, to compare with the prefix window.
    """
    if tree is None or spec is None:
        return []
    # Start from the last token before the cursor: at the cursor itself, an unfinished
    # line often leaves only the module or an ERROR node.
    anchor = len(source[:byte_offset].rstrip())
    node = tree.root_node.descendant_for_byte_range(max(0, anchor - 1), max(0, anchor - 1))
    line_start = source.rfind(b"\n", 0, byte_offset) + 1
    typed = source[line_start:byte_offset]
    column = len(typed) - len(typed.lstrip()) if typed.strip() else len(typed)
    headers: list[tuple[int, str]] = []
    while node is not None:
        if node.type in spec.scope_types and node.start_byte < byte_offset:
            if spec.name == "python":  # blocks end where indentation does
                inside = column > node.start_point[1]
            else:
                inside = node.end_byte >= byte_offset or node.has_error
            if inside:
                head_start = source.rfind(b"\n", 0, node.start_byte) + 1
                indent = source[head_start : node.start_byte].decode("utf-8", "replace")
                head = header_text(node, source, spec)
                if not indent.strip():
                    head = indent + head
                start = len(source[:head_start].decode("utf-8", "replace"))
                headers.append((start, head))
        node = node.parent
    headers.reverse()
    return headers


LONG_LINE = 4000  # characters: past this a line is data or minified code, not a line to keep


def _fit(line: str, count: Tokenizer, budget: int, *, keep_end: bool) -> tuple[str, int]:
    """The line at the cursor and its tokens: whole, unless it is over ``LONG_LINE`` and
    ``budget``, when as much of it as fits, from the cursor's side.

    Windows keep whole lines, even past the budget; but a minified or generated line of
    megabytes would go whole into every prompt (and past what a tokenizer accepts).
    """
    if len(line) <= LONG_LINE:
        return line, count.count(line)
    limit = max(LONG_LINE, max(0, budget) * 8)  # a cheap first cut: ~3-4 characters a token
    while True:
        if len(line) > limit:
            line = line[len(line) - limit :] if keep_end else line[:limit]
        tokens = count.count(line)
        if tokens <= budget or not line:
            return line, tokens
        limit = len(line) * 3 // 4


def _lines_back(text: str, count: Tokenizer, budget: int, max_lines: int) -> tuple[str, int]:
    """The most lines from the end of ``text`` that fit ``budget``; the last (partial) always,
    cut to the budget when it is longer.

    Only the last ``max_lines + 1`` lines can be kept: ``rsplit`` leaves the rest of the
    text whole (its first item), where splitting a 5,000-line prefix cost ~0.3 ms a call,
    two calls a request (issue 12). The loop stops before reaching that item.
    """
    lines = text.rsplit("\n", max(max_lines, 0) + 1)
    last, used = _fit(lines[-1], count, budget, keep_end=True)
    kept = [last]
    for line in reversed(lines[:-1]):
        cost = count.count(line + "\n")
        if used + cost > budget or len(kept) > max_lines:
            break
        kept.append(line)
        used += cost
    kept.reverse()
    return "\n".join(kept), used


def _lines_forward(text: str, count: Tokenizer, budget: int, max_lines: int) -> tuple[str, int]:
    """The most lines from the start of ``text`` that fit ``budget``; the first always, cut
    to the budget when it is longer (as ``_lines_back``, the rest left unsplit)."""
    lines = text.split("\n", max(max_lines, 0) + 1)
    first, used = _fit(lines[0], count, budget, keep_end=False)
    kept = [first]
    for line in lines[1:]:
        cost = count.count("\n" + line)
        if used + cost > budget or len(kept) > max_lines:
            break
        kept.append(line)
        used += cost
    return "\n".join(kept), used


def build_prompt(
    client: ModelClient,
    tokenizer: Tokenizer,
    *,
    text: str,
    offset: int,
    path: str,
    budget: PromptBudget,
    candidates: ContextCandidates,
    request: FimRequest,
) -> Prompt:
    """Fit the text around ``offset`` and the candidates into ``budget``, and render them.

    ``request`` carries the generation settings (max_tokens, stops, language);
    its prefix, suffix and snippets are filled here. The final check counts the
    exact rendered prompt with ``tokenizer``, so the budget holds for the real
    text sent, template tokens and snippet headers included.
    """
    empty = client.fim_request(replace(request, prefix="", suffix="", snippets=()))
    overhead = tokenizer.count(empty.prompt) + 4
    available = max(0, budget.total - overhead)
    before, after = text[:offset], text[offset:]
    if client.template.kind != "chat":
        before = without_indent(before, after)

    context: list[PromptPart] = []
    context_cap = int(available * budget.context_share)
    used = 0
    lines = _Memo(tokenizer)  # a line is counted once per prompt, however often it is fitted
    # The prefix window is at least what is left when the context takes its whole share:
    # a scope header starting inside that is shown by the prefix itself, and charging it
    # to the context (a long ``def __init__(...)`` header) left no room for definitions.
    least = available - context_cap
    least_prefix, _ = _lines_back(
        before, lines, least - int(least * budget.suffix_share), budget.max_prefix_lines
    )
    surely_shown = len(before) - len(least_prefix)
    pool = [
        *(PromptPart("scope", path, s, tokenizer.count(s + "\n"), RANKS["scope"], start=start)
          for start, s in candidates.scopes if start < surely_shown),
        *candidates.definitions,
        *candidates.snippets,
    ]  # fmt: skip
    # What each quoted part adds besides its text (path header, file separator, the
    # template's once-only preamble), measured by rendering the parts chosen so far with
    # empty texts. A flat 12 was right for o200k but ~30 low for the piece estimate on a
    # deep path: the prompt then overran, and the loop below dropped whole definitions
    # (recall at a 1k budget 0.94 instead of 1.0, issue 12).
    headers: list[Snippet] = []
    rendered = overhead - 4
    for part in pool:
        if part.kind == "scope":
            cost, counted = part.tokens + 12, rendered
        else:
            counted = _headers_tokens(
                client, tokenizer, request, [*headers, Snippet(part.path, "")]
            )
            cost = part.tokens + max(0, counted - rendered) + 2  # + the line end after the text
        if used + cost <= context_cap:
            context.append(part)
            used += cost
            if part.kind != "scope":
                headers.append(Snippet(part.path, ""))
                rendered = counted
    left = available - used
    suffix_text, suffix_tokens = _lines_forward(
        after, lines, int(left * budget.suffix_share), budget.max_suffix_lines
    )
    prefix_text, _ = _lines_back(before, lines, left - suffix_tokens, budget.max_prefix_lines)
    window_start = len(before) - len(prefix_text)
    # A header already inside the prefix window needs no repeating.
    context = [p for p in context if p.kind != "scope" or p.start < window_start]
    dropped: list[PromptPart] = []
    while True:
        with stage("prompt.render+count"):
            prompt = _assemble(client, tokenizer, request, path, prefix_text, suffix_text, context)
        if prompt.tokens <= budget.total:
            return replace(prompt, budget=budget.total, dropped=tuple(dropped))
        if context:
            worst = max(range(len(context)), key=lambda i: (context[i].rank, -context[i].score, i))
            dropped.append(context.pop(worst))
        elif "\n" in prefix_text:
            prefix_text = prefix_text.split("\n", 1)[1]  # give up the oldest line
        elif "\n" in suffix_text:
            suffix_text = suffix_text.rsplit("\n", 1)[0]
        else:
            return replace(prompt, budget=budget.total, dropped=tuple(dropped))


def without_indent(before: str, after: str) -> str:
    """``before`` less the cursor line's indentation, when that is all the line holds and
    no deeper than the last code line's.

    A prompt that ends in spaces ends mid-token: the model has seen indentation and code
    tokenized together (``"   "`` + ``" for"``), so after a lone run of spaces it often
    repeats the next line of the file or writes nothing. From the line start it writes
    the line with its own indentation, which post-processing moves to the cursor. An
    indentation shallower than the line above's is kept: an editor indents as deep as
    the block or deeper, so a dedent is the user's choice (the block is closed), which
    the model cannot guess from the line start and would continue the inner block
    (bench/quality.py: README "Completion quality").
    """
    start = before.rfind("\n") + 1
    tail, rest = before[start:], after.split("\n", 1)[0]
    blank = tail and not tail.strip(" \t") and not rest.strip()
    if not (start and blank):
        return before
    above = _last_code_line(before, start - 1)
    if above is not None and _width(tail) < _width(above[: len(above) - len(above.lstrip())]):
        return before
    return before[:start]


def starts_shallower(raw: str, indentation: str) -> bool:
    """Whether the answer's first line with code is indented less than ``indentation``
    (tabs as 8 columns): written from the line start, a line that leaves the block."""
    first = next((ln for ln in raw.split("\n") if ln.strip()), "")
    written = first[: len(first) - len(first.lstrip(" \t"))]
    return bool(first) and _width(written) < _width(indentation)


def _last_code_line(text: str, end: int) -> str | None:
    """The last line with code in ``text[:end]``, read backwards (stops at the first)."""
    while end > 0:
        start = text.rfind("\n", 0, end) + 1
        line = text[start:end]
        if line.strip():
            return line
        end = start - 1
    return None


def _width(indent: str) -> int:
    return len(indent.expandtabs(8))


class _Memo:
    """A tokenizer's counts kept for one prompt: the window fitting counts each line twice."""

    def __init__(self, tokenizer: Tokenizer) -> None:
        self.name, self.exact = tokenizer.name, tokenizer.exact
        self._tokenizer = tokenizer
        self._known: dict[str, int] = {}

    def count(self, text: str) -> int:
        known = self._known.get(text)
        if known is None:
            known = self._known[text] = self._tokenizer.count(text)
        return known


def _headers_tokens(
    client: ModelClient, tokenizer: Tokenizer, request: FimRequest, headers: list[Snippet]
) -> int:
    """Tokens of the empty prompt quoting ``headers`` (parts with empty texts)."""
    empty = replace(request, prefix="", suffix="", snippets=tuple(headers))
    return tokenizer.count(client.fim_request(empty).prompt)


def _assemble(
    client: ModelClient,
    tokenizer: Tokenizer,
    request: FimRequest,
    path: str,
    prefix_text: str,
    suffix_text: str,
    context: list[PromptPart],
) -> Prompt:
    scopes = [p for p in context if p.kind == "scope"]
    others = [p for p in context if p.kind != "scope"]
    # Enclosing headers read as code above the window, so they go into the prefix itself.
    scope_text = "".join(p.text + "\n" for p in scopes)
    snippets = tuple(Snippet(p.path, p.text) for p in others)
    full = replace(request, prefix=scope_text + prefix_text, suffix=suffix_text, snippets=snippets)
    wire = client.fim_request(full)
    parts = (
        *others,
        *scopes,
        PromptPart("prefix", path, prefix_text, tokenizer.count(prefix_text)),
        PromptPart("suffix", path, suffix_text, tokenizer.count(suffix_text)),
    )
    return Prompt(parts, full, wire, tokenizer.count(wire.prompt), 0)


@lru_cache(maxsize=4096)
def relative(path: Path, root: Path) -> str:
    """``path`` relative to ``root`` (both resolved), else as given. Kept: each prompt
    asks for the same few files, and resolving costs system calls (~4 ms a request)."""
    try:
        return path.resolve().relative_to(root.resolve()).as_posix()
    except ValueError:
        return path.as_posix()
