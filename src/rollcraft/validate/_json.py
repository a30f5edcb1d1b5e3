"""Helpers on JSON values (types, text, canonical bytes) and the numbered lines of a JSONL file."""

from __future__ import annotations

import contextlib
import math
from collections.abc import Iterator
from typing import Any

import orjson


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def _type_name(value: Any) -> str:
    return {dict: "object", list: "array", str: "string", bool: "boolean", type(None): "null"}.get(
        type(value), "number"
    )


def _text_of(content: Any) -> str:
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return "".join(
            p.get("text", "") for p in content if isinstance(p, dict) and isinstance(p.get("text"), str)
        )
    return ""


def _canonical(messages: Any) -> bytes:
    """Messages with tool-call ids set aside and arguments parsed, as sorted-key JSON bytes."""
    return orjson.dumps(_strip_ids(messages), option=orjson.OPT_SORT_KEYS)


def _strip_ids(value: Any, parent: str = "") -> Any:
    if isinstance(value, list):
        return [_strip_ids(v, parent) for v in value]
    if not isinstance(value, dict):
        return value
    out: dict[str, Any] = {}
    for key, v in value.items():
        if key == "tool_call_id" or (key == "id" and parent == "tool_calls"):
            continue
        if key == "arguments" and isinstance(v, str):
            with contextlib.suppress(ValueError):
                v = orjson.loads(v)
        out[key] = _strip_ids(v, key)
    return out


def _lines(path: str, *, limit: int | None = None) -> Iterator[tuple[int, bytes]]:
    """(1-based line number, bytes without the line ending) for each line of ``path``."""
    from rollcraft._io import open_input

    with open_input(path) as stream:
        for number, raw in enumerate(stream, 1):
            if limit is not None and number > limit:
                return
            yield number, raw.rstrip(b"\r\n")
