"""Responses-API items, tutorial records and chat records -> one chat :class:`Conversation`.

The rules (``docs/normalization.md`` has the full table):

* ``instructions`` becomes a leading system message; a string ``input`` one user message;
  ``developer`` messages become ``system`` messages.
* One assistant turn is the run of reasoning / assistant message / function_call items up to the
  next function_call_output or user/system/developer message; consecutive function calls are one
  assistant message with several ``tool_calls`` whose ids are the items' ``call_id``.
* A function_call_output is a ``tool`` message; text parts are joined with newlines.
* Reasoning summaries go to ``reasoning_content`` (``reasoning="think"`` inlines them as
  ``<think>...</think>``; ``reasoning="drop"`` leaves them out).
* ``response.output`` given as step snapshots (a list of lists) uses the last snapshot.
* Hosted-tool items (web search, file search, computer use, MCP, code interpreter, ...) have no
  place in a chat-completions conversation: they are left out and the rollout is flagged.
* A namespaced function (a call's ``namespace``, a ``namespace`` tool) is named as the model saw
  it, ``<namespace>__<name>``; a message item with no role and no text (a model call captured
  only as token ids) makes no message.

Whatever is lost or doubtful is named by a flag on the rollout (see :data:`FLAGS`). Each rule
lives once, in :class:`Builder` (items and messages) and :func:`part_text` (content parts): the
general reader feeds them decoded dicts, the fast path (:mod:`rollcraft.read._fast`) msgspec structs.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any, Literal

import orjson

from rollcraft._json import ORJSON_DEPTH, read_json
from rollcraft._records import Conversation, Message, Tool

__all__ = [
    "FLAGS",
    "ORJSON_DEPTH",
    "TEXT_PARTS",
    "Builder",
    "ReasoningMode",
    "TooDeep",
    "conversation_from_chat",
    "conversation_from_responses",
    "items_of",
    "json_text",
    "part_text",
    "read_json",
    "value_text",
]

ReasoningMode = Literal["separate", "think", "drop"]

#: Every flag the normalizer can set, with what it means.
FLAGS: dict[str, str] = {
    "unpaired_tool_call": "a tool call never got its output",
    "orphan_tool_output": "a tool output answers no earlier tool call",
    "truncated": "the generation was cut off (incomplete_details / status incomplete)",
    "encrypted_reasoning": "a reasoning item carried only encrypted content",
    "empty_reasoning": "a reasoning item had no text at all",
    "image_content": "an image was replaced by the placeholder <image>",
    "file_content": "a file attachment was replaced by the placeholder <file>",
    "audio_content": "audio was replaced by the placeholder <audio>",
    "refusal": "the model refused (a refusal content part)",
    "empty_completion": "the agent produced nothing",
    "empty_prompt": "no prompt could be found",
    "prompt_in_output": "the prompt sat at the start of response.output and was moved to the prompt",
    "no_final_assistant": "the completion does not end with an assistant message",
    "empty_final_answer": "the last assistant message has no text and no tool calls",
    "step_snapshots": "response.output was a list of step snapshots; the last one was used",
    "hosted_tool_call": "a hosted-tool item (web search, MCP, computer use, ...) was left out",
    "hosted_tool": "a hosted (non-function) tool definition was left out",
    "invalid_tool_arguments": "a tool call's arguments are not valid JSON",
    "missing_call_id": "a tool call had no call_id; one was made up",
    "unknown_item": "an item of unknown type was left out",
    "malformed_item": "an item that is not an object was left out",
    "inline_think": "assistant text already carries inline <think> tags",
    "token_only_item": "an item with no role and no text (a call captured only as token ids) made no message",
    "mask_sample": "the record asks to be left out of the loss (mask_sample)",
    "verification_skipped": "the reward is a placeholder (verification_skipped)",
    "superseded_attempt": "a later attempt (_ng_attempt_index) of the same rollout is in the same file",
    "duplicate_rollout": "an earlier line of the file holds the same attempt of the same rollout",
    "from_trajectory": "the conversation is the main agent's model-visible history from ng_trajectory",
    "trajectory_gap": "ng_trajectory names a gap in this conversation's history (not stitched)",
}

#: What joins a namespaced function's namespace and name, as NeMo Gym's model servers join them
#: for the model (``<namespace>__<name>``: the name the model saw and calls).
NAMESPACE_DELIMITER = "__"

TEXT_PARTS = frozenset({"input_text", "output_text", "text", "summary_text", "reasoning_text"})
_PLACEHOLDERS = {
    "input_image": ("<image>", "image_content"),
    "image_url": ("<image>", "image_content"),
    "image": ("<image>", "image_content"),
    "input_file": ("<file>", "file_content"),
    "file": ("<file>", "file_content"),
    "input_audio": ("<audio>", "audio_content"),
    "audio": ("<audio>", "audio_content"),
}

_loads = orjson.loads  # bound once: the builder checks every tool call's arguments
_JSONDecodeError = orjson.JSONDecodeError


class TooDeep(ValueError):
    """A value the reader keeps or turns into text nests deeper than orjson writes (254 levels):
    it could not be written back out. The reader quarantines the line as ``too_deeply_nested``."""


def json_text(value: Any) -> str:
    """A decoded JSON value as JSON text, written by orjson.

    Raises :class:`TooDeep` for a value nested deeper than orjson writes: the same limit on every
    path and in every process (Python's ``repr`` recurses, and fails near 1000 levels minus the
    stack in use).
    """
    try:
        return orjson.dumps(value).decode()
    except orjson.JSONEncodeError as exc:
        raise TooDeep(f"a value nests deeper than can be written: {exc}") from None


def value_text(value: Any) -> str:
    """A value where text is wanted: a string as is, a list or object as its JSON
    (:func:`json_text`), any other value (a number, a boolean) as ``str`` gives it."""
    if isinstance(value, str):
        return value
    if isinstance(value, (list, dict)):
        return json_text(value)
    return str(value)


def content_text(content: Any, flags: set[str]) -> str:
    """The text of a message ``content``: a string, or a list of parts joined with newlines."""
    if content is None:
        return ""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        if len(content) == 1:
            part = content[0]
            if type(part) is dict and part.get("type") in TEXT_PARTS:
                text = part.get("text")
                if type(text) is str:
                    return text
            return _part_text(part, flags)
        return "\n".join([_part_text(part, flags) for part in content])
    if isinstance(content, dict):
        return _part_text(content, flags)
    return value_text(content)


def _part_text(part: Any, flags: set[str]) -> str:
    if isinstance(part, str):
        return part
    if not isinstance(part, dict):
        return value_text(part)
    return part_text(part.get("type"), "text" in part, part.get("text"), part.get("refusal"), flags)


def part_text(kind: Any, has_text: bool, text: Any, refusal: Any, flags: set[str]) -> str:
    """The text of a content part of type ``kind`` (None: untyped) from its fields: ``text``
    (``has_text``: the part has the key; None when it has not), ``refusal``. A refusal or a
    placeholder sets its flag; a part of unknown type gives no text and ``unknown_item``."""
    if kind in TEXT_PARTS or (kind is None and has_text):
        return text if isinstance(text, str) else ("" if text is None else value_text(text))
    if kind == "refusal":
        flags.add("refusal")
        return value_text(refusal or "")
    if kind in _PLACEHOLDERS:
        placeholder, flag = _PLACEHOLDERS[kind]
        flags.add(flag)
        return placeholder
    flags.add("unknown_item")
    return ""


@dataclass(slots=True)
class _Turn:
    texts: list[str] = field(default_factory=list)
    calls: list[dict[str, Any]] = field(default_factory=list)
    reasoning: list[str] = field(default_factory=list)


class Builder:
    """Chat messages from a stream of decoded items: the one place for each rule of the
    Responses-to-chat mapping. A reader decodes items its own way (dicts here, structs in
    :mod:`rollcraft.read._fast`) and calls these methods in the items' order:

    * :meth:`add_message` for a message (``developer`` -> ``system``, ``tool`` -> a tool output,
      ``assistant`` -> text of the open assistant turn);
    * :meth:`add_call` for a function call (an id made up where it has none; arguments that are
      not JSON flagged);
    * :meth:`add_tool_output` for a function call's output (one answering no open call flagged);
    * :meth:`add_reasoning` for a reasoning item's texts;
    * :meth:`end_prompt` after the prompt's items, and :meth:`finish` for the conversation.
    """

    __slots__ = ("_made_ids", "_open_calls", "_split", "_turn", "flags", "messages", "reasoning_mode")

    def __init__(self, reasoning_mode: ReasoningMode, flags: set[str]) -> None:
        self.reasoning_mode = reasoning_mode
        self.flags = flags
        self.messages: list[Message] = []
        self._turn: _Turn | None = None
        self._open_calls: dict[str, None] = {}
        self._made_ids = 0
        self._split = 0

    def add_message(self, role: Any, text: str, tool_call_id: Any = None) -> None:
        """A message of ``role`` with content ``text`` (``tool_call_id`` for a ``tool`` message).

        A message with no role and no text (NeMo Gym's token-only item of a model call whose
        content was not captured) makes no message: flagged ``token_only_item``."""
        if role == "assistant":
            turn = self._turn
            if turn is None:
                turn = self._turn = _Turn()
            if text:
                turn.texts.append(text)
        elif role == "tool":
            self.add_tool_output(tool_call_id, text)
        elif role is None and not text:
            self.flags.add("token_only_item")
        else:
            if self._turn is not None:
                self.close_turn()
            name = "system" if role == "developer" else (role if isinstance(role, str) else "user")
            self.messages.append({"role": name, "content": text})

    def add_call(
        self, call_id: Any, name: Any, arguments: Any, item_id: Any = None, namespace: Any = None
    ) -> None:
        """A function call of the open assistant turn: its ``call_id`` (else ``item_id``), the
        function's name and arguments (JSON text, or a value written as JSON). A ``namespace``
        joins the name as the model saw it: ``<namespace>__<name>``."""
        turn = self._turn
        if turn is None:
            turn = self._turn = _Turn()
        call_id = call_id or item_id
        if not isinstance(call_id, str) or not call_id:
            self._made_ids += 1
            call_id = f"call_{self._made_ids}"
            self.flags.add("missing_call_id")
        if arguments is None:
            arguments = "{}"
        elif isinstance(arguments, str):
            try:
                _loads(arguments)
            except _JSONDecodeError:
                self.flags.add("invalid_tool_arguments")
        else:
            arguments = json_text(arguments)
        name = name if isinstance(name, str) else value_text(name or "")
        if namespace and isinstance(namespace, str):
            name = f"{namespace}{NAMESPACE_DELIMITER}{name}"
        function = {"name": name, "arguments": arguments}
        turn.calls.append({"id": call_id, "type": "function", "function": function})
        self._open_calls[call_id] = None

    def add_tool_output(self, call_id: Any, text: str) -> None:
        """The output ``text`` of the call ``call_id``: a ``tool`` message, after the open turn."""
        if self._turn is not None:
            self.close_turn()
        key = call_id if isinstance(call_id, str) else ""
        open_calls = self._open_calls
        if key in open_calls:
            del open_calls[key]
        else:
            self.flags.add("orphan_tool_output")
        self.messages.append({"role": "tool", "tool_call_id": key, "content": text})

    def add_reasoning(self, texts: list[str], encrypted: object = None) -> None:
        """A reasoning item's texts (summary then content parts), joined into the open turn's
        reasoning; with no text at all, flagged (``encrypted``: it carried encrypted content)."""
        text = texts[0] if len(texts) == 1 else "\n".join([t for t in texts if t])
        if not text:
            self.flags.add("encrypted_reasoning" if encrypted else "empty_reasoning")
            return
        turn = self._turn
        if turn is None:
            turn = self._turn = _Turn()
        turn.reasoning.append(text)

    def close_turn(self) -> None:
        """The open assistant turn (if any) as one assistant message."""
        turn, self._turn = self._turn, None
        if turn is None:
            return
        content = "\n".join(turn.texts)
        reasoning = "\n".join(turn.reasoning)
        if reasoning and self.reasoning_mode == "think":
            content = (
                f"<think>\n{reasoning}\n</think>\n{content}" if content else f"<think>\n{reasoning}\n</think>"
            )
        message: Message = {"role": "assistant", "content": content}
        if turn.calls:
            message["tool_calls"] = turn.calls
        if reasoning and self.reasoning_mode == "separate":
            message["reasoning_content"] = reasoning
        self.messages.append(message)

    def end_prompt(self) -> None:
        """The messages so far are the prompt; the completion follows."""
        self.close_turn()
        self._split = len(self.messages)

    def finish(self, tools: list[Tool], *, flag_prompt_in_output: bool = True) -> Conversation:
        """The conversation: prompt, completion and ``tools``, with the flags on the whole of it.

        With no prompt, the completion's leading system/user messages are the prompt (flagged
        ``prompt_in_output`` unless ``flag_prompt_in_output`` is false).
        """
        self.close_turn()
        messages, split = self.messages, self._split
        prompt, completion = messages[:split], messages[split:]
        if not prompt:
            prompt, completion = _leading_prompt(completion, self.flags, quiet=not flag_prompt_in_output)
        if self._open_calls:
            self.flags.add("unpaired_tool_call")
        return _finish(Conversation(prompt, completion, tools), self.reasoning_mode, self.flags)

    def feed(self, items: Iterable[Any]) -> None:
        """Decoded items (dicts: Responses items or chat messages), in order."""
        for item in items:
            self._item(item)

    def _item(self, item: Any) -> None:
        if not isinstance(item, dict):
            self.flags.add("malformed_item")
            return
        kind = item.get("type")
        if kind == "function_call":
            get = item.get
            self.add_call(get("call_id"), get("name"), get("arguments"), get("id"), get("namespace"))
        elif kind == "function_call_output":
            output = item.get("output")
            self.add_tool_output(
                item.get("call_id"), output if isinstance(output, str) else content_text(output, self.flags)
            )
        elif kind == "message" or (kind is None and isinstance(item.get("role"), str)):
            self._message(item)
        elif kind == "reasoning":
            texts = [content_text(part, self.flags) for part in item.get("summary") or ()]
            texts += [content_text(part, self.flags) for part in item.get("content") or ()]
            self.add_reasoning(texts, item.get("encrypted_content"))
        elif isinstance(kind, str) and ("_call" in kind or kind.startswith("mcp_")):
            self.flags.add("hosted_tool_call")
        else:
            self.flags.add("unknown_item")

    def _message(self, item: dict[str, Any]) -> None:
        role = item.get("role")
        content = item.get("content")
        self.add_message(
            role,
            content if type(content) is str else content_text(content, self.flags),
            item.get("tool_call_id"),
        )
        if role != "assistant":
            return
        reasoning = item.get("reasoning_content") or item.get("reasoning")
        if isinstance(reasoning, str) and reasoning:
            self.add_reasoning([reasoning])
        for call in item.get("tool_calls") or ():
            if isinstance(call, dict):
                nested = call.get("function")
                function: dict[str, Any] = nested if isinstance(nested, dict) else call
                self.add_call(call.get("id"), function.get("name"), function.get("arguments"))


def nest_tools(tools: Any, flags: set[str]) -> list[Tool]:
    """Responses tools (flat) or chat tools (nested) -> chat tools (nested); hosted tools are flagged.

    Raises :class:`TooDeep` when a tool's ``parameters`` nest too deeply to be written in an
    output row (the only nested value a rollout keeps).
    """
    nested: list[Tool] = []
    for tool in tools if isinstance(tools, list) else ():
        if not isinstance(tool, dict):
            continue
        if isinstance(tool.get("function"), dict):
            nested.append({"type": "function", "function": _tool_function(tool["function"])})
        elif tool.get("type") == "function" and "name" in tool:
            nested.append({"type": "function", "function": _tool_function(tool)})
        elif tool.get("type") == "namespace" and isinstance(tool.get("tools"), list):
            nested.extend(_namespace_tools(tool, flags))
        else:
            flags.add("hosted_tool")
    if nested:
        json_text([[[[nested]]]])  # room for the levels an output row puts around its tools
    return nested


def _namespace_tools(tool: dict[str, Any], flags: set[str]) -> list[Tool]:
    """A ``namespace`` tool (functions grouped under a name) as the function tools the model saw:
    each named ``<namespace>__<name>``, as NeMo Gym's model servers flatten them."""
    namespace = value_text(tool.get("name") or "")
    functions: list[Tool] = []
    for sub in tool["tools"]:
        if isinstance(sub, dict) and sub.get("name") and sub.get("type", "function") == "function":
            function = _tool_function(sub)
            function["name"] = f"{namespace}{NAMESPACE_DELIMITER}{function['name']}"
            functions.append({"type": "function", "function": function})
        else:
            flags.add("hosted_tool")
    return functions


def _tool_function(spec: dict[str, Any]) -> dict[str, Any]:
    function: dict[str, Any] = {"name": value_text(spec.get("name") or "")}
    description = spec.get("description")
    function["description"] = description if isinstance(description, str) else ""
    parameters = spec.get("parameters")
    function["parameters"] = (
        parameters if isinstance(parameters, dict) else {"type": "object", "properties": {}}
    )
    return function


def items_of(value: Any, flags: set[str]) -> list[Any]:
    """Responses items of an ``input`` or ``output`` value: a string is one user message; step
    snapshots (a list of lists) give the last snapshot (flagged ``step_snapshots``)."""
    if isinstance(value, str):
        return [{"role": "user", "content": value}]
    if not isinstance(value, list):
        return []
    if value and all(isinstance(step, list) for step in value):
        flags.add("step_snapshots")
        return list(value[-1])
    return value


def conversation_from_responses(
    params: dict[str, Any],
    output: Any,
    *,
    reasoning: ReasoningMode = "separate",
    flags: set[str],
) -> Conversation:
    """A NeMo Gym record's request (``responses_create_params``) and ``response.output`` as chat."""
    builder = Builder(reasoning, flags)
    instructions = params.get("instructions")
    if isinstance(instructions, str) and instructions:
        builder.add_message("system", instructions)
    builder.feed(items_of(params.get("input"), flags))
    builder.end_prompt()
    builder.feed(items_of(output, flags))
    return builder.finish(nest_tools(params.get("tools"), flags))


def conversation_from_chat(
    prompt_items: Any,
    messages: Any,
    tools: Any,
    *,
    reasoning: ReasoningMode = "separate",
    flags: set[str],
) -> Conversation:
    """Chat messages (optionally after explicit prompt items) as a conversation.

    With no explicit prompt, the leading system/user messages of ``messages`` are the prompt.
    """
    builder = Builder(reasoning, flags)
    builder.feed(items_of(prompt_items, flags))
    builder.end_prompt()
    builder.feed(items_of(messages, flags))
    return builder.finish(nest_tools(tools, flags), flag_prompt_in_output=False)


def _leading_prompt(
    messages: list[Message], flags: set[str], *, quiet: bool = False
) -> tuple[list[Message], list[Message]]:
    cut = 0
    while cut < len(messages) and messages[cut]["role"] in ("system", "user"):
        cut += 1
    if cut and not quiet:
        flags.add("prompt_in_output")
    return messages[:cut], messages[cut:]


def _finish(conversation: Conversation, reasoning_mode: ReasoningMode, flags: set[str]) -> Conversation:
    if not conversation.prompt:
        flags.add("empty_prompt")
    completion = conversation.completion
    if not completion:
        flags.add("empty_completion")
        return conversation
    last = completion[-1]
    if last["role"] != "assistant":
        flags.add("no_final_assistant")
    elif not last["content"] and not last.get("tool_calls"):
        flags.add("empty_final_answer")
    if reasoning_mode != "think":
        for message in completion:  # a plain loop: any() over a generator costs twice as much
            if message["role"] == "assistant" and "<think>" in message["content"]:
                flags.add("inline_think")
                break
    return conversation
