"""Resolve a file's imports to workspace files, per language, with tree-sitter.

What the cursor's line uses from other files is the context that helps a model
most (CrossCodeEval, RepoBench). Each resolver reads the import statements of
one language and maps them to files under the workspace root; imports of
third-party or standard modules resolve to nothing and are skipped.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from functools import cache, lru_cache
from pathlib import Path

import tree_sitter as ts

from tandem.context.languages import LanguageSpec


@dataclass(frozen=True)
class Import:
    """One import statement's effect: which local names come from which files."""

    files: tuple[Path, ...]
    names: dict[str, str] = field(default_factory=dict)  # local name -> name in the files
    namespace: str | None = None  # a local name bound to the module itself (ns.f)
    wildcard: bool = False  # every top-level name of the files is visible


def _text(node: ts.Node | None) -> str:
    return (node.text or b"").decode("utf-8", "replace") if node is not None else ""


MAX_IMPORT_DEPTH = 6  # a method's body in a class in a module, with room to spare


@cache
def _finder(language: ts.Language, types: frozenset[str]) -> ts.Query:
    return ts.Query(language, "[" + " ".join(f"({name})" for name in sorted(types)) + "] @node")


def _walk(tree: ts.Tree, types: frozenset[str]) -> Iterator[ts.Node]:
    """Nodes of ``types`` anywhere below ``node`` (imports may sit inside functions).

    A query runs in C: walking every node in Python cost ~20 ms on a 5,000-line file.
    """
    root = tree.root_node
    if root.has_error and root.child_count > WIDE_ERROR:
        # Junk (binary, data) parses into one flat run of error tokens, on which a query is
        # quadratic and holds the GIL: 200 kB froze the whole server for a minute.
        return
    cursor = ts.QueryCursor(_finder(tree.language, types))
    cursor.set_max_start_depth(MAX_IMPORT_DEPTH)  # imports sit near the top, never deep
    found = cursor.captures(root).get("node", [])
    yield from sorted(found, key=lambda n: n.start_byte)


WIDE_ERROR = 10_000  # top-level nodes of a tree with errors: a query takes ~50 ms there


def _first_file(*candidates: Path) -> Path | None:
    for candidate in candidates:
        if _is_file(candidate):
            return candidate
    return None


STAT_TTL = 5.0  # seconds a file's existence is taken as known (the engine's IMPORTS_TTL)
STATS_KEPT = 8192
_stats: dict[Path, tuple[float, bool]] = {}


def _is_file(path: Path) -> bool:
    """``path.is_file()``, remembered for ``STAT_TTL`` seconds.

    A new file's imports were resolved with ~90 system calls (each candidate module of
    each import, from each base folder): most of a first request's ~8 ms, the same calls
    for every file that imports the same modules (issue 12). A module created or
    deleted is seen within the TTL, as resolved imports are.
    """
    now = time.monotonic()
    known = _stats.get(path)
    if known is not None and now - known[0] <= STAT_TTL:
        return known[1]
    found = path.is_file()
    if len(_stats) >= STATS_KEPT:
        _stats.clear()
    _stats[path] = (now, found)
    return found


def _inside(path: Path, root: Path) -> bool:
    try:
        path.resolve().relative_to(root)
    except ValueError:
        return False
    return True


# ---- Python -----------------------------------------------------------------------------------


def _python_bases(path: Path, root: Path) -> list[Path]:
    """Folders an absolute import may start from: the file's ancestors up to the root, src/."""
    return list(_bases(path.parent, root))


@lru_cache(maxsize=1024)
def _bases(folder: Path, root: Path) -> tuple[Path, ...]:
    """Kept: resolving each ancestor costs a system call per path component."""
    bases = [p for p in (folder, *folder.parents) if _inside(p, root)]
    return (*bases, root / "src")


def _python_module(base: Path, dotted: str) -> Path | None:
    if not dotted:
        return _first_file(base / "__init__.py")
    rel = Path(*dotted.split("."))
    return _first_file(base / rel.with_suffix(".py"), base / rel / "__init__.py")


def _python(tree: ts.Tree, path: Path, root: Path) -> list[Import]:
    out: list[Import] = []
    types = frozenset({"import_statement", "import_from_statement"})
    absolute = _python_bases(path, root)  # the same for every import of the file
    for node in _walk(tree, types):
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
        dotted = _text(module)
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
        return _text(node.child_by_field_name("name")), _text(node.child_by_field_name("alias"))
    return _text(node), None


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
    return _first_file(*candidates)


def _javascript(tree: ts.Tree, path: Path, root: Path, spec: LanguageSpec) -> list[Import]:
    out: list[Import] = []
    for node in _walk(tree, frozenset({"import_statement", "variable_declarator"})):
        if node.type == "import_statement":
            source = node.child_by_field_name("source")
            found = _js_file(path, _text(source).strip("\"'`"), spec)
            if found is None:
                continue
            names: dict[str, str] = {}
            namespace = None
            for clause in (c for c in node.named_children if c.type == "import_clause"):
                for part in clause.named_children:
                    if part.type == "identifier":  # default import
                        names[_text(part)] = "default"
                    elif part.type == "namespace_import":
                        namespace = _text(part.named_children[0]) if part.named_children else None
                    elif part.type == "named_imports":
                        for spec_node in part.named_children:
                            name = _text(spec_node.child_by_field_name("name"))
                            alias = _text(spec_node.child_by_field_name("alias")) or name
                            names[alias] = name
            out.append(Import((found,), names=names, namespace=namespace))
            continue
        value = node.child_by_field_name("value")
        if value is None or value.type != "call_expression":
            continue
        if _text(value.child_by_field_name("function")) != "require":
            continue
        args = value.child_by_field_name("arguments")
        if args is None or not args.named_children:
            continue
        found = _js_file(path, _text(args.named_children[0]).strip("\"'`"), spec)
        if found is None:
            continue
        target = node.child_by_field_name("name")
        if target is not None and target.type == "object_pattern":
            names = {}
            for prop in target.named_children:
                if prop.type == "shorthand_property_identifier_pattern":
                    names[_text(prop)] = _text(prop)
                elif prop.type == "pair_pattern":
                    key = _text(prop.child_by_field_name("key"))
                    names[_text(prop.child_by_field_name("value"))] = key
            out.append(Import((found,), names=names))
        elif target is not None:
            out.append(Import((found,), namespace=_text(target)))
    return out


# ---- Go -----------------------------------------------------------------------------------------


def _go_module(root: Path) -> str | None:
    gomod = root / "go.mod"
    if not gomod.is_file():
        return None
    match = re.search(r"^module\s+(\S+)", gomod.read_text(encoding="utf-8", errors="replace"), re.M)
    return match.group(1) if match else None


def _go(tree: ts.Tree, path: Path, root: Path) -> list[Import]:
    module = _go_module(root)
    out: list[Import] = []
    for node in _walk(tree, frozenset({"import_spec"})):
        import_path = _text(node.child_by_field_name("path")).strip('"`')
        if module is None or not (import_path == module or import_path.startswith(module + "/")):
            continue
        folder = root / import_path[len(module) :].lstrip("/")
        files = tuple(sorted(f for f in folder.glob("*.go") if not f.name.endswith("_test.go")))
        if not files:
            continue
        alias = _text(node.child_by_field_name("name"))
        if alias == ".":
            out.append(Import(files, wildcard=True))
        else:
            out.append(Import(files, namespace=alias or import_path.rsplit("/", 1)[-1]))
    # The other files of the same package see each other's names without imports.
    siblings = tuple(
        sorted(f for f in path.parent.glob("*.go") if f != path and not f.name.endswith("_test.go"))
    )
    if siblings:
        out.append(Import(siblings, wildcard=True))
    return out


# ---- Rust ---------------------------------------------------------------------------------------


def _rust_crate_src(path: Path, root: Path) -> Path:
    for folder in path.parents:
        if (folder / "Cargo.toml").is_file():
            return folder / "src"
        if folder == root:
            break
    return root / "src"


def _rust_module_dir(path: Path) -> Path:
    """Where ``mod x;`` inside ``path`` looks for x.rs or x/mod.rs."""
    if path.name in ("mod.rs", "lib.rs", "main.rs"):
        return path.parent
    return path.parent / path.stem


def _rust_module_file(folder: Path, segments: list[str]) -> Path | None:
    if not segments:
        return None
    rel = Path(*segments)
    return _first_file(folder / rel.with_suffix(".rs"), folder / rel / "mod.rs")


def _rust(tree: ts.Tree, path: Path, root: Path) -> list[Import]:
    out: list[Import] = []
    crate = _rust_crate_src(path, root)
    for node in _walk(tree, frozenset({"use_declaration", "mod_item"})):
        if node.type == "mod_item":
            if node.child_by_field_name("body") is None:
                name = _text(node.child_by_field_name("name"))
                found = _rust_module_file(_rust_module_dir(path), [name])
                if found:
                    out.append(Import((found,), namespace=name))
            continue
        argument = node.child_by_field_name("argument")
        if argument is not None:
            out.extend(_rust_use(argument, [], path, crate))
    return out


def _rust_use(node: ts.Node, prefix: list[str], path: Path, crate: Path) -> list[Import]:
    """Expand one `use` tree (paths, lists, aliases, wildcards) into imports."""
    if node.type == "scoped_use_list":
        base = prefix + _rust_path(node.child_by_field_name("path"))
        items = node.child_by_field_name("list")
        return [
            imp for child in (items.named_children if items else []) for imp in
            _rust_use(child, base, path, crate)
        ]  # fmt: skip
    if node.type == "use_wildcard":
        segments = prefix + _rust_path(node.named_children[0] if node.named_children else None)
        found = _rust_resolve(segments, path, crate)
        return [Import((found,), wildcard=True)] if found else []
    alias = None
    if node.type == "use_as_clause":
        alias = _text(node.child_by_field_name("alias"))
        node = node.child_by_field_name("path") or node
    segments = prefix + _rust_path(node)
    if not segments:
        return []
    found = _rust_resolve(segments, path, crate)
    if found is not None:  # the whole path is a module
        return [Import((found,), namespace=alias or segments[-1])]
    owner = _rust_resolve(segments[:-1], path, crate)
    if owner is not None:  # an item inside a module
        return [Import((owner,), names={alias or segments[-1]: segments[-1]})]
    return []


def _rust_path(node: ts.Node | None) -> list[str]:
    if node is None:
        return []
    if node.type == "scoped_identifier":
        return [
            *_rust_path(node.child_by_field_name("path")),
            _text(node.child_by_field_name("name")),
        ]
    return [_text(node)]


def _rust_resolve(segments: list[str], path: Path, crate: Path) -> Path | None:
    if not segments:
        return None
    head, rest = segments[0], segments[1:]
    if head == "crate":
        if not rest:
            return _first_file(crate / "lib.rs", crate / "main.rs")
        return _rust_module_file(crate, rest)
    here = _rust_module_dir(path)
    if head == "self":
        return _rust_module_file(here, rest) if rest else path
    if head == "super":
        folder = here.parent
        while rest and rest[0] == "super":
            folder, rest = folder.parent, rest[1:]
        if rest:
            return _rust_module_file(folder, rest)
        if folder == crate:
            return _first_file(crate / "lib.rs", crate / "main.rs")
        return _first_file(folder.with_suffix(".rs"), folder / "mod.rs")
    return _rust_module_file(here, segments) or _rust_module_file(crate, segments)


# ---- Java ---------------------------------------------------------------------------------------


def _java_roots(path: Path, root: Path, package: str) -> list[Path]:
    """Source roots: the folder the file's own package path starts from, and common ones."""
    roots: list[Path] = []
    if package:
        depth = package.count(".") + 1
        folder = path.parent
        for _ in range(depth):
            folder = folder.parent
        roots.append(folder)
    roots += [root / "src" / "main" / "java", root / "src", root]
    return roots


def _java(tree: ts.Tree, path: Path, root: Path) -> list[Import]:
    package = ""
    for node in tree.root_node.named_children:
        if node.type == "package_declaration" and node.named_children:
            package = _text(node.named_children[0])
    roots = _java_roots(path, root, package)
    out: list[Import] = []
    for node in _walk(tree, frozenset({"import_declaration"})):
        name_node = next((c for c in node.named_children if c.type in (
            "scoped_identifier", "identifier")), None)  # fmt: skip
        dotted = _text(name_node)
        is_static = any(c.type == "static" for c in node.children)
        if any(c.type == "asterisk" for c in node.named_children):
            for base in roots:
                folder = base / Path(*dotted.split("."))
                files = tuple(sorted(folder.glob("*.java")))
                if files:
                    out.append(Import(files, wildcard=True))
                    break
            continue
        parts = dotted.split(".")
        class_parts = parts[:-1] if is_static else parts
        for base in roots:
            found = _first_file(base / Path(*class_parts).with_suffix(".java"))
            if found:
                if is_static:
                    out.append(Import((found,), names={parts[-1]: parts[-1]}))
                else:
                    out.append(Import((found,), names={parts[-1]: parts[-1]}, namespace=parts[-1]))
                break
    siblings = tuple(sorted(f for f in path.parent.glob("*.java") if f != path))
    if siblings:  # the same package needs no import
        out.append(Import(siblings, wildcard=True))
    return out


# ---- C / C++ ------------------------------------------------------------------------------------


def _c(tree: ts.Tree, path: Path, root: Path) -> list[Import]:
    out: list[Import] = []
    for node in _walk(tree, frozenset({"preproc_include"})):
        target = node.child_by_field_name("path")
        if target is None or target.type != "string_literal":
            continue  # <system> headers are not the workspace's
        name = _text(target).strip('"')
        found = _first_file(path.parent / name, root / name, root / "include" / name)
        if found and _inside(found, root):
            out.append(Import((found.resolve(),), wildcard=True))
            # A header's definitions usually live in the matching source file.
            for ext in (".c", ".cc", ".cpp", ".cxx"):
                source = found.with_suffix(ext)
                if source.is_file() and source.resolve() != path.resolve():
                    out.append(Import((source.resolve(),), wildcard=True))
    return out


Resolver = Callable[[ts.Tree, Path, Path], list[Import]]
RESOLVERS: dict[str, Resolver] = {
    "python": _python,
    "go": _go,
    "rust": _rust,
    "java": _java,
    "c": _c,
    "cpp": _c,
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
    return [imp for imp in imports if all(_inside(f, root) for f in imp.files)]
