"""Reading one JSON value as the reader reads it (:func:`read_json`).

Apart from :mod:`rollcraft.read._normalize` so that :attr:`rollcraft.Rollout.record` (in
:mod:`rollcraft._records`, which the normalizer imports) reads records the same way without a
cycle.
"""

from __future__ import annotations

import json
import sys
from typing import Any

import orjson

__all__ = ["ORJSON_DEPTH", "read_json"]

#: How deep orjson reads: a line nested deeper is ``too_deeply_nested``.
ORJSON_DEPTH = 1024


def read_json(data: bytes) -> Any:
    """``orjson.loads``, except that a number beyond a double's range (``1e400``), which orjson
    refuses, reads as its literal text (the string ``"1e400"``) instead of failing the line.

    JSON allows such numbers, and the fast path (:mod:`rollcraft.read._fast`), which skips the
    values it does not use without reading their numbers, keeps such a record: this is how the
    general path and the record's later readers (:attr:`rollcraft.Rollout.record`) read it too.
    Everything else orjson refuses stays refused: nesting past :data:`ORJSON_DEPTH` levels
    (``RecursionError``), a lone surrogate, ``NaN``. Free on the common path: the retry runs
    only after orjson refused a number.
    """
    try:
        return orjson.loads(data)
    except orjson.JSONDecodeError as exc:
        if not exc.msg.startswith("number is infinity"):
            raise
        error = exc
    limit = sys.getrecursionlimit()
    sys.setrecursionlimit(limit + 2 * ORJSON_DEPTH)  # Python's json recurses: room for orjson's depth
    try:
        value = json.loads(
            data.decode(), parse_float=_finite_or_text, parse_int=_int_or_text, parse_constant=_refuse
        )
    except ValueError:
        raise error from None
    finally:
        sys.setrecursionlimit(limit)
    _as_orjson_reads(value, error)
    return value


def _as_orjson_reads(value: Any, error: orjson.JSONDecodeError) -> None:
    """What orjson refuses besides the number, that Python's json read: too deep, a lone surrogate."""
    stack = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        if isinstance(item, str):
            if not item.isascii():
                try:
                    item.encode()
                except UnicodeEncodeError:
                    raise error from None
        elif isinstance(item, (dict, list)):
            if depth > ORJSON_DEPTH:
                raise RecursionError(f"nests deeper than {ORJSON_DEPTH} levels")
            children = [*item, *item.values()] if isinstance(item, dict) else item
            stack.extend((child, depth + 1) for child in children)


def _finite_or_text(text: str) -> float | str:
    value = float(text)
    return value if value - value == 0 else text  # inf - inf is nan


_INT_RANGE = range(-(2**63), 2**64)  # the integers orjson reads as integers; beyond, as floats


def _int_or_text(text: str) -> int | float | str:
    value = int(text)
    return value if value in _INT_RANGE else _finite_or_text(text)


def _refuse(text: str) -> Any:
    raise ValueError(f"{text} is not JSON")
