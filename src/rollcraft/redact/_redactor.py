"""The :class:`Redactor`: secrets in a text or a JSON line replaced by their placeholders, counted."""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import cast

import orjson

from rollcraft._errors import ConfigError
from rollcraft.redact._allowlist import Allowlist
from rollcraft.redact._base import _Gate, _Pattern, _Spots
from rollcraft.redact._patterns import (
    _KEY_HINTS,
    _KEYED,
    _NEEDS,
    _PATTERNS,
    _PREFILTERS,
    _SECRET_KEY,
    PII_KINDS,
    SECRET_KINDS,
    _key_kind,
    placeholder,
)
from rollcraft.redact._prefilter import LineScan, line_scan
from rollcraft.redact._search import (
    _all_tokens,
    _anchor,
    _decode,
    _hinted_tokens,
    _sub,
    _tokens_at,
    _unescaped,
    _Unreadable,
    _with_keys,
)

_Finder = Callable[[bytes], object]
#: What :meth:`Redactor._plan` finds in a line.
_Plan = tuple[tuple[_Pattern, ...], tuple[bytes, ...], bool, tuple[int, ...]]


def _gate(pattern: _Pattern) -> _Gate:
    assert pattern.gate is not None
    return pattern.gate


@dataclass(frozen=True, slots=True)
class Redactor:
    """Find secrets in text and JSON lines; ``kinds`` limits which kinds are looked for (by
    default every kind in :data:`SECRET_KINDS`), ``pii`` adds opt-in kinds of :data:`PII_KINDS`.

    >>> line, counts = Redactor().redact_line(b'{"url": "https://u:hunter2@db.local/x", "n": 1}')
    >>> line
    b'{"url": "https://u:<REDACTED:url_password>@db.local/x", "n": 1}'
    """

    allowlist: Allowlist = field(default_factory=Allowlist)
    kinds: frozenset[str] | None = None
    pii: frozenset[str] = frozenset()
    _patterns: tuple[_Pattern, ...] = field(init=False, repr=False, compare=False, default=())
    #: Every hint :meth:`_plan` looks for, each once (the wanted patterns without a gate, and the
    #: secret keys), shortest first, each with a hint it cannot occur without, searched first.
    _scan: tuple[tuple[bytes, bytes | None, bytes], ...] = field(
        init=False, repr=False, compare=False, default=()
    )
    #: Each hint's anchor (the part from its rarest byte, see ``_anchor``) -> its search: looked
    #: for before the hint, once a line, a scan that is fast where the hint is not in the line.
    _anchors: dict[bytes, _Finder] = field(init=False, repr=False, compare=False, default_factory=dict)
    #: The wanted patterns with a gate.
    _gated: tuple[_Pattern, ...] = field(init=False, repr=False, compare=False, default=())
    #: The secret keys' hints no wanted pattern has: a token holding one matters only as a key.
    _key_only: frozenset[bytes] = field(init=False, repr=False, compare=False, default=frozenset())
    #: Hints scanned only to tell where the longer ones that contain them are worth a scan.
    _prefilters: frozenset[bytes] = field(init=False, repr=False, compare=False, default=frozenset())
    #: The anchors and the gates in one scan of a line (:mod:`rollcraft.redact._prefilter`), or
    #: None (no Hyperscan, or ``prefilter=False``): one search each.
    _line_scan: LineScan | None = field(init=False, repr=False, compare=False, default=None)
    #: Whether to scan a line once for every anchor and gate where Hyperscan is installed (the
    #: same results; False: one search each, as the tests compare).
    prefilter: bool = field(default=True, repr=False, compare=False)

    def __post_init__(self) -> None:
        unknown = sorted((self.kinds or frozenset()) - {*SECRET_KINDS, *PII_KINDS})
        if unknown:
            raise ConfigError(f"unknown secret kinds: {', '.join(unknown)}", key="redact_secrets.kinds")
        if not self.pii <= set(PII_KINDS):
            unknown = sorted(self.pii - set(PII_KINDS))
            raise ConfigError(f"unknown PII kinds: {', '.join(unknown)}", key="redact_secrets.pii")
        kinds = (frozenset(SECRET_KINDS) if self.kinds is None else self.kinds) | self.pii
        wanted = [p for p in _PATTERNS if p.kind in kinds]
        object.__setattr__(self, "_patterns", tuple(wanted))
        keys = _KEY_HINTS if self._keyed else ()
        ungated = dict.fromkeys([*(h for p in wanted if p.gate is None for h in p.bhints), *keys])
        first = {q for q in _PREFILTERS if any(q in h for h in ungated)} - set(ungated)
        hints = sorted([*ungated, *first], key=len)
        # Each hint after the longest other hint it contains (the rarer), where that one is found.
        scan = [(h, next((q for q in reversed(hints) if q in h and q != h), _NEEDS.get(h))) for h in hints]
        needed = [(h, q if q in hints else None) for h, q in scan]
        object.__setattr__(self, "_scan", tuple((h, q, _anchor(h, q)) for h, q in needed))
        anchors = {a for _, _, a in self._scan}
        object.__setattr__(self, "_anchors", {a: re.compile(re.escape(a)).search for a in sorted(anchors)})
        object.__setattr__(self, "_prefilters", frozenset(first))
        object.__setattr__(self, "_gated", tuple(p for p in wanted if p.gate is not None))
        object.__setattr__(self, "_key_only", frozenset(keys) - {h for p in wanted for h in p.bhints})
        if self.prefilter:
            gates = [_gate(p) for p in self._gated]
            object.__setattr__(self, "_line_scan", line_scan([h for h, _, _ in self._scan], gates))

    def redact_text(self, text: str, *, key: str | None = None) -> tuple[str, Counter[str]]:
        """Replace every secret in ``text`` with its placeholder; count the hits per kind.

        ``key`` is the JSON key the text is the value of: under a key such as ``password`` or
        ``api_key`` a whole value that looks like a secret is one (``secret_assignment``).
        """
        return self._redact(text, key, self._candidates(text.lower()))

    def _candidates(self, lower: str) -> tuple[_Pattern, ...]:
        return tuple(p for p in self._patterns if not p.hints or any(hint in lower for hint in p.hints))

    def _redact(self, text: str, key: str | None, patterns: Iterable[_Pattern]) -> tuple[str, Counter[str]]:
        counts: Counter[str] = Counter()
        lower = text.lower()
        for pattern in patterns:
            if not pattern.hints or any(hint in lower for hint in pattern.hints):
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
        patterns, hints, exact, spots = plan
        tokens = _hinted_tokens(raw, hints, self._key_only) if exact else _all_tokens(raw)
        if spots and exact:
            tokens.update(_tokens_at(raw, spots))
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

    def _plan(self, raw: bytes, checked: bool) -> _Plan | None:
        """The patterns and hints that occur in the line, whether hint positions in the raw
        bytes are exact (no escape hides one), and where the patterns without hints may hit
        (card numbers: found by their gate); None when nothing can match."""
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
            return self._patterns, (), False, ()
        probe = low if text is raw else text.lower()
        # Each hint searched once (a search of a hint the line lacks reads the whole line).
        hints: set[bytes] = set()
        anchored: dict[bytes, bool] = {}
        passing: set[int] | None = None
        if self._line_scan is not None:  # every hint and gate in one scan
            present, passing = self._line_scan(text)
            for hint, needs, _ in self._scan:
                if hint in present and (needs is None or needs in hints):
                    hints.add(hint)
        for hint, needs, anchor in self._scan if passing is None else ():
            if needs is not None and needs not in hints:
                continue
            there = anchored.get(anchor)
            if there is None:
                there = anchored[anchor] = self._anchors[anchor](probe) is not None
            if there and (hint == anchor or hint in probe):
                hints.add(hint)
        if self._prefilters:
            hints -= self._prefilters
        gated: list[_Pattern] = []
        spots: list[int] = []
        for number, pattern in enumerate(self._gated):
            if passing is not None and number not in passing:
                continue  # the scan found no place the gate may pass
            if pattern.hints:
                if _gate(pattern).search(text):
                    gated.append(pattern)
                    hints.update(pattern.bhints)  # the tokens that may hold a hit
            elif found := cast(_Spots, pattern.gate).spots(text):
                gated.append(pattern)
                spots += found  # no hint: the tokens where the gate found a hit
        if not hints and not gated:
            return None
        passed = {id(p) for p in gated}  # by identity: == compares every field, regexes too
        patterns = tuple(
            p
            for p in self._patterns
            if id(p) in passed or (p.gate is None and any(h in hints for h in p.bhints))
        )
        # Hint positions in the raw bytes hold (no escape hides a hint), and so do the spots.
        exact = (probe is low or all(low.count(h) == probe.count(h) for h in hints)) and (
            not spots or text is raw
        )
        return patterns, tuple(hints), exact, tuple(spots)

    def _redact_token(
        self, token: bytes, key: str | None, patterns: tuple[_Pattern, ...], counts: Counter[str]
    ) -> bytes | None:
        new, found = self._redact(_decode(token), key, patterns)
        if not found:
            return None
        counts.update(found)
        return orjson.dumps(new)
