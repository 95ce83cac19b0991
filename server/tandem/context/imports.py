"""Resolve a file's imports to workspace files, per language, with tree-sitter.

What the cursor's line uses from other files is the context that helps a model
most (CrossCodeEval, RepoBench). Each resolver reads the import statements of
one language and maps them to files under the workspace root; imports of
third-party or standard modules resolve to nothing and are skipped. Python and
JavaScript/TypeScript here, Go, Rust, Java and C/C++ in ``compiled_imports``.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import lru_cache
from pathlib import Path

import tree_sitter as ts

from tandem.context.compiled_imports import c_imports, go_imports, java_imports, rust_imports
from tandem.context.import_common import Import, first_file, inside, node_text, walk
from tandem.context.languages import LanguageSpec

__all__ = ["Import", "resolve_imports"]


# ---- Python -----------------------------------------------------------------------------------


def _python_bases(path: Path, root: Path) -> list[Path]:
    """Folders an absolute import may start from: the file's ancestors up to the root, src/."""
    return list(_bases(path.parent, root))


@lru_cache(maxsize=1024)
def _bases(folder: Path, root: Path) -> tuple[Path, ...]:
    """Kept: resolving each ancestor costs a system call per path component."""
    bases = [p for p in (folder, *folder.parents) if inside(p, root)]
    return (*bases, root / "src")


def _python_module(base: Path, dotted: str) -> Path | None:
    if not dotted:
        return first_file(base / "__init__.py")
    rel = Path(*dotted.split("."))
    return first_file(base / rel.with_suffix(".py"), base / rel / "__init__.py")


def _python(tree: ts.Tree, path: Path, root: Path) -> list[Import]:
    out: list[Import] = []
    types = frozenset({"import_statement", "import_from_statement"})
    absolute = _python_bases(path, root)  # the same for every import of the file
    for node in walk(tree, types):
        if node.type == "import_statement":
            for item in node.children_by_field_name("name"):
                dotted, alias = _aliased(item)
                for base in absolute:
                    found = _python_module(base, dotted)
                    if found:
                        out.append(Import((found,), namespace=alias or dotted))
                        break
            continue
        module = node.child_by_field_name("module_name")
        dotted = node_text(module)
        if module is not None and module.type == "relative_import":
            dots = len(dotted) - len(dotted.lstrip("."))
            base = path.parent
            for _ in range(dots - 1):
                base = base.parent
            bases, dotted = [base], dotted.lstrip(".")
        else:
            bases = absolute
        wildcard = any(c.type == "wildcard_import" for c in node.named_children)
        for base in bases:
            target = _python_module(base, dotted)
            if target is None and dotted:
                continue
            if wildcard and target is not None:
                out.append(Import((target,), wildcard=True))
                break
            names: dict[str, str] = {}
            for item in node.children_by_field_name("name"):
                original, alias = _aliased(item)
                sub = _python_module(base, f"{dotted}.{original}" if dotted else original)
                if sub is not None:  # `from pkg import module`
                    out.append(Import((sub,), namespace=alias or original))
                elif target is not None:
                    names[alias or original] = original
            if names and target is not None:
                out.append(Import((target,), names=names))
            break
    return out


def _aliased(node: ts.Node) -> tuple[str, str | None]:
    if node.type == "aliased_import":
        return node_text(node.child_by_field_name("name")), node_text(
            node.child_by_field_name("alias")
        )
    return node_text(node), None


# ---- JavaScript / TypeScript ------------------------------------------------------------------

JS_EXTENSIONS = (".ts", ".tsx", ".d.ts", ".js", ".jsx", ".mjs", ".cjs")


def _js_file(path: Path, spec_text: str, spec: LanguageSpec) -> Path | None:
    if not spec_text.startswith("."):
        return None  # a package from node_modules, not the workspace
    target = (path.parent / spec_text).resolve()
    stem = target.with_suffix("") if target.suffix in (".js", ".mjs", ".cjs") else target
    candidates = [target, *(Path(f"{stem}{ext}") for ext in JS_EXTENSIONS)]
    candidates += [target / name for name in spec.index_files]
    candidates += [target / f"index{ext}" for ext in JS_EXTENSIONS]
    return first_file(*candidates)


def _javascript(tree: ts.Tree, path: Path, root: Path, spec: LanguageSpec) -> list[Import]:
    out: list[Import] = []
    for node in walk(tree, frozenset({"import_statement", "variable_declarator"})):
        if node.type == "import_statement":
            source = node.child_by_field_name("source")
            found = _js_file(path, node_text(source).strip("\"'`"), spec)
            if found is None:
                continue
            names: dict[str, str] = {}
            namespace = None
            for clause in (c for c in node.named_children if c.type == "import_clause"):
                for part in clause.named_children:
                    if part.type == "identifier":  # default import
                        names[node_text(part)] = "default"
                    elif part.type == "namespace_import":
                        namespace = (
                            node_text(part.named_children[0]) if part.named_children else None
                        )
                    elif part.type == "named_imports":
                        for spec_node in part.named_children:
                            name = node_text(spec_node.child_by_field_name("name"))
                            alias = node_text(spec_node.child_by_field_name("alias")) or name
                            names[alias] = name
            out.append(Import((found,), names=names, namespace=namespace))
            continue
        value = node.child_by_field_name("value")
        if value is None or value.type != "call_expression":
            continue
        if node_text(value.child_by_field_name("function")) != "require":
            continue
        args = value.child_by_field_name("arguments")
        if args is None or not args.named_children:
            continue
        found = _js_file(path, node_text(args.named_children[0]).strip("\"'`"), spec)
        if found is None:
            continue
        target = node.child_by_field_name("name")
        if target is not None and target.type == "object_pattern":
            names = {}
            for prop in target.named_children:
                if prop.type == "shorthand_property_identifier_pattern":
                    names[node_text(prop)] = node_text(prop)
                elif prop.type == "pair_pattern":
                    key = node_text(prop.child_by_field_name("key"))
                    names[node_text(prop.child_by_field_name("value"))] = key
            out.append(Import((found,), names=names))
        elif target is not None:
            out.append(Import((found,), namespace=node_text(target)))
    return out


Resolver = Callable[[ts.Tree, Path, Path], list[Import]]
RESOLVERS: dict[str, Resolver] = {
    "python": _python,
    "go": go_imports,
    "rust": rust_imports,
    "java": java_imports,
    "c": c_imports,
    "cpp": c_imports,
}


def resolve_imports(spec: LanguageSpec, tree: ts.Tree, path: Path, root: Path) -> list[Import]:
    """The workspace files that ``path``'s imports bring in, per language.

    Languages without a resolver return nothing: their definitions are still
    found through the workspace symbol index.
    """
    path, root = path.resolve(), root.resolve()
    if spec.name in ("javascript", "typescript", "tsx"):
        imports = _javascript(tree, path, root, spec)
    else:
        resolver = RESOLVERS.get(spec.name)
        imports = resolver(tree, path, root) if resolver else []
    return [imp for imp in imports if all(inside(f, root) for f in imp.files)]
