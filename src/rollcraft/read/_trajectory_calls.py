"""How ``ng_trajectory``'s model calls become model-visible conversations (for
:mod:`rollcraft.read._trajectory`): calls joined into contexts (a call extends the context whose last
request its own request repeats), each call's request and response read in the ``responses``,
``chat`` or ``messages`` (Anthropic) dialect through the one normalizer (``Builder``)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from rollcraft._records import Conversation, Message
from rollcraft.read._normalize import (
    Builder,
    ReasoningMode,
    content_text,
    items_of,
    json_text,
    nest_tools,
    value_text,
)

__all__ = ["_Context", "_contexts", "_list"]

#: The dialects a model call is recorded in.
_DIALECTS = ("responses", "chat", "messages")


@dataclass(slots=True)
class _Context:
    """A run of model calls, each extending the one before: one model-visible conversation."""

    keys: tuple[tuple[Any, ...], ...]
    conversation: Conversation
    flags: set[str]


# --- contexts from model calls ---------------------------------------------------------------


def _contexts(
    calls: list[dict[str, Any]], reasoning: ReasoningMode, gaps: list[str], *, last_only: bool
) -> list[_Context]:
    """The calls' contexts, in order of their first call: a call joins the latest context whose
    last request its own request extends, else it starts a new one (``last_only``: only the
    last call's context: each request repeats the history, so reading every call costs the
    square of its length).

    A call that returned nothing is not a model decision and is skipped; one whose request or
    response is not an object (a payload NeMo Gym kept only as raw text) is a gap, and so is a
    request that continues a stored response (``previous_response_id``): the model saw a
    history the request does not hold."""
    usable = []
    for call in calls:
        request, response = call.get("request"), call.get("response")
        if response is None:
            continue
        if isinstance(request, dict) and isinstance(response, dict):
            usable.append(call)
            if request.get("previous_response_id"):
                gaps.append("model_call_previous_response")
        else:
            gaps.append("model_call_payload_unavailable")
    contexts: list[_Context] = []
    for call in usable[-1:] if last_only else usable:
        keys, conversation, flags = _call_conversation(call, reasoning)
        for context in reversed(contexts):
            if keys[: len(context.keys)] == context.keys:
                context.keys, context.conversation, context.flags = keys, conversation, flags
                break
        else:
            contexts.append(_Context(keys, conversation, flags))
    return contexts


def _call_conversation(
    call: dict[str, Any], reasoning: ReasoningMode
) -> tuple[tuple[tuple[Any, ...], ...], Conversation, set[str]]:
    """One model call (request and response objects) as (its request's message keys, the
    conversation of request + response, its flags)."""
    request, response = call["request"], call["response"]
    flags: set[str] = set()
    builder = Builder(reasoning, flags)
    dialect = _dialect(call, request, response)
    tools: Any
    if dialect == "messages":
        tools = _messages_request(builder, request, flags)
        builder.close_turn()
        n_request = len(builder.messages)
        _messages_response(builder, response, flags)
    else:
        if dialect == "responses":
            instructions = request.get("instructions")
            if isinstance(instructions, str) and instructions:
                builder.add_message("system", instructions)
            builder.feed(items_of(request.get("input"), flags))
        else:
            builder.feed(items_of(request.get("messages"), flags))
        tools = request.get("tools")
        builder.close_turn()
        n_request = len(builder.messages)
        _response_items(builder, dialect, response, flags)
    keys = tuple(_key(message) for message in builder.messages[:n_request])
    return keys, builder.finish(nest_tools(tools, flags), flag_prompt_in_output=False), flags


def _dialect(call: dict[str, Any], request: dict[str, Any], response: dict[str, Any]) -> str:
    metadata = call.get("response_metadata")
    named = metadata.get("dialect") if isinstance(metadata, dict) else None
    if named in _DIALECTS:
        return str(named)
    if "choices" in response:
        return "chat"
    if response.get("type") == "message" or "system" in request:
        return "messages"
    return "responses" if "input" in request or "output" in response else "chat"


def _response_items(builder: Builder, dialect: str, response: dict[str, Any], flags: set[str]) -> None:
    if dialect == "responses":
        builder.feed(items_of(response.get("output"), flags))
        details = response.get("incomplete_details")
        if (isinstance(details, dict) and details.get("reason")) or response.get("status") == "incomplete":
            flags.add("truncated")
        return
    choices = response.get("choices")
    choice = choices[0] if isinstance(choices, list) and choices else None
    if isinstance(choice, dict):
        message = choice.get("message")
        if isinstance(message, dict):
            builder.feed([{"role": "assistant", **message}])
        if choice.get("finish_reason") == "length":
            flags.add("truncated")


def _key(message: Message) -> tuple[Any, ...]:
    """What a later request must repeat of a message to continue its context (reasoning aside:
    harnesses drop it from the history they send back)."""
    calls = tuple(
        (call["id"], call["function"]["name"], call["function"]["arguments"])
        for call in message.get("tool_calls") or ()
    )
    return (message["role"], message["content"], message.get("tool_call_id"), calls)


# --- the messages (Anthropic) dialect --------------------------------------------------------


def _messages_request(builder: Builder, request: dict[str, Any], flags: set[str]) -> list[Any]:
    """A Messages request's system prompt and messages into ``builder``; its tools as function tools."""
    system = request.get("system")
    if system:
        builder.add_message("system", system if isinstance(system, str) else content_text(system, flags))
    for message in _list(request.get("messages")):
        if not isinstance(message, dict):
            flags.add("malformed_item")
        elif message.get("role") == "assistant":
            _assistant_blocks(builder, message.get("content"), flags)
        else:
            _user_blocks(builder, message.get("role"), message.get("content"), flags)
    tools: list[Any] = []
    for tool in _list(request.get("tools")):
        if isinstance(tool, dict) and "input_schema" in tool:
            name, description = tool.get("name"), tool.get("description")
            tools.append(
                {
                    "type": "function",
                    "name": name,
                    "description": description,
                    "parameters": tool["input_schema"],
                }
            )
        else:
            tools.append(tool)  # a hosted tool: nest_tools flags it
    return tools


def _messages_response(builder: Builder, response: dict[str, Any], flags: set[str]) -> None:
    _assistant_blocks(builder, response.get("content"), flags)
    if response.get("stop_reason") == "max_tokens":
        flags.add("truncated")


def _user_blocks(builder: Builder, role: Any, content: Any, flags: set[str]) -> None:
    """A user message's blocks: text and media in order, each ``tool_result`` a tool output."""
    texts: list[str] = []
    for block in content if isinstance(content, list) else [content]:
        if isinstance(block, dict) and block.get("type") == "tool_result":
            if texts:
                builder.add_message(role, "\n".join(texts))
                texts = []
            builder.add_tool_output(block.get("tool_use_id"), content_text(block.get("content"), flags))
        elif block is not None:
            texts.append(content_text(block, flags))
    if texts:
        builder.add_message(role, "\n".join(texts))


def _assistant_blocks(builder: Builder, content: Any, flags: set[str]) -> None:
    """An assistant message's blocks: text, thinking (reasoning) and ``tool_use`` calls."""
    for block in content if isinstance(content, list) else [content]:
        if isinstance(block, str):
            builder.add_message("assistant", block)
        elif not isinstance(block, dict):
            if block is not None:
                flags.add("malformed_item")
        elif block.get("type") == "text":
            builder.add_message("assistant", value_text(block.get("text") or ""))
        elif block.get("type") == "thinking":
            builder.add_reasoning([value_text(block.get("thinking") or "")])
        elif block.get("type") == "redacted_thinking":
            builder.add_reasoning([], block.get("data") or True)
        elif block.get("type") == "tool_use":
            arguments = block.get("input")
            arguments = json_text(arguments if arguments is not None else {})
            builder.add_call(block.get("id"), block.get("name"), arguments)
        else:
            flags.add("unknown_item")


def _list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else []
