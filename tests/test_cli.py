"""The real ``tandem`` console script, run as a user would, against the loopback model server."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from modelserver import Behaviour, ModelServer

TANDEM = str(Path(sys.executable).parent / "tandem")
SOURCE = 'def greet(name):\n    return "hi " + \n\nprint(greet("x"))\n'


def run(*args: str, env: dict[str, str] | None = None, cwd: Path | None = None, timeout=60):
    full_env = {**os.environ, **(env or {})}
    return subprocess.run(
        [TANDEM, *args], capture_output=True, text=True, env=full_env, cwd=cwd, timeout=timeout
    )


@pytest.fixture
def source(tmp_path: Path) -> Path:
    path = tmp_path / "ws" / "greet.py"
    (path.parent / ".git").mkdir(parents=True)  # the workspace root is the file's repository
    path.write_text(SOURCE)
    return path


def openai_env(server: ModelServer, **extra: str) -> dict[str, str]:
    return {
        "TANDEM_PROVIDER": "openai",
        "TANDEM_ENDPOINT": server.url + "/v1",
        "TANDEM_MODEL": "qwen2.5-coder",
        **extra,
    }


def test_complete_prints_only_the_completion(model_server: ModelServer, source: Path):
    model_server.default = Behaviour(tokens=["name", "\n", "junk"])
    result = run("complete", f"{source}:2:20", env=openai_env(model_server))
    assert result.returncode == 0, result.stderr
    assert result.stdout == "name\n"
    body = model_server.requests[0].body
    assert body["prompt"].startswith('<|fim_prefix|>def greet(name):\n    return "hi " + ')
    assert '<|fim_suffix|>\n\nprint(greet("x"))\n<|fim_middle|>' in body["prompt"]


def test_on_a_blank_indented_line_the_prompt_ends_at_the_line_start(
    model_server: ModelServer, tmp_path: Path
):
    # The editor's auto-indent left the cursor after four spaces; the model is asked from
    # the line start (a prompt ending in a lone run of spaces ends mid-token) and its line,
    # written with its own indentation, is inserted at the cursor once.
    path = tmp_path / "ws" / "total.py"
    (path.parent / ".git").mkdir(parents=True)
    path.write_text("def total(xs):\n    n = 0\n    \n    return n\n")
    model_server.default = Behaviour(tokens=["    for x", " in xs:\n", "        n += x\n"])
    result = run("complete", "--json", f"{path}:3:5", env=openai_env(model_server))
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["text"] == "for x in xs:\n        n += x"
    prompt = model_server.requests[0].body["prompt"]
    assert "    n = 0\n<|fim_suffix|>\n    return n\n" in prompt
    context = run("context", "--json", f"{path}:3:5", env=openai_env(model_server))
    assert context.returncode == 0, context.stderr
    assert json.loads(context.stdout)["prompt"] == prompt  # what is shown is what was sent


def _total_file(tmp_path: Path) -> Path:
    path = tmp_path / "ws" / "total.py"
    (path.parent / ".git").mkdir(parents=True)
    path.write_text("def total(xs):\n    n = 0\n    \n    return n\n")
    return path


LOOP = "def total(xs):\n    n = 0\n    for x in xs:\n        n += x\n        \n    return n\n"


@pytest.mark.parametrize(
    "text, at, first_answer, second_answer, inserted, above",
    [
        # the model wrote the next line of the file (nothing to insert); asked once more
        # after the indentation, it writes the line
        ("def total(xs):\n    n = 0\n    \n    return n\n", "3:5", ["    return n\n"],
         ["for x in xs:\n        n += x\n"], "for x in xs:\n        n += x", "    n = 0"),
        # inside a loop body the model went on after the loop (an ``else:`` left of the
        # cursor, which does not parse there); the editor's indentation says the body goes on
        (LOOP, "5:9", ["    else:\n", "        n = -1\n"], ["n *= 2\n"], "n *= 2",
         "        n += x"),
    ],
    ids=["repeating the next line", "leaving the block"],
)  # fmt: skip
def test_an_answer_to_the_line_start_prompt_is_asked_again_with_the_indentation(
    model_server: ModelServer, tmp_path: Path, text: str, at: str, first_answer: list[str],
    second_answer: list[str], inserted: str, above: str,
):  # fmt: skip
    """Asked from the line start, the model left nothing to insert in a way the left-out
    indentation explains; asked once more with exactly that indentation added, it writes
    the line."""
    path = tmp_path / "ws" / "total.py"
    (path.parent / ".git").mkdir(parents=True)
    path.write_text(text)
    model_server.enqueue(Behaviour(tokens=first_answer), Behaviour(tokens=second_answer))
    first = len(model_server.requests)
    result = run("complete", "--json", "--no-cache", f"{path}:{at}", env=openai_env(model_server))
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["text"] == inserted
    asked, again = (r.body["prompt"] for r in model_server.requests[first:])
    indentation = " " * (int(at.split(":")[1]) - 1)
    assert f"{above}\n<|fim_suffix|>" in asked
    assert again == asked.replace(
        f"{above}\n<|fim_suffix|>", f"{above}\n{indentation}<|fim_suffix|>"
    )


def test_a_failed_second_asking_loses_nothing(model_server: ModelServer, tmp_path: Path):
    """The second request refused (a 400 is not retried): the first answer stands, as it
    would have without a second asking, and the command succeeds."""
    path = _total_file(tmp_path)
    model_server.enqueue(Behaviour(tokens=["    return n\n"]), Behaviour(status=400))
    first = len(model_server.requests)
    result = run("complete", "--json", "--no-cache", f"{path}:3:5", env=openai_env(model_server))
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["text"] == ""
    assert len(model_server.requests) == first + 2


@pytest.mark.parametrize(
    "answer, text",
    [(["    n += 1\n"], "n += 1"), ([], ""), (["    return n + 1\n"], "return n + 1")],
    ids=["a new line", "nothing", "a line like the next"],
)
def test_other_answers_are_not_asked_again(
    model_server: ModelServer, tmp_path: Path, answer: list[str], text: str
):
    path = _total_file(tmp_path)
    model_server.enqueue(Behaviour(tokens=answer), Behaviour(tokens=["never asked"]))
    first = len(model_server.requests)
    result = run("complete", "--json", "--no-cache", f"{path}:3:5", env=openai_env(model_server))
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["text"] == text
    assert len(model_server.requests) == first + 1


def test_complete_json(model_server: ModelServer, source: Path):
    model_server.default = Behaviour(tokens=["name"])
    result = run("complete", "--json", f"{source}:2:20", env=openai_env(model_server))
    assert result.returncode == 0, result.stderr
    data = json.loads(result.stdout)
    assert data["text"] == "name"
    assert data["line"] == 2 and data["column"] == 20
    assert data["template"] == "qwen"
    assert data["model"] == "openai:qwen2.5-coder"


def test_workspace_config_file_and_flags(model_server: ModelServer, source: Path):
    (source.parent / ".tandem.toml").write_text(
        f'[completion]\nprovider = "ollama"\nendpoint = "{model_server.url}"\nmodel = "codellama"\n'
    )
    result = run("complete", f"{source}:2:20", "--model", "starcoder2:3b")
    assert result.returncode == 0, result.stderr
    rec = model_server.requests[0]
    assert rec.path == "/api/generate"
    assert rec.body["model"] == "starcoder2:3b"  # the flag beats the file
    assert rec.body["prompt"].startswith("<fim_prefix>")


def test_chat_streams_the_answer(model_server: ModelServer, source: Path):
    model_server.default = Behaviour(tokens=["It ", "greets", "."])
    result = run(
        "chat", "--file", str(source), "--lines", "1-2", "What", "does", "it", "do?",
        env=openai_env(model_server),
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert result.stdout == "It greets.\n"
    user = model_server.requests[0].body["messages"][-1]["content"]
    assert f"{source} lines 1-2" in user
    assert 'def greet(name):\n    return "hi " + \n```' in user
    assert user.endswith("What does it do?")


def test_chat_uses_the_chat_overrides(model_server: ModelServer):
    with ModelServer(tokens=["from chat server"]) as chat_server:
        env = openai_env(
            model_server,
            TANDEM_CHAT_PROVIDER="ollama",
            TANDEM_CHAT_ENDPOINT=chat_server.url,
            TANDEM_CHAT_MODEL="llama3.1:8b",
        )
        result = run("chat", "hello", env=env)
        assert result.returncode == 0, result.stderr
        assert result.stdout == "from chat server\n"
        assert chat_server.requests[0].body["model"] == "llama3.1:8b"
    assert model_server.requests == []


def test_doctor_shows_sources_masks_keys_and_checks_models(model_server: ModelServer):
    env = openai_env(model_server, TANDEM_API_KEY="sk-secret-value-1234")
    result = run("doctor", env=env)
    assert result.returncode == 0, result.stdout + result.stderr
    out = result.stdout
    assert "sk-secret-value" not in out and "sk-secret-value" not in result.stderr
    assert "****1234" in out
    assert "[env TANDEM_MODEL]" in out
    assert "completion.api_key" in out
    assert "completion openai:qwen2.5-coder: ok" in out
    assert "chat       openai:qwen2.5-coder: ok" in out
    assert len(model_server.requests) == 2


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def assert_one_line_error(result: subprocess.CompletedProcess, code: int, *words: str) -> None:
    assert result.returncode == code, (result.returncode, result.stderr)
    assert result.stdout == ""
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("tandem: ")
    assert "Traceback" not in result.stderr
    for word in words:
        assert word in lines[0], lines[0]


def test_error_unreachable(source: Path):
    env = {"TANDEM_PROVIDER": "ollama", "TANDEM_ENDPOINT": f"http://127.0.0.1:{_free_port()}",
           "TANDEM_MODEL": "m"}  # fmt: skip
    assert_one_line_error(run("complete", f"{source}:2:20", env=env), 3, "cannot reach")


def test_error_unauthorized_names_the_key(model_server: ModelServer, source: Path):
    model_server.api_key = "good"
    result = run("complete", f"{source}:2:20", env=openai_env(model_server, TANDEM_API_KEY="bad"))
    assert_one_line_error(result, 4, "401", "TANDEM_API_KEY")


def test_error_model_not_found(model_server: ModelServer, source: Path):
    model_server.known_models = {"other"}
    result = run("complete", f"{source}:2:20", env=openai_env(model_server))
    assert_one_line_error(result, 5, "404", "model")


def test_error_timeout(model_server: ModelServer, source: Path):
    model_server.default = Behaviour(hang=30)
    result = run("complete", f"{source}:2:20", env=openai_env(model_server, TANDEM_TIMEOUT="0.5"))
    assert_one_line_error(result, 6, "0.5s", "TANDEM_TIMEOUT")


def test_error_malformed_answer(model_server: ModelServer, source: Path):
    model_server.default = Behaviour(garbage=True)
    result = run("complete", f"{source}:2:20", env=openai_env(model_server))
    assert_one_line_error(result, 9, "not JSON")


def test_error_server_failure(model_server: ModelServer, source: Path):
    model_server.default = Behaviour(status=500)
    result = run("complete", f"{source}:2:20", env=openai_env(model_server))
    assert_one_line_error(result, 8, "HTTP 500")


def test_debug_shows_the_traceback(model_server: ModelServer, source: Path):
    model_server.default = Behaviour(status=500)
    result = run("complete", "--debug", f"{source}:2:20", env=openai_env(model_server))
    assert result.returncode == 8
    assert "Traceback" in result.stderr


@pytest.mark.parametrize(
    ("args", "word"),
    [
        (["complete", "nowhere.py:1:1"], "cannot read"),
        (["complete", "greet.py"], "PATH:LINE:COL"),
        (["complete", "greet.py:99:1"], "line 99"),
        (["complete", "greet.py:1:80"], "column 80"),
        (["chat", "--lines", "1-2", "q"], "--lines needs --file"),
    ],
)
def test_usage_errors(source: Path, args: list[str], word: str):
    assert_one_line_error(run(*args, cwd=source.parent), 2, word)


def test_invalid_setting_names_key_and_source(source: Path):
    result = run("complete", f"{source}:2:20", env={"TANDEM_PROVIDER": "gpt"})
    assert_one_line_error(result, 2, "completion.provider", "env TANDEM_PROVIDER")
    (source.parent / ".tandem.toml").write_text("timeout = -3\n")
    result = run("complete", f"{source}:2:20")
    assert_one_line_error(result, 2, "timeout", str(source.parent / ".tandem.toml"))


def test_binary_file_is_refused(tmp_path: Path):
    blob = tmp_path / "blob.bin"
    blob.write_bytes(b"\x00\x01\x02" * 100)
    assert_one_line_error(run("complete", f"{blob}:1:1"), 2, "binary")


def _workspace(tmp_path: Path) -> Path:
    ws = tmp_path / "shop"
    (ws / ".git").mkdir(parents=True)
    (ws / "pricing.py").write_text(
        "def apply_discount(total: float, rate: float) -> float:\n"
        '    """Reduce total by rate."""\n'
        "    return total * (1 - rate)\n"
    )
    body = "".join(f"    step_{i} = {i}\n" for i in range(60))
    (ws / "cart.py").write_text(
        "from pricing import apply_discount\n\n\ndef checkout(total, rate):\n"
        + body
        + "    return apply_discount(\n"
    )
    return ws


def test_context_json_shows_exactly_what_complete_sends(model_server: ModelServer, tmp_path):
    ws = _workspace(tmp_path)
    location = f"{ws / 'cart.py'}:65:27"
    env = openai_env(model_server)
    shown = run("context", "--json", "--budget", "400", location, env=env)
    assert shown.returncode == 0, shown.stderr
    data = json.loads(shown.stdout)
    assert data["budget"] == 400 and data["tokens"] <= 400
    assert data["tokenizer"].startswith("pieces (estimate for")
    kinds = [p["kind"] for p in data["parts"]]
    assert {"prefix", "suffix", "definition", "scope"} <= set(kinds)
    definition = next(p for p in data["parts"] if p["kind"] == "definition")
    assert definition["path"] == "pricing.py"
    assert "def apply_discount(total: float, rate: float) -> float:" in definition["text"]
    assert all(isinstance(p["tokens"], int) and p["tokens"] > 0 for p in data["parts"])
    assert data["request"]["path"] == "completions"
    done = run("complete", "--budget", "400", location, env=env)
    assert done.returncode == 0, done.stderr
    assert model_server.requests[0].body["prompt"] == data["prompt"]
    # the plain form prints the prompt itself on stdout, the summary on stderr
    plain = run("context", "--budget", "400", location, env=env)
    assert plain.stdout == data["prompt"]
    assert "tokens" in plain.stderr and "definition" in plain.stderr


def test_context_for_llamacpp_is_the_request_body(model_server: ModelServer, tmp_path):
    ws = _workspace(tmp_path)
    env = {"TANDEM_PROVIDER": "llamacpp", "TANDEM_ENDPOINT": model_server.url}
    shown = run("context", "--json", f"{ws / 'cart.py'}:65:27", env=env)
    assert shown.returncode == 0, shown.stderr
    data = json.loads(shown.stdout)
    assert data["tokenizer"].startswith("llama.cpp /tokenize")
    body = data["prompt"]
    assert body["input_prefix"].endswith("    return apply_discount(")
    assert body["input_extra"][0]["filename"] == "pricing.py"
    assert [r.path for r in model_server.requests] == ["/tokenize"]  # nothing was generated


def test_repeated_completion_comes_from_the_cache(model_server: ModelServer, source: Path):
    model_server.default = Behaviour(tokens=["name"])
    env = openai_env(model_server)
    first = run("complete", "--json", f"{source}:2:20", env=env)
    second = run("complete", "--json", f"{source}:2:20", env=env)
    assert first.returncode == second.returncode == 0, second.stderr
    assert json.loads(first.stdout)["cached"] is False
    assert json.loads(second.stdout) | {"elapsed_ms": 0} == json.loads(first.stdout) | {
        "elapsed_ms": 0,
        "cached": True,
    }
    assert len(model_server.requests) == 1  # the second run never asked the model
    third = run("complete", "--no-cache", f"{source}:2:20", env=env)
    assert third.stdout == "name\n" and len(model_server.requests) == 2
