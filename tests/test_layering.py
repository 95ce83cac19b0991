"""Data flows one way: an AST walk over server/tandem fails on an upward import or a cycle.

Layers, low to high: the model clients and the caches; the settings; the context engine;
the pieces built on them (the workspace, the completion pipeline, chat prompts); what
drives them for one purpose (an editor session, chat and code actions, the reviewer); and
the entry points (the language server's pygls glue, the command line). A module may import
its own layer or a lower one; imports under ``if TYPE_CHECKING:`` count too, since a
cycle of types is still a cycle to a reader.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

PACKAGE = Path(__file__).resolve().parent.parent / "server" / "tandem"

LAYERS: list[tuple[str, ...]] = [
    ("tandem", "tandem.models", "tandem.cache"),
    ("tandem.config", "tandem.setting_keys"),
    ("tandem.context",),
    ("tandem.workspace", "tandem.completion", "tandem.chat_prompts"),
    (
        "tandem.session",
        "tandem.document_events",
        "tandem.status",
        "tandem.inflight",
        "tandem.shared_call",
        "tandem.pace",
        "tandem.assist",
        "tandem.review",
        "tandem.evaluation",
    ),
    ("tandem.lsp",),
    ("tandem.cli",),
]


def module_name(path: Path) -> str:
    rel = path.relative_to(PACKAGE.parent).with_suffix("")
    parts = rel.parts[:-1] if rel.name == "__init__" else rel.parts
    return ".".join(parts)


def modules() -> dict[str, Path]:
    return {module_name(p): p for p in sorted(PACKAGE.rglob("*.py"))}


def imports(name: str, path: Path, known: set[str]) -> Iterator[tuple[str, int]]:
    """The tandem modules ``name`` imports, anywhere in the file, with their line."""
    tree = ast.parse(path.read_text(encoding="utf-8"), str(path))
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            targets = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")
                anchor = anchor[: len(anchor) - node.level + 1]
                base = ".".join([*anchor, base] if base else anchor)
            # "from tandem.lsp import chat" imports the module tandem.lsp.chat
            targets = [f"{base}.{a.name}" if f"{base}.{a.name}" in known else base
                       for a in node.names]  # fmt: skip
        else:
            continue
        for target in targets:
            if target.split(".")[0] != "tandem" or target == name:
                continue
            target = _owner(target, known)
            yield target, node.lineno
            # Importing a.b.c runs a/b/__init__.py first: that is an import of a.b too.
            while "." in target:
                target = target.rpartition(".")[0]
                if target != "tandem" and not (name + ".").startswith(target + "."):
                    yield target, node.lineno


def _owner(target: str, known: set[str]) -> str:
    while target not in known and "." in target:
        target = target.rpartition(".")[0]
    return target


def layer_of(name: str) -> int:
    best, level = -1, -1
    for i, prefixes in enumerate(LAYERS):
        for prefix in prefixes:
            if (name == prefix or name.startswith(prefix + ".")) and len(prefix) > best:
                best, level = len(prefix), i
    assert level >= 0, f"{name} is in no layer: add it to LAYERS"
    return level


def graph() -> dict[str, set[str]]:
    found = modules()
    known = set(found)
    edges: dict[str, set[str]] = {name: set() for name in found}
    for name, path in found.items():
        for target, _ in imports(name, path, known):
            if target != name and target != "tandem":
                edges[name].add(target)
    return edges


def cycles(edges: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components of more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    out: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for nxt in sorted(edges.get(node, ())):
            if nxt not in index:
                visit(nxt)
                low[node] = min(low[node], low[nxt])
            elif nxt in on_stack:
                low[node] = min(low[node], index[nxt])
        if low[node] == index[node]:
            component = []
            while True:
                top = stack.pop()
                on_stack.discard(top)
                component.append(top)
                if top == node:
                    break
            if len(component) > 1:
                out.append(sorted(component))

    for node in sorted(edges):
        if node not in index:
            visit(node)
    return out


def test_every_module_is_in_a_layer():
    for name in modules():
        layer_of(name)


def test_no_upward_import():
    found = modules()
    known = set(found)
    upward = []
    for name, path in found.items():
        for target, line in imports(name, path, known):
            if target != "tandem" and layer_of(target) > layer_of(name):
                upward.append(f"{path.relative_to(PACKAGE.parent)}:{line}: {name} -> {target}")
    assert upward == []


def test_only_the_entry_points_import_the_language_server():
    """Only lsp/ itself and the command line (``tandem serve``) may."""
    found = modules()
    known = set(found)
    wrong = [
        f"{name} -> {target}"
        for name, path in found.items()
        if layer_of(name) < layer_of("tandem.lsp")
        for target, _ in imports(name, path, known)
        if target.startswith("tandem.lsp")
    ]
    assert wrong == []


def test_no_import_cycle():
    assert cycles(graph()) == []


def test_the_walk_sees_imports_and_cycles():
    """The checks above pass for the right reason: the walk finds what it must."""
    edges = graph()
    assert "tandem.context.engine" in edges["tandem.completion"]
    assert "tandem.lsp.chat" in edges["tandem.lsp.server"]  # "from tandem.lsp import chat"
    assert cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]
    assert layer_of("tandem.lsp.server") > layer_of("tandem.session") > layer_of("tandem.models")
