"""Tool calls parsed out of generated text.

One format is understood: ``<tool_call>{"name": ..., "arguments": {...}}</tool_call>``, the
Hermes format that Qwen2.5/Qwen3 and rollcraft's tiny template (:mod:`rollcraft.tiny`) emit; one
block per call, several blocks for parallel calls. A block that is not such JSON stays in the text.

>>> text, calls = parse_calls('Sure.<tool_call>{"name": "add", "arguments": {"a": 1}}</tool_call>')
>>> text, calls[0].name, calls[0].arguments
('Sure.', 'add', '{"a":1}')
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import orjson

__all__ = ["ToolCall", "parse_calls"]

_BLOCK = re.compile(r"<tool_call>(.*?)</tool_call>", re.DOTALL)


@dataclass(frozen=True, slots=True)
class ToolCall:
    """One parsed call: the function's name and its arguments as JSON text."""

    name: str
    arguments: str


def _call(payload: str) -> ToolCall | None:
    try:
        value = orjson.loads(payload.strip())
    except orjson.JSONDecodeError:
        return None
    if not isinstance(value, dict) or not isinstance(value.get("name"), str) or not value["name"]:
        return None
    arguments = value.get("arguments", value.get("parameters", {}))
    if isinstance(arguments, str):
        try:
            arguments = orjson.loads(arguments)
        except orjson.JSONDecodeError:
            return None
    if not isinstance(arguments, dict):
        return None
    return ToolCall(value["name"], orjson.dumps(arguments).decode())


def parse_calls(text: str) -> tuple[str, list[ToolCall]]:
    """``text`` without its tool-call blocks (stripped when there was one), and the calls in order."""
    calls: list[ToolCall] = []
    kept: list[str] = []
    end = 0
    for match in _BLOCK.finditer(text):
        call = _call(match.group(1))
        if call is None:
            continue
        kept.append(text[end : match.start()])
        end = match.end()
        calls.append(call)
    if not calls:
        return text, calls
    kept.append(text[end:])
    return "".join(kept).strip(), calls
