"""The kinds of secret and their patterns: the regexes, the hints every hit contains, the checks
that tell a secret from code or prose, and the keys whose whole value is a secret."""

from __future__ import annotations

import math
import re
from collections import Counter
from collections.abc import Iterator

from rollcraft.redact._base import Starts as Starts
from rollcraft.redact._base import Validator as Validator
from rollcraft.redact._base import _Pattern, _token
from rollcraft.redact._providers import _CARD_NUMBER, _PII, _PROVIDERS


def placeholder(kind: str) -> str:
    """The text that stands in for a secret of ``kind``: ``<REDACTED:kind>``."""
    return f"<REDACTED:{kind}>"


def _mixed(value: str) -> bool:
    """A token has at least one digit and one letter (real keys do; English words do not)."""
    return any(c.isdigit() for c in value) and any(c.isalpha() for c in value)


def _entropy(value: str) -> float:
    counts = Counter(value)
    return -sum(n / len(value) * math.log2(n / len(value)) for n in counts.values())


_PLACEHOLDER_WORDS = (
    "your",
    "xxxx",
    "example",
    "placeholder",
    "changeme",
    "redacted",
    "dummy",
    "<",
    "$",
    "{",
)


def _assigned_secret(value: str) -> bool:
    """A value assigned to ``password=``/``api_key=``... that looks like a real secret, not a name."""
    lower = value.lower()
    if any(word in lower for word in _PLACEHOLDER_WORDS) or value.startswith(("/", "~/", "./")):
        return False  # a placeholder, or a path (``PWD=/workspace/repo2``)
    return _mixed(value) and _entropy(value) >= 3.0


_NOT_TLD = (
    r"(?!(?:png|jpe?g|gif|svg|webp|ico|js|ts|py|css|html?|json|md|txt|pdf|service|socket|target|timer)\b)"
)
_NOT_EMAIL_DOMAIN = r"(?!(?:openssh\.com|libssh\.org)\b)"  # SSH algorithm names (RFC 4251 4.2)
_ASSIGNED = (
    r"(?i:(?:(?<![A-Za-z0-9])|(?<=\\[nrt]))(?:password|passwd|pwd|api[_\-]?key|secret[_\-]?key|access[_\-]?token|auth[_\-]?token"
    r"|client[_\-]?secret|private[_\-]?token)\b)(?:\\?[\"'])?\s*[:=]\s*(?:\\?[\"'])?"
    r"([A-Za-z0-9_\-+/=!@#$%^&*~]{8,128})(?![A-Za-z0-9_\-+/=!@#$%^&*~])"
)

# The characters that make ``str.lower`` and a ``(?i)`` regex disagree on where an ASCII word is:
# U+0130 lower-cases to two characters; U+0131 and U+017F match "i" and "s" but lower-case to
# themselves (U+212A, the Kelvin sign, lower-cases to "k", as it matches).
_FOLDS_ODDLY = ("\u0130", "\u0131", "\u017f")


def _word_starts(*roots: str) -> Starts:
    """Where one of ``roots`` begins (case-insensitive): for a regex whose match begins with one."""

    def starts(text: str, lower: str) -> list[int] | None:
        if not text.isascii() and any(c in text for c in _FOLDS_ODDLY):
            return None
        found: set[int] = set()
        for root in roots:
            pos = lower.find(root)
            while pos != -1:
                found.add(pos)
                pos = lower.find(root, pos + 1)
        return sorted(found)

    return starts


_LOCAL_PART_TAIL = re.compile(r"[A-Za-z0-9._%+\-]{1,64}\Z")


def _email_starts(text: str, lower: str) -> Iterator[int]:
    """For each ``@``, the start of the run of local-part characters before it (at most 64 back):
    the one place an address through that ``@`` can start, given the lookbehind."""
    at = text.find("@")
    while at != -1:
        local = _LOCAL_PART_TAIL.search(text, max(0, at - 64), at)
        if local is not None:
            yield local.start()
        at = text.find("@", at + 1)


def _url_starts(text: str, lower: str) -> Iterator[int]:
    """Every place a scheme of 2-16 characters can start before a ``://``."""
    low = 0
    sep = text.find("://")
    while sep != -1:
        yield from range(max(low, sep - 16), sep - 1)
        low = sep + 1
        sep = text.find("://", sep + 3)


# Passwords: a value assigned to a name that ends in "password" or "passwd" (``DB_PASSWORD``,
# ``PGPASSWORD``, ``db.password``, ``--password``). Human-chosen, so no entropy test: the context
# (quoted, an environment variable, a config line) tells a password from code (see _password_hit).
_PW_WORD = r"[Pp][Aa][Ss][Ss][Ww](?:[Oo][Rr])?[Dd]"
_PW_KEY = (
    r"(?<![A-Za-z0-9_.\-])(?P<key>[A-Za-z0-9_.\-]{0,40}?" + _PW_WORD + r")(?![A-Za-z0-9_])"
    r"(?:\\?[\"'])?[ \t]*(?P<sep>[:=])(?![=~])[ \t]*"
)
_PW_UNQUOTED = r"[^\s\"'\\,;&|(){}\[\]<>`]"
#: ``KEY=value``, ``KEY: value``, ``KEY="two words"`` (also with ``\"`` quotes, in JSON text).
_PASSWORD_INLINE = re.compile(
    _PW_KEY + r"(?P<open>\\?[\"'])?"
    r"(?P<v>(?(open)[^\"'\\\n\r]{1,256}|" + _PW_UNQUOTED + r"{1,256}))"
    r"(?(open)(?P=open)|(?!" + _PW_UNQUOTED + r"))"
)
#: A config line ``password: some words`` (YAML, INI): the value runs to the end of the line (a
#: newline, ``\n`` in JSON text, the string's end quote, or a `` #`` comment).
_PASSWORD_LINE = re.compile(
    _PW_KEY + r"(?P<v>[^\s\"'\\#|>&*!%@`{\[<][^\n\r\"\\#]{0,255}?)[ \t]*"
    r"(?=\Z|[\n\r]|\\[nrt\"]|\"|[ \t]#)"
)
_PW_WORD_AT = re.compile(_PW_WORD)
_PW_KEY_TAIL = re.compile(r"[A-Za-z0-9_.\-]{0,40}\Z")
_LINE_START = re.compile(r"(?:\A|[\n\r]|\\[nr])[ \t]*(?:-[ \t]+)?\Z")
_PYTHON_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*(?:\.[A-Za-z_][A-Za-z0-9_]*)*")
_NOT_PASSWORDS = frozenset(
    "none null nil true false yes no required optional string str bytes int integer text secretstr "
    "any undefined empty hidden masked unset n/a tbd todo prompt input".split()
)


def _password_starts(text: str, lower: str) -> Iterator[int]:
    """For each ``password``/``passwd``, the start of the run of name characters before it (at
    most 40 back): the one place a key ending there can start, given the lookbehind."""
    last = -1
    for word in _PW_WORD_AT.finditer(text):
        at = word.start()
        tail = _PW_KEY_TAIL.search(text, max(0, at - 40), at)
        start = tail.start() if tail is not None else at
        if start > last:
            last = start
            yield start


def _password_value(value: str) -> bool:
    """Could be a password: long enough, not a placeholder, a type name, a mask or a sentence."""
    lower = value.lower()
    if len(value) < 6 or lower in _NOT_PASSWORDS or any(w in lower for w in _PLACEHOLDER_WORDS):
        return False
    return value.strip("*•x. ") != "" and not value.endswith(".") and not value[0].isspace()


def _names_a_password(value: str) -> bool:
    """A code name, not a value: ``self.password``, ``db_password``, ``settings.DB``."""
    if _PYTHON_NAME.fullmatch(value) is None:
        return False
    return "." in value or ("passw" in value.lower() and not _mixed(value))


def _password_hit(match: re.Match[str]) -> bool:
    """Whether an inline assignment's value is a password, not code or prose."""
    value, key = match.group("v"), match.group("key")
    if not _password_value(value):
        return False
    if match.group("open"):  # a string literal; not the end of one (``input("Password: ")``)
        return value[0] not in "),;]}+."
    if _names_a_password(value) or match.string[match.end() : match.end() + 1] in ("(", "["):
        return False
    spaced = match.group("sep") == ":" or match.start("v") - match.end("key") > 1
    if not spaced and key.isupper():  # an environment variable: PGPASSWORD=..., -e DB_PASSWORD=...
        return True
    if not spaced and (not value.isidentifier() or _mixed(value)):  # password=..., --password=...
        return True
    return _mixed(value) or any(c in "!@#%^&*~+?" for c in value)


def _password_line(match: re.Match[str]) -> bool:
    """Whether a config line ``password: value`` (at a line's start) holds a password."""
    text, start, value = match.string, match.start(), match.group("v")
    if _LINE_START.search(text, max(0, start - 64), start) is None or not _password_value(value):
        return False
    if any(c in value for c in "()=[]{};") or _names_a_password(value):
        return False  # code: password = get_password(), password: str = Field(...)
    if " " not in value:
        return match.group("sep") == ":" or not value.isidentifier() or _mixed(value)
    # Words after "passwd:" are the passwd command's messages; a capitalised "Password:" a label.
    key = match.group("key")
    if match.group("sep") != ":" or key.lower().endswith("passwd"):
        return False
    return key.isupper() or not key[:1].isupper()


# Order matters: specific formats first, so a key inside a Bearer header is named by its provider.
_PATTERNS: tuple[_Pattern, ...] = (
    _Pattern(
        "private_key",
        ("private key",),
        re.compile(
            r"-----BEGIN (?:[A-Z0-9]+ )*PRIVATE KEY(?: BLOCK)?-----"
            r"[\s\S]*?(?:-----END (?:[A-Z0-9]+ )*PRIVATE KEY(?: BLOCK)?-----|$)"
        ),
    ),
    _Pattern(
        "aws_access_key",
        ("akia", "asia", "abia", "acca", "agpa", "aida", "aroa", "anpa", "aipa"),
        re.compile(r"A(?:(?<!\wA)|(?<=\\[nrt]A))(?:KIA|SIA|BIA|CCA|GPA|IDA|ROA|NPA|IPA)[A-Z0-9]{16}\b"),
        gate=re.compile(rb"A(?:KIA|SIA|BIA|CCA|GPA|IDA|ROA|NPA|IPA)"),
    ),
    _Pattern(
        "aws_secret_key",
        ("aws", "secret"),
        re.compile(
            r"(?i:aws[\w.\-]{0,20}?(?:secret|sk)[\w.\-]{0,20}?|secret[_\-]?access[_\-]?key)"
            r"(?:\\?[\"'])?\s*[:=]\s*(?:\\?[\"'])?([A-Za-z0-9/+]{40})(?![A-Za-z0-9/+=])"
        ),
        group=1,
        valid=_mixed,
        starts=_word_starts("aws", "secret"),
    ),
    _Pattern(
        "aws_session_token",
        ("sessiontoken", "session_token", "session-token"),
        re.compile(
            r"(?i:session[_\-]?token)(?:\\?[\"'])?\s*[:=]\s*(?:\\?[\"'])?"
            r"([A-Za-z0-9/+]{16,}=*)(?![A-Za-z0-9/+=])"
        ),
        group=1,
        valid=_mixed,
        starts=_word_starts("session"),
    ),
    _Pattern(
        "github_token",
        ("ghp_", "gho_", "ghu_", "ghs_", "ghr_", "github_pat_"),
        re.compile(_token("g", r"(?:h[pousr]_[A-Za-z0-9]{36,255}|ithub_pat_[A-Za-z0-9_]{40,255})")),
        gate=re.compile(rb"g(?:h[pousr]_|ithub_pat_)"),
    ),
    _Pattern(
        "anthropic_api_key",
        ("sk-ant-",),
        re.compile(_token("s", r"k-ant-[A-Za-z0-9_\-]{20,}")),
    ),
    _Pattern(
        "openai_api_key",
        ("sk-",),
        re.compile(_token("s", r"k-(?:proj-|svcacct-|admin-)?[A-Za-z0-9_\-]{20,}")),
        valid=_mixed,
    ),
    _Pattern("slack_token", ("xox",), re.compile(_token("x", r"ox[abposre]-[A-Za-z0-9\-]{10,}"))),
    _Pattern(
        "slack_webhook",
        ("hooks.slack.com",),
        re.compile(r"https://hooks\.slack\.com/(?:services|workflows|triggers)/[A-Za-z0-9/_\-]{20,}"),
    ),
    _Pattern("google_api_key", ("aiza",), re.compile(_token("A", r"Iza[0-9A-Za-z_\-]{35}"))),
    _Pattern(
        "stripe_key",
        ("_live_", "_test_"),
        re.compile(_token("[sr]", r"k_(?:live|test)_[0-9A-Za-z]{16,}")),
    ),
    _Pattern("huggingface_token", ("hf_",), re.compile(_token("h", r"f_[A-Za-z0-9]{30,}"))),
    _Pattern("nvidia_api_key", ("nvapi-",), re.compile(_token("n", r"vapi-[A-Za-z0-9_\-]{40,}"))),
    *_PROVIDERS,
    _Pattern(
        "jwt",
        ("eyj",),
        re.compile(_token("e", r"yJ[A-Za-z0-9_\-]{8,}\.eyJ[A-Za-z0-9_\-]{8,}\.[A-Za-z0-9_\-]*")),
    ),
    _Pattern(
        "bearer_token",
        ("bearer",),
        re.compile(r"\b[Bb]earer\s+([A-Za-z0-9\-._~+/]{16,}=*)(?![A-Za-z0-9\-._~+/=])"),
        group=1,
        valid=_mixed,
    ),
    _Pattern(
        "url_password",
        ("://",),
        re.compile(r"\b[A-Za-z][A-Za-z0-9+.\-]{1,15}://[^\s:/@\"'\\<>]+:([^\s@/\"'\\<>]+)@[A-Za-z0-9.\-\[]"),
        group=1,
        starts=_url_starts,
    ),
    _Pattern("password", ("passw",), _PASSWORD_LINE, "v", check=_password_line, starts=_password_starts),
    _Pattern("password", ("passw",), _PASSWORD_INLINE, "v", check=_password_hit, starts=_password_starts),
    _Pattern(
        "secret_assignment",
        ("passw", "pwd", "apikey", "api_key", "api-key", "secret", "access", "auth", "private"),
        re.compile(_ASSIGNED),
        group=1,
        valid=_assigned_secret,
        starts=_word_starts("passw", "pwd", "api", "secret", "access", "auth", "client", "private"),
    ),
    _Pattern(
        "email",
        ("@",),
        re.compile(
            # not after "//": the user of a URL (https://user@example.com:8443/), not an address
            r"(?<![A-Za-z0-9._%+\-])(?<!//)(?!git@)[A-Za-z0-9][A-Za-z0-9._%+\-]{0,63}@"
            + _NOT_EMAIL_DOMAIN
            + r"(?:[A-Za-z0-9](?:[A-Za-z0-9\-]{0,61}[A-Za-z0-9])?\.)+"
            + _NOT_TLD
            + r"[A-Za-z]{2,24}\b"
        ),
        starts=_email_starts,
    ),
    _CARD_NUMBER,
    *_PII,
)

#: The personal data kinds looked for only when asked for (``Redactor(pii=...)``): common in
#: rollouts for good reasons (service addresses, example numbers in tasks), so off by default.
PII_KINDS: tuple[str, ...] = tuple(dict.fromkeys(p.kind for p in _PII))
#: Every kind of secret the redactor looks for by default, in the order its patterns run.
SECRET_KINDS: tuple[str, ...] = tuple(
    k for k in dict.fromkeys(p.kind for p in _PATTERNS) if k not in PII_KINDS
)


# A key whose whole string value is a secret when it looks like one: {"api_key": "x9..."}.
_SECRET_KEY = re.compile(
    r"(?i)[\w\-.]*passw(?:or)?d|(?:[\w\-]*[_\-])?(?:pwd|api[_\-]?key|secret(?:[_\-]?key)?|access[_\-]?token"
    r"|auth[_\-]?token|client[_\-]?secret|private[_\-]?token|secret[_\-]?access[_\-]?key|session[_\-]?token)"
)


def _key_kind(key: str) -> str:
    """The kind of secret a secret key's value is (the key matches :data:`_SECRET_KEY`)."""
    lower = key.lower()
    if "passw" in lower:
        return "password"
    return "aws_secret_key" if _AWS_SECRET_KEY.search(lower) else "secret_assignment"


_AWS_SECRET_KEY = re.compile(r"secret[_\-]?access[_\-]?key\Z")
#: Whether a whole value under a key of each kind is a secret.
_KEYED: dict[str, Validator] = {
    # human-chosen: no entropy test (see _password_value), but not a code name or a URL
    "password": lambda v: _password_value(v) and not _names_a_password(v) and "://" not in v,
    "aws_secret_key": lambda v: re.fullmatch(r"[A-Za-z0-9/+]{40}", v) is not None and _mixed(v),
    "secret_assignment": lambda v: len(v) >= 8 and _assigned_secret(v),
}


_KEY_HINTS = (b"passw", b"pwd", b"key", b"secret", b"token")
# A hint worth searching only where another is: no Slack webhook without "://".
_NEEDS = {b"hooks.slack.com": b"://"}
# Hints no pattern has, scanned first so that the hints that contain them are scanned only where
# they are (one scan for "session" instead of three for the ways to write "session token").
_PREFILTERS = (b"session",)
