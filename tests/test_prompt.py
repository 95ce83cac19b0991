"""The prompt within its budget: never over by the model's tokenizer, never a split line."""

from __future__ import annotations

from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tandem.context.engine import ContextEngine, Cursor
from tandem.context.prompt import (
    ContextCandidates,
    PromptBudget,
    PromptPart,
    build_prompt,
    starts_shallower,
    without_indent,
)
from tandem.models.base import FimRequest
from tandem.models.fim import get_template
from tandem.models.http import HttpEndpoint
from tandem.models.llamacpp import LlamaCppClient
from tandem.models.openai import OpenAIClient
from tandem.models.tokens import openai_bpe

TOKENIZER = openai_bpe("o200k_base")
ENDPOINT = HttpEndpoint("http://127.0.0.1:9/v1")  # never called: fim_request only renders


def client_for(template: str):
    if template == "infill":
        return LlamaCppClient(ENDPOINT, "m", None)
    return OpenAIClient(ENDPOINT, "m", get_template(template))


line = st.text(
    alphabet=st.characters(blacklist_categories=("Cs",), blacklist_characters="\n\r"),
    max_size=60,
)
document = st.lists(line, min_size=1, max_size=80).map("\n".join)


def part(kind: str, text: str, rank: int, score: float = 1.0) -> PromptPart:
    return PromptPart(kind, f"other/{kind}.py", text, TOKENIZER.count(text), rank, score)  # type: ignore[arg-type]


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    text=document,
    where=st.floats(min_value=0, max_value=1),
    total=st.integers(min_value=40, max_value=1500),
    template=st.sampled_from(["qwen", "starcoder", "codellama", "chat", "prefix", "infill"]),
    extra=st.lists(st.tuples(line, st.integers(0, 2)), max_size=6),
)
def test_never_over_budget_and_never_a_split_line(text, where, total, template, extra):
    offset = int(len(text) * where)
    kinds = ["definition", "snippet", "definition"]
    candidates = ContextCandidates(
        scopes=[(0, "def outer():")] if offset > 0 else [],
        definitions=[part("definition", t + "\nx = 1", r + 2) for t, r in extra if r != 1],
        snippets=[part(kinds[r], t, 3) for t, r in extra if r == 1],
    )
    prompt = build_prompt(
        client_for(template),
        TOKENIZER,
        text=text,
        offset=offset,
        path="main.py",
        budget=PromptBudget(total=total),
        candidates=candidates,
        request=FimRequest(prefix=""),
    )
    before, after = text[:offset], text[offset:]
    if template != "chat":  # a blank cursor line's indentation is not sent (without_indent)
        before = without_indent(before, after)
    prefix = next(p.text for p in prompt.parts if p.kind == "prefix")
    suffix = next(p.text for p in prompt.parts if p.kind == "suffix")
    # whole lines only: the window starts at a line start and ends at a line end
    assert before.endswith(prefix)
    assert len(prefix) == len(before) or before[len(before) - len(prefix) - 1] == "\n"
    assert after.startswith(suffix)
    assert len(suffix) == len(after) or after[len(suffix)] == "\n"
    # the count is of the exact text sent
    assert prompt.tokens == TOKENIZER.count(prompt.wire.prompt)
    if prompt.tokens > total:  # only when even the cursor's own line cannot fit
        assert "\n" not in prefix and "\n" not in suffix
        assert [p.kind for p in prompt.parts] == ["prefix", "suffix"]


def test_lowest_ranked_context_goes_first():
    text = "".join(f"value_{i} = compute({i})\n" for i in range(40)) + "result = "
    candidates = ContextCandidates(
        definitions=[
            part("definition", "def compute(x):\n    return x * 2", 2, 5.0),
            part("definition", "def far_away():\n    pass  " + "pad " * 30, 4, 1.0),
        ],
        snippets=[part("snippet", "value_1 = compute(1)\n" + "noise " * 40, 3)],
    )
    kinds = []
    for total in (2000, 260, 180, 120):
        prompt = build_prompt(
            client_for("qwen"), TOKENIZER, text=text, offset=len(text), path="main.py",
            budget=PromptBudget(total=total), candidates=candidates, request=FimRequest(prefix=""),
        )  # fmt: skip
        assert prompt.tokens <= total
        kinds.append([p.text.split("\n")[0] for p in prompt.parts if p.kind != "prefix"])
    assert "def compute(x):" in kinds[0] and "def far_away():" in kinds[0]
    # as the budget shrinks, the index definition (rank 4) and the snippet (3) go before
    # the imported definition (2)
    assert "def far_away():" not in kinds[2]
    assert any("def compute(x):" in k for k in kinds[1:3])


def write(root: Path, files: dict[str, str]) -> None:
    for rel, text in files.items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)


def test_engine_gathers_scope_definitions_and_snippets(tmp_path: Path):
    body = "".join(f"        total += item.price * {i}\n" for i in range(120))
    write(tmp_path, {
        "shop/__init__.py": "",
        "shop/pricing.py": (
            "def apply_discount(total: float, rate: float) -> float:\n"
            '    """Reduce ``total`` by ``rate`` (0..1)."""\n'
            "    return total * (1 - rate)\n"
        ),
        "shop/cart.py": (
            "from .pricing import apply_discount\n\n\nclass Cart:\n"
            "    def checkout(self, items, rate):\n        total = 0\n"
            "        for item in items:\n" + body + "        return apply_discount(<CURSOR>\n"
        ),
        "shop/orders.py": (
            "def order_total(items, rate):\n    total = 0\n    for item in items:\n"
            "        total += item.price\n    return apply_discount(total, rate)\n"
        ),
    })  # fmt: skip
    path = tmp_path / "shop/cart.py"
    text = path.read_text()
    offset = text.index("<CURSOR>")
    text = text.replace("<CURSOR>", "")
    path.write_text(text)
    engine = ContextEngine(tmp_path)
    neighbours = [(tmp_path / "shop/orders.py", (tmp_path / "shop/orders.py").read_text())]
    prompt = engine.prompt(
        client_for("qwen"),
        TOKENIZER,
        Cursor(text, offset, path),
        PromptBudget(total=700),
        FimRequest(prefix=""),
        neighbours,
    )
    by_kind = {p.kind: p for p in prompt.parts}
    assert set(by_kind) == {"prefix", "suffix", "scope", "definition", "snippet"}
    assert by_kind["definition"].path == "shop/pricing.py"
    assert "def apply_discount(total: float, rate: float) -> float:" in by_kind["definition"].text
    assert "Reduce ``total``" in by_kind["definition"].text
    scopes = [p.text for p in prompt.parts if p.kind == "scope"]
    assert scopes == ["class Cart:", "    def checkout(self, items, rate):"]
    assert by_kind["snippet"].path == "shop/orders.py"
    assert prompt.tokens <= 700
    sent = prompt.wire.prompt
    assert "<|file_sep|>shop/pricing.py\n" in sent
    assert "class Cart:\n    def checkout(self, items, rate):\n" in sent
    assert sent.endswith("<|fim_middle|>")


def test_a_blank_cursor_lines_indentation_is_left_out_of_fim_prompts_only():
    text = "def f(x):\n\ty = x\n\t\n\treturn y\n"
    offset = text.index("\t\n\treturn") + 1
    for template, prefix in [("qwen", "def f(x):\n\ty = x\n"), ("chat", text[:offset])]:
        prompt = build_prompt(
            client_for(template),
            TOKENIZER,
            text=text,
            offset=offset,
            path="f.py",
            budget=PromptBudget(total=500),
            candidates=ContextCandidates(),
            request=FimRequest(prefix=""),
        )
        assert next(p.text for p in prompt.parts if p.kind == "prefix") == prefix, template
    # only a line with nothing but indentation before the cursor, and never the first line
    assert without_indent("a\n  ", "\nb") == "a\n"
    assert without_indent("a\n  b = ", "\n") == "a\n  b = "
    assert without_indent("a\n  ", "b = 1\n") == "a\n  "  # code after the cursor
    assert without_indent("a\n", "\n") == "a\n"
    assert without_indent("    ", "\n") == "    "


def test_an_answer_starting_shallower_than_the_left_out_indentation():
    """Asked from the line start, an answer whose first code line sits left of the cursor
    left the block: what ``indent_follow_up`` asks again for."""
    assert starts_shallower("    print(n)\n", "        ")
    assert starts_shallower("\n\n# note\nx = 1", "    ")  # blank lines skipped
    assert not starts_shallower("        n += x\n    print(n)", "        ")  # as deep
    assert not starts_shallower("            y = 2", "        ")  # deeper
    assert not starts_shallower("", "    ")  # nothing written: "insert nothing"
    assert not starts_shallower("\n  \n", "    ")
    # tabs count as the editor shows them: a tab is as deep as eight spaces
    assert not starts_shallower("\tx = 1", "        ")
    assert starts_shallower("\tx = 1", "\t\t")


def test_a_dedent_below_the_line_above_is_kept():
    """An editor indents as deep as the open block or deeper; a shallower cursor line is the
    user closing the block, which the model could not tell from the line start."""
    body = "def f(xs):\n    for x in xs:\n        print(x)\n"
    assert without_indent(body + "    ", "\n    return 1\n") == body + "    "
    # blank lines between do not hide the line above
    assert without_indent(body + "\n\n    ", "\n") == body + "\n\n    "
    # as deep as the line above, or deeper (after a block opener): left out
    assert without_indent(body + "        ", "\n") == body
    assert without_indent("if x:\n    ", "\n") == "if x:\n"
    # tabs count as the editor shows them
    assert without_indent("if x:\n\t\ty\n\t", "\n") == "if x:\n\t\ty\n\t"
    assert without_indent("if x:\n\ty\n\t", "\n") == "if x:\n\ty\n"
    # no code line above: the indentation is left out as before
    assert without_indent("\n\n  ", "\n") == "\n\n"
