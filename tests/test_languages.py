"""Every supported language end to end: incremental edits, and definitions across files.

Uses the realistic per-language samples of test_tags. Languages with an import
resolver are covered file-to-file in test_imports; here every language (those
without one included) must find another file's definition for the cursor
through the workspace index.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tandem.context.documents import DocumentStore
from tandem.context.engine import ContextEngine, Cursor
from tandem.context.index import WorkspaceIndex
from tandem.context.languages import BY_NAME
from tandem.context.prompt import PromptBudget
from tandem.models.base import FimRequest
from tandem.models.fim import get_template
from tandem.models.http import HttpEndpoint
from tandem.models.openai import OpenAIClient
from tandem.models.tokens import openai_bpe

from test_tags import CASES

TOKENIZER = openai_bpe("o200k_base")


@pytest.mark.parametrize("name", sorted(CASES))
def test_incremental_edits_equal_a_fresh_parse(name: str):
    spec = BY_NAME[name]
    store = DocumentStore()
    text = CASES[name].source.decode()
    doc = store.open(f"file:///w/sample{spec.extensions[0]}", text, name, 1)
    for version, at in enumerate((len(text) // 4, len(text) // 2, len(text) - 5), start=2):
        line = text[:at].count("\n")
        column = at - (text.rfind("\n", 0, at) + 1)
        store.change(doc.uri, version, [(((line, column), (line, column)), "x")])
        text = text[:at] + "x" + text[at:]
        assert doc.text == text
        fresh = spec.parser().parse(text.encode())
        assert str(doc.tree.root_node) == str(fresh.root_node)


CALLERS = {
    # language: (the file that uses it, the helper's file); the helper is called at <CURSOR>
    "python": ("main.py", "def compute_total(items):\n    return sum(items)\n",
               "x = compute_total(<CURSOR>)\n"),
    "javascript": ("main.js", "function computeTotal(items) {\n  return 1;\n}\n",
                   "const x = computeTotal(<CURSOR>);\n"),
    "typescript": ("main.ts", "export function computeTotal(items: number[]): number {\n"
                   "  return 1;\n}\n", "const x = computeTotal(<CURSOR>);\n"),
    "tsx": ("main.tsx", "export function computeTotal(items: number[]): number {\n"
            "  return 1;\n}\n", "const x = computeTotal(<CURSOR>);\n"),
    "go": ("main.go", "package main\n\nfunc computeTotal(items []int) int {\n\treturn 1\n}\n",
           "package main\n\nfunc main() {\n\tcomputeTotal(<CURSOR>)\n}\n"),
    "rust": ("main.rs", "pub fn compute_total(items: &[i32]) -> i32 {\n    1\n}\n",
             "fn main() {\n    compute_total(<CURSOR>);\n}\n"),
    "java": ("Main.java", "class Billing {\n  static int computeTotal(int[] items) {\n"
             "    return 1;\n  }\n}\n",
             "class Main {\n  void run() {\n    Billing.computeTotal(<CURSOR>);\n  }\n}\n"),
    "c": ("main.c", "int compute_total(int *items) {\n  return 1;\n}\n",
          "int main(void) {\n  return compute_total(<CURSOR>);\n}\n"),
    "cpp": ("main.cpp", "int compute_total(int *items) {\n  return 1;\n}\n",
            "int main() {\n  return compute_total(<CURSOR>);\n}\n"),
    "c_sharp": ("Main.cs", "class Billing {\n  public static int ComputeTotal(int[] items) {\n"
                "    return 1;\n  }\n}\n",
                "class Main {\n  void Run() {\n    Billing.ComputeTotal(<CURSOR>);\n  }\n}\n"),
    "ruby": ("main.rb", "def compute_total(items)\n  items.sum\nend\n",
             "require_relative 'billing'\nx = compute_total(<CURSOR>)\n"),
    "php": ("main.php", "<?php\nfunction compute_total($items) {\n  return 1;\n}\n",
            "<?php\nrequire 'billing.php';\n$x = compute_total(<CURSOR>);\n"),
    "bash": ("main.sh", "compute_total() {\n  echo 1\n}\n",
             "source ./billing.sh\ncompute_total <CURSOR>\n"),
}  # fmt: skip


def test_every_language_has_a_caller_case():
    assert set(CALLERS) == set(CASES) == set(BY_NAME)


@pytest.mark.parametrize("name", sorted(CALLERS))
def test_definition_from_another_file_reaches_the_prompt(name: str, tmp_path: Path):
    spec = BY_NAME[name]
    main_name, helper_text, main_text = CALLERS[name]
    ext = Path(main_name).suffix
    helper_name = ("Billing" if name in ("java", "c_sharp") else "billing") + ext
    (tmp_path / helper_name).write_text(helper_text)
    offset = main_text.index("<CURSOR>")
    main_text = main_text.replace("<CURSOR>", "")
    (tmp_path / main_name).write_text(main_text)
    index = WorkspaceIndex(tmp_path, tmp_path / ".cache")
    index.build()
    client = OpenAIClient(HttpEndpoint("http://127.0.0.1:9/v1"), "m", get_template("qwen"))
    prompt = ContextEngine(tmp_path, index).prompt(
        client,
        TOKENIZER,
        Cursor(main_text, offset, tmp_path / main_name, spec),
        PromptBudget(total=1000),
        FimRequest(prefix=""),
    )
    definitions = [p for p in prompt.parts if p.kind == "definition"]
    assert [p.path for p in definitions] == [helper_name]
    assert "ompute" in definitions[0].text and "otal" in definitions[0].text
    assert f"<|file_sep|>{helper_name}\n" in prompt.wire.prompt
