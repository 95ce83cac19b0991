"""Chat prompts about a piece of code, and reading code back out of the answers.

Shared by ``tandem chat`` and the language server's chat command and code actions,
so a question asked in the terminal and in the editor reaches the model in the same
shape. Everything here is plain text in, text out: no documents, no LSP, no I/O.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import PurePosixPath
from typing import Any, Literal

from tandem.models.base import ChatMessage

CHAT_SYSTEM = (
    "You are Tandem, a coding assistant. Answer the question about the code concisely "
    "and correctly. Use Markdown; put code in fenced blocks."
)

EDIT_SYSTEM = (
    "You are Tandem, a coding assistant that writes code into the user's editor. "
    "Answer with only the code, in exactly one fenced code block, and nothing before or "
    "after it: the block is inserted into the file as it is."
)

Action = Literal["fix", "docstring", "tests"]

INSTRUCTIONS: dict[Action, str] = {
    "fix": (
        "Fix the bugs in the selected code. Answer with the corrected version of exactly "
        "the selected code, which replaces it: keep what works, its style and its names, "
        "and add nothing that belongs outside the selection."
    ),
    "docstring": (
        "Add a docstring to each function or class in the selected code, in this "
        "language's usual style, and brief comments where the code is not obvious. Do not "
        "change what the code does. Answer with the whole selected code, documented, "
        "which replaces it."
    ),
    "tests": "Write unit tests for the selected code{framework}. {where}",
}

FRAMEWORKS = {
    "python": "pytest",
    "go": "the testing package",
    "java": "JUnit 5",
    "rust": "a #[cfg(test)] mod tests",
}
FENCE_NAMES = {"c_sharp": "csharp"}  # Markdown's names, where they differ from ours


@dataclass(frozen=True)
class Selection:
    """A piece of code the user asks about, with what the model needs to read it."""

    path: str  # as the model is shown it: relative to the workspace where possible
    code: str
    language: str | None = None
    lines: tuple[int, int] | None = None  # 1-based, inclusive; None: the whole file
    scopes: Sequence[str] = ()  # headers of the enclosing scopes, outermost first
    definitions: Sequence[tuple[str, str]] = ()  # (path, text) of definitions the code uses


def fenced(text: str, language: str | None = None) -> str:
    """A Markdown code block that ``text`` cannot close early, however many backticks it has."""
    longest = max((len(run) for run in re.findall(r"`+", text)), default=0)
    fence = "`" * max(3, longest + 1)
    return f"{fence}{language or ''}\n{text}\n{fence}"


def selection_text(selection: Selection) -> str:
    """The selection and its context as Markdown: definitions, enclosing scopes, the code."""
    lang = FENCE_NAMES.get(selection.language or "", selection.language)
    parts: list[str] = []
    if selection.definitions:
        shown = "\n\n".join(f"{p}:\n{fenced(text, lang)}" for p, text in selection.definitions)
        parts.append(f"Definitions the code uses, from other files:\n\n{shown}")
    where = selection.path
    if selection.lines is not None:
        where = f"{selection.path} lines {selection.lines[0]}-{selection.lines[1]}"
    if selection.scopes:
        headers = "\n".join(selection.scopes)
        parts.append(f"The code below is inside (headers only):\n{fenced(headers, lang)}")
    parts.append(f"{where}:\n{fenced(selection.code, lang)}")
    return "\n\n".join(parts)


def parse_history(value: Any) -> list[ChatMessage]:
    """Earlier turns of a conversation, as an editor sends them; ValueError if malformed."""
    if value is None:
        return []
    if not isinstance(value, Sequence) or isinstance(value, str):
        raise ValueError("history must be a list of {role, content} objects")
    turns: list[ChatMessage] = []
    for i, item in enumerate(value):
        role = item.get("role") if isinstance(item, Mapping) else None
        content = item.get("content") if isinstance(item, Mapping) else None
        if role not in ("user", "assistant") or not isinstance(content, str):
            raise ValueError(f"history[{i}] must be {{role: user|assistant, content: string}}")
        turns.append(ChatMessage(role, content))
    return turns


def chat_messages(
    question: str, selection: Selection | None = None, history: Sequence[ChatMessage] = ()
) -> list[ChatMessage]:
    """A question, about ``selection`` when given, after the earlier turns of the chat.

    The selection goes with every question rather than only the first: the editor may
    send a different one with a follow-up, and the model should read the current code.
    """
    content = question if selection is None else f"{selection_text(selection)}\n\n{question}"
    return [ChatMessage("system", CHAT_SYSTEM), *history, ChatMessage("user", content)]


def action_messages(
    action: Action, selection: Selection, tests_path: str | None = None
) -> list[ChatMessage]:
    """Messages asking for code that goes straight into the file (one fenced block).

    ``tests_path`` is where written tests are saved; None means the end of the
    selection's own file.
    """
    instruction = INSTRUCTIONS[action]
    if action == "tests":
        framework = FRAMEWORKS.get(selection.language or "")
        if tests_path is None:
            where = (
                f"They are appended to the end of {selection.path}: answer with only the "
                "tests, without repeating the file's code."
            )
        else:
            where = (
                f"They are saved as {tests_path}, next to {selection.path}: answer with the "
                "complete test file, importing what it tests."
            )
        instruction = instruction.format(
            framework=f" with {framework}" if framework else "", where=where
        )
    content = f"{selection_text(selection)}\n\n{instruction}"
    return [ChatMessage("system", EDIT_SYSTEM), ChatMessage("user", content)]


# ---- reading code out of an answer ------------------------------------------------------------

FENCE = re.compile(r"^( {0,3})(`{3,}|~{3,})[^\n`]*$", re.MULTILINE)


def code_blocks(answer: str) -> list[str]:
    """The contents of the fenced code blocks in ``answer``; an unclosed one runs to the end."""
    blocks: list[str] = []
    pos = 0
    while (opening := FENCE.search(answer, pos)) is not None:
        indent, fence = len(opening.group(1)), opening.group(2)
        closing = re.compile(rf"^ {{0,3}}{re.escape(fence[0])}{{{len(fence)},}}[ \t]*$", re.M)
        body_start = opening.end() + 1
        end = closing.search(answer, body_start)
        body = answer[body_start : end.start() if end else len(answer)]
        lines = body.split("\n")
        if end is not None and lines and lines[-1] == "":
            lines.pop()  # the newline before the closing fence
        # CommonMark: an indented fence takes up to that much indentation off each line.
        lines = [_strip_up_to(line, indent) for line in lines]
        blocks.append("\n".join(lines))
        if end is None:
            break
        pos = end.end()
    return blocks


def _strip_up_to(line: str, count: int) -> str:
    spaces = len(line) - len(line.lstrip(" "))
    return line[min(spaces, count) :]


def extract_code(answer: str) -> str | None:
    """The code in a model's answer, tolerantly: the longest fenced block, else all of it.

    Models asked for one block sometimes add a usage example or drop the fences
    altogether; the longest block is the code that was asked for. None when there is
    no code at all.
    """
    blocks = code_blocks(answer)
    code = max(blocks, key=len) if blocks else answer
    code = code.strip("\n")
    return code if code.strip() else None


# ---- fitting code into the selection's place ----------------------------------------------


@dataclass(frozen=True)
class Layout:
    """How a selection sits in its file, to show it dedented and put an answer back.

    ``head`` and ``tail`` are blank lines (and the break before the next line's
    indentation) at the selection's edges, kept as they are; ``indent`` was taken off
    the lines of the body; ``lead`` is the text before the selection on its first line;
    ``inline`` says the selection starts after code on that line; ``newline`` is the
    file's line break, so an answer in a CRLF file does not mix line endings.
    """

    head: str
    tail: str
    indent: str
    lead: str
    inline: bool
    newline: str = "\n"


def _leading(line: str) -> str:
    return line[: len(line) - len(line.lstrip(" \t"))]


def _common_indent(lines: Sequence[str]) -> str:
    found: str | None = None
    for line in lines:
        if not line.strip():
            continue
        here = _leading(line)
        if found is None:
            found = here
        else:
            n = 0
            while n < min(len(found), len(here)) and found[n] == here[n]:
                n += 1
            found = found[:n]
    return found or ""


def layout(selected: str, lead: str) -> tuple[str, Layout]:
    """The selection as the model is shown it (dedented), and how to put an answer back.

    ``lead`` is the text of the selection's first line before the selection.
    """
    head_match = re.match(r"(?:[ \t]*\r?\n)+", selected)
    head = head_match.group(0) if head_match else ""
    rest = selected[len(head) :]
    tail_match = re.search(r"\r?\n\s*$", rest)
    tail = tail_match.group(0) if tail_match else ""
    body = rest[: len(rest) - len(tail)]
    if head:
        lead = ""  # the body starts at the beginning of a line
    inline = bool(lead.strip())
    newline = "\r\n" if "\r\n" in selected else "\n"
    lines = [line.removesuffix("\r") for line in body.split("\n")]
    if inline:
        indent = _common_indent(lines[1:])
        shown = [lines[0], *(_dedent_line(line, indent) for line in lines[1:])]
    else:
        lines[0] = lead + lines[0]
        indent = _common_indent(lines)
        shown = [_dedent_line(line, indent) for line in lines]
    return "\n".join(shown), Layout(head, tail, indent, lead, inline, newline)


def _dedent_line(line: str, indent: str) -> str:
    return line[len(indent) :] if line.startswith(indent) else line.lstrip(" \t")


def fit(code: str, place: Layout) -> str:
    """``code`` (from the model) indented to replace the selection ``place`` describes."""
    lines = code.replace("\r\n", "\n").strip("\n").split("\n")
    if place.inline:
        own = _common_indent(lines[1:])
        out = [lines[0].strip(), *_indented(lines[1:], own, place.indent)]
    else:
        own = _common_indent(lines)
        out = _indented(lines, own, place.indent)
        # The selection starts after ``lead``, which stays in the file: do not indent twice.
        first = out[0]
        out[0] = first[min(len(place.lead), len(_leading(first))) :]
    return place.head + place.newline.join(out) + place.tail


def _indented(lines: Sequence[str], own: str, indent: str) -> list[str]:
    return [indent + _dedent_line(line, own) if line.strip() else "" for line in lines]


# ---- where written tests go -----------------------------------------------------------------


def where_tests_go(path: str, language: str | None) -> str | None:
    """The test file for a source file, next to it, by the language's convention.

    None when tests belong in the file itself: Rust keeps unit tests in the module, and
    a file that is already a test file gets more tests at its end.
    """
    p = PurePosixPath(path)
    stem, suffix = p.stem, p.suffix
    if language == "rust" or not suffix or _is_test_file(p.name):
        return None
    if language == "python":
        name = f"test_{stem}{suffix}"
    elif language == "go":
        name = f"{stem}_test{suffix}"
    elif language in ("javascript", "typescript", "tsx"):
        name = f"{stem}.test{suffix}"
    elif language in ("java", "c_sharp"):
        name = f"{stem}Test{suffix}"
    else:
        name = f"{stem}_test{suffix}"
    return str(p.with_name(name))


def _is_test_file(name: str) -> bool:
    stem = name.split(".", 1)[0]
    return (
        stem.startswith("test_")
        or stem.endswith(("_test", "_spec", "Test", "Tests"))
        or ".test." in name
        or ".spec." in name
    )
