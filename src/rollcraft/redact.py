"""Find secrets and personal data in rollout lines and replace them with typed placeholders.

Every string *value* of a record (message text, tool-call arguments, tool results, reasoning,
metadata; keys are field names and are left alone) is scanned with documented patterns, one per
kind (see :data:`SECRET_KINDS`). Each hit becomes ``<REDACTED:kind>``; only the JSON string
tokens that held a secret are rewritten, every other byte of the line stays as it was, and a
line with nothing to redact is returned unchanged (byte-identical).

Why patterns and not ``detect-secrets``: it reports values per line, not spans inside a string;
it knows none of the Anthropic, Hugging Face, NVIDIA or email formats; and its entropy and
keyword plugins fire on hashes, UUIDs and code, which rollouts are full of.

>>> redactor = Redactor()
>>> redactor.redact_text("key AKIAIOSFODNN7EXAMPLE, mail bob@corp.io")
('key <REDACTED:aws_access_key>, mail <REDACTED:email>', Counter({'aws_access_key': 1, 'email': 1}))
"""

from __future__ import annotations

import dataclasses
import functools
import math
import re
from collections import Counter
from collections.abc import Callable, Container, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import ClassVar, Literal, Protocol

import orjson

from rollcraft._errors import ConfigError
from rollcraft._io import RawLine
from rollcraft._read import ReadOptions, parse_line
from rollcraft._records import Quarantined, Rollout

__all__ = [
    "SECRET_KINDS",
    "Allowlist",
    "OnSecret",
    "RedactSecrets",
    "RedactionReport",
    "RedactionResult",
    "Redactor",
    "load_allowlist",
    "placeholder",
    "redacted_reject",
]

OnSecret = Literal["replace", "drop"]

Validator = Callable[[str], bool]


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


#: The positions in a text, in increasing order, where a pattern's match may start: a superset
#: of the true starts, so that matching at each (see :func:`_sub`) finds what the pattern's own
#: ``sub`` finds, without running the regex at every position of a long text. None when it
#: cannot tell for this text. Called with the text and the text lower-cased (computed once).
Starts = Callable[[str, str], Iterable[int] | None]


@dataclass(frozen=True, slots=True)
class _Pattern:
    kind: str
    hints: tuple[str, ...]  # lower-case substrings one of which every hit contains (a fast first look)
    regex: re.Pattern[str]
    group: int | str = 0
    valid: Validator | None = None
    #: Like ``valid``, for a hit that depends on its context (the whole match and the text around).
    check: Callable[[re.Match[str]], bool] | None = None
    #: A case-sensitive search on the line that every hit's line passes: one scan where the hints
    #: would take one each (a line is searched for the hints only when it passes).
    gate: re.Pattern[bytes] | None = None
    starts: Starts | None = None
    bhints: tuple[bytes, ...] = field(init=False, repr=False, default=())

    def __post_init__(self) -> None:
        object.__setattr__(self, "bhints", tuple(h.encode() for h in self.hints))


_TOKEN_END = r"(?![A-Za-z0-9_\-])"
_TOKEN_START = r"(?<![A-Za-z0-9_\-])"
_NOT_TLD = (
    r"(?!(?:png|jpe?g|gif|svg|webp|ico|js|ts|py|css|html?|json|md|txt|pdf|service|socket|target|timer)\b)"
)
_NOT_EMAIL_DOMAIN = r"(?!(?:openssh\.com|libssh\.org)\b)"  # SSH algorithm names (RFC 4251 4.2)
_ASSIGNED = (
    r"(?i:(?<![A-Za-z0-9])(?:password|passwd|pwd|api[_\-]?key|secret[_\-]?key|access[_\-]?token|auth[_\-]?token"
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
        re.compile(r"\b(?:AKIA|ASIA|ABIA|ACCA|AGPA|AIDA|AROA|ANPA|AIPA)[A-Z0-9]{16}\b"),
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
        re.compile(
            _TOKEN_START + r"(?:gh[pousr]_[A-Za-z0-9]{36,255}|github_pat_[A-Za-z0-9_]{40,255})" + _TOKEN_END
        ),
        gate=re.compile(rb"g(?:h[pousr]_|ithub_pat_)"),
    ),
    _Pattern(
        "anthropic_api_key",
        ("sk-ant-",),
        re.compile(_TOKEN_START + r"sk-ant-[A-Za-z0-9_\-]{20,}" + _TOKEN_END),
    ),
    _Pattern(
        "openai_api_key",
        ("sk-",),
        re.compile(_TOKEN_START + r"sk-(?:proj-|svcacct-|admin-)?[A-Za-z0-9_\-]{20,}" + _TOKEN_END),
        valid=_mixed,
    ),
    _Pattern(
        "slack_token", ("xox",), re.compile(_TOKEN_START + r"xox[abposre]-[A-Za-z0-9\-]{10,}" + _TOKEN_END)
    ),
    _Pattern(
        "slack_webhook",
        ("hooks.slack.com",),
        re.compile(r"https://hooks\.slack\.com/(?:services|workflows|triggers)/[A-Za-z0-9/_\-]{20,}"),
    ),
    _Pattern("google_api_key", ("aiza",), re.compile(_TOKEN_START + r"AIza[0-9A-Za-z_\-]{35}" + _TOKEN_END)),
    _Pattern(
        "stripe_key",
        ("_live_", "_test_"),
        re.compile(_TOKEN_START + r"(?:sk|rk)_(?:live|test)_[0-9A-Za-z]{16,}" + _TOKEN_END),
    ),
    _Pattern("huggingface_token", ("hf_",), re.compile(_TOKEN_START + r"hf_[A-Za-z0-9]{30,}" + _TOKEN_END)),
    _Pattern(
        "nvidia_api_key", ("nvapi-",), re.compile(_TOKEN_START + r"nvapi-[A-Za-z0-9_\-]{40,}" + _TOKEN_END)
    ),
    _Pattern(
        "jwt",
        ("eyj",),
        re.compile(
            _TOKEN_START + r"eyJ[A-Za-z0-9_\-]{8,}\.eyJ[A-Za-z0-9_\-]{8,}\.[A-Za-z0-9_\-]*" + _TOKEN_END
        ),
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
)

#: Every kind of secret the redactor knows, in the order its patterns run.
SECRET_KINDS: tuple[str, ...] = tuple(dict.fromkeys(p.kind for p in _PATTERNS))


@dataclass(frozen=True, slots=True)
class Allowlist:
    """Matches that are not secrets: exact strings, or regexes that match the whole hit.

    >>> Allowlist.of(["noreply@github.com", "re:.*@example\\\\.com"]).allows("ann@example.com")
    True
    """

    exact: frozenset[str] = frozenset()
    patterns: tuple[re.Pattern[str], ...] = ()

    @classmethod
    def of(cls, entries: Iterable[str]) -> Allowlist:
        """Build from entries: ``re:REGEX`` is a regex, anything else an exact string."""
        exact: set[str] = set()
        patterns: list[re.Pattern[str]] = []
        for entry in entries:
            if entry.startswith("re:"):
                patterns.append(_compile(entry[3:]))
            else:
                exact.add(entry)
        return cls(frozenset(exact), tuple(patterns))

    def allows(self, hit: str) -> bool:
        """True when ``hit`` is on the list (then it is kept as it is)."""
        return hit in self.exact or any(p.fullmatch(hit) for p in self.patterns)


def _compile(text: str) -> re.Pattern[str]:
    try:
        return re.compile(text)
    except re.error as exc:
        raise ConfigError(f"bad allowlist regex {text!r}: {exc}", key="allowlist") from None


def load_allowlist(path: str | Path) -> Allowlist:
    """Read an allowlist file: one entry a line, ``re:`` for regexes, ``#`` starts a comment line."""
    try:
        lines = Path(path).read_text(encoding="utf-8").splitlines()
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read ({exc.strerror or exc})", key="allowlist") from None
    return Allowlist.of(line.strip() for line in lines if line.strip() and not line.lstrip().startswith("#"))


# One JSON string token in a line (valid JSON has no quote outside strings).
_JSON_STRING = re.compile(rb'"[^"\\]*(?:\\.[^"\\]*)*"', re.DOTALL)
_COLON = re.compile(rb"\s*:\s*")
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


@dataclass(frozen=True, slots=True)
class Redactor:
    """Find secrets in text and JSON lines; ``kinds`` limits which kinds are looked for.

    >>> line, counts = Redactor().redact_line(b'{"url": "https://u:hunter2@db.local/x", "n": 1}')
    >>> line
    b'{"url": "https://u:<REDACTED:url_password>@db.local/x", "n": 1}'
    """

    allowlist: Allowlist = field(default_factory=Allowlist)
    kinds: frozenset[str] | None = None
    _patterns: tuple[_Pattern, ...] = field(init=False, repr=False, compare=False, default=())
    #: Every hint :meth:`_plan` looks for, each once (the wanted patterns without a gate, and the
    #: secret keys), shortest first, each with a hint it cannot occur without, searched first.
    _scan: tuple[tuple[bytes, bytes | None], ...] = field(init=False, repr=False, compare=False, default=())
    #: The wanted patterns with a gate.
    _gated: tuple[_Pattern, ...] = field(init=False, repr=False, compare=False, default=())
    #: The secret keys' hints no wanted pattern has: a token holding one matters only as a key.
    _key_only: frozenset[bytes] = field(init=False, repr=False, compare=False, default=frozenset())
    #: Hints scanned only to tell where the longer ones that contain them are worth a scan.
    _prefilters: frozenset[bytes] = field(init=False, repr=False, compare=False, default=frozenset())

    def __post_init__(self) -> None:
        unknown = sorted((self.kinds or frozenset()) - set(SECRET_KINDS))
        if unknown:
            raise ConfigError(f"unknown secret kinds: {', '.join(unknown)}", key="redact_secrets.kinds")
        wanted = [p for p in _PATTERNS if self.kinds is None or p.kind in self.kinds]
        object.__setattr__(self, "_patterns", tuple(wanted))
        keys = _KEY_HINTS if self._keyed else ()
        ungated = dict.fromkeys([*(h for p in wanted if p.gate is None for h in p.bhints), *keys])
        first = {q for q in _PREFILTERS if any(q in h for h in ungated)} - set(ungated)
        hints = sorted([*ungated, *first], key=len)
        # Each hint after the longest other hint it contains (the rarer), where that one is found.
        scan = [(h, next((q for q in reversed(hints) if q in h and q != h), _NEEDS.get(h))) for h in hints]
        object.__setattr__(self, "_scan", tuple((h, q if q in hints else None) for h, q in scan))
        object.__setattr__(self, "_prefilters", frozenset(first))
        object.__setattr__(self, "_gated", tuple(p for p in wanted if p.gate is not None))
        object.__setattr__(self, "_key_only", frozenset(keys) - {h for p in wanted for h in p.bhints})

    def redact_text(self, text: str, *, key: str | None = None) -> tuple[str, Counter[str]]:
        """Replace every secret in ``text`` with its placeholder; count the hits per kind.

        ``key`` is the JSON key the text is the value of: under a key such as ``password`` or
        ``api_key`` a whole value that looks like a secret is one (``secret_assignment``).
        """
        return self._redact(text, key, self._candidates(text.lower()))

    def _candidates(self, lower: str) -> tuple[_Pattern, ...]:
        return tuple(p for p in self._patterns if any(hint in lower for hint in p.hints))

    def _redact(self, text: str, key: str | None, patterns: Iterable[_Pattern]) -> tuple[str, Counter[str]]:
        counts: Counter[str] = Counter()
        lower = text.lower()
        for pattern in patterns:
            if any(hint in lower for hint in pattern.hints):
                new = self._apply(pattern, text, lower, counts)
                if new is not text:
                    text, lower = new, new.lower()
        kind = self._keyed_secret(key, text) if not counts and key is not None else None
        if kind is not None:
            counts[kind] += 1
            text = placeholder(kind)
        return text, counts

    def _keyed_secret(self, key: str, value: str) -> str | None:
        """The kind of secret the whole ``value`` of ``key`` is, or None."""
        if not _SECRET_KEY.fullmatch(key) or len(value) > 256 or any(c.isspace() for c in value):
            return None
        kind = _key_kind(key)
        wanted = self.kinds is None or kind in self.kinds
        return kind if wanted and _KEYED[kind](value) and not self.allowlist.allows(value) else None

    def _apply(self, pattern: _Pattern, text: str, lower: str, counts: Counter[str]) -> str:
        def replace(match: re.Match[str]) -> str:
            hit = match.group(pattern.group)
            if self.allowlist.allows(hit) or (pattern.valid is not None and not pattern.valid(hit)):
                return match.group(0)
            if pattern.check is not None and not pattern.check(match):
                return match.group(0)
            counts[pattern.kind] += 1
            start, end = match.span(pattern.group)
            whole, offset = match.group(0), match.start(0)
            return whole[: start - offset] + placeholder(pattern.kind) + whole[end - offset :]

        return _sub(pattern, replace, text, lower)

    def redact_line(self, raw: bytes) -> tuple[bytes, Counter[str]]:
        """Redact the string values of one JSON line; the line comes back unchanged when clean.

        Only the string tokens that held a secret are re-encoded; keys, numbers, spacing and
        every other string keep their exact bytes. A line that is not JSON is returned as is.
        """
        try:
            return self._redact_line(raw, checked=False)
        except _Unreadable:
            return raw, Counter()

    def _redact_line(self, raw: bytes, *, checked: bool) -> tuple[bytes, Counter[str]]:
        """:meth:`redact_line`; raises :class:`_Unreadable` when the line cannot be decoded.

        ``checked``: the line is known to be JSON (the reader read it as a rollout), so it is
        decoded only when escapes may hide a hint.
        """
        counts: Counter[str] = Counter()
        plan = self._plan(raw, checked)
        if plan is None:
            return raw, counts
        patterns, hints, exact = plan
        tokens = _hinted_tokens(raw, hints, self._key_only) if exact else _all_tokens(raw)
        pieces: list[bytes] = []
        last = 0
        for start, (end, key) in sorted(_with_keys(raw, tokens, keyed=self._keyed).items()):
            new = self._redact_token(raw[start:end], key, patterns, counts)
            if new is not None:
                pieces += [raw[last:start], new]
                last = end
        if not pieces:
            return raw, counts
        return b"".join([*pieces, raw[last:]]), counts

    @property
    def _keyed(self) -> bool:
        return self.kinds is None or not _KEYED.keys().isdisjoint(self.kinds)

    def _plan(self, raw: bytes, checked: bool) -> tuple[tuple[_Pattern, ...], tuple[bytes, ...], bool] | None:
        """The patterns and hints that occur in the line, and whether hint positions in the raw
        bytes are exact (no escape hides one); None when nothing can match."""
        escaped = b"\\u" in raw or b"\\/" in raw
        if escaped or not checked:
            try:
                record = orjson.loads(raw)
            except orjson.JSONDecodeError:
                raise _Unreadable from None
        low = raw.lower()
        # The line's text with no escape hiding a character, in its case and lower-cased.
        text = _unescaped(record) if escaped else raw
        if text is None:  # too deep to encode again: every string token is searched for everything
            return self._patterns, (), False
        probe = low if text is raw else text.lower()
        # Each hint searched once (a search of a hint the line lacks reads the whole line).
        hints: set[bytes] = set()
        for hint, needs in self._scan:
            if (needs is None or needs in hints) and hint in probe:
                hints.add(hint)
        if self._prefilters:
            hints -= self._prefilters
        gated = [p for p in self._gated if p.gate is not None and p.gate.search(text)]
        for pattern in gated:
            hints.update(pattern.bhints)  # the tokens that may hold a hit
        if not hints:
            return None
        patterns = tuple(
            p for p in self._patterns if p in gated or (p.gate is None and any(h in hints for h in p.bhints))
        )
        exact = probe is low or all(low.count(h) == probe.count(h) for h in hints)
        return patterns, tuple(hints), exact

    def _redact_token(
        self, token: bytes, key: str | None, patterns: tuple[_Pattern, ...], counts: Counter[str]
    ) -> bytes | None:
        new, found = self._redact(_decode(token), key, patterns)
        if not found:
            return None
        counts.update(found)
        return orjson.dumps(new)


def _unescaped(record: object) -> bytes | None:
    """The record encoded again (no escape but the few JSON needs), or None when it nests deeper
    than orjson encodes (255 levels; the reader reads up to 1024)."""
    try:
        return orjson.dumps(record)
    except orjson.JSONEncodeError:
        return None


class _Unreadable(Exception):
    """A line redaction cannot decode, so cannot search."""


_KEY_HINTS = (b"passw", b"pwd", b"key", b"secret", b"token")
# A hint worth searching only where another is: no Slack webhook without "://".
_NEEDS = {b"hooks.slack.com": b"://"}
# Hints no pattern has, scanned first so that the hints that contain them are scanned only where
# they are (one scan for "session" instead of three for the ways to write "session token").
_PREFILTERS = (b"session",)


def _sub(
    pattern: _Pattern, replace: Callable[[re.Match[str]], str], text: str, lower: str | None = None
) -> str:
    """``pattern.regex.sub(replace, text)``, matching only at the pattern's possible starts.

    The same result: every match starts at one of them, and trying them in order, each from the
    end of the last match, finds the leftmost match each time, as ``sub`` does.
    """
    if pattern.starts is None:
        return pattern.regex.sub(replace, text)
    starts = pattern.starts(text, text.lower() if lower is None else lower)
    if starts is None:
        return pattern.regex.sub(replace, text)
    match_at = pattern.regex.match
    pieces: list[str] = []
    last = 0
    for start in starts:
        if start < last:
            continue
        match = match_at(text, start)
        if match is not None:
            pieces += [text[last:start], replace(match)]
            last = match.end()
    if not pieces:
        return text
    pieces.append(text[last:])
    return "".join(pieces)


def _hinted_tokens(raw: bytes, hints: tuple[bytes, ...], key_only: frozenset[bytes]) -> dict[int, int]:
    """Start -> end of every string token that holds a hint (in valid JSON every hint, being
    letters and punctuation other than quotes, sits inside a string); for a ``key_only`` hint,
    of every key that holds it (a value holding only such hints has nothing to look for)."""
    low = raw.lower()
    tokens: dict[int, int] = {}
    for hint in hints:
        keys = hint in key_only
        pos = low.find(hint)
        while pos != -1:
            start = _token_start(raw, pos)
            end = tokens.get(start)
            if end is None:
                end = _token_end(raw, start)
                if not keys or _COLON.match(raw, end):
                    tokens[start] = end
            pos = low.find(hint, max(pos + 1, end))
    return tokens


def _token_end(raw: bytes, start: int) -> int:
    """The end of the string token opening at ``start``: after the first quote no backslash escapes.

    (What ``_JSON_STRING.match`` finds in valid JSON, by ``find`` instead of a regex.)
    """
    if raw[start : start + 1] != b'"':
        return start
    quote = raw.find(b'"', start + 1)
    while quote != -1:
        before = quote
        while raw[before - 1] == 0x5C:  # a backslash
            before -= 1
        if (quote - before) % 2 == 0:
            return quote + 1
        quote = raw.find(b'"', quote + 1)
    return start


def _token_start(raw: bytes, pos: int) -> int:
    """The opening quote of the string token around ``pos``: the last unescaped quote before it."""
    quote = raw.rfind(b'"', 0, pos)
    while quote > 0:
        before = quote
        while before > 0 and raw[before - 1] == 0x5C:  # a backslash
            before -= 1
        if (quote - before) % 2 == 0:
            return quote
        quote = raw.rfind(b'"', 0, quote)
    return max(quote, 0)


def _all_tokens(raw: bytes) -> dict[int, int]:
    return {m.start(): m.end() for m in _JSON_STRING.finditer(raw)}


def _with_keys(raw: bytes, tokens: dict[int, int], *, keyed: bool) -> dict[int, tuple[int, str | None]]:
    """The value tokens to check (keys left out), each with its key when that key names a secret."""
    work: dict[int, tuple[int, str | None]] = {}
    for start, end in tokens.items():
        colon = _COLON.match(raw, end)
        if colon is None:
            work.setdefault(start, (end, None))
            continue
        value = _JSON_STRING.match(raw, colon.end()) if keyed else None
        if value is not None:
            key = _decode(raw[start:end])
            if _SECRET_KEY.fullmatch(key):
                work[value.start()] = (value.end(), key)
    return work


def _decode(token: bytes) -> str:
    text = token[1:-1].decode("utf-8") if b"\\" not in token else orjson.loads(token)
    return str(text)


@dataclass(frozen=True, slots=True)
class RedactionResult:
    """What redaction did to one rollout.

    ``rollout`` is the redacted rollout (the same object when nothing was found), or None when
    it was dropped; ``dropped`` is then the reason. ``counts`` are the hits per kind.
    """

    rollout: Rollout | None
    counts: Counter[str]
    dropped: str | None = None


@dataclass(slots=True)
class RedactionReport:
    """Counts over many rollouts; reports add (``a + b``)."""

    rollouts: int = 0
    redacted: int = 0
    dropped: int = 0
    kinds: Counter[str] = field(default_factory=Counter)

    def count(self, result: RedactionResult) -> None:
        self.rollouts += 1
        self.kinds.update(result.counts)
        if result.dropped is not None:
            self.dropped += 1
        elif result.counts:
            self.redacted += 1

    def __add__(self, other: RedactionReport) -> RedactionReport:
        return RedactionReport(
            self.rollouts + other.rollouts,
            self.redacted + other.redacted,
            self.dropped + other.dropped,
            self.kinds + other.kinds,
        )

    def to_dict(self) -> dict[str, object]:
        return {
            "rollouts": self.rollouts,
            "redacted": self.redacted,
            "dropped": self.dropped,
            "kinds": dict(sorted(self.kinds.items())),
        }


class _Recorder(Protocol):
    """What collects the ids of clean lines: a ``set``, or an :class:`rollcraft._compact.IdSet`."""

    def add(self, rollout_id: str, /) -> None: ...


@dataclass(slots=True)
class RedactSecrets:
    """The ``redact_secrets`` pipeline step: redact (or drop) each rollout, counting per kind.

    A redacted rollout is re-read from its redacted line (with ``options``, the reader's options),
    so its conversation, ``raw`` and ``rollout_id`` (the hash of the new line) all agree.

    >>> step = RedactSecrets(on_secret="replace")
    >>> # result = step.apply(rollout); write result.rollout.raw when result.rollout is not None
    """

    on_secret: OnSecret = "replace"
    redactor: Redactor = field(default_factory=Redactor)
    options: ReadOptions = field(default_factory=ReadOptions)
    report: RedactionReport = field(default_factory=RedactionReport)
    #: Ids of lines an earlier pass with the same redactor searched and found clean: a rollout
    #: whose id is here is passed on unsearched. The id is the 64-bit hash of the line's bytes,
    #: so a line is skipped only for the same content (an unknown line is searched).
    clean: Container[str] | None = None
    #: Collects the ids of the lines searched and found clean, when given (a ``set`` or an
    #: :class:`rollcraft._compact.IdSet`: anything with ``add``).
    record_clean: _Recorder | None = None
    #: Replace mode: the rollouts it could not redact (id -> why), until :meth:`failure_step` drops them.
    failed: dict[str, str] = field(default_factory=dict)
    name: ClassVar[str] = "redact_secrets"

    def __post_init__(self) -> None:
        if self.on_secret not in ("replace", "drop"):
            raise ConfigError("must be replace or drop", key="on_secret")

    def apply(self, rollout: Rollout) -> RedactionResult:
        """Redact one rollout (or drop it when ``on_secret="drop"`` and it holds a secret)."""
        result = self._result(rollout)
        self.report.count(result)
        return result

    def check(self, rollout: Rollout) -> str | None:
        """The filter-step form (drop mode): the drop reason, or None when the rollout is clean."""
        try:
            _, counts = self.redactor._redact_line(rollout.raw, checked=True)
        except _Unreadable:
            return _UNREADABLE
        return _drop_reason(counts) if counts else None

    def drop_step(self) -> DropSecrets:
        """Drop mode as a filter step that also counts the hits in :attr:`report`."""
        return DropSecrets(self)

    def failure_step(self) -> FailedRedactions:
        """Replace mode's filter step: drops the rollouts :meth:`redact_items` could not redact."""
        return FailedRedactions(self)

    def redact_items(self, items: Iterable[Rollout | Quarantined]) -> Iterator[Rollout | Quarantined]:
        """The stream with each quarantined line's detail redacted (it may quote the record: a
        failed attempt's ``_ng_failure_class``, an unknown record's keys), as the terminal, the
        report and the manifest show it. In replace mode each rollout is redacted too; one it
        cannot redact (a line it cannot decode, or a redacted record that is no longer a rollout)
        is passed on as it was and recorded in :attr:`failed`: :meth:`failure_step`, next, must
        drop it. In drop mode rollouts pass unchanged (:meth:`drop_step` judges them)."""
        replace = self.on_secret == "replace"
        for item in items:
            if not isinstance(item, Rollout):
                yield self.redact_quarantined(item)
            elif replace:
                result = self.apply(item)
                if result.rollout is None:
                    self.failed[item.rollout_id] = result.dropped or "could not be redacted"
                yield result.rollout if result.rollout is not None else item
            else:
                yield item

    def redact_quarantined(self, item: Quarantined) -> Quarantined:
        """``item`` with its detail redacted (every kind, allowlist applied; not counted in
        :attr:`report`, which counts rollouts); the same object when the detail is clean."""
        detail, counts = self.redactor.redact_text(item.detail)
        return dataclasses.replace(item, detail=detail) if counts else item

    def _result(self, rollout: Rollout) -> RedactionResult:
        if self.clean is not None and not rollout.rewritten and rollout.rollout_id in self.clean:
            return RedactionResult(rollout, Counter())
        try:
            line, counts = self.redactor._redact_line(rollout.raw, checked=True)
        except _Unreadable:
            return RedactionResult(None, Counter(), _UNREADABLE)
        if not counts:
            if self.record_clean is not None and not rollout.rewritten:
                self.record_clean.add(rollout.rollout_id)
            return RedactionResult(rollout, counts)
        if self.on_secret == "drop":
            return RedactionResult(None, counts, _drop_reason(counts))
        reparsed = parse_line(RawLine(rollout.source, rollout.line, rollout.offset, line), self.options)
        if isinstance(reparsed, Quarantined):
            return RedactionResult(None, counts, f"redacted record unreadable: {reparsed.reason}")
        return RedactionResult(dataclasses.replace(reparsed, rewritten=True), counts)


@dataclass(frozen=True, slots=True)
class DropSecrets:
    """A filter step (``redact_secrets``) that drops rollouts holding a secret and counts every hit.

    A filter step sees each rollout once, so the counts in ``report`` are right (the plain
    :meth:`RedactSecrets.check` does not count).
    """

    secrets: RedactSecrets
    name: ClassVar[str] = "redact_secrets"

    @property
    def report(self) -> RedactionReport:
        return self.secrets.report

    def check(self, rollout: Rollout) -> str | None:
        return self.secrets.apply(rollout).dropped


@dataclass(frozen=True, slots=True)
class FailedRedactions(DropSecrets):
    """A filter step (``redact_secrets``) after replace mode's :meth:`RedactSecrets.redact_items`:
    drops each rollout it could not redact, so none reaches an output with its secrets."""

    def check(self, rollout: Rollout) -> str | None:
        return self.secrets.failed.pop(rollout.rollout_id, None)


def redacted_reject(raw: bytes) -> bytes:
    """What a rejects file holds of a line dropped by ``redact_secrets``: the line with every
    kind of secret replaced (no allowlist), or ``null`` when it cannot be decoded."""
    try:
        return _every_kind()._redact_line(raw, checked=False)[0]
    except _Unreadable:
        return b"null"


@functools.cache
def _every_kind() -> Redactor:
    return Redactor()


_UNREADABLE = "not valid JSON to redaction (cannot be searched)"


def _drop_reason(counts: Counter[str]) -> str:
    return "secret found: " + ", ".join(sorted(counts))
