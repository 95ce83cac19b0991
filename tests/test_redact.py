"""The redactor on its own: the planted-secrets corpus, ordinary code, cut keys, speed, hooks.

The corpus (``tests/data/secrets``, ``planted.json`` lists each file's secrets) is made of
fake values in real formats; end-to-end checks through the model server are in
test_privacy.py.
"""

from __future__ import annotations

import json
import sysconfig
import time
from pathlib import Path
from typing import Any

import pytest

from tandem.config import build_settings, flatten
from tandem.models import ChatMessage, FimRequest, Snippet, build_models, collect
from tandem.models.redact import (
    find_secrets,
    has_placeholder,
    redact_body,
    redact_text,
    restore,
)

from modelserver import ModelServer

ROOT = Path(__file__).resolve().parent.parent
CORPUS = Path(__file__).parent / "data" / "secrets"
PLANTED: dict[str, list[str]] = json.loads((CORPUS / "planted.json").read_text())
ALL_SECRETS = sorted({s for values in PLANTED.values() for s in values})
SITE = Path(sysconfig.get_paths()["purelib"])  # the venv's packages: code we did not write


def leaked(text: str) -> list[str]:
    return [s for s in ALL_SECRETS if s in text]


@pytest.mark.parametrize("name", sorted(PLANTED))
def test_every_planted_secret_is_redacted(name: str):
    text = (CORPUS / name).read_text()
    assert PLANTED[name], f"{name} plants nothing"
    out = redact_text(text)
    assert leaked(out) == []
    assert "<redacted:" in out
    if "PRIVATE KEY" not in text:  # a key block becomes one placeholder; nothing else moves
        assert out.count("\n") == text.count("\n")


def test_placeholders_keep_the_code_shape():
    out = redact_text((CORPUS / "settings.py").read_text())
    assert 'AWS_ACCESS_KEY_ID = "<redacted:aws-access-key>"' in out
    assert '"PASSWORD": "<redacted:password>",' in out
    assert "redis://:<redacted:url-password>@cache.internal:6379/1" in out
    assert 'AWS_STORAGE_BUCKET_NAME = "billing-invoices"' in out  # not a secret
    env = redact_text((CORPUS / ".env").read_text())
    assert "export AWS_ACCESS_KEY_ID=<redacted:aws-access-key>\n" in env
    assert "PORT=3000\n" in env
    gcp = json.loads(redact_text((CORPUS / "gcp-ci.json").read_text()))  # still valid JSON
    assert gcp["private_key"].startswith("<redacted:private-key>")
    assert gcp["client_email"].endswith("iam.gserviceaccount.com")


def test_stable_and_idempotent():
    text = (CORPUS / "client.js").read_text()
    once = redact_text(text)
    assert redact_text.__wrapped__(text) == once
    assert redact_text.__wrapped__(once) == once
    assert find_secrets(once) == []


SECRETS_IN_CODE = [
    ('key = "AKIAZ7QW3ERTY6UIOP2M"', "aws-access-key"),
    ("GITHUB = 'github_pat_11ABCDEFG0aBcDeFgHiJkL_" + "x7Yz" * 15 + "'", "github-token"),
    ('auth = "glpat-Zq8Xv2Lm9Kp4Rt7Wz1Bn"', "gitlab-token"),
    ('client(token="xoxp-2222222222-3333333333-4444444444-aa11bb22cc33dd44ee55ff66")', "slack"),
    ('stripe = "rk_live_51Hq2Xk8Lm9Vp4Rt7Wz1Bn5Cy3"', "stripe-key"),
    ('OPENAI = "sk-svcacct-' + "Ab3dE5fG7hJ9kL1mN3pQ" * 3 + '"', "openai-key"),
    ("curl -H 'Authorization: Bearer 9f3a7c2e1b8d4f6a0c5e7b9d2f4a'", "token"),
    ('url = "mysql://root:Zt8pQ2xL@db:3306/app"', "url-password"),
    ("conn = 'Server=db;Database=x;Password=Zt8pQ2xLm4;'", "password"),
    ("db_password := `Zt8pQ2xL!m4`", "password"),
    ("  apiKey: 'e3b0c44298fc1c149afbf4c8996fb924'", "api-key"),
    ('private_key_id = "5f1ac0e29b7d43a8e61f0c2b9d7e4a3f18c6b0d2"', "secret"),
    ("# password = Zt8pQ2xL!m4", "password"),  # another file's line, shown as a comment
    ('headers.put("X-Api-Key", "Zt8pQ2xLm4Rv7Wn1")', "api-key"),
    ("//registry.npmjs.org/:_authToken=npm_Zt8pQ2xLm4Rv7Wn1Yc5Kd9Hs3Jq6Vb0Xe2Ta4", "npm-token"),
    ("    7 + password = Zt8pQ2xL!m4", "password"),  # the reviewer's view of a diff
]


@pytest.mark.parametrize(("line", "kind"), SECRETS_IN_CODE)
def test_each_kind(line: str, kind: str):
    found = find_secrets(line)
    assert found, line
    assert kind in found[0].kind


ORDINARY = [
    "token = next(tokens)",
    "password = get_password()",
    'api_key = os.environ["API_KEY"]',
    'password = "password"',
    'SECRET_KEY = "${SECRET_KEY}"',
    'api_key = "YOUR_API_KEY_HERE"',
    'url = "https://user:password@example.com/path"',
    'digest = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"',
    'eos_token = "</s>"',
    'TOKEN_RE = r"[A-Za-z_]\\w*"',
    'token = r"[-!#$%&\'*+.^_`|~0-9a-zA-Z]+"',
    'if token == "#bygroup":',
    'publicKeyToken="1fc8b3b9a1e18e3b"',
    'if line.startswith("-----BEGIN RSA PRIVATE KEY-----"):',
    "NAMES = {'opaqueCMBufferQueueTriggerToken', 'sfntCMapEncoding'}",
    'headers = {"Authorization": "Bearer " + token}',
    "Authorization: Bearer ${TOKEN}",
    'password_field = "password_confirmation"',
    'secret_name = "prod-db-credentials"',
    'request_id = "7c9e6679-7425-40de-944b-e07c2ae4a8f6"',
    "self.token_type = token_type",
    "    password: config.dbPassword",
    'encrypt(secret, "AES-256-CBC")',
]


@pytest.mark.parametrize("line", ORDINARY)
def test_ordinary_code_is_left_alone(line: str):
    assert redact_text(line) == line


def test_private_keys_cut_by_the_prompt_window():
    key = (CORPUS / "tls.py").read_text().split('"""')[3]
    body = key.split("-----")[2]  # the base64 lines between the markers
    head = key[: key.index("\n", len(key) // 2) + 1]  # BEGIN and half the body
    tail = key[key.index("\n", len(key) // 2) :]  # the other half and END
    middle = "\n".join(body.strip().split("\n")[4:12]) + "\n"  # neither marker
    for cut in (head, tail, middle):
        out = redact_text(f"x = 1\n{cut}y = 2\n")
        assert "<redacted:private-key>" in out
        assert not any(line in out for line in body.split("\n") if len(line) > 20)
        assert out.startswith("x = 1\n") and out.endswith("y = 2\n")
    # A template's tokens glued to the cut: the window's first or last line shares its
    # line with <|fim_prefix|> or <|fim_suffix|> (found leaking through `tandem serve`).
    for glued in (
        f"<|fim_prefix|>{tail.lstrip(chr(10))}y = 2\n<|fim_suffix|>",
        f"<|fim_prefix|>x = 1\n{head.rstrip(chr(10))}<|fim_suffix|>y = 2",
        f"<|fim_prefix|>{middle.rstrip(chr(10))}<|fim_suffix|>y = 2",
    ):
        out = redact_text(glued)
        assert "<redacted:private-key>" in out, out
        assert not any(line in out for line in body.split("\n") if len(line) > 20), out
        assert "<|fim_prefix|>" in out and "<|fim_suffix|>" in out


def test_body_strings_only():
    body = {
        "model": "qwen",
        "max_tokens": 64,
        "stop": ["\n\n"],
        "messages": [{"role": "user", "content": 'k = "AKIAZ7QW3ERTY6UIOP2M"'}],
        "input_extra": [{"filename": "a.py", "text": "password: Zt8pQ2xL!m4"}],
    }
    out = redact_body(body)
    assert out["model"] == "qwen" and out["max_tokens"] == 64 and out["stop"] == ["\n\n"]
    assert out["messages"][0]["content"] == 'k = "<redacted:aws-access-key>"'
    assert out["input_extra"][0]["text"] == "password: <redacted:password>"
    assert body["messages"][0]["content"] == 'k = "AKIAZ7QW3ERTY6UIOP2M"'  # not changed in place


def test_placeholder_detection_and_restore():
    assert has_placeholder('key = "<redacted:api-key>"')
    assert has_placeholder("key = <REDACTED:api-key>")
    assert has_placeholder('key = "<redac')  # cut off by a stop sequence
    assert not has_placeholder("x = a < b")
    source = 'API_KEY = "Zt8pQ2xLm4Rv7Wn1Yc5"\nDB = "postgres://u:Kq9wE2rT@db/x"\n'
    answer = 'API_KEY: str = "<redacted:api-key>"  # from the vault\n'
    assert restore(answer, source) == 'API_KEY: str = "Zt8pQ2xLm4Rv7Wn1Yc5"  # from the vault\n'
    assert restore("no placeholder", source) == "no placeholder"
    two = source + 'OTHER_API_KEY = "Wn1Yc5Zt8pQ2xLm4Rv7"\n'
    assert restore(answer, two) is None  # two api keys: which one is unknown
    assert restore('t = "<redacted:token>"', source) is None  # not in the source


def _sample(files: list[Path], every: int) -> tuple[int, list[tuple[str, str]]]:
    lines, hits = 0, []
    for path in files[::every]:
        text = path.read_text(encoding="utf-8", errors="replace")
        lines += text.count("\n") + 1
        hits += [(str(path), f.value) for f in find_secrets(text)]
    return lines, hits


def test_no_redaction_in_this_repository():
    files = sorted((ROOT / "server").rglob("*.py")) + sorted((ROOT / "bench").rglob("*.py"))
    lines, hits = _sample(files, 1)
    assert lines > 5000
    assert hits == []


def test_near_zero_false_positives_on_code_we_did_not_write():
    """A fixed sample of the venv's packages; the full run is bench/redaction.py."""
    files = sorted(SITE.rglob("*.py"))
    lines, hits = _sample(files, 10)
    assert lines > 50_000
    assert len(hits) / lines * 10_000 < 0.2, hits


SECRET_REQUEST = FimRequest(
    prefix=f'import os\nAWS_KEY = "{PLANTED["settings.py"][3]}"\nclient = connect(',
    suffix=f'\nPASSWORD = "{PLANTED["settings.py"][1]}"\n',
    snippets=(Snippet("deploy.rb", (CORPUS / "deploy.rb").read_text()),),
    path="app.py",
    language="python",
    max_tokens=8,
)


@pytest.mark.parametrize("provider", ["openai", "azure", "ollama", "llamacpp"])
async def test_every_provider_sends_redacted_bodies(model_server: ModelServer, provider: str):
    endpoint = model_server.url + ("/v1" if provider == "openai" else "")
    data: dict[str, Any] = {"provider": provider, "endpoint": endpoint, "model": "m"}
    models = build_models(build_settings(flatten({"completion": data, "timeout": 5}, "test")))
    try:
        await collect(models.completion.complete(SECRET_REQUEST))
        question = (CORPUS / "main.go").read_text()
        await collect(models.chat.chat([ChatMessage("user", question)]))
        await models.completion.count_tokens((CORPUS / "config.yaml").read_text())
    finally:
        await models.aclose()
    assert len(model_server.requests) >= 2
    for rec in model_server.requests:
        assert leaked(json.dumps(rec.body)) == []
    assert "<redacted:" in json.dumps(model_server.requests[0].body)


HOSTILE = {
    "blank run": " " * 100_000 + "password",
    "long word before a scheme": "a" * 100_000 + "://x",
    "base64 line before END": "A" * 100_000 + " -----END PRIVATE KEY-----",
    "many // before _authToken": "//" * 50_000 + "_authToken=",
    "repeated names": "password=" * 20_000,
    "many markers": "-----BEGIN PRIVATE KEY----- " * 3_000,
}


@pytest.mark.parametrize("name", sorted(HOSTILE))
def test_hostile_text_stays_linear(name: str):
    """Each rule is linear in the text: 100 kB of the worst case for it takes milliseconds."""
    started = time.perf_counter()
    find_secrets(HOSTILE[name])
    assert time.perf_counter() - started < 1.0  # ~30 ms; a quadratic rule takes minutes


def test_a_key_line_glued_to_a_template_token_is_redacted():
    """A window that starts (or ends) inside a key, rendered right after ``<|fim_prefix|>``
    (or before ``<|fim_suffix|>``): that first (last) line is part of the key too."""
    from pathlib import Path

    from tandem.models.redact import redact_text

    lines = (Path(__file__).parent / "data" / "secrets" / "tls.py").read_text().split("\n")
    body = [line for line in lines if len(line) == 64 and line.isascii() and "=" not in line]
    assert len(body) > 8
    for start in range(4, 12):
        window = "\n".join(lines[start:])
        for text in (f"<|fim_prefix|>{window}", f"<fim_prefix>{window}"):
            redacted = redact_text(text)
            assert not [line for line in body if line in redacted], start
        if start >= 6:  # glued at both ends: four whole lines between (KEY_LINE_RUN)
            ends = "\n".join(lines[4 : 4 + start]) + "<|fim_suffix|><|fim_middle|>"
            redacted = redact_text("<|fim_prefix|>" + ends)
            assert not [line for line in body if line in redacted], start


def test_a_key_split_across_review_units_leaves_no_line():
    """A review unit of a few rows from inside a key, with the diff's row-number gutter:
    the run of key lines and the short padded last line go together."""
    from pathlib import Path

    from tandem.models.redact import redact_text

    lines = (Path(__file__).parent / "data" / "secrets" / "tls.py").read_text().split("\n")
    end = next(i for i, line in enumerate(lines) if line.startswith("-----END"))
    last = lines[end - 1]
    assert len(last) < 64 and last.endswith("=")  # the key's short, padded last line
    for first in range(end - 8, end - 4):
        unit = "\n".join(f"{n + 1:>5} + {lines[n]}" for n in range(first, end))
        redacted = redact_text(unit)
        assert last not in redacted and "<redacted:private-key>" in redacted, redacted
