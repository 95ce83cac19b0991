"""Similar snippets: windows of other files that look like the code before the cursor.

This is the neighbouring-tabs trick Copilot uses: code near the cursor often repeats
a pattern written elsewhere (another handler, another test), and showing the model
that other place helps more than any definition. Similarity is the Jaccard index of
identifier-like words, between the last lines before the cursor and each sliding
window of each candidate file; each file offers its best window.

It runs on every completion request, so it is built for speed: a file sharing no
word with the query is skipped after one regex pass, words are collected per block
of ``gcd(window_lines, step)`` lines rather than per window, and a window's exact
score is computed only when an upper bound says it could beat what is already kept.
"""

from __future__ import annotations

import heapq
import math
import re
from collections.abc import Iterable
from dataclasses import dataclass
from functools import lru_cache

WORD = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
PREPARED_FILES = 64  # tokenised candidate files kept between requests
MAX_SNIPPET_CHARS = 8000  # a window of ordinary code is 500-2000 characters


@dataclass(frozen=True, slots=True)
class ScoredSnippet:
    path: str
    text: str
    start_line: int  # 0-based line of the window's first line in its file
    score: float  # Jaccard similarity with the query, in (0, 1]


def similar_snippets(
    query_text: str,
    candidates: Iterable[tuple[str, str]],
    *,
    window_lines: int = 20,
    step: int = 5,
    limit: int = 4,
    exclude: str = "",
) -> list[ScoredSnippet]:
    """The best window of each candidate ``(path, text)``, best ``limit`` files first.

    The query is the last ``window_lines`` lines of ``query_text``. A window whose text
    already appears in ``exclude`` (the prefix the prompt sends anyway) is skipped in
    favour of the file's next best window. Only windows scoring above 0 are returned.
    """
    if limit <= 0 or window_lines <= 0 or step <= 0:
        return []
    query = set(WORD.findall("\n".join(query_text.split("\n")[-window_lines:])))
    if not query:
        return []
    # A file's whole word set bounds the score of any of its windows
    # (|W∩Q| / |W∪Q| ≤ |F∩Q| / |Q|), so the likeliest files go first and the rest
    # are skipped outright once ``limit`` better windows are in hand.
    block = math.gcd(window_lines, step)
    pending = []
    for order, (path, text) in enumerate(candidates):
        prepared = _prepare(text, block, window_lines // block)
        shared = len(query & prepared.words)
        if shared:
            pending.append((shared / len(query), order, path, prepared))
    pending.sort(key=lambda item: (-item[0], item[1]))
    kept: list[tuple[float, int, ScoredSnippet]] = []  # a min-heap of the best so far
    for bound, order, path, prepared in pending:
        floor = kept[0][0] if len(kept) >= limit else 0.0
        if bound <= floor:
            break
        found = _best_window(query, path, prepared, window_lines, step, exclude, floor)
        if found is None:
            continue
        item = (found.score, -order, found)
        if len(kept) < limit:
            heapq.heappush(kept, item)
        else:
            heapq.heappushpop(kept, item)
    kept.sort(key=lambda item: (-item[0], -item[1]))
    return [snippet for _, _, snippet in kept]


@dataclass(frozen=True, slots=True)
class _Prepared:
    """A candidate file cut into blocks of lines, reused across requests.

    ``sizes[j]`` is the number of distinct words of the window starting at block ``j``
    (-1 until needed): it does not depend on the query, so it is counted at most once
    per file version, and only for windows that ever came close to winning.
    """

    lines: list[str]
    blocks: list[frozenset[str]]
    words: frozenset[str]
    sizes: list[int]


@lru_cache(maxsize=PREPARED_FILES)
def _prepare(text: str, block: int, per_window: int) -> _Prepared:
    """Tokenising is most of the cost, and the open files rarely change between requests.

    ``per_window`` is unused here but keys the cache, since ``sizes`` depend on it.
    """
    lines = text.split("\n")
    blocks = [
        frozenset(WORD.findall("\n".join(lines[start : start + block])))
        for start in range(0, len(lines), block)
    ]
    return _Prepared(lines, blocks, frozenset().union(*blocks), [-1] * len(blocks))


def _best_window(
    query: set[str],
    path: str,
    prepared: _Prepared,
    window_lines: int,
    step: int,
    exclude: str,
    floor: float,
) -> ScoredSnippet | None:
    """The file's best window scoring above ``floor`` whose text is not in ``exclude``."""
    lines, blocks, sizes = prepared.lines, prepared.blocks, prepared.sizes
    block = math.gcd(window_lines, step)
    hits = [words & query for words in blocks]
    per_window = window_lines // block
    starts = list(range(0, max(len(lines) - window_lines, 0) + 1, step))
    if starts[-1] + window_lines < len(lines) and starts[-1] + step < len(lines):
        starts.append(starts[-1] + step)  # a shorter last window, so the tail is seen
    best: ScoredSnippet | None = None
    best_score = floor
    size = len(query)
    for start in starts:
        first = start // block
        shared = len(set().union(*hits[first : first + per_window]))
        if shared / size <= best_score:
            continue  # even a window of only query words could not beat the best
        if sizes[first] < 0:
            sizes[first] = len(frozenset().union(*blocks[first : first + per_window]))
        score = shared / (sizes[first] + size - shared)
        if score <= best_score:
            continue
        snippet = "\n".join(lines[start : start + window_lines])
        if len(snippet) > MAX_SNIPPET_CHARS:
            continue  # minified or data lines: no prompt has room, and counting costs seconds
        if exclude and snippet.strip() and snippet in exclude:
            continue
        best, best_score = ScoredSnippet(path, snippet, start, score), score
    return best
