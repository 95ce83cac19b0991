"""Similar snippets: best window per file, ordering, limit, prefix dedupe, empty inputs, speed."""

from __future__ import annotations

import random

import pytest

from tandem.context.snippets import WORD, similar_snippets

QUERY = "\n".join(
    f"    total_{i} = compute_price(order_{i}, discount_rate, tax_table)" for i in range(20)
)


def filler(count: int, seed: int, offset: int = 0) -> list[str]:
    """Lines of words no query uses, each line with its own words."""
    return [f"noise{seed}_{offset + n}a = noise{seed}_{offset + n}b + 1" for n in range(count)]


def file_with(block: str, at: int, length: int, seed: int) -> str:
    lines = filler(length, seed)
    block_lines = block.split("\n")
    lines[at : at + len(block_lines)] = block_lines
    return "\n".join(lines[:length])


def test_the_best_window_of_a_file_is_chosen():
    text = file_with(QUERY, 40, 120, seed=1)
    [found] = similar_snippets(QUERY, [("shop.py", text)])
    assert found.path == "shop.py"
    assert found.start_line == 40
    assert found.text == QUERY
    assert found.score == pytest.approx(1.0)


def test_a_partial_match_scores_between_0_and_1():
    half = "\n".join(QUERY.split("\n")[:10])
    text = file_with(half, 50, 100, seed=2)
    [found] = similar_snippets(QUERY, [("a.py", text)])
    assert 0 < found.score < 1
    assert 30 <= found.start_line <= 50  # a window holding the 10 similar lines
    assert half in found.text


def test_only_the_last_lines_before_the_cursor_are_the_query():
    early = "\n".join(f"zebra_{i} = giraffe_{i}" for i in range(30))
    query = early + "\n" + QUERY
    zoo = "\n".join(f"zebra_{i} = giraffe_{i}" for i in range(30))
    assert similar_snippets(query, [("zoo.py", zoo)]) == []
    assert similar_snippets(query, [("zoo.py", zoo)], window_lines=60) != []


def test_files_are_ordered_by_score_and_limited():
    lines = QUERY.split("\n")
    candidates = [
        ("weak.py", file_with("\n".join(lines[:3]), 10, 60, seed=3)),
        ("best.py", file_with(QUERY, 20, 60, seed=4)),
        ("none.py", "\n".join(filler(60, seed=5))),
        ("good.py", file_with("\n".join(lines[:12]), 0, 60, seed=6)),
    ]
    found = similar_snippets(QUERY, candidates)
    assert [s.path for s in found] == ["best.py", "good.py", "weak.py"]
    assert found[0].score > found[1].score > found[2].score > 0
    assert [s.path for s in similar_snippets(QUERY, candidates, limit=2)] == ["best.py", "good.py"]
    assert similar_snippets(QUERY, candidates, limit=0) == []


def test_one_window_per_file():
    twice = QUERY + "\n" + "\n".join(filler(40, seed=7)) + "\n" + QUERY
    found = similar_snippets(QUERY, [("twice.py", twice)], limit=4)
    assert len(found) == 1


def test_windows_already_in_the_prefix_are_skipped():
    lines = QUERY.split("\n")
    copy = file_with(QUERY, 0, 60, seed=8)
    other = "\n".join(lines[:8])
    text = copy + "\n" + "\n".join(filler(20, seed=9)) + "\n" + other
    prefix = "import shop\n\n" + copy + "\n"  # e.g. the file is open and being edited
    [found] = similar_snippets(QUERY, [("copy.py", text)], exclude=prefix)
    assert found.start_line > 60  # the file's next best window, not a copy of the prefix
    assert other in found.text
    [without] = similar_snippets(QUERY, [("copy.py", text)])
    assert (without.start_line, without.text) == (0, QUERY)
    assert similar_snippets(QUERY, [("copy.py", copy)], exclude=prefix) == []


def test_empty_inputs():
    assert similar_snippets("", [("a.py", QUERY)]) == []
    assert similar_snippets("   \n\n  ", [("a.py", QUERY)]) == []
    assert similar_snippets("+-*/ 123 456", [("a.py", QUERY)]) == []
    assert similar_snippets(QUERY, []) == []
    assert similar_snippets(QUERY, [("empty.py", ""), ("blank.py", "\n\n\n")]) == []


def test_short_files_and_the_tail_are_windows_too():
    short = "\n".join(QUERY.split("\n")[:3])
    [found] = similar_snippets(QUERY, [("short.py", short)])
    assert (found.start_line, found.text) == (0, short)
    tail = "\n".join(filler(47, seed=10)) + "\n" + QUERY  # ends off the step grid
    [found] = similar_snippets(QUERY, [("tail.py", tail)])
    assert QUERY.split("\n")[-1] in found.text
    assert found.start_line == 50


def test_words_are_identifiers_only():
    assert WORD.findall("x1 = 2 + _y(3.5, 'a b') # 9z") == ["x1", "_y", "a", "b", "z"]


def test_repeated_requests_reuse_each_files_preparation():
    """What keeps a request over twenty 1,000-line files cheap: each file is tokenised
    once, then answered from the prepared windows (speed itself: bench/context.py)."""
    from tandem.context.snippets import _prepare

    rng = random.Random(0)
    vocabulary = [f"name{i}" for i in range(3000)]

    def line() -> str:
        a, b, c, d = rng.sample(vocabulary, 4)
        return f"    {a} = {b}({c}, {d}.attr)"

    files = [(f"f{n}.py", "\n".join(line() for _ in range(1000))) for n in range(20)]
    query = "\n".join(line() for _ in range(20))
    first = similar_snippets(query, files)  # the first call tokenises the files
    before = _prepare.cache_info()
    for _ in range(5):
        assert similar_snippets(query, files) == first
    after = _prepare.cache_info()
    assert first
    assert after.misses == before.misses  # nothing tokenised again
    assert after.hits - before.hits == 5 * len(files)
