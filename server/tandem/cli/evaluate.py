"""``tandem eval``: completion quality on the user's own repository, per configuration.

Holes are cut from the workspace's files (never from an excluded one) and filled by the
same pipeline as ``tandem complete`` (``tandem.evaluation.runner``), once per
configuration: the current settings, then each ``--compare KEY=VALUE[,KEY=VALUE...]``
on top of them (keys of the ``[completion]`` section, or dotted keys), so a team can
choose a model, template and budget for its code.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import sys
from pathlib import Path
from typing import Any

from tandem.cli.args import UsageError, overrides
from tandem.config import find_root, load_settings
from tandem.context.languages import language_for_path
from tandem.evaluation.holes import Hole, cut_holes
from tandem.evaluation.metrics import summarise
from tandem.evaluation.runner import fill_all
from tandem.workspace import Workspace, open_workspace

SKIP_DIRS = {"node_modules", "__pycache__", "venv", "site-packages", "dist", "build"}
MAX_FILES = 2000  # files read to cut holes from: enough for a sample, bounded for a monorepo


def parse_config(text: str) -> dict[str, str]:
    """``KEY=VALUE[,KEY=VALUE...]`` as settings overrides; bare keys are ``completion.``'s."""
    out: dict[str, str] = {}
    for item in filter(None, (x.strip() for x in text.split(","))):
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise UsageError(f"--compare takes KEY=VALUE[,KEY=VALUE...], got {text!r}")
        key = key.strip()
        out[key if "." in key or key == "timeout" else f"completion.{key}"] = value.strip()
    return out


def source_files(workspace: Workspace, paths: list[Path]) -> list[Path]:
    """The files under ``paths`` with a known language that may be sent to a model."""
    found: list[Path] = []
    for start in paths:
        if not start.exists():
            raise UsageError(f"{start} does not exist")
        walk = [(str(start.parent), [], [start.name])] if start.is_file() else os.walk(start)
        for folder, dirs, names in walk:
            dirs[:] = sorted(d for d in dirs if not d.startswith(".") and d not in SKIP_DIRS)
            for name in sorted(names):
                path = Path(folder, name).resolve()
                if language_for_path(path) is None or workspace.excluded(path) is not None:
                    continue
                found.append(path)
                if len(found) >= MAX_FILES:
                    return found
    return found


def choose_holes(files: list[Path], placements: list[str], count: int, seed: int) -> list[Hole]:
    chosen: list[Hole] = []
    for placement in placements:
        every: list[Hole] = []
        for path in files:
            spec = language_for_path(path)
            try:
                text = path.read_text(encoding="utf-8")
            except (OSError, UnicodeDecodeError):
                continue
            if spec is not None:
                every += cut_holes(path, text, spec, placement, 50, seed)
        rng = random.Random(f"{seed}:{placement}")
        chosen += rng.sample(every, min(count, len(every)))
    return chosen


async def run_eval(args: argparse.Namespace) -> int:
    paths = [p.resolve() for p in (args.paths or [Path.cwd()])]
    root = find_root(paths[0], args.root)
    configs = [("current", {})] + [(c, parse_config(c)) for c in args.compare or []]
    base = {k: v for k, v in overrides(args).items() if v is not None}
    report: list[dict[str, Any]] = []
    holes: list[Hole] | None = None
    for name, extra in configs:
        settings = load_settings(root, overrides={**base, **extra})
        workspace = open_workspace(settings, root, cache=None)
        try:
            if holes is None:
                holes = choose_holes(source_files(workspace, paths), args.placements,
                                     args.holes, args.seed)  # fmt: skip
                if not holes:
                    raise UsageError("no holes to cut: no source files with functions found "
                                     "(or all of them are excluded)")  # fmt: skip
            filled = await fill_all(workspace, holes, progress=_progress(name, args.quiet))
            client = workspace.models.completion
            entry: dict[str, Any] = {
                "config": name,
                "model": client.describe(),
                "template": client.template.name,
                "budget": settings.completion.context_tokens,
                "overall": summarise([f.score for f in filled]).as_dict(),
                "placements": {
                    p: summarise([f.score for f in filled if f.hole.placement == p]).as_dict()
                    for p in args.placements
                },
            }
            report.append(entry)
        finally:
            await workspace.aclose()
    if args.json:
        print(json.dumps({"root": str(root), "configs": report}, indent=2, ensure_ascii=False))
    else:
        print(_table(report, args.placements))
    return 0


def _progress(name: str, quiet: bool) -> Any:
    def show(done: int, total: int) -> None:
        if quiet:
            return
        width = 30
        bar = "#" * (width * done // total)
        end = "\n" if done == total else ""
        print(f"\r{name[:40]} [{bar:<{width}}] {done}/{total}", end=end, file=sys.stderr,
              flush=True)  # fmt: skip

    return show


def _table(report: list[dict[str, Any]], placements: list[str]) -> str:
    headers = ["config", "placement", "holes", "exact", "edit sim", "empty", "median ms"]
    rows = []
    for entry in report:
        for placement, s in [*entry["placements"].items(), ("all", entry["overall"])]:
            if not s["holes"]:
                continue
            rows.append([entry["config"], placement, str(s["holes"]),
                         f"{s['exact_match']:.0%}", f"{s['edit_similarity']:.3f}",
                         f"{s['empty_rate']:.0%}", f"{s['median_latency_ms']:.0f}"])  # fmt: skip
    widths = [max(len(h), *(len(r[i]) for r in rows)) for i, h in enumerate(headers)]
    lines = ["  ".join(h.ljust(w) for h, w in zip(headers, widths, strict=True))]
    lines += ["  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)) for r in rows]
    models = [f"{e['config']}: {e['model']} (template {e['template']}, budget {e['budget']})"
              for e in report]  # fmt: skip
    return "\n".join([*lines, "", *models])
