"""The pipeline config's schema (``rollcraft run pipeline.yaml``) and a loaded config.

A module of its own so that :mod:`rollcraft.pipeline` and the engines (:mod:`rollcraft.engines`)
both import it without importing each other: the pipeline calls an engine, an engine reads the
config. :func:`rollcraft.pipeline.load_pipeline_config` reads and validates the YAML into a
:class:`LoadedConfig`.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from rollcraft._errors import ConfigError
from rollcraft.filters import FilterConfig
from rollcraft.formats import DpoOptions, KtoFormat, RowFormat, RowShape, SftFormat, TemplateProbe
from rollcraft.formats._dialects import ArgumentsMode, Dialect
from rollcraft.formats._order import Order
from rollcraft.formats.dpo import CompletionMode, Pairing
from rollcraft.formats.sft import Expand
from rollcraft.formats.tokens import TOKENS, TokenFormat
from rollcraft.read._reader import DEFAULT_MAX_LINE_BYTES, DEFAULT_SUCCESS_THRESHOLD, ReadOptions

__all__ = [
    "BalanceSection",
    "DpoSection",
    "KtoSection",
    "LoadedConfig",
    "PipelineConfig",
    "ReadSection",
    "RedactSection",
    "ReviewSection",
    "RowSection",
    "SftSection",
    "TrainSection",
    "ValidateSection",
    "row_sections",
]


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)  # a nan threshold compares false


class ReadSection(_Section):
    """How lines are read (see :class:`rollcraft.ReadOptions`)."""

    shape: Literal["auto", "nemo-gym", "tutorial", "chat"] = "auto"
    reasoning: Literal["separate", "think", "drop"] = "separate"
    success_threshold: float = DEFAULT_SUCCESS_THRESHOLD
    task_key: str | None = None
    max_line_bytes: int = Field(default=DEFAULT_MAX_LINE_BYTES, gt=0)
    #: ``ng_trajectory``: the main agent's conversation (``main``), also every subagent's and
    #: branch's as rows of their own (``branches``), or ``response.output`` only (``off``).
    trajectory: Literal["main", "branches", "off"] = "main"

    def options(self) -> ReadOptions:
        return ReadOptions(
            shape=self.shape,
            reasoning=self.reasoning,
            success_threshold=self.success_threshold,
            task_key=self.task_key,
            max_line_bytes=self.max_line_bytes,
            trajectory=self.trajectory,
        )


class RedactSection(_Section):
    """Secret and PII redaction before filtering (``rollcraft.redact``)."""

    on_secret: Literal["replace", "drop"] = "replace"
    allowlist: str | None = None
    #: Opt-in personal-data kinds (``phone_number``, ``ip_address``: :data:`rollcraft.redact.PII_KINDS`).
    pii: list[str] = Field(default_factory=list)


class ReviewSection(_Section):
    """Review decisions to apply: rejected rollouts are dropped."""

    decisions: str


class BalanceSection(_Section):
    """At most ``max_per_category`` rollouts per category, a seeded random choice."""

    max_per_category: int = Field(ge=0)
    by: str = "task_type"
    seed: int = 0


class RowSection(_Section):
    """A section of a row format (one row per kept rollout): a :class:`PipelineConfig` field of a
    subclass of this is a row format of the pipeline, written to ``file`` (and its rollout ids to
    ``<name>_ids.txt``) by the :class:`rollcraft.steps.WriteRows` step."""

    def rows(self, shape: RowShape | None = None) -> RowFormat:
        """The section's row format (rows in ``shape``, a chat template's, when given)."""
        raise NotImplementedError

    def output(self) -> str:
        """The file its rows go to (its ``file`` key)."""
        raise NotImplementedError


class SftSection(RowSection):
    """SFT rows: which kept rollouts become rows, in which dialect (``tokens``: the exact token
    ids of a token-capture run, :mod:`rollcraft.formats.tokens`), in which order."""

    #: A dialect of :data:`rollcraft.formats.DIALECTS`, or ``tokens`` (one literal: an error names the key).
    format: Literal["trl", "openai", "nemo-rl", "tokens"] = "trl"
    arguments: ArgumentsMode = "string"
    file: str = "sft.jsonl"
    min_reward: float | None = None
    #: Only successful rollouts become rows, as ``rollcraft sft`` does; false keeps the rest too.
    success_only: bool = True
    #: ``turns``: one row per assistant turn (``rollcraft sft --expand turns``).
    expand: Expand = "none"
    #: ``easy-to-hard``: rows by their task's pass rate, highest first (``rollcraft sft --order``).
    order: Order = "input"

    def rows(self, shape: RowShape | None = None) -> RowFormat:
        if self.format == TOKENS:
            if self.expand != "none":
                raise ConfigError("token rows are one sequence per rollout: no expand", key="expand")
            return TokenFormat(self.success_only, self.min_reward)
        return SftFormat(
            self.format, self.arguments, self.success_only, self.min_reward, shape, expand=self.expand
        )

    def output(self) -> str:
        return self.file


class KtoSection(RowSection):
    """KTO rows (unpaired preferences, :mod:`rollcraft.formats.kto`): desirable = success, or
    reward >= ``desirable_min_reward`` (with ``undesirable_max_reward``, both or neither)."""

    arguments: ArgumentsMode = "string"
    file: str = "kto.jsonl"
    desirable_min_reward: float | None = None
    undesirable_max_reward: float | None = None

    def rows(self, shape: RowShape | None = None) -> RowFormat:
        return KtoFormat(self.arguments, self.desirable_min_reward, self.undesirable_max_reward, shape)

    def output(self) -> str:
        return self.file


class DpoSection(_Section):
    """DPO pairs from the kept rollouts of each task."""

    format: Dialect = "trl"
    pairing: Pairing = "best-worst"
    k: int = Field(default=2, ge=1)
    min_margin: float = Field(default=0.1, ge=0)
    completion: CompletionMode | None = None
    arguments: ArgumentsMode = "string"
    file: str = "dpo.jsonl"

    def options(self, shape: RowShape | None = None) -> DpoOptions:
        return DpoOptions(
            shape=shape,
            dialect=self.format,
            pairing=self.pairing,
            k=self.k,
            min_margin=self.min_margin,
            completion=self.completion,
            arguments=self.arguments,
        )


class ValidateSection(_Section):
    """Validation of the written data (``rollcraft validate``)."""

    enabled: bool = True
    fail_on_error: bool = True
    html: bool = True
    tokenizer: str | None = None
    max_seq_len: int | None = Field(default=None, gt=0)
    chat_template: str | None = None


class TrainSection(_Section):
    """Optional training on the version's data (needs ``rollcraft[train]``)."""

    method: Literal["sft", "dpo", "kto"] = "sft"
    model: str
    name: str | None = None
    models_dir: str = "models"
    config: str | None = None
    options: dict[str, Any] = Field(default_factory=dict)


class PipelineConfig(_Section):
    """The whole pipeline. Relative paths are relative to the config file's folder."""

    inputs: list[str] = Field(min_length=1)
    output_dir: str = "training"
    version: str | None = None
    parent: str | None = None
    read: ReadSection = Field(default_factory=ReadSection)
    filters: dict[str, Any] = Field(default_factory=dict)
    redact: RedactSection | None = None
    review: ReviewSection | None = None
    balance: BalanceSection | None = None
    sft: SftSection | None = None
    kto: KtoSection | None = None
    dpo: DpoSection | None = None
    #: A local tokenizer folder: rows are shaped for its chat template (and ``chat_template``,
    #: a Jinja file, replaces its template): :func:`rollcraft.formats.probe_template`.
    tokenizer: str | None = None
    chat_template: str | None = None
    validate_data: ValidateSection = Field(default_factory=ValidateSection, alias="validate")
    train: TrainSection | None = None
    workers: int = Field(default=1, ge=1)
    engine: Literal["local", "ray"] = "local"
    ray_address: str | None = None
    write_filtered: bool = False
    write_rejects: bool = False

    model_config = ConfigDict(extra="forbid", populate_by_name=True)


@dataclass(frozen=True, slots=True)
class LoadedConfig:
    """A validated config with where it came from."""

    config: PipelineConfig
    filters: FilterConfig
    path: Path
    base: Path
    #: The chat template's probe when the config names a ``tokenizer`` (rows take its shape).
    template: TemplateProbe | None = None

    @property
    def shape(self) -> RowShape | None:
        """The row shape of the config's chat template, or None (rows as the dialect writes them)."""
        return self.template.shape if self.template is not None else None

    def resolve(self, value: str) -> str:
        """A config path made absolute against the config file's folder (``-`` stays)."""
        if value == "-" or os.path.isabs(value):
            return value
        return os.path.normpath(self.base / value)


def row_sections(config: PipelineConfig) -> list[tuple[str, RowSection]]:
    """The config's row formats, in field order: (section name, section) of each
    :class:`RowSection` field that is set. The fields are the registry: a new row format is its
    module in :mod:`rollcraft.formats`, its section here and its field on :class:`PipelineConfig`."""
    sections = [(name, getattr(config, name)) for name in PipelineConfig.model_fields]
    return [(name, section) for name, section in sections if isinstance(section, RowSection)]
