"""What a code model returns, cut to what belongs at the cursor.

Models say too much: they close the function and start the next one, repeat the
code after the cursor, loop, or indent as if at column 0. The syntax tree of
prefix + completion + suffix says where the text stops belonging, and a completion
that breaks a file that parsed is worse than none. Without a grammar (spec None)
only the text rules apply. Big files are read in a window of whole statements
around the cursor (``multiline.window``). Whether to ask for many lines at all is
``multiline.wants_block``, re-exported here. ``postprocess``, in order:

1. ``\\r\\n`` -> ``\\n``; on a blank cursor line leading newlines go (the model
   skipped the line). Indentation first, as later rules read it: a first line
   indented at an indented cursor moves the whole text so it starts at the cursor;
   a body written from column 0 moves under the cursor, in the file's unit.
2. One line: up to the first newline. At the end of a non-empty line a leading
   newline stays with the next line (a proposed next line); mid-line it leaves "".
3. Many lines: a line's third copy in a row goes, a 2-4 line cycle's third turn
   ends the text, and so does leaving the cursor's block: a dedent below it (a
   closing-only line ends it inclusively); by the tree, the close of the block
   node holding the cursor, the end of a definition the completion opened, or at
   top level the end of the first multi-line statement.
3b. On a blank line between statements (not an empty body) with code below no deeper
   than the cursor: the first statement only (with its body, decorators kept).
4. A line equal to the next line after the cursor ends the text (spacing and a trailing
   ``,``/``;`` ignored).
5. Trailing whitespace goes, and so do last lines repeating the lines after the
   cursor and an end doubling the rest of the cursor line (``a, b)`` before ``)``)
   when the parse gets no worse (without a grammar: when brackets are unbalanced).
6. Many lines: new ERROR/MISSING nodes end the text at the line of the first one
   inside it, then last lines go until none are new.
7. "" if the file has more ERROR/MISSING nodes than without the completion (less
   the hole it fills: a MISSING expression, or the empty body a block fills). (Rule 6
   already ends a block at its last good line, so a good first line is never lost.)
7b. Mid-line (code after the cursor on its line), one line: instead of "", its longest
   start that adds no error and ends a word, bracket or string (``self.x`` of
   ``self.x = f(a)`` inside ``g(|)``).

Rules 3b, 4's normalising and 7b were measured on ``bench/quality.py``
(``LEVERS``); chat replies reach here already reduced to the hole's text
(``chatreply.recover_hole``).
"""

from __future__ import annotations

import re

import tree_sitter as ts

from tandem.context.languages import LanguageSpec
from tandem.context.multiline import CLOSERS, OPENERS, at_empty_body, indent, wants_block, window
from tandem.context.site import Site, errors

__all__ = ["at_empty_body", "postprocess", "wants_block"]

QUOTES = "\"'`"
TOKEN_END = re.compile(r"[\w)\]}\"'`](?!\w)")  # where a start of a line may end
FITTING_TRIES = 6  # starts tried mid-line (then the first word): one incremental parse each
MAX_REPEATS = 2  # a line may come twice in a row: a third time is a loop
STATEMENTS = ("statement", "declaration", "definition")  # node types that are statements
# The rules added after measuring them on bench/quality.py; the bench switches one off
# (``--without NAME``) to measure what it is worth. Nothing else changes this.
LEVERS = {
    "statement_end": True,  # rule 3b: mid-block, one statement
    "normalised_suffix": True,  # rule 4: lines compared with whitespace normalised
    "absolute_rest": True,  # rule 1: an over-indented first line moves alone
    "indent_consistency": True,  # rule 1: and always when moving the rest breaks indentation
}


def postprocess(
    prefix: str,
    completion: str,
    suffix: str,
    spec: LanguageSpec | None,
    *,
    multiline: bool,
    tree: ts.Tree | None = None,
) -> str:
    """The text to insert between ``prefix`` and ``suffix``, possibly "" (rules above).

    ``tree``: the parse of ``prefix + suffix`` when the caller has it (an editor's
    document keeps one). Where the window is the whole text it is the tree without the
    completion, and each candidate is parsed incrementally from it: the same trees as
    parsing from scratch, at a fraction of the cost.
    """
    near = window(lf(prefix), lf(suffix))
    same = tree is not None and near[0] == prefix and near[1] == suffix
    site = Site(*near, spec, tree if same else None)
    text = lf(completion)
    if site.blank:
        text = text.lstrip("\n")
    lines = _reindent(text.split("\n"), site)
    if not multiline:
        keep_next = site.before.strip() and not lines[0] and not site.rest.strip()
        lines = lines[:2] if keep_next else lines[:1]
    else:
        lines = _cut_dedent(_drop_loops(lines, site), site)
        lines = _cut_block(lines, site)
        if LEVERS["statement_end"]:
            lines = _one_statement(lines, site)
    lines = _cut_at_suffix(lines, site)
    text = _drop_overlap("\n".join(line.rstrip() for line in lines).rstrip(), site)
    if spec is None:
        return text
    if multiline:
        text = _cut_errors(text, site)
    if site.count(text) <= site.base(multiline):
        return text
    return _fitting_start(text, site) if not multiline and site.rest.strip() else ""


def lf(text: str) -> str:
    """``text`` with CRLF line ends as LF. A one-character search first: the prefix of a
    5,000-line file is ~100 kB, and a two-character search of it cost ~0.1 ms a request
    (issue 12, fifth round); without a "\r" there is nothing to replace."""
    return text.replace("\r\n", "\n") if "\r" in text else text


def _one_statement(lines: list[str], site: Site) -> list[str]:
    """On a blank line between statements (not an empty body: code follows, no deeper
    than the cursor), end after the first statement: the code after the cursor is
    already written, and a model asked for a block there rewrites it (rule 3b)."""
    if not site.blank or not site.next_lines or not site.before:
        return lines
    if indent(site.next_lines[0]) > len(site.before):
        return lines
    if at_empty_body(site.prefix + site.suffix, len(site.prefix), site.spec):
        return lines
    if site.spec is None:
        return lines  # without a grammar a statement's end is a guess
    text = "\n".join(lines)
    data, p = text.encode(), site.p
    root = site.tree(text).root_node
    node = root.descendant_for_byte_range(p, p)
    statement = None
    while node is not None and node.start_byte == p and node.type not in site.spec.block_types:
        if any(kind in node.type for kind in STATEMENTS):
            statement = node
        node = node.parent
    if statement is not None and not statement.has_error:
        end = data.find(b"\n", statement.end_byte - p)
        return _trim_blank(data[:end].decode("utf-8", "ignore").split("\n")) if end >= 0 else lines
    if not site.indented:
        return lines
    column, kept = len(site.before), [lines[0]]
    for line in lines[1:]:  # the tree has errors here: by indentation
        deeper = line.strip() and indent(line) > column
        if _continues("\n".join(kept)) or deeper or kept[-1].lstrip().startswith("@"):
            kept.append(line)
            continue
        break
    return _trim_blank(kept)


def _reindent(lines: list[str], site: Site) -> list[str]:
    """Put the model's lines in the file's indentation under a cursor that is indented."""
    column = len(site.before)
    if not site.blank or not column or not lines[0].strip():
        return lines
    first = indent(lines[0])
    if first:  # indented from column 0 although the cursor is indented: move it all
        shift = column - first
        moved = [lines[0][first:]]
        for line in lines[1:]:
            pad = site.before[-1] * shift
            moved.append(pad + line if shift > 0 else line[min(-shift, indent(line)) :])
    elif _relative(lines, column):  # a body written as if the cursor were at column 0
        rest = [indent(ln) for ln in lines[1:] if ln.strip() and indent(ln)]
        step = min(rest) if rest else 1
        moved = [lines[0]]
        for line in lines[1:]:
            depth = indent(line) // step
            moved.append(site.before + site.unit * depth + line.lstrip() if line.strip() else "")
    else:
        return lines
    text, original = "\n".join(moved), "\n".join(lines)
    best = moved if site.count(text) <= site.count(original) else lines
    if first and LEVERS["absolute_rest"]:
        # Code models at an indented cursor often indent the first line once more and
        # write the rest at the file's own columns: then only the first line moves.
        stripped = [lines[0][first:], *lines[1:]]
        # Python's parser takes a line indented under a simple statement without an
        # error, so the count cannot tell: the line after the first says which is meant.
        consistent = _fits(stripped, column) and not _fits(moved, column)
        if LEVERS["indent_consistency"] and site.indented and consistent:
            return stripped
        if site.count("\n".join(stripped)) <= site.count("\n".join(best)):
            return stripped
    return best


def _fits(lines: list[str], column: int) -> bool:
    """Whether the first line after ``lines[0]`` (at ``column``) may be indented as it is:
    deeper only under a line that opens a block or a bracket."""
    rest = [ln for ln in lines[1:] if ln.strip()]
    if not rest:
        return True
    opens = lines[0].rstrip().endswith(":") or _continues(lines[0])
    return opens or indent(rest[0]) <= column


def _relative(lines: list[str], column: int) -> bool:
    """Whether lines after a bare first line are indented from column 0, not absolutely.

    Absolute text goes deeper than the cursor after a line that opens a block, and
    else stays at the cursor or leaves by a closing line or after a blank line.
    """
    rest = [(i, ln) for i, ln in enumerate(lines) if i and ln.strip()]
    if not rest or _continues(lines[0]):
        return False
    i, line = rest[0]
    if line.lstrip()[0] in CLOSERS:
        return False
    if lines[0].rstrip().endswith((":", "{", "(", "[")):
        return indent(line) <= column
    return indent(line) == 0 and i == 1


def _drop_loops(lines: list[str], site: Site) -> list[str]:
    """Drop a line's third and later copies in a row; end at a short cycle's third turn."""
    kept: list[str] = []
    for line in site.placed(lines):
        if len(kept) >= MAX_REPEATS and all(k == line for k in kept[-MAX_REPEATS:]):
            continue
        kept.append(line)
    for size in (2, 3, 4):
        for i in range(2 * size, len(kept) - size + 1):
            turn = kept[i : i + size]
            if any(turn) and turn == kept[i - size : i] == kept[i - 2 * size : i - size]:
                kept = kept[:i]
                break
    return [kept[0][len(site.before) :], *kept[1:]]


def _cut_dedent(lines: list[str], site: Site) -> list[str]:
    """End where a line leaves the cursor's block by indentation (rule 3, text).

    A closing-only line stays (rule 5 drops it if the suffix has it); lines inside an
    open bracket or triple-quoted string are continuations.
    """
    if not site.indented:
        return lines
    for i in range(1, len(lines)):
        line = lines[i]
        if not line.strip() or indent(line) >= site.body or _continues("\n".join(lines[:i])):
            continue
        closing = not line.strip().strip(CLOSERS + ";,")
        return _trim_blank(lines[: i + 1] if closing else lines[:i])
    return lines


def _cut_block(lines: list[str], site: Site) -> list[str]:
    """End where the tree says the cursor's block, or the one it opened, ends (rule 3).

    Else end after a multi-line statement holding the cursor (``def f():|``), a
    definition the completion starts with, or at top level the first multi-line one.
    """
    spec = site.spec
    if spec is None:
        return lines
    text = "\n".join(lines)
    data = text.encode()
    p, q = site.p, site.p + len(data)
    root = site.tree(text).root_node
    node: ts.Node | None = root.descendant_for_byte_range(p, p)
    while node is not None and not (
        node.type in spec.block_types and node.start_byte <= p < node.end_byte
    ):
        node = node.parent
    end = None
    if node is not None and node.end_byte < q:
        end = node.end_byte
    else:
        container = node or root
        for child in container.named_children:
            if child.end_byte <= p or "comment" in child.type:
                continue
            if child.start_byte >= q:
                break
            spans = child.start_point[0] != child.end_point[0] and child.end_byte < q
            defines = {child.type, *(c.type for c in child.named_children)} & spec.scope_types
            if spans and (child.start_byte < p or node is None or defines):
                end = child.end_byte
                break
            if node is not None:
                break  # inside a block only its first statement can be a definition
    if end is None:
        return lines
    end -= p
    while end < len(data) and data[end : end + 1] in (b")", b"]", b";", b","):
        end += 1  # keep "});" whole
    return _trim_blank(data[:end].decode("utf-8", "ignore").split("\n"))


def _cut_at_suffix(lines: list[str], site: Site) -> list[str]:
    """End where the completion reaches the line after the cursor (a word-bearing one)."""
    if not site.next_lines or not re.search(r"\w", site.next_lines[0]):
        return lines
    placed = site.placed(lines)
    same = _normalised_same if LEVERS["normalised_suffix"] else site.same
    for i, line in enumerate(placed):
        if same(line, site.next_lines[0]):
            cut = _trim_blank(lines[:i])
            if site.better("\n".join(cut), "\n".join(lines), True):
                return cut
            break
    return lines


def repeats_next_line(completion: str, suffix: str) -> bool:
    """Whether the answer's first line with code is the first line with code after the
    cursor (spacing and a trailing ``,``/``;`` ignored): the model wrote nothing new."""
    first = next((ln for ln in completion.split("\n") if ln.strip()), "")
    rest, _, later = suffix.partition("\n")
    following = rest if rest.strip() else next((ln for ln in later.split("\n") if ln.strip()), "")
    return bool(first.strip()) and _normalised_same(first, following)


def _normalised_same(line: str, other: str) -> bool:
    """Equal once spacing and a trailing comma or semicolon are ignored."""
    return _norm(line) == _norm(other)


def _norm(line: str) -> str:
    return " ".join(line.split()).rstrip(",;").replace("( ", "(").replace(" )", ")")


def _drop_overlap(text: str, site: Site) -> str:
    """Remove an end that repeats what follows the cursor: lines, or the rest of the line."""
    lines = text.split("\n")
    placed, following = site.placed(lines), site.next_lines
    if not site.rest.strip() and text.strip():
        for k in range(min(len(lines), len(following)), 0, -1):
            same = _normalised_same if LEVERS["normalised_suffix"] else site.same
            if all(same(a, b) for a, b in zip(placed[-k:], following[:k], strict=True)):
                cut = "\n".join(lines[:-k]).rstrip()
                if site.better(cut, text, True):
                    return cut
    rest = site.rest.strip()
    for k in range(min(len(text), len(rest)), 0, -1):
        overlap = rest[:k]
        if not text.endswith(overlap) or (k < len(rest) and re.match(r"\w", overlap)):
            continue
        cut = text[:-k].rstrip()
        if site.better(cut, text, _unbalanced(text, overlap)):
            return cut
    return text


def _cut_errors(text: str, site: Site) -> str:
    """End before the first line where the completion brings new syntax errors."""
    base = site.base(True)
    if site.count(text) <= base:
        return text
    lines = text.split("\n")
    p, data = site.p, text.encode()
    for error in errors(site.tree(text), site.spec):
        if p <= error.start_byte <= p + len(data):
            line = data[: error.start_byte - p].count(b"\n")
            lines = lines[:line] if line else lines
            break
    while lines and site.count("\n".join(lines).rstrip()) > base:
        lines.pop()
    return "\n".join(lines).rstrip()


def _fitting_start(text: str, site: Site) -> str:
    """Mid-line, the longest start of a one-line ``text`` that adds no syntax error and
    ends a word, a bracket or a string; or "". Inside a call's brackets a model often
    writes a whole line (``self.x = f(a)`` for ``g(|)``, ``a) + 1`` for ``len(|) + 2``)
    whose start is the argument (rule 7b). Starts ending before the first error are tried
    first, so a long answer costs a few parses, not one per word."""
    base, data = site.base(False), text.encode()
    found = [e.start_byte - site.p for e in errors(site.tree(text), site.spec)]
    first = min((at for at in found if 0 <= at <= len(data)), default=len(data))
    limit = len(data[:first].decode(errors="ignore"))
    ends = [m.end() for m in TOKEN_END.finditer(text) if m.end() < len(text)]
    ends = sorted(ends, key=lambda end: (end > limit, -end))
    for end in [*ends[:FITTING_TRIES], *ends[FITTING_TRIES:][-1:]]:  # and the shortest
        if site.count(text[:end]) <= base:
            return text[:end]
    return ""


def _unbalanced(text: str, overlap: str) -> bool:
    """Whether ``overlap`` at the end of ``text`` closes what ``text`` never opened."""
    for char in set(overlap):
        if char in CLOSERS:
            excess = text.count(char) - text.count(OPENERS[CLOSERS.index(char)])
            if overlap.count(char) > excess:
                return False
        elif char in QUOTES and text.count(char) % 2 == 0:
            return False
    return True


def _continues(text: str) -> bool:
    """Whether the next line of ``text`` is inside a bracket or triple-quoted string."""
    depth = sum(map(text.count, OPENERS)) - sum(map(text.count, CLOSERS))
    return depth > 0 or text.count('"""') % 2 == 1 or text.count("'''") % 2 == 1


def _trim_blank(lines: list[str]) -> list[str]:
    return lines[: max((i + 1 for i, ln in enumerate(lines) if ln.strip()), default=0)]
