"""Which secret rules can be run one line at a time with the same finds as on the whole text.

A request's prompt changes by a character a keystroke, but redaction read all of it each
time (~0.9 ms for 6 kB, issue 12). A rule whose every match lies inside one line, and whose
matching never looks past a line end, finds in a line what it finds in that line of any
text: its finds can be kept per line. That is decided from the pattern's parsed form, never
assumed: it may match no line break (no ``\\s``, no negated class holding one, no ``.``
under DOTALL), has no anchors but ``\\b``/``\\B`` (``^`` means the line's start in a line,
the text's start in the text), and looks around only one character that cannot be a line
break (at a line's edge the text shows a "\\n" that such a look-around cannot match, and the
line shows nothing: the same answer). Anything not understood is whole-text.
"""

from __future__ import annotations

import re
from typing import Any

try:  # the standard library's own parser (3.11+): a later Python may move it
    from re import _constants as C  # type: ignore[attr-defined]
    from re import _parser as P  # type: ignore[attr-defined]
except ImportError:  # pragma: no cover - then every rule reads the whole text
    C = P = None

# Categories (\s, \D, \W...) that hold "\n".
_NEWLINE_CATEGORIES = (
    frozenset()
    if C is None
    else frozenset(
        {
            C.CATEGORY_SPACE,
            C.CATEGORY_UNI_SPACE,
            C.CATEGORY_LINEBREAK,
            C.CATEGORY_UNI_LINEBREAK,
            C.CATEGORY_NOT_DIGIT,
            C.CATEGORY_UNI_NOT_DIGIT,
            C.CATEGORY_NOT_WORD,
            C.CATEGORY_UNI_NOT_WORD,
            C.CATEGORY_LOC_NOT_WORD,
        }
    )
)
_NEWLINE = ord("\n")
_BOUNDARIES = (
    frozenset()
    if C is None
    else frozenset(
        {
            C.AT_BOUNDARY,
            C.AT_NON_BOUNDARY,
            C.AT_UNI_BOUNDARY,
            C.AT_UNI_NON_BOUNDARY,
            C.AT_LOC_BOUNDARY,
            C.AT_LOC_NON_BOUNDARY,
        }
    )
)


def line_local(pattern: re.Pattern[str], extend: str = "") -> bool:
    """Whether ``pattern`` (and a rule's ``extend`` characters) find the same in each line
    alone as in the text the line is part of."""
    if "\n" in extend or P is None:
        return False
    try:
        parsed = P.parse(pattern.pattern, pattern.flags)
    except Exception:  # not understood: whole-text
        return False
    return _local(parsed, bool(pattern.flags & re.DOTALL))


def _local(items: Any, dotall: bool) -> bool:
    return all(_item_local(op, av, dotall) for op, av in items)


def _item_local(op: Any, av: Any, dotall: bool) -> bool:
    if op is C.LITERAL:
        return bool(av != _NEWLINE)
    if op is C.NOT_LITERAL:
        return bool(av == _NEWLINE)  # [^\n] alone never matches a line break
    if op is C.ANY:
        return not dotall
    if op is C.IN:
        return not _set_matches_newline(av)
    if op in (C.MAX_REPEAT, C.MIN_REPEAT, C.POSSESSIVE_REPEAT):
        return _local(av[2], dotall)
    if op is C.SUBPATTERN:
        _, add_flags, _, sub = av
        return _local(sub, dotall or bool(add_flags & re.DOTALL))
    if op is C.ATOMIC_GROUP:
        return _local(av, dotall)
    if op is C.BRANCH:
        return all(_local(branch, dotall) for branch in av[1])
    if op is C.GROUPREF:
        return True  # repeats a group's text, which held no line break
    if op is C.AT:
        return av in _BOUNDARIES
    if op in (C.ASSERT, C.ASSERT_NOT):
        _, sub = av
        return bool(sub.getwidth() == (1, 1)) and _local(sub, dotall)
    return False  # anything else: whole-text


def _set_matches_newline(items: Any) -> bool:
    negate = False
    hit = False
    for op, av in items:
        if op is C.NEGATE:
            negate = True
        elif op is C.LITERAL:
            hit = hit or av == _NEWLINE
        elif op is C.RANGE:
            hit = hit or av[0] <= _NEWLINE <= av[1]
        elif op is C.CATEGORY:
            hit = hit or av in _NEWLINE_CATEGORIES
        else:
            return True  # not understood: as if it could
    return hit != negate
