"""Transport faults, one at a time, through ``models/http.py``, ``tandem complete`` and
``tandem serve``: what is retried (a connection lost before any answer, a status that
says "not now"), what is not (a stream cut after the answer began, a deadline passed),
and what the user sees after the last attempt. The server is ``tests/faultserver.py``.
"""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from lsprotocol import types as t
from pygls.exceptions import JsonRpcException

from faultserver import Fault, FaultServer
from tandem.models import ChatMessage, FimRequest, collect
from tandem.models import http as http_module
from tandem.models.errors import (
    ModelRateLimited,
    ModelResponseError,
    ModelTimeout,
    ModelUnreachable,
)
from tandem.models.fim import get_template
from tandem.models.http import HttpEndpoint, RetryPolicy
from tandem.models.llamacpp import INFILL, LlamaCppClient
from tandem.models.openai import OpenAIClient

from lsp_support import free_port, inline, lsp_session, model_env, open_text

FAST = RetryPolicy(attempts=4, base_delay=0.01, max_delay=0.05)
REQUEST = FimRequest(prefix="x = ", suffix="\n", max_tokens=8)
SUGGESTION = '"hi " + name'
PIECES = ['"hi "', " +", " name"]
TANDEM = str(Path(sys.executable).parent / "tandem")
SLACK = 6  # seconds a loaded 2-core machine may add; proves "no hang", not speed


@pytest.fixture
def server() -> Iterator[FaultServer]:
    with FaultServer(tokens=PIECES) as srv:
        yield srv


def openai(srv: FaultServer, timeout: float = 5.0, retry: RetryPolicy = FAST) -> OpenAIClient:
    endpoint = HttpEndpoint(srv.url + "/v1", timeout=timeout, retry=retry)
    return OpenAIClient(endpoint, "m", get_template("starcoder"))


def llamacpp(srv: FaultServer, template: str | None = None) -> LlamaCppClient:
    endpoint = HttpEndpoint(srv.url, timeout=5, retry=FAST)
    return LlamaCppClient(endpoint, "m", get_template(template) if template else INFILL)


async def ask(client: OpenAIClient | LlamaCppClient, chat: bool = False) -> str:
    try:
        if chat:
            return await collect(client.chat([ChatMessage("user", "hi")]))
        return await collect(client.complete(REQUEST))
    finally:
        await client.aclose()


def faults(srv: FaultServer) -> list[str | None]:
    return [s.fault for s in srv.served]


# ---- before any answer: retried -----------------------------------------------------------


@pytest.mark.parametrize("route", ["text", "chat", "infill", "completion"])
async def test_disconnect_before_the_status_line_is_retried(server: FaultServer, route: str):
    """The issue's fault: a server that closes the first connection without answering."""
    server.enqueue("drop")
    if route in ("text", "chat"):
        text = await ask(openai(server), chat=route == "chat")
    else:
        text = await ask(llamacpp(server, None if route == "infill" else "starcoder"))
    assert text == SUGGESTION
    assert faults(server) == ["drop", None]
    paths = {"text": "/completions", "chat": "/chat/completions", "infill": "/infill",
             "completion": "/completion"}  # fmt: skip
    assert server.served[1].path.endswith(paths[route])


async def test_reset_while_sending_is_retried(server: FaultServer):
    """RST after the headers, with a body too big to be sent yet: the client is writing."""
    server.enqueue("reset")
    client = openai(server)
    try:
        answer = await collect(client.chat([ChatMessage("user", "word " * 800_000)]))
    finally:
        await client.aclose()
    assert answer == SUGGESTION
    assert faults(server) == ["reset", None]
    assert len(server.served[1].body["messages"][0]["content"]) == 4_000_000


async def test_a_stale_keepalive_connection_is_retried_for_free(server: FaultServer):
    """A kept-alive connection that the server dropped as the request came: retried at once
    on a new connection, even with no retries left (it is not a failed attempt)."""
    client = openai(server, retry=RetryPolicy(attempts=1))
    try:
        assert await collect(client.complete(REQUEST)) == SUGGESTION
        server.enqueue("stale")
        assert await collect(client.complete(REQUEST)) == SUGGESTION
        server.enqueue("503")  # a counted failure: attempts=1 leaves no retry
        with pytest.raises(Exception, match="HTTP 503"):
            await collect(client.complete(REQUEST))
    finally:
        await client.aclose()
    first, stale, retried = server.served[:3]
    assert stale.fault == "stale" and stale.reused and stale.connection == first.connection
    assert retried.fault is None and retried.connection != stale.connection


async def test_a_connection_closed_while_idle_is_not_reused(server: FaultServer):
    server.enqueue("idle-close")
    client = openai(server, retry=RetryPolicy(attempts=1))
    try:
        assert await collect(client.complete(REQUEST)) == SUGGESTION
        await asyncio.sleep(0.3)  # the server closes it after 50 ms idle
        assert await collect(client.complete(REQUEST)) == SUGGESTION
    finally:
        await client.aclose()
    assert faults(server) == ["idle-close", None]
    assert server.served[1].connection != server.served[0].connection


async def test_pooled_connections_expire_before_the_server_closes_them(
    monkeypatch: pytest.MonkeyPatch,
):
    """Scaled down: the pool's expiry (0.3 s) under the server's idle timeout (1 s)."""
    assert http_module.KEEPALIVE_EXPIRY < 5  # llama.cpp closes idle connections after 5 s
    monkeypatch.setattr(http_module, "KEEPALIVE_EXPIRY", 0.3)
    with FaultServer(tokens=PIECES, idle_timeout=1.0) as srv:
        client = openai(srv, retry=RetryPolicy(attempts=1))
        try:
            assert await collect(client.complete(REQUEST)) == SUGGESTION
            assert await collect(client.complete(REQUEST)) == SUGGESTION  # reused at once
            await asyncio.sleep(0.6)  # expired in the pool, still open at the server
            assert await collect(client.complete(REQUEST)) == SUGGESTION
        finally:
            await client.aclose()
    a, b, c = srv.served
    assert b.connection == a.connection and c.connection != a.connection and not c.reused


@pytest.mark.parametrize("kind", ["429+ra", "503+ra"])
async def test_retry_after_is_honoured_within_the_deadline(server: FaultServer, kind: str):
    server.enqueue(kind)
    started = time.monotonic()
    assert await ask(openai(server)) == SUGGESTION
    assert time.monotonic() - started >= 0.95  # Retry-After: 1
    assert faults(server) == [kind, None]


async def test_the_last_error_says_what_each_attempt_got(server: FaultServer):
    server.enqueue("drop", "503", "reset", "500", "429")
    with pytest.raises(ModelRateLimited) as info:
        await ask(openai(server))
    message = str(info.value)
    assert (
        "(after 5 attempts: 1: Server disconnected without sending a response; 2: HTTP 503; "
        "3: connection reset by peer (ECONNRESET); 4: HTTP 500; 5: HTTP 429)"
    ) in message
    assert len(server.served) == 5


async def test_repeated_resets_name_the_reset_not_an_unreachable_server(server: FaultServer):
    server.enqueue(*["reset"] * 5)
    with pytest.raises(ModelUnreachable) as info:
        await ask(openai(server))
    line = info.value.one_line()
    assert "closed the connection before answering" in line and "cannot reach" not in line
    assert "after 5 attempts: 1-5: connection reset by peer (ECONNRESET)" in line


async def test_connection_refused_is_named_with_its_errno():
    client = openai_at(f"http://127.0.0.1:{free_port()}/v1")
    with pytest.raises(ModelUnreachable) as info:
        await ask(client)
    message = str(info.value)
    assert "cannot reach" in message and "connection refused (ECONNREFUSED)" in message


def openai_at(url: str) -> OpenAIClient:
    endpoint = HttpEndpoint(url, timeout=3, retry=FAST)
    return OpenAIClient(endpoint, "m", get_template("starcoder"))


# ---- after the answer began, or past the deadline: not retried ----------------------------


async def test_a_stream_cut_after_the_answer_began_is_not_retried(server: FaultServer):
    server.enqueue(Fault("cut", cut_after=1))
    with pytest.raises(ModelResponseError, match="broke off") as info:
        await ask(openai(server))
    assert "after" not in str(info.value)  # one attempt: nothing to list
    assert faults(server) == ["cut"]


async def test_a_stall_times_out_within_bounds(server: FaultServer):
    server.enqueue("503", Fault("stall", stall=30))
    started = time.monotonic()
    with pytest.raises(ModelTimeout) as info:
        await ask(openai(server, timeout=1.5))
    assert time.monotonic() - started < 1.5 + SLACK
    assert "(after 2 attempts: 1: HTTP 503; 2: timed out)" in str(info.value)
    assert server.wait_idle()[-1].gone  # the server saw the client give up


# ---- tandem complete ----------------------------------------------------------------------


def complete(srv: FaultServer, ws: Path, *extra: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, **model_env(srv.url), "TANDEM_CACHE_DIR": str(ws.parent / "cache")}
    return subprocess.run([TANDEM, "complete", f"{ws / 'greet.py'}:2:12", *extra],
                          capture_output=True, text=True, env=env, timeout=60)  # fmt: skip


@pytest.fixture
def ws(tmp_path: Path) -> Path:
    folder = tmp_path / "ws"
    (folder / ".git").mkdir(parents=True)
    (folder / "greet.py").write_text("def greet(name):\n    return \n")
    return folder


def test_cli_complete_outlives_a_dropped_connection(server: FaultServer, ws: Path):
    server.enqueue("drop")
    done = complete(server, ws)
    assert (done.returncode, done.stdout) == (0, SUGGESTION + "\n"), done.stderr
    assert faults(server) == ["drop", None]


def test_cli_complete_cut_stream_exits_9_and_caches_nothing(server: FaultServer, ws: Path):
    server.enqueue(Fault("cut", cut_after=2))
    done = complete(server, ws)
    assert done.returncode == 9 and done.stdout == "", done
    assert "broke off" in done.stderr and len(done.stderr.strip().splitlines()) == 1
    again = complete(server, ws)  # nothing was cached: the model is asked again
    assert (again.returncode, again.stdout) == (0, SUGGESTION + "\n"), again.stderr
    assert faults(server) == ["cut", None]
    third = complete(server, ws)  # that answer was cached
    assert (third.returncode, third.stdout, len(server.served)) == (0, SUGGESTION + "\n", 2)


def test_cli_complete_exit_codes_after_the_last_attempt(server: FaultServer, ws: Path):
    server.enqueue(*["drop"] * 5)
    done = complete(server, ws)
    assert done.returncode == 3 and "after 5 attempts" in done.stderr, done.stderr
    server.enqueue(Fault("stall", stall=30))
    started = time.monotonic()
    done = complete(server, ws, "--timeout", "2")
    assert done.returncode == 6 and "within 2s" in done.stderr, done.stderr
    assert time.monotonic() - started < 2 + SLACK + 3  # plus the interpreter's start


# ---- tandem serve ---------------------------------------------------------------------------


async def test_language_server_retries_and_never_caches_a_cut_answer(tmp_path: Path):
    ws = tmp_path / "ws"
    ws.mkdir()
    env = {**model_env("http://x"), "TANDEM_CACHE_DIR": str(tmp_path / "cache")}
    with FaultServer(tokens=PIECES) as srv:
        env["TANDEM_ENDPOINT"] = srv.url + "/v1"
        async with lsp_session(ws, env) as (client, recorder):
            uri = open_text(client, ws / "g.py", "".join(
                f"def greet{i}(name):\n    return \n\n" for i in range(4)))  # fmt: skip
            srv.enqueue("drop")
            assert [i.insert_text for i in await inline(client, uri, 1, 11)] == [SUGGESTION]
            srv.enqueue("stale")  # on the connection the last answer came on
            assert [i.insert_text for i in await inline(client, uri, 4, 11)] == [SUGGESTION]
            srv.enqueue("reset")
            assert [i.insert_text for i in await inline(client, uri, 7, 11)] == [SUGGESTION]
            assert faults(srv) == ["drop", None, "stale", None, "reset", None]
            srv.enqueue(Fault("cut", cut_after=2))
            since = len(recorder.status)
            assert await inline(client, uri, 10, 11) == []
            error = await recorder.wait_status("error", since=since)
            assert "broke off" in error["message"]
            count = srv.count()
            assert [i.insert_text for i in await inline(client, uri, 10, 11)] == [SUGGESTION]
            assert srv.count() == count + 1  # asked again: the cut answer was not kept
            srv.enqueue("drop")
            assert await chat(client, uri) == {"answer": SUGGESTION}
            srv.enqueue(Fault("cut", cut_after=1))
            with pytest.raises(JsonRpcException, match="broke off"):
                await chat(client, uri)
            assert await chat(client, uri) == {"answer": SUGGESTION}  # still up


async def chat(client, uri: str):  # type: ignore[no-untyped-def]
    span = {"start": {"line": 0, "character": 0}, "end": {"line": 1, "character": 10}}
    params = t.ExecuteCommandParams(
        command="tandem.chat", arguments=[{"uri": uri, "range": span, "question": "what?"}]
    )
    return await asyncio.wait_for(client.workspace_execute_command_async(params), 20)


# ---- the embedded child ---------------------------------------------------------------------


@pytest.mark.embedded
async def test_requests_sent_as_the_embedded_child_dies_wait_for_its_restart():
    """Killed while idle and not waited for: requests issued at once (concurrently) wait for
    a new child within the deadline; one child is started for all of them."""
    from tandem.models.embedded import EmbeddedServer, EmbeddedSpec, ManagedEndpoint
    from tandem.models.local import LocalClient

    server = EmbeddedServer.shared(EmbeddedSpec(None, n_ctx=1024, parallel=2))
    client = LocalClient(ManagedEndpoint(server, 120), None)
    try:
        assert await collect(client.complete(FimRequest(prefix="a = ", max_tokens=2)))
        first, starts = server.info.pid, server.starts  # type: ignore[union-attr]
        os.kill(first, signal.SIGKILL)
        answers = await asyncio.gather(*(
            collect(client.complete(FimRequest(prefix=f"{v} = ", max_tokens=2, temperature=0)))
            for v in ("b", "c")))  # fmt: skip
        assert all(answers)
        assert server.starts == starts + 1 and server.info.pid != first  # type: ignore[union-attr]
    finally:
        await client.aclose()
