"""The parts every entry point shares, built once from settings and a root by ``open_workspace``.

The command line (``complete``, ``context``, ``chat``), ``tandem review`` and the language
server's session all use one ``Workspace``: the model clients, the symbol index, the context
engine, a cache and the exclusion rules. The exclusion rules belong to the workspace and the
context engine is built on them, so no entry point can leave them out, with or without git.
"""

from __future__ import annotations

import asyncio
import gc
import logging
import os
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path

from tandem.cache import CompletionCache
from tandem.config import Settings
from tandem.context.engine import ContextEngine, Cursor
from tandem.context.imports import resolve_imports
from tandem.context.index import WorkspaceIndex
from tandem.context.languages import LanguageSpec, language_for_path
from tandem.context.postprocess import postprocess
from tandem.context.prompt import PromptBudget
from tandem.context.reasons import Reason
from tandem.context.workspace import MAX_BYTES, Exclusions
from tandem.models import Models, build_models
from tandem.models.http import warm_up_transport
from tandem.models.redact import warm_up as warm_up_redaction

log = logging.getLogger(__name__)

NEIGHBOURS = 8  # files whose snippets a completion prompt may quote
_warmed: set[str] = set()  # languages whose queries are compiled (they are process-wide)


@dataclass(frozen=True)
class Neighbour:
    """A file that could lend snippets to a prompt; ``read`` gives None when it may not."""

    path: Path
    spec: LanguageSpec | None
    read: Callable[[], str | None]


@dataclass
class Workspace:
    """Models, index, context engine, cache and exclusion rules of one workspace root.

    ``root`` None: an editor with no folder open; the engine then works from the current
    folder, there is no index, and each file is judged by its own folder's ignore rules.
    """

    root: Path | None
    settings: Settings
    models: Models
    exclusions: Exclusions
    engine: ContextEngine
    index: WorkspaceIndex | None = None
    cache: CompletionCache | None = None

    def excluded(self, path: Path, *, max_bytes: int = MAX_BYTES) -> Reason | None:
        """Why nothing of ``path`` may be sent to a model, or None."""
        return self.exclusions.reason(path, max_bytes=max_bytes)

    def completion_budget(self, total: int | None = None) -> PromptBudget:
        return PromptBudget(total=total or self.settings.completion.context_tokens)

    def neighbours(self, cursor: Cursor, candidates: Iterable[Neighbour]) -> list[tuple[Path, str]]:
        """Files of the cursor's language that lend snippets, in the order given (best first).

        The editor gives its open tabs, most recently edited first; the command line, the
        workspace's most recently modified files. An excluded file is never one: the
        context engine checks again before quoting any of them.
        """
        out: list[tuple[Path, str]] = []
        here = cursor.path.resolve()
        for candidate in candidates:
            if candidate.spec is None or candidate.spec != cursor.spec:
                continue
            if candidate.path.resolve() == here:
                continue
            text = candidate.read()
            if text is not None:
                out.append((candidate.path, text))
                if len(out) == NEIGHBOURS:
                    break
        return out

    def recent_files(self) -> list[Neighbour]:
        """The indexed files, most recently modified first: stand-ins for open tabs."""
        if self.index is None:
            return []
        dated: list[tuple[float, Path]] = []
        for path in self.index.files():
            full = path if path.is_absolute() else self.engine.root / path
            try:
                dated.append((full.stat().st_mtime, full))
            except OSError:
                continue
        return [
            Neighbour(full, language_for_path(full), _reader(full, self))
            for _, full in sorted(dated, reverse=True)
        ]

    def reconfigure(self, settings: Settings) -> Models:
        """New settings: new model clients (the old ones are returned, to be closed).

        The cache is keyed by model and stays; a change of the exclude setting makes
        every file be judged again, and the index drop the files now excluded.
        """
        old = self.models
        self.models = build_models(settings)
        if settings.exclude != self.settings.exclude:
            self.exclusions.forget(settings.exclude)
            if self.index is not None:
                self.index.exclude = settings.exclude
                self.index.start()
        self.settings = settings
        return old

    def ignore_rules_changed(self) -> None:
        """An ignore file was saved: every file is judged again."""
        self.exclusions.forget()

    async def warm_up(self) -> None:
        """Load the tokenizer, the secret rules and the HTTP stack now, not on the first
        keystroke; then calm the collector.

        Loading a BPE took ~0.5 s of the first completion, the redactor's rules (which
        import detect-secrets) ~0.1 s, anyio's backend 30-90 ms. Once the index is built,
        ``gc.freeze()`` moves its ~100k long-lived objects out of the collector's
        generations: full collections dropped from ~70 ms pauses to almost nothing.
        """
        redaction = asyncio.get_running_loop().run_in_executor(None, warm_up_redaction)
        try:
            await self.models.completion.tokenizer()
        except Exception as exc:  # the first completion will report it properly
            log.info("tokenizer warm-up failed: %s", exc)
        try:
            warm_up_transport()
        except Exception as exc:  # the first request imports it then
            log.info("HTTP transport warm-up failed: %s", exc)
        try:
            await redaction
        except Exception as exc:  # the first prompt loads the rules then
            log.info("secret rules warm-up failed: %s", exc)
        if self.index is not None:
            await asyncio.to_thread(self.index.wait)
            specs = {spec.name: spec for spec in map(language_for_path, self.index.files()) if spec}
            for spec in specs.values():
                await asyncio.to_thread(self.warm_up_language, spec)
            gc.freeze()

    def warm_up_language(self, spec: LanguageSpec) -> None:
        """Compile now what the first completion in a language would: its import finder
        and post-processing's block query (tree-sitter queries: ~7 ms for Python's blocks,
        paid by the first request of a session, issue 12), on a sample; no file is read.
        Done for the index's languages at start and for each opened document's."""
        if spec.name in _warmed:
            return
        _warmed.add(spec.name)
        sample = "import os\n\n\ndef f(x):\n    "
        try:
            tree = spec.parser().parse(sample.encode())
            resolve_imports(spec, tree, self.engine.root / "__warm_up__", self.engine.root)
            postprocess(sample, "return x\n", "\n", spec, multiline=True, tree=None)
        except Exception as exc:  # the first request compiles them then
            log.info("warming up %s failed: %s", spec.name, exc)

    async def aclose(self) -> None:
        await self.models.aclose()
        if self.index is not None:
            self.index.close()
        if self.cache is not None:
            self.cache.close()


def _reader(path: Path, workspace: Workspace) -> Callable[[], str | None]:
    def read() -> str | None:
        if workspace.excluded(path) is not None:
            return None
        try:
            return path.read_text(encoding="utf-8", errors="replace")
        except OSError:
            return None

    return read


def open_workspace(
    settings: Settings,
    root: Path | None,
    *,
    index: bool = True,
    cache: str | None = "completions",
) -> Workspace:
    """The one way a workspace is built, whichever command or editor asks.

    ``index``: whether to keep a symbol index of the root (built by the caller: at once
    for a command, in the background for an editor). ``cache``: the folder under
    ``cache_dir`` for answers (``completions``, ``review``), or None for none.
    """
    exclusions = Exclusions(root, settings.exclude)
    workspace_index = None
    if index and root is not None:
        workspace_index = WorkspaceIndex(root, settings.cache_dir, exclude=settings.exclude)
    engine = ContextEngine(root or Path(os.getcwd()), workspace_index, exclusions)
    return Workspace(
        root=root,
        settings=settings,
        models=build_models(settings),
        exclusions=exclusions,
        engine=engine,
        index=workspace_index,
        cache=CompletionCache(settings.cache_dir / cache) if cache is not None else None,
    )
