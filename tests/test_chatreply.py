"""The chat path: a chat-only model's reply, in each shape it comes in, becomes the hole's text.

Unit cases for ``recover_hole``; then ``tandem complete`` with the ``chat`` template against
the loopback model server replying in each shape (the whole pipeline, real tree-sitter).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tandem.context.chatreply import recover_hole
from tandem.models.fim import CHAT_REMINDER, HOLE, chat_retry_note
from tandem.models.tokens import tokenizer_for_model

from modelserver import Behaviour, ModelServer

TANDEM = str(Path(sys.executable).parent / "tandem")

PREFIX = 'def is_even(n):\n    """Whether n is even."""\n    '
SUFFIX = "\n\n\ndef is_odd(n):\n    return not is_even(n)\n"
FILE_FILLED = PREFIX + "return n % 2 == 0" + SUFFIX


@pytest.mark.parametrize(
    "reply",
    [
        f"```python\n{FILE_FILLED}```",  # the file restated, fenced
        FILE_FILLED,  # restated, no fence
        f"Here is the completed file:\n\n```py\n{FILE_FILLED}```\n\nThe function checks n.",
        "return n % 2 == 0",  # only the missing code
        "```python\nreturn n % 2 == 0\n```",  # only the code, fenced
        "Sure! Fill it with:\n```python\n    return n % 2 == 0\n```\nThat is all.",
        # restated with the whole file dedented by the model
        "```\n" + FILE_FILLED.replace("\n    ", "\n  ") + "```",
    ],
)
def test_each_reply_shape_gives_the_hole(reply: str):
    found = recover_hole(PREFIX, SUFFIX, reply)
    assert found.text is not None and found.text.strip() == "return n % 2 == 0", reply


def test_a_restated_file_is_complete_once_the_suffix_comes_back():
    partial = "```python\n" + PREFIX + "return n % 2 == 0\n\n\ndef is_odd(n):\n"
    assert not recover_hole(PREFIX, SUFFIX, partial[:-30]).complete
    assert recover_hole(PREFIX, SUFFIX, partial + "    return not is_even(n)\n").complete


def test_mid_line_hole_in_a_restated_line():
    prefix, suffix = "total = sum(", ")\nprint(total)\n"
    reply = "```python\ntotal = sum(values, start=0)\nprint(total)\n```"
    found = recover_hole(prefix, suffix, reply)
    assert found.text == "values, start=0" and found.complete


def test_a_multi_line_hole_stops_where_the_suffix_starts():
    prefix = "def f(xs):\n    total = 0\n    "
    suffix = "\n    return total\n"
    reply = "def f(xs):\n    total = 0\n    for x in xs:\n        total += x\n    return total\n"
    assert recover_hole(prefix, suffix, reply).text == "for x in xs:\n        total += x"


def test_a_reply_that_keeps_the_hole_marker_gives_nothing():
    found = recover_hole(PREFIX, SUFFIX, "```python\n" + PREFIX + "<FILL_HERE>" + SUFFIX + "```")
    assert found.text is None


def _complete(server: ModelServer, path: Path, line: int, column: int, *extra: str) -> dict:
    env = {
        **os.environ,
        "TANDEM_PROVIDER": "openai",
        "TANDEM_ENDPOINT": server.url + "/v1",
        "TANDEM_MODEL": "gpt-4o",  # no FIM family: the chat template
    }
    result = subprocess.run(
        [TANDEM, "complete", f"{path}:{line}:{column}", "--json", "--no-cache", *extra],
        capture_output=True, text=True, env=env, timeout=60,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


@pytest.mark.parametrize(
    "reply",
    [
        f"```python\n{FILE_FILLED}```",
        FILE_FILLED,
        f"The hole is the return statement.\n\n```python\n{FILE_FILLED}```\n",
        "return n % 2 == 0",
        "Complete it with:\n```python\nreturn n % 2 == 0\n```",
        # the shape small models give when asked twice for only the code: the lines at the
        # file's own indentation, then a line of their own that leaves the block
        "```python\n    return n % 2 == 0\nprint(is_even(2))\n```",
    ],
    ids=["fenced-file", "bare-file", "prose-file", "bare-code", "prose-code", "code-then-more"],
)
def test_complete_through_a_chat_model(model_server: ModelServer, tmp_path: Path, reply: str):
    path = tmp_path / "ws" / "parity.py"
    (path.parent / ".git").mkdir(parents=True)
    path.write_text(PREFIX + SUFFIX)
    # the reply arrives in small pieces, as a model streams it
    model_server.default = Behaviour(tokens=[reply[i : i + 7] for i in range(0, len(reply), 7)])
    out = _complete(model_server, path, 3, 5)
    assert out["template"] == "chat"
    assert out["text"] == "return n % 2 == 0"
    sent = model_server.requests[-1]
    assert sent.path.endswith("/chat/completions")
    assert "<FILL_HERE>" in sent.body["messages"][-1]["content"]
    # the instruction comes again after the file: the last thing a small model reads
    assert sent.body["messages"][-1]["content"].endswith(CHAT_REMINDER)


def test_chat_reading_stops_once_the_hole_is_whole(model_server: ModelServer, tmp_path: Path):
    """A model that restates the file and then rambles on: the answer is read no further."""
    path = tmp_path / "ws" / "parity.py"
    (path.parent / ".git").mkdir(parents=True)
    path.write_text(PREFIX + SUFFIX)
    ramble = ["\n# more text the model keeps writing\n"] * 2000
    pieces = ["```python\n", *FILE_FILLED.splitlines(keepends=True), *ramble]
    model_server.default = Behaviour(tokens=pieces, delay=0.005)
    out = _complete(model_server, path, 3, 5)
    assert out["text"] == "return n % 2 == 0"
    assert model_server.wait_done(len(model_server.requests) - 1).aborted


def _parity_file(tmp_path: Path) -> Path:
    path = tmp_path / "ws" / "parity.py"
    (path.parent / ".git").mkdir(parents=True)
    path.write_text(PREFIX + SUFFIX)
    return path


def test_a_reply_echoing_the_marker_is_asked_once_more(model_server: ModelServer, tmp_path: Path):
    """The cursor line restated around ``<FILL_HERE>``: the same request once more with the
    cursor line shown on its own after it, and that answer is the completion."""
    path = _parity_file(tmp_path)
    echo = "```python\n    return <FILL_HERE>\n```"
    model_server.enqueue(Behaviour(tokens=[echo]), Behaviour(tokens=["return n % 2 == 0"]))
    first = len(model_server.requests)
    out = _complete(model_server, path, 3, 5)
    assert out["text"] == "return n % 2 == 0"
    asked, again = model_server.requests[first:]
    turns, earlier = again.body["messages"], asked.body["messages"]
    assert again.path == asked.path and turns[:-1] == earlier[:-1]
    # no turn of the model's own: a small model copies its last reply word for word
    assert [t["role"] for t in turns] == [t["role"] for t in earlier]
    note = chat_retry_note("    ", "", "python")
    assert turns[-1]["content"] == earlier[-1]["content"] + note
    assert f"```python\n    {HOLE}\n```" in note


def test_the_shown_line_is_bounded_each_side_of_the_hole():
    note = chat_retry_note("x = [" + "1, " * 500, "0]" * 500)
    line = note.split("```\n")[1]
    assert HOLE in line and len(line) < 600


@pytest.mark.parametrize(
    "reply", ["", "return n % 2 == 0"], ids=["empty: insert nothing", "usable"]
)
def test_other_replies_are_not_asked_again(model_server: ModelServer, tmp_path: Path, reply: str):
    path = _parity_file(tmp_path)
    model_server.enqueue(Behaviour(tokens=[reply] if reply else []))
    first = len(model_server.requests)
    out = _complete(model_server, path, 3, 5)
    assert out["text"] == reply
    assert len(model_server.requests) == first + 1


def test_a_second_echo_gives_nothing_after_two_requests(model_server: ModelServer, tmp_path: Path):
    path = _parity_file(tmp_path)
    echo = Behaviour(tokens=["return <FILL_HERE>"])
    model_server.enqueue(echo, echo, Behaviour(tokens=["never asked"]))
    first = len(model_server.requests)
    out = _complete(model_server, path, 3, 5)
    assert out["text"] == ""
    assert len(model_server.requests) == first + 2


def test_asked_again_within_the_prompt_budget(model_server: ModelServer, tmp_path: Path):
    """A prompt that fills its budget: the second asking lets the oldest lines before the
    cursor give way to the cursor line it adds, counted with the model's own counter."""
    path = tmp_path / "ws" / "parity.py"
    (path.parent / ".git").mkdir(parents=True)
    head = "".join(f"LIMIT_{i} = {i} * 1000  # a constant of the module\n" for i in range(200))
    path.write_text(head + PREFIX + SUFFIX)
    line = head.count("\n") + 3
    model_server.enqueue(
        Behaviour(tokens=["    return <FILL_HERE>"]), Behaviour(tokens=["return n % 2 == 0"])
    )
    first = len(model_server.requests)
    out = _complete(model_server, path, line, 5, "--budget", "400")
    assert out["text"] == "return n % 2 == 0"
    asked, again = (r.body["messages"][-1]["content"] for r in model_server.requests[first:])
    assert again.endswith(chat_retry_note("    ", "", "python"))
    count = tokenizer_for_model("gpt-4o").count
    sent = [
        "\n\n".join(m["content"] for m in r.body["messages"]) for r in model_server.requests[first:]
    ]
    assert count(sent[0]) <= 400 and count(sent[1]) <= 400
    # the window now starts later: its first lines gave way
    shown = [ln for ln in asked.split("\n") if ln.startswith("LIMIT_")]
    kept = [ln for ln in again.split("\n") if ln.startswith("LIMIT_")]
    assert kept and len(kept) < len(shown) and kept[-1] == shown[-1]


@pytest.mark.parametrize(
    "before, reply, hole",
    [
        # the reply restates the call the cursor is in: cut
        ("    return version.__replace__(", "version.__replace__(pre=None)", "pre=None)"),
        ("    raise IDNAError(", 'IDNAError("Label too long")', '"Label too long")'),
        # too short, not at a word's start, or no letter: kept as the code
        ("    x = foo(", "(a, b)", "(a, b)"),
        ("    return n", "n % 2", "n % 2"),
        ("    y = self.version.bump(", "ion.bump(1)", "ion.bump(1)"),
    ],
)
def test_a_reply_restating_the_end_of_the_cursor_line(before: str, reply: str, hole: str):
    assert recover_hole("def f(n):\n" + before, ")\n", reply).text == hole


def test_a_whole_line_replied_inside_brackets_keeps_its_argument(
    model_server: ModelServer, tmp_path: Path
):
    """A small chat model asked for a call's arguments answers with a line of its own (an
    assignment): what fits between the brackets is its start, not nothing."""
    path = tmp_path / "ws" / "peek.py"
    (path.parent / ".git").mkdir(parents=True)
    path.write_text("def peek(self, name):\n    match = self.rules[name].match()\n    return 1\n")
    model_server.default = Behaviour(tokens=["self.next_token = Token(name, match[0])"])
    out = _complete(model_server, path, 2, 36)
    assert out["text"] == "self.next_token"
    model_server.default = Behaviour(tokens=["return NotImplemented"])  # no start of it fits
    assert _complete(model_server, path, 2, 36)["text"] == ""
