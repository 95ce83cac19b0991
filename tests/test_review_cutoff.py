"""A looping or cut-off answer does not cost the review, and per-hunk is the default.

A small model sampled greedily can loop inside one JSON string until its answer is cut
off at ``max_tokens`` (finish_reason "length"), and loop the same way when asked again
with more room. Where the schema is a grammar its free strings are bounded; a cut-off
answer keeps the findings it closed; one cut off while repeating itself is not asked
again, and counted as truncated (not exit 12) when it closed findings before the loop.
The model is the loopback server.
"""

from __future__ import annotations

import functools
import json
from pathlib import Path
from typing import Any

import pytest

from tandem.review.ask import GRAMMAR_LENGTHS
from tandem.review.asking import LOOP_TAIL, looping
from tandem.review.verify import REASON_LENGTH

from modelserver import Behaviour
from review_support import (
    LONG_NEW,
    LONG_OLD,
    Repo,
    ReviewModel,
    answer,
    finding,
    git_env,  # noqa: F401 - autouse here
    pull_request,
    run_review,
    verify_claim,
)

OLD = "def pick(items):\n    first = items[0]\n    return first\n"
NEW = "def pick(items):\n    first = items[1]\n    return first\n"
CLOSED = finding(
    "app/pick.py",
    2,
    "error",
    kind="crash",
    rule="index-error",
    message="items[1] fails on a list of one item",
    quote="first = items[1]",
)
LOOP = "the index is wrong and " * 60  # the same words, over and over
LONG = " ".join(f"step {i} of a long explanation" for i in range(40))  # no loop, just long


def cut_after_one(loop: str = LOOP) -> str:
    """One finding closed, then a second cut off inside its message."""
    whole = answer(CLOSED)
    return whole[: -len("]}")] + ', {"path": "app/pick.py", "line": 2, "message": "' + loop


@pytest.fixture
def repo(tmp_path: Path) -> Repo:
    return pull_request(tmp_path / "repo", {"app/pick.py": OLD}, {"app/pick.py": NEW})


@pytest.fixture
def review(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], tmp_path: Path):
    return functools.partial(run_review, monkeypatch, capsys, tmp_path / "cache")


def schemas(server: ReviewModel) -> list[dict[str, Any]]:
    return [r.body["response_format"]["schema"] for r in server.requests if "messages" in r.body]


def test_a_grammar_bounds_every_free_string_of_an_answer(repo: Repo, review):
    with ReviewModel(lambda files, body: answer(CLOSED)) as server:
        out = review(repo, server, "--base", "main", "--format", "json",
                     TANDEM_PROVIDER="llamacpp", TANDEM_ENDPOINT=server.url)  # fmt: skip
        assert out.code == 0, out.stderr
        found = schemas(server)
        first = [s for s in found if "findings" in s["properties"]]
        second = [s for s in found if "verdict" in s["properties"]]
    assert first and second
    for schema in first:
        item = schema["properties"]["findings"]["items"]["properties"]
        bounds = {k: v["maxLength"] for k, v in item.items() if "maxLength" in v}
        assert bounds == GRAMMAR_LENGTHS
    for schema in second:
        assert schema["properties"]["reason"]["maxLength"] == REASON_LENGTH
    # A schema in the prompt (OpenAI's strict outputs) stays as it was: no bounds.
    with ReviewModel(lambda files, body: answer(CLOSED)) as server:
        assert review(repo, server, "--base", "main", "--format", "json").code == 0
        bodies = [r.body for r in server.requests if "messages" in r.body]
    assert bodies
    assert "maxLength" not in json.dumps([b["response_format"] for b in bodies])


def test_an_answer_cut_off_twice_keeps_its_closed_findings_and_stays_incomplete(repo: Repo, review):
    """Not a loop, just long: the lost tail may hold the worst finding, so the request is
    still incomplete (exit 12, or 1 when a closed finding fails the build), never cached."""
    cut = Behaviour(tokens=[cut_after_one(LONG[:300])], finish="length")
    longer = Behaviour(tokens=[cut_after_one(LONG[:600])], finish="length")
    with ReviewModel() as server:
        server.enqueue(cut, longer)
        out = review(repo, server, "--base", "main", "--format", "json", "--no-verify")
        assert out.code == 12, out.stderr
        assert [r.body["max_tokens"] for r in server.review_requests()] == [1024, 2048]
        report = out.report
        assert [(f["line"], f["rule"]) for f in report["findings"]] == [(2, "index-error")]
        assert [s["path"] for s in report["skipped"]] == ["app/pick.py"]
        assert report["summary"]["truncated_requests"] == 0
        server.enqueue(cut, longer)
        out = review(repo, server, "--base", "main", "--format", "json", "--no-verify",
                     "--fail-on", "error")  # fmt: skip
        assert out.code == 1, out.stderr
        # Never cached: a rerun asks again, and a complete answer then is taken.
        again = review(repo, server, "--base", "main", "--format", "json", "--fail-on", "error")
        assert again.code == 0, again.stderr
        assert len(server.review_requests()) == 5


def test_a_cut_off_answer_with_nothing_closed_is_still_exit_12(repo: Repo, review):
    nothing = '{"findings": [{"path": "app/pick.py", "line": 2, "message": "' + LOOP[:100]
    with ReviewModel(lambda files, body: nothing) as server:
        out = review(repo, server, "--base", "main", "--format", "json", "--fail-on", "error")
        assert out.code == 12, out.stderr
        assert out.report["summary"]["truncated_requests"] == 0
        assert [s["path"] for s in out.report["skipped"]] == ["app/pick.py"]


def test_an_answer_cut_off_while_looping_is_not_asked_again(repo: Repo, review):
    """Greedy decoding would write the same loop again, only longer: one ask, and the
    finding it closed is kept (the second pass rejects it here: info, exit 0)."""
    with ReviewModel(verify=lambda claim, body: json.dumps(
        {"verdict": "reject", "confidence": 0, "reason": "no"}
    )) as server:  # fmt: skip
        server.enqueue(Behaviour(tokens=[cut_after_one()], finish="length"))
        out = review(repo, server, "--base", "main", "--format", "json", "--fail-on", "error")
        assert out.code == 0, out.stderr
        assert [r.body["max_tokens"] for r in server.review_requests()] == [1024]
        assert [verify_claim(r.body)["rule"] for r in server.verify_requests()] == ["index-error"]
        summary = out.report["summary"]
        assert (summary["truncated_requests"], summary["demoted_findings"]) == (1, 1)
        assert [f["severity"] for f in out.report["findings"]] == ["info"]
        assert out.report["skipped"] == []
        assert "1 of 1 review requests were cut off while the model repeated itself" in out.stderr
        server.enqueue(Behaviour(tokens=[cut_after_one()], finish="length"))  # never cached
        text = review(repo, server, "--base", "main", "--format", "text")
        assert "1 answer cut off looping (closed findings kept)" in text.stdout + text.stderr


def test_a_loop_is_told_from_an_answer_that_ran_long():
    assert looping(cut_after_one())
    assert looping("x" + "ab" * (2 * LOOP_TAIL))
    assert not looping(cut_after_one(LONG))
    assert not looping(cut_after_one("each sentence here says something new, " + "and then"))
    assert not looping("short")
    prose = " ".join(f"finding {i} on line {i * 7} says a different thing" for i in range(40))
    assert not looping(prose)
    # Findings of the same shape, cut where each of them starts alike: no loop.
    several = [dict(CLOSED, line=n, message=f"message number {n}") for n in (2, 3, 4)]
    whole = json.dumps({"findings": several}, indent=2)
    cut_at = whole.rindex('"line": ') + len('"line": ')
    assert whole[:cut_at].count(whole[cut_at - LOOP_TAIL : cut_at]) == 3
    assert not looping(whole[:cut_at])
    # The same finding over and over is one.
    assert looping(json.dumps({"findings": [CLOSED] * 4}, indent=2)[:-10])


def test_per_hunk_is_the_default_unless_the_hunks_could_pass_the_request_cap(
    tmp_path: Path, review
):
    """Three hunks: three requests by default; packed (one request) when three hunks, a
    retry each and the second-pass questions could pass --max-requests or
    --max-total-tokens; the flags win."""
    repo = pull_request(tmp_path / "repo", {"jobs.py": LONG_OLD}, {"jobs.py": LONG_NEW})
    counted = {}
    for label, args in {
        "default": (),
        "auto, near the cap": ("--max-requests", "45"),
        "auto, enough room": ("--max-requests", "46"),
        "--no-per-hunk": ("--no-per-hunk",),
        "--per-hunk near the cap": ("--per-hunk", "--max-requests", "45"),
        # 46 asks of 2048 prompt tokens and 1024 answer tokens each: 141,312 tokens
        "auto, near the token cap": ("--max-total-tokens", "141311"),
        "auto, enough tokens": ("--max-total-tokens", "141312"),
    }.items():
        with ReviewModel() as server:
            out = review(repo, server, "--base", "main", "--format", "json", *args,
                         TANDEM_CACHE_DIR=str(tmp_path / label))  # fmt: skip
            assert out.code == 0, out.stderr
            counted[label] = len(server.review_requests())
    assert counted == {
        "default": 3,
        "auto, near the cap": 1,
        "auto, enough room": 3,
        "--no-per-hunk": 1,
        "--per-hunk near the cap": 3,
        "auto, near the token cap": 1,
        "auto, enough tokens": 3,
    }
