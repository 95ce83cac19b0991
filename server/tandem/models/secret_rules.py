"""What counts as a secret: token formats, private keys, and secret-named assignments.

Known token formats come from ``detect-secrets`` plugins (their regexes only: its scan
engine costs ~0.2 ms a line and its entropy and keyword plugins flag most of ordinary
code), plus formats it lacks or has outgrown. Assignments are judged by two things at
once, a secret-like name and a secret-like value, because either alone is mostly noise
in real code (``token = next(tokens)``, ``digest = "9f86d081..."``).
"""

from __future__ import annotations

import itertools
import logging
import math
import re
import string
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Rule:
    """One regex; ``group`` is the secret inside the match (the rest stays as context)."""

    kind: str
    pattern: re.Pattern[str]
    hints: tuple[str, ...] = ()  # lowercase literals: the rule runs only if one occurs
    group: int | str = 0
    extend: str = ""  # characters a longer variant of the token may run on with
    check: Callable[[str], bool] | None = None


TOKEN = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_-"
PLACEHOLDER_WORDS = re.compile(
    r"x{4,}|\*{3,}|\.{3}|<[^>]*>|\$\{|\{\{|%\(|%s|your[_-]?|example|changeme|change[_-]me|"
    r"placeholder|dummy|redacted|sample|insert|replace|fixme|todo|secret_here|_here",
    re.IGNORECASE,
)


def entropy(value: str) -> float:
    """Shannon entropy in bits per character."""
    counts = Counter(value)
    size = len(value)
    return -sum(n / size * math.log2(n / size) for n in counts.values())


# Values that stand for a secret in docs and examples rather than being one.
PLACEHOLDER_VALUES = frozenset({
    "password", "passwd", "pass", "pwd", "secret", "token", "apikey", "api_key", "changeit",
    "username", "user", "admin", "root", "guest", "test", "none", "null", "undefined",
})  # fmt: skip


def _sequential(value: str, run: int = 6) -> bool:
    """Holds an alphabet run ("abcdef", "012345"): a character set, not a key."""
    count = 1
    for a, b in itertools.pairwise(value):
        count = count + 1 if ord(b) == ord(a) + 1 else 1
        if count >= run:
            return True
    return False


def plausible(value: str) -> bool:
    """Not a placeholder, a template, an alphabet or a run of one character."""
    if len(value) < 6 or value.lower() in PLACEHOLDER_VALUES or PLACEHOLDER_WORDS.search(value):
        return False
    return entropy(value) >= 2.5 and not _sequential(value)


_WORDLIKE = re.compile(r"[A-Za-z_][A-Za-z_.\-/]*")  # names, dotted paths, kebab-case: no digits
_CLASSES = (str.islower, str.isupper, str.isdigit)
# Regular expressions held in secret-named constants (lexers, detectors like this one).
REGEX_LIKE = re.compile(r"\\[wdsWDSbBvnrt.]|\[[^\]]+\][*+?{]|\(\?[:=!<P]|\{\d+(?:,\d*)?\}")


def _random_letters(value: str) -> bool:
    """Letters only, yet no words: a generated password ("qwhdkxzmpleorwiv"), not a name.

    Random letters have about one vowel in five, English words about two in five.
    """
    if len(value) < 12 or not value.isalpha() or not plausible(value):
        return False
    if not (value.islower() or value.isupper()):
        return False  # camelCase: an identifier
    lowered = value.lower()
    if any(word in lowered for word in ("pass", "secret", "token", "key", "word")):
        return False  # "mysecretpassword" stands for a password
    vowels = sum(c in "aeiou" for c in lowered)
    return vowels / len(value) < 0.3 and entropy(value) >= 3.3


def secret_value(value: str) -> bool:
    """A value that looks like a password or key rather than a name, a path or a template."""
    if not 8 <= len(value) <= 1000 or any(c.isspace() for c in value):
        return False
    if value.startswith(("$", "/", "./", "~/", "http://", "https://", "file:", "%")):
        return False
    core = value.strip(string.punctuation)
    if _WORDLIKE.fullmatch(core):  # a name, or a marker like "[PREFIX]" or "<|endoftext|>"
        return _random_letters(value)
    if not plausible(value) or REGEX_LIKE.search(value):
        return False
    kinds = sum(any(test(c) for c in value) for test in _CLASSES)
    symbols = any(not c.isalnum() for c in value)
    if kinds + symbols < 2:
        return False
    if value.replace("_", "").replace(".", "").replace("-", "").isalnum() and kinds < 3:
        # letters and digits only, one case: a hex digest is a key, "utf8mb4" is not
        return len(value) >= 16 and entropy(value) >= 3.0
    return entropy(value) >= 2.8


# ---- secret-like names ----------------------------------------------------------------------

_WORDS = re.compile(r"[A-Z]+(?![a-z])|[A-Z]?[a-z]+|\d+")
SECRET_WORDS = {
    "password": "password", "passwd": "password", "passphrase": "password", "pwd": "password",
    "pass": "password", "secret": "secret", "secrets": "secret", "token": "token",
    "credential": "credential", "credentials": "credential", "apikey": "api-key",
    "accesskey": "api-key", "secretkey": "secret", "privatekey": "secret", "authkey": "api-key",
    "connectionstring": "connection-string", "connstr": "connection-string",
}  # fmt: skip
# Endings of one-word names: PGPASSWORD, authtoken, clientsecret.
SECRET_SUFFIXES = ("password", "passwd", "secret", "token", "apikey", "secretkey", "accesskey")
KEY_QUALIFIERS = frozenset({
    "api", "access", "secret", "private", "auth", "account", "signing", "encryption", "master",
    "client", "app", "consumer", "service", "subscription", "storage", "license", "shared",
    "webhook", "hmac", "encrypt", "sas", "admin", "deploy", "ssh",
})  # fmt: skip


def name_kind(name: str) -> str | None:
    """The placeholder kind for a variable or key name that holds a secret, else None."""
    words = [w.lower() for w in _WORDS.findall(name.rsplit(".", 1)[-1].replace("-", "_"))]
    if not words:
        return None
    last = words[-1]
    if "public" in words:
        return None  # a public key (token) is not a secret
    if "aws" in words and "secret" in words:
        return "aws-secret-key"
    if last in SECRET_WORDS:
        return SECRET_WORDS[last]
    if len(words) >= 2 and last == "key" and words[-2] in KEY_QUALIFIERS:
        return "secret" if words[-2] in ("secret", "private", "signing", "master") else "api-key"
    if len(words) >= 3 and words[-3:] == ["private", "key", "id"]:
        return "secret"
    if len(words) >= 2 and words[-2:] == ["connection", "string"]:
        return "connection-string"
    joined = "".join(words)
    for suffix in SECRET_SUFFIXES:
        if joined.endswith(suffix) and len(joined) > len(suffix):
            return SECRET_WORDS.get(suffix, "secret")
    return None


# A name, an optional closing quote/bracket and type annotation, an operator, then a quoted
# value (possibly unterminated at the end of a line).
_NAME = r"(?<![A-Za-z0-9_.\-])(?P<name>[A-Za-z_][A-Za-z0-9_.\-]*)"
_ANNOTATION = r"(?:\s*:\s*[A-Za-z_][\w.\[\]|, ]{0,40}?(?=\s*=))?"
ASSIGNMENT = re.compile(
    _NAME + r"""["'\]]?""" + _ANNOTATION + r"""\s*(?P<op>:=|=>|=|:|,)\s*[@rbuRB]{0,2}"""
    r"""(?P<q>["'`])(?P<value>(?:\\.|(?!(?P=q))[^\\\n]){1,1000})(?:(?P=q)|$)""",
    re.MULTILINE,
)
# What may stand before a bare value's name on its line: indentation, a line-number gutter
# or a diff marker (the reviewer's "  12 + ", a diff's "+"), a comment (another file's lines
# quoted as comments), "export", a YAML "- ". No two runs of blanks may touch: that would
# backtrack quadratically over a long blank run.
LINE_PREFIX = (
    r"[ \t]*(?:\d+[ \t]*[|:+\-][ \t]*|[+\-][ \t]*)?(?:(?:#|//|--|;|\*)[ \t]*)?"
    r"(?:(?:export|set)[ \t]+|-[ \t]+)?"
)
# A bare value (.env, INI, YAML) counts only at the start of a line: after code it is an
# expression.
BARE_ASSIGNMENT = re.compile(
    "^" + LINE_PREFIX + r"""["']?(?P<name>[A-Za-z_][A-Za-z0-9_.\-]*)["']?[ \t]*(?P<op>[=:])"""
    r"""[ \t]*(?P<value>[^\s"'`,;#()\[\]{}<>]{8,256})[ \t]*(?:[#;].*)?$""",
    re.MULTILINE,
)
NAME_HINTS = ("pass", "pwd", "secret", "token", "key", "credential", "conn")


def _quoted_name(text: str, start: int, end: int) -> bool:
    return start > 0 and end < len(text) and text[start - 1] in "\"'" and text[end] in "\"'"


def assignment_spans(text: str) -> list[tuple[int, int, str]]:
    """(start, end, kind) of secret values assigned to secret-like names.

    Both patterns are linear in the text: the bare one is anchored at line starts.
    """
    out = []
    for pattern in (ASSIGNMENT, BARE_ASSIGNMENT):
        for match in pattern.finditer(text):
            kind = name_kind(match["name"])
            if kind is None:
                continue
            start = match.start("name")
            if text[max(0, start - 2) : start] == "::":
                continue  # AWS::IAM::AccessKey, Module::SECRET: a scoped name
            if match["op"] == "," and not _quoted_name(text, start, match.end("name")):
                continue  # f(token, "...") passes a value on; ("token", "...") pairs one
            if secret_value(match["value"]):
                out.append((match.start("value"), match.end("value"), kind))
    return out


# ---- our own token formats ------------------------------------------------------------------


def _url_password(value: str) -> bool:
    """Short passwords count in a URL (the format says what they are), placeholders do not."""
    lowered = value.lower()
    if lowered in PLACEHOLDER_VALUES or PLACEHOLDER_WORDS.search(value):
        return False
    return len(value) >= 3 and len(set(value)) > 1


def _not_regex(value: str) -> bool:
    return plausible(value) and not REGEX_LIKE.search(value)


def _has_digit(value: str) -> bool:
    return plausible(value) and any(c.isdigit() for c in value)


GITLAB_HINTS = (
    "glpat-",
    "gldt-",
    "glft-",
    "glsoat-",
    "glrt-",
    "glcbt-",
    "glimt-",
    "glptt-",
    "gloas-",
)
_AWS_ID = r"(?<![A-Z0-9])(?:AKIA|ASIA|ABIA|ACCA|A3T[A-Z0-9])[A-Z0-9]{16}(?![A-Z0-9])"
_OPENAI = r"(?<![\w-])sk-(?:proj-|svcacct-|admin-|ant-[a-z0-9]+-)?[A-Za-z0-9_\-]{32,}"
_GITHUB = r"(?<![\w])(?:github_pat_[A-Za-z0-9_]{60,}|gh[pousr]_[A-Za-z0-9]{30,})"
_GITLAB = r"(?<![\w-])gl(?:pat|dt|ft|soat|rt|cbt|imt|ptt|oas)-[A-Za-z0-9_\-]{20,}"
_SLACK = r"(?<![\w-])(?:xox[abposre]-[A-Za-z0-9\-]{10,}|xapp-\d-[A-Za-z0-9\-]{10,})"
_STRIPE = r"(?<![\w])(?:(?:sk|rk)_(?:live|test)_[0-9A-Za-z]{16,}|whsec_[0-9A-Za-z]{24,})"
_GCP_KEY = r"(?<![\w-])AIza[0-9A-Za-z_\-]{35}(?![\w-])"
_AZURE_KEY = r"(?i)(?<![\w])(?:AccountKey|SharedAccessKey)\s*=\s*(?P<v>[A-Za-z0-9+/]{20,}={0,2})"
_AZURE_SAS = r"[?&;]sig=(?P<v>[A-Za-z0-9%+/=]{20,})"
# Password=...; in ODBC and ADO.NET connection strings: a ";" on one side or the other.
_CONN_PASSWORD_AFTER = r"(?i)(?<=;)\s*(?:Password|Pwd)\s*=\s*(?P<v>[^;\"'\s]{4,})"
_CONN_PASSWORD_BEFORE = r"(?i)(?<![\w])(?:Password|Pwd)\s*=\s*(?P<v>[^;\"'\s=]{4,})(?=;)"
_URL_PASSWORD = (
    r"(?<![a-z0-9+.\-])[a-z][a-z0-9+.\-]{0,30}://"  # a scheme, bounded: no quadratic backtracking
    r"[^\s:/@\"'`<>{}$]*:(?P<v>[^\s:/@\"'`<>{}$]+)@[\w\[]"
)
_QUERY_SECRET = (
    r"(?i)[?&;](?:password|passwd|pwd|pass|secret|client_secret|token|access_token|api_?key)"
    r"=(?P<v>[^&\s\"'#;<>]{4,})"
)
# .npmrc's //registry/:_authToken=... (detect-secrets' pattern is quadratic on long lines)
_NPM_TOKEN = r"(?i):_authToken=[ \t]*(?P<v>[^\s\"'$]{8,})"
_AUTH_HEADER = r"(?i)\b(?:bearer|basic|token)\s+(?P<v>[A-Za-z0-9_\-.~+/]{16,}=*)"

OWN_RULES: tuple[Rule, ...] = (
    Rule("aws-access-key", re.compile(_AWS_ID), ("akia", "asia", "abia", "acca", "a3t")),
    Rule("openai-key", re.compile(_OPENAI), ("sk-",), check=_has_digit),
    Rule("github-token", re.compile(_GITHUB), ("github_pat_", "ghp_", "gho_", "ghu_", "ghs_")),
    Rule("gitlab-token", re.compile(_GITLAB), GITLAB_HINTS),
    Rule("slack-token", re.compile(_SLACK), ("xox", "xapp-")),
    Rule("stripe-key", re.compile(_STRIPE), ("k_live_", "k_test_", "whsec_")),
    Rule("gcp-api-key", re.compile(_GCP_KEY), ("aiza",)),
    Rule("azure-storage-key", re.compile(_AZURE_KEY), ("accountkey", "sharedaccesskey"), "v"),
    Rule("azure-sas-signature", re.compile(_AZURE_SAS), ("sig=",), "v"),
    Rule("password", re.compile(_CONN_PASSWORD_AFTER), ("password", "pwd"), "v", "", plausible),
    Rule("password", re.compile(_CONN_PASSWORD_BEFORE), ("password", "pwd"), "v", "", plausible),
    Rule("url-password", re.compile(_URL_PASSWORD), ("://",), "v", "", _url_password),
    Rule("url-secret", re.compile(_QUERY_SECRET), ("=",), "v", "", _url_password),
    Rule("npm-token", re.compile(_NPM_TOKEN), ("_authtoken",), "v", "", _not_regex),
    Rule("token", re.compile(_AUTH_HEADER), ("bearer", "basic", "token"), "v", "", secret_value),
)


# ---- detect-secrets' regexes ----------------------------------------------------------------

# (plugin module, class, kind, hints). Not used: Azure storage keys and basic-auth URLs
# (ours keep the name before the key, and skip placeholders), npm (quadratic on a long
# line), private keys (it finds the BEGIN line, not the key), keyword and entropy (they
# flag most of ordinary code), IP addresses, and the vendor plugins that need a keyword
# nearby (slowest by far, and covered by the assignment rule).
LIBRARY_PLUGINS = (
    ("aws", "AWSKeyDetector", "aws-access-key", ("akia", "asia", "abia", "acca", "a3t", "aws")),
    ("github_token", "GitHubTokenDetector", "github-token", ("gh",)),
    ("gitlab_token", "GitLabTokenDetector", "gitlab-token", (*GITLAB_HINTS, "gr1348941")),
    ("jwt", "JwtTokenDetector", "jwt", ("eyj",)),
    ("openai", "OpenAIDetector", "openai-key", ("t3blbkfj",)),
    ("slack", "SlackDetector", "slack-token", ("xox", "hooks.slack.com")),
    ("stripe", "StripeDetector", "stripe-key", ("k_live_",)),
    ("pypi_token", "PypiTokenDetector", "pypi-token", ("pypi-",)),
    ("sendgrid", "SendGridDetector", "sendgrid-key", ("sg.",)),
    ("discord", "DiscordBotTokenDetector", "discord-token", ()),
    ("telegram_token", "TelegramBotTokenDetector", "telegram-token", ()),
    ("mailchimp", "MailchimpDetector", "mailchimp-key", ("-us",)),
    ("square_oauth", "SquareOAuthDetector", "square-token", ("sq0",)),
    ("twilio", "TwilioKeyDetector", "twilio-key", ()),
)


def library_rules() -> list[Rule]:
    """Rules from detect-secrets' plugins; none (with a warning) if it cannot be imported."""
    import importlib

    rules: list[Rule] = []
    for module, name, kind, hints in LIBRARY_PLUGINS:
        try:
            plugin: Any = getattr(importlib.import_module(f"detect_secrets.plugins.{module}"), name)
        except (ImportError, AttributeError) as exc:
            log.warning("detect-secrets plugin %s unavailable (%s); using our rules", name, exc)
            continue
        check = plausible
        if hasattr(plugin, "is_formally_valid"):
            valid = plugin.is_formally_valid
            check = lambda v, valid=valid: plausible(v) and valid(v)  # noqa: E731
        for pattern in plugin.denylist:
            group = 1 if pattern.groups and module == "aws" else 0
            # AWS's second pattern: 40 characters in quotes, with "aws" and "key" before
            found = "aws-secret-key" if pattern.groups and module == "aws" else kind
            extend = TOKEN + "./+=" if module == "jwt" else TOKEN
            rules.append(Rule(found, pattern, hints, group, extend, check))
    return rules
