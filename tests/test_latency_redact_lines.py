"""Redaction line by line (issue 12, fifth round) finds exactly what reading the whole text
finds, and lets no secret through.

``find_secrets`` now keeps each line's finds for the rules that cannot match across a line
end (decided from each pattern, ``line_rules``) and runs the others, and the private-key
scan when a line may be a key's, on the whole text. Checked against the whole-text way
(``find_secrets_whole``) on the planted-secrets corpus, on random mixes of its lines with
code, on texts edited a character at a time through and into secrets (a secret split
over two edits, or over two lines), and on random texts. No timing is asserted.
"""

from __future__ import annotations

import json
import random
import re
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tandem.models import redact
from tandem.models.line_rules import line_local
from tandem.models.redact import find_secrets, find_secrets_whole, redact_text, rules

CORPUS = Path(__file__).parent / "data" / "secrets"
PLANTED: dict[str, list[str]] = json.loads((CORPUS / "planted.json").read_text())
ALL_SECRETS = sorted({s for values in PLANTED.values() for s in values})
CORPUS_LINES = [
    line for name in sorted(PLANTED) for line in (CORPUS / name).read_text().split("\n")
]
CODE = Path(redact.__file__).read_text().split("\n")


def _same(text: str) -> None:
    assert find_secrets(text) == find_secrets_whole(text)


@pytest.mark.parametrize("name", sorted(PLANTED))
def test_each_planted_file_gives_the_same_finds(name):
    text = (CORPUS / name).read_text()
    _same(text)
    _same(text)  # its lines now kept
    for secret in PLANTED[name]:
        assert secret not in redact_text(text + "\n# a prompt of its own")


def test_mixes_of_secret_lines_and_code_give_the_same_finds():
    rng = random.Random(12)
    for _ in range(300):
        lines = rng.sample(CORPUS_LINES, 6) + rng.sample(CODE, 20)
        rng.shuffle(lines)
        _same("\n".join(lines))


def test_typing_into_and_through_secrets_gives_the_same_finds_at_every_keystroke():
    """A secret typed one character at a time (found only once whole), a newline typed
    into the middle of one (split over two lines), and a window sliding through a key."""
    rng = random.Random(5)
    for name in sorted(PLANTED):
        text = (CORPUS / name).read_text()
        for secret in PLANTED[name][:3]:
            at = text.find(secret)
            if at < 0:
                continue
            bare = text[:at] + text[at + len(secret) :]
            for k in range(0, len(secret) + 1, max(1, len(secret) // 12)):
                _same(bare[:at] + secret[:k] + bare[at:])
            cut = at + rng.randint(1, len(secret) - 1)
            _same(text[:cut] + "\n" + text[cut:])
            _same(text[:cut] + "\r\n" + text[cut:])
        for start in range(0, len(text), max(1, len(text) // 25)):
            _same(text[start : start + 600])  # a prompt window starting anywhere


@settings(max_examples=300, deadline=None)
@given(
    st.lists(
        st.one_of(
            st.sampled_from(ALL_SECRETS),
            st.sampled_from(CORPUS_LINES),
            st.sampled_from(["Bearer", "token", "Password =", ";Pwd=", "AccountKey=", "\n"]),
            st.text(alphabet="ab=:;/@ \n\t'\"-_.AKIgh0123456789", max_size=30),
        ),
        max_size=12,
    ),
    st.sampled_from(["", "\n", " ", "=", ";"]),
)
def test_random_texts_with_secrets_give_the_same_finds(parts, glue):
    text = glue.join(parts)
    _same(text)
    for secret in ALL_SECRETS:
        if secret in text and find_secrets_whole(text):
            assert redact_text(text) == redact.redact_text.__wrapped__(text)


def test_the_rules_that_can_span_lines_are_known_and_run_on_the_whole_text():
    local = {rule.kind for rule in rules() if line_local(rule.pattern, rule.extend)}
    whole = {rule.kind for rule in rules() if not line_local(rule.pattern, rule.extend)}
    assert {"azure-storage-key", "password", "token"} <= whole  # \s* / \s+ in them
    assert {"aws-access-key", "openai-key", "url-password", "jwt"} <= local
    # a secret whose rule spans lines is still found across the line end
    text = "auth = 'Bearer\n    9f3a7c2e1b8d4f6a0c5e7b9d2f4a'"
    assert find_secrets(text) == find_secrets_whole(text) != []


@pytest.mark.parametrize(
    ("pattern", "local"),
    [
        (r"abc[0-9]+", True),
        (r"a\s+b", False),
        (r"a[^x]b", False),
        (r"a[^\s]b", True),
        (r"a.b", True),
        (r"(?s)a.b", False),
        (r"^abc", False),
        (r"abc$", False),
        (r"\babc\b", True),
        (r"(?<![\w-])abc(?!\w)", True),
        (r"(?<=\s)abc", False),
        (r"(?<=ab)c", False),
        (r"a\Wb", False),
        (r"a\Db", False),
        (r"a[\n]b", False),
        (r"(?:a|\n)b", False),
        (r"(a)\1", True),
    ],
)
def test_line_local_patterns(pattern, local):
    assert line_local(re.compile(pattern)) is local


def test_the_kept_lines_are_bounded():
    for k in range(redact.LINES_KEPT + 10):
        find_secrets(f"value_{k} = compute({k}, rate)\nother = {k}")
    assert len(redact._lines) <= redact.LINES_KEPT


def test_threads_clearing_the_kept_lines_still_get_every_find(monkeypatch):
    """Several threads redacting at once while the kept lines are cleared again and again
    (a bound of 16 lines): each gets the whole-text finds, never an error."""
    from concurrent.futures import ThreadPoolExecutor

    monkeypatch.setattr(redact, "LINES_KEPT", 16)
    rng = random.Random(3)
    texts = ["\n".join(rng.sample(CORPUS_LINES, 8) + rng.sample(CODE, 8)) for _ in range(120)]
    expected = [find_secrets_whole(text) for text in texts]
    with ThreadPoolExecutor(4) as pool:
        got = list(pool.map(find_secrets, texts))
    assert got == expected
