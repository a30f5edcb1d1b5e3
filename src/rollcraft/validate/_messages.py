"""Message checks for every dialect: roles, content, tool calls and the call/result flow."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

import orjson

from rollcraft.validate._json import _text_of, _type_name
from rollcraft.validate._row import _Facts, _Row

_ROLES = frozenset({"system", "user", "assistant", "tool"})
_THINK = re.compile(r"<think>.*?(</think>|$)", re.DOTALL)


def _check_role(msg: dict[str, Any], where: str, row: _Row) -> str | None:
    role = msg.get("role")
    if role is None:
        row.add("missing_key", f"{where}: no 'role'")
        return None
    if not isinstance(role, str):
        row.add("wrong_type", f"{where}.role is {_type_name(role)}, not string")
        return None
    if role == "developer":
        if row.dialect != "openai":
            row.add("developer_role", f"{where}: role 'developer' (most chat templates know only 'system')")
        return "system"
    if role not in _ROLES:
        row.add("unknown_role", f"{where}: unknown role {role!r}")
        return None
    return role


def _check_content(msg: dict[str, Any], role: str, where: str, row: _Row) -> None:
    if "content" not in msg:
        if not (role == "assistant" and msg.get("tool_calls")):
            row.add("missing_key", f"{where}: no 'content'")
        return
    content = msg["content"]
    if isinstance(content, str) or (content is None and role == "assistant"):
        return
    if isinstance(content, list) and all(isinstance(p, dict) and "type" in p for p in content):
        return
    row.add("wrong_type", f"{where}.content is {_type_name(content)}, not string")


def _check_optional_strings(msg: dict[str, Any], where: str, row: _Row) -> None:
    for key in ("reasoning_content", "name"):
        value = msg.get(key)
        if value is not None and not isinstance(value, str):
            row.add("wrong_type", f"{where}.{key} is {_type_name(value)}, not string")
    if row.dialect == "openai" and "weight" in msg:
        weight = msg["weight"]
        if msg.get("role") != "assistant" or weight not in (0, 1) or isinstance(weight, bool):
            row.add("wrong_type", f"{where}.weight must be 0 or 1 on an assistant message, not {weight!r}")


def _check_arguments(args: Any, where: str, row: _Row) -> None:
    if isinstance(args, dict):
        if row.dialect == "openai":
            row.add("wrong_type", f"{where}.arguments is an object; the openai dialect needs a JSON string")
        return
    if not isinstance(args, str):
        row.add("wrong_type", f"{where}.arguments is {_type_name(args)}")
        return
    try:
        parsed = orjson.loads(args)
    except ValueError:
        row.add("invalid_arguments", f"{where}.arguments is not valid JSON: {args[:60]!r}")
        return
    if not isinstance(parsed, dict):
        row.add("invalid_arguments", f"{where}.arguments is JSON {_type_name(parsed)}, not an object")


def _check_call(call: Any, where: str, row: _Row) -> tuple[str | None, str | None]:
    """Check one tool call; returns its (id, function name) where readable."""
    if not isinstance(call, dict):
        row.add("wrong_type", f"{where} is {_type_name(call)}, not object")
        return None, None
    call_id, fn = call.get("id"), call.get("function")
    if call_id is None:
        row.add("missing_key", f"{where}: no 'id'")
    elif not isinstance(call_id, str):
        row.add("wrong_type", f"{where}.id is {_type_name(call_id)}, not string")
        call_id = None
    if "type" in call and call["type"] != "function":
        row.add("wrong_type", f"{where}.type is {call['type']!r}, not 'function'")
    elif "type" not in call and row.dialect == "openai":
        row.add("missing_key", f"{where}: no 'type'")
    if not isinstance(fn, dict):
        row.add(
            "missing_key" if fn is None else "wrong_type", f"{where}: 'function' missing or not an object"
        )
        return call_id, None
    name = fn.get("name")
    if not isinstance(name, str):
        row.add(
            "missing_key" if name is None else "wrong_type", f"{where}.function.name missing or not a string"
        )
        name = None
    if "arguments" not in fn:
        row.add("missing_key", f"{where}.function: no 'arguments'")
    else:
        _check_arguments(fn["arguments"], f"{where}.function", row)
    return call_id, name


def _calls_of(msg: dict[str, Any], role: str, where: str, row: _Row) -> list[tuple[str | None, str | None]]:
    calls = msg.get("tool_calls")
    if calls is None:
        return []
    if not isinstance(calls, list):
        row.add("wrong_type", f"{where}.tool_calls is {_type_name(calls)}, not array")
        return []
    if calls and role != "assistant":
        row.add("wrong_type", f"{where}: a {role} message with tool_calls")
        return []
    return [_check_call(c, f"{where}.tool_calls[{i}]", row) for i, c in enumerate(calls)]


@dataclass(slots=True)
class _Flow:
    """Walks a conversation, pairing tool calls with their results."""

    row: _Row
    tool_names: frozenset[str] | None
    open_calls: dict[str, str] = field(default_factory=dict)
    done: set[str] = field(default_factory=set)
    seen_ids: set[str] = field(default_factory=set)

    def calls(self, calls: list[tuple[str | None, str | None]], where: str) -> None:
        self.close(where)
        for call_id, name in calls:
            if name is not None and self.tool_names is not None and name not in self.tool_names:
                self.row.add("unknown_tool", f"{where}: calls {name!r}, which is not in the row's tools")
            if call_id is None:
                continue
            if call_id in self.seen_ids:
                self.row.add("duplicate_tool_call_id", f"{where}: tool call id {call_id!r} used twice")
            self.seen_ids.add(call_id)
            self.open_calls[call_id] = where

    def result(self, msg: dict[str, Any], where: str) -> None:
        call_id = msg.get("tool_call_id")
        if call_id is None:
            self.row.add("missing_key", f"{where}: tool message without 'tool_call_id'")
        elif not isinstance(call_id, str):
            self.row.add("wrong_type", f"{where}.tool_call_id is {_type_name(call_id)}, not string")
        elif call_id in self.open_calls:
            del self.open_calls[call_id]
            self.done.add(call_id)
        else:
            why = "was already answered" if call_id in self.done else "matches no earlier tool call"
            self.row.add("orphan_tool_result", f"{where}: tool_call_id {call_id!r} {why}")

    def close(self, where: str) -> None:
        """A non-tool message arrived: every open call went unanswered."""
        for call_id, at in self.open_calls.items():
            self.row.add("unanswered_tool_call", f"{at}: tool call {call_id!r} has no result before {where}")
        self.open_calls.clear()


def _check_messages(
    messages: Any, where: str, row: _Row, tool_names: frozenset[str] | None, *, final_call_ok: bool
) -> list[dict[str, Any]]:
    """Check a message list (shape, roles, tool-call flow); returns its well-formed messages."""
    if not isinstance(messages, list):
        row.add("missing_key" if messages is None else "wrong_type", f"{where} missing or not an array")
        return []
    flow, good = _Flow(row, tool_names), []
    for i, msg in enumerate(messages):
        at = f"{where}[{i}]"
        if not isinstance(msg, dict):
            row.add("wrong_type", f"{at} is {_type_name(msg)}, not object")
            continue
        role = _check_role(msg, at, row)
        if role is None:
            continue
        _check_content(msg, role, at, row)
        _check_optional_strings(msg, at, row)
        calls = _calls_of(msg, role, at, row)
        if role == "tool":
            flow.result(msg, at)
        elif calls:
            flow.calls(calls, at)
        else:
            flow.close(at)
        good.append(msg)
    _end_flow(flow, messages, where, final_call_ok=final_call_ok)
    return good


def _end_flow(flow: _Flow, messages: list[Any], where: str, *, final_call_ok: bool) -> None:
    last = f"{where}[{len(messages) - 1}]"
    if not flow.open_calls:
        return
    if all(at == last for at in flow.open_calls.values()):
        if not final_call_ok:
            flow.row.add(
                "final_tool_call", f"{last}: the conversation ends in a tool call that is never answered"
            )
        flow.open_calls.clear()
        return
    flow.close("the end of the conversation")


def _message_facts(messages: list[dict[str, Any]], facts: _Facts) -> None:
    for msg in messages:
        facts.n_messages += 1
        calls = msg.get("tool_calls")
        calls = calls if isinstance(calls, list) else []
        if msg.get("role") == "assistant":
            facts.n_assistant += 1
            facts.n_tool_calls += len(calls)
        facts.chars += len(_text_of(msg.get("content"))) + len(msg.get("reasoning_content") or "")
        for call in calls:
            fn = call.get("function") if isinstance(call, dict) else None
            args = fn.get("arguments") if isinstance(fn, dict) else None
            facts.chars += len(args) if isinstance(args, str) else len(orjson.dumps(args))


def _visible(msg: dict[str, Any]) -> str:
    return _THINK.sub("", _text_of(msg.get("content"))).strip()


def _check_answers(messages: list[dict[str, Any]], where: str, row: _Row) -> None:
    """Warn about assistant answers (no tool calls) with no letter or digit."""
    for i, msg in enumerate(messages):
        if msg.get("role") == "assistant" and not msg.get("tool_calls"):
            if not any(ch.isalnum() for ch in _visible(msg)):
                row.add(
                    "near_empty_answer",
                    f"{where}[{i}]: assistant answer {_visible(msg)[:20]!r} is (nearly) empty",
                )
