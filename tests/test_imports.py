"""Imports resolved to the right workspace file and definition, per language, with real grammars."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import pytest

from tandem.context.definitions import ParsedFiles, imported_definitions, nearby_names
from tandem.context.imports import Import, resolve_imports
from tandem.context.languages import language_for_path


def write(root: Path, files: dict[str, str]) -> None:
    for rel, text in files.items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)


def imports_of(root: Path, rel: str) -> list[Import]:
    path = root / rel
    spec = language_for_path(path)
    assert spec is not None
    tree = spec.parser().parse(path.read_bytes())
    return resolve_imports(spec, tree, path, root)


def rels(root: Path, imp: Import) -> list[str]:
    return [f.relative_to(root.resolve()).as_posix() for f in imp.files]


def definitions_used(root: Path, rel: str, cursor_marker: str = "<CURSOR>") -> dict[str, str]:
    """What the prompt would include for the cursor: name -> definition file."""
    path = root / rel
    text = path.read_text()
    offset = text.index(cursor_marker)
    text = text.replace(cursor_marker, "")
    path.write_text(text)
    found = imported_definitions(imports_of(root, rel), nearby_names(text, offset), ParsedFiles())
    return {d.name: d.path.relative_to(root.resolve()).as_posix() for d in found}


def test_python_absolute_relative_alias_submodule_and_package(tmp_path: Path):
    write(tmp_path, {
        "app/__init__.py": "from .core import run\n",
        "app/core.py": 'def run(task):\n    """Run a task."""\n    return task()\n',
        "app/util/__init__.py": "",
        "app/util/mathx.py": "def add(a, b):\n    return a + b\n\nclass Vector:\n    pass\n",
        "app/main.py": (
            "import os\nimport json as j\nfrom .core import run as go\nfrom .util import mathx\n"
            "from app.util.mathx import Vector\nimport app.core\nfrom app import run\n"
        ),
    })  # fmt: skip
    found = imports_of(tmp_path, "app/main.py")
    shapes = [(rels(tmp_path, i), i.names, i.namespace) for i in found]
    assert (["app/core.py"], {"go": "run"}, None) in shapes
    assert (["app/util/mathx.py"], {}, "mathx") in shapes
    assert (["app/util/mathx.py"], {"Vector": "Vector"}, None) in shapes
    assert (["app/core.py"], {}, "app.core") in shapes
    assert (["app/__init__.py"], {"run": "run"}, None) in shapes
    assert all(f.name not in ("os.py", "json.py") for i in found for f in i.files)


def test_python_definitions_for_the_cursor(tmp_path: Path):
    write(tmp_path, {
        "app/__init__.py": "",
        "app/core.py": 'def run(task):\n    """Run a task."""\n    return task()\n',
        "app/util/__init__.py": "",
        "app/util/mathx.py": "def add(a, b):\n    return a + b\n\ndef unused():\n    pass\n",
        "app/main.py": (
            "from .core import run as go\nfrom .util import mathx\n\n"
            "def main():\n    total = mathx.add(1, 2)\n    go(<CURSOR>)\n"
        ),
    })  # fmt: skip
    assert definitions_used(tmp_path, "app/main.py") == {
        "run": "app/core.py",
        "add": "app/util/mathx.py",
    }


def test_python_wildcard_and_src_layout(tmp_path: Path):
    write(tmp_path, {
        "src/lib/__init__.py": "",
        "src/lib/shapes.py": "class Circle:\n    radius: float\n",
        "tests/test_shapes.py": "from lib.shapes import *\n\nc = Circle(<CURSOR>)\n",
    })  # fmt: skip
    assert definitions_used(tmp_path, "tests/test_shapes.py") == {"Circle": "src/lib/shapes.py"}


@pytest.mark.parametrize("ext", ["ts", "js"])
def test_javascript_and_typescript(tmp_path: Path, ext: str):
    write(tmp_path, {
        f"web/lib/index.{ext}": "export function fetchUser(id) {\n  return id;\n}\n",
        f"web/models.{ext}": "export class User {\n  constructor(name) { this.name = name; }\n}\n",
        f"web/util.{ext}": "export const slug = (s) => s.toLowerCase();\nexport default slug;\n",
        f"web/req.{ext}": "function legacy() { return 1; }\nmodule.exports = { legacy };\n",
        f"web/app.{ext}": (
            "import React from 'react';\n"
            "import { fetchUser as load } from './lib';\n"
            "import * as M from './models.js';\n"
            "import slugify from './util';\n"
            "const { legacy } = require('./req');\n"
            "const u = new M.User(load(1));\nlegacy(<CURSOR>);\n"
        ),
    })  # fmt: skip
    found = imports_of(tmp_path, f"web/app.{ext}")
    shapes = [(rels(tmp_path, i), i.names, i.namespace) for i in found]
    assert ([f"web/lib/index.{ext}"], {"load": "fetchUser"}, None) in shapes
    assert ([f"web/models.{ext}"], {}, "M") in shapes
    assert ([f"web/util.{ext}"], {"slugify": "default"}, None) in shapes
    assert ([f"web/req.{ext}"], {"legacy": "legacy"}, None) in shapes
    assert len(found) == 4  # 'react' lives in node_modules, not the workspace
    used = definitions_used(tmp_path, f"web/app.{ext}")
    assert used["fetchUser"] == f"web/lib/index.{ext}"
    assert used["User"] == f"web/models.{ext}"
    assert used["legacy"] == f"web/req.{ext}"


def test_go_packages_by_module_path(tmp_path: Path):
    write(tmp_path, {
        "go.mod": "module example.com/shop\n\ngo 1.22\n",
        "cart/cart.go": (
            "package cart\n\n// Total sums prices.\nfunc Total(p []int) int {\n\treturn 0\n}\n"
        ),
        "cart/cart_test.go": "package cart\n",
        "main.go": (
            'package main\n\nimport (\n\t"fmt"\n\tc "example.com/shop/cart"\n)\n\n'
            "func main() {\n\tfmt.Println(c.Total(<CURSOR>))\n}\n"
        ),
        "helpers.go": "package main\n\nfunc helper() int { return 1 }\n",
    })  # fmt: skip
    found = imports_of(tmp_path, "main.go")
    assert (["cart/cart.go"], "c") in [(rels(tmp_path, i), i.namespace) for i in found]
    assert any(i.wildcard and rels(tmp_path, i) == ["helpers.go"] for i in found)
    assert definitions_used(tmp_path, "main.go") == {"Total": "cart/cart.go"}


def test_rust_crate_super_self_mod_and_lists(tmp_path: Path):
    write(tmp_path, {
        "Cargo.toml": "[package]\nname = \"shop\"\n",
        "src/lib.rs": "pub mod net;\npub mod util;\n",
        "src/net/mod.rs": "pub mod http;\n",
        "src/net/http.rs": (
            "use super::super::util::{trim, pad as p};\n"
            "/// Fetch a page.\npub fn get(url: &str) -> String {\n    trim(url)\n}\n"
        ),
        "src/util.rs": "pub fn trim(s: &str) -> String { s.trim().into() }\npub fn pad() {}\n",
        "src/main.rs": (
            "mod config;\nuse crate::net::http::get;\nuse crate::net::http;\n\n"
            "fn main() {\n    let cfg = config::load();\n    get(<CURSOR>);\n}\n"
        ),
        "src/config.rs": "pub fn load() -> u32 { 1 }\n",
    })  # fmt: skip
    found = imports_of(tmp_path, "src/main.rs")
    shapes = [(rels(tmp_path, i), i.names, i.namespace) for i in found]
    assert (["src/config.rs"], {}, "config") in shapes
    assert (["src/net/http.rs"], {"get": "get"}, None) in shapes
    assert (["src/net/http.rs"], {}, "http") in shapes
    nested = imports_of(tmp_path, "src/net/http.rs")
    assert [(rels(tmp_path, i), i.names) for i in nested] == [
        (["src/util.rs"], {"trim": "trim"}),
        (["src/util.rs"], {"p": "pad"}),
    ]
    assert definitions_used(tmp_path, "src/main.rs") == {
        "get": "src/net/http.rs",
        "load": "src/config.rs",
    }


def test_java_class_wildcard_static_and_same_package(tmp_path: Path):
    base = "src/main/java/com/shop"
    write(tmp_path, {
        f"{base}/model/Item.java": (
            "package com.shop.model;\n\npublic class Item {\n  int price;\n}\n"
        ),
        f"{base}/util/Money.java": (
            "package com.shop.util;\n\npublic class Money {\n"
            "  public static int cents(int x) { return x * 100; }\n}\n"
        ),
        f"{base}/Helper.java": (
            "package com.shop;\n\nclass Helper {\n  static int h() { return 1; }\n}\n"
        ),
        f"{base}/App.java": (
            "package com.shop;\n\nimport com.shop.model.Item;\nimport com.shop.util.*;\n"
            "import static com.shop.util.Money.cents;\nimport java.util.List;\n\n"
            "class App {\n  void run() {\n    Item i = new Item();\n    Helper.h();\n"
            "    cents(<CURSOR>);\n  }\n}\n"
        ),
    })  # fmt: skip
    found = imports_of(tmp_path, f"{base}/App.java")
    shapes = [(rels(tmp_path, i), i.names, i.wildcard) for i in found]
    assert ([f"{base}/model/Item.java"], {"Item": "Item"}, False) in shapes
    assert ([f"{base}/util/Money.java"], {}, True) in shapes
    assert ([f"{base}/util/Money.java"], {"cents": "cents"}, False) in shapes
    assert ([f"{base}/Helper.java"], {}, True) in shapes
    used = definitions_used(tmp_path, f"{base}/App.java")
    assert used["Item"] == f"{base}/model/Item.java"
    assert used["cents"] == f"{base}/util/Money.java"
    assert used["Helper"] == f"{base}/Helper.java"


@pytest.mark.parametrize("ext", ["c", "cpp"])
def test_c_and_cpp_local_includes(tmp_path: Path, ext: str):
    write(tmp_path, {
        "include/vec.h": "typedef struct { int x; } vec;\nint vec_len(vec v);\n",
        f"include/vec.{ext}": '#include "vec.h"\nint vec_len(vec v) {\n  return v.x;\n}\n',
        f"src/main.{ext}": (
            '#include <stdio.h>\n#include "../include/vec.h"\n\n'
            "int main(void) {\n  vec v;\n  return vec_len(<CURSOR>);\n}\n"
        ),
    })  # fmt: skip
    found = imports_of(tmp_path, f"src/main.{ext}")
    assert [rels(tmp_path, i) for i in found] == [["include/vec.h"], [f"include/vec.{ext}"]]
    assert all(i.wildcard for i in found)
    used = definitions_used(tmp_path, f"src/main.{ext}")
    assert used["vec_len"] in ("include/vec.h", f"include/vec.{ext}")


def test_nothing_outside_the_workspace(tmp_path: Path):
    outside = tmp_path / "outside.py"
    outside.write_text("def secret(): pass\n")
    write(tmp_path, {"ws/main.py": "from .. import outside\nimport outside\n"})
    assert imports_of(tmp_path / "ws", "main.py") == []


def test_nearby_names_weighs_the_cursor_line():
    text = "a = far\n" + "x = 1\n" * 10 + "y = near.attr(" + "\n"
    names = nearby_names(text, len(text) - 1)
    assert names["near"] > names["far"] > 0
    assert names["near.attr"] > 0
    assert isinstance(names, Counter)
