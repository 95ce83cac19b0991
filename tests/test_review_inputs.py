"""``tandem review``'s inputs end to end: the base, stdin, filters, the cache, trusted config.

Same harness as ``test_review.py``: a real git repository, the loopback model server, the
CLI's ``main`` in this process (and the real console script for stdin).
"""

from __future__ import annotations

import functools
import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from review_support import (
    INJECTION,
    SKIPPED,
    Repo,
    ReviewModel,
    answer,
    finding,
    first_changed,
    git_env,  # noqa: F401 - autouse here
    make_repo,
    model_env,
    request_files,
    run_review,
    user_message,
)

TANDEM = str(Path(sys.executable).parent / "tandem")


@pytest.fixture
def server() -> Iterator[ReviewModel]:
    with ReviewModel() as model:
        yield model


@pytest.fixture
def repo(tmp_path: Path) -> Repo:
    return make_repo(tmp_path / "repo")


@pytest.fixture
def review(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], tmp_path: Path):
    """Run ``tandem review ARGS`` in ``repo`` against ``server``; the exit code and output."""
    return functools.partial(run_review, monkeypatch, capsys, tmp_path / "cache")


# ---- the base --------------------------------------------------------------------------------


def test_no_base_is_a_clear_error(server: ReviewModel, repo: Repo, review):
    out = review(repo, server)
    assert out.code == 2
    assert "no upstream and origin/HEAD does not exist; pass --base REF" in out.stderr


def test_default_base_is_origin_head(server: ReviewModel, tmp_path: Path, review):
    origin = make_repo(tmp_path / "origin")
    origin.git("checkout", "-q", "main")
    clone = Repo(tmp_path / "clone")
    Repo(tmp_path).git("clone", "-q", str(origin.path), str(clone.path))
    clone.git("checkout", "-q", "-b", "work")
    clone.replace("app/util.py", "return max(low, min(high, value))", "return min(high, value)")
    clone.commit("simplify")
    out = review(clone, server, "--format", "json")
    assert out.code == 0, out.stderr
    assert [request_files(r.body) for r in server.review_requests()] == [["app/util.py"]]


# ---- inputs: stdin, filters, output -------------------------------------------------------


def test_diff_from_stdin(server: ReviewModel, repo: Repo, tmp_path: Path):
    diff = repo.git("diff", "main", "feature").encode()
    line = repo.line_of("app/cart.py", "clamp(qty")
    server.respond = lambda files, body: (
        answer(finding("app/cart.py", line)) if "app/cart.py" in files else answer()
    )
    env = {**os.environ, **model_env(server, tmp_path / "cache")}
    done = subprocess.run(
        [TANDEM, "review", "--diff", "-", "--format", "json", "--fail-on", "warning"],
        input=diff,
        capture_output=True,
        cwd=repo.path,
        env=env,
        timeout=60,
    )
    assert done.returncode == 1, done.stderr
    report = json.loads(done.stdout)
    assert [(f["path"], f["line"]) for f in report["findings"]] == [("app/cart.py", line)]
    assert {s["path"] for s in report["skipped"]} == set(SKIPPED)
    assert b"review: app/cart.py: 2 hunks, 1 finding\n" in done.stderr  # not a TTY: a line a file


def test_diff_without_the_files_reviews_the_hunks(
    server: ReviewModel, repo: Repo, review, tmp_path
):
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    (elsewhere / "change.diff").write_text(repo.git("diff", "main", "feature"), encoding="utf-8")
    out = review(
        Repo(elsewhere), server, "--no-per-hunk", "--diff", "change.diff", "--format", "json"
    )
    assert out.code == 0, out.stderr
    texts = [user_message(r.body) for r in server.review_requests()]
    cart = next(t for t in texts if "File: app/cart.py" in t)
    assert "Inside:" not in cart  # no file to parse: the hunk alone
    assert INJECTION in cart


def test_include_exclude_and_output_file(server: ReviewModel, repo: Repo, review, tmp_path: Path):
    target = tmp_path / "report.json"
    out = review(
        repo, server, "--base", "main", "--format", "json", "--output", str(target),
        "--include", "app/**", "--exclude", "app/config.py", "--quiet",
    )  # fmt: skip
    assert out.code == 0 and out.stdout == "" and out.stderr == ""
    report = json.loads(target.read_text(encoding="utf-8"))
    skipped = {s["path"]: s["reason"] for s in report["skipped"]}
    assert skipped["app/config.py"] == "excluded by --exclude app/config.py"
    assert skipped["package-lock.json"] == "not matched by --include"
    reviewed = {p for r in server.review_requests() for p in request_files(r.body)}
    assert reviewed == {"app/cart.py", "app/checkout.py", "app/réglages.py"}


def test_max_findings_keeps_the_most_severe(server: ReviewModel, repo: Repo, review):
    def respond(files, _):
        return answer(
            *(finding(p, first_changed(repo, p), "info", rule="minor") for p in files),
            *(finding(p, first_changed(repo, p), "error", rule="major") for p in files[:1]),
        )

    server.respond = respond
    out = review(repo, server, "--base", "main", "--format", "json", "--max-findings", "1")
    assert [f["rule"] for f in out.report["findings"]] == ["major"]
    assert "less severe findings left out (--max-findings 1)" in out.stderr


# ---- the cache ------------------------------------------------------------------------------


def test_rerun_on_the_same_diff_asks_nothing(server: ReviewModel, repo: Repo, review):
    line = repo.line_of("app/cart.py", "clamp(qty")
    server.respond = lambda files, body: (
        answer(finding("app/cart.py", line)) if "app/cart.py" in files else answer()
    )
    first = review(repo, server, "--base", "main", "--format", "json")
    asked = len(server.review_requests()) + len(server.verify_requests())
    assert asked >= 2 and first.report["summary"]["model_requests"] == asked
    second = review(repo, server, "--base", "main", "--format", "json")
    assert len(server.review_requests()) + len(server.verify_requests()) == asked
    assert second.report["summary"]["model_requests"] == 0
    assert second.report["summary"]["cached_requests"] == asked
    assert second.report["findings"] == first.report["findings"]


def test_a_changed_hunk_asks_again_only_for_its_request(server, repo: Repo, review):
    repo.write(".tandem.toml", "[chat]\ncontext_tokens = 1500\n")  # small requests: several
    repo.commit("smaller review requests")
    first = review(repo, server, "--base", "main", "--format", "json")
    assert first.code == 0, first.stderr
    total = first.report["summary"]["model_requests"]
    assert total >= 2
    repo.replace("app/checkout.py", "sum(1 for _ in orders)", "sum(1 for o in orders)")
    repo.commit("rename a variable")
    before = len(server.review_requests())
    second = review(repo, server, "--base", "main", "--format", "json")
    new = server.review_requests()[before:]
    assert len(new) == 1 and "app/checkout.py" in request_files(new[0].body)
    assert second.report["summary"]["cached_requests"] == total - 1


# ---- trusting the base's configuration -----------------------------------------------------


def test_settings_come_from_the_base_revision_unless_the_checkout_is_trusted(
    tmp_path: Path, review
):
    with ReviewModel() as trusted, ReviewModel() as attacker:

        def config(server: ReviewModel) -> str:
            return (
                f'cache_dir = "{tmp_path / "cache"}"\n'
                f'[chat]\nprovider = "openai"\nendpoint = "{server.url}/v1"\nmodel = "m"\n'
            )

        repo = make_repo(tmp_path / "repo", config=config(trusted))
        repo.write(".tandem.toml", config(attacker))  # the change points elsewhere
        repo.write(".tandemignore", "app/cart.py\n")  # and hides a file
        repo.commit("reconfigure")

        for flags in ((), ("--trust-base-config",)):  # the default; the old flag still works
            out = review(repo, None, "--base", "main", "--format", "json", *flags)
            assert out.code == 0, out.stderr
            assert attacker.review_requests() == []
            reviewed = {p for r in trusted.review_requests() for p in request_files(r.body)}
            assert "app/cart.py" in reviewed
            assert "repository settings from main:.tandem.toml" in out.stderr

        out = review(repo, None, "--base", "main", "--format", "json", "--trust-checkout-config")
        assert out.code == 0, out.stderr
        assert attacker.review_requests()
        skipped = {s["path"]: s["reason"] for s in out.report["skipped"]}
        assert skipped["app/cart.py"] == "ignored by .tandemignore"


def test_nothing_to_review_asks_nothing(server: ReviewModel, repo: Repo, review):
    out = review(repo, server, "--base", "main", "--format", "json", "--include", "docs/**")
    assert out.code == 0, out.stderr
    assert out.report["findings"] == [] and server.requests == []
    assert {s["reason"] for s in out.report["skipped"]} >= {"not matched by --include"}
    out = review(repo, server, "--base", "feature", "--format", "json", "--fail-on", "info")
    assert out.code == 0 and out.report["summary"]["files_reviewed"] == 0
    (repo.path.parent / "empty.diff").write_text("")
    out = review(repo, server, "--diff", str(repo.path.parent / "empty.diff"), "--head", "HEAD")
    assert out.code == 2 and "--head has no effect with --diff" in out.stderr


def test_the_exclude_setting_is_never_sent(server: ReviewModel, repo: Repo, review):
    (repo.path / ".tandem.toml").write_text('exclude = ["app/config.py"]\n')
    out = review(repo, server, "--base", "main", "--format", "json", "--trust-checkout-config")
    assert out.code == 0, out.stderr
    skipped = {s["path"]: s["reason"] for s in out.report["skipped"]}
    assert skipped["app/config.py"] == "excluded by the exclude setting (app/config.py)"
    sent = "".join(user_message(r.body) for r in server.review_requests())
    assert "TIMEOUT = 0" not in sent
