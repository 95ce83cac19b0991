"""Units packed into model requests within a token budget, so that reruns hit the cache.

Requests are cached by their exact prompt, so packing must be stable: a change to one
hunk should alter only the request that holds it. Greedy packing alone would not do
that (one unit growing pushes every later unit into a different request), so files
also end a request at content-defined points: after a file whose path hashes to a
multiple of ``GROUP_EVERY``. A budget overflow shifts units only up to the next such
point, and an edit that does not change which files are in the diff moves none.
With ``alone`` (``--per-hunk``) every unit is a request of its own.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import cached_property

from tandem.review.units import ReviewUnit

GROUP_EVERY = 3  # on average, a request holds up to this many files


@dataclass(frozen=True)
class ReviewRequest:
    """The units one model call reviews."""

    units: tuple[ReviewUnit, ...]

    @cached_property
    def paths(self) -> tuple[str, ...]:
        return tuple(dict.fromkeys(u.path for u in self.units))

    @cached_property
    def definitions(self) -> tuple[tuple[str, str], ...]:
        """Every unit's definitions, each text once."""
        seen: dict[str, str] = {}
        for unit in self.units:
            for path, text, _ in unit.definitions:
                seen.setdefault(text, path)
        return tuple((path, text) for text, path in seen.items())

    def units_of(self, path: str) -> list[ReviewUnit]:
        return [u for u in self.units if u.path == path]

    @property
    def hunks(self) -> int:
        return sum(len(u.hunks) for u in self.units)


def _ends_group(path: str) -> bool:
    digest = hashlib.blake2b(path.encode("utf-8", "surrogatepass"), digest_size=4).digest()
    return int.from_bytes(digest, "big") % GROUP_EVERY == 0


def pack(
    units: Sequence[ReviewUnit],
    budget: int,
    path_cost: Callable[[str], int],
    alone: bool = False,
) -> list[ReviewRequest]:
    """Units, in order, into requests of at most ``budget`` tokens of data each
    (``alone``: one unit a request).

    ``path_cost`` is what naming one more file costs a request (its file list and
    schema). A unit is never cut here: the unit builder already made each fit alone.
    """
    requests: list[ReviewRequest] = []
    current: list[ReviewUnit] = []
    used = 0
    definitions: set[str] = set()

    def close() -> None:
        nonlocal current, used
        if current:
            requests.append(ReviewRequest(tuple(current)))
        current, used = [], 0
        definitions.clear()

    for i, unit in enumerate(units):
        new_definitions = [(t, n) for _, t, n in unit.definitions if t not in definitions]
        cost = unit.code_tokens + sum(n for _, n in new_definitions)
        if not current or current[-1].path != unit.path:
            cost += path_cost(unit.path)
        if current and used + cost > budget:
            close()
            cost = unit.tokens + path_cost(unit.path)
            new_definitions = [(t, n) for _, t, n in unit.definitions]
        current.append(unit)
        used += cost
        definitions.update(t for t, _ in new_definitions)
        last_of_file = i + 1 == len(units) or units[i + 1].path != unit.path
        if alone or (last_of_file and _ends_group(unit.path)):
            close()
    close()
    return requests
