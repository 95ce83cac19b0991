"""How many times one completion parses its document, renders its request and looks in the cache.

Run from the project root::

    .venv/bin/python bench/one_pass.py

One completion (a cache miss, then the same request again) through the command line
(``tandem complete`` in this process) and through the editor's ``Session.inline``, in a
small generated workspace, with the model being the loopback test server
(``tests/modelserver.py``). Counters are wrapped around, in this process only:

* tree-sitter parses of the document's exact bytes, by the module that asked (the context
  engine is the pipeline; the index reads each file once, not per request; post-processing
  parses a window of its own);
* ``ContextEngine.parse`` calls;
* ``fim_request`` renders while ``build_prompt`` fits the budget, and after it (a request
  rendered again to send it);
* ``CompletionCache.get`` lookups;
* requests sent (``send`` or ``complete`` on the client).

It runs against the code it finds: with ``PYTHONPATH=OTHER/server`` it counts another
checkout (the figures in docs/architecture.md compare the code before and after the
one-pass change).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import sys
import tempfile
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))
sys.path.insert(0, str(Path(__file__).resolve().parent))

import tandem.context.engine as engine_module  # noqa: E402
from tandem.cache import CompletionCache  # noqa: E402
from tandem.cli import main  # noqa: E402
from tandem.config import load_settings  # noqa: E402
from tandem.context.languages import LanguageSpec  # noqa: E402
from tandem.models.openai import OpenAIClient  # noqa: E402

from modelserver import ModelServer  # noqa: E402
from tables import table  # noqa: E402

HELPER = "def apply_discount(total, rate):\n    return total * (1 - rate)\n"
APP = (
    "from pricing import apply_discount\n\n\ndef checkout(items, rate):\n"
    "    total = sum(item.price for item in items)\n    return apply_discount("
)


class Counts:
    def __init__(self) -> None:
        self.document = b""
        self.c: Counter[str] = Counter()
        self.fitting = False

    @contextlib.contextmanager
    def installed(self) -> Iterator[None]:
        """Counters around the functions a completion goes through (this process only)."""
        counts = self
        patched: list[tuple[Any, str, Any]] = []

        def patch(owner: Any, name: str, make: Any) -> None:
            original = getattr(owner, name)
            patched.append((owner, name, original))
            setattr(owner, name, make(original))

        class Parser:
            def __init__(self, inner: Any) -> None:
                self.inner = inner

            def parse(self, data: bytes, *args: Any) -> Any:
                if data == counts.document:
                    module = sys._getframe(1).f_globals["__name__"].rpartition(".")[2]
                    counts.c[f"parses of the document: {module}"] += 1
                return self.inner.parse(data, *args)

        def counted(label: str) -> Any:
            def make(original: Any) -> Any:
                def wrapper(*args: Any, **kwargs: Any) -> Any:
                    counts.c[label] += 1
                    return original(*args, **kwargs)

                return wrapper

            return make

        def render(original: Any) -> Any:
            def wrapper(*args: Any, **kwargs: Any) -> Any:
                where = "while fitting the budget" if counts.fitting else "after the prompt"
                counts.c[f"renders {where}"] += 1
                return original(*args, **kwargs)

            return wrapper

        def fitting(original: Any) -> Any:
            def wrapper(*args: Any, **kwargs: Any) -> Any:
                counts.fitting = True
                try:
                    return original(*args, **kwargs)
                finally:
                    counts.fitting = False

            return wrapper

        patch(LanguageSpec, "parser", lambda original: lambda spec: Parser(original(spec)))
        patch(engine_module.ContextEngine, "parse", counted("ContextEngine.parse calls"))
        patch(engine_module, "build_prompt", fitting)
        patch(OpenAIClient, "fim_request", render)
        patch(CompletionCache, "get", counted("cache lookups"))
        name = "send" if hasattr(OpenAIClient, "send") else "complete"
        patch(OpenAIClient, name, counted("requests sent"))
        try:
            yield
        finally:
            for owner, attr, original in reversed(patched):
                setattr(owner, attr, original)

    def take(self) -> Counter[str]:
        out, self.c = self.c, Counter()
        return out


def workspace(folder: Path) -> Path:
    root = folder / "shop"
    (root / ".git").mkdir(parents=True)
    (root / "pricing.py").write_text(HELPER)
    (root / "cart.py").write_text(APP)
    return root


def session_for(root: Path, env: dict[str, str]) -> Any:
    """The editor's session, built however the code at hand builds it."""
    settings = load_settings(root, environ=env)
    try:
        from tandem.session import Session
        from tandem.workspace import open_workspace

        return Session(open_workspace(settings, root))
    except ImportError:
        from tandem.lsp.session import Session  # type: ignore[no-redef]

        return Session(root, settings)


async def editor_completions(root: Path, env: dict[str, str], counts: Counts) -> list[Counter]:
    session = session_for(root, env)
    uri = (root / "cart.py").as_uri()
    session.documents.open(uri, APP, "python", 1)
    lines = APP.split("\n")
    out = []
    try:
        for _ in range(2):
            counts.take()
            await session.inline(uri, len(lines) - 1, len(lines[-1]))
            out.append(counts.take())
            session.typeahead.forget(uri)  # as a closed and reopened document
    finally:
        await session.close()
    return out


def run() -> str:
    counts = Counts()
    counts.document = APP.encode("utf-8")
    rows: dict[str, Counter[str]] = {}
    with tempfile.TemporaryDirectory() as scratch, ModelServer(tokens=["[item]"]) as server:
        root = workspace(Path(scratch))
        env = {
            "TANDEM_PROVIDER": "openai",
            "TANDEM_ENDPOINT": server.url + "/v1",
            "TANDEM_MODEL": "qwen2.5-coder",
            "TANDEM_CACHE_DIR": str(Path(scratch) / "cache"),
            "XDG_CONFIG_HOME": str(Path(scratch) / "config"),
        }
        os.environ.update(env)
        at = f"{root / 'cart.py'}:6:{len(APP.splitlines()[-1]) + 1}"
        with counts.installed(), contextlib.redirect_stdout(open(os.devnull, "w")):
            counts.take()
            main(["complete", at])
            rows["tandem complete, a miss"] = counts.take()
            main(["complete", at])
            rows["tandem complete, the same again (cache)"] = counts.take()
            miss, hit = asyncio.run(editor_completions(root, env, counts))
        rows["Session.inline, a miss"] = miss
        rows["Session.inline, the same again (cache)"] = hit
    labels = sorted({k for c in rows.values() for k in c})
    cells = [[name, *(str(c[k]) for k in labels)] for name, c in rows.items()]
    return table(["completion", *labels], cells)


if __name__ == "__main__":
    import tandem

    print(f"# one completion, counted: tandem from {Path(tandem.__file__).parent}\n")
    print(run())
