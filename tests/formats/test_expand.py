"""``sft --expand turns``: one row per assistant turn, earlier turns without their reasoning."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import orjson

from rollcraft import Rollout, read_rollouts
from rollcraft.formats.sft import turn_rows
from rollcraft.pipeline import run_pipeline
from tests.conftest import REAL_DIR


def _reasoning_multi_turn() -> list[Rollout]:
    rollouts = [r for r in read_rollouts([str(REAL_DIR)]) if isinstance(r, Rollout)]
    picked = [
        r
        for r in rollouts
        if r.n_assistant_turns > 1 and any(m.get("reasoning_content") for m in r.conversation.completion)
    ]
    assert len(picked) >= 5
    return picked


def test_one_row_per_assistant_turn_and_no_earlier_reasoning_in_any_prompt() -> None:
    for rollout in _reasoning_multi_turn():
        rows = turn_rows(rollout)
        completion = rollout.conversation.completion
        turns = [m for m in completion if m["role"] == "assistant"]
        if completion[0]["role"] == "assistant" and not rollout.conversation.prompt:
            turns = turns[1:]  # the agent spoke first: nothing to condition that turn on, no row
        assert len(rows) == len(turns)
        assert all(row["prompt"] for row in rows)
        for row, turn in zip(rows, turns, strict=True):
            assert [m["role"] for m in row["completion"]] == ["assistant"]
            assert row["completion"][0]["reasoning_content"] == turn.get("reasoning_content")
            assert all(m["reasoning_content"] is None for m in row["prompt"] if m["role"] == "assistant")
        last = rows[-1]
        assert len(last["prompt"]) + 1 == len(rollout.conversation.messages)
        assert [r["turn"] for r in rows] == list(range(len(rows)))


def test_openai_rows_train_only_the_last_turn() -> None:
    rollout = _reasoning_multi_turn()[0]
    for row in turn_rows(rollout, "openai"):
        weights = [m.get("weight") for m in row["messages"] if m["role"] == "assistant"]
        assert weights[-1] == 1 and set(weights[:-1]) <= {0}


def _cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "rollcraft.cli", *args], capture_output=True, text=True)


def test_the_command_and_the_pipeline_give_the_same_rows(tmp_path: Path) -> None:
    out = tmp_path / "turns.jsonl"
    result = _cli("sft", str(REAL_DIR), "-o", str(out), "--expand", "turns", "--max-turns", "400")
    assert result.returncode == 0, result.stderr
    rows = [orjson.loads(line) for line in out.read_bytes().splitlines()]
    assert all(
        set(r) == {"prompt", "completion", "tools", "reward", "task_type", "rollout_id", "turn"} for r in rows
    )
    config = tmp_path / "pipeline.yaml"
    config.write_text(
        f'inputs: ["{REAL_DIR}"]\noutput_dir: out\nfilters: {{max_turns: 400}}\n'
        "sft: {expand: turns}\ndpo: {pairing: all}\nvalidate: {enabled: false}\n"
    )
    folder = run_pipeline(config).folder
    assert (folder / "sft.jsonl").read_bytes() == out.read_bytes()
    ids = (folder / "sft_ids.txt").read_text().split()
    assert ids == [r["rollout_id"] for r in rows]  # an id per row
    plain = tmp_path / "plain.yaml"
    plain.write_text(
        config.read_text().replace("sft: {expand: turns}\n", "sft: {}\n").replace("out\n", "plain\n")
    )
    assert (folder / "dpo.jsonl").read_bytes() == (run_pipeline(plain).folder / "dpo.jsonl").read_bytes()


def test_nemo_rl_is_refused_with_the_reason() -> None:
    result = _cli("sft", str(REAL_DIR), "-o", "/dev/null", "--expand", "turns", "--format", "nemo-rl")
    assert result.returncode == 2 and "nemo-rl trains on every assistant message" in result.stderr
    assert "Traceback" not in result.stderr
