"""Every review output format: content, well-formedness, escaping, stable fingerprints, bytes."""

from __future__ import annotations

import dataclasses
import json
import os
import re
from pathlib import Path
from urllib.parse import unquote

import pytest
from jsonschema import validators

from tandem import __version__
from tandem.review.findings import Finding, ReviewResult, Skipped
from tandem.review.formats import FORMATS, render
from tandem.review.formats.human import md_escape

# Beside the checkout, never copied into it (CI has it too).
SARIF_SCHEMA = Path(__file__).resolve().parents[1].parent / "shared/data/sarif-schema-2.1.0.json"

NASTY = "50% faster, but: wrong\r\nsecond line, 100%0A literal"


MARKDOWN = (
    "*Teh* <script>x</script> @octocat [link](http://x) | a | #1 _u_ ~s~ &amp;\n"
    "- not a list\n1. nor this\n==="
)
ROWS = [
    ("src/app.py", 12, 14, "error", "null-dereference",
     "`user` may be None: find() returns None, when absent\nsee 100% of callers",
     "Check `user is None` first.", "    name = find(uid).name"),
    ("src/app.py", 5, 5, "warning", "unused-import", "os is unused", None, "import os"),
    ("docs/naïve guide.md", 3, 3, "info", "typo", MARKDOWN, None, "Teh quick ```brown``` fox"),
    ("src/日本/モジュール.ts", 7, 9, "warning", "race-condition", NASTY, None, "let x;"),
    ("lib/odd,name:v2.go", 1, 1, "info", "style", "use gofmt", "run `gofmt -w`", ""),
    # The same finding on two identical lines: one fingerprint each, and distinct.
    ("src/app.py", 30, 30, "warning", "magic-number", "name 42", None, "x = 42"),
    ("src/app.py", 40, 40, "warning", "magic-number", "name 42", None, "x = 42"),
]  # fmt: skip


def findings() -> list[Finding]:
    return [Finding(*row) for row in ROWS]


def skipped() -> list[Skipped]:
    return [
        Skipped("package-lock.json", "lock file"),
        Skipped("assets/logo.png", "binary"),
        Skipped("big module.py", "could not be reviewed: model error: timeout, retried 3 times"),
    ]


def result(items: list[Finding] | None = None) -> ReviewResult:
    return ReviewResult(
        findings=findings() if items is None else items,
        skipped=skipped(),
        files_reviewed=6,
        hunks_reviewed=11,
        model_requests=3,
        cached_requests=1,
        dropped_findings=2,
        model="qwen2.5-coder:7b",
    )


def empty() -> ReviewResult:
    return ReviewResult(files_reviewed=4, hunks_reviewed=9, model_requests=2, model="m")


def shifted(items: list[Finding], by: int) -> list[Finding]:
    return [dataclasses.replace(f, line=f.line + by, end_line=f.end_line + by) for f in items]


# --- common -----------------------------------------------------------------------------------


def test_formats_listed_and_unknown_refused():
    assert FORMATS == ("text", "markdown", "json", "sarif", "github", "gitlab", "rdjson")
    with pytest.raises(ValueError, match="unknown format 'xml'"):
        render(result(), "xml")


@pytest.mark.parametrize("fmt", FORMATS)
def test_deterministic_and_independent_of_input_order(fmt):
    first = render(result(), fmt, tool_version="9.9.9")
    assert render(result(), fmt, tool_version="9.9.9") == first
    reordered = ReviewResult(**{**dataclasses.asdict(result()), "findings": [], "skipped": []})
    reordered.findings = list(reversed(findings()))
    reordered.skipped = list(reversed(skipped()))
    assert render(reordered, fmt, tool_version="9.9.9") == first
    assert first.endswith("\n")
    assert first.encode("utf-8")


@pytest.mark.parametrize("fmt", FORMATS)
def test_zero_findings_render(fmt):
    out = render(empty(), fmt)
    assert out.endswith("\n")
    if fmt in ("json", "sarif", "gitlab", "rdjson"):
        json.loads(out)


@pytest.mark.parametrize("fmt", FORMATS)
def test_undecodable_path_bytes_still_written(fmt):
    """Git paths that are not UTF-8 arrive with lone surrogates; the output must still encode."""
    path = "src/caf\udce9.py"
    out = render(result([Finding(path, 2, 2, "error", "bug", "boom", None, "x")]), fmt)
    out.encode("utf-8")
    if fmt == "json":
        assert json.loads(out)["findings"][0]["path"] == path  # decodes back to the same path
    if fmt == "gitlab":
        assert json.loads(out)[0]["location"]["path"] == path
    if fmt == "rdjson":
        assert json.loads(out)["diagnostics"][0]["location"]["path"] == path
    if fmt == "text":
        assert out.startswith("src/caf\\udce9.py:2: error: boom [bug]\n")
    if fmt == "sarif":
        uri = json.loads(out)["runs"][0]["results"][0]["locations"][0]["physicalLocation"]
        assert uri["artifactLocation"]["uri"] == "src/caf%E9.py"  # the original byte


def test_fingerprints_stable_across_line_shifts_and_distinct():
    def prints(items: list[Finding]) -> dict[str, list[str]]:
        sarif = json.loads(render(result(items), "sarif"))["runs"][0]["results"]
        gitlab = json.loads(render(result(items), "gitlab"))
        return {
            "sarif": [r["partialFingerprints"]["tandemFingerprint/v1"] for r in sarif],
            "gitlab": [issue["fingerprint"] for issue in gitlab],
        }

    before = prints(findings())
    after = prints(shifted(findings(), 25))
    assert before == after
    for values in before.values():
        assert len(values) == len(findings()) == len(set(values))
        assert all(re.fullmatch(r"[0-9a-f]{32}", v) for v in values)
    # Another rule, or other code, on the same line is another finding.
    for change in ({"rule": "other-rule"}, {"code": "changed()"}):
        other = [dataclasses.replace(f, **change) for f in findings()]
        assert set(prints(other)["gitlab"]).isdisjoint(before["gitlab"])


# --- text -------------------------------------------------------------------------------------


def test_text_is_compiler_style():
    lines = render(result(), "text").splitlines()
    assert lines == [
        "docs/naïve guide.md:3: info: *Teh* <script>x</script> @octocat [link](http://x) | a | "
        "#1 _u_ ~s~ &amp; - not a list 1. nor this === [typo]",
        "lib/odd,name:v2.go:1: info: use gofmt [style]",
        "src/app.py:5: warning: os is unused [unused-import]",
        "src/app.py:12: error: `user` may be None: find() returns None, when absent "
        "see 100% of callers [null-dereference]",
        "src/app.py:30: warning: name 42 [magic-number]",
        "src/app.py:40: warning: name 42 [magic-number]",
        "src/日本/モジュール.ts:7: warning: 50% faster, but: wrong second line, 100%0A literal "
        "[race-condition]",
        "assets/logo.png: skipped: binary",
        "big module.py: skipped: could not be reviewed: model error: timeout, retried 3 times",
        "package-lock.json: skipped: lock file",
        "tandem: 7 findings (1 error, 4 warnings, 2 info) in 6 files; 3 skipped; "
        "2 invalid findings dropped",
    ]


def test_text_without_findings_is_one_summary_line():
    assert render(empty(), "text") == "tandem: no findings in 4 files\n"


# --- markdown ---------------------------------------------------------------------------------


def test_markdown_summary_groups_code_and_suggestions():
    md = render(result(), "markdown", tool_version="1.2.3")
    assert md.startswith("<!-- tandem-review -->\n## Tandem review\n")
    assert "**7 findings** in 6 files reviewed: 1 error, 4 warnings, 2 info." in md
    assert "3 files not reviewed" in md and "2 invalid findings from the model dropped" in md
    headings = re.findall(r"^### (.+)$", md, flags=re.M)
    assert headings == [
        "`docs/naïve guide.md` (1)",
        "`lib/odd,name:v2.go` (1)",
        "`src/app.py` (4)",
        "`src/日本/モジュール.ts` (1)",
    ]
    assert (
        "- **error** `null-dereference` (lines 12–14): \\`user\\` may be None: find() returns "
        "None, when absent  \n  see 100% of callers\n"
        "  ```python\n      name = find(uid).name\n  ```\n"
        "  **Suggestion:** Check \\`user is None\\` first.\n"
    ) in md
    assert "  ```typescript\n  let x;\n  ```" in md
    # No code: the suggestion goes on its own line (a hard break), not into the message.
    assert "(line 1): use gofmt  \n  **Suggestion:** run \\`gofmt -w\\`" in md
    # Backticks in the code: a longer fence around it.
    assert "  ````\n  Teh quick ```brown``` fox\n  ````" in md
    assert "<details><summary>Not reviewed (3)</summary>" in md
    assert "- `big module.py`: could not be reviewed: model error: timeout, retried 3 times" in md
    assert md.rstrip().endswith("<sub>tandem 1.2.3 with `qwen2.5-coder:7b`</sub>")


def test_markdown_escapes_model_text():
    md = render(result(), "markdown")
    line = next(x for x in md.splitlines() if "`typo`" in x)
    assert "<script>" not in md and "\\<script\\>" in line
    assert "\\*Teh\\*" in line and "\\[link\\](http://x)" in line and "\\_u\\_" in line
    assert "\\| a \\|" in line and "\\#1" in line and "\\~s\\~" in line and "\\&amp;" in line
    # @-mentions from model text would notify people: broken with a zero-width space.
    assert "@octocat" not in md and "@&#8203;octocat" in md
    # Continuation lines lose their block meaning and stay inside the list item.
    assert "  \\- not a list  \n  1\\. nor this  \n  \\===\n" in md


def test_markdown_clean_message_without_findings():
    md = render(empty(), "markdown", tool_version="1.0")
    assert "**No findings** in 4 files reviewed." in md
    assert "###" not in md and "<details>" not in md and "```" not in md


# --- json -------------------------------------------------------------------------------------


def test_json_findings_summary_skipped():
    data = json.loads(render(result(), "json"))
    assert list(data) == ["findings", "summary", "skipped"]
    assert data["summary"] == result().summary()
    assert data["findings"][0] == findings()[2].as_dict()
    assert sorted(map(json.dumps, data["findings"])) == sorted(
        json.dumps(f.as_dict()) for f in findings()
    )
    assert "suggestion" not in data["findings"][0]
    assert data["skipped"][0] == {"path": "assets/logo.png", "reason": "binary"}
    assert "naïve" in render(result(), "json")  # readable, not \u-escaped


# --- sarif ------------------------------------------------------------------------------------


def check_sarif(log: dict) -> None:
    """The official schema where it is present; CI always has it, so there it must be."""
    if SARIF_SCHEMA.is_file():
        schema = json.loads(SARIF_SCHEMA.read_text(encoding="utf-8"))
        validator_class = validators.validator_for(schema)  # draft-04, as its $schema says
        validator_class.check_schema(schema)
        errors = sorted(validator_class(schema).iter_errors(log), key=str)
        assert not errors, "\n".join(f"{list(e.absolute_path)}: {e.message}" for e in errors)
        return
    assert not os.environ.get("CI"), f"the SARIF schema must be present in CI: {SARIF_SCHEMA}"
    assert log["version"] == "2.1.0" and log["$schema"].startswith("https://")
    (run,) = log["runs"]
    assert isinstance(run["tool"]["driver"]["name"], str)
    assert all(inv["executionSuccessful"] in (True, False) for inv in run["invocations"])
    for res in run["results"]:
        assert res["level"] in ("none", "note", "warning", "error")
        assert isinstance(res["message"]["text"], str)
        region = res["locations"][0]["physicalLocation"]["region"]
        assert 1 <= region["startLine"] <= region["endLine"]


def test_sarif_valid_and_complete():
    log = json.loads(render(result(), "sarif", tool_version="1.2.3"))
    check_sarif(log)
    assert log["version"] == "2.1.0" and "sarif-schema-2.1.0" in log["$schema"]
    (run,) = log["runs"]
    driver = run["tool"]["driver"]
    assert driver["name"] == "tandem" and driver["version"] == "1.2.3"
    assert driver["informationUri"].startswith("https://")
    rules = [r["id"] for r in driver["rules"]]
    assert rules == sorted({f.rule for f in findings()})
    assert driver["rules"][rules.index("null-dereference")]["shortDescription"] == {
        "text": "Null dereference"
    }
    results = run["results"]
    assert len(results) == len(findings())
    for res in results:
        assert rules[res["ruleIndex"]] == res["ruleId"]
        assert res["locations"][0]["physicalLocation"]["artifactLocation"]["uriBaseId"] == (
            "%SRCROOT%"
        )
    by_rule = {r["ruleId"]: r for r in results}
    err = by_rule["null-dereference"]
    assert err["level"] == "error" and by_rule["typo"]["level"] == "note"
    assert by_rule["race-condition"]["level"] == "warning"
    assert err["message"]["text"] == (
        "`user` may be None: find() returns None, when absent\nsee 100% of callers\n\n"
        "Suggestion: Check `user is None` first."
    )
    loc = err["locations"][0]["physicalLocation"]
    assert loc["region"] == {
        "startLine": 12,
        "endLine": 14,
        "snippet": {"text": "    name = find(uid).name"},
    }
    uris = {
        r["ruleId"]: r["locations"][0]["physicalLocation"]["artifactLocation"]["uri"]
        for r in results
    }
    assert uris["typo"] == "docs/na%C3%AFve%20guide.md"
    assert uris["race-condition"] == (
        "src/%E6%97%A5%E6%9C%AC/%E3%83%A2%E3%82%B8%E3%83%A5%E3%83%BC%E3%83%AB.ts"
    )
    assert unquote(uris["style"]) == "lib/odd,name:v2.go"
    assert all(re.fullmatch(r"[A-Za-z0-9/%._~-]+", uri) for uri in uris.values())
    # GitHub computes primaryLocationLineHash itself; ours is a key of its own.
    assert all(list(r["partialFingerprints"]) == ["tandemFingerprint/v1"] for r in results)
    (invocation,) = run["invocations"]
    notes = invocation["toolExecutionNotifications"]
    assert [n["level"] for n in notes] == ["note"] * 3
    assert notes[1]["message"]["text"] == (
        "Not reviewed: could not be reviewed: model error: timeout, retried 3 times"
    )
    assert notes[1]["locations"][0]["physicalLocation"]["artifactLocation"]["uri"] == (
        "big%20module.py"
    )
    assert run["properties"]["summary"] == result().summary()


def test_sarif_schema_check_is_not_vacuous():
    if not SARIF_SCHEMA.is_file():
        assert not os.environ.get("CI"), f"the SARIF schema must be present in CI: {SARIF_SCHEMA}"
        pytest.skip("only meaningful with the official schema")
    log = json.loads(render(result(), "sarif"))
    log["runs"][0]["results"][0]["level"] = "fatal"
    with pytest.raises(AssertionError, match="level"):
        check_sarif(log)


def test_sarif_without_findings_is_valid():
    log = json.loads(render(empty(), "sarif"))
    check_sarif(log)
    (run,) = log["runs"]
    assert run["results"] == [] and run["tool"]["driver"]["rules"] == []
    assert run["tool"]["driver"]["version"] == __version__
    assert run["invocations"] == [{"executionSuccessful": True}]


def test_sarif_end_line_never_before_start():
    bad = Finding("a.py", 8, 0, "warning", "r", "m")
    log = json.loads(render(result([bad]), "sarif"))
    check_sarif(log)
    region = log["runs"][0]["results"][0]["locations"][0]["physicalLocation"]["region"]
    assert region == {"startLine": 8, "endLine": 8}


# --- github -----------------------------------------------------------------------------------


def parse_command(line: str) -> tuple[str, dict[str, str], str]:
    """The runner's parser: ``::name k=v,k=v::data``, then unescaping (``%25`` last)."""

    def unescape(text: str, prop: bool) -> str:
        pairs = [("%0D", "\r"), ("%0A", "\n")] + ([("%3A", ":"), ("%2C", ",")] if prop else [])
        for escaped, raw in [*pairs, ("%25", "%")]:
            text = text.replace(escaped, raw)
        return text

    assert line.startswith("::")
    head, data = line[2:].split("::", 1)
    name, _, props = head.partition(" ")
    properties = {}
    for pair in filter(None, props.split(",")):
        key, value = pair.split("=", 1)
        properties[key] = unescape(value, prop=True)
    return name, properties, unescape(data, prop=False)


def test_github_annotations_escaped_as_the_toolkit_does():
    out = render(result(), "github")
    lines = out.splitlines()
    assert len(lines) == len(findings()) + 1  # one per finding, one summary notice
    commands = [parse_command(line) for line in lines]
    by_title = {props.get("title"): (name, props, data) for name, props, data in commands}
    name, props, data = by_title["tandem: race-condition"]
    assert name == "warning"
    assert props == {
        "file": "src/日本/モジュール.ts",
        "line": "7",
        "endLine": "9",
        "title": "tandem: race-condition",
    }
    assert data == NASTY
    raw = next(x for x in lines if "race-condition" in x)
    assert raw.endswith("::50%25 faster, but: wrong%0D%0Asecond line, 100%250A literal")
    name, props, data = by_title["tandem: style"]
    assert name == "notice" and props["file"] == "lib/odd,name:v2.go"
    assert "file=lib/odd%2Cname%3Av2.go,line=1,endLine=1,title=tandem%3A style::" in out
    assert data == "use gofmt\n\nSuggestion: run `gofmt -w`"
    assert by_title["tandem: null-dereference"][0] == "error"
    name, props, data = commands[-1]
    assert (name, props) == ("notice", {"title": "tandem review"})
    assert data.splitlines() == [
        "tandem: 7 findings (1 error, 4 warnings, 2 info) in 6 files; 3 skipped; "
        "2 invalid findings dropped",
        "assets/logo.png: skipped: binary",
        "big module.py: skipped: could not be reviewed: model error: timeout, retried 3 times",
        "package-lock.json: skipped: lock file",
    ]


def test_github_injected_newlines_cannot_forge_commands():
    evil = Finding("a.py", 1, 1, "info", "r", "ok\n::error file=x.py::forged\r\n::stop-commands::t")
    lines = render(result([evil]), "github").splitlines()
    assert len(lines) == 2
    assert parse_command(lines[0])[2] == evil.message


def test_github_without_findings_is_one_notice():
    assert (
        render(empty(), "github")
        == "::notice title=tandem review::tandem: no findings in 4 files\n"
    )


# --- gitlab -----------------------------------------------------------------------------------


def test_gitlab_code_quality():
    issues = json.loads(render(result(), "gitlab"))
    assert isinstance(issues, list) and len(issues) == len(findings())
    for issue in issues:
        assert {"description", "check_name", "fingerprint", "severity", "location"} <= set(issue)
        assert issue["severity"] in ("info", "minor", "major", "critical", "blocker")
        lines = issue["location"]["lines"]
        assert isinstance(lines["begin"], int) and lines["begin"] <= lines["end"]
    by_check = {i["check_name"]: i for i in issues}
    assert by_check["null-dereference"]["severity"] == "major"
    assert by_check["race-condition"]["severity"] == "minor"
    assert by_check["typo"]["severity"] == "info"
    assert by_check["race-condition"]["location"] == {
        "path": "src/日本/モジュール.ts",
        "lines": {"begin": 7, "end": 9},
    }
    assert by_check["race-condition"]["description"] == NASTY
    assert by_check["style"]["description"].endswith("Suggestion: run `gofmt -w`")
    assert len({i["fingerprint"] for i in issues}) == len(issues)
    assert json.loads(render(empty(), "gitlab")) == []


# --- rdjson -----------------------------------------------------------------------------------

SEVERITY = ("ERROR", "WARNING", "INFO")


def check_rdjson_position(position: dict) -> None:
    assert set(position) <= {"line", "column"} and isinstance(position["line"], int)
    assert position["line"] >= 1


def test_rdjson_follows_reviewdog_diagnostic_result():
    data = json.loads(render(result(), "rdjson"))
    assert data["source"]["name"] == "tandem" and data["source"]["url"].startswith("https://")
    assert data["severity"] == "ERROR"  # the worst one
    diagnostics = data["diagnostics"]
    assert len(diagnostics) == len(findings())
    for d in diagnostics:
        assert isinstance(d["message"], str) and d["severity"] in SEVERITY
        assert isinstance(d["code"]["value"], str)
        check_rdjson_position(d["location"]["range"]["start"])
        check_rdjson_position(d["location"]["range"]["end"])
        assert "suggestions" not in d  # ours are prose, not replacement text
    race = next(d for d in diagnostics if d["code"]["value"] == "race-condition")
    assert race == {
        "message": md_escape(NASTY),  # reviewdog posts it as Markdown
        "location": {
            "path": "src/日本/モジュール.ts",
            "range": {"start": {"line": 7}, "end": {"line": 9}},
        },
        "severity": "WARNING",
        "code": {"value": "race-condition"},
    }
    assert next(d for d in diagnostics if d["code"]["value"] == "typo")["severity"] == "INFO"


def test_rdjson_without_findings():
    data = json.loads(render(empty(), "rdjson"))
    assert data["diagnostics"] == [] and "severity" not in data
    assert data["source"]["name"] == "tandem"
