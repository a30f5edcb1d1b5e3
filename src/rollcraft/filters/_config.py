"""The filter settings: :class:`FilterConfig` (validated by pydantic, read from YAML), the step
keys and their default order, the default flags; a bad value is one :class:`ConfigError`."""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from typing import Annotated, Any

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    PrivateAttr,
    SerializerFunctionWrapHandler,
    ValidationError,
    field_validator,
    model_serializer,
)
from pydantic_core.core_schema import ValidationInfo

from rollcraft._errors import ConfigError
from rollcraft._tokenizer import cached_tokenizer
from rollcraft._yamlconf import load_yaml
from rollcraft.filters._base import Filter, StepSpec
from rollcraft.filters._components import MinComponent, parse_components
from rollcraft.filters._contamination import decontaminate_step, eval_paths, relative_to_config
from rollcraft.filters._dedupe import Dedupe
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
from rollcraft.read._normalize import FLAGS

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
    *("superseded_attempt", "duplicate_rollout"),  # not the latest attempt (read._attempts)
)


_Count = Annotated[int, Field(ge=0)]


def _task_rate(value: float, config: FilterConfig, stats: TaskStats | None) -> Filter:
    if stats is None:
        raise ValueError("min_success_rate needs task_stats from a first pass (TaskStats.collect)")
    return MinTaskSuccessRate(value, stats)


def _max_tokens(value: int, config: FilterConfig, stats: TaskStats | None) -> Filter:
    cached_tokenizer(str(config.tokenizer))  # a bad folder fails here, before any line is read
    return MaxTokens(value, str(config.tokenizer))


def _drop_flagged(flags: list[str]) -> Filter:
    return DropFlagged(frozenset(flags))


_FLAGS_HELP = (
    "Drop rollouts with these flags (comma-separated; 'none' drops none). Default: "
    + ", ".join(DEFAULT_DROP_FLAGS)
    + "."
)


class FilterConfig(BaseModel):
    """The filter settings (the tutorial's keys); the order the keys were given in is the step order.

    The registry of filters: each step key's annotation carries its :class:`StepSpec` (how its
    value becomes a step, its flag and help), and the keys' order here is the default step order
    (:data:`STEP_KEYS`). A new filter is a module with its step and one key here.

    >>> FilterConfig(dedupe=True, min_reward=0.5).key_order
    ('dedupe', 'min_reward')
    """

    model_config = ConfigDict(extra="forbid", strict=True, frozen=True, allow_inf_nan=False)

    min_reward: Annotated[float | None, StepSpec(MinReward, "Keep reward >= this.")] = None
    max_reward: Annotated[float | None, StepSpec(MaxReward, "Keep reward <= this.")] = None
    min_component: Annotated[
        dict[str, float] | None,
        BeforeValidator(parse_components),
        StepSpec(
            MinComponent.of,
            "Keep rollouts whose reward component NAME >= X (NAME=X, comma-separated; "
            "a rollout without it is dropped).",
        ),
    ] = None
    success_only: Annotated[bool, StepSpec(SuccessOnly, "Keep successful rollouts.", kind="switch")] = False
    min_turns: Annotated[_Count | None, StepSpec(MinTurns, "Keep >= N completion messages.")] = None
    max_turns: Annotated[_Count | None, StepSpec(MaxTurns, "Keep <= N completion messages.")] = None
    min_assistant_turns: Annotated[
        _Count | None, StepSpec(MinAssistantTurns, "Keep >= N assistant messages.")
    ] = None
    max_assistant_turns: Annotated[
        _Count | None, StepSpec(MaxAssistantTurns, "Keep <= N assistant messages.")
    ] = None
    require_tool_usage: Annotated[
        bool,
        StepSpec(RequireToolUsage, "Keep rollouts with a tool call.", "switch", "--require-tool-use"),
    ] = False
    min_success_rate: Annotated[
        float | None,
        Field(ge=0.0, le=1.0),
        StepSpec(
            _task_rate,
            "Keep rollouts of tasks whose rollouts succeed at rate >= X (two passes).",
            kind="context",
            flag="--min-task-success-rate",
            needs_tasks=True,
        ),
    ] = None
    max_chars: Annotated[_Count | None, StepSpec(MaxChars, "Keep <= N characters of message text.")] = None
    max_tokens: Annotated[
        int | None,
        Field(gt=0),
        StepSpec(_max_tokens, "Keep <= N tokens (needs --tokenizer).", kind="context"),
    ] = None
    tokenizer: str | None = Field(default=None, validate_default=True)
    drop_flagged: Annotated[list[str], StepSpec(_drop_flagged, _FLAGS_HELP)] = Field(
        default_factory=lambda: list(DEFAULT_DROP_FLAGS)
    )
    dedupe: Annotated[bool, StepSpec(Dedupe, "Drop repeated identical conversations.", kind="switch")] = False
    decontaminate: Annotated[
        list[str] | None,
        BeforeValidator(eval_paths),
        StepSpec(
            decontaminate_step,
            "Drop rollouts whose prompt matches a prompt of these eval files (comma-separated).",
            kind="context",
        ),
    ] = None

    _key_order: tuple[str, ...] = PrivateAttr(default=())

    def __init__(self, **data: Any) -> None:
        try:
            super().__init__(**data)
        except ValidationError as exc:
            raise _config_error(exc) from None
        self._key_order = tuple(data)

    @model_serializer(mode="wrap")
    def _dump(self, handler: SerializerFunctionWrapHandler) -> dict[str, Any]:
        data: dict[str, Any] = handler(self)
        for key in ("decontaminate", "min_component"):  # off: a dump (a run's manifest) is as before the key
            if data.get(key) is None:
                data.pop(key, None)
        return data

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
            return cls(**relative_to_config({str(key): value for key, value in data.items()}, source))
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


def step_spec(key: str) -> StepSpec | None:
    """The :class:`StepSpec` of a :class:`FilterConfig` key (None: not a step key, e.g. ``tokenizer``)."""
    field = FilterConfig.model_fields.get(key)
    if field is None:
        return None
    return next((m for m in field.metadata if isinstance(m, StepSpec)), None)


#: The step keys, in the default order (keys a config names come first, in its order).
STEP_KEYS: tuple[str, ...] = tuple(key for key in FilterConfig.model_fields if step_spec(key) is not None)


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


def _step(key: str, config: FilterConfig, stats: TaskStats | None) -> Filter | None:
    value = getattr(config, key)
    if value is None or value is False or value == []:
        return None
    spec = step_spec(key)
    assert spec is not None
    if spec.kind == "switch":
        return spec.make()
    if spec.kind == "context":
        return spec.make(value, config, stats)
    return spec.make(value)
