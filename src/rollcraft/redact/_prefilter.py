"""One scan of a line for every hint and every gate at once (Hyperscan), in place of a
search each: what :meth:`rollcraft.redact.Redactor._plan` looks for first in every line.

What it buys: the plan of a line searched it once per hint's anchor (27 literals) and once per
gate (12 regexes): 40 passes over every byte of every line. The one scan finds the same hints
and flags the lines a gate may pass; only on those does the gate run. Redaction alone on the
benchmark's 100 MB input: 26 CPU s per GB with it, 44 without (1.7x; 2-vCPU VM, interleaved:
``python benchmarks/prefilter.py``; the same plans and bytes: ``tests/redact/test_prefilter.py``).

The same results, not an approximation: a hint is matched case-insensitively, ASCII only, as
``bytes.lower`` folds; each gate's expression (its regex, or the first step of a two-step gate)
is compiled in Hyperscan's prefilter mode, which matches a superset of what the regex matches
(lookarounds dropped), and only a line it flags is searched by the gate itself, as before. A gate
whose expression Hyperscan cannot take is run on every line. Without Hyperscan (no wheel for the
platform), :func:`line_scan` gives None and every search runs as it did.
"""

from __future__ import annotations

import functools
import re
import threading
from collections.abc import Sequence
from typing import Any

from rollcraft.redact._base import _Gate

__all__ = ["LineScan", "line_scan"]

_DIGITS = frozenset(b"123456789")


class LineScan:
    """The compiled scan of ``anchors`` (case-insensitive literals: the redactor's hints) and
    ``gates``; calling it on a line gives the anchors in it and the numbers of the gates that may
    pass it."""

    def __init__(self, hyperscan: Any, anchors: Sequence[bytes], gates: Sequence[_Gate]) -> None:
        self.anchors, self.gates = tuple(anchors), tuple(gates)
        expressions: list[bytes] = []
        flags: list[int] = []
        ids: list[int] = []
        once = hyperscan.HS_FLAG_SINGLEMATCH
        for number, anchor in enumerate(self.anchors):
            expressions.append(re.escape(anchor))
            flags.append(once | hyperscan.HS_FLAG_CASELESS)
            ids.append(number)
        always: set[int] = set()
        for number, gate in enumerate(self.gates):
            found = _expressions(gate)
            if found is None:
                always.add(number)
                continue
            for expression in found:
                expressions.append(expression)
                flags.append(once | hyperscan.HS_FLAG_PREFILTER)
                ids.append(len(self.anchors) + number)
        self._database = hyperscan.Database()
        try:
            self._database.compile(expressions=expressions, ids=ids, elements=len(expressions), flags=flags)
        except hyperscan.error:  # one it cannot take: its gate runs on every line
            kept = [i for i, e in enumerate(expressions) if i < len(self.anchors) or _compiles(hyperscan, e)]
            always.update(ids[i] - len(self.anchors) for i in range(len(expressions)) if i not in kept)
            kept = [i for i in kept if ids[i] - len(self.anchors) not in always]
            self._database.compile(
                expressions=[expressions[i] for i in kept],
                ids=[ids[i] for i in kept],
                elements=len(kept),
                flags=[flags[i] for i in kept],
            )
        self._always = frozenset(always)
        self._hyperscan = hyperscan
        self._local = threading.local()  # a scratch space per thread

    def __call__(self, line: bytes) -> tuple[set[bytes], set[int]]:
        """The anchors found in ``line`` and the gates (by number) that may pass it."""
        hit: set[int] = set()
        scratch = getattr(self._local, "scratch", None)
        if scratch is None:
            scratch = self._local.scratch = self._hyperscan.Scratch(self._database)
        self._database.scan(line, match_event_handler=_collect, context=hit, scratch=scratch)
        count = len(self.anchors)
        anchors = {self.anchors[i] for i in hit if i < count}
        return anchors, {i - count for i in hit if i >= count} | self._always

    def __reduce__(self) -> tuple[Any, ...]:
        """Pickled as what it is built from (a compiled database does not pickle)."""
        return (_rebuild, (self.anchors, self.gates))


def _collect(number: int, start: int, end: int, flags: int, hit: set[int]) -> None:
    hit.add(number)


def _rebuild(anchors: Sequence[bytes], gates: Sequence[_Gate]) -> LineScan | None:
    return line_scan(anchors, gates)


def line_scan(anchors: Sequence[bytes], gates: Sequence[_Gate]) -> LineScan | None:
    """The scan of ``anchors`` and ``gates``, or None without Hyperscan (compiled once per
    process for each set: a compile takes about 0.1 s)."""
    return _line_scan(tuple(anchors), tuple(gates))


@functools.lru_cache(maxsize=16)
def _line_scan(anchors: tuple[bytes, ...], gates: tuple[_Gate, ...]) -> LineScan | None:
    try:
        import hyperscan
    except ImportError:
        return None
    return LineScan(hyperscan, anchors, gates)


def _compiles(hyperscan: Any, expression: bytes) -> bool:
    try:
        hyperscan.Database().compile(expressions=[expression], flags=[hyperscan.HS_FLAG_PREFILTER])
    except hyperscan.error:
        return False
    return True


def _expressions(gate: _Gate) -> list[bytes] | None:
    """Expressions that match wherever ``gate`` may pass, in prefilter mode (or None: unknown).

    A regex is its own; a two-step gate's first step (``quick``) is one; on a line with every
    digit made ``0`` (``zeros``), its ``0``s stand for any digit; a gate that searches after
    several regexes (``after``: ``Basic`` credentials) has one each.
    """
    if isinstance(gate, re.Pattern):
        return [gate.pattern] if isinstance(gate.pattern, bytes) else None
    quick = getattr(gate, "quick", None)
    if isinstance(quick, re.Pattern) and isinstance(quick.pattern, bytes):
        if not getattr(gate, "zeros", False):
            return [quick.pattern]
        any_digit = _any_digit(quick.pattern)
        return None if any_digit is None else [any_digit]
    after = getattr(gate, "after", None)
    if isinstance(after, tuple) and all(isinstance(a, re.Pattern) for a in after):
        patterns = [a.pattern for a in after]
        return patterns if all(isinstance(p, bytes) for p in patterns) else None
    return None


def _any_digit(pattern: bytes) -> bytes | None:
    """``pattern``, written for a line with every digit made ``0``, for the line itself: a ``0``
    becomes ``[0-9]`` and a class with a ``0`` takes every digit. None where that would not
    match a superset (another digit outside a count, a negated class with a digit)."""
    out = bytearray()
    i, klass, negated, count = 0, False, False, False
    while i < len(pattern):
        byte = pattern[i]
        if byte == 0x5C:  # a backslash: the escape as it is
            out += pattern[i : i + 2]
            i += 2
            continue
        if klass:
            if byte == ord("]") and not out.endswith(b"["):
                klass = False
            elif byte == ord("0") or byte in _DIGITS:
                if negated:
                    return None
                if byte == ord("0"):
                    out += b"0-9"
                    i += 1
                    continue
        elif count:
            count = byte != ord("}")
        elif byte == ord("["):
            klass, negated = True, pattern[i + 1 : i + 2] == b"^"
        elif byte == ord("{"):
            count = True
        elif byte == ord("0"):
            out += b"[0-9]"
            i += 1
            continue
        elif byte in _DIGITS:
            return None
        out.append(byte)
        i += 1
    return bytes(out)
