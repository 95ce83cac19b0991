"""Every provider's request shape and streaming parse, against the loopback model server."""

from __future__ import annotations

from dataclasses import replace

from tandem.config import build_settings, flatten
from tandem.models import ChatMessage, ChatOptions, FimRequest, Snippet, build_models, collect

from modelserver import Behaviour, ModelServer

REQUEST = FimRequest(
    prefix="def add(a, b):\n    return ",
    suffix="\n\nprint(add(1, 2))\n",
    snippets=(Snippet("util/math.py", "def plus(a, b):\n    return a + b"),),
    path="main.py",
    language="python",
    max_tokens=32,
    temperature=0.1,
)
MESSAGES = [ChatMessage("system", "be brief"), ChatMessage("user", "hi")]


def models_for(completion: dict, chat: dict | None = None, timeout: float = 5.0):
    data: dict = {"completion": completion, "timeout": timeout}
    if chat is not None:
        data["chat"] = chat
    return build_models(build_settings(flatten(data, "test")))


async def test_openai_fim_uses_completions_with_template_tokens(model_server: ModelServer):
    models = models_for(
        {
            "provider": "openai",
            "endpoint": model_server.url + "/v1",
            "model": "qwen2.5-coder-7b",
            "api_key": "sk-test-123456789",
        }
    )
    try:
        text = await collect(models.completion.complete(REQUEST))
    finally:
        await models.aclose()
    assert text == "Hello, world!"
    rec = model_server.requests[0]
    assert rec.path == "/v1/completions"
    assert rec.headers["authorization"] == "Bearer sk-test-123456789"
    body = rec.body
    assert body["model"] == "qwen2.5-coder-7b"
    assert body["stream"] is True
    assert body["max_tokens"] == 32
    assert body["temperature"] == 0.1
    assert len(body["stop"]) <= 4 and "<|endoftext|>" in body["stop"]
    # Qwen's repo-level form carries the cross-file snippet.
    assert body["prompt"] == (
        "<|repo_name|>workspace\n<|file_sep|>util/math.py\ndef plus(a, b):\n    return a + b\n"
        "<|file_sep|>main.py\n<|fim_prefix|>def add(a, b):\n    return <|fim_suffix|>"
        "\n\nprint(add(1, 2))\n<|fim_middle|>"
    )


async def test_openai_chat_streams_deltas(model_server: ModelServer):
    model_server.default = Behaviour(tokens=["The ", "answer", " is 42."])
    models = models_for({"provider": "openai", "endpoint": model_server.url + "/v1", "model": "m"})
    try:
        pieces = [p async for p in models.chat.chat(MESSAGES, ChatOptions(max_tokens=50))]
    finally:
        await models.aclose()
    assert pieces == ["The ", "answer", " is 42."]
    rec = model_server.requests[0]
    assert rec.path == "/v1/chat/completions"
    assert rec.body["messages"] == [m.as_dict() for m in MESSAGES]
    assert rec.body["max_tokens"] == 50
    assert "authorization" not in rec.headers


async def test_openai_structured_output_sends_json_schema(model_server: ModelServer):
    schema = {"type": "object", "properties": {"ok": {"type": "boolean"}}}
    models = models_for({"provider": "openai", "endpoint": model_server.url + "/v1", "model": "m"})
    try:
        await collect(models.chat.chat(MESSAGES, ChatOptions(json_schema=schema)))
    finally:
        await models.aclose()
    fmt = model_server.requests[0].body["response_format"]
    assert fmt["type"] == "json_schema"
    assert fmt["json_schema"]["schema"] == schema


async def test_chat_only_model_fills_the_hole_through_chat(model_server: ModelServer):
    models = models_for(
        {"provider": "openai", "endpoint": model_server.url + "/v1", "model": "gpt-4o"}
    )
    try:
        text = await collect(models.completion.complete(REQUEST))
    finally:
        await models.aclose()
    assert text == "Hello, world!"
    rec = model_server.requests[0]
    assert rec.path == "/v1/chat/completions"
    user = rec.body["messages"][-1]["content"]
    assert "def add(a, b):\n    return <FILL_HERE>\n\nprint(add(1, 2))" in user
    assert "util/math.py" in user


async def test_azure_paths_api_version_and_api_key(model_server: ModelServer):
    models = models_for(
        {
            "provider": "azure",
            "endpoint": model_server.url,
            "model": "my-gpt4o",
            "api_key": "azure-key-abcdef123",
            "api_version": "2024-10-21",
        }
    )
    try:
        completion = await collect(models.completion.complete(REQUEST))
        answer = await collect(models.chat.chat(MESSAGES))
    finally:
        await models.aclose()
    assert completion == answer == "Hello, world!"
    for rec in model_server.requests:
        assert rec.path == "/openai/deployments/my-gpt4o/chat/completions"
        assert rec.query == {"api-version": ["2024-10-21"]}
        assert rec.headers["api-key"] == "azure-key-abcdef123"
        assert "authorization" not in rec.headers
        assert "model" not in rec.body


async def test_azure_completions_deployment_and_entra_token(model_server: ModelServer):
    models = models_for(
        {
            "provider": "azure",
            "endpoint": model_server.url,
            "model": "starcoder-deploy",
            "fim": "starcoder",
            "entra_token": "eyJ0eXAiOiJKV1Qi.entra",
        }
    )
    try:
        await collect(models.completion.complete(REQUEST))
    finally:
        await models.aclose()
    rec = model_server.requests[0]
    assert rec.path == "/openai/deployments/starcoder-deploy/completions"
    assert rec.headers["authorization"] == "Bearer eyJ0eXAiOiJKV1Qi.entra"
    assert "api-key" not in rec.headers
    assert rec.body["prompt"].endswith("<fim_middle>")


async def test_ollama_generate_is_raw_with_our_fim_tokens(model_server: ModelServer):
    models = models_for(
        {"provider": "ollama", "endpoint": model_server.url, "model": "deepseek-coder:1.3b"}
    )
    try:
        text = await collect(models.completion.complete(REQUEST))
        answer = await collect(
            models.chat.chat(MESSAGES, ChatOptions(json_schema={"type": "object"}))
        )
    finally:
        await models.aclose()
    assert text == answer == "Hello, world!"
    gen, chat = model_server.requests
    assert gen.path == "/api/generate"
    assert gen.body["raw"] is True and gen.body["stream"] is True
    # no repo form for DeepSeek: the snippet rides inside the prefix, as path-headed comments
    assert gen.body["prompt"].startswith("<｜fim▁begin｜># Path: util/math.py\n# def plus(a, b):\n")
    assert gen.body["prompt"].endswith(
        "\n\ndef add(a, b):\n    return <｜fim▁hole｜>\n\nprint(add(1, 2))\n<｜fim▁end｜>"
    )
    assert gen.body["options"]["num_predict"] == 32
    assert "<｜end▁of▁sentence｜>" in gen.body["options"]["stop"]
    assert chat.path == "/api/chat"
    assert chat.body["messages"][1] == {"role": "user", "content": "hi"}
    assert chat.body["format"] == {"type": "object"}


async def test_llamacpp_infill_sends_input_extra(model_server: ModelServer):
    models = models_for({"provider": "llamacpp", "endpoint": model_server.url})
    try:
        text = await collect(models.completion.complete(REQUEST))
        answer = await collect(models.chat.chat(MESSAGES))
        tokens = await models.completion.count_tokens("x" * 40)
    finally:
        await models.aclose()
    assert text == answer == "Hello, world!"
    infill, chat, tokenize = model_server.requests
    assert infill.path == "/infill"
    assert infill.body["input_prefix"] == REQUEST.prefix
    assert infill.body["input_suffix"] == REQUEST.suffix
    assert infill.body["input_extra"] == [
        {"filename": "util/math.py", "text": "def plus(a, b):\n    return a + b"}
    ]
    assert infill.body["n_predict"] == 32 and infill.body["stream"] is True
    assert chat.path == "/v1/chat/completions"
    assert tokenize.path == "/tokenize" and tokens == 10


async def test_llamacpp_infill_quotes_each_file_once(model_server: ModelServer):
    """llama.cpp renders each ``input_extra`` entry as a file: pieces of one file go as one."""
    two = (*REQUEST.snippets, Snippet("util/math.py", "def minus(a, b):\n    return a - b"))
    models = models_for({"provider": "llamacpp", "endpoint": model_server.url})
    try:
        await collect(models.completion.complete(replace(REQUEST, snippets=two)))
    finally:
        await models.aclose()
    assert model_server.requests[0].body["input_extra"] == [
        {
            "filename": "util/math.py",
            "text": "def plus(a, b):\n    return a + b\n\ndef minus(a, b):\n    return a - b",
        }
    ]


async def test_llamacpp_explicit_template_uses_completion(model_server: ModelServer):
    models = models_for({"provider": "llamacpp", "endpoint": model_server.url, "fim": "codellama"})
    try:
        await collect(models.completion.complete(REQUEST))
        tokenizer = await models.completion.tokenizer()
    finally:
        await models.aclose()
    rec = model_server.requests[0]
    assert rec.path == "/completion"
    assert rec.body["prompt"].startswith("<PRE> # Path: util/math.py\n")
    assert rec.body["prompt"].endswith(
        "\n\ndef add(a, b):\n    return  <SUF>\n\nprint(add(1, 2))\n <MID>"
    )
    assert "<EOT>" in rec.body["stop"]
    # calibrated on the server's /tokenize (4 characters a token there), erring high
    assert tokenizer.count("y" * 400) >= 100


async def test_stop_tokens_are_enforced_client_side(model_server: ModelServer):
    model_server.default = Behaviour(tokens=["return a", " + b", "<|file", "_sep|>junk"])
    models = models_for(
        {"provider": "openai", "endpoint": model_server.url + "/v1", "model": "qwen-coder"}
    )
    try:
        text = await collect(models.completion.complete(REQUEST))
    finally:
        await models.aclose()
    assert text == "return a + b"


async def test_completion_and_chat_share_one_connection(model_server: ModelServer):
    models = models_for({"provider": "openai", "endpoint": model_server.url + "/v1", "model": "m"})
    try:
        assert models.completion.endpoint is models.chat.endpoint  # type: ignore[attr-defined]
        for _ in range(3):
            await collect(models.completion.complete(REQUEST))
            await collect(models.chat.chat(MESSAGES))
    finally:
        await models.aclose()
    assert len(model_server.requests) == 6
    assert len({r.connection for r in model_server.requests}) == 1
    assert model_server.connections_opened == 1


async def test_chat_section_can_use_another_server(model_server: ModelServer):
    with ModelServer(tokens=["chat", " reply"]) as chat_server:
        models = models_for(
            {"provider": "llamacpp", "endpoint": model_server.url},
            {"provider": "ollama", "endpoint": chat_server.url, "model": "qwen2.5:7b"},
        )
        try:
            assert await collect(models.chat.chat(MESSAGES)) == "chat reply"
        finally:
            await models.aclose()
        assert chat_server.requests[0].path == "/api/chat"
        assert model_server.requests == []
