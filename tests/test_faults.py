"""Fault injection: every way the model server, the network or the cache can fail.

Each fault is checked end to end through ``tandem serve`` (a real LSP client, a real
subprocess) and, where a client-level check is sharper, on the clients directly. For
each: the editor gets an answer (empty) within the timeout, the status says what is
wrong in one line, the server lives on, its memory stays bounded, and the next request
works once the fault ends.

test_lsp.py already runs 500, 429, 503 with a Retry-After past the deadline, a hang and a
slow stream past the timeout, a stream cut mid-way, a line that is not JSON and 404
through one server, and connection refused (model down, then back); they are not
repeated here. Here: DNS failure, TLS errors, 401, 429 with a Retry-After inside the
deadline, binary junk, 50 MB answers (three shapes, completion and chat), and a corrupt,
unwritable or mid-session broken cache directory.

Network: only loopback is ever contacted. This machine's resolver forwards names to a
non-loopback server, so "DNS failure" cannot simply look up a ``.invalid`` name: the
server under test runs with a ``sitecustomize`` that answers every name lookup but
``localhost`` with "no such name" on the spot, as RFC 6761 asks resolvers to answer for
``.invalid``, so no query ever leaves the machine (in-process tests patch the same
function). TLS faults use the loopback servers: HTTPS to the plain-HTTP server, and an
HTTPS server with a self-signed certificate made by ``openssl`` for the test.
"""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import socket
import sqlite3
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest
from lsprotocol import types as t
from pygls.exceptions import JsonRpcException
from pytest_lsp import LanguageClient

from tandem.config import load_settings
from tandem.models import ChatMessage, FimRequest, collect
from tandem.models.errors import ModelResponseError, ModelUnreachable
from tandem.models.fim import get_template
from tandem.models.http import HttpEndpoint, _bounded_lines
from tandem.models.llamacpp import LlamaCppClient
from tandem.models.ollama import OllamaClient
from tandem.models.openai import OpenAIClient
from tandem.session import Session
from tandem.workspace import open_workspace

from lsp_support import Recorder, lsp_session, model_env, open_text
from modelserver import Behaviour, ModelServer

SUGGESTION = '"hi " + name'
TIMEOUT = 2  # TANDEM_TIMEOUT for the server under test
# An answer, possibly empty, by then: the deadline, plus slack for a loaded 2-core machine
# (this proves nothing hangs past the deadline; speed is measured in bench/).
ANSWER_WITHIN = TIMEOUT + 6
HUGE = 50 * 1024 * 1024
REQUEST = FimRequest(prefix="x = ", suffix="\n", max_tokens=8)
JUNK = bytes(range(256)) * 64 + b"\xff\xfe\xfd\x00\x80\xc3\x28" * 1000  # not UTF-8, not SSE
DNS_HOST = "nonexistent.invalid"
NO_SUCH_NAME = "Name or service not known (loopback-only test resolver)"

RESOLVER_SHIM = f'''"""Test shim: only localhost resolves; other names fail at once, unsent."""
import socket

_getaddrinfo = socket.getaddrinfo


def getaddrinfo(host, *args, **kwargs):
    name = host.decode() if isinstance(host, bytes) else host
    if isinstance(name, str) and name.rstrip(".").lower() not in ("localhost", ""):
        try:
            __import__("ipaddress").ip_address(name)
        except ValueError:
            raise socket.gaierror(socket.EAI_NONAME, {NO_SUCH_NAME!r}) from None
    return _getaddrinfo(host, *args, **kwargs)


socket.getaddrinfo = getaddrinfo
'''


# ---- shared helpers ----------------------------------------------------------------------------


@pytest.fixture(scope="module")
def certificate(tmp_path_factory: pytest.TempPathFactory) -> tuple[str, str]:
    """A self-signed certificate for 127.0.0.1 (no CA trusts it) and its key."""
    if shutil.which("openssl") is None:
        pytest.skip("openssl is needed to make a test certificate")
    folder = tmp_path_factory.mktemp("tls")
    cert, key = folder / "cert.pem", folder / "key.pem"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1",
         "-nodes", "-keyout", str(key), "-out", str(cert), "-days", "2",
         "-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1"],
        check=True, capture_output=True, timeout=30,
    )  # fmt: skip
    return str(cert), str(key)


@pytest.fixture
def tls_server(certificate: tuple[str, str]) -> Iterator[ModelServer]:
    with ModelServer(tokens=[SUGGESTION], tls=certificate) as server:
        yield server


@pytest.fixture
def resolver_shim(tmp_path: Path) -> dict[str, str]:
    """Environment for a server process whose name lookups never leave the machine."""
    folder = tmp_path / "shim"
    folder.mkdir()
    (folder / "sitecustomize.py").write_text(RESOLVER_SHIM)
    env = {"PYTHONPATH": os.pathsep.join(filter(None, [str(folder), os.environ.get("PYTHONPATH")]))}
    # Prove the shim is what that interpreter loads before anything resolves a name.
    loaded = subprocess.run(
        [sys.executable, "-c", "import sitecustomize; print(sitecustomize.__file__)"],
        env={**os.environ, **env}, capture_output=True, text=True, timeout=30, check=True,
    )  # fmt: skip
    assert Path(loaded.stdout.strip()).parent == folder
    return env


def no_dns(host: Any, *args: Any, **kwargs: Any) -> Any:
    """The shim's answer, for clients in this process."""
    name = host.decode() if isinstance(host, bytes) else host
    if name not in ("127.0.0.1", "::1", "localhost"):
        raise socket.gaierror(socket.EAI_NONAME, NO_SUCH_NAME)
    return REAL_GETADDRINFO(host, *args, **kwargs)


REAL_GETADDRINFO = socket.getaddrinfo


def one_line(status: dict[str, Any]) -> str:
    message = str(status["message"])
    assert "\n" not in message and "\r" not in message, message
    return message


def vm(client: LanguageClient, key: str = "VmRSS") -> int:
    """A figure (kB) from /proc/PID/status of the ``tandem serve`` process."""
    server = client._server
    assert server is not None
    for line in Path(f"/proc/{server.pid}/status").read_text().splitlines():
        name, _, value = line.partition(":")
        if name == key:
            return int(value.split()[0])
    raise AssertionError(f"no {key} for {server.pid}")


def alive(client: LanguageClient) -> None:
    server = client._server
    assert server is not None and server.returncode is None, "tandem serve has exited"


async def timed_inline(client: LanguageClient, uri: str, line: int, character: int) -> list[str]:
    """The inline answer's texts, which must come within the timeout."""
    started = time.monotonic()
    result = await asyncio.wait_for(
        client.text_document_inline_completion_async(
            t.InlineCompletionParams(
                context=t.InlineCompletionContext(t.InlineCompletionTriggerKind.Automatic),
                text_document=t.TextDocumentIdentifier(uri),
                position=t.Position(line, character),
            )
        ),
        ANSWER_WITHIN + 5,
    )
    elapsed = time.monotonic() - started
    assert elapsed < ANSWER_WITHIN, f"answered after {elapsed:.1f}s"
    items = [] if result is None else result.items
    return [str(i.insert_text) for i in items]


async def fault_then_recovery(
    client: LanguageClient,
    recorder: Recorder,
    uri: str,
    line: int,
    words: tuple[str, ...],
) -> str:
    """An empty answer in time and an error status naming the fault; the status message."""
    before = len(recorder.status)
    assert await timed_inline(client, uri, line, 11) == []
    error = await recorder.wait_status("error", since=before)
    message = one_line(error)
    for word in words:
        assert word in message, message
    alive(client)
    return message


async def works_again(
    client: LanguageClient, recorder: Recorder, uri: str, line: int, expected: str = SUGGESTION
) -> None:
    before = len(recorder.status)
    assert await timed_inline(client, uri, line, 11) == [expected]
    # "ready": a new status after an error, or still the one before (a quick call sends
    # no busy/ready pair, BUSY_AFTER)
    if recorder.state != "ready":
        await recorder.wait_status("ready", since=before)


def functions(n: int) -> str:
    """A function per fault: each asks at a new place, so no answer comes from the cache."""
    return "".join(f"def greet{i}(name):\n    return \n\n" for i in range(n))


def reconfigure(client: LanguageClient, endpoint: str) -> None:
    settings = {"tandem": {"completion": {"endpoint": endpoint}, "chat": {"endpoint": endpoint}}}
    client.workspace_did_change_configuration(t.DidChangeConfigurationParams(settings))


# ---- on the clients directly ------------------------------------------------------------------


async def test_dns_failure_names_the_host(monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setattr(socket, "getaddrinfo", no_dns)
    endpoint = HttpEndpoint(f"http://{DNS_HOST}:8080/v1", timeout=TIMEOUT)
    client = OpenAIClient(endpoint, "m", get_template("starcoder"))
    started = time.monotonic()
    try:
        with pytest.raises(ModelUnreachable) as info:
            await collect(client.complete(REQUEST))
    finally:
        await client.aclose()
    assert time.monotonic() - started < 1
    line = info.value.one_line()
    assert f"cannot resolve {DNS_HOST}" in line and "host name" in line, line


async def test_tls_to_a_plain_http_server(model_server: ModelServer):
    endpoint = HttpEndpoint(model_server.url.replace("http:", "https:") + "/v1", timeout=TIMEOUT)
    client = OpenAIClient(endpoint, "m", get_template("starcoder"))
    try:
        with pytest.raises(ModelUnreachable) as info:
            await collect(client.complete(REQUEST))
    finally:
        await client.aclose()
    line = info.value.one_line()
    assert "TLS handshake" in line and "https://" in line and "\n" not in line, line


async def test_tls_untrusted_certificate_then_trusted(
    tls_server: ModelServer, certificate: tuple[str, str], monkeypatch: pytest.MonkeyPatch
):
    """Verification fails with the default CAs; SSL_CERT_FILE (the hint) fixes it."""
    endpoint = HttpEndpoint(tls_server.url + "/v1", timeout=TIMEOUT)
    client = OpenAIClient(endpoint, "m", get_template("starcoder"))
    try:
        with pytest.raises(ModelUnreachable) as info:
            await collect(client.complete(REQUEST))
    finally:
        await client.aclose()
    line = info.value.one_line()
    assert "TLS handshake" in line and "CERTIFICATE_VERIFY_FAILED" in line, line
    assert "SSL_CERT_FILE" in line
    monkeypatch.setenv("SSL_CERT_FILE", certificate[0])
    client = OpenAIClient(HttpEndpoint(tls_server.url + "/v1"), "m", get_template("starcoder"))
    try:
        assert await collect(client.complete(REQUEST)) == SUGGESTION
    finally:
        await client.aclose()


def provider_clients(server: ModelServer) -> list[Any]:
    template = get_template("starcoder")
    return [
        OpenAIClient(HttpEndpoint(server.url + "/v1", timeout=10), "m", template),
        OllamaClient(HttpEndpoint(server.url, timeout=10), "m", template),
        LlamaCppClient(HttpEndpoint(server.url, timeout=10), "m", template),
    ]


@pytest.mark.parametrize("shape", ["line", "token", "events"])
async def test_huge_answers_stop_early_for_every_provider(model_server: ModelServer, shape: str):
    """50 MB: one endless line, one enormous event, or endless small events (FIM and chat)."""
    from tandem.completion import read_answer

    model_server.default = Behaviour(huge=HUGE, huge_shape=shape)
    for client in provider_clients(model_server):
        try:
            for multiline in (False, True):
                started = time.monotonic()
                with pytest.raises(ModelResponseError) as info:
                    await read_answer(client, client.fim_request(REQUEST), 8, multiline)
                assert time.monotonic() - started < 5, (client.provider, shape)
                assert "stopped reading" in info.value.one_line()
            # chat has no per-token limit: the endpoint's bounds stop it
            with pytest.raises(ModelResponseError) as info:
                await collect(client.chat([ChatMessage("user", "hi")]))
            assert "stopped reading" in info.value.one_line()
        finally:
            await client.aclose()
    # every one of those connections was abandoned, not read to its end
    assert all(model_server.wait_done(i).aborted for i in range(len(model_server.requests)))


async def test_binary_junk_is_an_error_for_every_provider(model_server: ModelServer):
    model_server.default = Behaviour(body=JUNK)
    for client in provider_clients(model_server):
        try:
            with pytest.raises(ModelResponseError) as info:
                await collect(client.complete(REQUEST))
        finally:
            await client.aclose()
        line = info.value.one_line()
        assert "not server-sent events" in line or "not JSON" in line, line
        assert "\n" not in line


async def test_a_proxy_page_instead_of_events_is_an_error(model_server: ModelServer):
    """A 200 with HTML (a captive portal, a misrouted proxy) is not an empty completion."""
    model_server.default = Behaviour(body=b"<!DOCTYPE html>\n<html><body>Log in</body></html>\n")
    client = provider_clients(model_server)[0]
    try:
        with pytest.raises(ModelResponseError, match="not server-sent events"):
            await collect(client.complete(REQUEST))
    finally:
        await client.aclose()


async def test_unicode_line_separators_inside_json_strings(model_server: ModelServer):
    """U+2028, U+2029 and U+0085 may stand unescaped in JSON text: they do not end a line."""
    text = "a\u2028b\x85c\u2029d"
    event = json.dumps({"choices": [{"index": 0, "text": text}]}, ensure_ascii=False)
    body = f"data: {event}\r\n\r\ndata: [DONE]\r\n\r\n".encode()
    model_server.default = Behaviour(body=body)
    client = provider_clients(model_server)[0]
    try:
        assert await collect(client.complete(REQUEST)) == text
    finally:
        await client.aclose()


async def test_a_lone_surrogate_in_a_request_is_sent_as_a_replacement_character(
    model_server: ModelServer,
):
    """A chat question can carry one (JSON allows it); httpx's own encoding raised."""
    client = provider_clients(model_server)[0]
    try:
        assert await collect(client.chat([ChatMessage("user", "why \ud800?")])) == "Hello, world!"
    finally:
        await client.aclose()
    assert model_server.requests[-1].body["messages"][0]["content"] == "why \ufffd?"


async def chunks(*parts: bytes) -> AsyncIterator[bytes]:
    for part in parts:
        yield part


@pytest.mark.parametrize("cut", range(1, 12))
async def test_bounded_lines_split_like_sse_across_any_chunking(cut: int):
    body = b"one\r\ntwo\rthree\n\nfour\r\n\r\nfive"
    parts = [body[i : i + cut] for i in range(0, len(body), cut)]
    lines = [line async for line in _bounded_lines(chunks(*parts), "u", 100, 1000)]
    assert lines == ["one", "two", "three", "", "four", "", "five"]


async def test_bounded_lines_limits():
    with pytest.raises(ModelResponseError, match="line over"):
        async for _ in _bounded_lines(chunks(b"x" * 3000), "u", 1024, 10**6):
            pass
    with pytest.raises(ModelResponseError, match="over 0 MiB"):
        async for _ in _bounded_lines(chunks(*[b"short\n"] * 1000), "u", 1024, 4000):
            pass


# ---- through tandem serve: the network ---------------------------------------------------------


async def test_dns_and_tls_faults_through_the_server(
    model_server: ModelServer,
    tls_server: ModelServer,
    resolver_shim: dict[str, str],
    ws: Path,
):
    """Each endpoint fault, then the user's fix (a new endpoint setting), in one server."""
    model_server.default = Behaviour(tokens=[SUGGESTION])
    env = model_env(f"http://{DNS_HOST}:8080", TANDEM_TIMEOUT=str(TIMEOUT), **resolver_shim)
    async with lsp_session(ws, env) as (client, recorder):
        await recorder.wait_status("ready")
        uri = open_text(client, ws / "greet.py", functions(4))
        message = await fault_then_recovery(client, recorder, uri, 1, (f"resolve {DNS_HOST}",))
        assert NO_SUCH_NAME in message  # the shim answered: no query left the machine
        for i, (endpoint, words) in enumerate(
            [
                (model_server.url.replace("http:", "https:"), ("TLS handshake",)),
                (tls_server.url, ("TLS handshake", "CERTIFICATE_VERIFY_FAILED")),
            ],
            start=1,
        ):
            before = len(recorder.status)
            reconfigure(client, endpoint + "/v1")
            await recorder.wait_status("ready", since=before)
            await fault_then_recovery(client, recorder, uri, 3 * i + 1, words)
        before = len(recorder.status)
        reconfigure(client, model_server.url + "/v1")
        await recorder.wait_status("ready", since=before)
        await works_again(client, recorder, uri, 1)
        assert len(model_server.requests) == 1
        assert tls_server.requests == []  # handshakes failed: no request got through


# ---- through tandem serve: HTTP faults and huge answers ----------------------------------------


async def test_auth_and_rate_limit_faults_through_the_server(model_server: ModelServer, ws: Path):
    model_server.api_key = "right-key"
    env = model_env(model_server.url, TANDEM_TIMEOUT=str(TIMEOUT), TANDEM_API_KEY="wrong-key")
    async with lsp_session(ws, env) as (client, recorder):
        await recorder.wait_status("ready")
        uri = open_text(client, ws / "greet.py", functions(4))
        message = await fault_then_recovery(client, recorder, uri, 1, ("401", "api_key"))
        assert "wrong-key" not in message
        model_server.api_key = None  # the key is fixed
        model_server.default = Behaviour(tokens=[SUGGESTION])
        await works_again(client, recorder, uri, 1)

        # 429 with a Retry-After inside the deadline: waited for, then answered
        model_server.enqueue(Behaviour(status=429, retry_after="1"))
        started = time.monotonic()
        assert await timed_inline(client, uri, 4, 11) == [SUGGESTION]
        assert time.monotonic() - started >= 0.9
        assert [r.path for r in model_server.requests[-2:]] == ["/v1/completions"] * 2

        # past the deadline: no waiting, an error at once, then the next request works
        model_server.enqueue(Behaviour(status=429, retry_after="120"))
        started = time.monotonic()
        await fault_then_recovery(client, recorder, uri, 7, ("429",))
        assert time.monotonic() - started < 1.5
        await works_again(client, recorder, uri, 7)


HUGE_FAULTS = [
    (Behaviour(huge=HUGE, huge_shape="events"), "stopped reading"),
    (Behaviour(huge=HUGE, huge_shape="token"), "stopped reading"),
    (Behaviour(huge=HUGE, huge_shape="line"), "stopped reading"),
    (Behaviour(body=JUNK), "not server-sent events"),
]
RSS_GROWTH_MB = 48  # over the warm server's RSS: buffers are capped at 8 MiB (unfixed: 200+)


async def test_huge_answers_and_junk_through_the_server(model_server: ModelServer, ws: Path):
    """50 MB answers (completion and chat) and binary junk: bounded memory, error status."""
    model_server.default = Behaviour(tokens=[SUGGESTION])
    # Up to 8 MiB is read before the bound stops it: on a loaded machine that can take
    # longer than the 2 s the other faults use, and this test is about bounds, not time.
    env = model_env(model_server.url, TANDEM_TIMEOUT=str(ANSWER_WITHIN - 2))
    async with lsp_session(ws, env) as (client, recorder):
        await recorder.wait_status("ready")
        uri = open_text(client, ws / "greet.py", functions(len(HUGE_FAULTS) + 2))
        await works_again(client, recorder, uri, 3 * len(HUGE_FAULTS) + 1)
        warm = vm(client)
        for i, (behaviour, words) in enumerate(HUGE_FAULTS):
            line = 3 * i + 1
            model_server.default = behaviour
            await fault_then_recovery(client, recorder, uri, line, (words,))
            model_server.default = Behaviour(tokens=[SUGGESTION])
            await works_again(client, recorder, uri, line)
            assert vm(client) - warm < RSS_GROWTH_MB * 1024, (behaviour.huge_shape, vm(client))
        # chat: the answer streams to the editor as it comes, so it must stop early too
        model_server.default = Behaviour(huge=HUGE, huge_shape="events")
        deltas = len(recorder.deltas)
        args = {
            "uri": uri,
            "range": {"start": {"line": 0, "character": 0}, "end": {"line": 1, "character": 10}},
            "question": "what does this do?",
            "token": "chat-1",
        }
        started = time.monotonic()
        with pytest.raises(JsonRpcException, match="stopped reading"):
            await asyncio.wait_for(
                client.workspace_execute_command_async(
                    t.ExecuteCommandParams("tandem.chat", [args])
                ),
                ANSWER_WITHIN + 5,
            )
        assert time.monotonic() - started < ANSWER_WITHIN
        streamed = sum(len(d["delta"]) for d in recorder.deltas[deltas:])
        assert streamed < 1024 * 1024, streamed  # the editor was not sent megabytes
        model_server.default = Behaviour(tokens=[SUGGESTION])
        await works_again(client, recorder, uri, 3 * len(HUGE_FAULTS) + 4)  # a new place
        alive(client)
        peak = vm(client, "VmHWM")
        assert peak - warm < RSS_GROWTH_MB * 1024, f"peak {peak} kB, warm {warm} kB"


# ---- the cache directory -----------------------------------------------------------------------


def cache_warnings(client: LanguageClient) -> list[str]:
    return [
        m.message
        for m in client.log_messages
        if m.type == t.MessageType.Warning and "cache" in m.message
    ]


async def wait_for(predicate: Any, timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "condition not met in time"
        await asyncio.sleep(0.02)


async def requests_still_work(
    client: LanguageClient, model_server: ModelServer, uri: str, count: int
) -> None:
    """Answers keep coming (memory cache), at new places and again at the same ones."""
    for i in range(count):
        assert await timed_inline(client, uri, 3 * i + 1, 11) == [SUGGESTION]
    asked = len(model_server.requests)
    for i in range(count):
        assert await timed_inline(client, uri, 3 * i + 1, 11) == [SUGGESTION]
    assert len(model_server.requests) == asked  # repeats are answered from memory


def corrupt(cache_dir: Path) -> None:
    for name in ("completions", "tags"):
        folder = cache_dir / name
        folder.mkdir(parents=True, exist_ok=True)
        (folder / "cache.db").write_bytes(b"SQLite format 3\x00" + os.urandom(64 * 1024))


@pytest.mark.parametrize("damage", ["corrupt", "file-in-place"])
async def test_broken_cache_directory_warns_once(
    model_server: ModelServer, ws: Path, tmp_path: Path, damage: str
):
    """Garbage in the SQLite files, or a file where the directory should be (tests run as
    root, so chmod 000 would not stop anything): one warning, memory only."""
    cache_dir = tmp_path / "cache"
    if damage == "corrupt":
        corrupt(cache_dir)
    else:
        cache_dir.write_text("not a directory\n")
    (ws / "util.py").write_text("def helper():\n    return 1\n")  # something to index
    model_server.default = Behaviour(tokens=[SUGGESTION])
    env = model_env(model_server.url, TANDEM_TIMEOUT=str(TIMEOUT), TANDEM_CACHE_DIR=str(cache_dir))
    async with lsp_session(ws, env) as (client, recorder):
        ready = await recorder.wait_status("ready")
        assert "memory only" in one_line(ready)
        uri = open_text(client, ws / "greet.py", functions(3))
        await requests_still_work(client, model_server, uri, 3)
        await wait_for(lambda: len(cache_warnings(client)) >= 1)
        alive(client)
        assert len(cache_warnings(client)) == 1, cache_warnings(client)
        assert "memory only" in cache_warnings(client)[0]
    if damage == "file-in-place":
        assert cache_dir.read_text() == "not a directory\n"  # left alone


class FailingDisk:
    """A disk cache that breaks after it opened: disk full, a file damaged meanwhile.

    (Damaging the SQLite file under a running server does not do it: in WAL mode the
    connection goes on from its log until a checkpoint, long after any test.)
    """

    def get(self, key: str) -> Any:
        raise sqlite3.DatabaseError("database disk image is malformed")

    def set(self, key: str, value: Any) -> None:
        raise sqlite3.OperationalError("database or disk is full")

    def close(self) -> None:
        pass


async def test_cache_failing_mid_session_warns_once(
    model_server: ModelServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
):
    model_server.default = Behaviour(tokens=[SUGGESTION])
    for name, value in model_env(model_server.url, TANDEM_CACHE_DIR=str(tmp_path / "c")).items():
        monkeypatch.setenv(name, value)
    warnings: list[str] = []
    session = Session(open_workspace(load_settings(None), None), warn=warnings.append)
    try:
        assert session.cache.persistent
        uri = "file:///w/greet.py"
        session.documents.open(uri, functions(4), "python", 1)
        assert (await session.inline(uri, 1, 11)).text == SUGGESTION
        assert warnings == []
        session.cache._disk = FailingDisk()  # type: ignore[assignment]
        for i in range(1, 4):
            answer = await session.inline(uri, 3 * i + 1, 11)
            assert answer is not None and answer.text == SUGGESTION
        assert not session.cache.persistent
        assert len(warnings) == 1 and "memory only" in warnings[0], warnings
        asked = len(model_server.requests)
        assert (await session.inline(uri, 4, 11)).text == SUGGESTION
        assert len(model_server.requests) == asked  # memory still serves
        assert len(warnings) == 1
    finally:
        await session.close()
