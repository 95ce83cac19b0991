"""Languages Tandem understands: grammar wheel, tags query, scopes, blocks, comments.

Adding a language is one ``LanguageSpec`` entry below plus a ``queries/NAME-tags.scm``
file. Grammars come from the official per-language wheels (never a downloader).
Files of any other language still get plain-text windows: ``language_for_path``
returns None and callers fall back, they never fail.
"""

from __future__ import annotations

import importlib
import importlib.metadata
import threading
from dataclasses import dataclass
from functools import cache
from pathlib import Path, PurePath

import tree_sitter as ts

QUERIES = Path(__file__).parent / "queries"


@dataclass(frozen=True)
class LanguageSpec:
    """What Tandem needs to know about one language."""

    name: str
    extensions: tuple[str, ...]
    module: str  # the grammar wheel's import name
    function: str = "language"  # the function in it that returns the grammar
    distribution: str = ""  # the wheel's name on PyPI, for its version
    comment: str = "#"  # a line comment starts with this
    # Nodes whose header is worth showing when the cursor is inside them (enclosing scopes).
    scope_types: frozenset[str] = frozenset()
    # Nodes that hold a block of statements: completing at their start asks for a block.
    block_types: frozenset[str] = frozenset()
    # Files that stand for their folder when imported (index.js, __init__.py, mod.rs).
    index_files: tuple[str, ...] = ()

    @property
    def grammar_version(self) -> str:
        return _version(self.distribution or self.module.replace("_", "-"))

    @property
    def language(self) -> ts.Language:
        return _language(self.module, self.function)

    def parser(self) -> ts.Parser:
        """A parser for this language (parsers are not thread-safe: one per thread)."""
        return _parser(self.module, self.function, threading.get_ident())

    @property
    def tags_query(self) -> ts.Query:
        return _query(self.name, self.module, self.function)

    @property
    def definitions_query(self) -> ts.Query:
        """The tags query without its reference patterns: a tenth of the work on big files."""
        return _query(self.name, self.module, self.function, references=False)


def _s(*names: str) -> frozenset[str]:
    return frozenset(names)


# TypeScript and TSX are two grammars with the same node names.
TS_SCOPES = _s(
    "function_declaration", "class_declaration", "method_definition", "function_expression",
    "arrow_function", "interface_declaration", "abstract_class_declaration", "internal_module",
    "enum_declaration",
)  # fmt: skip
TS_BLOCKS = _s(
    "statement_block", "class_body", "interface_body", "object", "enum_body", "object_type"
)

LANGUAGES: tuple[LanguageSpec, ...] = (
    LanguageSpec(
        "python", (".py", ".pyi"), "tree_sitter_python",
        scope_types=_s("function_definition", "class_definition"),
        block_types=_s("block"),
        index_files=("__init__.py",),
    ),
    LanguageSpec(
        "javascript", (".js", ".mjs", ".cjs", ".jsx"), "tree_sitter_javascript", comment="//",
        scope_types=_s("function_declaration", "class_declaration", "method_definition",
                       "function_expression", "arrow_function", "generator_function_declaration"),
        block_types=_s("statement_block", "class_body", "object"),
        index_files=("index.js", "index.mjs", "index.jsx"),
    ),
    LanguageSpec(
        "typescript", (".ts", ".mts", ".cts"), "tree_sitter_typescript", "language_typescript",
        comment="//",
        scope_types=TS_SCOPES,
        block_types=TS_BLOCKS,
        index_files=("index.ts", "index.tsx", "index.js"),
    ),
    LanguageSpec(
        "tsx", (".tsx",), "tree_sitter_typescript", "language_tsx", "tree-sitter-typescript",
        comment="//",
        scope_types=TS_SCOPES,
        block_types=TS_BLOCKS,
        index_files=("index.tsx", "index.ts", "index.js"),
    ),
    LanguageSpec(
        "go", (".go",), "tree_sitter_go", comment="//",
        scope_types=_s("function_declaration", "method_declaration", "type_declaration",
                       "func_literal"),
        block_types=_s("block", "field_declaration_list", "interface_type", "literal_value"),
    ),
    LanguageSpec(
        "rust", (".rs",), "tree_sitter_rust", comment="//",
        scope_types=_s("function_item", "impl_item", "trait_item", "mod_item", "struct_item",
                       "enum_item", "closure_expression"),
        block_types=_s("block", "declaration_list", "field_declaration_list",
                       "enum_variant_list"),
        index_files=("mod.rs",),
    ),
    LanguageSpec(
        "java", (".java",), "tree_sitter_java", comment="//",
        scope_types=_s("class_declaration", "interface_declaration", "enum_declaration",
                       "record_declaration", "method_declaration", "constructor_declaration"),
        block_types=_s("block", "class_body", "interface_body", "enum_body",
                       "constructor_body"),
    ),
    LanguageSpec(
        "c", (".c", ".h"), "tree_sitter_c", comment="//",
        scope_types=_s("function_definition", "struct_specifier", "union_specifier",
                       "enum_specifier"),
        block_types=_s("compound_statement", "field_declaration_list", "enumerator_list"),
    ),
    LanguageSpec(
        "cpp", (".cpp", ".cc", ".cxx", ".hpp", ".hh", ".hxx"), "tree_sitter_cpp", comment="//",
        scope_types=_s("function_definition", "class_specifier", "struct_specifier",
                       "namespace_definition", "enum_specifier", "lambda_expression"),
        block_types=_s("compound_statement", "field_declaration_list", "declaration_list",
                       "enumerator_list"),
    ),
    LanguageSpec(
        "c_sharp", (".cs",), "tree_sitter_c_sharp", distribution="tree-sitter-c-sharp",
        comment="//",
        scope_types=_s("class_declaration", "interface_declaration", "struct_declaration",
                       "record_declaration", "enum_declaration", "namespace_declaration",
                       "method_declaration", "constructor_declaration",
                       "property_declaration"),
        block_types=_s("block", "declaration_list", "enum_member_declaration_list",
                       "accessor_list"),
    ),
    LanguageSpec(
        "ruby", (".rb",), "tree_sitter_ruby",
        scope_types=_s("class", "module", "method", "singleton_method", "singleton_class"),
        block_types=_s("body_statement", "do_block", "block"),
    ),
    LanguageSpec(
        "php", (".php",), "tree_sitter_php", "language_php", comment="//",
        scope_types=_s("class_declaration", "interface_declaration", "trait_declaration",
                       "function_definition", "method_declaration", "enum_declaration"),
        block_types=_s("compound_statement", "declaration_list", "enum_declaration_list"),
    ),
    LanguageSpec(
        "bash", (".sh", ".bash"), "tree_sitter_bash",
        scope_types=_s("function_definition"),
        block_types=_s("compound_statement", "do_group"),
    ),
)  # fmt: skip

BY_NAME = {spec.name: spec for spec in LANGUAGES}
BY_EXTENSION = {ext: spec for spec in LANGUAGES for ext in spec.extensions}
# LSP languageId values that differ from our names.
LSP_IDS = {
    "javascriptreact": "javascript",
    "typescriptreact": "tsx",
    "csharp": "c_sharp",
    "shellscript": "bash",
    "sh": "bash",
    "c++": "cpp",
}


def language_for_path(path: str | PurePath) -> LanguageSpec | None:
    return BY_EXTENSION.get(PurePath(path).suffix.lower())


def language_named(name: str | None) -> LanguageSpec | None:
    """The language for an LSP languageId or one of our names; None if unknown."""
    if not name:
        return None
    name = name.lower()
    return BY_NAME.get(LSP_IDS.get(name, name))


@cache
def _version(distribution: str) -> str:
    try:
        return importlib.metadata.version(distribution)
    except importlib.metadata.PackageNotFoundError:
        return "unknown"


@cache
def _language(module: str, function: str) -> ts.Language:
    return ts.Language(getattr(importlib.import_module(module), function)())


@cache
def _parser(module: str, function: str, thread: int) -> ts.Parser:
    return ts.Parser(_language(module, function))


@cache
def _query(name: str, module: str, function: str, references: bool = True) -> ts.Query:
    source = (QUERIES / f"{name}-tags.scm").read_text(encoding="utf-8")
    query = ts.Query(_language(module, function), source)
    if not references:
        data = source.encode("utf-8")
        for index in range(query.pattern_count):
            pattern = data[query.start_byte_for_pattern(index) : query.end_byte_for_pattern(index)]
            if b"@definition" not in pattern and b"@import" not in pattern:
                query.disable_pattern(index)
    return query
