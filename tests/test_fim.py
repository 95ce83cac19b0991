"""FIM templates (exact prompt text, stops, family detection) and stop enforcement."""

from __future__ import annotations

import asyncio
from itertools import pairwise

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tandem.models.base import cut_at_stops
from tandem.models.fim import (
    CHAT_REMINDER,
    CHAT_SYSTEM,
    HOLE,
    TEMPLATES,
    Snippet,
    by_file,
    default_template,
    get_template,
    render_snippets_as_comments,
)

PREFIX = "def add(a, b):\n    return "
SUFFIX = "\n\nprint(add(1, 2))\n"

SNIPPETS = (
    Snippet("pkg/util.py", "def helper():\n\n    return 1\n"),
    Snippet("README.md", "Use helper()."),
)

# ---- rendering ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("starcoder", f"<fim_prefix>{PREFIX}<fim_suffix>{SUFFIX}<fim_middle>"),
        ("codellama", f"<PRE> {PREFIX} <SUF>{SUFFIX} <MID>"),
        ("deepseek", f"<｜fim▁begin｜>{PREFIX}<｜fim▁hole｜>{SUFFIX}<｜fim▁end｜>"),
        ("qwen", f"<|fim_prefix|>{PREFIX}<|fim_suffix|>{SUFFIX}<|fim_middle|>"),
        ("codestral", f"[SUFFIX]{SUFFIX}[PREFIX]{PREFIX}"),
        ("codegemma", f"<|fim_prefix|>{PREFIX}<|fim_suffix|>{SUFFIX}<|fim_middle|>"),
        ("prefix", PREFIX),
    ],
)
def test_render_without_snippets_is_exact(name, expected):
    assert TEMPLATES[name].render(PREFIX, SUFFIX) == expected


def test_every_template_has_a_rendering_test():
    # Keeps the table above complete when a template is added.
    assert set(TEMPLATES) == {
        "starcoder",
        "codellama",
        "deepseek",
        "qwen",
        "codestral",
        "codegemma",
        "prefix",
        "chat",
    }


def test_render_with_empty_suffix_keeps_all_tokens():
    assert TEMPLATES["qwen"].render("x = ", "") == "<|fim_prefix|>x = <|fim_suffix|><|fim_middle|>"
    assert TEMPLATES["codestral"].render("x = ", "") == "[SUFFIX][PREFIX]x = "


def test_chat_template_refuses_to_render_a_prompt():
    with pytest.raises(ValueError, match="messages"):
        TEMPLATES["chat"].render(PREFIX, SUFFIX)


def test_chat_template_renders_system_and_user_messages():
    messages = TEMPLATES["chat"].render_chat(
        PREFIX, SUFFIX, SNIPPETS, path="src/calc.py", language="python"
    )
    assert [m["role"] for m in messages] == ["system", "user", "assistant", "user"]
    assert messages[0]["content"] == CHAT_SYSTEM
    assert HOLE in CHAT_SYSTEM
    # One worked exchange first: its answer is only the missing code, and its file holds
    # exactly one hole, so the model sees the shape of answer asked for.
    example, answer = messages[1]["content"], messages[2]["content"]
    assert example.endswith(CHAT_REMINDER)
    shown = example.removesuffix(CHAT_REMINDER)
    assert shown.count(HOLE) == 1
    assert "```" not in answer and HOLE not in answer
    assert f"return {answer}\n" in shown.replace(HOLE, answer)
    user = messages[-1]["content"]
    assert f"```python\n{PREFIX}{HOLE}{SUFFIX}\n```" in user
    assert "src/calc.py" in user
    for snippet in SNIPPETS:
        assert f"File {snippet.path}:\n```\n{snippet.text.rstrip()}\n```" in user
    # Context comes before the file with the hole; the instruction is said again after it
    # (small chat models heed the last one, and otherwise restate the whole file).
    assert user.index("pkg/util.py") < user.index(HOLE)
    assert user.endswith(f"\n```\n{CHAT_REMINDER}")


def test_chat_template_without_language_or_path_uses_a_bare_fence():
    messages = TEMPLATES["chat"].render_chat("a", "b")
    user = messages[-1]["content"]
    assert user == f"Fill the hole in this file.\n```\na{HOLE}b\n```\n{CHAT_REMINDER}"


# ---- cross-file snippets --------------------------------------------------------------------


def test_qwen_repo_level_form():
    text = TEMPLATES["qwen"].render(PREFIX, SUFFIX, SNIPPETS, path="src/calc.py", repo_name="calc")
    assert text == (
        "<|repo_name|>calc\n"
        "<|file_sep|>pkg/util.py\ndef helper():\n\n    return 1\n"
        "<|file_sep|>README.md\nUse helper().\n"
        "<|file_sep|>src/calc.py\n"
        f"<|fim_prefix|>{PREFIX}<|fim_suffix|>{SUFFIX}<|fim_middle|>"
    )


def test_starcoder_repo_level_form():
    text = TEMPLATES["starcoder"].render(
        PREFIX, SUFFIX, SNIPPETS[:1], path="src/calc.py", repo_name="calc"
    )
    assert text == (
        "<repo_name>calc\n"
        "<file_sep>pkg/util.py\ndef helper():\n\n    return 1\n"
        "<file_sep>src/calc.py\n"
        f"<fim_prefix>{PREFIX}<fim_suffix>{SUFFIX}<fim_middle>"
    )


def test_repo_level_form_defaults_for_missing_names():
    text = TEMPLATES["qwen"].render("p", "s", SNIPPETS[1:])
    assert text == (
        "<|repo_name|>workspace\n"
        "<|file_sep|>README.md\nUse helper().\n"
        "<|file_sep|>current\n"
        "<|fim_prefix|>p<|fim_suffix|>s<|fim_middle|>"
    )


def test_repo_name_alone_switches_to_repo_level_form():
    text = TEMPLATES["qwen"].render("p", "s", repo_name="calc", path="a.py")
    assert (
        text == "<|repo_name|>calc\n<|file_sep|>a.py\n<|fim_prefix|>p<|fim_suffix|>s<|fim_middle|>"
    )


def test_pieces_of_one_file_are_quoted_under_one_header():
    """Two definitions from one file read as one file, not two files with the same name."""
    pieces = (
        Snippet("pkg/util.py", "def helper():\n    return 1\n"),
        Snippet("README.md", "Use helper()."),
        Snippet("pkg/util.py", "def other():\n    return 2"),
    )
    text = TEMPLATES["qwen"].render("p", "s", pieces, path="a.py", repo_name="calc")
    assert text == (
        "<|repo_name|>calc\n"
        "<|file_sep|>pkg/util.py\ndef helper():\n    return 1\n\ndef other():\n    return 2\n"
        "<|file_sep|>README.md\nUse helper().\n"
        "<|file_sep|>a.py\n<|fim_prefix|>p<|fim_suffix|>s<|fim_middle|>"
    )
    assert render_snippets_as_comments(pieces).count("# Path: pkg/util.py") == 1
    user = TEMPLATES["chat"].render_chat("p", "s", pieces)[-1]["content"]
    assert user.count("File pkg/util.py:") == 1 and "def other():" in user
    # The budget counts headers by rendering empty pieces: an empty piece adds nothing.
    assert by_file((Snippet("x.py", ""), Snippet("x.py", "a"))) == [Snippet("x.py", "a")]


COMMENTED = (
    "// Path: pkg/util.py\n"
    "// def helper():\n"
    "//\n"
    "//     return 1\n"
    "\n"
    "// Path: README.md\n"
    "// Use helper().\n"
    "\n"
)


def test_snippets_as_comments_exact():
    assert render_snippets_as_comments(SNIPPETS, "//") == COMMENTED
    assert render_snippets_as_comments((), "//") == ""
    assert render_snippets_as_comments(SNIPPETS[1:]) == "# Path: README.md\n# Use helper().\n\n"


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("codellama", f"<PRE> {COMMENTED}{PREFIX} <SUF>{SUFFIX} <MID>"),
        ("deepseek", f"<｜fim▁begin｜>{COMMENTED}{PREFIX}<｜fim▁hole｜>{SUFFIX}<｜fim▁end｜>"),
        ("codegemma", f"<|fim_prefix|>{COMMENTED}{PREFIX}<|fim_suffix|>{SUFFIX}<|fim_middle|>"),
        ("codestral", f"[SUFFIX]{SUFFIX}[PREFIX]{COMMENTED}{PREFIX}"),
        ("prefix", f"{COMMENTED}{PREFIX}"),
    ],
)
def test_templates_without_repo_form_render_snippets_as_comments(name, expected):
    rendered = TEMPLATES[name].render(
        PREFIX, SUFFIX, SNIPPETS, path="src/calc.js", repo_name="calc", comment="//"
    )
    assert rendered == expected


# ---- stops ------------------------------------------------------------------------------------

FIM_NAMES = [n for n, t in TEMPLATES.items() if t.kind == "fim"]


@pytest.mark.parametrize("name", FIM_NAMES)
def test_fim_templates_stop_on_their_own_tokens(name):
    template = TEMPLATES[name]
    tokens = [
        template.prefix_token,
        template.suffix_token,
        template.middle_token,
        template.file_sep_token,
    ]
    for token in tokens:
        if token:
            assert token.strip() in template.stop, (name, token)
    assert all(template.stop), "an empty stop string would match everything"


@pytest.mark.parametrize(
    ("name", "end_of_text"),
    [
        ("starcoder", "<|endoftext|>"),
        ("codellama", "<EOT>"),
        ("deepseek", "<｜end▁of▁sentence｜>"),
        ("qwen", "<|endoftext|>"),
        ("codestral", "</s>"),
        ("codegemma", "<|file_separator|>"),
    ],
)
def test_fim_templates_stop_at_end_of_text(name, end_of_text):
    assert end_of_text in TEMPLATES[name].stop


def test_qwen_stops_cover_repo_and_chat_tokens():
    stop = TEMPLATES["qwen"].stop
    for token in ("<|file_sep|>", "<|endoftext|>", "<|repo_name|>", "<|fim_pad|>", "<|im_end|>"):
        assert token in stop


def test_prefix_template_stops_at_end_of_turn():
    assert set(TEMPLATES["prefix"].stop) >= {"<|im_end|>", "<|endoftext|>"}
    assert TEMPLATES["chat"].stop == ()


# ---- choosing a template ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("provider", "model", "expected"),
    [
        ("local", None, "prefix"),
        ("local", "qwen2.5-coder:1.5b", "prefix"),
        ("ollama", "qwen2.5-coder:1.5b", "qwen"),
        ("openai", "Qwen/Qwen2.5-Coder-7B", "qwen"),
        ("llamacpp", "bigcode/starcoder2-3b", "starcoder"),
        ("ollama", "codellama:7b-code", "codellama"),
        ("openai", "meta/code-llama-13b", "codellama"),
        ("openai", "deepseek-coder-1.3b-base", "deepseek"),
        ("openai", "codestral-latest", "codestral"),
        ("ollama", "codegemma:2b", "codegemma"),
        ("openai", "gpt-4o", "chat"),
        ("azure", "my-deployment", "chat"),
        ("openai", None, "chat"),
        ("ollama", "", "chat"),
    ],
)
def test_default_template(provider, model, expected):
    assert default_template(provider, model) is TEMPLATES[expected]


def test_get_template_returns_known_templates():
    for name, template in TEMPLATES.items():
        assert get_template(name) is template


def test_get_template_unknown_names_the_known_templates():
    with pytest.raises(ValueError) as info:
        get_template("nope")
    message = str(info.value)
    assert "'nope'" in message
    for name in TEMPLATES:
        assert name in message


# ---- cut_at_stops -----------------------------------------------------------------------------


async def _from(pieces, record=None):
    try:
        for piece in pieces:
            if record is not None:
                record["pulled"] += 1
            yield piece
    finally:
        if record is not None:
            record["closed"] = True


async def _cut(pieces, stops):
    return [piece async for piece in cut_at_stops(_from(pieces), stops)]


async def test_stop_split_across_chunks_is_cut():
    out = await _cut(["abc<|fi", "le_sep|>xyz"], ["<|file_sep|>"])
    assert "".join(out) == "abc"


async def test_stop_inside_one_chunk_is_cut():
    out = await _cut(["hello<|endoftext|>world", "more"], ["<|endoftext|>"])
    assert "".join(out) == "hello"


async def test_stop_at_the_very_start_yields_nothing():
    assert await _cut(["<|file_sep|>rest"], ["<|file_sep|>"]) == []


async def test_earliest_of_several_stops_wins():
    out = await _cut(["a = 1\n", "END<|im_end|>", "b"], ["<|im_end|>", "END"])
    assert "".join(out) == "a = 1\n"


async def test_near_stop_is_passed_through_whole():
    out = await _cut(["abc<|fi", "nal|> done"], ["<|file_sep|>"])
    assert "".join(out) == "abc<|final|> done"


async def test_held_back_tail_is_flushed_at_end_of_stream():
    # The stream ends while the text could still be the start of a stop.
    out = await _cut(["x = 1 <|file_"], ["<|file_sep|>"])
    assert "".join(out) == "x = 1 <|file_"


async def test_no_stops_passes_every_piece_unchanged():
    pieces = ["a", "<|endoftext|>", "b", ""]
    assert await _cut(pieces, []) == pieces
    assert await _cut(pieces, [""]) == pieces


async def test_stream_is_closed_when_cut_early():
    record = {"pulled": 0, "closed": False}
    source = _from(["abc", "<|file_sep|>", "never", "read"], record)
    out = [piece async for piece in cut_at_stops(source, ["<|file_sep|>"])]
    assert "".join(out) == "abc"
    assert record["closed"] is True
    assert record["pulled"] == 2  # the pieces after the stop were never requested


async def test_text_is_not_held_longer_than_needed():
    # Only an ending that could start a stop waits; everything else flows at once.
    record = {"pulled": 0, "closed": False}
    stream = cut_at_stops(_from(["0123456789", "abcdEN", "x"], record), ["END"])
    first = await stream.__anext__()
    assert first == "0123456789"
    assert record["pulled"] == 1
    second = await stream.__anext__()
    assert second == "abcd"  # "EN" might be the start of "END": held back
    rest = [piece async for piece in stream]
    assert first + second + "".join(rest) == "0123456789abcdENx"


STOPS = ("<|x|>", "END")


@settings(max_examples=300, deadline=None)
@given(
    text=st.text(alphabet="ab<|x>END", max_size=40),
    cuts=st.lists(st.integers(min_value=0, max_value=40), max_size=8),
)
def test_cut_at_stops_equals_text_before_first_stop_for_any_chunking(text, cuts):
    bounds = sorted({0, len(text), *(c for c in cuts if c <= len(text))})
    pieces = [text[a:b] for a, b in pairwise(bounds)]
    found = [i for i in (text.find(s) for s in STOPS) if i >= 0]
    expected = text[: min(found)] if found else text
    assert "".join(asyncio.run(_cut(pieces, STOPS))) == expected
