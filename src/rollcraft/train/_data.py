"""Data files read into trainer rows, and rows made ready for the chat template.

Data files are the TRL dialect of ``rollcraft sft`` / ``dpo`` / ``kto``: ``messages`` or
``prompt``/``completion`` (SFT; ``sft --expand turns``), ``prompt``/``chosen``/``rejected`` (DPO)
or ``prompt``/``completion``/``label`` (KTO), every message with ``role`` and ``content``, tool
calls with ``arguments`` as JSON text, and ``tools`` as a JSON string. :func:`prepare_row` turns
that text back into objects for the chat template, so templates that iterate ``arguments`` work;
the text form is what keeps ``datasets`` from merging the keys of different rows' arguments.

With the template's probed :class:`~rollcraft.formats.RowShape` (:func:`template_ready`, which
``train`` and ``validate --tokenizer`` both use, so that both render the same text), arguments
stay text for a template that prints text, reasoning goes under the key the template reads, an
empty tool list goes in as none (Llama 3.x renders tool instructions for ``[]``), and null-valued
keys are dropped (transformers before 5 renders them).
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable
from typing import Any, Literal

import orjson

from rollcraft._digest import sha256_file
from rollcraft._errors import InputError
from rollcraft._io import iter_lines
from rollcraft.formats._templates import RowShape, TemplateProbe

data_sha256 = sha256_file  # the name train's API has exported


_REQUIRED = {"sft": ("messages",), "dpo": ("prompt", "chosen", "rejected"), "kto": ("prompt", "completion")}


def load_rows(path: str | os.PathLike[str], method: Literal["sft", "dpo", "kto"]) -> list[dict[str, Any]]:
    """Read a TRL-dialect JSONL file into rows holding only what the trainer reads.

    Message lists keep tool-call ``arguments`` and ``tools`` as JSON text (see the module
    docstring). A line that is not such a row is an :class:`InputError` naming its line.
    """
    rows: list[dict[str, Any]] = []
    for raw in iter_lines([os.fspath(path)]):
        if raw.data.strip():
            rows.append(_trainer_row(_decode(raw.data, raw.source, raw.line), method, raw.source, raw.line))
    if not rows:
        raise InputError("holds no rows", path=os.fspath(path))
    if all(row["tools"] is None for row in rows):
        for row in rows:
            del row["tools"]
    return rows


def _decode(data: bytes, source: str, line: int) -> dict[str, Any]:
    try:
        record = orjson.loads(data)
    except orjson.JSONDecodeError as exc:
        raise InputError(f"not JSON ({exc})", path=source, line=line) from None
    if not isinstance(record, dict):
        raise InputError("not a JSON object", path=source, line=line)
    return record


def _trainer_row(record: dict[str, Any], method: str, source: str, line: int) -> dict[str, Any]:
    row: dict[str, Any] = {}
    keys = _REQUIRED[method]
    if method == "sft" and "messages" not in record and "completion" in record:
        keys = _REQUIRED["kto"]  # prompt-completion SFT rows (``sft --expand turns``)
    for key in keys:
        value = record.get(key)
        if not isinstance(value, list) or not value or not all(isinstance(m, dict) for m in value):
            raise InputError(
                f"{key!r} must be a non-empty list of messages ({method} data)", path=source, line=line
            )
        row[key] = [_text_message(m) for m in value]
    if method == "kto":
        if not isinstance(record.get("label"), bool):
            raise InputError("'label' must be true or false (kto data)", path=source, line=line)
        row["label"] = record["label"]
    row["tools"] = _tools_text(record.get("tools"))
    return row


def trainer_messages(messages: Iterable[dict[str, Any]]) -> list[dict[str, Any]]:
    """Messages as :func:`load_rows` hands them to the trainer (``validate`` renders these)."""
    return [_text_message(m) for m in messages]


def _text_message(message: dict[str, Any]) -> dict[str, Any]:
    """A message with tool-call arguments as JSON text and every dialect key present."""
    calls = message.get("tool_calls") or None
    if calls:
        calls = [_text_call(c) for c in calls]
    content = message.get("content")
    return {
        "role": message.get("role"),
        "content": content if isinstance(content, str) else ("" if content is None else json.dumps(content)),
        "tool_calls": calls,
        "tool_call_id": message.get("tool_call_id"),
        "reasoning_content": message.get("reasoning_content") or message.get("thinking"),
    }


def _text_call(call: dict[str, Any]) -> dict[str, Any]:
    inner = call.get("function")
    fn: dict[str, Any] = inner if isinstance(inner, dict) else call
    args = fn.get("arguments")
    text = args if isinstance(args, str) else json.dumps(args if args is not None else {})
    return {"id": call.get("id"), "type": "function", "function": {"name": fn.get("name"), "arguments": text}}


def _tools_text(tools: Any) -> str | None:
    if tools is None or tools == "" or tools == []:
        return None
    return tools if isinstance(tools, str) else json.dumps(tools)


def prepare_messages(
    messages: Iterable[dict[str, Any]], shape: RowShape | None = None
) -> list[dict[str, Any]]:
    """Messages ready for a chat template: None-valued keys dropped, ``arguments`` as ``shape``
    says (JSON text parsed to objects without a shape), reasoning under ``shape``'s key.

    >>> call = {"id": "c", "type": "function", "function": {"name": "add", "arguments": '{"a": 1}'}}
    >>> prepare_messages([{"role": "assistant", "content": "", "tool_calls": [call], "tool_call_id": None}])
    [{'role': 'assistant', 'content': '', 'tool_calls': [{'id': 'c', 'type': 'function', \
'function': {'name': 'add', 'arguments': {'a': 1}}}]}]
    """
    as_text = shape is not None and shape.arguments == "string"
    key = shape.reasoning if shape is not None and shape.reasoning != "inline" else None
    prepared = []
    for message in messages:
        clean = {k: v for k, v in message.items() if v is not None}
        if clean.get("tool_calls"):
            convert = _string_call if as_text else _object_call
            clean["tool_calls"] = [convert(c) for c in clean["tool_calls"]]
        if key is not None:
            _move_reasoning(clean, key)
        prepared.append(clean)
    return prepared


def _object_call(call: dict[str, Any]) -> dict[str, Any]:
    fn = dict(call.get("function") or {})
    args = fn.get("arguments")
    if isinstance(args, str):
        try:
            fn["arguments"] = json.loads(args) if args.strip() else {}
        except json.JSONDecodeError:
            pass
    return {**{k: v for k, v in call.items() if v is not None}, "function": fn}


def _string_call(call: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in _text_call(call).items() if v is not None}


def _move_reasoning(message: dict[str, Any], key: str) -> None:
    for other in ("reasoning_content", "thinking"):
        if other != key and other in message and key not in message:
            message[key] = message.pop(other)


def prepare_row(row: dict[str, Any]) -> dict[str, Any]:
    """A trainer row with ``tools`` and every message list ready for a chat template.

    >>> prepare_row({"messages": [{"role": "user", "content": "hi", "tool_calls": None}], "tools": "[]"})
    {'messages': [{'role': 'user', 'content': 'hi'}], 'tools': []}
    """
    prepared = dict(row)
    for key in ("messages", "prompt", "chosen", "rejected", "completion"):
        if isinstance(row.get(key), list):
            prepared[key] = prepare_messages(row[key])
    if "tools" in row:
        prepared["tools"] = prepare_tools(row["tools"])
    return prepared


def prepare_tools(tools: Any) -> Any:
    """Tools for a chat template: JSON text parsed, an empty list as None.

    >>> prepare_tools("[]") is None
    True
    """
    if isinstance(tools, str):
        try:
            tools = json.loads(tools) if tools.strip() else None
        except json.JSONDecodeError:
            return None
    return tools or None


def template_ready(tokenizer: Any, shape: RowShape | None = None) -> Any:
    """Make ``tokenizer.apply_chat_template`` prepare what it renders (:func:`prepare_messages`,
    :func:`prepare_tools`) for a template of ``shape``; returns the tokenizer.

    ``train`` hands the tokenizer so made to TRL; ``validate --tokenizer`` renders through it.
    """
    original = tokenizer.apply_chat_template

    def apply_chat_template(conversation: Any, *args: Any, tools: Any = None, **kwargs: Any) -> Any:
        if conversation and isinstance(conversation[0], list):
            conversation = [prepare_messages(c, shape) for c in conversation]
        elif isinstance(conversation, list):
            conversation = prepare_messages(conversation, shape)
        return original(conversation, *args, tools=prepare_tools(tools), **kwargs)

    tokenizer.apply_chat_template = apply_chat_template
    return tokenizer


def assistant_masks_possible(tokenizer: Any) -> bool:
    """Whether TRL can mask everything but the assistant's tokens with this tokenizer's template
    (``train``'s default ``assistant_only_loss`` for SFT)."""
    try:
        from trl.chat_template_utils import get_training_chat_template, has_generation_markers
    except ImportError:
        return False
    if has_generation_markers(tokenizer.chat_template):
        return True
    try:
        return get_training_chat_template(tokenizer) is not None
    except (ValueError, TypeError, NotImplementedError):
        return False


def rendering_template(tokenizer: Any, method: str, assistant_only: bool) -> str:
    """The template TRL renders with: for SFT with ``assistant_only`` and a template without
    ``{% generation %}`` markers, TRL's training variant of it; else the tokenizer's own."""
    template = str(tokenizer.chat_template)
    if method != "sft" or not assistant_only:
        return template
    try:
        from trl.chat_template_utils import get_training_chat_template, has_generation_markers
    except ImportError:
        return template
    if has_generation_markers(template):
        return template
    try:
        return get_training_chat_template(tokenizer) or template
    except (ValueError, TypeError, NotImplementedError):
        return template


def shaped_for_training(tokenizer: Any, method: str, assistant_only: bool) -> tuple[Any, TemplateProbe]:
    """``tokenizer`` made :func:`template_ready` for the template TRL will render with, and that
    template's probe."""
    import copy

    from rollcraft.formats._templates import probe_tokenizer

    probe_copy = copy.copy(tokenizer)
    probe_copy.chat_template = rendering_template(tokenizer, method, assistant_only)
    probe = probe_tokenizer(probe_copy)
    return template_ready(tokenizer, probe.shape), probe


def conversations(row: dict[str, Any]) -> list[list[dict[str, Any]]]:
    """The message lists TRL renders for a trainer row: ``messages``; or prompt+chosen and
    prompt+rejected (DPO); or prompt+completion (KTO)."""
    if "messages" in row:
        return [row["messages"]]
    return [row["prompt"] + row[side] for side in ("chosen", "rejected", "completion") if side in row]
