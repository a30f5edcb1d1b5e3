"""Filter steps: each keeps a rollout or drops it and says why.

A step is a small frozen object with a ``name`` (its config key) and one method,
``check(rollout) -> str | None``: ``None`` keeps the rollout, a string is the reason it is
dropped. Steps run in config order; a dropped rollout is attributed to the first step that
drops it, and the report also counts what each step alone would drop::

    >>> from rollcraft.filters import FilterConfig, build_steps
    >>> steps = build_steps(FilterConfig(min_reward=0.5, dedupe=True))
    >>> [step.name for step in steps]
    ['min_reward', 'dedupe', 'drop_flagged']

Keys run in the order they are named (YAML order, keyword order); active keys not named (a
flag not in the YAML, the default ``drop_flagged``) follow in :data:`STEP_KEYS` order.

The task-level step (``min_success_rate``) needs :class:`TaskStats` from a first pass over the
inputs; :func:`rollcraft.filter_paths` does both passes (spooling stdin to a temporary file).

The package, one role a module: ``_base`` (:class:`Filter`, :class:`Drop`), ``_thresholds``
(the per-rollout steps), ``_tokens`` (:class:`MaxTokens`), ``_tasks`` (:class:`TaskStats`,
:class:`MinTaskSuccessRate`), ``_config`` (:class:`FilterConfig`), ``_judge`` (:func:`judge`,
:class:`FilterReport`), ``_passes`` (two passes over stdin). This module holds dedupe (its
memory looks ``conversation_key`` up here) and the step registries with :func:`build_steps`.
The runner of every kind of step, filters among them, is :mod:`rollcraft.steps`.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, ClassVar

import orjson
from xxhash import xxh3_128_digest

from rollcraft._compact import FirstSeen
from rollcraft._records import Conversation, Message, Rollout
from rollcraft._tokenizer import cached_tokenizer
from rollcraft.filters._base import Drop, Filter
from rollcraft.filters._config import DEFAULT_DROP_FLAGS, STEP_KEYS, FilterConfig
from rollcraft.filters._config import _config_error as _config_error
from rollcraft.filters._config import _Count as _Count
from rollcraft.filters._config import _located as _located
from rollcraft.filters._judge import FilterReport, judge, run_filters
from rollcraft.filters._judge import _Judge as _Judge
from rollcraft.filters._judge import _twin as _twin
from rollcraft.filters._passes import relabel as relabel
from rollcraft.filters._passes import rereadable as rereadable
from rollcraft.filters._tasks import MinTaskSuccessRate, TaskStats
from rollcraft.filters._thresholds import (
    DropFlagged,
    MaxAssistantTurns,
    MaxChars,
    MaxReward,
    MaxTurns,
    MinAssistantTurns,
    MinReward,
    MinTurns,
    RequireToolUsage,
    SuccessOnly,
)
from rollcraft.filters._tokens import MaxTokens
from rollcraft.filters._tokens import _message_text as _message_text
from rollcraft.filters._tokens import _rendered as _rendered
from rollcraft.filters._tokens import count_tokens as count_tokens

__all__ = [
    "DEFAULT_DROP_FLAGS",
    "STEP_KEYS",
    "Dedupe",
    "Drop",
    "DropFlagged",
    "Filter",
    "FilterConfig",
    "FilterReport",
    "MaxAssistantTurns",
    "MaxChars",
    "MaxReward",
    "MaxTokens",
    "MaxTurns",
    "MinAssistantTurns",
    "MinReward",
    "MinTaskSuccessRate",
    "MinTurns",
    "RequireToolUsage",
    "SuccessOnly",
    "TaskStats",
    "build_steps",
    "conversation_key",
    "judge",
    "rereadable",
    "run_filters",
]


# ---------------------------------------------------------------------------------------------
# Dedupe


class _DedupeMemory:
    """What a dedupe step and its twin saw: per conversation key, the id of the first rollout
    that reached the step (None while only the twin has seen the key). One dict for both, and
    the key of the rollout being judged computed once for both (the twin asks right after the
    step): before, each kept its own dict and computed the key again."""

    __slots__ = ("_first_id", "_key", "_rollout", "_seen_before", "_stored", "first")

    def __init__(self) -> None:
        self.first = FirstSeen()
        self._rollout: Rollout | None = None
        self._key = b""
        self._seen_before = self._stored = False
        self._first_id: str | None = None

    def key(self, rollout: Rollout) -> tuple[bytes, bool]:
        """The rollout's key, and whether any rollout before it had that key."""
        if rollout is not self._rollout:
            key = conversation_key(rollout.conversation)
            self._rollout, self._key, self._stored = rollout, key, False
            self._seen_before, self._first_id = self.first.lookup(key)
        return self._key, self._seen_before

    def first_id(self, rollout: Rollout) -> str | None:
        """The id of the first rollout with this rollout's key that reached the step."""
        self.key(rollout)
        return self._first_id

    def reached(self, rollout_id: str) -> None:
        """The rollout (just looked up, with no first id) reached the step: it is the first."""
        if self._seen_before:
            self.first[self._key] = rollout_id  # only the twin had seen the key
        else:
            self.first.add(self._key, rollout_id)
        self._stored, self._first_id = True, rollout_id  # the same object checked again: a duplicate

    def seen(self) -> bool:
        """For the twin, after :meth:`key`: whether an earlier rollout had the key; else the key
        is remembered (with no first id unless the step just gave it this rollout's)."""
        if not self._seen_before and not self._stored:
            self.first.add(self._key, None)
        self._rollout = None  # judged: the same object judged again is a later rollout
        return self._seen_before


@dataclass(frozen=True, slots=True)
class Dedupe:
    """Drop a rollout whose conversation was seen before (the first one seen is kept).

    Stateful: one instance remembers what it saw (per distinct conversation, its 16-byte digest
    and the first id: 25 bytes, :class:`rollcraft._compact.FirstSeen`).
    """

    name: ClassVar[str] = "dedupe"
    stateful: ClassVar[bool] = True
    _memory: _DedupeMemory = field(default_factory=_DedupeMemory, init=False, repr=False, compare=False)

    def check(self, rollout: Rollout) -> str | None:
        memory = self._memory
        first = memory.first_id(rollout)
        if first is not None:
            return f"duplicate of {first}"
        memory.reached(rollout.rollout_id)
        return None

    def twin(self) -> Filter:
        """The step as if alone (it sees every rollout), sharing this step's memory."""
        return _DedupeTwin(self._memory)


@dataclass(frozen=True, slots=True)
class _DedupeTwin:
    memory: _DedupeMemory
    name: ClassVar[str] = "dedupe"

    def check(self, rollout: Rollout) -> str | None:
        memory = self.memory
        memory.key(rollout)
        return "duplicate" if memory.seen() else None


def conversation_key(conversation: Conversation) -> bytes:
    """The dedupe key: an XXH3-128 of the canonical JSON of prompt, completion and tools, ids set aside.

    >>> from rollcraft import Conversation
    >>> a = Conversation([{"role": "user", "content": "hi"}], [])
    >>> conversation_key(a) == conversation_key(Conversation([{"role": "user", "content": "hi"}], []))
    True
    """
    payload = {
        "prompt": [_without_ids(m) for m in conversation.prompt],
        "completion": [_without_ids(m) for m in conversation.completion],
        "tools": conversation.tools,
    }
    return xxh3_128_digest(orjson.dumps(payload, option=orjson.OPT_SORT_KEYS))


def _without_ids(message: Message) -> Message:
    if "tool_call_id" not in message and not message.get("tool_calls"):
        return message
    clean = {k: v for k, v in message.items() if k != "tool_call_id"}
    if message.get("tool_calls"):
        clean["tool_calls"] = [{k: v for k, v in call.items() if k != "id"} for call in message["tool_calls"]]
    return clean


# ---------------------------------------------------------------------------------------------
# Building and running steps


def build_steps(
    config: FilterConfig,
    *,
    key_order: Sequence[str] | None = None,
    task_stats: TaskStats | None = None,
) -> list[Filter]:
    """The active steps of ``config``, keys in ``key_order`` first (default: the config's order).

    ``task_stats`` is needed when ``min_success_rate`` is set (see :meth:`TaskStats.collect`).

    >>> [s.name for s in build_steps(FilterConfig(max_turns=8, drop_flagged=[]))]
    ['max_turns']
    """
    given = [k for k in (config.key_order if key_order is None else key_order) if k in STEP_KEYS]
    order = list(dict.fromkeys([*given, *STEP_KEYS]))
    return [step for key in order if (step := _step(key, config, task_stats)) is not None]


_THRESHOLD_STEPS: dict[str, Callable[[Any], Filter]] = {
    "min_reward": MinReward,
    "max_reward": MaxReward,
    "min_turns": MinTurns,
    "max_turns": MaxTurns,
    "min_assistant_turns": MinAssistantTurns,
    "max_assistant_turns": MaxAssistantTurns,
    "max_chars": MaxChars,
    "drop_flagged": lambda flags: DropFlagged(frozenset(flags)),
}
_SWITCH_STEPS: dict[str, Callable[[], Filter]] = {
    "success_only": SuccessOnly,
    "require_tool_usage": RequireToolUsage,
    "dedupe": Dedupe,
}


def _step(key: str, config: FilterConfig, stats: TaskStats | None) -> Filter | None:
    value = getattr(config, key)
    if value is None or value is False or value == []:
        return None
    if key == "min_success_rate":
        if stats is None:
            raise ValueError("min_success_rate needs task_stats from a first pass (TaskStats.collect)")
        return MinTaskSuccessRate(value, stats)
    if key == "max_tokens":
        cached_tokenizer(str(config.tokenizer))
        return MaxTokens(value, str(config.tokenizer))
    if key in _SWITCH_STEPS:
        return _SWITCH_STEPS[key]()
    return _THRESHOLD_STEPS[key](value)
