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
inputs; :func:`filter_paths` does both passes (spooling stdin to a temporary file).
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
import shutil
import sys
import tempfile
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Annotated, Any, ClassVar, Protocol

import orjson
from pydantic import BaseModel, ConfigDict, Field, PrivateAttr, ValidationError, field_validator
from pydantic_core.core_schema import ValidationInfo
from xxhash import xxh3_128_digest

from rollcraft._compact import FirstSeen
from rollcraft._errors import ConfigError
from rollcraft._normalize import FLAGS
from rollcraft._read import ReadOptions, ReadReport, read_rollouts
from rollcraft._records import Conversation, Message, Quarantined, Rollout
from rollcraft._tokenizer import cached_tokenizer
from rollcraft._yamlconf import load_yaml

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
    "filter_paths",
    "judge",
    "rereadable",
    "run_filters",
]

#: The flags ``drop_flagged`` drops by default: records whose conversation is cut off, broken,
#: empty, or asks to be left out of training (``[]`` in the config disables the step).
DEFAULT_DROP_FLAGS: tuple[str, ...] = (
    "truncated",
    "unpaired_tool_call",
    "orphan_tool_output",
    "empty_completion",
    "invalid_tool_arguments",
    "mask_sample",
    "verification_skipped",
)


class Filter(Protocol):
    """What a filter step is: a config-key ``name`` and ``check`` (None keeps, a string drops)."""

    name: ClassVar[str]

    def check(self, rollout: Rollout) -> str | None: ...


# ---------------------------------------------------------------------------------------------
# The steps


@dataclass(frozen=True, slots=True)
class MinReward:
    """Keep rollouts whose reward is at least ``threshold``."""

    threshold: float
    name: ClassVar[str] = "min_reward"

    def check(self, rollout: Rollout) -> str | None:
        return None if rollout.reward >= self.threshold else f"reward {rollout.reward:g} < {self.threshold:g}"


@dataclass(frozen=True, slots=True)
class MaxReward:
    """Keep rollouts whose reward is at most ``threshold``."""

    threshold: float
    name: ClassVar[str] = "max_reward"

    def check(self, rollout: Rollout) -> str | None:
        return None if rollout.reward <= self.threshold else f"reward {rollout.reward:g} > {self.threshold:g}"


@dataclass(frozen=True, slots=True)
class SuccessOnly:
    """Keep successful rollouts (explicit success/is_correct/resolved, else reward >= the threshold)."""

    name: ClassVar[str] = "success_only"

    def check(self, rollout: Rollout) -> str | None:
        return None if rollout.success else f"not a success (reward {rollout.reward:g})"


@dataclass(frozen=True, slots=True)
class MinTurns:
    """Keep rollouts with at least ``minimum`` completion messages (the tutorial's ``len(output)``)."""

    minimum: int
    name: ClassVar[str] = "min_turns"

    def check(self, rollout: Rollout) -> str | None:
        n = rollout.n_turns
        return None if n >= self.minimum else f"{n} turns < {self.minimum}"


@dataclass(frozen=True, slots=True)
class MaxTurns:
    """Keep rollouts with at most ``maximum`` completion messages."""

    maximum: int
    name: ClassVar[str] = "max_turns"

    def check(self, rollout: Rollout) -> str | None:
        n = rollout.n_turns
        return None if n <= self.maximum else f"{n} turns > {self.maximum}"


@dataclass(frozen=True, slots=True)
class MinAssistantTurns:
    """Keep rollouts with at least ``minimum`` assistant messages in the completion."""

    minimum: int
    name: ClassVar[str] = "min_assistant_turns"

    def check(self, rollout: Rollout) -> str | None:
        n = rollout.n_assistant_turns
        return None if n >= self.minimum else f"{n} assistant turns < {self.minimum}"


@dataclass(frozen=True, slots=True)
class MaxAssistantTurns:
    """Keep rollouts with at most ``maximum`` assistant messages in the completion."""

    maximum: int
    name: ClassVar[str] = "max_assistant_turns"

    def check(self, rollout: Rollout) -> str | None:
        n = rollout.n_assistant_turns
        return None if n <= self.maximum else f"{n} assistant turns > {self.maximum}"


@dataclass(frozen=True, slots=True)
class RequireToolUsage:
    """Keep rollouts in which the agent made at least one tool call."""

    name: ClassVar[str] = "require_tool_usage"

    def check(self, rollout: Rollout) -> str | None:
        return None if rollout.uses_tools else "no tool call"


@dataclass(frozen=True, slots=True)
class MaxChars:
    """Keep rollouts whose message texts (prompt and completion) total at most ``maximum`` characters."""

    maximum: int
    name: ClassVar[str] = "max_chars"

    def check(self, rollout: Rollout) -> str | None:
        n = rollout.n_chars
        return None if n <= self.maximum else f"{n} chars > {self.maximum}"


@dataclass(frozen=True, slots=True)
class DropFlagged:
    """Drop rollouts that carry any of ``flags`` (see ``rollcraft.FLAGS``)."""

    flags: frozenset[str]
    name: ClassVar[str] = "drop_flagged"

    def check(self, rollout: Rollout) -> str | None:
        hit = rollout.flags & self.flags
        return "flagged " + ", ".join(sorted(hit)) if hit else None


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


@dataclass(frozen=True, slots=True)
class MaxTokens:
    """Keep rollouts of at most ``maximum`` tokens with the local Hugging Face tokenizer in ``tokenizer``.

    The conversation is rendered with the tokenizer's chat template (tools included) when it has
    one that renders it, else its texts are joined with newlines. Needs ``transformers``.
    """

    maximum: int
    tokenizer: str
    name: ClassVar[str] = "max_tokens"

    def check(self, rollout: Rollout) -> str | None:
        n = count_tokens(rollout.conversation, cached_tokenizer(self.tokenizer))
        return None if n <= self.maximum else f"{n} tokens > {self.maximum}"


def count_tokens(conversation: Conversation, tokenizer: Any) -> int:
    """Tokens of a conversation as a chat template renders it (or of its texts joined)."""
    text = _rendered(conversation, tokenizer)
    return len(tokenizer(text, add_special_tokens=False, verbose=False)["input_ids"])


def _rendered(conversation: Conversation, tokenizer: Any) -> str:
    if getattr(tokenizer, "chat_template", None):
        tools = conversation.tools or None
        with contextlib.suppress(Exception):  # a template may reject any message shape
            return str(tokenizer.apply_chat_template(conversation.messages, tools=tools, tokenize=False))
    return "\n".join(_message_text(m) for m in conversation.messages)


def _message_text(message: Message) -> str:
    parts = [message.get("reasoning_content") or "", message.get("content") or ""]
    for call in message.get("tool_calls") or ():
        parts.append(f"{call['function']['name']}({call['function']['arguments']})")
    return "\n".join(p for p in parts if p)


# ---------------------------------------------------------------------------------------------
# The task-level step


@dataclass(slots=True)
class TaskStats:
    """Per task key: how many rollouts, how many succeeded (one pass; memory grows with tasks).

    >>> stats = TaskStats()
    >>> stats.rate("task_id:7") is None
    True
    """

    rollouts: Counter[str] = field(default_factory=Counter)
    successes: Counter[str] = field(default_factory=Counter)

    def add(self, rollout: Rollout) -> None:
        self.rollouts[rollout.task_key] += 1
        self.successes[rollout.task_key] += rollout.success

    def rate(self, task_key: str) -> float | None:
        n = self.rollouts.get(task_key, 0)
        return self.successes[task_key] / n if n else None

    def __add__(self, other: TaskStats) -> TaskStats:
        return TaskStats(self.rollouts + other.rollouts, self.successes + other.successes)

    @classmethod
    def collect(cls, items: Iterable[Rollout | Quarantined]) -> TaskStats:
        """Count every rollout of ``items`` (quarantined lines are skipped)."""
        stats = cls()
        for item in items:
            if isinstance(item, Rollout):
                stats.add(item)
        return stats


@dataclass(frozen=True, slots=True)
class MinTaskSuccessRate:
    """Keep rollouts of tasks whose rollouts (all those read) succeed at a rate of at least ``threshold``."""

    threshold: float
    stats: TaskStats = field(repr=False)
    name: ClassVar[str] = "min_success_rate"

    def check(self, rollout: Rollout) -> str | None:
        key = rollout.task_key
        n, s = self.stats.rollouts.get(key, 0), self.stats.successes.get(key, 0)
        if n and s / n >= self.threshold:
            return None
        rate = s / n if n else 0.0
        return f"task success rate {s}/{n} = {rate:.3g} < {self.threshold:g}"


# ---------------------------------------------------------------------------------------------
# The config

#: The step keys, in the default order (keys a config names come first, in its order).
STEP_KEYS: tuple[str, ...] = (
    "min_reward",
    "max_reward",
    "success_only",
    "min_turns",
    "max_turns",
    "min_assistant_turns",
    "max_assistant_turns",
    "require_tool_usage",
    "min_success_rate",
    "max_chars",
    "max_tokens",
    "drop_flagged",
    "dedupe",
)

_Count = Annotated[int, Field(ge=0)]


class FilterConfig(BaseModel):
    """The filter settings (the tutorial's keys); the order the keys were given in is the step order.

    >>> FilterConfig(dedupe=True, min_reward=0.5).key_order
    ('dedupe', 'min_reward')
    """

    model_config = ConfigDict(extra="forbid", strict=True, frozen=True, allow_inf_nan=False)

    min_reward: float | None = None
    max_reward: float | None = None
    success_only: bool = False
    min_turns: _Count | None = None
    max_turns: _Count | None = None
    min_assistant_turns: _Count | None = None
    max_assistant_turns: _Count | None = None
    require_tool_usage: bool = False
    min_success_rate: Annotated[float, Field(ge=0.0, le=1.0)] | None = None
    max_chars: _Count | None = None
    max_tokens: Annotated[int, Field(gt=0)] | None = None
    tokenizer: str | None = Field(default=None, validate_default=True)
    drop_flagged: list[str] = Field(default_factory=lambda: list(DEFAULT_DROP_FLAGS))
    dedupe: bool = False

    _key_order: tuple[str, ...] = PrivateAttr(default=())

    def __init__(self, **data: Any) -> None:
        try:
            super().__init__(**data)
        except ValidationError as exc:
            raise _config_error(exc) from None
        self._key_order = tuple(data)

    @property
    def key_order(self) -> tuple[str, ...]:
        """The keys in the order they were named (YAML order, or keyword order in Python)."""
        return self._key_order

    @field_validator("tokenizer")
    @classmethod
    def _tokenizer_with_max_tokens(cls, value: str | None, info: ValidationInfo) -> str | None:
        if info.data.get("max_tokens") is not None and not value:
            raise ValueError("max_tokens needs tokenizer: a local Hugging Face tokenizer folder")
        return value

    @field_validator("drop_flagged", mode="before")
    @classmethod
    def _split_flags(cls, value: Any) -> Any:
        if isinstance(value, str):
            return [] if value.strip().lower() in ("", "none") else [v.strip() for v in value.split(",")]
        return value

    @field_validator("drop_flagged")
    @classmethod
    def _known_flags(cls, value: list[str]) -> list[str]:
        unknown = [flag for flag in value if flag not in FLAGS]
        if unknown:
            raise ValueError(f"unknown flag {', '.join(unknown)} (known: {', '.join(FLAGS)})")
        return value

    @classmethod
    def from_mapping(
        cls, data: Mapping[str, Any], *, lines: Mapping[str, int] | None = None, source: str | None = None
    ) -> FilterConfig:
        """Validate a mapping; a bad value is a :class:`ConfigError` naming the key (and its line)."""
        try:
            return cls(**{str(key): value for key, value in data.items()})
        except ConfigError as exc:
            raise _located(exc, lines or {}, source) from None

    @classmethod
    def from_yaml(cls, path: str | os.PathLike[str]) -> FilterConfig:
        """Read a YAML mapping of filter keys (or one under a top-level ``filters:`` key).

        >>> FilterConfig.from_yaml("filters.yaml")  # doctest: +SKIP
        """
        data, lines = load_yaml(path)
        top = {key[0]: line for key, line in lines.items() if len(key) == 1}
        if list(data) == ["filters"] and isinstance(data["filters"], dict):
            top = {key[1]: line for key, line in lines.items() if len(key) == 2 and key[0] == "filters"}
            data = data["filters"]
        return cls.from_mapping(data, lines=top, source=os.fspath(path))

    def merged(self, overrides: Mapping[str, Any]) -> FilterConfig:
        """This config with ``overrides`` applied; the key order stays this config's.

        (A key named here keeps its place; other active keys follow in :data:`STEP_KEYS` order.)
        """
        data = {key: getattr(self, key) for key in self.key_order}
        data.update(overrides)
        result = FilterConfig.from_mapping(data)
        result._key_order = self.key_order
        return result


def _config_error(exc: ValidationError) -> ConfigError:
    error = exc.errors()[0]
    key = str(error["loc"][0]) if error["loc"] else None
    message = error["msg"].removeprefix("Value error, ")
    if error["type"] == "extra_forbidden":
        message = f"unknown filter key (known: {', '.join(FilterConfig.model_fields)})"
    elif "input" in error and error["type"] != "value_error":
        message += f", got {error['input']!r}"
    return ConfigError(message, key=key)


def _located(exc: ConfigError, lines: Mapping[str, int], source: str | None) -> ConfigError:
    """The same error with the key's line (and the file) added."""
    key = exc.key
    message = str(exc).removeprefix(f"{key}: " if key else "")
    line = lines.get(key or "") or (lines.get("max_tokens") if key == "tokenizer" else None)
    return ConfigError(message + (f" (in {source})" if source else ""), key=key, line=line)


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


@dataclass(frozen=True, slots=True)
class Drop:
    """Why a rollout was dropped: ``by`` is the step name, ``reason`` its detail."""

    by: str
    reason: str


@dataclass(slots=True)
class FilterReport:
    """What filtering did; reports add (``a + b``), so per-worker reports merge.

    ``dropped``: per step, the rollouts it dropped first (config order); ``alone``: what each
    step would drop on its own. ``kept + sum(dropped) == read.rollouts`` always holds.
    """

    read: ReadReport = field(default_factory=ReadReport)
    steps: list[str] = field(default_factory=list)
    kept: int = 0
    dropped: Counter[str] = field(default_factory=Counter)
    alone: Counter[str] = field(default_factory=Counter)
    examples: dict[str, str] = field(default_factory=dict)

    def count(self, drop: Drop | None, alone: Iterable[str] = ()) -> None:
        if alone:
            self.alone.update(alone)
        if drop is None:
            self.kept += 1
            return
        self.dropped[drop.by] += 1
        self.examples.setdefault(drop.by, drop.reason)

    @property
    def total(self) -> int:
        return self.read.rollouts

    @property
    def balanced(self) -> bool:
        return self.read.balanced and self.kept + sum(self.dropped.values()) == self.read.rollouts

    def summary_line(self) -> str:
        """``Kept K/T rollouts (P%)``, as the tutorial prints it."""
        share = 100.0 * self.kept / self.total if self.total else 0.0
        return f"Kept {self.kept}/{self.total} rollouts ({share:.1f}%)"

    def __add__(self, other: FilterReport) -> FilterReport:
        return FilterReport(
            self.read + other.read,
            list(dict.fromkeys([*self.steps, *other.steps])),
            self.kept + other.kept,
            self.dropped + other.dropped,
            self.alone + other.alone,
            {**other.examples, **self.examples},
        )

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-ready data (what ``--report`` writes)."""
        read = self.read
        return {
            "lines": read.lines,
            "rollouts": read.rollouts,
            "kept": self.kept,
            "dropped": sum(self.dropped.values()),
            "quarantined": dict(sorted(read.quarantined.items())),
            "balanced": self.balanced,
            "steps": [
                {
                    "filter": s,
                    "dropped": self.dropped[s],
                    "alone": self.alone[s],
                    "example": self.examples.get(s),
                }
                for s in self.steps
            ],
            "quarantine_examples": [
                {"source": q.source, "line": q.line, "reason": q.reason, "detail": q.detail}
                for q in read.quarantine_examples
            ],
        }


class _Judge:
    """Runs the steps: the first drop in order, and every step's own verdict (for ``alone``).

    Stateful steps (dedupe) get a twin that sees every rollout, so ``alone`` means alone.
    """

    def __init__(self, steps: Sequence[Filter]) -> None:
        self.pairs = [(s, _twin(s) if getattr(s, "stateful", False) else None) for s in steps]
        self.plain = None if any(twin is not None for _, twin in self.pairs) else list(steps)

    def __call__(self, rollout: Rollout) -> tuple[Drop | None, list[str]]:
        first: Drop | None = None
        alone: list[str] = []
        if self.plain is not None:  # no stateful step: each step's verdict is its own (the usual case)
            for step in self.plain:
                own = step.check(rollout)
                if own is not None:
                    alone.append(step.name)
                    if first is None:
                        first = Drop(step.name, own)
            return first, alone
        for step, twin in self.pairs:
            own = step.check(rollout) if twin is None or first is None else None
            if (own if twin is None else twin.check(rollout)) is not None:
                alone.append(step.name)
            if first is None and own is not None:
                first = Drop(step.name, own)
        return first, alone


def _twin(step: Filter) -> Filter:
    """A stateful step's twin: its own ``twin()`` when it has one, else a fresh copy."""
    make = getattr(step, "twin", None)
    return make() if make is not None else dataclasses.replace(step)  # type: ignore[type-var]


def judge(
    items: Iterable[Rollout | Quarantined], steps: Sequence[Filter], report: FilterReport
) -> Iterator[tuple[Rollout, Drop | None]]:
    """Yield each rollout with the :class:`Drop` that removed it (``None``: kept); count everything.

    Quarantined items are counted in ``report.read`` and not yielded.

    >>> from rollcraft import read_rollouts
    >>> report = FilterReport()
    >>> pairs = list(judge(read_rollouts(["examples/rollouts"]), [MinReward(1.0)], report))
    >>> report.kept + sum(report.dropped.values()) == report.read.rollouts
    True
    """
    run = _Judge(steps)
    report.steps = list(dict.fromkeys([*report.steps, *(s.name for s in steps)]))
    read = report.read
    for item in items:
        read.count(item)
        if isinstance(item, Rollout):
            drop, alone = run(item)
            if drop is None and not alone:
                report.kept += 1  # FilterReport.count, for the common case
            else:
                report.count(drop, alone)
            yield item, drop


def run_filters(
    items: Iterable[Rollout | Quarantined], steps: Sequence[Filter], report: FilterReport
) -> Iterator[Rollout]:
    """Yield the rollouts every step keeps (see :func:`judge` for the dropped ones too).

    >>> from rollcraft import read_rollouts
    >>> kept = list(run_filters(read_rollouts(["examples/rollouts"]), [SuccessOnly()], FilterReport()))
    """
    return (rollout for rollout, drop in judge(items, steps, report) if drop is None)


# ---------------------------------------------------------------------------------------------
# Two passes over files (and stdin)


@contextlib.contextmanager
def rereadable(paths: Sequence[str], *, needed: bool = True) -> Iterator[list[str]]:
    """Paths that can be read twice: ``-`` (stdin) is spooled to a temporary file when ``needed``.

    Use :func:`relabel` on what is read so stdin lines still say ``<stdin>``.
    """
    if not needed or "-" not in paths:
        yield list(paths)
        return
    fd, spool = tempfile.mkstemp(prefix="rollcraft-stdin-", suffix=".jsonl")
    try:
        with os.fdopen(fd, "wb") as handle:
            shutil.copyfileobj(sys.stdin.buffer, handle, 1 << 20)
        yield [spool if p == "-" else p for p in paths]
    finally:
        with contextlib.suppress(OSError):
            os.unlink(spool)


def relabel(
    items: Iterable[Rollout | Quarantined], sources: Sequence[str], paths: Sequence[str]
) -> Iterator[Rollout | Quarantined]:
    """Name a spooled stdin ``<stdin>`` again (``sources`` from :func:`rereadable`, ``paths`` as given)."""
    spools = {s for s, p in zip(sources, paths, strict=True) if p == "-" and s != "-"}
    if not spools:
        return iter(items)  # nothing to rename: no generator step per item
    return (dataclasses.replace(item, source="<stdin>") if item.source in spools else item for item in items)


def filter_paths(
    paths: Sequence[str],
    config: FilterConfig,
    *,
    options: ReadOptions | None = None,
    report: FilterReport | None = None,
    first_steps: Sequence[Filter] = (),
    transform: Callable[[Iterable[Rollout | Quarantined]], Iterator[Rollout | Quarantined]] | None = None,
) -> Iterator[tuple[Rollout, Drop | None]]:
    """Read ``paths`` and judge every rollout (two passes when a task-level step is on).

    ``first_steps`` run before the config's steps (e.g. secret detection in drop mode);
    ``transform`` rewrites items before any step sees them (e.g. secret redaction).

    >>> report = FilterReport()
    >>> judged = filter_paths(["examples/rollouts"], FilterConfig(), report=report)
    >>> kept = [rollout for rollout, drop in judged if drop is None]
    """
    report = report if report is not None else FilterReport()
    if config.max_tokens is not None:
        cached_tokenizer(str(config.tokenizer))
    two_pass = config.min_success_rate is not None
    with rereadable(paths, needed=two_pass) as sources:
        stats = TaskStats.collect(read_rollouts(sources, options=options)) if two_pass else None
        steps = [*first_steps, *build_steps(config, task_stats=stats)]
        items: Iterable[Rollout | Quarantined] = relabel(
            read_rollouts(sources, options=options), sources, paths
        )
        if transform is not None:
            items = transform(items)
        yield from judge(items, steps, report)
