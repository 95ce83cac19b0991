"""The context engine: everything a completion prompt needs, gathered for one cursor.

Used alike by ``tandem complete``, ``tandem context``, the language server and
the reviewer. It knows nothing of LSP: it takes text, an offset, a path, and
optionally an already-parsed tree (the language server keeps one per document).
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import Path

import tree_sitter as ts

from tandem.cache import Recent
from tandem.context.changes import TextChange
from tandem.context.definitions import (
    ParsedFiles,
    definition_of,
    imported_definitions,
    nearby_names,
)
from tandem.context.import_lines import ImportLines
from tandem.context.imports import Import, resolve_imports
from tandem.context.index import WorkspaceIndex
from tandem.context.languages import LanguageSpec, language_for_path
from tandem.context.prompt import (
    INDEX_DEFINITION_RANK,
    MAX_DEFINITIONS,
    RANKS,
    ContextCandidates,
    Prompt,
    PromptBudget,
    PromptPart,
    build_prompt,
    relative,
    scope_headers,
)
from tandem.context.reasons import Reason
from tandem.context.snippets import similar_snippets
from tandem.context.tags import TopLevelNames
from tandem.context.workspace import Exclusions
from tandem.models.base import FimRequest, ModelClient
from tandem.models.tokens import Tokenizer
from tandem.stages import stage

SNIPPET_QUERY_LINES = 20
IMPORTS_TTL = 5.0  # seconds a file's resolved imports are reused while its import lines stay
IMPORTS_KEPT = 32  # files whose resolved imports are kept
# Per file: the resolved imports, the exclusion verdicts' (id, version), those imports
# without their excluded files.
_Allowed = tuple[Sequence[Import], tuple[int, int], list[Import]]


@dataclass(frozen=True)
class Cursor:
    """Where a completion is asked for."""

    text: str
    offset: int
    path: Path
    spec: LanguageSpec | None = None
    tree: ts.Tree | None = None
    syntax: bool = True  # False: plain-text windows only (huge files)
    parsed: bool = False  # ContextEngine.parse has given it its language and tree
    # An editor's document version (``changes.next_generation``; 0: none) and the edit
    # that made it from the previous one: per-file work follows the edit (issue 12).
    generation: int = 0
    change: TextChange | None = None


def _without_overlaps(parts: list[PromptPart]) -> list[PromptPart]:
    """One copy of each text: a method inside a class shown whole is not shown again."""
    kept: list[PromptPart] = []
    for part in parts:
        if any(k.path == part.path and part.text in k.text for k in kept):
            continue
        inner = [i for i, k in enumerate(kept) if k.path == part.path and k.text in part.text]
        if inner:
            kept[inner[0]] = part
            kept = [k for i, k in enumerate(kept) if i not in inner[1:]]
            continue
        kept.append(part)
    return kept


class ContextEngine:
    """Gathers prompt candidates for a workspace; keeps parsed files between calls."""

    def __init__(
        self,
        root: Path,
        index: WorkspaceIndex | None = None,
        exclusions: Exclusions | None = None,
    ) -> None:
        self.root = root.resolve()
        self.index = index
        self.files = ParsedFiles()
        self.top_level_names = TopLevelNames()  # per file, following each edit
        self.import_lines = ImportLines()  # per file, following each edit
        self._imports: Recent[tuple[str, str, str], tuple[float, list[Import]]] = Recent(
            IMPORTS_KEPT
        )
        self._allowed: Recent[str, _Allowed] = Recent(IMPORTS_KEPT)
        # The workspace's rules; by default the index's exclude setting, so that both leave
        # out the same files.
        if exclusions is None:
            exclusions = Exclusions(self.root, index.exclude if index is not None else ())
        self.exclusions = exclusions

    def excluded(self, path: Path) -> Reason | None:
        """Why ``path`` must not feed a prompt (ignore rules, deny list, setting), or None.

        Imports and the editor's tabs reach files the index never walked, so every file a
        prompt quotes is checked here.
        """
        return self.exclusions.reason(path if path.is_absolute() else self.root / path)

    def parse(self, cursor: Cursor) -> Cursor:
        """The cursor with its language and tree: parsed here at most once per request.

        An editor's document already has its tree (kept in step with each edit); a file
        read by a command is parsed now. Everything after takes the parsed cursor.
        """
        if cursor.parsed:
            return cursor
        if not cursor.syntax:
            return replace(cursor, spec=None, tree=None, parsed=True)
        spec = cursor.spec or language_for_path(cursor.path)
        tree = cursor.tree
        if spec is not None and tree is None:
            tree = spec.parser().parse(cursor.text.encode("utf-8"))
            # a tree of our own: no document version's edits apply to it
            return Cursor(cursor.text, cursor.offset, cursor.path, spec, tree, parsed=True)
        return replace(cursor, spec=spec, parsed=True)

    def candidates(
        self,
        cursor: Cursor,
        tokenizer: Tokenizer,
        neighbours: Sequence[tuple[Path, str]] = (),
    ) -> ContextCandidates:
        if not cursor.parsed:  # the pipeline parses once, before
            cursor = self.parse(cursor)
        spec, tree = cursor.spec, cursor.tree
        source = cursor.text.encode("utf-8")
        byte_offset = len(cursor.text[: cursor.offset].encode("utf-8"))
        with stage("context.scopes"):
            scopes = scope_headers(tree, spec, source, byte_offset)
        with stage("context.names"):
            names = nearby_names(cursor.text, cursor.offset)
        definitions = self.definitions_for(
            cursor.path,
            spec,
            tree,
            names,
            tokenizer,
            source=cursor.text,
            generation=cursor.generation,
            change=cursor.change,
        )
        with stage("context.snippets"):
            snippets = self._snippets(cursor, neighbours, tokenizer)
        return ContextCandidates(scopes=scopes, definitions=definitions, snippets=snippets)

    def definitions_for(
        self,
        path: Path,
        spec: LanguageSpec | None,
        tree: ts.Tree | None,
        names: Mapping[str, float],
        tokenizer: Tokenizer,
        imports: Sequence[Import] | None = None,
        *,
        source: str | None = None,
        generation: int = 0,
        change: TextChange | None = None,
    ) -> list[PromptPart]:
        """Definitions in other files of the ``names`` a piece of ``path`` uses, best first.

        First those its imports lead to, then the symbol index for names they did not
        explain. The reviewer calls this with the names of a hunk's changed lines, once
        per hunk, so it passes the file's ``imports`` (``resolve_imports``) resolved once.
        ``generation`` and ``change`` (an editor's document) let the per-file passes follow
        the last edit instead of reading the whole file.
        """
        definitions: list[PromptPart] = []
        resolved: set[str] = set()
        defined_here: set[str] = set()
        if spec is not None and tree is not None:
            with stage("context.imports"):
                defined_here = self.top_level_names(str(path), tree, spec, generation, change)
                if imports is None:
                    imports = self.resolved_imports(spec, tree, path, source, generation, change)
                found = self._imported(path, names, tokenizer, imports, defined_here)
                resolved = {name for name, _ in found}
                definitions = [part for _, part in found]
        skip = resolved | defined_here
        with stage("context.index"):
            definitions.extend(self._index_definitions(path, names, skip, tokenizer))
        return _without_overlaps(definitions)

    def _imported(
        self,
        path: Path,
        names: Mapping[str, float],
        tokenizer: Tokenizer,
        imports: Sequence[Import],
        defined_here: set[str],
    ) -> list[tuple[str, PromptPart]]:
        """Definitions of imported names, each with the name it explains."""
        imports = self._allowed_imports(path, imports)
        counted = names if isinstance(names, Counter) else Counter(names)
        return [
            (
                found.name,
                PromptPart(
                    "definition",
                    relative(found.path, self.root),
                    found.text,
                    tokenizer.count(found.text),
                    RANKS["definition"],
                    found.score,
                ),
            )
            for found in imported_definitions(
                list(imports), counted, self.files, defined_here=defined_here
            )
        ]

    def prepare(
        self, spec: LanguageSpec, tree: ts.Tree, path: Path, source: str, generation: int = 0
    ) -> None:
        """A document's first-request work, ahead of its first request (an editor opens a
        file well before typing in it): its imports resolved, judged and their files
        parsed, its top-level names read."""
        imports = self.resolved_imports(spec, tree, path, source, generation)
        for imp in self._allowed_imports(path, imports):
            for file in imp.files:
                self.files.get(file)
        self.top_level_names(str(path), tree, spec, generation)

    def _allowed_imports(self, path: Path, imports: Sequence[Import]) -> list[Import]:
        """``imports`` without their excluded files; for the same resolved imports (kept
        by ``resolved_imports``) and the same verdicts, the list made last time (one
        exclusion check a file a keystroke was ~0.2 ms on a 5,000-line file, issue 12)."""
        version = (id(self.exclusions), self.exclusions.version)
        kept = self._allowed.get(str(path))
        if kept is not None and kept[0] is imports and kept[1] == version:
            return kept[2]
        allowed = [
            replace(i, files=tuple(f for f in i.files if not self.excluded(f))) for i in imports
        ]
        self._allowed.put(str(path), (imports, version, allowed))
        return allowed

    def resolved_imports(
        self,
        spec: LanguageSpec,
        tree: ts.Tree,
        path: Path,
        source: str | None = None,
        generation: int = 0,
        change: TextChange | None = None,
    ) -> list[Import]:
        """``resolve_imports``, reused while the file's import lines are unchanged (and
        for at most ``IMPORTS_TTL`` seconds, for files created or deleted on disk)."""
        if source is None:
            return resolve_imports(spec, tree, path, self.root)
        fingerprint = self.import_lines(str(path), source, spec.name, generation, change)
        key = (str(path), spec.name, fingerprint)
        now = time.monotonic()
        kept = self._imports.get(key, touch=True)
        if kept is not None and now - kept[0] <= IMPORTS_TTL:
            return kept[1]
        imports = resolve_imports(spec, tree, path, self.root)
        self._imports.put(key, (now, imports))
        return imports

    def _index_definitions(
        self, path: Path, names: Mapping[str, float], skip: set[str], tokenizer: Tokenizer
    ) -> list[PromptPart]:
        """Names near the cursor that imports did not explain, looked up in the symbol index."""
        if self.index is None:
            return []
        wanted = {n: w for n, w in names.items() if "." not in n and n not in skip and len(n) > 2}
        parts: list[PromptPart] = []
        here = relative(path, self.root)
        hits = []
        # Hits carry their workspace-relative path: comparing it resolves no symlinks (the
        # reviewer makes hundreds of these calls a run).
        for hit in self.index.rank(wanted, near=path, limit=12):
            if hit.rel == here:  # the file itself is in the prefix already
                continue
            if not self.excluded(hit.path):
                hits.append(hit)
            if len(hits) == MAX_DEFINITIONS:
                break
        for hit in hits:
            parsed = self.files.get(hit.path)
            if parsed is None:
                continue
            found = definition_of(parsed, hit.path, hit.tag, wanted.get(hit.tag.name, 0.0))
            parts.append(
                PromptPart(
                    "definition",
                    hit.rel,
                    found.text,
                    tokenizer.count(found.text),
                    INDEX_DEFINITION_RANK,
                    found.score,
                )
            )
        return parts

    def _snippets(
        self, cursor: Cursor, neighbours: Sequence[tuple[Path, str]], tokenizer: Tokenizer
    ) -> list[PromptPart]:
        before = cursor.text[: cursor.offset]
        # rsplit: the last lines without splitting the whole prefix of a big file
        query = "\n".join(before.rsplit("\n", SNIPPET_QUERY_LINES)[-SNIPPET_QUERY_LINES:])
        here = cursor.path.resolve()
        others = [
            (relative(p, self.root), t)
            for p, t in neighbours
            if p.resolve() != here and not self.excluded(p)
        ]
        if not others:
            return []
        found = similar_snippets(query, others, exclude=before)
        rank = RANKS["snippet"]
        return [
            PromptPart("snippet", s.path, s.text, tokenizer.count(s.text), rank, s.score)
            for s in found
        ]

    def prompt(
        self,
        client: ModelClient,
        tokenizer: Tokenizer,
        cursor: Cursor,
        budget: PromptBudget,
        request: FimRequest,
        neighbours: Sequence[tuple[Path, str]] = (),
    ) -> Prompt:
        """The budgeted prompt at the cursor, with its wire request rendered."""
        if not cursor.parsed:  # the pipeline parses once, before
            cursor = self.parse(cursor)
        candidates = self.candidates(cursor, tokenizer, neighbours)
        rel = relative(cursor.path, self.root)
        request = replace(request, path=rel)
        if cursor.spec is not None:
            request = replace(request, comment=cursor.spec.comment, language=cursor.spec.name)
        with stage("prompt (all)"):
            return build_prompt(
                client,
                tokenizer,
                text=cursor.text,
                offset=cursor.offset,
                path=rel,
                budget=budget,
                candidates=candidates,
                request=request,
            )
