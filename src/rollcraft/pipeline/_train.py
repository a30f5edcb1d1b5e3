"""The pipeline's ``train`` section: training on a published version's data."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import orjson

from rollcraft._errors import ConfigError
from rollcraft._pipeline_config import LoadedConfig


def train_version(loaded: LoadedConfig, folder: Path, manifest: dict[str, Any]) -> Path:
    """Train on a published version's data (the config's ``train`` section) into ``models/NAME/``.

    The model folder's ``data_version.json`` points at the version: its folder, name, data file
    and that file's sha256 from the version's manifest.
    """
    from rollcraft.train import load_train_config, train

    section = loaded.config.train
    assert section is not None
    sections = {"sft": loaded.config.sft, "dpo": loaded.config.dpo, "kto": loaded.config.kto}
    data_section = sections[section.method]
    if data_section is None:
        raise ConfigError(
            f"train.method is {section.method} but the pipeline writes no {section.method} data",
            key="train.method",
        )
    data = folder / data_section.file
    model = loaded.resolve(section.model) if os.path.exists(loaded.resolve(section.model)) else section.model
    output = Path(loaded.resolve(section.models_dir)) / (section.name or f"{folder.name}-{section.method}")
    config = load_train_config(
        loaded.resolve(section.config) if section.config else None,
        **{
            **section.options,
            "method": section.method,
            "model": model,
            "data": str(data),
            "output_dir": str(output),
        },
    )
    result = train(config)
    entry = next(o for o in manifest["outputs"] if o["path"] == data_section.file)
    pointer = {
        "data_version": folder.name,
        "version_folder": str(folder),
        "data_file": data_section.file,
        "data_sha256": entry["sha256"],
        "pipeline_config": manifest["config_file"],
    }
    (result.output_dir / "data_version.json").write_bytes(
        orjson.dumps(pointer, option=orjson.OPT_INDENT_2) + b"\n"
    )
    return result.output_dir
