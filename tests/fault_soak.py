"""The fault soak: every entry point against ``FaultServer`` with seeded random faults.

``tandem review`` (in a real git repository made here), ``tandem complete`` (both run by
the CLI's ``main`` in this process, as the command would) and ``tandem serve`` over stdio
(inline completions and chat, with the llama.cpp provider: ``/infill``) each make model
requests until they have made ``requests``. Each request (one body, with its retries) is
judged by what the server did to its attempts and what the user got:

- right: the answer the server sent, whole (``recovered`` when a fault came first);
- failed as designed: the last attempt was cut mid-answer or stalled past the deadline
  (or every attempt failed), and the user got that documented error and exit code;
- WRONG: anything else: a wrong or partial answer, an error where the answer came, a
  hang, a crash, an answer from the cache after a failure, the language server gone.

After a failed request the same one is asked again: it must reach the server (nothing
of a failed answer is cached).
"""

from __future__ import annotations

import asyncio
import contextlib
import io
import json
import os
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from faultserver import BEFORE_ANSWER, KINDS, FaultPlan, FaultServer, Served

PIECES = ['"hi "', " +", " name"]
RIGHT = '"hi " + name'
TIMEOUT = 3.0  # TANDEM_TIMEOUT: the deadline, retries included
SLACK = 8.0  # a loaded machine's slack past the deadline before "a hang"
CODES = {"cut": 9, "stall": 6, "429": 7, "500": 8, "503": 8}  # tandem complete's exit codes


@dataclass
class Tally:
    entry: str
    requests: int = 0
    recovered: int = 0
    clean: int = 0
    designed: int = 0
    wrong: list[str] = field(default_factory=list)
    injected: Counter[str] = field(default_factory=Counter)


@dataclass
class Outcome:
    ok: bool
    text: str = ""
    error: str = ""
    code: int = 0
    elapsed: float = 0.0


def ending(group: list[Served]) -> str:
    """What the attempts of one request should have ended in: "ok", or the fault."""
    last = group[-1].fault
    if last in (None, "idle-close"):
        return "ok"
    return last.split("+")[0] if last in BEFORE_ANSWER else last


def requests_of(served: list[Served]) -> list[list[Served]]:
    """The model requests among ``served``: attempts grouped by body, in order."""
    groups: dict[str, list[Served]] = {}
    for s in served:
        if s.method == "POST" and not s.path.endswith("/tokenize"):
            groups.setdefault(s.digest, []).append(s)
    return list(groups.values())


def judge(tally: Tally, groups: list[list[Served]], got: Outcome, right: str, what: str,
          code_of: dict[str, int] | None) -> bool:  # fmt: skip
    """Count one user-visible operation's requests; whether it failed (as designed)."""
    for group in groups:
        tally.requests += 1
        tally.injected.update(s.fault for s in group if s.fault)
    if got.elapsed > TIMEOUT + SLACK:
        tally.wrong.append(f"{what}: took {got.elapsed:.1f}s (a hang)")
        return not got.ok
    if not groups:
        tally.wrong.append(f"{what}: answered without asking the model ({got})")
        return not got.ok
    *before, last = groups
    for group in before:  # answered, or the operation would have stopped there
        if ending(group) != "ok":
            tally.wrong.append(f"{what}: went on after {[s.fault for s in group]}")
            continue
        tally.recovered += any(s.fault for s in group)
        tally.clean += not any(s.fault for s in group)
    end = ending(last)
    if end == "ok":
        if got.ok and got.text == right:
            tally.recovered += any(s.fault for s in last)
            tally.clean += not any(s.fault for s in last)
        else:
            tally.wrong.append(f"{what}: {got} after {[s.fault for s in last]}")
        return not got.ok
    words = {"cut": "broke off", "stall": "within"}.get(end, "attempts")
    code = code_of.get(end, 3) if code_of is not None else None
    if not got.ok and words in got.error and (code is None or got.code == code):
        tally.designed += 1
    else:
        tally.wrong.append(f"{what}: {got} after {[s.fault for s in last]}, not {code} {words}")
    return True


@contextlib.contextmanager
def environment(values: dict[str, str], cwd: Path | None = None) -> Iterator[None]:
    saved, here = dict(os.environ), Path.cwd()
    os.environ.update(values)
    if cwd is not None:
        os.chdir(cwd)
    try:
        yield
    finally:
        os.chdir(here)
        os.environ.clear()
        os.environ.update(saved)


def run_cli(argv: list[str], env: dict[str, str], cwd: Path | None = None) -> Outcome:
    from tandem.cli import main

    out, err = io.StringIO(), io.StringIO()
    started = time.monotonic()
    with environment(env, cwd), contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = main(argv)
    elapsed = time.monotonic() - started
    return Outcome(code == 0, out.getvalue(), err.getvalue().strip(), code, elapsed)


def model_env(url: str, cache: Path, provider: str = "openai") -> dict[str, str]:
    return {"TANDEM_PROVIDER": provider, "TANDEM_ENDPOINT": url, "TANDEM_MODEL": "soak-model",
            "TANDEM_CACHE_DIR": str(cache), "TANDEM_TIMEOUT": str(TIMEOUT)}  # fmt: skip


def functions(n: int) -> str:
    return "".join(f"def greet{i}(name):\n    return \n\n" for i in range(n))


# ---- tandem complete ------------------------------------------------------------------------


def soak_complete(work: Path, seed: int, requests: int) -> Tally:
    tally = Tally("tandem complete")
    root = work / "complete"
    (root / ".git").mkdir(parents=True)
    source = root / "greet.py"
    source.write_text(functions(requests + 1))
    with FaultServer(PIECES, plan=FaultPlan(seed, stall=30)) as srv:
        env = model_env(srv.url + "/v1", work / "cache-complete")
        i = 0
        while tally.requests < requests and i <= requests:
            argv = ["complete", f"{source}:{3 * i + 2}:12"]
            for attempt in ("first", "again"):  # again: after a failure, never from the cache
                since = srv.count()
                got = run_cli(argv, env)
                got.text = got.text.removesuffix("\n")
                groups = requests_of(srv.wait_idle(since))
                if not judge(tally, groups, got, RIGHT, f"complete {i} ({attempt})", CODES):
                    break
            i += 1
    return tally


# ---- tandem review --------------------------------------------------------------------------


def soak_review(work: Path, seed: int, requests: int) -> Tally:
    from review_support import finding, first_changed, make_repo, request_files, with_quotes

    tally = Tally("tandem review")
    repo = make_repo(work / "repo")
    expected: set[tuple[str, int]] = set()

    def respond(path: str, body: Any) -> list[str]:
        files = request_files(body)
        found = [finding(p, first_changed(repo, p), "error", rule="soak") for p in files]
        expected.update((p, first_changed(repo, p)) for p in files)
        text = with_quotes(json.dumps({"findings": found}, ensure_ascii=False), body)
        return [text[: len(text) // 2], text[len(text) // 2 :]]

    with FaultServer(respond=respond, plan=FaultPlan(seed, stall=30)) as srv:
        run = 0
        while tally.requests < requests and run <= requests:
            cache, report = work / f"cache-review-{run}", work / f"report-{run}.json"
            env = model_env(srv.url + "/v1", cache)
            # --no-verify: the soak is about the transport; a second pass would be a second
            # kind of request with its own scripted answers (tests/test_review_verify.py).
            argv = ["review", "--base", "main", "--format", "json", "--concurrency", "1",
                    "--no-verify", "--fail-on", "error", "--quiet",
                    "--output", str(report)]  # fmt: skip
            failed_last: str | None = None
            for attempt in ("first", "again"):
                since = srv.count()
                report.unlink(missing_ok=True)
                got = run_cli(argv, env, cwd=repo.path)
                served = srv.wait_idle(since)
                groups = requests_of(served)
                if failed_last is not None and failed_last not in {s.digest for s in served}:
                    tally.wrong.append(f"review {run}: the failed request was not asked again")
                if got.code == 1 and report.exists():  # findings: as CI reads them
                    data = json.loads(report.read_text(encoding="utf-8"))
                    found = {(f["path"], f["line"]) for f in data["findings"]}
                    got = Outcome(True, "right" if found == expected else str(sorted(found)),
                                  got.error, got.code, got.elapsed)  # fmt: skip
                if not judge(tally, groups, got, "right", f"review {run} ({attempt})",
                             dict.fromkeys(CODES, 3)):  # fmt: skip
                    break
                failed_last = groups[-1][-1].digest if groups else None
            run += 1
    return tally


# ---- tandem serve ---------------------------------------------------------------------------


async def soak_lsp(work: Path, seed: int, requests: int) -> Tally:
    from lsp_support import lsp_session, open_text

    tally = Tally("tandem serve")
    root = work / "lsp"
    root.mkdir()
    with FaultServer(PIECES, plan=FaultPlan(seed, stall=30)) as srv:
        env = model_env(srv.url, work / "cache-lsp", provider="llamacpp")
        async with lsp_session(root, env) as (client, recorder):
            uri = open_text(client, root / "g.py", functions(requests + 1))
            i = 0
            while tally.requests < requests and i <= requests:
                for attempt in ("first", "again"):
                    since = srv.count()
                    got = await lsp_op(client, recorder, uri, i)
                    groups = requests_of(srv.wait_idle(since))
                    if not judge(tally, groups, got, RIGHT, f"serve {i} ({attempt})", None):
                        break
                i += 1
            server = client._server
            if server is None or server.returncode is not None:
                tally.wrong.append("tandem serve is not running at the end")
    return tally


async def lsp_op(client: Any, recorder: Any, uri: str, i: int) -> Outcome:
    """Function ``i``'s inline completion, or (every third) a chat question about it."""
    from lsprotocol import types as t
    from pygls.exceptions import JsonRpcException

    from lsp_support import inline

    seen, started = len(recorder.status), time.monotonic()
    try:
        if i % 3 == 2:
            span = {"start": {"line": 3 * i, "character": 0},
                    "end": {"line": 3 * i + 1, "character": 10}}  # fmt: skip
            question = {"uri": uri, "range": span, "question": f"what is {i}?"}
            params = t.ExecuteCommandParams("tandem.chat", [question])
            answer = await asyncio.wait_for(
                client.workspace_execute_command_async(params), TIMEOUT + SLACK
            )
            got = Outcome(True, answer["answer"])
        else:
            items = await inline(client, uri, 3 * i + 1, 11, TIMEOUT + SLACK)
            got = Outcome(True, "".join(str(x.insert_text) for x in items))
            if not items:  # the error, if any, is in the status
                status = await recorder.wait_status("error", 5, since=seen)
                got = Outcome(False, error=str(status.get("message")))
    except (JsonRpcException, TimeoutError) as exc:
        got = Outcome(False, error=str(exc) or type(exc).__name__)
    got.elapsed = time.monotonic() - started
    return got


# ---- the table ------------------------------------------------------------------------------


def run_soak(work: Path, seed: int, requests: int) -> list[Tally]:
    return [
        soak_review(work, seed, requests),
        soak_complete(work, seed + 1, requests),
        asyncio.run(soak_lsp(work, seed + 2, requests)),
    ]


def tables(tallies: list[Tally]) -> tuple[list[str], list[list[str]], list[str], list[list[str]]]:
    """(headers, rows) of the outcomes, then of the faults injected by kind."""
    head = ["entry point", "requests", "faults injected", "recovered", "right, no fault",
            "failed as designed", "wrong"]  # fmt: skip
    rows = [[t.entry, str(t.requests), str(sum(t.injected.values())), str(t.recovered),
             str(t.clean), str(t.designed), str(len(t.wrong))] for t in tallies]  # fmt: skip
    total = [sum(int(r[i]) for r in rows) for i in range(1, len(head))]
    rows.append(["all", *map(str, total)])
    kinds_head = ["fault", *(t.entry for t in tallies), "all"]
    kinds = [[k, *(str(t.injected[k]) for t in tallies), str(sum(t.injected[k] for t in tallies))]
             for k in KINDS]  # fmt: skip
    return head, rows, kinds_head, kinds
