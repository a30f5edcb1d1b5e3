"""What both endpoints share: a request's prompt, sampling settings and the refusals.

A request becomes a :class:`Prompt`: chat messages (the reader's own Responses-to-chat rules,
:class:`rollcraft.read._normalize.Builder`, so ``developer`` is ``system``, consecutive function calls
are one assistant turn and a ``function_call_output`` is a ``tool`` message), tools in chat form,
and :class:`Sampling`. What the server cannot do is a :class:`RequestError` (HTTP 400, one line).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import orjson

from rollcraft._records import Message, Tool
from rollcraft.read._normalize import Builder, nest_tools

__all__ = [
    "MAX_SEED",
    "Prompt",
    "RequestError",
    "Sampling",
    "build_messages",
    "parse_tools",
    "refuse",
    "sampling_from",
]

MAX_SEED = 2**63 - 1
#: Flags of the normalizer that mean the request holds something this server cannot render.
_REFUSED_FLAGS = {
    "image_content": "images are not supported (text-only models)",
    "file_content": "file inputs are not supported",
    "audio_content": "audio inputs are not supported",
    "hosted_tool_call": "hosted-tool items (web search, MCP, ...) are not supported",
    "malformed_item": "an input item is not an object",
    "unknown_item": "an input item or content part is of an unknown type",
}


class RequestError(Exception):
    """A request this server refuses: HTTP ``status`` with an OpenAI-style error body."""

    def __init__(self, message: str, *, param: str | None = None, status: int = 400) -> None:
        super().__init__(message)
        self.message = message
        self.param = param
        self.status = status

    def body(self) -> dict[str, Any]:
        """The error as the OpenAI API writes one."""
        kind = "invalid_request_error" if self.status < 500 else "server_error"
        return {"error": {"message": self.message, "type": kind, "param": self.param, "code": None}}


@dataclass(frozen=True, slots=True)
class Sampling:
    """Sampling settings of one request: ``temperature`` 0 is greedy decoding; ``max_tokens``
    None is the server's default; ``seed`` None draws from the running generator."""

    temperature: float = 1.0
    top_p: float = 1.0
    max_tokens: int | None = None
    seed: int | None = None


@dataclass(frozen=True, slots=True)
class Prompt:
    """A request ready for the chat template: messages, tools (chat form), sampling, and whether
    tool calls are to be parsed out of the generated text."""

    messages: list[Message]
    tools: list[Tool]
    sampling: Sampling
    parse_calls: bool


def refuse(body: dict[str, Any], checks: dict[str, tuple[object, str]]) -> None:
    """Raise a :class:`RequestError` for the first key of ``checks`` that ``body`` sets to a value
    other than the allowed one (``checks[key] = (allowed, what is not supported)``)."""
    for key, (allowed, message) in checks.items():
        value = body.get(key)
        if value is not None and value != allowed:
            raise RequestError(message, param=key)


def _number(body: dict[str, Any], key: str, default: float, low: float, high: float) -> float:
    value = body.get(key)
    if value is None:
        return default
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not low <= value <= high:
        raise RequestError(f"{key} must be a number from {low:g} to {high:g}", param=key)
    return float(value)


def _integer(body: dict[str, Any], key: str, low: int, high: int) -> int | None:
    value = body.get(key)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise RequestError(f"{key} must be an integer from {low} to {high}", param=key)
    return value


def sampling_from(body: dict[str, Any], max_keys: tuple[str, ...]) -> Sampling:
    """The sampling settings of ``body``; the first of ``max_keys`` that is set caps the tokens."""
    top_p = _number(body, "top_p", 1.0, 0.0, 1.0)
    if top_p == 0.0:
        raise RequestError("top_p must be above 0", param="top_p")
    max_tokens = None
    for key in max_keys:
        max_tokens = _integer(body, key, 1, 2**31 - 1)
        if max_tokens is not None:
            break
    return Sampling(
        temperature=_number(body, "temperature", 1.0, 0.0, 2.0),
        top_p=top_p,
        max_tokens=max_tokens,
        seed=_integer(body, "seed", -MAX_SEED, MAX_SEED),
    )


def build_messages(items: list[Any], *, instructions: Any = None) -> list[Message]:
    """Chat messages from Responses input items or chat messages (both in one list)."""
    flags: set[str] = set()
    builder = Builder("separate", flags)
    if isinstance(instructions, str) and instructions:
        builder.add_message("system", instructions)
    builder.feed(items)
    builder.close_turn()
    for flag, message in _REFUSED_FLAGS.items():
        if flag in flags:
            raise RequestError(message, param="input")
    if not builder.messages:
        raise RequestError("the request has no messages", param="input")
    return [_for_template(message) for message in builder.messages]


def _for_template(message: Message) -> Message:
    """Tool-call arguments as objects: what Hugging Face chat templates expect (most write them
    with ``tojson``; a JSON string would be written twice over)."""
    calls = message.get("tool_calls")
    if not calls:
        return message
    out: list[dict[str, Any]] = []
    for call in calls:
        function = dict(call["function"])
        try:
            arguments = orjson.loads(function["arguments"])
        except orjson.JSONDecodeError:
            arguments = None
        if isinstance(arguments, dict):
            function["arguments"] = arguments
        out.append({**call, "function": function})
    return {**message, "tool_calls": out}


def parse_tools(body: dict[str, Any]) -> tuple[list[Tool], bool]:
    """The request's function tools in chat form, and whether to parse tool calls (``tool_choice``
    ``auto`` or unset with tools; ``none`` turns parsing off)."""
    raw = body.get("tools")
    if raw is not None and not isinstance(raw, list):
        raise RequestError("tools must be a list", param="tools")
    flags: set[str] = set()
    tools = nest_tools(raw or [], flags)
    if "hosted_tool" in flags:
        raise RequestError("only function tools are supported", param="tools")
    choice = body.get("tool_choice")
    if choice not in (None, "auto", "none"):
        raise RequestError(
            "tool_choice must be 'auto' or 'none' (forcing a tool is not supported)", param="tool_choice"
        )
    return tools, bool(tools) and choice != "none"
