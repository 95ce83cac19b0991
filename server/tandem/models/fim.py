"""Fill-in-the-middle templates: how each model family wants prefix and suffix.

A template renders text for models trained with FIM tokens, or (``chat``) a
hole-filling conversation for chat-only models, or (``prefix``) just the text
before the cursor for models with no FIM training such as the embedded one.
Each declares the stop strings its model emits when the middle is done.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

HOLE = "<FILL_HERE>"

CHAT_SYSTEM = (
    "You are a code completion engine. The user sends a file with one hole marked "
    f"{HOLE}. Answer with only the code that replaces {HOLE}: no explanation, no "
    "markdown fence, no repetition of the code before or after the hole. If nothing "
    "should be inserted, answer with nothing."
)
# Said again after the file: small chat models heed the last instruction, and without it
# restate the whole file (measured on bench/quality.py: README "Completion quality").
CHAT_REMINDER = f"Answer with only the code that replaces {HOLE}."
# Asked once more, after a reply that holds the marker (it restated the cursor line around
# the hole instead of filling it): the same conversation, the cursor line shown on its own
# at the end. Not the model's own reply followed by "you wrote the marker": small models
# copy their last turn word for word (bench/quality.py, chat path: README "Completion quality").
HOLE_LINE_CHARS = 240  # of the cursor line, each side of the hole


def chat_retry_note(before: str, after: str, language: str | None = None) -> str:
    """The cursor line with its hole, for a second asking (``before``/``after``: the text
    of the line each side of the cursor)."""
    line = before[-HOLE_LINE_CHARS:] + HOLE + after[:HOLE_LINE_CHARS]
    return f"\nThe line with the hole:\n```{language or ''}\n{line}\n```\n{CHAT_REMINDER}"


# One worked exchange before the real one: shown an answer that is only the missing code,
# small chat models stop restating the file or echoing the marker (bench/quality.py, chat
# path: README "Completion quality").
CHAT_EXAMPLE = (
    "Fill the hole in this file.\n```\ndef area(width, height):\n"
    f"    return {HOLE}\n\n\nprint(area(2, 3))\n```\n{CHAT_REMINDER}",
    "width * height",
)


@dataclass(frozen=True)
class Snippet:
    """Text from another file, offered to the model as context."""

    path: str
    text: str


Kind = Literal["fim", "chat", "prefix"]


@dataclass(frozen=True)
class FimTemplate:
    """The FIM tokens of one model family and the stops it needs."""

    name: str
    kind: Kind
    stop: tuple[str, ...] = ()
    prefix_token: str = ""
    suffix_token: str = ""
    middle_token: str = ""
    suffix_first: bool = False
    repo_name_token: str = ""
    file_sep_token: str = ""

    def render(
        self,
        prefix: str,
        suffix: str,
        snippets: Sequence[Snippet] = (),
        *,
        path: str | None = None,
        repo_name: str | None = None,
        comment: str = "#",
    ) -> str:
        """The exact prompt text for FIM and prefix templates."""
        if self.kind == "chat":
            raise ValueError("the chat template renders messages, not a prompt")
        if self.file_sep_token and (snippets or repo_name):
            head = self._repo_header(snippets, path, repo_name)
        else:
            head = render_snippets_as_comments(snippets, comment)
        if self.kind == "prefix":
            return head + prefix
        if self.suffix_first:
            return f"{self.suffix_token}{suffix}{self.prefix_token}{head}{prefix}"
        fim = f"{self.suffix_token}{suffix}{self.middle_token}"
        if self.file_sep_token and head:
            # The repository form is what these models saw in training: files, then the FIM.
            return f"{head}{self.prefix_token}{prefix}{fim}"
        # Otherwise context goes inside the prefix: FIM training starts with the FIM token.
        return f"{self.prefix_token}{head}{prefix}{fim}"

    def _repo_header(
        self, snippets: Sequence[Snippet], path: str | None, repo_name: str | None
    ) -> str:
        """The repository-level form (Qwen2.5-Coder, StarCoder2) for cross-file context."""
        parts = [f"{self.repo_name_token}{repo_name or 'workspace'}\n"]
        for snippet in by_file(snippets):
            parts.append(f"{self.file_sep_token}{snippet.path}\n{snippet.text.rstrip()}\n")
        parts.append(f"{self.file_sep_token}{path or 'current'}\n")
        return "".join(parts)

    def render_chat(
        self,
        prefix: str,
        suffix: str,
        snippets: Sequence[Snippet] = (),
        *,
        path: str | None = None,
        language: str | None = None,
    ) -> list[dict[str, str]]:
        """A hole-filling conversation for chat-only models."""
        context = "".join(
            f"File {s.path}:\n```\n{s.text.rstrip()}\n```\n\n" for s in by_file(snippets)
        )
        where = f" ({path})" if path else ""
        fence = language or ""
        user = (
            f"{context}Fill the hole in this file{where}.\n"
            f"```{fence}\n{prefix}{HOLE}{suffix}\n```\n{CHAT_REMINDER}"
        )
        return [
            {"role": "system", "content": CHAT_SYSTEM},
            {"role": "user", "content": CHAT_EXAMPLE[0]},
            {"role": "assistant", "content": CHAT_EXAMPLE[1]},
            {"role": "user", "content": user},
        ]


def by_file(snippets: Sequence[Snippet]) -> list[Snippet]:
    """One snippet per file, its pieces joined in the order given (a file's first piece
    places it): the same path quoted three times reads as three files to the model, and
    each repeat costs a header."""
    pieces: dict[str, list[str]] = {}
    for snippet in snippets:
        pieces.setdefault(snippet.path, []).append(snippet.text.rstrip())
    return [Snippet(path, "\n\n".join(t for t in texts if t)) for path, texts in pieces.items()]


def render_snippets_as_comments(snippets: Sequence[Snippet], comment: str = "#") -> str:
    """Cross-file context as path-headed comments, for templates with no repo form."""
    out: list[str] = []
    for snippet in by_file(snippets):
        out.append(f"{comment} Path: {snippet.path}\n")
        out.extend(f"{comment} {line}".rstrip() + "\n" for line in snippet.text.splitlines())
        out.append("\n")
    return "".join(out)


TEMPLATES: dict[str, FimTemplate] = {
    t.name: t
    for t in (
        FimTemplate(
            "starcoder",
            "fim",
            stop=(
                "<|endoftext|>",
                "<fim_prefix>",
                "<fim_suffix>",
                "<fim_middle>",
                "<file_sep>",
                "<repo_name>",
            ),
            prefix_token="<fim_prefix>",
            suffix_token="<fim_suffix>",
            middle_token="<fim_middle>",
            repo_name_token="<repo_name>",
            file_sep_token="<file_sep>",
        ),
        FimTemplate(
            "codellama",
            "fim",
            stop=("<EOT>", "</s>", "<PRE>", "<SUF>", "<MID>"),
            prefix_token="<PRE> ",
            suffix_token=" <SUF>",
            middle_token=" <MID>",
        ),
        FimTemplate(
            "deepseek",
            "fim",
            stop=(
                "<｜end▁of▁sentence｜>",
                "<｜fim▁begin｜>",
                "<｜fim▁hole｜>",
                "<｜fim▁end｜>",
                "<|EOT|>",
            ),
            prefix_token="<｜fim▁begin｜>",
            suffix_token="<｜fim▁hole｜>",
            middle_token="<｜fim▁end｜>",
        ),
        FimTemplate(
            "qwen",
            "fim",
            stop=(
                "<|endoftext|>",
                "<|fim_prefix|>",
                "<|fim_suffix|>",
                "<|fim_middle|>",
                "<|fim_pad|>",
                "<|repo_name|>",
                "<|file_sep|>",
                "<|im_start|>",
                "<|im_end|>",
            ),
            prefix_token="<|fim_prefix|>",
            suffix_token="<|fim_suffix|>",
            middle_token="<|fim_middle|>",
            repo_name_token="<|repo_name|>",
            file_sep_token="<|file_sep|>",
        ),
        FimTemplate(
            "codestral",
            "fim",
            stop=("</s>", "[PREFIX]", "[SUFFIX]", "[MIDDLE]"),
            prefix_token="[PREFIX]",
            suffix_token="[SUFFIX]",
            suffix_first=True,
        ),
        FimTemplate(
            "codegemma",
            "fim",
            stop=(
                "<|file_separator|>",
                "<|fim_prefix|>",
                "<|fim_suffix|>",
                "<|fim_middle|>",
                "<end_of_turn>",
                "<eos>",
            ),
            prefix_token="<|fim_prefix|>",
            suffix_token="<|fim_suffix|>",
            middle_token="<|fim_middle|>",
        ),
        FimTemplate("chat", "chat", stop=()),
        FimTemplate("prefix", "prefix", stop=("<|im_end|>", "<|endoftext|>")),
    )
}

# Model-name fragments that identify a family; first match wins.
_FAMILY_HINTS: tuple[tuple[str, str], ...] = (
    ("qwen", "qwen"),
    ("starcoder", "starcoder"),
    ("codellama", "codellama"),
    ("code-llama", "codellama"),
    ("deepseek", "deepseek"),
    ("codestral", "codestral"),
    ("codegemma", "codegemma"),
)


def get_template(name: str) -> FimTemplate:
    try:
        return TEMPLATES[name]
    except KeyError:
        known = ", ".join(TEMPLATES)
        raise ValueError(f"unknown FIM template {name!r} (known: {known})") from None


def default_template(provider: str, model: str | None) -> FimTemplate:
    """The template to use when the ``fim`` setting is unset.

    Known code-model families get their own tokens; the embedded model gets the
    prefix form; anything else (GPT-4o, Azure deployments, unknown instruct
    models) gets the chat hole-filling prompt, which works with every chat model.
    """
    if provider == "local":
        return TEMPLATES["prefix"]
    name = (model or "").lower()
    for fragment, template in _FAMILY_HINTS:
        if fragment in name:
            return TEMPLATES[template]
    return TEMPLATES["chat"]
