"""The :class:`Redactor`: secrets in a text or a JSON line replaced by their placeholders, counted."""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field

import orjson

from rollcraft._errors import ConfigError
from rollcraft.redact._allowlist import Allowlist
from rollcraft.redact._patterns import (
    _KEY_HINTS,
    _KEYED,
    _NEEDS,
    _PATTERNS,
    _PREFILTERS,
    _SECRET_KEY,
    SECRET_KINDS,
    _key_kind,
    _Pattern,
    placeholder,
)
from rollcraft.redact._search import (
    _all_tokens,
    _decode,
    _hinted_tokens,
    _sub,
    _unescaped,
    _Unreadable,
    _with_keys,
)


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
