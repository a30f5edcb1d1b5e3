"""The shape of a secret kind's pattern (:class:`_Pattern`): its regex, the hints and gates that
tell which lines and strings may hold a hit, and the boundaries of a token."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from typing import Protocol

Validator = Callable[[str], bool]


class _Gate(Protocol):
    """A search of a line's bytes (a compiled regex, or a gate of two steps)."""

    def search(self, line: bytes, /) -> object: ...


class _Spots(_Gate, Protocol):
    """The gate of a pattern without hints: also where in the line it passes."""

    def spots(self, line: bytes) -> list[int]: ...


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
    gate: _Gate | None = None
    starts: Starts | None = None
    bhints: tuple[bytes, ...] = field(init=False, repr=False, default=())

    def __post_init__(self) -> None:
        object.__setattr__(self, "bhints", tuple(h.encode() for h in self.hints))


_TOKEN_END = r"(?![A-Za-z0-9_\-])"


def _token(first: str, rest: str) -> str:
    """A regex for a token that starts with ``first`` (one character, or a class) and goes on
    with ``rest``: not after a token character, or right after a ``\n``, ``\r`` or ``\t`` escape
    (JSON text inside a string, decoded once, keeps them as two characters). ``first`` comes
    first, so that a search jumps from one such character to the next (a lookbehind first is
    tried at every character)."""
    return first + r"(?:(?<![A-Za-z0-9_\-]" + first + r")|(?<=\\[nrt]" + first + r"))" + rest + _TOKEN_END


_AFTER_ESCAPE = r"(?<=\\[nrt])"


_ZEROS = bytes.maketrans(b"123456789", b"000000000")


@dataclass(frozen=True, slots=True)
class _TwoStep:
    """A gate in two steps: ``quick``, a regex with a literal first (a fast scan), on the line
    (with every digit made 0 when ``zeros``: its scan then jumps from one ``0000`` to the
    next); then ``exact`` tried ``back`` bytes before each of its matches (the same offsets)."""

    quick: re.Pattern[bytes]
    exact: re.Pattern[bytes]
    back: int = 0
    zeros: bool = False

    def search(self, line: bytes, /) -> bool:
        return any(True for _ in self._hits(line))

    def spots(self, line: bytes) -> list[int]:
        """Where the line passes: for a pattern without hints, the tokens to search."""
        return list(self._hits(line))

    def _hits(self, line: bytes) -> Iterator[int]:
        for m in self.quick.finditer(line.translate(_ZEROS) if self.zeros else line):
            if self.exact.match(line, max(0, m.start() - self.back)):
                yield m.start()
