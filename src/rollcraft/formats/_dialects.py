"""How each trainer wants its messages: TRL, OpenAI fine-tuning, NeMo-RL.

* ``trl``: tools as JSON text (TRL's SFTTrainer parses a string ``tools`` column), tool-call
  ``arguments`` as JSON text, and every message carries the same keys (``role``, ``content``,
  ``tool_calls``, ``tool_call_id``, ``reasoning_content``; null where unused).
* ``openai``: tools as a list of nested objects, ``arguments`` as JSON text (the API requires it),
  and only the keys each role uses (the fine-tuning validator rejects others).
* ``nemo-rl``: tools as a list, ``arguments`` as JSON text (``arguments="object"`` for objects),
  every message with the trl keys, ``reasoning_content`` included: NeMo-RL hands each message
  dict to the model's chat template as it is (its ``OpenAIFormatDataset`` passes the messages
  through), and reasoning templates (Qwen3, DeepSeek-R1 style) render ``reasoning_content``.

Reasoning is never dropped without a count: the openai fine-tuning format has no field for it
(an assistant message takes ``content``, ``tool_calls``, ``refusal``, ``name``, ``weight``), so
:func:`rollcraft.formats.sft.drops_reasoning` counts the rows that lose it; reading with
``reasoning="think"`` inlines it in the content as ``<think>...</think>``, which every dialect keeps.

A :class:`~rollcraft.formats.RowShape` (probed from the chat template of the model to train,
:func:`rollcraft.formats.probe_template`) changes three things in the trl and nemo-rl rows (the
openai format is fixed by the API): ``arguments`` as objects for a template that iterates them,
``null`` tools for a row without tools where the template renders instructions for ``[]``, and
reasoning under ``thinking`` or inlined as ``<think>...</think>`` for templates that read it
there. Without a shape (``shape=None``) rows are as described above.

``datasets.load_dataset("json")`` merges the keys of dicts across rows (TRL issue #5118): a
dict-valued ``arguments`` or ``tools`` comes back with every other row's keys as nulls, and chat
templates render them. Keeping every message's keys the same and carrying dict-shaped payloads as
JSON text makes the trl dialect survive that round trip unchanged.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Literal, cast

import orjson

from rollcraft._records import Message, Tool
from rollcraft.formats._templates import RowShape
from rollcraft.read._fast import shared_tools_text

__all__ = [
    "DIALECTS",
    "ArgumentsMode",
    "Dialect",
    "canonical_messages",
    "encode_messages",
    "encode_tools",
    "strip_call_ids",
]

Dialect = Literal["trl", "openai", "nemo-rl"]
ArgumentsMode = Literal["string", "object"]
DIALECTS: tuple[Dialect, ...] = ("trl", "openai", "nemo-rl")


def _call(call: dict[str, Any], arguments: ArgumentsMode) -> dict[str, Any]:
    function = call["function"]
    args: Any = function["arguments"]
    if arguments == "object":
        try:
            args = orjson.loads(args)
        except orjson.JSONDecodeError:
            args = {}
    return {"id": call["id"], "type": "function", "function": {"name": function["name"], "arguments": args}}


def _uniform(message: Message, arguments: ArgumentsMode) -> Message:
    calls = message.get("tool_calls")
    return {
        "role": message["role"],
        "content": message["content"],
        "tool_calls": [_call(c, arguments) for c in calls] if calls else None,
        "tool_call_id": message.get("tool_call_id"),
        "reasoning_content": message.get("reasoning_content"),
    }


def _minimal(message: Message) -> Message:
    out: Message = {"role": message["role"], "content": message["content"]}
    if message.get("tool_calls"):
        out["tool_calls"] = [_call(c, "string") for c in message["tool_calls"]]
    if message["role"] == "tool":
        out["tool_call_id"] = message.get("tool_call_id") or ""
    return out


#: The keys of every trl and nemo-rl message, in order (a message's missing keys are null).
_UNIFORM_KEYS: dict[str, Any] = dict.fromkeys(
    ("role", "content", "tool_calls", "tool_call_id", "reasoning_content")
)


def encode_messages(
    messages: Sequence[Message],
    dialect: Dialect,
    *,
    arguments: ArgumentsMode = "string",
    shape: RowShape | None = None,
) -> list[Message]:
    """Messages in ``dialect``'s shape (see the module docstring); ``shape`` (trl and nemo-rl)
    sets ``arguments`` and where reasoning goes.

    >>> encode_messages([{"role": "user", "content": "hi"}], "openai")
    [{'role': 'user', 'content': 'hi'}]
    """
    if dialect == "openai":
        return [_minimal(m) for m in messages]
    if shape is not None:
        plain = encode_messages(messages, dialect, arguments=shape.arguments)
        return plain if shape.reasoning == "reasoning_content" else _place_reasoning(plain, shape)
    encoded: list[Message] = []
    append = encoded.append
    for message in messages:  # _uniform, inlined (the hot path of every SFT row and DPO pair)
        # A message with only the uniform keys, role and content set: its keys in order, in one
        # step (the dict union keeps the left side's order); then the calls copied as below.
        out = _UNIFORM_KEYS | message
        if len(out) == 5 and out["role"] is not None and out["content"] is not None:
            calls = out["tool_calls"]
            if calls:
                out["tool_calls"] = [_call(c, arguments) for c in calls]
            elif calls is not None:
                out["tool_calls"] = None
            append(out)
            continue
        get = message.get
        calls = get("tool_calls")
        append(
            {
                "role": message["role"],
                "content": message["content"],
                "tool_calls": [_call(c, arguments) for c in calls] if calls else None,
                "tool_call_id": get("tool_call_id"),
                "reasoning_content": get("reasoning_content"),
            }
        )
    return encoded


def _place_reasoning(messages: list[Message], shape: RowShape) -> list[Message]:
    """Reasoning under ``thinking`` (same key order), or inlined as ``<think>...</think>``."""
    placed: list[Message] = []
    for message in messages:
        reasoning = message["reasoning_content"]
        if shape.reasoning == "thinking":
            placed.append(
                cast(
                    Message, {("thinking" if k == "reasoning_content" else k): v for k, v in message.items()}
                )
            )
        elif reasoning:
            content = message["content"]
            text = (
                f"<think>\n{reasoning}\n</think>\n{content}" if content else f"<think>\n{reasoning}\n</think>"
            )
            placed.append({**message, "content": text, "reasoning_content": None})
        else:
            placed.append(message)
    return placed


def encode_tools(tools: Sequence[Tool], dialect: Dialect, shape: RowShape | None = None) -> Any:
    """Tools as ``dialect`` carries them: JSON text for trl, a list for openai and nemo-rl; with a
    ``shape`` whose ``empty_tools`` is ``none``, no tools are ``None`` (trl, nemo-rl).

    A tool list the reader shares between rollouts (:func:`rollcraft.read._fast.tools_of`) has its
    text made once.
    """
    if not tools and shape is not None and shape.empty_tools == "none" and dialect != "openai":
        return None
    if dialect == "trl":
        text = shared_tools_text(tools)
        return text if text is not None else orjson.dumps(list(tools), option=orjson.OPT_SORT_KEYS).decode()
    return list(tools)


def _args(call: dict[str, Any]) -> Any:
    text = call["function"]["arguments"]
    try:
        return orjson.loads(text)
    except (orjson.JSONDecodeError, TypeError):
        return text


def canonical_messages(messages: Sequence[Message]) -> list[bytes]:
    """Each message as canonical bytes, tool-call ids replaced by their order of appearance.

    Every rollout gets fresh call ids, so two messages that differ only in ids are the same
    message: compare these bytes, not the messages.
    """
    names: dict[str, str] = {}

    def rename(call_id: Any) -> str:
        return names.setdefault(str(call_id), f"#{len(names)}")

    canonical: list[bytes] = []
    for message in messages:
        copy = {k: v for k, v in message.items() if k not in ("tool_calls", "tool_call_id")}
        if message.get("tool_calls"):
            copy["tool_calls"] = [
                {"id": rename(c["id"]), "name": c["function"]["name"], "arguments": _args(c)}
                for c in message["tool_calls"]
            ]
        if message.get("tool_call_id") is not None:
            copy["tool_call_id"] = rename(message["tool_call_id"])
        canonical.append(orjson.dumps(copy, option=orjson.OPT_SORT_KEYS))
    return canonical


def strip_call_ids(messages: Sequence[Message]) -> bytes:
    """Canonical bytes of a whole message list (see :func:`canonical_messages`)."""
    return b"\n".join(canonical_messages(messages))
