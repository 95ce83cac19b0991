"""The chat prompts: what the model is shown, and reading code back out of its answers."""

from __future__ import annotations

import pytest

from tandem.chat_prompts import (
    CHAT_SYSTEM,
    EDIT_SYSTEM,
    Selection,
    action_messages,
    chat_messages,
    code_blocks,
    extract_code,
    fenced,
    fit,
    layout,
    parse_history,
    selection_text,
    where_tests_go,
)
from tandem.models import ChatMessage


def test_selection_text_shows_definitions_scopes_and_the_code():
    selection = Selection(
        path="pkg/app.py",
        code="return shout(name)",
        language="python",
        lines=(6, 6),
        scopes=["class Greeter:", "    def greet(self, name):"],
        definitions=[("util.py", "def shout(text): ...")],
    )
    text = selection_text(selection)
    assert text.index("util.py:\n```python\ndef shout") < text.index("class Greeter:")
    assert text.endswith("pkg/app.py lines 6-6:\n```python\nreturn shout(name)\n```")
    whole = selection_text(Selection(path="a.txt", code="x"))
    assert whole == "a.txt:\n```\nx\n```"


def test_fences_are_longer_than_any_backticks_inside():
    assert fenced("a ``` b", "md") == "````md\na ``` b\n````"
    assert fenced("plain") == "```\nplain\n```"


def test_chat_messages_put_history_between_system_and_question():
    history = parse_history(
        [{"role": "user", "content": "q1"}, {"role": "assistant", "content": "a1"}]
    )
    sent = chat_messages("q2", None, history)
    assert [(m.role, m.content) for m in sent] == [
        ("system", CHAT_SYSTEM),
        ("user", "q1"),
        ("assistant", "a1"),
        ("user", "q2"),
    ]
    assert parse_history(None) == []
    for bad in ("text", [{"role": "system", "content": "x"}], [{"role": "user"}], [3]):
        with pytest.raises(ValueError):
            parse_history(bad)


def test_action_messages_say_where_tests_go():
    selection = Selection(path="lib/app.py", code="def f(): pass", language="python")
    new_file = action_messages("tests", selection, "lib/test_app.py")[1].content
    assert "with pytest" in new_file and "saved as lib/test_app.py" in new_file
    appended = action_messages("tests", selection)[1].content
    assert "appended to the end of lib/app.py" in appended
    assert action_messages("fix", selection)[0] == ChatMessage("system", EDIT_SYSTEM)


@pytest.mark.parametrize(
    ("answer", "code"),
    [
        ("```python\nx = 1\n```", "x = 1"),
        ("Sure:\n\n```\nx = 1\ny = 2\n```\nUse it like:\n```\nf()\n```", "x = 1\ny = 2"),
        ("```python\nx = 1\n", "x = 1"),  # the model stopped before closing the block
        ("~~~\nx = 1\n~~~", "x = 1"),
        ("1. Code:\n   ```\n   x = 1\n     y\n   ```", "x = 1\n  y"),  # an indented fence
        ("````\n```inner```\n````", "```inner```"),
        ("x = 1\n", "x = 1"),  # no fences at all: the whole answer is the code
        ("\n\n    indented()\n", "    indented()"),
        ("```\n\n```", None),
        ("", None),
    ],
)
def test_extract_code(answer: str, code: str | None):
    assert extract_code(answer) == code


def test_code_blocks_in_order():
    assert code_blocks("a\n```\n1\n```\nb\n```js\n2\n```") == ["1", "2"]


@pytest.mark.parametrize(
    ("selected", "lead", "shown", "answer", "fitted"),
    [
        # whole lines of a method: shown dedented, the answer indented back
        (
            "    def f(self):\n        return 1\n",
            "",
            "def f(self):\n    return 1",
            "def f(self):\n    return 2",
            "    def f(self):\n        return 2\n",
        ),
        # from the first character of code: the indentation before it stays in the file
        (
            "def f(self):\n        return 1",
            "    ",
            "def f(self):\n    return 1",
            "    def f(self):\n        return 2\n",
            "def f(self):\n        return 2",
        ),
        # inside an expression: the first line is inline, the rest keep their indentation
        (
            "g(a,\n          b)",
            "    x = ",
            "g(a,\nb)",
            "g(a,\n  b, c)",
            "g(a,\n          b, c)",
        ),
        # a CRLF file gets CRLF line breaks back
        (
            "  a = 1\r\n  b = 2\r\n",
            "",
            "a = 1\nb = 2",
            "a = 1\nb = 3\n",
            "  a = 1\r\n  b = 3\r\n",
        ),
        # blank lines at the edges are kept, a tab indentation too
        (
            "\n\tif x:\n\t\ty()\n\n\t",
            "\tpass",
            "if x:\n\ty()",
            "if x:\n    z()",
            "\n\tif x:\n\t    z()\n\n\t",
        ),
    ],
)
def test_layout_and_fit(selected: str, lead: str, shown: str, answer: str, fitted: str):
    got, place = layout(selected, lead)
    assert got == shown
    assert fit(answer, place) == fitted
    assert fit(shown, place) == selected  # the selection as shown goes back unchanged


@pytest.mark.parametrize(
    ("path", "language", "expected"),
    [
        ("pkg/app.py", "python", "pkg/test_app.py"),
        ("main.go", "go", "main_test.go"),
        ("src/util.ts", "typescript", "src/util.test.ts"),
        ("Foo.java", "java", "FooTest.java"),
        ("lib.rs", "rust", None),
        ("tests/test_app.py", "python", None),
        ("util.test.js", "javascript", None),
        ("Makefile", None, None),
    ],
)
def test_where_tests_go(path: str, language: str | None, expected: str | None):
    assert where_tests_go(path, language) == expected
