"""A DPO pair's row in each dialect (trl, openai, nemo-rl) from its two sides' conversations,
or the reason it carries no preference; and the pair's id in ``dpo_ids.txt``.
"""

from __future__ import annotations

import hashlib
from typing import TYPE_CHECKING, Any, cast

import orjson

from rollcraft._records import Conversation, Message, Tool
from rollcraft.formats._dialects import (
    Dialect,
    canonical_messages,
    encode_messages,
    encode_tools,
    strip_call_ids,
)
from rollcraft.formats._pairing import Candidate

if TYPE_CHECKING:
    from rollcraft.formats.dpo import DpoOptions


def pair_id(row: dict[str, Any], dialect: Dialect) -> str:
    """A pair's id in ``dpo_ids.txt``: ``chosen_id:rejected_id`` for trl, else 16 hex digits of the
    sha256 of the row's sorted-keys JSON (the other dialects' rows carry no ids)."""
    if dialect == "trl":
        return f"{row['chosen_id']}:{row['rejected_id']}"
    return hashlib.sha256(orjson.dumps(row, option=orjson.OPT_SORT_KEYS)).hexdigest()[:16]


def _pair_row(
    task_key: str,
    chosen: Conversation,
    rejected: Conversation,
    chosen_facts: Candidate,
    rejected_facts: Candidate,
    options: DpoOptions,
) -> tuple[dict[str, Any] | None, str]:
    prompt = chosen.prompt
    good, bad = chosen.completion, rejected.completion
    if options.dialect == "openai":  # no field for reasoning: sides differing only there are one side
        prompt, good, bad = _unreasoned(prompt), _unreasoned(good), _unreasoned(bad)
    if _same_messages(good, bad):
        return None, "identical_sides"
    if options.completion_mode == "first-divergence":
        split = _divergence(good, bad)
        if split is None:
            return None, "no_assistant_divergence"
        prompt = [*prompt, *good[:split]]
        good, bad = good[split : split + 1], bad[split : split + 1]
    return _encode_pair(task_key, prompt, good, bad, chosen.tools, chosen_facts, rejected_facts, options), ""


def _unreasoned(messages: list[Message]) -> list[Message]:
    """``messages`` as a dialect without reasoning writes them (``reasoning_content`` left out)."""
    if not any(m.get("reasoning_content") for m in messages):
        return messages
    return [cast(Message, {k: v for k, v in m.items() if k != "reasoning_content"}) for m in messages]


def _same_messages(good: list[Message], bad: list[Message]) -> bool:
    """``strip_call_ids(good) == strip_call_ids(bad)``, answered cheaply when the texts differ.

    Canonical bytes keep every key but the call ids, so a different length, role or text content
    already makes them differ.
    """
    if len(good) != len(bad):
        return False
    for a, b in zip(good, bad, strict=True):
        text_a, text_b = a["content"], b["content"]
        if type(text_a) is str and type(text_b) is str and (text_a != text_b or a["role"] != b["role"]):
            return False
    return strip_call_ids(good) == strip_call_ids(bad)


def _divergence(good: list[Message], bad: list[Message]) -> int | None:
    for index, (a, b) in enumerate(zip(canonical_messages(good), canonical_messages(bad), strict=False)):
        if a != b:
            both_assistant = good[index]["role"] == "assistant" and bad[index]["role"] == "assistant"
            return index if both_assistant else None
    return None


def _encode_pair(
    task_key: str,
    prompt: list[Message],
    good: list[Message],
    bad: list[Message],
    tools: list[Tool],
    chosen: Candidate,
    rejected: Candidate,
    options: DpoOptions,
) -> dict[str, Any]:
    dialect, arguments, shape = options.dialect, options.arguments, options.shape
    context = encode_messages(prompt, dialect, arguments=arguments, shape=shape)
    win = encode_messages(good, dialect, arguments=arguments, shape=shape)
    lose = encode_messages(bad, dialect, arguments=arguments, shape=shape)
    encoded_tools = encode_tools(tools, dialect, shape)
    if dialect == "openai":
        return {
            "input": {"messages": context, "tools": encoded_tools},
            "preferred_output": win,
            "non_preferred_output": lose,
        }
    if dialect == "nemo-rl":
        return {
            "context": context,
            "completions": [{"rank": 0, "completion": win}, {"rank": 1, "completion": lose}],
        }
    return {
        "prompt": context,
        "chosen": win,
        "rejected": lose,
        "tools": encoded_tools,
        "quality_difference": round(chosen.reward - rejected.reward, 12),
        "task_key": task_key,
        "chosen_reward": chosen.reward,
        "rejected_reward": rejected.reward,
        "chosen_id": chosen.rollout_id,
        "rejected_id": rejected.rollout_id,
    }
