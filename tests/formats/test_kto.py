"""KTO rows: labels, thresholds, the weights TRL suggests, the command and the pipeline section
through the same row step, and TRL's KTOTrainer training on rows of real rollouts."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import orjson
import pytest

from rollcraft import ConfigError, Rollout, read_rollouts
from rollcraft.formats import KtoFormat, SftReport, kto_weights
from rollcraft.formats._rows import count_row
from rollcraft.formats.sft import sft_skip_reason
from rollcraft.pipeline import run_pipeline
from tests.conftest import REAL_DIR


def _rollouts() -> list[Rollout]:
    return [r for r in read_rollouts([str(REAL_DIR)]) if isinstance(r, Rollout)]


def test_labels_follow_success_or_the_two_thresholds() -> None:
    rollouts = _rollouts()
    fmt = KtoFormat()
    assert {fmt.label(r) for r in rollouts} == {"desirable", "undesirable"}
    prompted = [r for r in rollouts if r.conversation.prompt]
    assert all((fmt.label(r) == "desirable") == r.success and fmt.left_out(r) is None for r in prompted)
    assert all(fmt.left_out(r) == "empty_prompt" for r in rollouts if not r.conversation.prompt)
    graded = KtoFormat(desirable_min_reward=0.8, undesirable_max_reward=0.2)
    middle = [r for r in prompted if 0.2 < r.reward < 0.8]
    assert middle and all(graded.left_out(r) == "between_kto_thresholds" for r in middle)
    assert all(graded.row(r)["label"] == (r.reward >= 0.8) for r in rollouts if graded.left_out(r) is None)
    with pytest.raises(ConfigError):
        KtoFormat(desirable_min_reward=0.5)
    with pytest.raises(ConfigError):
        KtoFormat(desirable_min_reward=0.5, undesirable_max_reward=0.5)


def test_a_row_is_the_prompt_the_completion_and_the_label_in_trls_conversational_form() -> None:
    rollout = next(r for r in _rollouts() if r.conversation.tools and r.n_tool_calls and r.success)
    row = KtoFormat().row(rollout)
    assert row["label"] is True and json.loads(row["tools"])  # tools as the trl dialect carries them
    assert [m["role"] for m in row["prompt"]] == [m["role"] for m in rollout.conversation.prompt]
    assert [m["role"] for m in row["completion"]] == [m["role"] for m in rollout.conversation.completion]
    assert row["completion"][-1]["role"] == "assistant" and row["rollout_id"] == rollout.rollout_id


def test_the_weights_trl_suggests_for_an_unbalanced_ratio() -> None:
    assert kto_weights(100, 400) == {
        "desirable": 100,
        "undesirable": 400,
        "balanced": False,
        "desirable_weight": [4.0, 5.32],
        "undesirable_weight": [0.19, 0.25],
    }
    report = SftReport()
    fmt = KtoFormat()
    for rollout in _rollouts():
        if count_row(fmt, rollout, sft_skip_reason(rollout), report):
            report.rows += len(fmt.rows(rollout))
    assert report.rows == sum(report.labels.values()) and set(report.labels) == {"desirable", "undesirable"}


def _cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "rollcraft.cli", *args], capture_output=True, text=True)


def test_the_command_and_the_pipeline_write_the_same_rows(tmp_path: Path) -> None:
    out, report = tmp_path / "kto.jsonl", tmp_path / "kto.json"
    result = _cli("kto", str(REAL_DIR), "-o", str(out), "--report", str(report), "--max-turns", "400")
    assert result.returncode == 0, result.stderr
    assert "desirable" in result.stdout and "KTOConfig" in result.stdout
    counts = json.loads(report.read_text())
    kept = counts["filter"]["kept"]
    assert counts["kto"]["rows"] + sum(counts["kto"]["skipped"].values()) == kept  # every kept rollout
    assert counts["kto"]["weights"]["desirable"] == counts["kto"]["labels"]["desirable"]
    assert all(orjson.loads(line)["prompt"] for line in out.read_bytes().splitlines())  # never empty
    assert counts["kto"]["skipped"].get("empty_prompt", 0) > 0
    config = tmp_path / "pipeline.yaml"
    config.write_text(
        f'inputs: ["{REAL_DIR}"]\noutput_dir: out\nfilters: {{max_turns: 400}}\nkto: {{}}\n'
        "validate: {enabled: false}\n"
    )
    one = run_pipeline(config, workers=1)
    assert (one.folder / "kto.jsonl").read_bytes() == out.read_bytes()
    assert one.manifest["counts"]["kto"]["labels"] == counts["kto"]["labels"]
    ids = (one.folder / "kto_ids.txt").read_text().split()
    assert ids == [orjson.loads(line)["rollout_id"] for line in out.read_bytes().splitlines()]


def test_kto_trainer_trains_on_rows_of_real_rollouts(tmp_path: Path) -> None:
    torch = pytest.importorskip("torch")
    trl = pytest.importorskip("trl")
    datasets = pytest.importorskip("datasets")
    transformers = pytest.importorskip("transformers")
    from rollcraft.tiny import save_tiny_model, save_tiny_tokenizer

    torch.set_num_threads(1)
    model_dir = save_tiny_model(tmp_path / "model", tokenizer_dir=save_tiny_tokenizer(tmp_path / "tok"))
    out = tmp_path / "kto.jsonl"
    assert _cli("kto", str(REAL_DIR), "-o", str(out)).returncode == 0
    rows = [orjson.loads(line) for line in out.read_bytes().splitlines()]
    short = sorted(rows, key=lambda r: len(orjson.dumps(r)))
    picked = [r for r in short if r["label"]][:4] + [r for r in short if not r["label"]][:4]
    small = tmp_path / "small.jsonl"
    small.write_bytes(b"".join(orjson.dumps(r) + b"\n" for r in picked))
    dataset = datasets.load_dataset("json", data_files=str(small), split="train")
    model = transformers.AutoModelForCausalLM.from_pretrained(str(model_dir))
    tokenizer = transformers.AutoTokenizer.from_pretrained(str(model_dir))
    args = trl.KTOConfig(
        output_dir=str(tmp_path / "run"),
        max_steps=2,
        per_device_train_batch_size=2,
        max_length=512,
        report_to=[],
        use_cpu=True,
        save_strategy="no",
        logging_steps=1,
    )
    trainer = trl.KTOTrainer(model=model, args=args, train_dataset=dataset, processing_class=tokenizer)
    result = trainer.train()
    assert result.global_step == 2 and result.training_loss == result.training_loss  # a number, not nan
