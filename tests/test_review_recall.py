"""What the first pass asks, so that a small model looks at every changed row.

A 0.5B model answered ``{"findings": []}`` to most seeded bugs, copying the empty answer
the instructions showed it; so the instructions no longer show one, and end with the
changed rows' line numbers to be checked one at a time. The review samples greedily
(temperature 0), whatever ``[chat] temperature`` says. The loopback model server
records each request; what is asserted is what the model was sent.
"""

from __future__ import annotations

import functools
import json
import re
from pathlib import Path

import pytest

from tandem.review.ask import build_messages, fence, overhead_text, path_text, request_data
from tandem.review.checklist import MAX_CHECK_RUNS, changed_rows
from tandem.review.packing import ReviewRequest
from tandem.review.units import HunkLines, ReviewUnit, Row

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
    user_message,
)

OLD = (
    "def pick(items):\n    first = items[0]\n    return first\n\n\ndef size(items):\n    return 0\n"
)
NEW = (
    "def pick(items):\n    first = items[1]\n    return first\n\n\n"
    "def size(items):\n    n = len(items)\n    return n\n"
)


@pytest.fixture
def repo(tmp_path: Path) -> Repo:
    return pull_request(
        tmp_path / "repo",
        {"app/pick.py": OLD, "app/other.py": "X = 1\n"},
        {"app/pick.py": NEW, "app/other.py": "X = 2\n"},
    )


@pytest.fixture
def review(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], tmp_path: Path):
    return functools.partial(run_review, monkeypatch, capsys, tmp_path / "cache")


def test_the_changed_rows_are_listed_after_the_data_and_sampling_is_greedy(
    repo: Repo, review, tmp_path: Path
):
    config = tmp_path / "xdg" / "tandem" / "config.toml"
    config.parent.mkdir(parents=True)
    config.write_text("[chat]\ntemperature = 0.9\n")  # for chat; a review ignores it
    with ReviewModel() as server:
        out = review(repo, server, "--base", "main", "--format", "json",
                     XDG_CONFIG_HOME=str(tmp_path / "xdg"))  # fmt: skip
        assert out.code == 0, out.stderr
        bodies = [r.body for r in server.review_requests()]
    assert bodies and all(body["temperature"] == 0 for body in bodies)
    prompts = "\n".join(user_message(body) for body in bodies)
    assert '{"findings": []}' not in prompts  # no empty answer shown to copy
    for body in bodies:
        prompt = user_message(body)
        after_data = prompt[prompt.index("-----END UNTRUSTED DATA") :]
        files = re.search(r"Files under review: (\[.*\])", prompt)
        assert files is not None
        listed = after_data[after_data.index("check the changed rows one at a time") :]
        if "app/pick.py" in files.group(1) and "app/other.py" in files.group(1):
            assert re.search(r"lines 2, 7-8 of file \d; line 1 of file \d", listed), listed
        elif "app/pick.py" in files.group(1):
            assert "(lines 2, 7-8)" in listed
        else:
            assert "(line 1)" in listed
        # Only our numbers leave the fence: no code of the change after the end marker.
        assert "items[1]" not in after_data and "len(items)" not in after_data


def unit(path: str, lines: list[int]) -> ReviewUnit:
    rows = tuple(Row("+", n, f"x{n} = {n}") for n in lines)
    return ReviewUnit(path, "python", rows, (HunkLines(lines[0], lines[-1], tuple(lines)),))


def test_a_long_list_of_changed_rows_is_cut_and_counted_within_its_budget():
    every_other = [n for n in range(1, 41) if n % 2]  # 20 runs of one row
    request = ReviewRequest((unit("a.py", [5, 6, 7, 9]), unit("b.py", every_other)))
    text = changed_rows(request)
    assert text.startswith("lines 5-7, 9 of file 1; lines 1, 3, 5,")
    assert "of file 2" in text
    runs = re.findall(r"\b\d+(?:-\d+)?\b", re.sub(r"file \d|and \d+ more rows", "", text))
    assert len(runs) == MAX_CHECK_RUNS
    assert text.endswith(f", and {20 - (MAX_CHECK_RUNS - 2)} more rows")
    # What a request sends besides its data stays within what every request is budgeted
    # for: the fixed text (with the widest list there can be) and each file's share.
    sent = "\n".join(m.content for m in build_messages(request))
    extra = len(sent) - len(fence(request_data(request))[0])
    fixed = len(overhead_text(schema=False)) - len(fence(request_data(ReviewRequest(())))[0])
    assert extra <= fixed + sum(len(path_text(p)) for p in request.paths)


def test_a_grammar_caps_the_findings_at_one_per_changed_row_and_two_more(repo: Repo, review):
    """A greedy small model can list findings in a loop until it is cut off (exit 12 on a
    good change); where the schema is a grammar (llama.cpp, Ollama, embedded) the list is
    capped. OpenAI's strict schema in the prompt stays as it was."""
    changed = {"app/pick.py": 3, "app/other.py": 1}
    with ReviewModel() as server:
        out = review(repo, server, "--base", "main", "--format", "json",
                     TANDEM_PROVIDER="llamacpp", TANDEM_ENDPOINT=server.url)  # fmt: skip
        assert out.code == 0, out.stderr
        bodies = [r.body for r in server.review_requests()]
    assert bodies
    for body in bodies:
        files = json.loads(re.search(r"Files under review: (\[.*\])", user_message(body))[1])
        findings = body["response_format"]["schema"]["properties"]["findings"]
        assert findings["maxItems"] == 2 + sum(changed[f] for f in files)
    with ReviewModel() as server:
        assert review(repo, server, "--base", "main", "--format", "json").code == 0
        for r in server.review_requests():
            schema = r.body["response_format"]["json_schema"]["schema"]
            assert "maxItems" not in schema["properties"]["findings"]


def test_per_hunk_asks_one_request_per_hunk_showing_only_its_own_changed_rows(
    tmp_path: Path, review
):
    repo = pull_request(tmp_path / "repo", {"jobs.py": LONG_OLD}, {"jobs.py": LONG_NEW})
    changed = [repo.line_of("jobs.py", t) for t in ("done = 1", "done + 1", "jobs.pop()")]

    def on_every_changed_row(files: list[str], body) -> str:
        """A finding on each "+" row the request shows (quoted by ``with_quotes``)."""
        shown = re.findall(r"^\s*(\d+) \+ ", user_message(body), re.M)
        return answer(*(finding("jobs.py", int(n), "info") for n in shown))

    with ReviewModel(on_every_changed_row) as server:
        whole = review(repo, server, "--base", "main", "--format", "json", "--no-per-hunk")
        assert whole.code == 0, whole.stderr
        assert len(server.review_requests()) == 1  # one small file: one request
    with ReviewModel(on_every_changed_row) as server:
        out = review(repo, server, "--base", "main", "--format", "json", "--per-hunk")
        assert out.code == 0, out.stderr
        bodies = [r.body for r in server.review_requests()]
    assert len(bodies) == 3 and out.report["summary"]["model_requests"] == 3
    shown = []
    for body in bodies:
        prompt = user_message(body)
        rows = [int(n) for n in re.findall(r"^\s*(\d+) \+ ", prompt, re.M)]
        assert len(rows) == 1  # its own hunk's row; no other hunk's "+" row
        assert f"(line {rows[0]})" in prompt[prompt.index("-----END UNTRUSTED DATA") :]
        shown += rows
    assert sorted(shown) == changed
    # The first hunk's view is its function, cut short of the second hunk's lines.
    first = next(user_message(b) for b in bodies if "done = 1" in user_message(b))
    assert "def run(jobs):" in first and "return done + 1" not in first
    # Every finding is kept, each on its own row, as in the review of the whole file.
    assert sorted(f["line"] for f in out.report["findings"]) == changed
    assert sorted(f["line"] for f in whole.report["findings"]) == changed
