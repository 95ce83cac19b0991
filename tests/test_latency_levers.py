"""What the latency work (issue 12) changed must not change what a prompt holds.

Resolved imports are reused while a file's import lines stay the same; the stage timers
are off unless asked for, and then change no answer.
"""

from __future__ import annotations

from pathlib import Path

from tandem import stages
from tandem.context.engine import ContextEngine, Cursor
from tandem.context.import_lines import import_fingerprint
from tandem.context.languages import language_for_path


def test_fingerprint_ignores_typing_outside_imports():
    text = "import os\nfrom a import (\n    b,\n    c,\n)\n\ndef f():\n    return 1\n"
    typed = text.replace("return 1", "return 12")
    assert import_fingerprint(text) == import_fingerprint(typed)


def test_fingerprint_sees_every_line_of_a_bracketed_or_continued_import():
    python = "from a import (\n    b,\n    c,\n)\nx = 1\n"
    assert import_fingerprint(python) != import_fingerprint(python.replace("    c,", "    d,"))
    go = 'package main\n\nimport (\n\t"fmt"\n\t"os"\n)\n'
    assert import_fingerprint(go) != import_fingerprint(go.replace('"os"', '"io"'))
    assert import_fingerprint(go, "go") != import_fingerprint(go.replace('"os"', '"io"'), "go")
    assert import_fingerprint(python, "python") != import_fingerprint(
        python.replace("    c,", "    d,"), "python"
    )
    slash = "from a import b, \\\n    c\n"
    assert import_fingerprint(slash) != import_fingerprint(slash.replace("    c", "    d"))
    # an import typed inside a function is seen too
    body = "def f():\n    return 1\n"
    assert import_fingerprint(body) != import_fingerprint(body.replace("return 1", "import os"))


def _workspace(tmp_path: Path) -> Path:
    (tmp_path / "alpha.py").write_text("def from_alpha(x):\n    return x + 1\n")
    (tmp_path / "beta.py").write_text("def from_beta(x):\n    return x * 2\n")
    return tmp_path


def _imports(engine: ContextEngine, path: Path, text: str) -> list[str]:
    spec = language_for_path(path)
    cursor = engine.parse(Cursor(text, len(text), path))
    found = engine.resolved_imports(spec, cursor.tree, path, text)
    return sorted(f.name for imp in found for f in imp.files)


def test_resolved_imports_follow_an_edit_of_the_import_lines(tmp_path):
    root = _workspace(tmp_path)
    engine = ContextEngine(root)
    main = root / "main.py"
    text = "from alpha import from_alpha\n\ndef g():\n    return from_alpha(1)\n"
    assert _imports(engine, main, text) == ["alpha.py"]
    # typing elsewhere: the same answer (reused)
    assert _imports(engine, main, text + "\nx = 1\n") == ["alpha.py"]
    # the import line changes: resolved again
    changed = text.replace("from alpha import from_alpha", "from beta import from_beta")
    assert _imports(engine, main, changed) == ["beta.py"]
    both = "from alpha import (\n    from_alpha,\n)\nimport beta\n"
    assert _imports(engine, main, both) == ["alpha.py", "beta.py"]


def test_stage_timers_off_by_default_cost_no_record():
    assert stages.ENABLED is False  # the test run sets no TANDEM_STAGES
    assert stages.begin() is None
    with stages.stage("anything") as inside:
        assert inside is None
    stages.note("apply", 1.0)  # nothing to add to, no error
    stages.end(None, "model")


def test_stage_timers_record_when_on(monkeypatch, caplog):
    monkeypatch.setattr(stages, "ENABLED", True)
    record = stages.begin()
    assert record is not None
    with stages.stage("parse"):
        pass
    with stages.stage("parse"):
        pass
    stages.note("apply", 2.5)
    ran = stages.timed(lambda: 7, lambda ms: stages.note("edit", ms))
    assert ran() == 7
    assert set(record.ms) == {"parse", "apply", "edit"}
    assert record.ms["apply"] == 2.5
    with caplog.at_level("INFO", logger="tandem.stages"):
        stages.end(record, "model")
    assert "stages model" in caplog.text and "parse" in caplog.text
    assert stages.begin() is not None  # a new request gets a new record


POSTPROCESS_CASES = [
    # (path, text with | at the cursor, completion, multiline)
    ("a.py", "def total(xs):\n    s = |\n    return s\n", "sum(xs)\n", False),
    ("a.py", "def f(x):\n    |\n\ndef g():\n    pass\n", "y = x\n    return y\ndef h(:\n", True),
    ("a.py", "class A:\n    def m(self):\n        |", "return [1, 2\n", True),
    ("a.py", "x = {'é': 1, 'ü': |}\n", "2, 'ß': 3", False),
    ("a.js", "function f(a) {\n  |\n}\n", "return a + 1;\n}\nfunction g() {", True),
    ("a.go", "package main\n\nfunc f() int {\n\t|\n}\n", "return 1\n}\n\nfunc g() {", True),
]


def test_postprocess_from_the_documents_tree_answers_as_from_scratch():
    """Candidates parsed incrementally from the editor's tree: the same trees, the same text."""
    from tandem.context.multiline import parse
    from tandem.context.postprocess import postprocess
    from tandem.context.site import Site

    for name, marked, completion, multiline in POSTPROCESS_CASES:
        spec = language_for_path(Path(name))
        assert spec is not None
        prefix, suffix = marked.split("|")
        tree = parse(spec, prefix + suffix)
        fresh = postprocess(prefix, completion, suffix, spec, multiline=multiline)
        reused = postprocess(prefix, completion, suffix, spec, multiline=multiline, tree=tree)
        assert reused == fresh, name
        site = Site(prefix, suffix, spec, tree)
        for cut in range(len(completion) + 1):
            text = completion[:cut]
            scratch = parse(spec, prefix + text + suffix)
            assert str(site.tree(text).root_node) == str(scratch.root_node), (name, text)


def test_wants_block_from_the_documents_tree_answers_as_from_scratch():
    from tandem.context.multiline import at_empty_body, parse, wants_block

    texts = [
        ("a.py", "def f(x):\n    |\n\ndef g():\n    pass\n"),
        ("a.py", "def f(x):|"),
        ("a.py", "x = f(\n    |\n)\n"),
        ("a.py", "x = 1\n|\ny = 2\n"),
        ("a.py", "s = 'abc|'\n"),
        ("a.js", "function f(a) {|}\n"),
        ("a.go", "package main\n\nfunc f() {\n\t|\n}\n"),
    ]
    for name, marked in texts:
        spec = language_for_path(Path(name))
        text, offset = marked.replace("|", ""), marked.index("|")
        tree = parse(spec, text)
        assert wants_block(text, offset, spec, tree) == wants_block(text, offset, spec), marked
        assert at_empty_body(text, offset, spec, tree) == at_empty_body(text, offset, spec)
