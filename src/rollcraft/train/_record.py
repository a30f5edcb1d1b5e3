"""The model folder: written beside its final place, saved, recorded (manifest, config, log), moved in."""

from __future__ import annotations

import os
import shutil
import time
from pathlib import Path
from typing import Any

import orjson
import yaml

from rollcraft._errors import OutputError
from rollcraft._io import atomic_writer
from rollcraft._versions import dependency_versions
from rollcraft.train._config import TrainConfig, TrainResult
from rollcraft.train._data import data_sha256

MANIFEST_NAME = "rollcraft_train.json"


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
