"""Token counting: exact where the model's tokenizer is at hand, else a safe estimate.

The context engine trusts these counts to keep prompts within a budget, so an
estimate must err high. ``tiktoken`` is not used: it downloads its tables on
first use, which fails offline; ``bpe-openai`` ships the same tables inside
its wheel.
"""

from __future__ import annotations

import asyncio
import math
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Protocol

# A sample of ordinary code for calibrating estimates against a real tokenizer.
CALIBRATION_TEXT = '''\
import os
from dataclasses import dataclass, field


@dataclass
class Point:
    """A point in the plane."""

    x: float
    y: float

    def distance(self, other: "Point") -> float:
        return ((self.x - other.x) ** 2 + (self.y - other.y) ** 2) ** 0.5


def load(path: str) -> list[Point]:
    with open(os.path.expanduser(path), encoding="utf-8") as fh:
        return [Point(*map(float, line.split(","))) for line in fh if line.strip()]

function greet(name) {
  const message = `Hello, ${name}!`;
  console.log(message);
  return { ok: true, length: message.length };
}
'''


class Tokenizer(Protocol):
    """Counts tokens synchronously; cheap enough to call per prompt part."""

    name: str
    exact: bool

    def count(self, text: str) -> int: ...


@dataclass
class FunctionTokenizer:
    """A real tokenizer behind a plain encode function."""

    name: str
    encode: Callable[[str], list[int]]
    exact: bool = True

    def count(self, text: str) -> int:
        """Tokens in ``text``; a long text in pieces, since bpe-openai refuses a million
        characters at once (a minified line is that long)."""
        if len(text) <= COUNT_CHUNK:
            return len(self.encode(text)) if text else 0
        pieces = range(0, len(text), COUNT_CHUNK)
        return sum(len(self.encode(text[i : i + COUNT_CHUNK])) for i in pieces)


COUNT_CHUNK = 256 * 1024


@dataclass
class EstimatedTokenizer:
    """Characters per token, with a margin so the estimate errs high."""

    name: str
    chars_per_token: float = 3.2
    margin: float = 1.15
    exact: bool = False

    def count(self, text: str) -> int:
        if not text:
            return 0
        return math.ceil(len(text) / self.chars_per_token * self.margin)


@dataclass
class ScaledTokenizer:
    """Another tokenizer's count scaled up: near the truth for similar BPEs, never low."""

    name: str
    base: Tokenizer
    factor: float = 1.2
    exact: bool = False

    def count(self, text: str) -> int:
        return math.ceil(self.base.count(text) * self.factor)


# A digit is a piece of its own: Qwen's and StarCoder's BPEs split numbers into single
# digits (o200k takes up to three), so "\d{1,3}" counted a number up to 3x low for them.
_PIECE = re.compile(r" ?[A-Z]?[a-z]+| ?[A-Z]+(?![a-z])|\d| ?[^\sA-Za-z\d]|\n+|[ \t]+")
_DENSE = re.compile(r"[A-Za-z0-9+/]{16,}")  # base64, hex, keys: no words to merge
_NON_ASCII = re.compile(r"[^\x00-\x7f]+")
_LONG_WORD = re.compile(r"[A-Za-z]{12,}")  # a BPE's vocabulary has few words this long


LINE_COUNTS_KEPT = 50_000  # lines whose piece count is remembered (a few MB at most)


@dataclass
class PieceTokenizer:
    """An estimate for models whose tokenizer is not at hand, with no tables to load.

    Counts the pieces a BPE's pre-tokenizer makes (a word with its leading space, a
    case-split part of an identifier, one digit, one punctuation character, a
    run of newlines or of blanks): each is at least one token in any BPE, and ordinary
    code's words are mostly one token. Where that could count low it counts bytes,
    which a byte-level BPE never exceeds: runs of 16+ letters and digits holding a digit
    (keys, base64, hex) cost one token a character, text outside ASCII one a byte, and a
    run of 12+ letters one more token per 6 letters.
    On this project's own code it counts about 1.3x o200k (open code models' BPEs: up to
    ~1.15x), where o200k scaled by 1.2 needed ~130 MB of tables in every server.

    No piece crosses a line end except a run of newlines, so a text's count is the sum
    of its lines' counts plus one per run of newlines: lines are counted once and
    remembered (issue 12). A prompt is fitted and re-counted on every keystroke, and all
    but one of its lines were counted for the keystroke before (6 ms -> ~0.1 ms a count).
    """

    name: str
    exact: bool = False
    _lines: dict[str, int] = field(default_factory=dict, repr=False, compare=False)

    def count(self, text: str) -> int:
        if not text:
            return 0
        if "\n" not in text:
            return self._line(text)
        lines = text.split("\n")
        total = len(lines) - 1  # one piece per newline, less those that extend a run:
        for line in lines[1:-1]:
            if not line:
                total -= 1
        for line in lines:
            if line:
                total += self._line(line)
        return total

    def _line(self, line: str) -> int:
        known = self._lines.get(line)
        if known is None:
            known = piece_count(line)
            if len(self._lines) >= LINE_COUNTS_KEPT:
                self._lines.clear()  # bounded; the next prompts refill it
            self._lines[line] = known
        return known


def piece_count(text: str) -> int:
    """``PieceTokenizer``'s count of one text, without the per-line memory."""
    if not text:
        return 0
    total = len(_PIECE.findall(text))
    if len(text) >= 12:  # the shortest run either rule below looks for
        for match in _DENSE.finditer(text):
            run = match.group()
            if _dense(run):
                total += max(0, len(run) - len(_PIECE.findall(run)))
        for match in _LONG_WORD.finditer(text):
            total += len(match.group()) // 6
    if not text.isascii():
        for match in _NON_ASCII.finditer(text):
            run = match.group()
            total += len(run.encode("utf-8", "replace")) - len(_PIECE.findall(run))
    return total


def _dense(run: str) -> bool:
    """Whether a 16+ run of letters, digits, ``+`` and ``/`` is a key rather than words.

    Letters with digits (hex, keys, base64), or mixed-case letters joined by ``+``/``/``
    (base64 without a digit). Not a path of lower-case words: ``package/module/`` was
    counted a token a character, 3x its real cost, and crowded definitions out of
    prompts, whose path headers are such runs (issue 12).
    """
    if run.isalpha() or run.isdigit():
        return False
    if any(char.isdigit() for char in run):
        return True
    return not run.islower() and not run.isupper()


@lru_cache(maxsize=4)
def openai_bpe(encoding: str) -> FunctionTokenizer:
    """An OpenAI BPE (o200k_base, cl100k_base) from tables bundled in bpe-openai."""
    import bpe_openai

    enc = bpe_openai.get_encoding(encoding)

    def encode(text: str) -> list[int]:
        return list(enc.encode(text, disallowed_special=()))

    return FunctionTokenizer(encoding, encode)


def openai_encoding_for(model: str) -> str | None:
    """The BPE of an OpenAI model name, or None when the name is not OpenAI's."""
    name = model.lower()
    if name.startswith(("gpt-4o", "gpt-4.1", "gpt-5", "o1", "o3", "o4", "chatgpt-4o", "gpt-oss")):
        return "o200k_base"
    if name.startswith(("gpt-4", "gpt-3.5", "text-embedding", "babbage-002", "davinci-002")):
        return "cl100k_base"
    return None


def calibrate(name: str, counted: int, text: str = CALIBRATION_TEXT) -> EstimatedTokenizer:
    """An estimate fitted to one real count of ``text``."""
    return EstimatedTokenizer(name, chars_per_token=len(text) / max(1, counted), margin=1.1)


def tokenizer_for_model(model: str) -> Tokenizer:
    """Best offline counter for a hosted model name.

    OpenAI models get their exact BPE. Other models (Qwen, StarCoder, DeepSeek
    served by vLLM or Ollama) get ``PieceTokenizer``: open code models' BPEs produce
    up to about 15% more tokens than o200k on code, and it counts ~30% more; it loads
    no tables, so a server for such a model does not carry o200k's ~130 MB.
    """
    encoding = openai_encoding_for(model)
    if encoding:
        return openai_bpe(encoding)
    return PieceTokenizer(f"pieces (estimate for {model})")


_loaded: dict[str, Tokenizer] = {}


async def known_tokenizer(model: str) -> Tokenizer:
    """``tokenizer_for_model``, made once per model name. Loading a BPE takes ~0.5 s, so
    that happens on a worker thread; every later request gets the counter with no thread
    hop (~0.2 ms each under load), and the same ``PieceTokenizer`` keeps its line counts."""
    tokenizer = _loaded.get(model)
    if tokenizer is None:
        tokenizer = await asyncio.to_thread(tokenizer_for_model, model)
        tokenizer = _loaded.setdefault(model, tokenizer)
    return tokenizer
