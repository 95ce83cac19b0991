"""The hole's text in a chat model's reply to a hole-filling request.

Chat-only models (GPT-4o and other chat deployments, small instruct models) asked to fill
``<FILL_HERE>`` answer in one of three shapes: the whole file (or the part they were
shown) restated with the hole filled, fenced or not; only the missing code; or prose
around a fenced block of either. ``recover_hole`` finds the restated cursor line by the
prefix's last lines and the hole's end by the suffix's first lines, comparing lines with
whitespace normalised; a reply that does not restate the file is the code itself, less
a repeated start of the cursor line. ``complete`` says the reply already holds the whole
hole (the suffix's head came after it, or the fence closed), so reading can stop.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

HOLE = "<FILL_HERE>"
FENCE = re.compile(r"^ {0,3}(`{3,}|~{3,})[^\n`]*$")
ALIGN_MIN = 2  # the prefix's last non-blank lines a restatement must repeat, at least
ALIGN = 3  # prefix lines (non-blank) that place the cursor line; suffix lines that end it


@dataclass(frozen=True)
class Recovered:
    text: str | None  # None: nothing usable (yet)
    complete: bool


def norm(line: str) -> str:
    return " ".join(line.split())


def recover_hole(prefix: str, suffix: str, reply: str) -> Recovered:
    """What the reply puts between ``prefix`` and ``suffix`` (module doc)."""
    reply = reply.replace("\r\n", "\n")
    best: tuple[int, Recovered] | None = None
    for code, closed in _candidates(reply):
        if HOLE in code:
            continue
        score, found = _restated(prefix, suffix, code, closed)
        if found is not None and (best is None or score > best[0]):
            best = (score, found)
    if best is not None:
        return best[1]
    blocks = [c for c in _candidates(reply) if HOLE not in c[0]]
    if not blocks:
        return Recovered(None, False)
    code, closed = blocks[0]
    return Recovered(_bare(prefix, code) or None, closed)


def _candidates(reply: str) -> list[tuple[str, bool]]:
    """Fenced blocks (with whether each closed), else the whole reply as one unfenced block."""
    lines = reply.split("\n")
    blocks: list[tuple[str, bool]] = []
    i = 0
    while i < len(lines):
        opening = FENCE.match(lines[i])
        if opening is None:
            i += 1
            continue
        fence = opening.group(1)
        body: list[str] = []
        i += 1
        closed = False
        while i < len(lines):
            stripped = lines[i].strip()
            if stripped.startswith(fence) and not stripped.strip(fence[0]):
                closed = True
                break
            body.append(lines[i])
            i += 1
        blocks.append(("\n".join(body), closed))
        i += 1
    return blocks or [(reply, False)]


def _restated(prefix: str, suffix: str, code: str, closed: bool) -> tuple[int, Recovered | None]:
    """Align ``code`` as a restatement: the cursor line after the prefix's last lines."""
    lines = code.split("\n")
    pre = prefix.split("\n")
    before, above = pre[-1], [ln for ln in pre[:-1] if ln.strip()][-ALIGN:]
    head = norm(before)
    best_i, best_score = -1, 0
    for i, line in enumerate(lines):
        if head and not norm(line).startswith(head):
            continue
        score = _matched_above(lines[:i], above) * 2 + (1 if head else 0)
        if score > best_score:
            best_i, best_score = i, score
    if best_i < 0 or best_score < 2 * min(len(above), ALIGN_MIN):
        return 0, None  # one matching line (a ``)`` or ``return x``) places nothing
    first = lines[best_i]
    start = _after_head(first, before)
    if start is None:
        return 0, None
    shift = _shift(lines[:best_i], above)
    hole = [first[start:], *(_reindent(ln, shift) for ln in lines[best_i + 1 :])]
    text, found_end = _up_to_suffix(hole, suffix)
    complete = found_end or (closed and not _suffix_head(suffix))
    return best_score, Recovered(text, complete)


def _matched_above(lines: list[str], above: list[str]) -> int:
    """How many of ``above`` (the prefix's last non-blank lines) end ``lines``, in order."""
    code = [norm(ln) for ln in lines if ln.strip()]
    n = 0
    for want in reversed(above):
        if n < len(code) and code[-1 - n] == norm(want):
            n += 1
        else:
            break
    return n


def _after_head(line: str, before: str) -> int | None:
    """Where the hole starts in the restated cursor line: after the text before the cursor."""
    if not before.strip():
        return len(line) - len(line.lstrip())
    want = before.strip()
    at = line.find(want)
    if at < 0:  # spacing differs inside: walk both, ignoring whitespace
        k = 0
        for j, ch in enumerate(line):
            if k == len(want.replace(" ", "")):
                return j
            if ch.isspace():
                continue
            if ch != want.replace(" ", "")[k]:
                return None
            k += 1
        return len(line) if k == len(want.replace(" ", "")) else None
    return at + len(want)


def _shift(lines: list[str], above: list[str]) -> int:
    """Columns to add to the reply's lines: the file's indentation over the reply's."""
    code = [ln for ln in lines if ln.strip()]
    if not code or not above:
        return 0
    return _indent(above[-1]) - _indent(code[-1])


def _reindent(line: str, shift: int) -> str:
    if shift > 0 and line.strip():
        return " " * shift + line
    if shift < 0:
        return line[min(-shift, _indent(line)) :]
    return line


def _indent(line: str) -> int:
    return len(line) - len(line.lstrip())


def _suffix_head(suffix: str) -> list[str]:
    """The rest of the cursor line, then the next non-blank lines, normalised."""
    first, *after = suffix.split("\n")
    lines = [norm(ln) for ln in after if ln.strip()][:ALIGN]
    return [norm(first), *lines] if first.strip() else lines


def _up_to_suffix(hole: list[str], suffix: str) -> tuple[str, bool]:
    """Cut the restated hole where the suffix starts; whether it did start."""
    first, *after = suffix.split("\n")
    rest = norm(first)
    following = [norm(ln) for ln in after if ln.strip()][:ALIGN]
    if not rest and not following:
        return "\n".join(hole).rstrip(), False
    need = min(len(following), 2)
    for i, line in enumerate(hole):
        here = norm(line)
        if rest:
            if not here.endswith(rest):
                continue
            seen = _next_lines(hole, i + 1, need)
            if need and seen and seen != following[: len(seen)]:
                continue
            cut = line.rstrip()
            cut = cut[: len(cut) - len(first.strip())] if cut.endswith(first.strip()) else cut
            return "\n".join([*hole[:i], cut]).rstrip(), len(seen) == need
        if i and here == following[0] and _next_lines(hole, i, need) == following[:need]:
            return "\n".join(hole[:i]).rstrip(), True
    return "\n".join(hole).rstrip(), False


def _next_lines(lines: list[str], start: int, count: int) -> list[str]:
    return [norm(ln) for ln in lines[start:] if ln.strip()][:count]


def _bare(prefix: str, code: str) -> str:
    """A reply that is only the code: less a restated start of the cursor line, or less a
    restated end of it (``return f(`` before the cursor, ``f(a, b)`` replied)."""
    code = code.strip("\n")
    before = prefix.split("\n")[-1].strip()
    stripped = code.lstrip()
    if before and stripped.startswith(before):
        return stripped[len(before) :]
    tail = _restated_tail(before, stripped)
    if tail:
        return stripped[len(tail) :]
    if not before:
        return stripped if "\n" not in code else code[_indent(code) :]
    return code


TAIL_MIN = 4  # characters of the cursor line's end a reply must restate to be cut


def _restated_tail(before: str, code: str) -> str:
    """The longest end of ``before`` that starts a word (``version.f(``, not ``ion.f(``)
    and that ``code`` begins with, holding a letter and ``TAIL_MIN`` characters; or ""."""
    for start in range(1, len(before) - TAIL_MIN + 1):
        tail = before[start:]
        if not _word_start(before, start) or not any(ch.isalpha() for ch in tail):
            continue
        if code.startswith(tail):
            return tail
    return ""


def _word_start(text: str, at: int) -> bool:
    here, previous = text[at], text[at - 1]
    return (here.isalnum() or here == "_") and not (previous.isalnum() or previous == "_")
