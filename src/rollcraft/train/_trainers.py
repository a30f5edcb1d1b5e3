"""TRL's SFT, DPO and KTO trainers built from a ``TrainConfig`` (model, tokenizer, dataset, LoRA) and run.

torch, transformers, trl, datasets and peft are imported inside the functions that need them.
"""

from __future__ import annotations

import contextlib
import copy
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from rollcraft._errors import ConfigError, DependencyError, InputError
from rollcraft._tokenizer import load_tokenizer
from rollcraft.formats._templates import TemplateProbe
from rollcraft.train._config import LogFn, TrainConfig
from rollcraft.train._data import (
    assistant_masks_possible,
    conversations,
    prepare_tools,
    shaped_for_training,
)


@contextlib.contextmanager
def _quiet_deprecations() -> Iterator[None]:
    """Hide the FutureWarning TRL 1.16 triggers by reading a property transformers 5 deprecated."""
    import warnings

    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*is_gradient_checkpointing", category=FutureWarning)
        yield


def _run_trainer(trainer: Any) -> None:
    try:
        with _quiet_deprecations():
            trainer.train()
    except (ValueError, RuntimeError) as exc:
        if "out of memory" in str(exc).lower():
            raise ConfigError(f"out of memory: lower batch_size or max_length ({exc})") from None
        raise


def _build_trainer(
    config: TrainConfig, model_name: str, rows: list[dict[str, Any]], workdir: Path, on_log: LogFn | None
) -> Any:
    import torch

    torch.manual_seed(config.seed)
    loaded = _load_tokenizer(model_name)
    tokenizer, probe = shaped_for_training(loaded, config.method, _assistant_only(config, loaded))
    if config.validate_data and not Path(model_name).is_dir():  # a folder: validate rendered every row
        _renders_or_stop(tokenizer, probe, rows, config.data or "data")
    model = _load_model(model_name, config)
    dataset = _dataset(rows)
    callbacks = [_log_callback(on_log)] if on_log is not None else []
    peft_config = _peft_config(config) if config.lora else None
    build = {"sft": _sft_trainer, "dpo": _dpo_trainer, "kto": _kto_trainer}[config.method]
    with _quiet_deprecations():
        trainer = build(config, model, tokenizer, dataset, workdir, callbacks, peft_config)
    if on_log is not None:  # the caller reports the logs: drop the plain printer (used without tqdm)
        trainer.remove_callback(_module("transformers").PrinterCallback)
    return trainer


def _load_tokenizer(model_name: str) -> Any:
    tokenizer = load_tokenizer(model_name, local_only=False)
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    if not tokenizer.chat_template:
        raise ConfigError(f"{model_name}: the tokenizer has no chat template; conversational data needs one")
    return tokenizer


def _load_model(model_name: str, config: TrainConfig) -> Any:
    import torch
    from transformers import AutoModelForCausalLM

    dtype: Any = "auto" if config.dtype == "auto" else getattr(torch, config.dtype)
    try:
        return AutoModelForCausalLM.from_pretrained(model_name, dtype=dtype)
    except (OSError, ValueError) as exc:
        raise InputError(f"cannot load a causal LM: {exc}", path=model_name) from None


def _dataset(rows: list[dict[str, Any]]) -> Any:
    from datasets import Dataset

    try:
        return Dataset.from_list(rows)
    except Exception as exc:  # pyarrow's errors: rows whose fields disagree in type
        raise InputError(f"the rows do not form one table: {exc}") from None


def _peft_config(config: TrainConfig) -> Any:
    try:
        from peft import LoraConfig
    except ImportError:
        raise DependencyError("--lora needs peft: pip install 'rollcraft[train]'") from None
    return LoraConfig(
        r=config.lora_r,
        lora_alpha=config.lora_alpha,
        lora_dropout=config.lora_dropout,
        target_modules=config.lora_target_modules,
        task_type="CAUSAL_LM",
    )


def _common_args(config: TrainConfig, workdir: Path) -> dict[str, Any]:
    import torch

    on_gpu = config.device != "cpu" and torch.cuda.is_available()
    bf16 = config.bf16 if config.bf16 is not None else bool(on_gpu and torch.cuda.is_bf16_supported())
    return {
        "output_dir": str(workdir),
        "learning_rate": config.resolved_learning_rate,
        "num_train_epochs": config.epochs,
        "max_steps": config.max_steps,
        "per_device_train_batch_size": config.batch_size,
        "gradient_accumulation_steps": config.gradient_accumulation_steps,
        "max_length": config.max_length,
        "warmup_steps": config.warmup_steps,
        "lr_scheduler_type": config.lr_scheduler,
        "weight_decay": config.weight_decay,
        "seed": config.seed,
        "data_seed": config.seed,
        "logging_steps": config.logging_steps,
        "bf16": bf16,
        "use_cpu": not on_gpu,
        "save_strategy": "no",
        "report_to": "none",
        **config.trainer_args,
    }


def _trl_config(cls: Any, kwargs: dict[str, Any], config: TrainConfig) -> Any:
    import dataclasses

    names = {f.name for f in dataclasses.fields(cls)}
    # transformers 5 renamed gradient_checkpointing (TRL turns it on by default; off suits CPU)
    checkpointing = (
        "activation_checkpointing" if "activation_checkpointing" in names else "gradient_checkpointing"
    )
    kwargs = {checkpointing: config.gradient_checkpointing, **kwargs}
    try:
        return cls(**kwargs)
    except (TypeError, ValueError) as exc:
        raise ConfigError(f"TRL rejects the configuration: {exc}") from None


def _sft_trainer(
    config: TrainConfig,
    model: Any,
    tokenizer: Any,
    dataset: Any,
    workdir: Path,
    callbacks: list[Any],
    peft_config: Any,
) -> Any:
    trl = _module("trl")
    assistant_only = _assistant_only(config, tokenizer)
    args = _trl_config(
        trl.SFTConfig, {**_common_args(config, workdir), "assistant_only_loss": assistant_only}, config
    )
    return _trainer(trl.SFTTrainer, "SFT", model, args, dataset, tokenizer, callbacks, peft_config)


def _assistant_only(config: TrainConfig, tokenizer: Any) -> bool:
    if config.method != "sft":
        return False
    chosen = config.assistant_only_loss
    return assistant_masks_possible(tokenizer) if chosen is None else chosen


def _renders_or_stop(tokenizer: Any, probe: TemplateProbe, rows: list[dict[str, Any]], data: str) -> None:
    """Render every row as TRL will; the first the template refuses stops the run with the finding
    ``validate`` gives it (a traceback from inside TRL's tokenization otherwise)."""
    from rollcraft.validate._template import limit_finding

    for number, row in enumerate(rows, 1):
        tools = prepare_tools(row.get("tools"))
        for messages in conversations(row):
            try:
                tokenizer.apply_chat_template(messages, tools=tools, tokenize=False)
            except Exception as exc:  # the template's refusal, whatever its type
                code, message = limit_finding(probe, messages, exc)
                raise ConfigError(f"{data}: row {number}: {code}: {message}") from None


def _dpo_trainer(
    config: TrainConfig,
    model: Any,
    tokenizer: Any,
    dataset: Any,
    workdir: Path,
    callbacks: list[Any],
    peft_config: Any,
) -> Any:
    trl = _module("trl")
    extra: dict[str, Any] = {"beta": config.beta, "loss_type": list(config.loss_type)}
    if config.loss_weights is not None:
        extra["loss_weights"] = list(config.loss_weights)
    args = _trl_config(trl.DPOConfig, {**_common_args(config, workdir), **extra}, config)
    ref_model = None if peft_config is not None else copy.deepcopy(model).eval()
    return _trainer(
        trl.DPOTrainer, "DPO", model, args, dataset, tokenizer, callbacks, peft_config, ref_model=ref_model
    )


def _kto_trainer(
    config: TrainConfig,
    model: Any,
    tokenizer: Any,
    dataset: Any,
    workdir: Path,
    callbacks: list[Any],
    peft_config: Any,
) -> Any:
    trl = _module("trl")
    extra: dict[str, Any] = {"beta": config.beta}
    for key in ("desirable_weight", "undesirable_weight"):
        if getattr(config, key) is not None:
            extra[key] = getattr(config, key)
    args = _trl_config(trl.KTOConfig, {**_common_args(config, workdir), **extra}, config)
    ref_model = None if peft_config is not None else copy.deepcopy(model).eval()
    return _trainer(
        trl.KTOTrainer, "KTO", model, args, dataset, tokenizer, callbacks, peft_config, ref_model=ref_model
    )


def _trainer(
    cls: Any,
    method: str,
    model: Any,
    args: Any,
    dataset: Any,
    tokenizer: Any,
    callbacks: list[Any],
    peft_config: Any,
    **extra: Any,
) -> Any:
    """A TRL trainer of ``cls``; its refusal of the run is a :class:`ConfigError`."""
    try:
        return cls(
            model=model,
            args=args,
            train_dataset=dataset,
            processing_class=tokenizer,
            callbacks=callbacks,
            peft_config=peft_config,
            **extra,
        )
    except ValueError as exc:
        raise ConfigError(f"TRL refused the {method} run: {exc}") from None


def _log_callback(on_log: LogFn) -> Any:
    """A ``TrainerCallback`` that hands every log line (with its step) to ``on_log`` on the main process."""
    transformers = _module("transformers")

    def forward(self: Any, args: Any, state: Any, control: Any, logs: Any = None, **kwargs: Any) -> None:
        if logs and state.is_world_process_zero:
            on_log({"step": state.global_step, **logs})

    return type("ForwardLogs", (transformers.TrainerCallback,), {"on_log": forward})()


def _module(name: str) -> Any:
    """Import a heavy module lazily, typed as Any (TRL exports its classes lazily)."""
    import importlib

    return importlib.import_module(name)
