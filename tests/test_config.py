"""Settings: layer precedence, environment variables, chat fallback, errors, masking."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from tandem.config import (
    ENV_VARS,
    ConfigError,
    Settings,
    build_settings,
    env_layer,
    find_root,
    flatten,
    load_settings,
    mask,
    read_toml,
    setting_rows,
    user_config_path,
)

SECRET = "sk-live-0123456789abcdefWXYZ"


def write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return path


@pytest.fixture
def home(tmp_path):
    """An environment whose user config lives in tmp_path, plus the paths of both files."""
    config_home = tmp_path / "cfg"
    root = tmp_path / "ws"
    root.mkdir()
    return {
        "environ": {"XDG_CONFIG_HOME": str(config_home)},
        "user": config_home / "tandem" / "config.toml",
        "root": root,
        "workspace": root / ".tandem.toml",
    }


def load(home, env=None, **kwargs):
    return load_settings(home["root"], environ={**home["environ"], **(env or {})}, **kwargs)


# ---- defaults and precedence ------------------------------------------------------------------


def test_defaults(home):
    settings = load(home)
    assert isinstance(settings, Settings)
    assert settings.completion.provider == "local"
    assert settings.completion.model is None
    assert settings.completion.max_tokens == 128
    assert settings.chat.provider == "local"
    assert settings.chat.max_tokens == 1024
    assert settings.timeout == 30.0
    assert settings.source_of("completion.model") == "default"
    assert settings.sources == {}


def test_user_config_path_follows_xdg(tmp_path):
    assert user_config_path({"XDG_CONFIG_HOME": str(tmp_path)}) == (
        tmp_path / "tandem" / "config.toml"
    )


def test_each_layer_overrides_the_one_below(home):
    write(
        home["user"],
        'timeout = 5\n[completion]\nmodel = "user"\nendpoint = "http://user:1"\nmax_tokens = 10\n',
    )
    write(
        home["workspace"],
        'timeout = 6\n[completion]\nmodel = "workspace"\nendpoint = "http://ws:2"\n',
    )
    env = {"TANDEM_MODEL": "env", "TANDEM_TIMEOUT": "7"}
    settings = load(home, env, overrides={"completion.model": "flag"})

    assert settings.completion.model == "flag"
    assert settings.source_of("completion.model") == "command line"
    assert settings.timeout == 7.0
    assert settings.source_of("timeout") == "env TANDEM_TIMEOUT"
    assert settings.completion.endpoint == "http://ws:2"
    assert settings.source_of("completion.endpoint") == str(home["workspace"])
    assert settings.completion.max_tokens == 10
    assert settings.source_of("completion.max_tokens") == str(home["user"])
    assert settings.completion.temperature == 0.2
    assert settings.source_of("completion.temperature") == "default"


@pytest.mark.parametrize("layers", range(5))
def test_model_comes_from_highest_layer_present(home, layers):
    expected = [("default", None)]
    env = {}
    overrides = None
    if layers >= 1:
        write(home["user"], '[completion]\nmodel = "from-user"\n')
        expected.append((str(home["user"]), "from-user"))
    if layers >= 2:
        write(home["workspace"], '[completion]\nmodel = "from-workspace"\n')
        expected.append((str(home["workspace"]), "from-workspace"))
    if layers >= 3:
        env = {"TANDEM_MODEL": "from-env"}
        expected.append(("env TANDEM_MODEL", "from-env"))
    if layers >= 4:
        overrides = {"completion.model": "from-flag"}
        expected.append(("command line", "from-flag"))
    settings = load(home, env, overrides=overrides)
    source, model = expected[-1]
    assert settings.completion.model == model
    assert settings.source_of("completion.model") == source


def test_workspace_file_is_ignored_without_root(home):
    write(home["workspace"], '[completion]\nmodel = "ws"\n')
    settings = load_settings(None, environ=home["environ"])
    assert settings.completion.model is None


def test_overrides_accept_nested_sections_and_skip_none(home):
    settings = load(
        home,
        {"TANDEM_MODEL": "env"},
        overrides={"chat": {"model": "nested"}, "completion.model": None, "timeout": 3},
        overrides_source="initializationOptions",
    )
    assert settings.chat.model == "nested"
    assert settings.source_of("chat.model") == "initializationOptions"
    assert settings.completion.model == "env"  # None does not erase a lower layer
    assert settings.timeout == 3.0


@pytest.mark.parametrize("nested_first", [True, False])
def test_overrides_mixing_nested_and_dotted_keys(home, nested_first):
    section = {"model": "m"}
    items = [("completion", section), ("completion.endpoint", "http://flag:1")]
    overrides = dict(items if nested_first else reversed(items))
    settings = load(home, overrides=overrides)
    assert settings.completion.model == "m"
    assert settings.completion.endpoint == "http://flag:1"
    assert section == {"model": "m"}


def test_default_cache_dir_follows_the_given_environment(home, tmp_path):
    env = {"XDG_CACHE_HOME": str(tmp_path / "given-cache")}
    settings = load(home, env)
    assert settings.cache_dir == tmp_path / "given-cache" / "tandem"


def test_default_cache_dir_follows_xdg_cache_home(home, isolated_env):
    assert load_settings(home["root"]).cache_dir == isolated_env / "xdg-cache" / "tandem"


# ---- environment variables -------------------------------------------------------------------

ENV_CASES = [
    ("TANDEM_PROVIDER", "llamacpp", "completion.provider", "llamacpp"),
    (
        "TANDEM_ENDPOINT",
        "http://127.0.0.1:9999/v1/",
        "completion.endpoint",
        "http://127.0.0.1:9999/v1",
    ),
    ("TANDEM_MODEL", "qwen2.5-coder:1.5b", "completion.model", "qwen2.5-coder:1.5b"),
    ("TANDEM_API_KEY", SECRET, "completion.api_key", SECRET),
    (
        "TANDEM_AZURE_API_VERSION",
        "2025-01-01-preview",
        "completion.api_version",
        "2025-01-01-preview",
    ),
    ("TANDEM_AZURE_AD_TOKEN", "eyJ0eXAi.token", "completion.entra_token", "eyJ0eXAi.token"),
    ("TANDEM_FIM", "qwen", "completion.fim", "qwen"),
    ("TANDEM_MODEL_PATH", "/models/qwen.gguf", "completion.model_path", "/models/qwen.gguf"),
    ("TANDEM_N_CTX", "8192", "completion.n_ctx", 8192),
    ("TANDEM_THREADS", "3", "completion.threads", 3),
    ("TANDEM_PARALLEL", "4", "completion.parallel", 4),
    ("TANDEM_CHAT_PROVIDER", "llamacpp", "chat.provider", "llamacpp"),
    (
        "TANDEM_CHAT_ENDPOINT",
        "https://chat.example.com/v1",
        "chat.endpoint",
        "https://chat.example.com/v1",
    ),
    ("TANDEM_CHAT_MODEL", "gpt-4o", "chat.model", "gpt-4o"),
    ("TANDEM_CHAT_API_KEY", SECRET, "chat.api_key", SECRET),
    ("TANDEM_TIMEOUT", "12.5", "timeout", 12.5),
    ("TANDEM_EXCLUDE", "*.sql, internal/", "exclude", ("*.sql", "internal/")),
]


def _get(settings, key):
    value = settings
    for part in key.split("."):
        value = getattr(value, part)
    return value


def test_env_cases_cover_every_variable():
    assert {var for var, *_ in ENV_CASES} | {"TANDEM_CACHE_DIR"} == set(ENV_VARS)


@pytest.mark.parametrize(("var", "raw", "key", "expected"), ENV_CASES)
def test_environment_variable(home, var, raw, key, expected):
    defaults = load(home)
    settings = load(home, {var: raw})
    assert _get(settings, key) == expected
    assert _get(defaults, key) != expected
    assert settings.source_of(key) == f"env {var}"
    assert env_layer({var: raw}) == {key: (raw, f"env {var}")}


def test_cache_dir_from_environment(home, tmp_path):
    settings = load(home, {"TANDEM_CACHE_DIR": str(tmp_path / "c")})
    assert settings.cache_dir == tmp_path / "c"
    assert settings.source_of("cache_dir") == "env TANDEM_CACHE_DIR"


def test_cache_dir_expands_home(home):
    settings = load(home, {"TANDEM_CACHE_DIR": "~/tandem-cache"})
    assert settings.cache_dir == Path.home() / "tandem-cache"


def test_provider_names_are_case_insensitive(home):
    settings = load(home, {"TANDEM_PROVIDER": "  OpenAI ", "TANDEM_MODEL": "gpt-4o"})
    assert settings.completion.provider == "openai"
    assert settings.completion.resolved_endpoint == "https://api.openai.com/v1"


def test_env_layer_ignores_empty_and_foreign_variables():
    layer = env_layer({"TANDEM_MODEL": "m", "TANDEM_ENDPOINT": "", "TANDEM_NOPE": "x", "PATH": "/"})
    assert layer == {"completion.model": ("m", "env TANDEM_MODEL")}


def test_full_environment_configuration(home):
    settings = load(
        home,
        {
            "TANDEM_PROVIDER": "ollama",
            "TANDEM_MODEL": "qwen2.5-coder:1.5b",
            "TANDEM_FIM": "QWEN",
            "TANDEM_CHAT_PROVIDER": "openai",
            "TANDEM_CHAT_MODEL": "gpt-4o",
            "TANDEM_CHAT_API_KEY": SECRET,
            "TANDEM_TIMEOUT": "60",
        },
    )
    assert settings.completion.provider == "ollama"
    assert settings.completion.resolved_endpoint == "http://127.0.0.1:11434"
    assert settings.completion.fim == "qwen"
    assert settings.chat.provider == "openai"
    assert settings.chat.model == "gpt-4o"
    assert settings.chat.api_key == SECRET
    assert settings.completion.api_key is None
    assert settings.timeout == 60.0


# ---- chat fallback -----------------------------------------------------------------------------

COMPLETION = (
    "[completion]\n"
    'provider = "openai"\n'
    'endpoint = "https://proxy.example.com/v1"\n'
    'model = "gpt-4o-mini"\n'
    f'api_key = "{SECRET}"\n'
    "max_tokens = 64\n"
    "temperature = 0.5\n"
)


def test_chat_falls_back_to_completion_when_unset(home):
    write(home["workspace"], COMPLETION)
    settings = load(home)
    chat = settings.chat
    assert chat.provider == "openai"
    assert chat.endpoint == "https://proxy.example.com/v1"
    assert chat.model == "gpt-4o-mini"
    assert chat.api_key == SECRET
    # Generation limits are not inherited.
    assert chat.max_tokens == 1024
    assert chat.temperature == 0.2
    source = str(home["workspace"])
    assert settings.source_of("chat.model") == f"completion.model ({source})"
    assert settings.source_of("chat.max_tokens") == "default"


def test_chat_with_same_provider_inherits_unset_keys(home):
    write(home["workspace"], COMPLETION + '[chat]\nprovider = "openai"\nmodel = "gpt-4o"\n')
    settings = load(home)
    assert settings.chat.model == "gpt-4o"
    assert settings.source_of("chat.model") == str(home["workspace"])
    assert settings.chat.endpoint == "https://proxy.example.com/v1"
    assert settings.chat.api_key == SECRET
    assert settings.chat.max_tokens == 1024
    assert settings.completion.model == "gpt-4o-mini"


def test_chat_with_other_provider_inherits_nothing(home):
    write(home["workspace"], COMPLETION + '[chat]\nprovider = "ollama"\nmodel = "llama3"\n')
    settings = load(home)
    chat = settings.chat
    assert chat.provider == "ollama"
    assert chat.model == "llama3"
    assert chat.endpoint is None
    assert chat.resolved_endpoint == "http://127.0.0.1:11434"
    assert chat.api_key is None
    assert settings.source_of("chat.api_key") == "default"


def test_chat_with_other_provider_needs_its_own_model(home):
    write(home["workspace"], COMPLETION + '[chat]\nprovider = "ollama"\n')
    with pytest.raises(ConfigError) as info:
        load(home)
    assert info.value.key == "chat.model"
    assert str(home["workspace"]) in str(info.value)


def test_chat_max_tokens_can_be_set(home):
    write(home["workspace"], "[chat]\nmax_tokens = 2048\n")
    assert load(home).chat.max_tokens == 2048


# ---- invalid values --------------------------------------------------------------------------


def _error(home, env=None, **kwargs):
    with pytest.raises(ConfigError) as info:
        load(home, env, **kwargs)
    return info.value


def test_bad_provider_in_workspace_file(home):
    write(home["workspace"], '[completion]\nprovider = "bogus"\n')
    error = _error(home)
    assert error.key == "completion.provider"
    assert error.source == str(home["workspace"])
    message = str(error)
    assert "completion.provider" in message
    assert str(home["workspace"]) in message
    assert "'bogus'" in message
    assert error.exit_code == 2
    assert isinstance(error, ValueError)


def test_non_url_endpoint(home):
    write(home["user"], '[completion]\nendpoint = "localhost:8080"\n')
    error = _error(home)
    assert error.key == "completion.endpoint"
    assert str(home["user"]) in str(error)
    assert "localhost:8080" in str(error)


def test_non_url_endpoint_from_environment(home):
    error = _error(home, {"TANDEM_CHAT_ENDPOINT": "ftp://example.com"})
    assert "chat.endpoint" in str(error)
    assert "env TANDEM_CHAT_ENDPOINT" in str(error)


@pytest.mark.parametrize("raw", ["-1", "0", "abc", "7200"])
def test_bad_timeout_from_environment(home, raw):
    error = _error(home, {"TANDEM_TIMEOUT": raw})
    assert error.key == "timeout"
    assert "env TANDEM_TIMEOUT" in str(error)
    assert "timeout" in str(error)


def test_unknown_key_in_section(home):
    write(home["workspace"], '[completion]\nmodle = "x"\n')
    error = _error(home)
    assert error.key == "completion.modle"
    assert str(home["workspace"]) in str(error)
    assert "model" in str(error).split("known:")[1]


def test_unknown_top_level_key(home):
    write(home["user"], 'colour = "blue"\n')
    error = _error(home)
    assert error.key == "colour"
    assert str(home["user"]) in str(error)


def test_section_must_be_a_table(home):
    write(home["workspace"], 'completion = "openai"\n')
    assert _error(home).key == "completion"


def test_unknown_fim_template(home):
    write(home["workspace"], '[completion]\nfim = "nope"\n')
    error = _error(home)
    assert error.key == "completion.fim"
    assert str(home["workspace"]) in str(error)
    assert "qwen" in str(error)


def test_unknown_fim_template_from_environment(home):
    error = _error(home, {"TANDEM_FIM": "nope"})
    assert error.key == "completion.fim"
    assert "env TANDEM_FIM" in str(error)


def test_invalid_toml(home):
    write(home["workspace"], "[completion\nmodel = \n")
    error = _error(home)
    assert str(home["workspace"]) in str(error)
    assert "not valid TOML" in str(error)


@pytest.mark.parametrize(
    ("body", "key"),
    [
        ("[completion]\nmax_tokens = 0\n", "completion.max_tokens"),
        ("[completion]\nmax_tokens = 1.5\n", "completion.max_tokens"),
        ("[completion]\nmax_tokens = true\n", "completion.max_tokens"),
        ("[chat]\ntemperature = 3\n", "chat.temperature"),
        ('[chat]\nmodel = "   "\n', "chat.model"),
        ("[completion]\napi_key = 42\n", "completion.api_key"),
        ("timeout = -1\n", "timeout"),
    ],
)
def test_invalid_values_in_file(home, body, key):
    write(home["workspace"], body)
    error = _error(home)
    assert error.key == key
    assert f"invalid setting {key} (from {home['workspace']})" in str(error)


def test_invalid_override_names_command_line(home):
    error = _error(home, overrides={"completion.provider": "gpt"})
    assert "completion.provider" in str(error)
    assert "command line" in str(error)


def test_temperature_zero_is_allowed(home):
    write(home["workspace"], "[completion]\ntemperature = 0\n")
    assert load(home).completion.temperature == 0.0


def test_openai_without_model(home):
    error = _error(home, {"TANDEM_PROVIDER": "openai"})
    assert error.key == "completion.model"
    assert "openai provider needs a model name" in str(error)
    assert "env TANDEM_PROVIDER" in str(error)


def test_ollama_chat_without_model(home):
    error = _error(home, {"TANDEM_CHAT_PROVIDER": "ollama"})
    assert error.key == "chat.model"
    assert "ollama provider needs a model name" in str(error)


def test_azure_without_endpoint(home):
    error = _error(home, {"TANDEM_PROVIDER": "azure", "TANDEM_MODEL": "my-deployment"})
    assert error.key == "completion.endpoint"
    assert "resource URL" in str(error)
    assert "env TANDEM_PROVIDER" in str(error)


def test_azure_without_deployment(home):
    env = {"TANDEM_PROVIDER": "azure", "TANDEM_ENDPOINT": "https://me.openai.azure.com"}
    error = _error(home, env)
    assert error.key == "completion.model"
    assert "deployment name" in str(error)


def test_azure_complete_is_accepted(home):
    env = {
        "TANDEM_PROVIDER": "azure",
        "TANDEM_ENDPOINT": "https://me.openai.azure.com/",
        "TANDEM_MODEL": "my-deployment",
    }
    settings = load(home, env)
    assert settings.chat.provider == "azure"
    assert settings.chat.endpoint == "https://me.openai.azure.com"


# ---- lower-level pieces ----------------------------------------------------------------------


def test_flatten_makes_dotted_keys():
    layer = flatten({"timeout": 5, "completion": {"model": "m"}, "chat": {}}, "src")
    assert layer == {"timeout": (5, "src"), "completion.model": ("m", "src")}


def test_read_toml_missing_file_is_empty(tmp_path):
    assert read_toml(tmp_path / "absent.toml") == {}


def test_read_toml_reads_values_with_their_file(tmp_path):
    path = write(tmp_path / "c.toml", '[chat]\nmodel = "m"\n')
    assert read_toml(path) == {"chat.model": ("m", str(path))}


def test_build_settings_later_layers_win():
    settings = build_settings(
        {"completion.model": ("a", "one"), "timeout": (1, "one")},
        {"completion.model": ("b", "two")},
    )
    assert settings.completion.model == "b"
    assert settings.source_of("completion.model") == "two"
    assert settings.timeout == 1.0
    assert settings.source_of("timeout") == "one"


# ---- secrets ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("secret", "shown"),
    [
        (None, "(not set)"),
        ("", "(not set)"),
        ("abc", "****"),
        ("abcdefghijk", "****"),
        ("abcdefghijkl", "****ijkl"),
        (SECRET, "****WXYZ"),
    ],
)
def test_mask(secret, shown):
    assert mask(secret) == shown


@given(st.text())
def test_mask_reveals_at_most_the_last_four_characters(secret):
    shown = mask(secret)
    if not secret:
        assert shown == "(not set)"
        return
    assert shown.startswith("****")
    revealed = shown[4:]
    assert len(revealed) <= 4
    assert secret.endswith(revealed)
    if len(secret) < 12:
        assert revealed == ""


def test_setting_rows_never_shows_a_full_key(home):
    chat_key = "sk-chat-ABCDEFGHIJKLMNOP9876"
    settings = load(
        home,
        {
            "TANDEM_PROVIDER": "openai",
            "TANDEM_MODEL": "gpt-4o",
            "TANDEM_API_KEY": SECRET,
            "TANDEM_CHAT_API_KEY": chat_key,
            "TANDEM_AZURE_AD_TOKEN": "entra-token-secret-value",
        },
    )
    rows = setting_rows(settings)
    for row in rows:
        for cell in row:
            assert SECRET not in cell
            assert chat_key not in cell
            assert "entra-token-secret-value" not in cell
    shown = {key: (value, source) for key, value, source in rows}
    assert shown["completion.api_key"] == ("****WXYZ", "env TANDEM_API_KEY")
    assert shown["chat.api_key"] == ("****9876", "env TANDEM_CHAT_API_KEY")
    assert shown["completion.entra_token"][0] == "****alue"
    assert shown["completion.endpoint"] == (
        "https://api.openai.com/v1 (provider default)",
        "default",
    )
    assert shown["chat.model"] == ("gpt-4o", "completion.model (env TANDEM_MODEL)")
    assert shown["timeout"] == ("30s", "default")
    assert SECRET not in repr(settings)


def test_setting_rows_lists_every_setting(home):
    keys = [key for key, _, _ in setting_rows(load(home))]
    assert len(keys) == len(set(keys))
    assert {"completion.model", "chat.max_tokens", "cache_dir", "timeout"} <= set(keys)


# ---- workspace root ---------------------------------------------------------------------------


def test_find_root_explicit_wins(tmp_path):
    repo = tmp_path / "repo"
    (repo / ".git").mkdir(parents=True)
    other = tmp_path / "other"
    other.mkdir()
    assert find_root(repo / "a.py", explicit=other) == other.resolve()


def test_find_root_uses_the_enclosing_git_folder(tmp_path):
    repo = tmp_path / "repo"
    (repo / ".git").mkdir(parents=True)
    source = write(repo / "src" / "pkg" / "mod.py", "x = 1\n")
    assert find_root(source) == repo.resolve()
    assert find_root(repo / "src") == repo.resolve()
    assert find_root(repo) == repo.resolve()


def test_find_root_accepts_a_git_file_and_prefers_the_nearest(tmp_path):
    outer = tmp_path / "outer"
    (outer / ".git").mkdir(parents=True)
    inner = outer / "vendor" / "lib"
    write(inner / ".git", "gitdir: ../../.git/modules/lib\n")
    assert find_root(inner / "code.py") == inner.resolve()


def test_find_root_falls_back_to_cwd(tmp_path, monkeypatch):
    plain = tmp_path / "plain"
    source = write(plain / "x.py", "")
    assert not any((p / ".git").exists() for p in source.parents)
    cwd = tmp_path / "cwd"
    cwd.mkdir()
    monkeypatch.chdir(cwd)
    assert find_root(source) == cwd.resolve()
    assert find_root(None) == cwd.resolve()
