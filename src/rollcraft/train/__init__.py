"""Train on rollcraft's SFT, DPO and KTO files with TRL (the optional ``rollcraft[train]`` extra).

One call trains one model folder::

    >>> from rollcraft.train import TrainConfig, train
    >>> config = TrainConfig(method="sft", model="models/base", data="sft.jsonl", output_dir="models/sft")
    >>> result = train(config)  # doctest: +SKIP

The folder holds the model and tokenizer (``from_pretrained`` loads it; a LoRA run is merged
into the base weights unless ``merge_lora`` is off), ``train_config.yaml`` (the resolved
configuration), ``training_log.jsonl`` (the trainer's log lines) and ``rollcraft_train.json``
(configuration, the data file's path, sha256 and row count, the result, the log and the library
versions). It is written beside its final place and renamed into it only when training ends.

Data files are the TRL dialect of ``rollcraft sft`` / ``dpo`` / ``kto``: ``messages`` (SFT),
``prompt``/``chosen``/``rejected`` (DPO) or ``prompt``/``completion``/``label`` (KTO), every
message with ``role`` and ``content``, tool calls with ``arguments`` as JSON text, and ``tools``
as a JSON string. :func:`prepare_row` turns that text back into objects for the chat template,
so templates that iterate ``arguments`` work; the text form is what keeps ``datasets`` from
merging the keys of different rows' arguments. KTO's weights default to TRL's suggestion for
unbalanced labels (:func:`rollcraft.train._kto.resolve_kto_weights`).

torch, transformers, trl, datasets and peft are imported inside the functions that need them.
"""

from __future__ import annotations

import os
import time
from pathlib import Path

from rollcraft._errors import ConfigError, DependencyError, InputError
from rollcraft.train._config import LogFn as LogFn
from rollcraft.train._config import SayFn as SayFn
from rollcraft.train._config import TrainConfig, TrainResult, load_train_config
from rollcraft.train._data import data_sha256, load_rows, prepare_messages, prepare_row
from rollcraft.train._kto import resolve_kto_weights
from rollcraft.train._record import _DEPENDENCIES as _DEPENDENCIES
from rollcraft.train._record import (
    MANIFEST_NAME,
    _check_output,
    _fresh_partial,
    _move_into_place,
    _result,
    _save,
    _write_records,
)
from rollcraft.train._trainers import _build_trainer, _run_trainer

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
    "train_kto",
    "train_sft",
]

_TRAIN_MODULES = ("torch", "transformers", "trl", "datasets", "accelerate")


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


def require_train_extra(what: str = "training") -> None:
    """Raise :class:`~rollcraft.DependencyError` naming ``rollcraft[train]`` when any of it is missing."""
    import importlib.util

    missing = [name for name in _TRAIN_MODULES if importlib.util.find_spec(name) is None]
    if missing:
        raise DependencyError(
            f"{what} needs {', '.join(missing)}: pip install 'rollcraft[train]' "
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


def train_kto(
    data: str | os.PathLike[str],
    model: str,
    output_dir: str | os.PathLike[str],
    *,
    config: TrainConfig | None = None,
    on_log: LogFn | None = None,
    say: SayFn | None = None,
) -> TrainResult:
    """Kahneman-Tversky optimisation of ``model`` on a KTO file (unpaired labels), into ``output_dir``."""
    base = config or TrainConfig(method="kto")
    update = {"method": "kto", "data": os.fspath(data), "model": model, "output_dir": os.fspath(output_dir)}
    return train(base.model_copy(update=update), on_log=on_log, say=say)


def train(config: TrainConfig, *, on_log: LogFn | None = None, say: SayFn | None = None) -> TrainResult:
    """Validate the data, train with TRL, and write the model folder with its manifest.

    ``say`` gets the run's notes as lines (KTO: the label counts and the weights in force).
    """
    data, model_name, output = _required_paths(config)
    require_train_extra()
    _check_output(output, overwrite=config.overwrite)
    if config.validate_data:
        _validate_first(data, config)
    rows = load_rows(data, config.method)
    if config.method == "kto":
        config, line = resolve_kto_weights(config, rows)
        if say is not None:
            say(line)
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
