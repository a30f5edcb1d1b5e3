"""``rollcraft filter / sample / apply-review / balance`` as a user runs them."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import orjson

from tests.conftest import real_files


def rollcraft(*args: str, stdin: bytes | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "rollcraft.cli", *args],
        capture_output=True,
        text=True,
        input=None if stdin is None else stdin.decode(),
    )


def all_lines(paths: list[Path]) -> list[bytes]:
    return [line for path in paths for line in path.read_bytes().splitlines()]


def test_filter_real_files_every_line_accounted_for(real_dir: Path, tmp_path: Path) -> None:
    out, rejects, report = tmp_path / "kept.jsonl", tmp_path / "rej.jsonl", tmp_path / "report.json"
    result = rollcraft(
        "filter",
        str(real_dir),
        "-o",
        str(out),
        "--rejects",
        str(rejects),
        "--report",
        str(report),
        "--dedupe",
    )
    assert result.returncode == 0, result.stderr
    data = json.loads(report.read_text())
    kept = out.read_bytes().splitlines()
    dropped = [json.loads(line) for line in rejects.read_bytes().splitlines()]
    lines = all_lines(real_files())
    assert len(kept) + len(dropped) + sum(data["quarantined"].values()) == len(lines) == data["lines"]
    # kept lines are input lines, byte for byte, in input order
    positions = {line: i for i, line in enumerate(lines)}
    assert [positions[line] for line in kept] == sorted(positions[line] for line in kept)
    # every reject wraps an original line with the filter that dropped it
    assert {tuple(d) for d in dropped} == {("dropped_by", "reason", "rollout")}
    originals = {orjson.dumps(json.loads(line)) for line in lines}
    assert all(orjson.dumps(d["rollout"]) in originals for d in dropped)
    assert {d["dropped_by"] for d in dropped} == {"drop_flagged", "dedupe"}
    assert f"Kept {len(kept)}/{data['rollouts']} rollouts (" in result.stdout
    assert "Read 485 lines" in result.stdout


def test_filter_task_success_rate_across_two_files_and_stdin(tmp_path: Path) -> None:
    def row(task: str, reward: float, n: int) -> bytes:
        rec = {
            "responses_create_params": {"input": task},
            "response": {"output": [{"type": "message", "role": "assistant", "content": f"try {n}"}]},
            "reward": reward,
        }
        return orjson.dumps(rec) + b"\n"

    (tmp_path / "a.jsonl").write_bytes(row("t1", 1, 1) + row("t2", 0, 2) + row("t3", 1, 3))
    (tmp_path / "b.jsonl").write_bytes(row("t2", 0, 4) + row("t1", 0, 5) + row("t2", 1, 6) + b"not json\n")
    out = tmp_path / "out.jsonl"
    result = rollcraft(
        "filter",
        str(tmp_path / "a.jsonl"),
        str(tmp_path / "b.jsonl"),
        "-o",
        str(out),
        "--min-task-success-rate",
        "0.5",
    )
    assert result.returncode == 0, result.stderr
    # t1: 1/2 kept; t2: 1/3 dropped; t3: 1/1 kept
    assert out.read_bytes() == row("t1", 1, 1) + row("t3", 1, 3) + row("t1", 0, 5)
    assert "Kept 3/6 rollouts (50.0%)" in result.stdout and "not_json 1" in result.stdout
    piped = rollcraft(
        "filter",
        "-",
        "-o",
        "-",
        "--min-task-success-rate",
        "0.5",
        stdin=(tmp_path / "a.jsonl").read_bytes() + (tmp_path / "b.jsonl").read_bytes(),
    )
    assert piped.returncode == 0, piped.stderr
    assert piped.stdout.encode() == out.read_bytes()


def test_dry_run_writes_nothing(examples_dir: Path, tmp_path: Path) -> None:
    out, rejects = tmp_path / "kept.jsonl", tmp_path / "rej.jsonl"
    result = rollcraft(
        "filter",
        str(examples_dir),
        "-o",
        str(out),
        "--rejects",
        str(rejects),
        "--dry-run",
        "--min-reward",
        "0.5",
    )
    assert result.returncode == 0, result.stderr
    assert "Kept " in result.stdout and "min_reward" in result.stdout
    assert list(tmp_path.iterdir()) == []


def test_config_file_and_flag_override(examples_dir: Path, tmp_path: Path) -> None:
    config = tmp_path / "filters.yaml"
    config.write_text("min_reward: 0.99\ndrop_flagged: []\n")
    report = tmp_path / "r.json"
    result = rollcraft(
        "filter",
        str(examples_dir),
        "--config",
        str(config),
        "--min-reward",
        "0",
        "--dry-run",
        "--report",
        str(report),
    )
    assert result.returncode == 0, result.stderr
    data = json.loads(report.read_text())
    assert data["kept"] == data["rollouts"] > 0 and [s["filter"] for s in data["steps"]] == ["min_reward"]


def test_a_broken_config_is_one_line_naming_key_and_line(examples_dir: Path, tmp_path: Path) -> None:
    config = tmp_path / "filters.yaml"
    config.write_text("dedupe: true\nmin_turns: lots\n")
    result = rollcraft("filter", str(examples_dir), "--config", str(config), "--dry-run")
    assert result.returncode == 2
    assert "min_turns (line 2)" in result.stderr and "Traceback" not in result.stderr


def test_refuses_to_overwrite_an_input(tmp_path: Path, examples_dir: Path) -> None:
    path = tmp_path / "in.jsonl"
    path.write_bytes((examples_dir / "chat_agents_rollouts.jsonl").read_bytes())
    result = rollcraft("filter", str(path), "-o", str(path))
    assert result.returncode == 2 and "also an input" in result.stderr


def test_sample_is_reproducible(real_dir: Path, tmp_path: Path) -> None:
    a, b, c = tmp_path / "a.jsonl", tmp_path / "b.jsonl", tmp_path / "c.jsonl"
    assert rollcraft("sample", str(real_dir), "-o", str(a), "--seed", "1").returncode == 0
    assert rollcraft("sample", str(real_dir), "-o", str(b), "--seed", "1").returncode == 0
    result = rollcraft(
        "sample", str(real_dir), "-o", str(c), "--seed", "2", "--edges", "0.5", "--sizes", "5,5"
    )
    assert result.returncode == 0, result.stderr
    assert a.read_bytes() == b.read_bytes() != c.read_bytes()
    inputs = set(all_lines(real_files()))
    assert set(a.read_bytes().splitlines()) <= inputs and len(c.read_bytes().splitlines()) == 10


def test_apply_review_and_balance(examples_dir: Path, tmp_path: Path) -> None:
    sample = tmp_path / "review.jsonl"
    assert rollcraft("sample", str(examples_dir), "-o", str(sample)).returncode == 0
    from rollcraft import Rollout, read_rollouts

    picked = [r for r in read_rollouts([str(sample)]) if isinstance(r, Rollout)]
    n_rollouts = sum(isinstance(r, Rollout) for r in read_rollouts([str(examples_dir)]))
    decisions = tmp_path / "d.jsonl"
    rows = [
        {"rollout_id": picked[0].rollout_id, "decision": "reject", "note": "loops"},
        {"rollout_id": "ffffffffffffffff", "decision": "accept"},
    ]
    decisions.write_bytes(b"".join(orjson.dumps(r) + b"\n" for r in rows))
    out, rej = tmp_path / "out.jsonl", tmp_path / "rej.jsonl"
    result = rollcraft(
        "apply-review",
        str(examples_dir),
        "--decisions",
        str(decisions),
        "-o",
        str(out),
        "--rejects",
        str(rej),
    )
    assert result.returncode == 0, result.stderr
    assert "1 of 2 decisions matched no rollout" in result.stdout
    assert json.loads(rej.read_bytes())["reason"] == "loops"
    assert len(out.read_bytes().splitlines()) == n_rollouts - 1
    balanced = tmp_path / "bal.jsonl"
    result = rollcraft(
        "balance", str(examples_dir), "-o", str(balanced), "--max-per-category", "2", "--by", "agent"
    )
    assert result.returncode == 0, result.stderr
    assert "before" in result.stdout and "Kept " in result.stdout
