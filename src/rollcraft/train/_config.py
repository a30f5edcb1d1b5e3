"""The training configuration (``TrainConfig``), its loading from YAML and flags, and a run's result."""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from rollcraft._yamlconf import load_yaml, validation_error

LogFn = Callable[[dict[str, Any]], None]
SayFn = Callable[[str], None]
_DEFAULT_LR = {"sft": 2e-5, "dpo": 1e-6, "kto": 1e-6}


class TrainConfig(BaseModel):
    """Everything a training run needs; a YAML file holds any of these keys, flags override them.

    ``learning_rate`` None means TRL's default for the method (SFT 2e-5, DPO and KTO 1e-6).
    ``max_steps`` > 0 overrides ``epochs``. ``assistant_only_loss`` None (auto) trains only on
    assistant tokens when the chat template marks them (``{% generation %}``) or TRL knows a
    training variant of it; True insists, False trains on whole conversations. ``bf16`` None
    turns it on where a GPU supports it. ``beta`` is DPO's and KTO's; ``loss_type`` and
    ``loss_weights`` are DPO's. ``desirable_weight`` / ``undesirable_weight`` (KTO) None: 1, or,
    when neither is given and the labels are unbalanced, the weight TRL suggests for the
    minority label (:func:`rollcraft.formats.kto.kto_weights`). ``trainer_args`` are passed to
    ``SFTConfig`` / ``DPOConfig`` / ``KTOConfig`` unchanged (anything TRL accepts).
    """

    model_config = ConfigDict(extra="forbid")

    method: Literal["sft", "dpo", "kto"] = "sft"
    model: str | None = None
    data: str | None = None
    output_dir: str | None = None
    overwrite: bool = False
    validate_data: bool = True
    learning_rate: float | None = Field(default=None, gt=0)
    epochs: float = Field(default=1.0, gt=0)
    max_steps: int = -1
    batch_size: int = Field(default=8, ge=1)
    gradient_accumulation_steps: int = Field(default=1, ge=1)
    max_length: int | None = Field(default=1024, ge=8)
    warmup_steps: float = Field(default=0, ge=0)
    lr_scheduler: str = "linear"
    weight_decay: float = Field(default=0.0, ge=0)
    seed: int = 0
    logging_steps: int = Field(default=10, ge=1)
    assistant_only_loss: bool | None = None
    beta: float = Field(default=0.1, gt=0)
    loss_type: list[str] = Field(default_factory=lambda: ["sigmoid"], min_length=1)
    loss_weights: list[float] | None = None
    desirable_weight: float | None = Field(default=None, gt=0)
    undesirable_weight: float | None = Field(default=None, gt=0)
    lora: bool = False
    lora_r: int = Field(default=16, ge=1)
    lora_alpha: int = Field(default=32, ge=1)
    lora_dropout: float = Field(default=0.05, ge=0, lt=1)
    lora_target_modules: str | list[str] = "all-linear"
    merge_lora: bool = True
    device: Literal["auto", "cpu"] = "auto"
    dtype: Literal["auto", "float32", "bfloat16", "float16"] = "auto"
    bf16: bool | None = None
    gradient_checkpointing: bool = False
    trainer_args: dict[str, Any] = Field(default_factory=dict)

    @property
    def resolved_learning_rate(self) -> float:
        """The learning rate in force: the configured one or the method's default."""
        return self.learning_rate if self.learning_rate is not None else _DEFAULT_LR[self.method]


@dataclass(frozen=True, slots=True)
class TrainResult:
    """What a finished run left behind and how it went."""

    output_dir: Path
    method: str
    global_step: int
    train_loss: float | None
    runtime_s: float
    rows: int
    log_history: list[dict[str, Any]] = field(default_factory=list)


def load_train_config(path: str | os.PathLike[str] | None = None, **overrides: Any) -> TrainConfig:
    """Read a YAML config (optional) and apply ``overrides`` whose value is not None.

    Unknown keys and bad values are :class:`ConfigError` naming the key (and its YAML line).

    >>> load_train_config(None, method="dpo", beta=0.5).beta
    0.5
    """
    data, lines = load_yaml(path) if path is not None else ({}, {})
    given = {key: value for key, value in overrides.items() if value is not None}
    data.update(given)
    try:
        return TrainConfig.model_validate(data)
    except ValidationError as exc:
        loc = exc.errors()[0]["loc"]
        if path is None or (loc and str(loc[0]) in given):  # not from the file: no line of it
            raise validation_error(exc, {}, "the options") from None
        raise validation_error(exc, lines, path) from None
