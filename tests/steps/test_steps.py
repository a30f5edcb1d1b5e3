"""The step model: one runner for every kind of step, the same steps behind the commands and the
pipeline, and the filter registry (a key of FilterConfig is a step and a flag)."""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import orjson
import pytest

from rollcraft import read_rollouts
from rollcraft.filters import STEP_KEYS, Drop, FilterConfig, FilterReport, MinReward, build_steps, step_spec
from rollcraft.pipeline import run_pipeline
from rollcraft.steps import (
    Judged,
    RedactLines,
    Review,
    ReviewReport,
    WriteKept,
    WriteRejects,
    drain,
    run_steps,
)
from tests.conftest import EXAMPLES_DIR, REAL_DIR


@dataclass
class OddLines:
    """A stage a user might write: drop the kept rollouts on odd lines, counting them."""

    dropped: int = 0
    seen: list[int] = field(default_factory=list)
    name: str = "odd_lines"

    def run(self, judged: Iterator[Judged]) -> Iterator[Judged]:
        for rollout, drop in judged:
            self.seen.append(rollout.line)
            if drop is None and rollout.line % 2:
                self.dropped += 1
                drop = Drop(self.name, f"line {rollout.line} is odd")
            yield rollout, drop


def test_a_new_stage_is_one_class_and_the_runner_runs_it_after_the_filters() -> None:
    kept, rejects = io.BytesIO(), io.BytesIO()
    odd = OddLines()
    report = FilterReport()
    steps = [MinReward(0.5), odd, WriteKept(kept), WriteRejects(rejects)]
    judged = list(run_steps(read_rollouts([str(EXAMPLES_DIR)]), steps, report))
    rollouts = [r for r, _ in judged]
    assert odd.seen == [r.line for r in rollouts]  # a stage sees the dropped rollouts too
    by_min_reward = [r for r in rollouts if r.reward < 0.5]
    by_odd = [r for r in rollouts if r.reward >= 0.5 and r.line % 2]
    assert odd.dropped == len(by_odd) > 0 and report.dropped["min_reward"] == len(by_min_reward) > 0
    written = [orjson.loads(line) for line in rejects.getvalue().splitlines()]
    assert [w["dropped_by"] for w in written].count("odd_lines") == len(by_odd)
    assert len(written) + len(kept.getvalue().splitlines()) == report.read.rollouts
    assert report.kept == report.read.rollouts - len(by_min_reward)  # filters count what they kept


def test_steps_out_of_kind_order_are_refused() -> None:
    with pytest.raises(ValueError, match="filters run before stages"):
        run_steps([], [OddLines(), MinReward(0.5)], FilterReport())
    from rollcraft.redact import RedactSecrets

    with pytest.raises(ValueError, match="rewrites run first"):
        run_steps([], [MinReward(0.5), RedactLines(RedactSecrets())], FilterReport())


def test_step_reports_add_up() -> None:
    a = ReviewReport(kept=2, accepted=1, rejected=1, undecided=1)
    b = ReviewReport(kept=1, accepted=1, skipped=1, undecided=1)
    total = a + b
    assert (total.kept, total.accepted, total.rejected, total.skipped, total.undecided) == (3, 2, 1, 1, 2)
    assert total.matched == 3


def test_every_filter_key_is_a_step_and_a_flag() -> None:
    """The config is the registry: every step key has its spec, builds its step, and the commands
    that filter take its flag."""
    assert STEP_KEYS[0] == "min_reward" and "dedupe" in STEP_KEYS
    help_text = subprocess.run(
        [sys.executable, "-m", "rollcraft.cli", "sft", "--help"],
        capture_output=True,
        text=True,
        env={**os.environ, "COLUMNS": "250"},
        check=True,
    ).stdout
    for key in STEP_KEYS:
        spec = step_spec(key)
        assert spec is not None, key
        assert spec.option(key) in help_text, key
    config = FilterConfig(dedupe=True, max_turns=9)  # named keys first, in their order; then the registry's
    assert [s.name for s in build_steps(config)] == ["dedupe", "max_turns", "drop_flagged"]


def _decisions(tmp_path: Path) -> Path:
    rollouts = [r for r in read_rollouts([str(EXAMPLES_DIR)]) if not hasattr(r, "reason")]
    lines = [
        {"rollout_id": rollouts[0].rollout_id, "decision": "reject", "note": "wrong unit in the answer"},
        {"rollout_id": rollouts[1].rollout_id, "decision": "reject"},
        {"rollout_id": rollouts[2].rollout_id, "decision": "accept"},
    ]
    path = tmp_path / "decisions.jsonl"
    path.write_text("".join(json.dumps(line) + "\n" for line in lines))
    return path


def _cli(*args: str) -> None:
    subprocess.run([sys.executable, "-m", "rollcraft.cli", *args], check=True, capture_output=True)


def test_the_pipeline_and_apply_review_run_the_same_review_step(tmp_path: Path) -> None:
    decisions = _decisions(tmp_path)
    config = tmp_path / "pipeline.yaml"
    config.write_text(
        f'inputs: ["{EXAMPLES_DIR}"]\noutput_dir: out\nfilters: {{drop_flagged: []}}\n'
        f'review: {{decisions: "{decisions}"}}\nwrite_filtered: true\nwrite_rejects: true\n'
        "validate: {enabled: false}\n"
    )
    folder = run_pipeline(config).folder
    _cli(
        "apply-review",
        str(EXAMPLES_DIR),
        "--decisions",
        str(decisions),
        "-o",
        str(tmp_path / "kept.jsonl"),
        "--rejects",
        str(tmp_path / "rejects.jsonl"),
    )
    assert (folder / "filtered.jsonl").read_bytes() == (tmp_path / "kept.jsonl").read_bytes()
    assert (folder / "rejects.jsonl").read_bytes() == (tmp_path / "rejects.jsonl").read_bytes()
    reasons = [json.loads(line)["reason"] for line in (folder / "rejects.jsonl").read_text().splitlines()]
    assert reasons == ["wrong unit in the answer", "rejected in review"]  # the note, in both


def test_the_pipeline_and_the_balance_command_choose_the_same_rollouts(tmp_path: Path) -> None:
    config = tmp_path / "pipeline.yaml"
    config.write_text(
        f'inputs: ["{REAL_DIR}"]\noutput_dir: out\nfilters: {{drop_flagged: []}}\n'
        "balance: {max_per_category: 3, by: task_type, seed: 7}\nwrite_filtered: true\n"
        "validate: {enabled: false}\n"
    )
    folder = run_pipeline(config).folder
    _cli("balance", str(REAL_DIR), "--max-per-category", "3", "--seed", "7", "-o", str(tmp_path / "b.jsonl"))
    balanced = (tmp_path / "b.jsonl").read_bytes()
    assert balanced == (folder / "filtered.jsonl").read_bytes() and balanced.count(b"\n") > 20


def test_review_step_alone_counts_and_names_unmatched() -> None:
    items = list(read_rollouts([str(EXAMPLES_DIR)]))
    first = next(r for r in items if not hasattr(r, "reason"))
    from rollcraft.review.decisions import Decision

    decisions = {first.rollout_id: Decision(first.rollout_id, "reject"), "nope": Decision("nope", "accept")}
    review = Review(decisions)
    drain(run_steps(items, [review], FilterReport()))
    assert review.report.rejected == 1 and review.unmatched() == ["nope"]
