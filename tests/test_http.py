"""Retries, Retry-After, timeouts, broken streams, errors and cancellation, over real HTTP."""

from __future__ import annotations

import asyncio
import email.utils
import socket
import time

import pytest

from tandem.models import ChatMessage, FimRequest, collect
from tandem.models.errors import (
    ModelAuthError,
    ModelHTTPError,
    ModelNotFound,
    ModelRateLimited,
    ModelResponseError,
    ModelTimeout,
    ModelUnreachable,
)
from tandem.models.fim import get_template
from tandem.models.http import HttpEndpoint, RetryPolicy, parse_retry_after
from tandem.models.ollama import OllamaClient
from tandem.models.openai import OpenAIClient

from modelserver import Behaviour, ModelServer

FAST_RETRY = RetryPolicy(attempts=4, base_delay=0.01, max_delay=0.05)
REQUEST = FimRequest(prefix="x = ", suffix="\n", max_tokens=8)


def openai(server: ModelServer, timeout: float = 5.0, retry: RetryPolicy = FAST_RETRY):
    endpoint = HttpEndpoint(server.url + "/v1", timeout=timeout, retry=retry)
    return OpenAIClient(endpoint, "m", get_template("starcoder"))


@pytest.mark.parametrize("status", [429, 502, 503, 504])
async def test_retries_transient_statuses(model_server: ModelServer, status: int):
    model_server.enqueue(Behaviour(status=status), Behaviour(status=status))
    client = openai(model_server)
    try:
        assert await collect(client.complete(REQUEST)) == "Hello, world!"
    finally:
        await client.aclose()
    assert len(model_server.requests) == 3


@pytest.mark.parametrize(
    ("status", "error"),
    [(400, ModelHTTPError), (401, ModelAuthError), (403, ModelAuthError), (404, ModelNotFound),
     (422, ModelHTTPError)],
)  # fmt: skip
async def test_no_retry_on_other_4xx(model_server: ModelServer, status: int, error: type):
    model_server.enqueue(Behaviour(status=status))
    client = openai(model_server)
    try:
        with pytest.raises(error) as info:
            await collect(client.complete(REQUEST))
    finally:
        await client.aclose()
    assert len(model_server.requests) == 1
    assert "injected failure" in str(info.value)  # the server's own message is kept


async def test_auth_error_names_the_key_setting(model_server: ModelServer):
    model_server.api_key = "right-key"
    endpoint = HttpEndpoint(
        model_server.url + "/v1",
        headers={"Authorization": "Bearer wrong-key"},
        key_setting="TANDEM_API_KEY / api_key",
    )
    client = OpenAIClient(endpoint, "m", get_template("starcoder"))
    try:
        with pytest.raises(ModelAuthError) as info:
            await collect(client.chat([ChatMessage("user", "hi")]))
    finally:
        await client.aclose()
    assert "TANDEM_API_KEY" in info.value.one_line()
    assert "wrong-key" not in info.value.one_line()


async def test_retry_after_seconds_is_honoured(model_server: ModelServer):
    model_server.enqueue(Behaviour(status=429, retry_after="1"))
    client = openai(model_server)
    started = time.monotonic()
    try:
        assert await collect(client.complete(REQUEST)) == "Hello, world!"
    finally:
        await client.aclose()
    assert time.monotonic() - started >= 0.95
    assert len(model_server.requests) == 2


async def test_retry_after_beyond_the_deadline_fails_at_once(model_server: ModelServer):
    model_server.enqueue(Behaviour(status=429, retry_after="120"))
    client = openai(model_server, timeout=3)
    started = time.monotonic()
    try:
        with pytest.raises(ModelRateLimited):
            await collect(client.complete(REQUEST))
    finally:
        await client.aclose()
    assert time.monotonic() - started < 1.0
    assert len(model_server.requests) == 1


async def test_gives_up_after_the_attempts(model_server: ModelServer):
    model_server.default = Behaviour(status=503)
    client = openai(model_server)
    try:
        with pytest.raises(ModelHTTPError) as info:
            await collect(client.complete(REQUEST))
    finally:
        await client.aclose()
    assert info.value.status == 503
    assert len(model_server.requests) == FAST_RETRY.attempts


def test_parse_retry_after_forms():
    assert parse_retry_after("7") == 7.0
    assert parse_retry_after(None) is None
    assert parse_retry_after("soon") is None
    now = time.time()
    date = email.utils.formatdate(now + 30, usegmt=True)
    assert 28 <= parse_retry_after(date, now=now) <= 31  # type: ignore[operator]
    assert parse_retry_after(email.utils.formatdate(now - 30, usegmt=True), now=now) == 0.0


async def test_timeout_covers_a_hung_server(model_server: ModelServer):
    model_server.enqueue(Behaviour(hang=10))
    client = openai(model_server, timeout=0.5)
    started = time.monotonic()
    try:
        with pytest.raises(ModelTimeout):
            await collect(client.complete(REQUEST))
    finally:
        await client.aclose()
    assert time.monotonic() - started < 2.0
    assert model_server.wait_done().aborted  # the server saw us go


async def test_timeout_covers_a_slow_stream(model_server: ModelServer):
    model_server.enqueue(Behaviour(delay=0.3, tokens=["a"] * 20))
    client = openai(model_server, timeout=1.0)
    started = time.monotonic()
    try:
        with pytest.raises(ModelTimeout):
            await collect(client.complete(REQUEST))
    finally:
        await client.aclose()
    assert time.monotonic() - started < 2.0


async def test_stream_cut_midway_is_a_clear_error(model_server: ModelServer):
    model_server.enqueue(Behaviour(cut_after=2))
    client = openai(model_server)
    pieces: list[str] = []
    try:
        with pytest.raises(ModelResponseError) as info:
            async for piece in client.chat([ChatMessage("user", "hi")]):
                pieces.append(piece)
    finally:
        await client.aclose()
    assert pieces == ["Hello", ","]
    assert "broke off" in str(info.value)


@pytest.mark.parametrize("ndjson", [False, True])
async def test_garbage_is_a_malformed_response(model_server: ModelServer, ndjson: bool):
    model_server.enqueue(Behaviour(garbage=True))
    endpoint = HttpEndpoint(model_server.url + ("" if ndjson else "/v1"), timeout=5)
    client = (
        OllamaClient(endpoint, "m", get_template("qwen"))
        if ndjson
        else OpenAIClient(endpoint, "m", get_template("qwen"))
    )
    try:
        with pytest.raises(ModelResponseError) as info:
            await collect(client.complete(REQUEST))
    finally:
        await client.aclose()
    assert "not JSON" in str(info.value)


async def test_unreachable_endpoint():
    with socket.socket() as s:  # a port that nothing listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    endpoint = HttpEndpoint(f"http://127.0.0.1:{port}/v1", timeout=2)
    client = OpenAIClient(endpoint, "m", get_template("starcoder"))
    try:
        with pytest.raises(ModelUnreachable) as info:
            await collect(client.complete(REQUEST))
    finally:
        await client.aclose()
    assert f"127.0.0.1:{port}" in str(info.value)


async def test_cancelling_the_task_aborts_the_request(model_server: ModelServer):
    model_server.enqueue(Behaviour(delay=0.05, tokens=["tok"] * 200))
    client = openai(model_server)
    first = asyncio.Event()

    async def consume() -> None:
        async for _ in client.complete(REQUEST):
            first.set()

    task = asyncio.create_task(consume())
    try:
        await asyncio.wait_for(first.wait(), 5)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        rec = await asyncio.to_thread(model_server.wait_done)
    finally:
        await client.aclose()
    assert rec.aborted and not rec.finished


async def test_cancelling_during_a_hang_aborts_the_request(model_server: ModelServer):
    model_server.enqueue(Behaviour(hang=10))
    client = openai(model_server)
    task = asyncio.create_task(collect(client.complete(REQUEST)))
    try:
        await asyncio.sleep(0.3)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        rec = await asyncio.to_thread(model_server.wait_done)
    finally:
        await client.aclose()
    assert rec.aborted


async def test_proxy_from_environment_is_used(model_server: ModelServer, monkeypatch):
    # The "proxy" is our model server: a proxied request arrives with an absolute URL.
    monkeypatch.setenv("HTTP_PROXY", model_server.url)
    monkeypatch.delenv("NO_PROXY", raising=False)
    monkeypatch.delenv("no_proxy", raising=False)
    endpoint = HttpEndpoint("http://model.invalid/v1", timeout=5)
    client = OpenAIClient(endpoint, "m", get_template("starcoder"))
    try:
        assert await collect(client.complete(REQUEST)) == "Hello, world!"
    finally:
        await client.aclose()
    assert model_server.requests[0].headers["host"] == "model.invalid"
