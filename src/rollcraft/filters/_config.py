"""The filter settings: :class:`FilterConfig` (validated by pydantic, read from YAML), the step
keys and their default order, the default flags; a bad value is one :class:`ConfigError`."""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, PrivateAttr, ValidationError, field_validator
from pydantic_core.core_schema import ValidationInfo

from rollcraft._errors import ConfigError
from rollcraft._normalize import FLAGS
from rollcraft._yamlconf import load_yaml

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
    *("superseded_attempt", "duplicate_rollout"),  # not the rollout's latest attempt (rollcraft._attempts)
)


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
