"""Exact-token SFT rows (``sft --format tokens``): the ids the model saw and produced, trained on
the generated ones only, taken by TRL's SFTTrainer as they are (no re-tokenization drift)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from rollcraft import Rollout, read_rollouts
from rollcraft.formats._rows import count_row
from rollcraft.formats.sft import SftReport, sft_skip_reason
from rollcraft.formats.tokens import TokenFormat
from tests.read.test_gym_records import _call, _message, _output, _record, _tokens, _write


def _chain(first: int, n_prompt: int) -> dict[str, Any]:
    """A two-call token-capture record: a tool call, its result, the answer. The second call's
    prompt is the first's prompt and generation plus the tool result's tokens (contiguous)."""
    prompt = [first + i for i in range(n_prompt)]
    call_ids = [300, 301, 302]
    tool_result = [40, 41, 42, 43]
    answer = [310, 311, 312, 2]
    output = [
        _call() | _tokens(prompt, call_ids),
        _output(),
        _message("It is sunny in Paris.") | _tokens(prompt + call_ids + tool_result, answer),
    ]
    return _record(output, _ng_task_index=first, _ng_rollout_index=0)


def _expected(record: dict[str, Any]) -> tuple[list[int], list[int]]:
    """The whole sequence and its mask (1 on generated ids), from the record's own arrays."""
    last = record["response"]["output"][-1]
    ids = last["prompt_token_ids"] + last["generation_token_ids"]
    generated: set[int] = set()
    for item in record["response"]["output"]:
        if item.get("generation_token_ids"):
            start = len(item["prompt_token_ids"])
            generated.update(range(start, start + len(item["generation_token_ids"])))
    return ids, [int(i in generated) for i in range(len(ids))]


def _records() -> list[dict[str, Any]]:
    kept = [_chain(10 + 7 * i, 5 + i) for i in range(4)]
    broken = _chain(100, 6)
    broken["response"]["output"][2]["prompt_token_ids"][0] = 99  # re-tokenized between calls
    return [*kept, broken, _record([_message("no tokens captured")])]


def test_a_row_is_the_last_calls_sequence_masked_to_the_generations(tmp_path: Path) -> None:
    records = _records()
    path = _write(tmp_path / "r.jsonl", records)
    rollouts = [r for r in read_rollouts([str(path)]) if isinstance(r, Rollout)]
    fmt, report = TokenFormat(), SftReport()
    rows = [fmt.rows(r)[0] for r in rollouts if count_row(fmt, r, sft_skip_reason(r), report)]
    assert len(rows) == 4
    assert report.skipped == {"token_calls_not_contiguous": 1, "no_token_ids": 1}
    ids, mask = _expected(records[0])
    assert rows[0]["input_ids"] == ids and rows[0]["assistant_masks"] == mask
    assert mask == [0] * 5 + [1] * 3 + [0] * 4 + [1] * 4
    assert rows[0].keys() == {"input_ids", "assistant_masks", "reward", "task_type", "rollout_id"}


def test_the_command_counts_what_it_leaves_out(tmp_path: Path) -> None:
    path = _write(tmp_path / "r.jsonl", _records())
    out, report = tmp_path / "tokens.jsonl", tmp_path / "report.json"
    args = ["sft", str(path), "-o", str(out), "--format", "tokens", "--report", str(report)]
    done = subprocess.run([sys.executable, "-m", "rollcraft.cli", *args], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert "Wrote 4 SFT rows (tokens)" in done.stdout
    data = json.loads(report.read_text())
    assert data["format"] == "tokens"
    assert data["sft"]["skipped"] == {"no_token_ids": 1, "token_calls_not_contiguous": 1}
    refused = subprocess.run(
        [sys.executable, "-m", "rollcraft.cli", *args, "--expand", "turns"], capture_output=True, text=True
    )
    assert refused.returncode == 2 and "--expand" in refused.stderr and "Traceback" not in refused.stderr


def test_trl_trains_on_the_rows_with_labels_on_generated_ids_only(tmp_path: Path) -> None:
    trl = pytest.importorskip("trl")
    import datasets
    import torch
    import transformers

    from rollcraft.tiny import save_tiny_model, save_tiny_tokenizer

    torch.set_num_threads(1)
    records = _records()
    path = _write(tmp_path / "r.jsonl", records)
    out = tmp_path / "tokens.jsonl"
    args = ["sft", str(path), "-o", str(out), "--format", "tokens"]
    done = subprocess.run([sys.executable, "-m", "rollcraft.cli", *args], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    model_dir = save_tiny_model(tmp_path / "model", tokenizer_dir=save_tiny_tokenizer(tmp_path / "tok"))
    tokenizer = transformers.AutoTokenizer.from_pretrained(str(model_dir))
    model = transformers.AutoModelForCausalLM.from_pretrained(str(model_dir))
    dataset = datasets.load_dataset("json", data_files=str(out), split="train")
    config = trl.SFTConfig(
        output_dir=str(tmp_path / "run"),
        max_steps=2,
        per_device_train_batch_size=2,
        learning_rate=1e-3,
        use_cpu=True,
        save_strategy="no",
        report_to="none",
        max_length=None,
    )
    trainer = trl.SFTTrainer(model=model, args=config, train_dataset=dataset, processing_class=tokenizer)
    prepared = trainer.train_dataset
    for row, record in zip(prepared, records[:4], strict=True):
        ids, mask = _expected(record)
        assert row["input_ids"] == ids  # the captured ids, not a re-tokenization
        assert row["labels"] == [t if m else -100 for t, m in zip(ids, mask, strict=True)]
    batch = trainer.data_collator([prepared[0], prepared[1]])
    first = batch["labels"][0].tolist()
    assert first[: len(_expected(records[0])[0])] == prepared[0]["labels"]
    trainer.train()
    assert trainer.state.global_step == 2


def test_validate_detects_token_rows_and_checks_their_arrays(tmp_path: Path) -> None:
    from rollcraft.validate import validate_file

    path = _write(tmp_path / "r.jsonl", _records())
    out = tmp_path / "tokens.jsonl"
    args = ["sft", str(path), "-o", str(out), "--format", "tokens"]
    assert subprocess.run([sys.executable, "-m", "rollcraft.cli", *args], capture_output=True).returncode == 0
    report = validate_file(out)
    assert (report.kind, report.dialect, report.rows, report.errors) == ("sft", "tokens", 4, 0)
    assert report.stats["length_unit"] == "tokens" and report.stats["length"]["max"] == 19
    rows = [json.loads(line) for line in out.open()]
    rows[0]["assistant_masks"] = [0] * len(rows[0]["input_ids"])
    rows[1]["assistant_masks"] = rows[1]["assistant_masks"][:-1]
    rows[2]["input_ids"] = ["a"]
    broken = _write(tmp_path / "broken.jsonl", rows)
    found = validate_file(broken, dialect="tokens")
    assert [(f.row, f.code) for f in found.findings] == [
        (1, "no_assistant_mask"),
        (2, "wrong_type"),
        (3, "wrong_type"),
    ]


def test_a_subagents_conversation_gives_no_token_row(tmp_path: Path) -> None:
    """``--trajectory branches`` adds a subagent's conversation as a rollout of the same line; its
    ids are not in the record (the captured ones are the main chain's): left out and counted."""
    from tests.read import _trajectory_records as ng

    final = ng.final_message("Fixed: the test passes now.") | _tokens([1, 2, 3], [4, 5])
    path = tmp_path / "r.jsonl"
    path.write_text(ng.line(ng.record(ng.subagent_trajectory(), output=[final])) + "\n")
    out, report = tmp_path / "tokens.jsonl", tmp_path / "report.json"
    args = ["sft", str(path), "-o", str(out), "--format", "tokens", "--trajectory", "branches"]
    args += ["--report", str(report)]
    done = subprocess.run([sys.executable, "-m", "rollcraft.cli", *args], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert [json.loads(line)["input_ids"] for line in out.open()] == [[1, 2, 3, 4, 5]]
    assert json.loads(report.read_text())["sft"]["skipped"] == {"tokens_main_chain_only": 1}
