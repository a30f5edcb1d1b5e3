"""Row checks per kind (SFT, DPO, KTO) and dialect (trl, openai, nemo-rl): keys, tools, rewards, sides.

SFT rows are ``messages`` rows, or trl prompt-completion rows (``sft --expand turns`` writes one
per assistant turn, with its ``turn``); KTO rows are trl ``prompt``/``completion``/``label``.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import orjson

from rollcraft.formats.tokens import TOKENS
from rollcraft.validate._codes import _Findings
from rollcraft.validate._json import _canonical, _is_number, _type_name
from rollcraft.validate._messages import _check_answers, _check_messages, _message_facts, _visible
from rollcraft.validate._row import _Facts, _Row
from rollcraft.validate._tokens import check_token_row

_OPENAI_SFT_KEYS = frozenset({"messages", "tools", "parallel_tool_calls"})
_OPENAI_DPO_KEYS = frozenset({"input", "preferred_output", "non_preferred_output"})


# ---------------------------------------------------------------------------------------------
# Tools, rewards, task types


def _parse_tools(value: Any, row: _Row) -> list[dict[str, Any]] | None:
    """The row's tools as a list (a JSON string in trl), or None when absent or broken."""
    if value is None:
        return None
    if isinstance(value, str) and row.dialect == "trl":
        try:
            value = orjson.loads(value)
        except ValueError:
            row.add("invalid_tool", "tools is a string that is not valid JSON")
            return None
    if not isinstance(value, list):
        row.add("wrong_type", f"tools is {_type_name(value)}, not array")
        return None
    return [t for i, t in enumerate(value) if _check_tool(t, i, row)]


def _check_tool(tool: Any, index: int, row: _Row) -> bool:
    fn = tool.get("function") if isinstance(tool, dict) else None
    if (
        not isinstance(fn, dict)
        or tool.get("type", "function") != "function"
        or not isinstance(fn.get("name"), str)
    ):
        row.add("invalid_tool", f"tools[{index}] is not {{type: function, function: {{name, ...}}}}")
        return False
    params = fn.get("parameters")
    if params is not None and not isinstance(params, dict):
        row.add("invalid_tool", f"tools[{index}].function.parameters is {_type_name(params)}, not object")
        return False
    return True


def _tool_names(tools: list[dict[str, Any]] | None) -> frozenset[str] | None:
    if not tools:
        return None
    return frozenset(t["function"]["name"] for t in tools)


def _number(row_data: dict[str, Any], key: str, row: _Row) -> float | None:
    value = row_data.get(key)
    if value is None:
        return None
    if not _is_number(value):
        row.add("wrong_type", f"{key} is {_type_name(value)}, not a finite number")
        return None
    return float(value)


def _reward(row_data: dict[str, Any], key: str, row: _Row) -> float | None:
    value = _number(row_data, key, row)
    if value is not None and not 0.0 <= value <= 1.0:
        row.add("reward_out_of_range", f"{key} {value:g} is outside [0, 1]")
    return value


def _task(row_data: dict[str, Any], keys: Sequence[str], row: _Row) -> str | None:
    for key in keys:
        value = row_data.get(key)
        if value is None:
            continue
        if isinstance(value, str):
            return value
        row.add("wrong_type", f"{key} is {_type_name(value)}, not string")
    return None


def _unexpected_keys(data: dict[str, Any], allowed: frozenset[str], row: _Row) -> None:
    for key in sorted(data.keys() - allowed):
        row.add("unexpected_key", f"key {key!r} is not part of the openai format")


# ---------------------------------------------------------------------------------------------
# SFT rows


def _check_sft(data: dict[str, Any], row: _Row) -> _Facts:
    if row.dialect == "trl" and "messages" not in data and ("prompt" in data or "completion" in data):
        return _check_prompt_completion(data, row)
    facts = _Facts()
    if row.dialect == "openai":
        _unexpected_keys(data, _OPENAI_SFT_KEYS, row)
    tools = _parse_tools(data.get("tools"), row)
    messages = data.get("messages")
    good = _check_messages(messages, "messages", row, _tool_names(tools), final_call_ok=False)
    if isinstance(messages, list) and not messages:
        row.add("empty_messages", "messages is empty")
    elif good and len(good) == len(messages or []):
        _sft_ending(good, row)
        facts.renders.append((good[:-1], good))
    _check_answers(good, "messages", row)
    _message_facts(good, facts)
    facts.tools = tools or []
    facts.empty_tools = tools == []
    facts.reward = _reward(data, "reward", row) if row.dialect == "trl" else None
    facts.task = _task(data, ("task_type", "task_name"), row)
    facts.fingerprint = _canonical([messages, tools])
    return facts


def _sft_ending(messages: list[dict[str, Any]], row: _Row) -> None:
    role = messages[-1].get("role")
    if role != "assistant":
        row.add(
            "last_not_assistant",
            f"messages[{len(messages) - 1}] is {role!r}; the last message must be the assistant's",
        )


# ---------------------------------------------------------------------------------------------
# Prompt-completion rows: SFT (``sft --expand turns``) and KTO


def _check_prompt_completion(data: dict[str, Any], row: _Row) -> _Facts:
    """A trl ``prompt``/``completion`` row: the prompt's messages, a non-empty completion that
    ends with the assistant, tools as JSON text; the label (KTO) or the turn (SFT)."""
    facts = _Facts()
    tools = _parse_tools(data.get("tools"), row)
    names = _tool_names(tools)
    prompt_value, completion = data.get("prompt"), data.get("completion")
    prompt = _check_messages(prompt_value, "prompt", row, names, final_call_ok=True)
    if isinstance(prompt_value, list) and not prompt_value:
        row.add("prompt_required", "prompt is empty: TRL's trainer fails on it (is_conversational)")
    _earlier_reasoning(prompt, row)
    facts.prompt_messages = len(prompt)
    _message_facts(prompt, facts)
    good = _check_side(prompt_value, completion, "completion", row, names)
    _message_facts(good, facts)
    if good and isinstance(completion, list) and len(good) == len(completion):
        facts.renders.append((prompt + good[:-1], prompt + good))
        facts.completion = good
    facts.tools = tools or []
    facts.empty_tools = tools == []
    facts.reward = _reward(data, "reward", row)
    facts.task = _task(data, ("task_type",), row)
    facts.rollout_id = data.get("rollout_id") if isinstance(data.get("rollout_id"), str) else None
    if row.kind == "kto":
        facts.label = _label(data, row)
    else:
        facts.turn = _turn(data, row)
    facts.fingerprint = _canonical([prompt_value, completion, data.get("label"), tools])
    return facts


def _label(data: dict[str, Any], row: _Row) -> bool | None:
    if "label" not in data:
        row.add("missing_key", "no 'label' (true: desirable, false: undesirable)")
        return None
    label = data["label"]
    if not isinstance(label, bool):
        row.add("invalid_label", f"label is {_type_name(label)} {label!r}, not true or false")
        return None
    return label


def _turn(data: dict[str, Any], row: _Row) -> int | None:
    turn = data.get("turn")
    if turn is None:
        return None
    if not isinstance(turn, int) or isinstance(turn, bool) or turn < 0:
        row.add("wrong_type", f"turn is {turn!r}, not a turn index (0, 1, ...)")
        return None
    return turn


def _earlier_reasoning(prompt: list[dict[str, Any]], row: _Row) -> None:
    """An assistant turn in the prompt that keeps its reasoning: thinking templates do not show it
    at inference, so the row conditions on text the model never sees."""
    kept = [i for i, m in enumerate(prompt) if m.get("role") == "assistant" and _reasoning_of(m)]
    if kept:
        row.add(
            "reasoning_in_prompt",
            f"{len(kept)} assistant turn(s) of the prompt keep their reasoning (prompt[{kept[0]}], ...)",
        )


def _reasoning_of(message: dict[str, Any]) -> bool:
    value = message.get("reasoning_content") or message.get("thinking")
    return isinstance(value, str) and bool(value.strip())


# ---------------------------------------------------------------------------------------------
# DPO rows


@dataclass(slots=True)
class _Pair:
    prompt: Any
    chosen: Any
    rejected: Any
    names: tuple[str, str, str]
    tools: Any = None


def _pair_of(data: dict[str, Any], row: _Row) -> _Pair | None:
    if row.dialect == "trl":
        return _Pair(
            data.get("prompt"),
            data.get("chosen"),
            data.get("rejected"),
            ("prompt", "chosen", "rejected"),
            data.get("tools"),
        )
    if row.dialect == "openai":
        _unexpected_keys(data, _OPENAI_DPO_KEYS, row)
        inp = data.get("input")
        if not isinstance(inp, dict):
            row.add("missing_key" if inp is None else "wrong_type", "input missing or not an object")
            inp = {}
        names = ("input.messages", "preferred_output", "non_preferred_output")
        return _Pair(
            inp.get("messages"),
            data.get("preferred_output"),
            data.get("non_preferred_output"),
            names,
            inp.get("tools"),
        )
    return _nemo_rl_pair(data, row)


def _nemo_rl_pair(data: dict[str, Any], row: _Row) -> _Pair | None:
    completions = data.get("completions")
    if not isinstance(completions, list):
        row.add("missing_key" if completions is None else "wrong_type", "completions missing or not an array")
        return None
    ranks = [c.get("rank") if isinstance(c, dict) else None for c in completions]
    if len(completions) != 2 or sorted(r for r in ranks if isinstance(r, int)) != [0, 1]:
        row.add("bad_completions", f"completions must be exactly two with ranks 0 and 1, got ranks {ranks}")
        return None
    by_rank = {c["rank"]: c for c in completions}
    names = (
        "context",
        f"completions[{ranks.index(0)}].completion",
        f"completions[{ranks.index(1)}].completion",
    )
    return _Pair(data.get("context"), by_rank[0].get("completion"), by_rank[1].get("completion"), names)


def _check_dpo(data: dict[str, Any], row: _Row) -> _Facts:
    facts = _Facts()
    pair = _pair_of(data, row)
    if pair is None:
        return facts
    tools = _parse_tools(pair.tools, row)
    names = _tool_names(tools)
    prompt = _check_messages(pair.prompt, pair.names[0], row, names, final_call_ok=True)
    facts.prompt_messages = len(prompt)
    if isinstance(pair.prompt, list) and not pair.prompt:
        row.add("empty_prompt", f"{pair.names[0]} is empty")
    _message_facts(prompt, facts)
    for side, name in ((pair.chosen, pair.names[1]), (pair.rejected, pair.names[2])):
        good = _check_side(pair.prompt, side, name, row, names)
        _message_facts(good, facts)
        if good and len(good) == len(side):
            facts.renders.append((prompt + good[:-1], prompt + good))
    _compare_sides(pair, row)
    facts.tools = tools or []
    facts.empty_tools = tools == []
    _dpo_numbers(data, row, facts)
    facts.fingerprint = _canonical([pair.prompt, pair.chosen, pair.rejected, tools])
    return facts


def _check_side(
    prompt: Any, side: Any, name: str, row: _Row, tool_names: frozenset[str] | None
) -> list[dict[str, Any]]:
    """Check chosen or rejected, walking the tool flow over prompt + side; returns its good messages."""
    if not isinstance(side, list):
        row.add("missing_key" if side is None else "wrong_type", f"{name} missing or not an array")
        return []
    if not side:
        row.add("empty_completion", f"{name} is empty")
        return []
    whole = [*(prompt if isinstance(prompt, list) else []), *side]
    scratch = _Row(row.number, row.kind, row.dialect, _Findings(10**6))
    _check_messages(whole, "conversation", scratch, tool_names, final_call_ok=True)
    offset = len(whole) - len(side)
    for f in scratch.sink.items:
        row.add(f.code, _rename(f.message, offset, name))
    good = [m for m in side if isinstance(m, dict)]
    _side_ending(side, name, row)
    return good


def _rename(message: str, offset: int, name: str) -> str:
    """Turn ``conversation[i]`` into ``prompt[i]`` or ``chosen[i - offset]`` in a message."""

    def sub(match: re.Match[str]) -> str:
        i = int(match.group(1))
        return f"prompt[{i}]" if i < offset else f"{name}[{i - offset}]"

    return re.sub(r"conversation\[(\d+)\]", sub, message)


def _side_ending(side: list[Any], name: str, row: _Row) -> None:
    last = side[-1]
    if not isinstance(last, dict):
        return
    if last.get("role") != "assistant":
        row.add(
            "last_not_assistant",
            f"{name}[{len(side) - 1}] is {last.get('role')!r}; it must be the assistant's",
        )
    elif all(isinstance(m, dict) and not _visible(m) and not m.get("tool_calls") for m in side):
        row.add("empty_completion", f"{name} has no text and no tool calls")
    else:
        _check_answers([m for m in side if isinstance(m, dict)], name, row)
    if row.dialect != "trl" and len(side) > 1:
        trained = "the final message" if row.dialect == "nemo-rl" else "one assistant message"
        row.add(
            "multi_message_completion",
            f"{name} has {len(side)} messages; the {row.dialect} dialect trains {trained}",
        )


def _compare_sides(pair: _Pair, row: _Row) -> None:
    chosen, rejected = pair.chosen, pair.rejected
    if (
        isinstance(chosen, list)
        and isinstance(rejected, list)
        and chosen
        and _canonical(chosen) == _canonical(rejected)
    ):
        row.add(
            "identical_pair", f"{pair.names[1]} and {pair.names[2]} are identical (tool-call ids set aside)"
        )


def _dpo_numbers(data: dict[str, Any], row: _Row, facts: _Facts) -> None:
    if row.dialect != "trl":
        return
    facts.chosen_reward = _reward(data, "chosen_reward", row)
    facts.rejected_reward = _reward(data, "rejected_reward", row)
    margin = _number(data, "quality_difference", row)
    if margin is None and facts.chosen_reward is not None and facts.rejected_reward is not None:
        margin = facts.chosen_reward - facts.rejected_reward
    if margin is not None and margin <= 0:
        row.add(
            "non_positive_margin", f"margin {margin:g} is not positive: chosen is not better than rejected"
        )
    facts.margin = margin
    facts.task = _task(data, ("task_type", "task_key"), row)


def _check_line(data: bytes, row: _Row) -> _Facts | None:
    try:
        value = orjson.loads(data)
    except ValueError as exc:
        row.add("not_json", f"not valid JSON: {str(exc).splitlines()[0][:120]}")
        return None
    if not isinstance(value, dict):
        row.add("not_object", f"a JSON {_type_name(value)}, not an object")
        return None
    if row.kind == "kto":
        return _check_prompt_completion(value, row)
    if row.dialect == TOKENS:
        return check_token_row(value, row)
    return _check_sft(value, row) if row.kind == "sft" else _check_dpo(value, row)
