"""The third round of latency levers (issue 12) answers exactly as the work it replaced.

Each lever is checked against the slower way it stands in for: error counts relative to
the file's own empty blocks against counting every block of the window; top-level names
read by kind ids against reading type names. The work moved off a keystroke's path still
happens: the "busy" status (for a call that runs long enough to be seen), the HTTP
stack's imports (at start, not on the first request). The request that starts a model
call and waits for its end is covered by test_typing.py's answers.
"""

from __future__ import annotations

import asyncio
import os
import random
import subprocess
import sys
from contextlib import asynccontextmanager
from pathlib import Path

import pytest

from tandem.config import load_settings
from tandem.context.languages import language_for_path, language_named
from tandem.context.postprocess import postprocess
from tandem.context.site import Site, errors
from tandem.context.tags import top_level_names
from tandem.session import Session
from tandem.workspace import open_workspace

from lsp_support import model_env
from modelserver import Behaviour, ModelServer
from test_tags import CASES

PYTHON = language_for_path(Path("a.py"))

# Empty blocks away from the cursor (`def e():` bodies), holes at it, errors elsewhere.
BASES = [
    "def e():\n\ndef f(x):\n    if x:\n        return 1\n    \n\ndef g():\n    pass\n",
    "class C:\n    def a(self):\n\n    def b(self):\n        return (1,\n\nx = [\n",
    "for i in range(3):\n    if i:\n\n    else:\n        y = i\nwhile True:\n",
    "def f():\n    try:\n        x = 1\n    except E:\n\n    return x\n",
]
PIECES = ["\n", "    ", "def k():", "if y:", "return 3", "pass", "(", ")", ":", "x = 2",
          "else:", "\n    ", "[", "]", "try:", "\n\n", "\n        ", "{", "}"]  # fmt: skip


def old_base(site: Site, multiline: bool) -> int:
    """``Site.base`` as it was: over every error and every empty block of the window."""
    found = errors(site.tree(""), PYTHON)
    k = len(site.prefix.rstrip().encode())
    holes = [e for e in found if e.is_named and k <= e.start_byte == e.end_byte <= site.p]
    return len(found) - sum(e.is_missing or multiline for e in holes)


def test_relative_error_counts_compare_as_counting_every_block():
    rng = random.Random(12)
    for _ in range(600):
        text = rng.choice(BASES)
        offset = rng.randint(0, len(text))
        site = Site(text[:offset], text[offset:], PYTHON)
        candidates = [
            "".join(rng.choice(PIECES) for _ in range(rng.randint(1, 5))) for _ in range(3)
        ]
        for multiline in (False, True):
            assert site.base(multiline) + site.absolute("") - site.count("") == old_base(
                site, multiline
            )
        full = {c: len(errors(site.tree(c), PYTHON)) for c in ["", *candidates]}
        for a in full:
            for b in full:  # every rule compares two counts: the differences are the same
                assert site.count(a) - site.count(b) == full[a] - full[b], (text, offset, a, b)
            for multiline in (False, True):
                relative = site.count(a) <= site.base(multiline)
                assert relative == (full[a] <= old_base(site, multiline))


def test_a_request_never_counts_the_blocks_of_the_whole_window():
    prefix = "def e():\n\n" * 200 + "def f(items):\n    total = sum(items)\n    return "
    suffix = "\n\n" + "def g():\n    pass\n" * 200
    site = Site(prefix, suffix, PYTHON)
    assert site.count("total * 2") <= site.base(False)
    assert site._blocks is None  # the whole-window query did not run
    # and post-processing keeps what a fresh count keeps
    assert postprocess(prefix, "total * 2\n", suffix, PYTHON, multiline=False) == "total * 2"
    assert postprocess(prefix, "total * (2", suffix, PYTHON, multiline=False) == ""


def names_by_type_strings(tree, spec) -> set[str]:
    """``top_level_names`` as it was: each node's type read as a string."""
    names: set[str] = set()
    for node in tree.root_node.named_children:
        wrapper = node.type in ("export_statement", "decorated_definition")
        for candidate in (node, *node.named_children) if wrapper else (node,):
            ctype = candidate.type
            if ctype in spec.scope_types or "declaration" in ctype:
                name = candidate.child_by_field_name("name")
                if name is None and ctype == "lexical_declaration":
                    first = candidate.named_children[0] if candidate.named_children else None
                    name = first.child_by_field_name("name") if first is not None else None
                if name is not None and name.text:
                    names.add(name.text.decode("utf-8", "replace"))
    return names


@pytest.mark.parametrize("name", sorted(CASES))
def test_top_level_names_by_kind_id_are_those_by_type_name(name):
    spec = language_named(name)
    assert spec is not None
    source = CASES[name].source
    rng = random.Random(name)
    for cut in [len(source), *(rng.randint(0, len(source)) for _ in range(30))]:
        # whole, and broken anywhere (error recovery makes odd top-level nodes)
        tree = spec.parser().parse(source[:cut] + b"\n" + source[cut + 7 :])
        assert top_level_names(tree, spec) == names_by_type_strings(tree, spec), cut
    assert top_level_names(spec.parser().parse(source), spec)  # every case defines some


# ---- work kept off the keystroke's path ----------------------------------------------------


@asynccontextmanager
async def session_on(model_server: ModelServer, monkeypatch, cache: Path):
    for name, value in model_env(model_server.url, TANDEM_CACHE_DIR=str(cache)).items():
        monkeypatch.setenv(name, value)
    statuses: list[str] = []
    session = Session(
        open_workspace(load_settings(None), None), status=lambda s, m: statuses.append(s)
    )
    session.statuses = statuses  # type: ignore[attr-defined]
    try:
        yield session
    finally:
        await session.close()


@pytest.mark.parametrize(("hang", "seen"), [(0.0, []), (1.0, ["busy", "ready"])])
async def test_busy_is_shown_for_a_call_that_runs_long_enough_to_be_seen(
    model_server: ModelServer, monkeypatch, tmp_path: Path, hang: float, seen: list[str]
):
    model_server.default = Behaviour(hang=hang, tokens=["y"])
    async with session_on(model_server, monkeypatch, tmp_path / "c") as session:
        session.set_status("ready", session.models.completion.describe())
        uri = (tmp_path / "a.py").as_uri()
        session.documents.open(uri, "def f(x):\n    return x\n\nvalue = ", "python", 1)
        before = len(session.statuses)
        answer = await session.inline(uri, 3, 8)
        assert answer is not None and answer.text == "y"
        for _ in range(3):  # "ready" follows the answer by two turns of the loop
            await asyncio.sleep(0)
        assert session.statuses[before:] == seen
        assert session.stats.model_calls == 1


WARM = """
import asyncio, sys
import httpx
from tandem.models.http import warm_up_transport

async def main(url):
    warm_up_transport()
    before = set(sys.modules)
    async with httpx.AsyncClient() as client:
        response = await client.get(url + "/v1/models")
    print(response.status_code, sorted(m for m in set(sys.modules) - before if "anyio" in m))

asyncio.run(main(sys.argv[1]))
"""


def test_the_first_request_imports_nothing_after_the_warm_up(model_server: ModelServer):
    cold = WARM.replace("    warm_up_transport()\n", "")
    env = {**os.environ, "NO_PROXY": "127.0.0.1", "no_proxy": "127.0.0.1"}
    run = [sys.executable, "-c"]
    without = subprocess.run([*run, cold, model_server.url], capture_output=True, text=True,
                             env=env, timeout=120, check=True)  # fmt: skip
    assert "anyio._backends._asyncio" in without.stdout  # what the first request imported
    warmed = subprocess.run([*run, WARM, model_server.url], capture_output=True, text=True,
                            env=env, timeout=120, check=True)  # fmt: skip
    assert warmed.stdout.split(" ", 1)[1].strip() == "[]", warmed.stdout
