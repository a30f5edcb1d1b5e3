"""The fast path of the reader: NeMo Gym records of the common shape, decoded partially.

A msgspec decoder typed for exactly the fields the reader uses skips everything else (usage,
sampling settings, encrypted reasoning, unknown keys) and builds small structs instead of dicts:
about twice as fast as decoding the whole line. Anything outside the common shape (a field of an
unexpected type, an item kind other than message / function_call / function_call_output /
reasoning, content parts other than text, step snapshots, ...) makes :func:`fast_parse` return
None, and the general reader (:mod:`rollcraft.read._reader`, on the fully decoded record) handles the
line: the fast path never decides anything the general path would decide differently
(``tests/read/test_fast.py`` compares both on every real line and on crafted odd ones). The mapping
to chat is not here: the decoded items feed :class:`rollcraft.read._normalize.Builder` through its
public methods, as the general reader's dicts do.

What it buys: the reader alone over 300 MB of the benchmark's input takes 1.35 CPU seconds with
it and 1.58 without (every line decoded in full and normalized from the dict): reading, which
every run pays, costs 17% more without it (``python benchmarks/shortcuts.py --size 300MB
--only fast``; ``tests/perf/test_shortcuts.py`` checks that a run writes the same bytes
without it).
"""

from __future__ import annotations

import sys
from typing import Annotated, Final

import msgspec
import orjson
from xxhash import xxh3_64_hexdigest

from rollcraft._records import Conversation, Tool
from rollcraft.read._normalize import (
    ORJSON_DEPTH,
    TEXT_PARTS,
    Builder,
    ReasoningMode,
    TooDeep,
    nest_tools,
    part_text,
)

__all__ = [
    "FastRecord",
    "fast_conversation",
    "fast_decode",
    "prompt_task_key",
    "shared_tools_text",
    "tools_from_text",
    "tools_of",
]


class _Fallback(Exception):
    """The record leaves the common shape: the general reader takes the line."""


# orjson reads integers outside this range as floats: such records take the general path.
Int = Annotated[int, msgspec.Meta(ge=-(2**63), le=2**63 - 1)]


class _Part(msgspec.Struct, gc=False):
    # UNSET: no "text" key (an untyped part without one is an unknown part, as on the general path).
    text: str | msgspec.UnsetType | None = msgspec.UNSET
    type: str | None = None
    refusal: str | None = None


class _Item(msgspec.Struct, gc=False):
    type: str | None = None
    role: str | None = None
    content: str | list[_Part] | None = None
    name: str | None = None
    namespace: str | None = None
    arguments: str | None = None
    call_id: str | None = None
    id: str | None = None
    output: str | list[_Part] | None = None
    tool_call_id: str | None = None
    summary: list[_Part] | None = None
    encrypted_content: str | None = None
    # Chat-style fields the general reader would use: only their absence is the common shape.
    tool_calls: None = None
    reasoning_content: None = None
    reasoning: None = None


class _Params(msgspec.Struct, gc=False):
    input: str | list[_Item] | None = None
    instructions: str | None = None
    tools: msgspec.Raw = msgspec.field(default_factory=lambda: msgspec.Raw(b"null"))


class _Incomplete(msgspec.Struct, gc=False):
    reason: str | None = None


class _Response(msgspec.Struct, gc=False):
    output: list[_Item] | None = None
    status: str | None = None
    incomplete_details: _Incomplete | None = None


class _AgentRef(msgspec.Struct, gc=False):
    name: str | None = None


class _Metadata(msgspec.Struct, gc=False):
    task_type: str | None = None


class FastRecord(msgspec.Struct, gc=False):
    """The fields of a NeMo Gym record the reader uses (names as in the record)."""

    responses_create_params: _Params
    response: _Response
    reward: float
    task_id: str | Int | None = None
    agent_ref: _AgentRef | None = None
    metadata: _Metadata | None = None
    category: str | None = None
    # Only booleans count; other values are read (and ignored) so such records stay on this path.
    success: bool | float | str | None = None
    is_correct: bool | float | str | None = None
    resolved: bool | float | str | None = None
    reward_components: dict[str, float] | None = None
    mask_sample: bool | None = None
    verification_skipped: bool | None = None
    ng_rollout_index: Int | None = msgspec.field(default=None, name="_ng_rollout_index")
    ng_task_index: Int | str | None = msgspec.field(default=None, name="_ng_task_index")
    ng_attempt_index: Int | str | None = msgspec.field(default=None, name="_ng_attempt_index")
    ng_rollout_id: Int | str | None = msgspec.field(default=None, name="_ng_rollout_id")
    ng_failure_class: msgspec.Raw | msgspec.UnsetType = msgspec.field(
        default=msgspec.UNSET, name="_ng_failure_class"
    )
    # Kept undecoded: a record that carries it leaves for the general path (rollcraft.read._trajectory).
    ng_trajectory: msgspec.Raw | msgspec.UnsetType = msgspec.UNSET


_DECODER: Final = msgspec.json.Decoder(FastRecord)


_recursion_limit = sys.getrecursionlimit


def fast_decode(data: bytes) -> FastRecord | None:
    """The record's fields of the common NeMo Gym shape, or None (the general reader decides)."""
    try:
        if _recursion_limit() > ORJSON_DEPTH:
            record = _decode_within_orjson_depth(data)
        else:
            record = _DECODER.decode(data)
    except (msgspec.DecodeError, RecursionError):
        return None
    if record.ng_failure_class is not msgspec.UNSET:
        return None
    return record


def _decode_within_orjson_depth(data: bytes) -> FastRecord:
    """Decode with Python's recursion limit lowered to orjson's depth for the call.

    msgspec skips the values it does not use recursively, as deep as Python's recursion limit
    lets it (1000 by default: less than orjson's 1024). Raised (Hypothesis raises it, a notebook
    may), msgspec would keep a line whose unused value nests deeper than orjson reads, which the
    general path quarantines. (From Python 3.12, C code has a recursion limit of its own, which
    this cannot lower.) Raises RecursionError when the stack is already that deep.
    """
    limit = _recursion_limit()
    sys.setrecursionlimit(ORJSON_DEPTH)
    try:
        return _DECODER.decode(data)
    finally:
        sys.setrecursionlimit(limit)


_TEXT_OR_UNTYPED = TEXT_PARTS | {None}
_UNSET = msgspec.UNSET


def _text(content: str | list[_Part] | None, flags: set[str]) -> str:
    """``rollcraft.read._normalize.content_text`` for the parts the fast path decodes."""
    if content is None:
        return ""
    if isinstance(content, str):
        return content
    if len(content) == 1:  # the common case: one text part
        part = content[0]
        text = part.text
        if type(text) is str and part.type in _TEXT_OR_UNTYPED:
            return text
    texts = [_part(part, flags) for part in content]
    return texts[0] if len(texts) == 1 else "\n".join(texts)


def _part(part: _Part, flags: set[str]) -> str:
    text = part.text
    if text is _UNSET:
        return part_text(part.type, False, None, part.refusal, flags)
    return part_text(part.type, True, text, part.refusal, flags)


def _feed(builder: Builder, items: list[_Item]) -> None:
    """:meth:`rollcraft.read._normalize.Builder.feed` for the structs of the fast path: the same
    calls of the builder, with the methods bound once (tool calls and outputs are most items)."""
    add_call = builder.add_call
    add_tool_output = builder.add_tool_output
    add_message = builder.add_message
    flags = builder.flags
    for item in items:
        kind = item.type
        if kind == "function_call":
            add_call(item.call_id, item.name, item.arguments, item.id, item.namespace)
        elif kind == "function_call_output":
            output = item.output
            add_tool_output(item.call_id, output if type(output) is str else _text(output, flags))
        elif kind == "message" or (kind is None and item.role is not None):
            content = item.content
            if isinstance(content, str):
                text = content
            elif (
                content
                and len(content) == 1
                and type(one := content[0].text) is str
                and content[0].type in _TEXT_OR_UNTYPED
            ):
                text = one  # one text part (the common case), without a call
            else:
                text = _text(content, flags)
            add_message(item.role, text, item.tool_call_id)
        elif kind == "reasoning":
            content = item.content
            if isinstance(content, str):
                raise _Fallback
            summary = item.summary
            if (
                summary
                and len(summary) == 1
                and not content
                and type(one := summary[0].text) is str
                and summary[0].type in _TEXT_OR_UNTYPED
            ):
                texts = [one]  # one summary part (the common case)
            else:
                texts = [_part(part, flags) for part in summary or ()]
                texts += [_part(part, flags) for part in content or ()]
            builder.add_reasoning(texts, item.encrypted_content)
        else:
            raise _Fallback


_TOOLS_CACHE: dict[bytes, tuple[list[Tool], bytes, frozenset[str]]] = {}
_TOOLS_CACHE_SIZE = 256


def tools_of(raw: bytes | msgspec.Raw) -> tuple[list[Tool], bytes, frozenset[str]]:
    """Nested tools of a raw ``tools`` value, their sorted-keys JSON, and the flags they raise.

    Cached by the raw bytes: every rollout of an environment repeats the same tool list. The
    lists are shared between rollouts and must not be changed.
    """
    key = bytes(raw)
    hit = _TOOLS_CACHE.get(key)
    if hit is not None:
        return hit
    flags: set[str] = set()
    try:
        value = orjson.loads(key)  # fails beyond 1024 levels or a double's range, as on the general path
        tools = nest_tools(value, flags)
    except (orjson.JSONDecodeError, TooDeep):  # the general reader quarantines the line
        raise _Fallback from None
    entry = (tools, orjson.dumps(tools, option=orjson.OPT_SORT_KEYS), frozenset(flags))
    if len(_TOOLS_CACHE) >= _TOOLS_CACHE_SIZE:
        _TOOLS_CACHE.clear()
        _TOOLS_TEXT.clear()
    _TOOLS_CACHE[key] = entry
    _TOOLS_TEXT[id(tools)] = (tools, entry[1].decode())
    return entry


#: id of a shared tool list -> (the list, its sorted-keys JSON text).
_TOOLS_TEXT: dict[int, tuple[list[Tool], str]] = {}


_TOOLS_BY_TEXT: dict[str, list[Tool]] = {}


def tools_from_text(text: str) -> list[Tool]:
    """The tool list of a trl ``tools`` text (sorted-keys JSON), shared and registered like
    :func:`tools_of`'s, so encoding it again gives back ``text`` without a dump."""
    tools = _TOOLS_BY_TEXT.get(text)
    if tools is None:
        if len(_TOOLS_BY_TEXT) >= _TOOLS_CACHE_SIZE:
            for old in _TOOLS_BY_TEXT.values():
                _TOOLS_TEXT.pop(id(old), None)
            _TOOLS_BY_TEXT.clear()
        tools = _TOOLS_BY_TEXT[text] = orjson.loads(text)
        _TOOLS_TEXT[id(tools)] = (tools, text)
    return tools


def shared_tools_text(tools: object) -> str | None:
    """The sorted-keys JSON text of a tool list :func:`tools_of` made (and shares), else None."""
    entry = _TOOLS_TEXT.get(id(tools))
    return entry[1] if entry is not None and entry[0] is tools else None


def fast_conversation(
    record: FastRecord, reasoning: ReasoningMode, flags: set[str]
) -> tuple[Conversation, bytes] | None:
    """The conversation of a fast record and its tools' sorted JSON, or None (general path)."""
    try:
        return _conversation(record, reasoning, flags)
    except _Fallback:
        return None


def _conversation(
    record: FastRecord, reasoning: ReasoningMode, flags: set[str]
) -> tuple[Conversation, bytes]:
    params = record.responses_create_params
    response = record.response
    incomplete = response.incomplete_details
    if (incomplete is not None and incomplete.reason) or response.status == "incomplete":
        flags.add("truncated")
    builder = Builder(reasoning, flags)
    if params.instructions:
        builder.add_message("system", params.instructions)
    prompt_items = params.input
    if isinstance(prompt_items, str):
        builder.add_message("user", prompt_items)
    elif prompt_items:
        _feed(builder, prompt_items)
    builder.end_prompt()
    if response.output:
        _feed(builder, response.output)
    tools, tools_json, tool_flags = tools_of(params.tools)
    flags.update(tool_flags)
    return builder.finish(tools), tools_json


def prompt_task_key(agent: str | None, prompt: list[dict[str, object]], tools_json: bytes) -> str:
    """``rollcraft.read._reader.task_key_of``'s prompt digest, from the tools' JSON computed once."""
    payload = b"".join(
        (
            b'{"agent":',
            orjson.dumps(agent),
            b',"prompt":',
            orjson.dumps(prompt, option=orjson.OPT_SORT_KEYS),
            b',"tools":',
            tools_json,
            b"}",
        )
    )
    return f"prompt:{xxh3_64_hexdigest(payload)}"
