"""The embedded model's child process: llama.cpp's own HTTP server (xllamacpp) on one GGUF.

Run as ``python -m tandem.models.llamaserver --model PATH ...`` by ``EmbeddedServer``.
It loads the model, checks ``/health`` and whether ``/infill`` works (the model has FIM
tokens), prints one JSON line ``{"url": ..., "fim": ...}`` on stdout, and then serves until
its standard input closes: the parent holds the other end of that pipe, and the kernel
closes it however the parent ends (exit, SIGTERM, SIGKILL), so no child outlives its owner.
(PR_SET_PDEATHSIG is not used: it fires when the parent's *thread* ends, and the child is
started from a worker thread.) A native crash here (a CPU that advertises
instructions it does not allow, a corrupt file) kills only this process.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import sys
import threading
import time

import httpx

READY_TIMEOUT = 30.0


def _probe(url: str) -> bool:
    """Healthy, and does ``/infill`` work? llama.cpp answers 501 when the model has no FIM
    tokens; the parent then renders prompts itself instead."""
    deadline = time.monotonic() + READY_TIMEOUT
    with httpx.Client(timeout=READY_TIMEOUT, trust_env=False) as client:
        while True:
            try:
                if client.get(f"{url}/health").status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline:
                raise SystemExit(f"the model server at {url} never became healthy")
            time.sleep(0.05)
        body = {"input_prefix": "x", "input_suffix": "", "n_predict": 1, "temperature": 0}
        return client.post(f"{url}/infill", json=body).status_code == 200


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m tandem.models.llamaserver")
    parser.add_argument("--model", required=True, help="the .gguf file")
    parser.add_argument("--ctx", type=int, default=4096, help="context window, all slots")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--parallel", type=int, default=2, help="requests served at once")
    args = parser.parse_args(argv)

    import xllamacpp

    params = xllamacpp.CommonParams()
    params.model.path = args.model
    params.n_ctx = args.ctx
    params.n_parallel = args.parallel
    params.port = 0  # any free port; the address is reported below
    for cpu in (params.cpuparams, params.cpuparams_batch):
        cpu.n_threads = args.threads
        # No spin-waiting between ops: on a busy machine (an editor, a build) llama.cpp's
        # polling threads fight for cores and decoding slowed tenfold in bench/embedded.py.
        cpu.poll = 0
    started = time.monotonic()
    server = xllamacpp.Server(params)
    url = str(server.listening_address).rstrip("/")
    fim = _probe(url)
    print(json.dumps({"url": url, "fim": fim, "load_s": time.monotonic() - started}), flush=True)

    done = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: done.set())
    threading.Thread(target=lambda: (sys.stdin.read(), done.set()), daemon=True).start()
    done.wait()
    os._exit(0)  # the OS frees the model; llama.cpp's orderly teardown adds nothing here


if __name__ == "__main__":
    main()
