"""Imports of Go, Rust, Java and C/C++ resolved to workspace files, with tree-sitter.

These name packages, module paths and headers rather than files next to the importer:
each needs the project's layout (``go.mod``, a crate's ``src``, Java's package folders,
include folders). Python and JavaScript/TypeScript are in ``imports``.
"""

from __future__ import annotations

import re
from pathlib import Path

import tree_sitter as ts

from tandem.context.import_common import Import, first_file, inside, node_text, walk

# ---- Go -----------------------------------------------------------------------------------------


def _go_module(root: Path) -> str | None:
    gomod = root / "go.mod"
    if not gomod.is_file():
        return None
    match = re.search(r"^module\s+(\S+)", gomod.read_text(encoding="utf-8", errors="replace"), re.M)
    return match.group(1) if match else None


def go_imports(tree: ts.Tree, path: Path, root: Path) -> list[Import]:
    module = _go_module(root)
    out: list[Import] = []
    for node in walk(tree, frozenset({"import_spec"})):
        import_path = node_text(node.child_by_field_name("path")).strip('"`')
        if module is None or not (import_path == module or import_path.startswith(module + "/")):
            continue
        folder = root / import_path[len(module) :].lstrip("/")
        files = tuple(sorted(f for f in folder.glob("*.go") if not f.name.endswith("_test.go")))
        if not files:
            continue
        alias = node_text(node.child_by_field_name("name"))
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
    return first_file(folder / rel.with_suffix(".rs"), folder / rel / "mod.rs")


def rust_imports(tree: ts.Tree, path: Path, root: Path) -> list[Import]:
    out: list[Import] = []
    crate = _rust_crate_src(path, root)
    for node in walk(tree, frozenset({"use_declaration", "mod_item"})):
        if node.type == "mod_item":
            if node.child_by_field_name("body") is None:
                name = node_text(node.child_by_field_name("name"))
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
        alias = node_text(node.child_by_field_name("alias"))
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
            node_text(node.child_by_field_name("name")),
        ]
    return [node_text(node)]


def _rust_resolve(segments: list[str], path: Path, crate: Path) -> Path | None:
    if not segments:
        return None
    head, rest = segments[0], segments[1:]
    if head == "crate":
        if not rest:
            return first_file(crate / "lib.rs", crate / "main.rs")
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
            return first_file(crate / "lib.rs", crate / "main.rs")
        return first_file(folder.with_suffix(".rs"), folder / "mod.rs")
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


def java_imports(tree: ts.Tree, path: Path, root: Path) -> list[Import]:
    package = ""
    for node in tree.root_node.named_children:
        if node.type == "package_declaration" and node.named_children:
            package = node_text(node.named_children[0])
    roots = _java_roots(path, root, package)
    out: list[Import] = []
    for node in walk(tree, frozenset({"import_declaration"})):
        name_node = next((c for c in node.named_children if c.type in (
            "scoped_identifier", "identifier")), None)  # fmt: skip
        dotted = node_text(name_node)
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
            found = first_file(base / Path(*class_parts).with_suffix(".java"))
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


def c_imports(tree: ts.Tree, path: Path, root: Path) -> list[Import]:
    out: list[Import] = []
    for node in walk(tree, frozenset({"preproc_include"})):
        target = node.child_by_field_name("path")
        if target is None or target.type != "string_literal":
            continue  # <system> headers are not the workspace's
        name = node_text(target).strip('"')
        found = first_file(path.parent / name, root / name, root / "include" / name)
        if found and inside(found, root):
            out.append(Import((found.resolve(),), wildcard=True))
            # A header's definitions usually live in the matching source file.
            for ext in (".c", ".cc", ".cpp", ".cxx"):
                source = found.with_suffix(ext)
                if source.is_file() and source.resolve() != path.resolve():
                    out.append(Import((source.resolve(),), wildcard=True))
    return out
