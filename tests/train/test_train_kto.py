"""``rollcraft train kto``: TRL's KTOTrainer on KTO rows of real rollouts, the weights TRL suggests
for unbalanced labels, and a pipeline ``train: {method: kto}`` on its version's kto.jsonl."""

from __future__ import annotations

import dataclasses
import json
import subprocess
import sys
from pathlib import Path

import orjson
import pytest
import yaml

from rollcraft import InputError
from rollcraft.pipeline import run_pipeline
from rollcraft.train import TrainConfig, load_rows
from rollcraft.train._kto import resolve_kto_weights
from tests.conftest import EXAMPLES_DIR, REAL_DIR


def _cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "rollcraft.cli", *args], capture_output=True, text=True)


@pytest.fixture(scope="module")
def tiny_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    pytest.importorskip("trl")
    import torch

    from rollcraft.tiny import save_tiny_model, save_tiny_tokenizer

    torch.set_num_threads(1)
    root = tmp_path_factory.mktemp("tiny")
    return save_tiny_model(root / "model", tokenizer_dir=save_tiny_tokenizer(root / "tok"))


def test_train_kto_trains_two_steps_on_kto_rows_of_real_rollouts(tmp_path: Path, tiny_model: Path) -> None:
    import trl

    made = tmp_path / "kto.jsonl"
    assert _cli("kto", str(REAL_DIR), "-o", str(made), "--max-turns", "400").returncode == 0
    rows = [orjson.loads(line) for line in made.read_bytes().splitlines()]
    short = sorted((r for r in rows if r["prompt"]), key=lambda r: len(orjson.dumps(r)))
    picked = [r for r in short if r["label"]][:2] + [r for r in short if not r["label"]][:6]
    data = tmp_path / "small.jsonl"
    data.write_bytes(b"".join(orjson.dumps(r) + b"\n" for r in picked))
    out = tmp_path / "kto-model"
    result = _cli(
        "train", "kto", "--data", str(data), "--model", str(tiny_model), "-o", str(out),
        "--max-steps", "2", "--batch-size", "2", "--max-length", "1024", "--device", "cpu",
    )  # fmt: skip
    assert result.returncode == 0, result.stderr[-2000:]
    # 2 desirable, 6 undesirable: the minority's weight makes both weigh the same (TRL's range)
    assert "KTO: 2 desirable, 6 undesirable rows; desirable_weight 3, undesirable_weight 1" in result.stderr
    assert "kto: 2 steps on 8 rows" in result.stdout
    config = yaml.safe_load((out / "train_config.yaml").read_text())
    assert (config["method"], config["desirable_weight"], config["undesirable_weight"]) == ("kto", 3.0, 1.0)
    kto_default = next(f.default for f in dataclasses.fields(trl.KTOConfig) if f.name == "learning_rate")
    assert config["learning_rate"] == kto_default == 1e-6
    record = json.loads((out / "rollcraft_train.json").read_text())
    assert record["method"] == "kto" and record["result"]["global_step"] == 2
    assert record["data"]["rows"] == 8
    assert (out / "config.json").is_file()


def test_the_weights_follow_the_minority_label_unless_given() -> None:
    def rows(desirable: int, undesirable: int) -> list[dict[str, bool]]:
        return [{"label": True}] * desirable + [{"label": False}] * undesirable

    kto = TrainConfig(method="kto")
    config, line = resolve_kto_weights(kto, rows(1, 4))
    assert (config.desirable_weight, config.undesirable_weight) == (4.0, 1.0)
    config, line = resolve_kto_weights(kto, rows(191, 150))  # the real files' labels
    assert (config.desirable_weight, config.undesirable_weight) == (1.0, 1.27)
    assert line.endswith("(TRL's suggestion for the ratio; set either weight to choose)")
    config, line = resolve_kto_weights(kto.model_copy(update={"undesirable_weight": 0.5}), rows(1, 4))
    assert (config.desirable_weight, config.undesirable_weight) == (1.0, 0.5) and "as configured" in line
    config, line = resolve_kto_weights(kto, rows(3, 0))
    assert (config.desirable_weight, config.undesirable_weight) == (1.0, 1.0)
    assert "no undesirable rows" in line
    assert "balanced labels" in resolve_kto_weights(kto, rows(2, 2))[1]


def test_kto_data_needs_a_label_and_a_prompt(tmp_path: Path) -> None:
    message = {"role": "user", "content": "hi"}
    answer = {"role": "assistant", "content": "hello"}
    path = tmp_path / "kto.jsonl"
    path.write_text(json.dumps({"prompt": [message], "completion": [answer], "label": True}) + "\n")
    assert load_rows(path, "kto") == [
        {
            "prompt": [message | {"tool_calls": None, "tool_call_id": None, "reasoning_content": None}],
            "completion": [answer | {"tool_calls": None, "tool_call_id": None, "reasoning_content": None}],
            "label": True,
        }
    ]
    path.write_text(json.dumps({"prompt": [message], "completion": [answer], "label": 1}) + "\n")
    with pytest.raises(InputError, match=r"kto\.jsonl:1: 'label' must be true or false"):
        load_rows(path, "kto")
    path.write_text(json.dumps({"prompt": [], "completion": [answer], "label": True}) + "\n")
    with pytest.raises(InputError, match="'prompt' must be a non-empty list"):
        load_rows(path, "kto")


def test_a_pipeline_trains_kto_on_its_versions_kto_file(tmp_path: Path, tiny_model: Path) -> None:
    config = tmp_path / "pipeline.yaml"
    config.write_text(
        f"inputs: [{EXAMPLES_DIR}]\noutput_dir: out\nkto: {{}}\n"
        f"train:\n  method: kto\n  model: {tiny_model}\n  name: tiny-kto\n"
        "  options: {max_steps: 2, batch_size: 2, max_length: 1024, device: cpu}\n"
    )
    result = run_pipeline(config)
    assert result.model_folder == tmp_path / "models" / "tiny-kto"
    pointer = json.loads((result.model_folder / "data_version.json").read_text())
    entry = next(o for o in result.manifest["outputs"] if o["path"] == "kto.jsonl")
    assert pointer["data_file"] == "kto.jsonl" and pointer["data_sha256"] == entry["sha256"]
    trained = json.loads((result.model_folder / "rollcraft_train.json").read_text())
    assert trained["method"] == "kto" and trained["result"]["global_step"] == 2
    assert json.loads((result.folder / "validation_kto.json").read_text())["errors"] == 0


def test_per_turn_sft_rows_train_as_prompt_completion_rows(tmp_path: Path, tiny_model: Path) -> None:
    from rollcraft.train import train_sft

    made = tmp_path / "turns.jsonl"
    assert (
        _cli("sft", str(REAL_DIR), "-o", str(made), "--expand", "turns", "--max-turns", "400").returncode == 0
    )
    rows = [orjson.loads(line) for line in made.read_bytes().splitlines()]
    later = sorted((r for r in rows if r["turn"] and r["prompt"]), key=lambda r: len(orjson.dumps(r)))[:4]
    data = tmp_path / "small.jsonl"
    data.write_bytes(b"".join(orjson.dumps(r) + b"\n" for r in later))
    assert [sorted(r) for r in load_rows(data, "sft")] == [["completion", "prompt", "tools"]] * 4
    config = TrainConfig(max_steps=2, batch_size=2, max_length=1024, device="cpu", logging_steps=1)
    result = train_sft(data, str(tiny_model), tmp_path / "sft-turns", config=config)
    assert result.global_step == 2 and result.rows == 4 and result.train_loss is not None
