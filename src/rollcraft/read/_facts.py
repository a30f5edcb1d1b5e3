"""The per-record facts: the ONE place for the task key and the rest a record says besides its
conversation.

A rollout's task key (:func:`task_key_of`, and the pieces the fast path uses: :func:`_task_id_key`,
:func:`_indexed`, :func:`_index_key`), its reward, success, task type, reward components,
record-level flags and rollout id, each read the same way by the general and the fast path of
:mod:`rollcraft.read._reader` (which imports them from here: the same global lookup per line as before).
:class:`_Quarantine` is here too, as a fact may quarantine its line (no reward, a missing task key
field). This module imports nothing of the reader.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any, NamedTuple

import orjson
from xxhash import xxh3_64_hexdigest

from rollcraft._records import Conversation


class _Quarantine(Exception):
    def __init__(self, reason: str, detail: str) -> None:
        super().__init__(detail)
        self.reason = reason
        self.detail = detail


class _Facts(NamedTuple):
    """What a rollout's record says besides its conversation and reward (a tuple: made per line)."""

    task_key: str
    rollout_index: int | None
    reward_components: dict[str, float]
    success: bool
    task_type: str
    agent: str | None


def _reward(record: dict[str, Any]) -> float:
    if "reward" not in record:
        raise _Quarantine("bad_reward", "no reward")
    value = record["reward"]
    if isinstance(value, str):  # a number beyond a double's range reads as its text (``read_json``)
        raise _Quarantine("bad_reward", f"reward is the string {value[:40]!r}, not a number")
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise _Quarantine("bad_reward", f"reward is {type(value).__name__}, not a number")
    reward = float(value)
    if not math.isfinite(reward):
        raise _Quarantine("bad_reward", f"reward is {reward}")
    return reward


def rollout_id_of(line: bytes) -> str:
    """A rollout's stable id: the 64-bit XXH3 of its original line, as 16 hex digits.

    XXH3 (not a cryptographic hash: ids only need to be stable and, at 64 bits, to collide as
    rarely as any 16-hex-digit id) runs at memory speed; sha256 cost 40% of the decode itself.

    The line is hashed without surrounding whitespace; it is copied only when it has some.
    """
    if line[:1].isspace() or line[-1:].isspace():
        line = line.strip()
    return xxh3_64_hexdigest(line)


def task_key_of(
    record: dict[str, Any], conversation: Conversation, agent: str | None, field_name: str | None
) -> str:
    """The stable key of a record's task (the same in every run, process and file).

    ``field_name`` when given (dots reach into objects); else ``task_id`` with the agent name
    (two environments number their tasks alike: ``task_id`` 3 of one is not task 3 of another);
    else an XXH3-64 of the prompt (instructions, input items, tools; not sampling settings or
    seeds) with the agent
    name, and ``_ng_task_index`` when the record has one; else the agent name with
    ``_ng_task_index``.

    Identical prompt text is not the same task: an environment's own fields (the app to act on,
    the expected answer, an image, a seed) can differ under one prompt, and NeMo Gym's
    ``_ng_task_index`` (the input row a rollout was collected from) says which task it is. Two
    rollouts meet only when both the prompt digest and the index agree: a missed pair costs
    little, a wrong pair teaches the wrong preference.
    """
    if field_name:
        value = _dotted(record, field_name)
        if value is None:
            raise _Quarantine("malformed_record", f"task key field {field_name!r} missing")
        return f"{field_name}:{_scalar(value)}"
    if record.get("task_id") is not None:
        return _task_id_key(agent, record["task_id"])
    if conversation.prompt:
        payload = {"agent": agent, "prompt": conversation.prompt, "tools": conversation.tools}
        digest = xxh3_64_hexdigest(orjson.dumps(payload, option=orjson.OPT_SORT_KEYS))
        return _indexed(f"prompt:{digest}", record.get("_ng_task_index"))
    return _index_key(agent, record.get("_ng_task_index"))


def _task_id_key(agent: str | None, task_id: Any) -> str:
    """``task_id:AGENT:ID``, or ``task_id:ID`` for a record without an agent name."""
    return f"task_id:{agent}:{_scalar(task_id)}" if agent else f"task_id:{_scalar(task_id)}"


def _index_key(agent: str | None, task_index: Any) -> str:
    return f"index:{agent or ''}:{_scalar(task_index)}"


def _indexed(prompt_key: str, task_index: Any) -> str:
    """A prompt's key with the record's ``_ng_task_index`` (``prompt:DIGEST#INDEX``), when it has one."""
    return prompt_key if task_index is None else f"{prompt_key}#{_scalar(task_index)}"


def _scalar(value: Any) -> str:
    return value if isinstance(value, str) else orjson.dumps(value, option=orjson.OPT_SORT_KEYS).decode()


def _dotted(record: dict[str, Any], path: str) -> Any:
    value: Any = record
    for part in path.split("."):
        if not isinstance(value, dict):
            return None
        value = value.get(part)
    return value


def _agent(record: dict[str, Any]) -> str | None:
    ref = record.get("agent_ref")
    name = ref.get("name") if isinstance(ref, dict) else None
    return name if isinstance(name, str) and name else None


def _task_type(declared: Any, category: Any, agent: str | None) -> str:
    """``metadata.task_type``, else ``category`` (non-empty strings only), else the agent, else general."""
    if isinstance(declared, str) and declared:
        return declared
    if isinstance(category, str) and category:
        return category
    return agent or "general"


def _success(declared: Sequence[Any], reward: float, threshold: float) -> bool:
    """The first boolean of ``success``, ``is_correct``, ``resolved``; else ``reward >= threshold``."""
    for value in declared:
        if isinstance(value, bool):
            return value
    return reward >= threshold


def _components(value: Any) -> dict[str, float]:
    if not isinstance(value, dict):
        return {}
    return {
        str(k): float(v)
        for k, v in value.items()
        if isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(float(v))
    }


def _mark(flags: set[str], mask_sample: Any, verification_skipped: Any) -> None:
    """The record-level flags: set only by a literal ``true``."""
    if mask_sample is True:
        flags.add("mask_sample")
    if verification_skipped is True:
        flags.add("verification_skipped")
