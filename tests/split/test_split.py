"""``rollcraft split``: exact tasks per side for a seed, stratified by task type, original lines."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from rollcraft import OutputError, read_rollouts
from rollcraft.split import choose_eval_tasks, eval_count, split_paths

ASSISTANT = {"type": "message", "role": "assistant", "content": [{"type": "output_text", "text": "ok"}]}


def line(task: str, kind: str, prompt: str | None = None, reward: float = 1.0, **extra: Any) -> str:
    record = {
        "task_id": task,
        "category": kind,
        "responses_create_params": {"input": [{"role": "user", "content": prompt or f"Solve task {task}."}]},
        "response": {"output": [ASSISTANT]},
        "reward": reward,
        **extra,
    }
    return json.dumps(record, separators=(", ", ": "))  # spaces: bytes a re-encoding would change


def rollcraft(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "rollcraft.cli", *args], capture_output=True, text=True)


@pytest.fixture
def rollouts(tmp_path: Path) -> Path:
    """Math tasks m1..m6 (two rollouts each), code tasks c1..c3, one lone task, two bad lines."""
    lines = [line(f"m{i}", "math", reward=r) for r in (1.0, 0.0) for i in range(1, 7)]
    lines += [line(f"c{i}", "code") for i in range(1, 4)]
    lines += [line("solo", "chat"), "not json", '{"no": "rollout"}']
    path = tmp_path / "in.jsonl"
    path.write_text("\n".join(lines) + "\n")
    return path


def tasks_of(path: Path) -> list[str]:
    return [r.task_key.removeprefix("task_id:") for r in read_rollouts([str(path)]) if hasattr(r, "task_key")]


def test_eval_count_rounds_to_nearest_with_one_per_side() -> None:
    assert [eval_count(n, 0.2) for n in (0, 1, 2, 3, 5, 7, 8, 10)] == [0, 0, 1, 1, 1, 1, 2, 2]
    assert [eval_count(n, 0.5) for n in (2, 3, 5)] == [1, 2, 3]  # halves round up
    assert [eval_count(n, 0.99) for n in (2, 10)] == [1, 9]  # a train task stays


def test_choice_is_seeded_per_type_and_ignores_order() -> None:
    types = {f"m{i}": "math" for i in range(10)} | {f"c{i}": "code" for i in range(4)}
    chosen = choose_eval_tasks(types, 0.3, seed=7)
    assert chosen == choose_eval_tasks(dict(reversed(types.items())), 0.3, seed=7)
    assert sum(t.startswith("m") for t in chosen) == 3 and sum(t.startswith("c") for t in chosen) == 1
    assert any(choose_eval_tasks(types, 0.3, seed=s) != chosen for s in range(1, 5))


def test_split_writes_each_task_to_one_side(rollouts: Path, tmp_path: Path) -> None:
    report = split_paths([str(rollouts)], tmp_path / "out", eval_fraction=0.34, seed=1)
    train, evals = tmp_path / "out/train.jsonl", tmp_path / "out/eval.jsonl"
    # the exact draw of seed 1: math 6 tasks -> 2 eval, code 3 -> 1, the lone chat task trains
    assert sorted(set(tasks_of(evals))) == ["c1", "m2", "m4"]
    assert sorted(set(tasks_of(train))) == ["c2", "c3", "m1", "m3", "m5", "m6", "solo"]
    assert report.types == {"math": (6, 2), "code": (3, 1), "chat": (1, 0)}
    assert (report.train.rollouts, report.eval.rollouts, report.read.lines) == (11, 5, 18)
    assert report.balanced and sum(report.read.quarantined.values()) == 2
    # original lines, byte for byte, in input order within each side
    source = rollouts.read_bytes().splitlines(keepends=True)
    for path in (train, evals):
        kept = path.read_bytes().splitlines(keepends=True)
        assert kept == [raw for raw in source if raw in kept]
    assert sorted(train.read_bytes().splitlines() + evals.read_bytes().splitlines()) == sorted(
        raw for raw in rollouts.read_bytes().splitlines() if raw.startswith(b'{"task_id"')
    )


def test_split_cli_report_and_refusals(rollouts: Path, tmp_path: Path) -> None:
    out, report = tmp_path / "out", tmp_path / "report.json"
    args = ["split", str(rollouts), "--eval-fraction", "0.34", "--seed", "1", "-o", str(out)]
    result = rollcraft(*args, "--report", str(report))
    assert result.returncode == 0, result.stderr
    assert "train: 7 tasks, 11 rollouts" in result.stdout and "eval: 3 tasks, 5 rollouts" in result.stdout
    data = json.loads(report.read_text())
    assert data["eval_task_keys"] == ["task_id:c1", "task_id:m2", "task_id:m4"]
    assert (data["lines"], data["train"]["rollouts"], data["eval"]["rollouts"]) == (18, 11, 5)
    assert sum(data["quarantined"].values()) == 2 and data["balanced"] is True
    assert data["task_types"]["math"] == {
        "tasks": 6,
        "eval_tasks": 2,
        "train_rollouts": 8,
        "eval_rollouts": 4,
    }
    before = (out / "eval.jsonl").read_bytes()
    again = rollcraft(*args)  # the files exist: refused, exit 2, one line
    assert again.returncode == 2 and "exists; refusing to overwrite" in again.stderr
    assert "Traceback" not in again.stderr
    forced = rollcraft(*args[:-4], "--seed", "2", "-o", str(out), "--force")
    assert forced.returncode == 0 and (out / "eval.jsonl").read_bytes() != before
    into_input = rollcraft(
        "split", str(out / "train.jsonl"), "--eval-fraction", "0.5", "-o", str(out), "--force"
    )
    assert into_input.returncode == 2 and "is also an input" in into_input.stderr
    bad = rollcraft("split", str(rollouts), "--eval-fraction", "1", "-o", str(tmp_path / "x"))
    assert bad.returncode == 2 and not (tmp_path / "x").exists()


def test_split_of_no_rollouts_writes_nothing(tmp_path: Path) -> None:
    empty = tmp_path / "empty.jsonl"
    empty.write_text("not json\n")
    result = rollcraft("split", str(empty), "--eval-fraction", "0.5", "-o", str(tmp_path / "out"))
    assert result.returncode == 2 and not (tmp_path / "out" / "train.jsonl").exists()


def test_split_refuses_a_file_as_folder(rollouts: Path, tmp_path: Path) -> None:
    with pytest.raises(OutputError, match="is not a folder"):
        split_paths([str(rollouts)], rollouts, eval_fraction=0.5)


def test_split_of_real_rollouts_keeps_every_line(real_dir: Path, tmp_path: Path) -> None:
    report = split_paths([str(real_dir)], tmp_path, eval_fraction=0.2, seed=0)
    assert report.balanced and report.eval.tasks > 0
    train = {r.task_key for r in read_rollouts([str(tmp_path / "train.jsonl")]) if hasattr(r, "task_key")}
    evals = {r.task_key for r in read_rollouts([str(tmp_path / "eval.jsonl")]) if hasattr(r, "task_key")}
    assert not train & evals and len(evals) == report.eval.tasks
