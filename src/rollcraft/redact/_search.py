"""The fast search of a line: the string tokens that may hold a hit (found by their hints, without
decoding the line), the tokens' keys, and a pattern's matches tried only where one may start."""

from __future__ import annotations

import bisect
import re
from collections.abc import Callable, Iterable

import orjson

from rollcraft.redact._base import _Pattern
from rollcraft.redact._patterns import _SECRET_KEY

# One JSON string token in a line (valid JSON has no quote outside strings).
_JSON_STRING = re.compile(rb'"[^"\\]*(?:\\.[^"\\]*)*"', re.DOTALL)
_COLON = re.compile(rb"\s*:\s*")


def _unescaped(record: object) -> bytes | None:
    """The record encoded again (no escape but the few JSON needs), or None when it nests deeper
    than orjson encodes (255 levels; the reader reads up to 1024)."""
    try:
        return orjson.dumps(record)
    except orjson.JSONEncodeError:
        return None


#: The printable bytes from the rarest to the most common in the real rollout files, lower-cased.
_BY_RARITY = b"~!%@?&^;$<#>|+`zj][=*q}{976)(/85'3x4k-v2w10.b_ygf:hm,pudc\\l\"riosntea "


def _anchor(hint: bytes, needs: bytes | None = None) -> bytes:
    """Up to 4 bytes of ``hint`` that start at its rarest byte (2 or more where it has them; not
    within ``needs``, the hint it is looked for only where found): a scan for a literal jumps
    from one occurrence of its first byte to the next, so the rarer that byte, the faster; a
    line without the anchor has no such hint."""
    starts = [i for i in range(max(1, len(hint) - 1)) if needs is None or hint[i : i + 4] not in needs]
    at = min(starts or [0], key=lambda i: _BY_RARITY.find(hint[i : i + 1]) % 256)
    return hint[at : at + 4]


class _Unreadable(Exception):
    """A line redaction cannot decode, so cannot search."""


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


def _tokens_at(raw: bytes, spots: Iterable[int]) -> dict[int, int]:
    """Start -> end of each string token that holds one of the offsets ``spots`` (an offset
    outside every string, in a number, holds nothing to search)."""
    tokens = sorted(_all_tokens(raw).items())
    starts = [start for start, _ in tokens]
    found: dict[int, int] = {}
    for spot in spots:
        i = bisect.bisect_right(starts, spot) - 1
        if i >= 0 and spot < tokens[i][1]:
            found[tokens[i][0]] = tokens[i][1]
    return found


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
