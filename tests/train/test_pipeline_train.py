"""A pipeline with a ``train`` section trains a real tiny model on its version's data."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from rollcraft.pipeline import run_pipeline
from tests.conftest import EXAMPLES_DIR

torch = pytest.importorskip("torch")


def test_pipeline_trains_into_a_model_folder_that_points_at_its_version(tmp_path: Path) -> None:
    from rollcraft.tiny import save_tiny_model, save_tiny_tokenizer

    torch.set_num_threads(1)
    save_tiny_model(tmp_path / "model", tokenizer_dir=save_tiny_tokenizer(tmp_path / "tok"))
    config = tmp_path / "pipeline.yaml"
    config.write_text(
        f"inputs: [{EXAMPLES_DIR}]\noutput_dir: out\nsft: {{format: trl, success_only: true}}\n"
        "train:\n  method: sft\n  model: model\n  name: tiny\n"
        "  options: {max_steps: 2, batch_size: 2, max_length: 1024, device: cpu}\n"
    )
    result = run_pipeline(config)
    assert result.model_folder == tmp_path / "models" / "tiny"
    pointer = json.loads((result.model_folder / "data_version.json").read_text())
    sft_entry = next(o for o in result.manifest["outputs"] if o["path"] == "sft.jsonl")
    assert pointer["data_version"] == "v1" and pointer["data_sha256"] == sft_entry["sha256"]
    trained = json.loads((result.model_folder / "rollcraft_train.json").read_text())
    assert trained["data"]["sha256"] == sft_entry["sha256"]
