"""``tandem eval``: holes cut from the user's files, filled through the pipeline, scored.

Against the loopback model server (scripted answers, so the scores are known), and once
on the real llama.cpp server with the embedded model.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tandem.context.languages import language_for_path
from tandem.evaluation.holes import cut_holes
from tandem.evaluation.metrics import edit_similarity, exact, paired, score

from modelserver import Behaviour, ModelServer

TANDEM = str(Path(sys.executable).parent / "tandem")

ADD = "def add(a, b):\n    total = a + b\n    return total\n"
SECRET = "SECRET_MARKER_91"


def run(*args: str, env: dict[str, str], timeout: float = 120) -> subprocess.CompletedProcess:
    return subprocess.run([TANDEM, *args], capture_output=True, text=True,
                          env={**os.environ, **env}, timeout=timeout)  # fmt: skip


def repo(tmp_path: Path) -> Path:
    root = tmp_path / "repo"
    (root / ".git").mkdir(parents=True)
    (root / "calc.py").write_text(ADD)
    (root / "private").mkdir()
    (root / "private" / "keys.py").write_text(
        f"def token():\n    value = '{SECRET}'\n    return value.upper()\n"
    )
    (root / ".tandemignore").write_text("private/\n")
    return root


def server_env(server: ModelServer) -> dict[str, str]:
    return {
        "TANDEM_PROVIDER": "openai",
        "TANDEM_ENDPOINT": server.url + "/v1",
        "TANDEM_MODEL": "qwen2.5-coder",
    }


def test_holes_by_placement():
    spec = language_for_path("x.py")
    assert spec is not None
    text = (
        "def f(xs):\n    n = len(xs)\n    if n:\n        a = 1\n        b = max(a, n)\n"
        "    return n\n"
    )
    line = cut_holes(Path("x.py"), text, spec, "line", 10)
    assert {h.expected for h in line} == {"n = len(xs)", "a = 1", "b = max(a, n)", "return n"}
    for hole in line:  # the cursor sits after the line's indentation, the rest is the file
        assert hole.text[: hole.offset] + hole.expected + hole.text[hole.offset :] == text
        assert hole.text[: hole.offset].endswith("\n    ") or hole.text[: hole.offset].endswith(
            "\n        "
        )
    block = cut_holes(Path("x.py"), text, spec, "block", 10)
    assert [h.expected for h in block] == [  # a function's body, and the if's
        "n = len(xs)\n    if n:\n        a = 1\n        b = max(a, n)\n    return n",
        "a = 1\n        b = max(a, n)",
    ]
    mid = cut_holes(Path("x.py"), text, spec, "midline", 10)
    assert {h.expected for h in mid} == {"xs", "a, n"}
    assert all(h.text[h.offset] == ")" for h in mid)


def test_metrics():
    assert exact("return x  \n", "return x")
    assert not exact("return y", "return x")
    assert edit_similarity("abcd", "abcd") == 1.0
    assert edit_similarity("abcd", "abce") == 0.75
    assert edit_similarity("", "abc") == 0.0


def test_paired_difference_and_its_interval():
    ours = [score(t, "x = 1") for t in ("x = 1", "x = 2", "", "x = 1")]
    theirs = [score(t, "x = 1") for t in ("x = 1", "x = 1", "x = 3", "y")]
    result = paired(ours, theirs)
    assert (result.wins, result.ties, result.losses) == (1, 1, 2)
    diffs = [a.similarity - b.similarity for a, b in zip(ours, theirs, strict=True)]
    assert result.difference == pytest.approx(sum(diffs) / 4)
    assert min(diffs) <= result.low <= result.difference <= result.high <= max(diffs)
    assert paired(ours, theirs) == result  # the same scores, the same interval
    same = paired(ours, ours)
    assert (same.ties, same.difference, same.low, same.high) == (4, 0.0, 0.0, 0.0)
    with pytest.raises(ValueError, match="same holes"):
        paired(ours, theirs[:2])


def test_eval_scores_the_answers_and_never_touches_excluded_files(
    model_server: ModelServer, tmp_path: Path
):
    root = repo(tmp_path)
    model_server.default = Behaviour(tokens=["total = a + b", "\n", "    return total\n"])
    result = run("eval", str(root), "--holes", "5", "--placements", "line", "--json",
                 env=server_env(model_server))  # fmt: skip
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    (config,) = report["configs"]
    line = config["placements"]["line"]
    assert line["holes"] == 2  # calc.py's two lines; nothing from private/
    assert line["exact_match"] == 0.5  # the scripted answer is right for one of them
    assert line["empty_rate"] == 0.0 and 0.5 < line["edit_similarity"] < 1.0
    assert config["template"] == "qwen" and line["median_latency_ms"] > 0
    assert len(model_server.requests) == 2
    for request in model_server.requests:
        assert SECRET not in json.dumps(request.body)
    assert "[" in result.stderr and "2/2" in result.stderr  # the progress bar


def test_eval_compares_configurations(model_server: ModelServer, tmp_path: Path):
    root = repo(tmp_path)
    model_server.default = Behaviour(tokens=["a + b"])
    result = run("eval", str(root / "calc.py"), "--holes", "3", "--compare",
                 "fim=starcoder,context_tokens=256", env=server_env(model_server))  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert "current" in result.stdout and "fim=starcoder,context_tokens=256" in result.stdout
    assert "template starcoder, budget 256" in result.stdout
    prompts = [r.body["prompt"] for r in model_server.requests]
    half = len(prompts) // 2
    assert half and all(p.startswith("<|fim_prefix|>") for p in prompts[:half])
    assert all(p.startswith("<fim_prefix>") for p in prompts[half:])


def test_eval_bad_input_is_a_clear_error(model_server: ModelServer, tmp_path: Path):
    env = server_env(model_server)
    result = run("eval", str(tmp_path / "missing"), env=env)
    assert result.returncode == 2 and "does not exist" in result.stderr
    root = repo(tmp_path)
    result = run("eval", str(root), "--compare", "nonsense", env=env)
    assert result.returncode == 2 and "KEY=VALUE" in result.stderr
    (root / "calc.py").write_text("x = 1\n")
    result = run("eval", str(root), env=env)
    assert result.returncode == 2 and "no holes" in result.stderr


@pytest.mark.embedded
def test_eval_on_the_real_llama_cpp_server(tmp_path: Path):
    """The embedded model (llama.cpp's server on SmolLM2): every hole answered and scored."""
    root = repo(tmp_path)  # one line hole and one block hole (calc.py has no calls)
    result = run("eval", str(root), "--holes", "1", "--json", env={}, timeout=300)
    assert result.returncode == 0, result.stderr
    (config,) = json.loads(result.stdout)["configs"]
    assert config["template"] == "prefix" and config["overall"]["holes"] == 2
    assert config["overall"]["median_latency_ms"] > 0
    assert 0.0 <= config["overall"]["edit_similarity"] <= 1.0
