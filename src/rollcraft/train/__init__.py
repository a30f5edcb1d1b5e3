"""Train on rollcraft's SFT and DPO files with TRL (the optional ``rollcraft[train]`` extra).

One call trains one model folder::

    >>> from rollcraft.train import TrainConfig, train
    >>> config = TrainConfig(method="sft", model="models/base", data="sft.jsonl", output_dir="models/sft")
    >>> result = train(config)  # doctest: +SKIP

The folder holds the model and tokenizer (``from_pretrained`` loads it; a LoRA run is merged
into the base weights unless ``merge_lora`` is off), ``train_config.yaml`` (the resolved
configuration), ``training_log.jsonl`` (the trainer's log lines) and ``rollcraft_train.json``
(configuration, the data file's path, sha256 and row count, the result, the log and the library
versions). It is written beside its final place and renamed into it only when training ends.

Data files are the TRL dialect of ``rollcraft sft`` / ``rollcraft dpo``: ``messages`` (SFT) or
``prompt``/``chosen``/``rejected`` (DPO), every message with ``role`` and ``content``, tool calls
with ``arguments`` as JSON text, and ``tools`` as a JSON string. :func:`prepare_row` turns that
text back into objects for the chat template, so templates that iterate ``arguments`` work; the
text form is what keeps ``datasets`` from merging the keys of different rows' arguments.

torch, transformers, trl, datasets and peft are imported inside the functions that need them.
"""

from __future__ import annotations

import contextlib
import copy
import json
import os
import shutil
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import orjson
import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from rollcraft._digest import sha256_file
from rollcraft._errors import ConfigError, DependencyError, InputError, OutputError
from rollcraft._io import atomic_writer, iter_lines
from rollcraft._tokenizer import load_tokenizer
from rollcraft._versions import dependency_versions
from rollcraft._yamlconf import load_yaml, validation_error

__all__ = [
    "MANIFEST_NAME",
    "TrainConfig",
    "TrainResult",
    "data_sha256",
    "load_rows",
    "load_train_config",
    "prepare_messages",
    "prepare_row",
    "train",
    "train_dpo",
    "train_sft",
]

MANIFEST_NAME = "rollcraft_train.json"
LogFn = Callable[[dict[str, Any]], None]
_DEFAULT_LR = {"sft": 2e-5, "dpo": 1e-6}
_TRAIN_MODULES = ("torch", "transformers", "trl", "datasets", "accelerate")


class TrainConfig(BaseModel):
    """Everything a training run needs; a YAML file holds any of these keys, flags override them.

    ``learning_rate`` None means TRL's default for the method (SFT 2e-5, DPO 1e-6).
    ``max_steps`` > 0 overrides ``epochs``. ``assistant_only_loss`` None (auto) trains only on
    assistant tokens when the chat template marks them (``{% generation %}``) or TRL knows a
    training variant of it; True insists, False trains on whole conversations. ``bf16`` None
    turns it on where a GPU supports it. ``trainer_args`` are passed to ``SFTConfig`` /
    ``DPOConfig`` unchanged (anything TRL accepts).
    """

    model_config = ConfigDict(extra="forbid")

    method: Literal["sft", "dpo"] = "sft"
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


# ---------------------------------------------------------------- configuration


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


# ---------------------------------------------------------------- data


data_sha256 = sha256_file  # the name train's API has exported


_REQUIRED = {"sft": ("messages",), "dpo": ("prompt", "chosen", "rejected")}


def load_rows(path: str | os.PathLike[str], method: Literal["sft", "dpo"]) -> list[dict[str, Any]]:
    """Read a TRL-dialect JSONL file into rows holding only what the trainer reads.

    Message lists keep tool-call ``arguments`` and ``tools`` as JSON text (see the module
    docstring). A line that is not such a row is an :class:`InputError` naming its line.
    """
    rows: list[dict[str, Any]] = []
    for raw in iter_lines([os.fspath(path)]):
        if raw.data.strip():
            rows.append(_trainer_row(_decode(raw.data, raw.source, raw.line), method, raw.source, raw.line))
    if not rows:
        raise InputError("holds no rows", path=os.fspath(path))
    if all(row["tools"] is None for row in rows):
        for row in rows:
            del row["tools"]
    return rows


def _decode(data: bytes, source: str, line: int) -> dict[str, Any]:
    try:
        record = orjson.loads(data)
    except orjson.JSONDecodeError as exc:
        raise InputError(f"not JSON ({exc})", path=source, line=line) from None
    if not isinstance(record, dict):
        raise InputError("not a JSON object", path=source, line=line)
    return record


def _trainer_row(record: dict[str, Any], method: str, source: str, line: int) -> dict[str, Any]:
    row: dict[str, Any] = {}
    for key in _REQUIRED[method]:
        value = record.get(key)
        if not isinstance(value, list) or not value or not all(isinstance(m, dict) for m in value):
            raise InputError(
                f"{key!r} must be a non-empty list of messages ({method} data)", path=source, line=line
            )
        row[key] = [_text_message(m) for m in value]
    row["tools"] = _tools_text(record.get("tools"))
    return row


def _text_message(message: dict[str, Any]) -> dict[str, Any]:
    """A message with tool-call arguments as JSON text and every dialect key present."""
    calls = message.get("tool_calls") or None
    if calls:
        calls = [_text_call(c) for c in calls]
    content = message.get("content")
    return {
        "role": message.get("role"),
        "content": content if isinstance(content, str) else ("" if content is None else json.dumps(content)),
        "tool_calls": calls,
        "tool_call_id": message.get("tool_call_id"),
        "reasoning_content": message.get("reasoning_content"),
    }


def _text_call(call: dict[str, Any]) -> dict[str, Any]:
    inner = call.get("function")
    fn: dict[str, Any] = inner if isinstance(inner, dict) else call
    args = fn.get("arguments")
    text = args if isinstance(args, str) else json.dumps(args if args is not None else {})
    return {"id": call.get("id"), "type": "function", "function": {"name": fn.get("name"), "arguments": text}}


def _tools_text(tools: Any) -> str | None:
    if tools is None or tools == "" or tools == []:
        return None
    return tools if isinstance(tools, str) else json.dumps(tools)


def prepare_messages(messages: Iterable[dict[str, Any]]) -> list[dict[str, Any]]:
    """Messages ready for a chat template: JSON-text ``arguments`` parsed, None-valued keys dropped.

    >>> call = {"id": "c", "type": "function", "function": {"name": "add", "arguments": '{"a": 1}'}}
    >>> prepare_messages([{"role": "assistant", "content": "", "tool_calls": [call], "tool_call_id": None}])
    [{'role': 'assistant', 'content': '', 'tool_calls': [{'id': 'c', 'type': 'function', \
'function': {'name': 'add', 'arguments': {'a': 1}}}]}]
    """
    prepared = []
    for message in messages:
        clean = {k: v for k, v in message.items() if v is not None}
        if clean.get("tool_calls"):
            clean["tool_calls"] = [_object_call(c) for c in clean["tool_calls"]]
        prepared.append(clean)
    return prepared


def _object_call(call: dict[str, Any]) -> dict[str, Any]:
    fn = dict(call.get("function") or {})
    args = fn.get("arguments")
    if isinstance(args, str):
        try:
            fn["arguments"] = json.loads(args) if args.strip() else {}
        except json.JSONDecodeError:
            pass
    return {**{k: v for k, v in call.items() if v is not None}, "function": fn}


def prepare_row(row: dict[str, Any]) -> dict[str, Any]:
    """A trainer row with ``tools`` and every message list ready for a chat template.

    >>> prepare_row({"messages": [{"role": "user", "content": "hi", "tool_calls": None}], "tools": "[]"})
    {'messages': [{'role': 'user', 'content': 'hi'}], 'tools': []}
    """
    prepared = dict(row)
    for key in ("messages", "prompt", "chosen", "rejected", "completion"):
        if isinstance(row.get(key), list):
            prepared[key] = prepare_messages(row[key])
    if "tools" in row:
        prepared["tools"] = _parse_tools(row["tools"])
    return prepared


def _parse_tools(tools: Any) -> Any:
    if isinstance(tools, str):
        try:
            return json.loads(tools) if tools.strip() else None
        except json.JSONDecodeError:
            return None
    return tools


# ---------------------------------------------------------------- validation


def _validate_first(path: str, config: TrainConfig) -> None:
    """Run ``rollcraft.validate`` on the data (rendered with the model's tokenizer when it is a local
    folder); stop with a :class:`ConfigError` listing the first findings when it finds errors."""
    try:
        from rollcraft.validate import validate_file
    except ImportError:  # a build without the validate module: the trainer's own checks remain
        return
    tokenizer = config.model if config.model and Path(config.model).is_dir() else None
    report = validate_file(
        path, kind=config.method, dialect="trl", tokenizer=tokenizer, max_seq_len=config.max_length
    )
    if report.errors:
        errors = [f for f in report.findings if f.severity == "error"][:5]
        listed = "\n  ".join(f"row {f.row}: {f.code}: {f.message}" for f in errors)
        raise ConfigError(
            f"{path}: validation found {report.errors} error(s); fix them or pass --no-validate:\n  {listed}"
        )


# ---------------------------------------------------------------- running


def _require_train_extra() -> None:
    import importlib.util

    missing = [name for name in _TRAIN_MODULES if importlib.util.find_spec(name) is None]
    if missing:
        raise DependencyError(
            f"training needs {', '.join(missing)}: pip install 'rollcraft[train]' "
            "(install a torch build for your machine first, e.g. the CPU or CUDA wheel)"
        )


def train_sft(
    data: str | os.PathLike[str],
    model: str,
    output_dir: str | os.PathLike[str],
    *,
    config: TrainConfig | None = None,
    on_log: LogFn | None = None,
) -> TrainResult:
    """Supervised fine-tuning of ``model`` (folder or hub name) on an SFT file, into ``output_dir``."""
    base = config or TrainConfig()
    update = {"method": "sft", "data": os.fspath(data), "model": model, "output_dir": os.fspath(output_dir)}
    return train(base.model_copy(update=update), on_log=on_log)


def train_dpo(
    data: str | os.PathLike[str],
    model: str,
    output_dir: str | os.PathLike[str],
    *,
    config: TrainConfig | None = None,
    on_log: LogFn | None = None,
) -> TrainResult:
    """Direct preference optimisation of ``model`` on a DPO file, into ``output_dir``."""
    base = config or TrainConfig(method="dpo")
    update = {"method": "dpo", "data": os.fspath(data), "model": model, "output_dir": os.fspath(output_dir)}
    return train(base.model_copy(update=update), on_log=on_log)


def train(config: TrainConfig, *, on_log: LogFn | None = None) -> TrainResult:
    """Validate the data, train with TRL, and write the model folder with its manifest."""
    data, model_name, output = _required_paths(config)
    _require_train_extra()
    _check_output(output, overwrite=config.overwrite)
    if config.validate_data:
        _validate_first(data, config)
    rows = load_rows(data, config.method)
    partial = _fresh_partial(output)
    started = time.monotonic()
    trainer = _build_trainer(config, model_name, rows, partial, on_log)
    _run_trainer(trainer)
    _save(trainer, config, partial)
    if config.method == "sft":
        config = config.model_copy(update={"assistant_only_loss": bool(trainer.args.assistant_only_loss)})
    result = _result(config, output, trainer, len(rows), time.monotonic() - started)
    if not trainer.is_world_process_zero():
        return result
    _write_records(partial, config, data, result)
    _move_into_place(partial, output)
    return result


def _required_paths(config: TrainConfig) -> tuple[str, str, Path]:
    for key in ("data", "model", "output_dir"):
        if not getattr(config, key):
            raise ConfigError("is required (a flag or a key of the YAML config)", key=key)
    assert config.data and config.model and config.output_dir
    if not Path(config.data).is_file():
        raise InputError("no such file", path=config.data)
    return config.data, config.model, Path(config.output_dir)


def _fresh_partial(output: Path) -> Path:
    """The folder a run writes into before it is renamed to ``output``; a stale one is removed.

    Its name is fixed (not random) so every process of an ``accelerate launch`` run agrees on it.
    """
    partial = output.with_name(output.name + ".partial")
    if os.environ.get("RANK", "0") == "0" and partial.exists():
        shutil.rmtree(partial)
    return partial


def _check_output(output: Path, *, overwrite: bool) -> None:
    if output.exists() and not output.is_dir():
        raise OutputError(f"{output}: exists and is not a folder")
    if output.is_dir() and any(output.iterdir()) and not overwrite:
        raise OutputError(f"{output}: exists and is not empty; pass --overwrite to replace it")


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


# ---------------------------------------------------------------- building the trainer


def _build_trainer(
    config: TrainConfig, model_name: str, rows: list[dict[str, Any]], workdir: Path, on_log: LogFn | None
) -> Any:
    import torch

    torch.manual_seed(config.seed)
    tokenizer = _load_tokenizer(model_name)
    model = _load_model(model_name, config)
    dataset = _dataset(rows)
    callbacks = [_log_callback(on_log)] if on_log is not None else []
    peft_config = _peft_config(config) if config.lora else None
    build = _sft_trainer if config.method == "sft" else _dpo_trainer
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
    _prepare_before_template(tokenizer)
    return tokenizer


def _prepare_before_template(tokenizer: Any) -> None:
    """Make this tokenizer's ``apply_chat_template`` parse JSON-text arguments and tools first."""
    original = tokenizer.apply_chat_template

    def apply_chat_template(conversation: Any, *args: Any, tools: Any = None, **kwargs: Any) -> Any:
        if conversation and isinstance(conversation[0], list):
            conversation = [prepare_messages(c) for c in conversation]
        elif isinstance(conversation, list):
            conversation = prepare_messages(conversation)
        return original(conversation, *args, tools=_parse_tools(tools), **kwargs)

    tokenizer.apply_chat_template = apply_chat_template


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
    assistant_only = config.assistant_only_loss
    if assistant_only is None:
        assistant_only = _assistant_only_possible(tokenizer)
    args = _trl_config(
        trl.SFTConfig, {**_common_args(config, workdir), "assistant_only_loss": assistant_only}, config
    )
    return _trainer(trl.SFTTrainer, "SFT", model, args, dataset, tokenizer, callbacks, peft_config)


def _assistant_only_possible(tokenizer: Any) -> bool:
    """Whether TRL can mask everything but the assistant's tokens with this tokenizer's template."""
    try:
        from trl.chat_template_utils import get_training_chat_template, has_generation_markers
    except ImportError:
        return False
    if has_generation_markers(tokenizer.chat_template):
        return True
    try:
        return get_training_chat_template(tokenizer) is not None
    except (ValueError, TypeError, NotImplementedError):
        return False


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


# ---------------------------------------------------------------- saving


def _save(trainer: Any, config: TrainConfig, partial: Path) -> None:
    """Save model and tokenizer; every process calls it (sharded setups gather the weights here)."""
    model = trainer.model
    if not (config.lora and config.merge_lora and hasattr(model, "merge_and_unload")):
        trainer.save_model(str(partial))  # writes on the main process only
        return
    if trainer.is_world_process_zero():
        model.merge_and_unload().save_pretrained(str(partial))
        trainer.processing_class.save_pretrained(str(partial))


def _result(config: TrainConfig, output: Path, trainer: Any, rows: int, runtime: float) -> TrainResult:
    history = [dict(entry) for entry in trainer.state.log_history]
    losses = [e["train_loss"] for e in history if "train_loss" in e]
    return TrainResult(
        output_dir=output,
        method=config.method,
        global_step=int(trainer.state.global_step),
        train_loss=float(losses[-1]) if losses else None,
        runtime_s=round(runtime, 3),
        rows=rows,
        log_history=history,
    )


def _write_records(folder: Path, config: TrainConfig, data: str, result: TrainResult) -> None:
    resolved = config.model_dump(mode="json") | {"learning_rate": config.resolved_learning_rate}
    manifest = {
        "rollcraft_train": 1,
        "method": config.method,
        "base_model": config.model,
        "data": {"path": os.path.abspath(data), "sha256": data_sha256(data), "rows": result.rows},
        "config": resolved,
        "result": {
            "global_step": result.global_step,
            "train_loss": result.train_loss,
            "runtime_s": result.runtime_s,
        },
        "log_history": result.log_history,
        "versions": dependency_versions(_DEPENDENCIES, missing=True),
        "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
    }
    _write_bytes(folder / MANIFEST_NAME, orjson.dumps(manifest, option=orjson.OPT_INDENT_2) + b"\n")
    _write_bytes(folder / "train_config.yaml", yaml.safe_dump(resolved, sort_keys=False).encode())
    log = b"".join(orjson.dumps(e) + b"\n" for e in result.log_history)
    _write_bytes(folder / "training_log.jsonl", log)


def _write_bytes(path: Path, payload: bytes) -> None:
    with atomic_writer(path) as handle:
        handle.write(payload)


#: The distributions whose versions the model folder's record keeps (``null`` when not installed).
_DEPENDENCIES = ("rollcraft", "torch", "transformers", "trl", "datasets", "accelerate", "peft")


def _move_into_place(partial: Path, output: Path) -> None:
    """Replace ``output`` by the finished ``partial`` folder (a rename on one file system)."""
    if output.exists():
        shutil.rmtree(output)
    os.replace(partial, output)
