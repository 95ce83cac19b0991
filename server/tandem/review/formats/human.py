"""Formats people read: compiler-style text for logs, Markdown for a pull-request comment.

The Markdown report always fits one GitHub comment (65,536 characters): when the whole
report would not, the most severe findings are kept and the rest counted in a line that
points to the SARIF or JSON report, found by a binary search over how many fit.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from itertools import groupby

from tandem.context.languages import language_for_path
from tandem.review.findings import Finding, ReviewResult, Skipped
from tandem.review.formats.common import (
    TOOL_NAME,
    counts_phrase,
    encodable,
    end_line,
    ordered,
    ordered_skipped,
    plural,
    severity_ranked,
    summary_line,
)

COMMENT_LIMIT = 65_536  # GitHub's limit on a comment body
SKIPPED_SHOWN = 100  # files listed as not reviewed, at most, before the findings are cut

_LINE_BREAKS = re.compile(r"\s*[\r\n]+\s*")


def one_line(text: str) -> str:
    """Line breaks folded to spaces: one finding is one line in a log, whatever the model wrote."""
    return _LINE_BREAKS.sub(" ", text).strip()


def render_text(result: ReviewResult, tool_version: str) -> str:
    lines = [
        f"{f.path}:{f.line}: {f.severity}: {one_line(f.message)} [{f.rule}]"
        for f in ordered(result.findings)
    ]
    lines += [f"{s.path}: skipped: {one_line(s.reason)}" for s in ordered_skipped(result.skipped)]
    lines.append(summary_line(result))
    return "\n".join(lines) + "\n"


# Markdown: everything the model wrote is untrusted text, so it is escaped to render literally.
_INLINE = re.compile(r"([\\`*_\[\]<>|~#&])")
# Constructs that only mean something at the start of a line: list items, setext underlines.
_LINE_START = re.compile(r"^([-+=])")
_LIST_NUMBER = re.compile(r"^(\d+)([.)])")
# Renamed where a language's name is not the fence tag GitHub and GitLab highlight.
_FENCE_TAGS = {"c_sharp": "csharp"}
MARKER = "<!-- tandem-review -->"  # lets a CI script find and update its previous comment


def md_escape(text: str) -> str:
    """Text that renders as itself: no emphasis, links, HTML, tables, headings or @-mentions.

    Every line but the first also loses its line-start meaning (list items, setext headings);
    the first always follows a prefix. An ``@name`` would notify that user from a bot comment,
    which injected text must not do; a zero-width space after the ``@`` stops it.
    """
    lines = []
    for i, line in enumerate(text.splitlines() or [""]):
        line = _INLINE.sub(r"\\\1", line.strip())
        if i:  # the first line always follows a prefix (a list marker, a label)
            line = _LIST_NUMBER.sub(r"\1\\\2", _LINE_START.sub(r"\\\1", line))
        lines.append(line.replace("@", "@&#8203;"))
    return "  \n".join(lines)


def code_span(text: str) -> str:
    """Inline code that survives backticks in the text (CommonMark: a longer fence)."""
    text = one_line(text)
    longest = max((len(run) for run in re.findall(r"`+", text)), default=0)
    fence = "`" * (longest + 1)
    pad = " " if text.startswith("`") or text.endswith("`") or not text.strip() else ""
    return f"{fence}{pad}{text}{pad}{fence}"


def code_block(code: str, path: str, indent: str) -> list[str]:
    longest = max((len(run) for run in re.findall(r"`+", code)), default=0)
    fence = "`" * max(3, longest + 1)
    spec = language_for_path(path)
    tag = _FENCE_TAGS.get(spec.name, spec.name) if spec else ""
    body = [indent + line for line in code.rstrip("\r\n").splitlines()]
    return [f"{indent}{fence}{tag}", *body, f"{indent}{fence}"]


def comment_length(text: str) -> int:
    """Length as GitHub counts it (UTF-16 code units: an emoji counts two), as written."""
    return len(encodable(text).encode("utf-16-le", "surrogatepass")) // 2


def render_markdown(result: ReviewResult, tool_version: str) -> str:
    """The whole report if it fits a comment, else the most severe findings that do."""
    text = _markdown(result, tool_version, result.findings, result.skipped)
    if comment_length(text) <= COMMENT_LIMIT:
        return text
    ranked = severity_ranked(result.findings)
    skipped = ordered_skipped(result.skipped)[:SKIPPED_SHOWN]

    def fits(findings: int, skips: int) -> str | None:
        out = _markdown(result, tool_version, ranked[:findings], skipped[:skips])
        return out if comment_length(out) <= COMMENT_LIMIT else None

    keep = _largest(len(ranked), lambda n: fits(n, len(skipped)) is not None)
    if keep:
        return fits(keep, len(skipped)) or ""
    shown = _largest(len(skipped), lambda n: fits(0, n) is not None)
    return fits(0, shown) or _markdown(result, tool_version, [], [])[: COMMENT_LIMIT // 2]


def _largest(count: int, ok: Callable[[int], bool]) -> int:
    """The largest n in [0, count] with ok(n) (ok is monotone), by binary search."""
    low, high = 0, count
    while low < high:
        middle = (low + high + 1) // 2
        if ok(middle):
            low = middle
        else:
            high = middle - 1
    return low


def _markdown(
    result: ReviewResult,
    tool_version: str,
    shown: list[Finding],
    skipped_shown: list[Skipped],
) -> str:
    out = [MARKER, "## Tandem review", ""]
    reviewed = plural(result.files_reviewed, "file")
    if result.findings:
        out.append(
            f"**{plural(len(result.findings), 'finding')}** in {reviewed} reviewed: "
            f"{counts_phrase(result)}."
        )
    else:
        out.append(f"**No findings** in {reviewed} reviewed.")
    if result.skipped:
        out[-1] += f" {plural(len(result.skipped), 'file')} not reviewed (listed below)."
    if result.dropped_findings:
        dropped = plural(result.dropped_findings, "invalid finding")
        out[-1] += f" {dropped} from the model dropped."
    hidden = len(result.findings) - len(shown) + result.more_findings
    if hidden:
        out += ["", f"**{plural(hidden, 'more finding')}**, less severe, not shown here: see "
                "the SARIF or JSON report."]  # fmt: skip
    for path, group in groupby(ordered(shown), key=lambda f: f.path):
        findings = list(group)
        out += ["", f"### {code_span(path)} ({len(findings)})", ""]
        for f in findings:
            lines = f"line {f.line}" if end_line(f) == f.line else f"lines {f.line}–{end_line(f)}"
            item = f"- **{f.severity}** {code_span(f.rule)} ({lines}): "
            out.append(item + md_escape(f.message).replace("  \n", "  \n  "))
            if f.code.strip():
                out += code_block(f.code, f.path, "  ")
            if f.suggestion:
                if not f.code.strip():
                    out[-1] += "  "  # a line break, not the message's paragraph running on
                out.append("  **Suggestion:** " + md_escape(f.suggestion).replace("  \n", "  \n  "))
    if result.skipped:
        out += ["", f"<details><summary>Not reviewed ({len(result.skipped)})</summary>", ""]
        out += [
            f"- {code_span(s.path)}: {md_escape(one_line(s.reason))}"
            for s in ordered_skipped(skipped_shown)
        ]
        if len(skipped_shown) < len(result.skipped):
            out.append(f"- … and {len(result.skipped) - len(skipped_shown)} more")
        out += ["", "</details>"]
    model = f" with {code_span(result.model)}" if result.model else ""
    out += ["", f"<sub>{TOOL_NAME} {md_escape(tool_version)}{model}</sub>"]
    return "\n".join(out) + "\n"
