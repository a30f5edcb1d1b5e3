"""``sft --order easy-to-hard``: rows by their task's pass rate, highest first, ties as read."""

from __future__ import annotations

import io
import json
import subprocess
import sys
from pathlib import Path
from typing import Any

from rollcraft.formats._order import UNRATED, copy_ordered, rate_of, reorder_file
from tests.read.test_gym_records import _message, _record, _write

# (task, rollout, reward, text), in input order: task 1 always passes, task 0 half the time, task 2 never
_ROLLOUTS = [(0, 0, 1.0, "a0"), (1, 0, 1.0, "b0"), (2, 0, 0.0, "c0"), (0, 1, 0.0, "a1"), (1, 1, 1.0, "b1")]
_ROLLOUTS += [(2, 1, 0.0, "c1")]


def _records() -> list[dict[str, Any]]:
    return [
        _record([_message(text)], reward, _ng_task_index=task, _ng_rollout_index=rollout)
        for task, rollout, reward, text in _ROLLOUTS
    ]


def _sft(tmp_path: Path, *extra: str) -> list[str]:
    path = _write(tmp_path / "r.jsonl", _records())
    out = tmp_path / "sft.jsonl"
    args = ["sft", str(path), "-o", str(out), "--include-failures", *extra]
    done = subprocess.run([sys.executable, "-m", "rollcraft.cli", *args], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    return [json.loads(line)["messages"][-1]["content"] for line in out.open()]


def test_rows_go_from_the_easiest_task_to_the_hardest(tmp_path: Path) -> None:
    assert _sft(tmp_path) == ["a0", "b0", "c0", "a1", "b1", "c1"]  # as read
    assert _sft(tmp_path, "--order", "easy-to-hard") == ["b0", "b1", "a0", "a1", "c0", "c1"]
    openai = _sft(tmp_path, "--order", "easy-to-hard", "--format", "openai")
    assert openai == ["b0", "b1", "a0", "a1", "c0", "c1"]


def test_a_bad_order_or_stdin_is_one_error_line(tmp_path: Path) -> None:
    path = _write(tmp_path / "r.jsonl", _records())
    for args in (
        ["sft", str(path), "-o", str(tmp_path / "o.jsonl"), "--order", "hard"],
        ["sft", "-", "-o", str(tmp_path / "o.jsonl"), "--order", "easy-to-hard"],
    ):
        done = subprocess.run([sys.executable, "-m", "rollcraft.cli", *args], capture_output=True, text=True)
        assert done.returncode == 2 and "--order" in done.stderr and "Traceback" not in done.stderr


def test_lines_are_copied_by_rate_ties_in_order(tmp_path: Path) -> None:
    source = io.BytesIO(b"a\nbb\nccc\ndddd\n")
    sink = io.BytesIO()
    copy_ordered(source, [0.5, 1.0, 0.5, UNRATED], sink)
    assert sink.getvalue() == b"bb\na\nccc\ndddd\n"
    path = tmp_path / "rows.jsonl"
    path.write_bytes(b"x\ny\nz")  # a last line without its newline is a line too
    reorder_file(path, [0.0, 0.0, 1.0])
    assert path.read_bytes() == b"z\nx\ny\n"
    assert rate_of("task#1/subagent:ab12", {"task#1": 0.25}) == 0.25
    assert rate_of("unknown", {}) == UNRATED


def _pipeline(tmp_path: Path, sft: str) -> Path:
    from rollcraft.pipeline import run_pipeline

    path = tmp_path / "r.jsonl"
    if not path.exists():
        _write(path, _records())
    config = tmp_path / "pipeline.yaml"
    config.write_text(f"inputs: [{path}]\noutput_dir: {tmp_path / 'out'}\nsft: {sft}\n")
    return run_pipeline(config).folder


def test_a_pipeline_orders_its_rows_and_their_ids(tmp_path: Path) -> None:
    plain = _pipeline(tmp_path, "{success_only: false}")
    ordered = _pipeline(tmp_path, "{success_only: false, order: easy-to-hard}")
    texts = [json.loads(line)["messages"][-1]["content"] for line in (ordered / "sft.jsonl").open()]
    assert texts == ["b0", "b1", "a0", "a1", "c0", "c1"]
    ids = [json.loads(line)["rollout_id"] for line in (ordered / "sft.jsonl").open()]
    assert (ordered / "sft_ids.txt").read_text().split() == ids
    manifest = json.loads((ordered / "manifest.json").read_text())
    assert manifest["config"]["sft"]["order"] == "easy-to-hard"
    entry = next(e for e in manifest["outputs"] if e["path"] == "sft.jsonl")
    from rollcraft._digest import sha256_file

    assert entry["sha256"] == sha256_file(ordered / "sft.jsonl")  # hashed after the reorder
    assert "order" not in json.loads((plain / "manifest.json").read_text())["config"]["sft"]
    tokens = _pipeline(tmp_path, "{success_only: false, format: tokens}")
    assert (tokens / "sft.jsonl").read_text() == ""  # these records carry no token ids
    counts = json.loads((tokens / "manifest.json").read_text())["counts"]
    assert counts["sft"]["skipped"] == {"no_token_ids": 6}


def test_dpo_pairs_go_from_the_easiest_task_to_the_hardest(tmp_path: Path) -> None:
    """DPO rows by their task's pass rate: the same pairs as read, in rate order (real files)."""
    from rollcraft.curriculum import task_pass_rates
    from tests.conftest import REAL_DIR

    plain, ordered = tmp_path / "plain.jsonl", tmp_path / "ordered.jsonl"
    common = [str(REAL_DIR), "--pairing", "all", "--max-turns", "400"]
    for out, extra in ((plain, []), (ordered, ["--order", "easy-to-hard"])):
        done = subprocess.run(
            [sys.executable, "-m", "rollcraft.cli", "dpo", *common, "-o", str(out), *extra],
            capture_output=True,
            text=True,
        )
        assert done.returncode == 0, done.stderr
    rows = [json.loads(line) for line in ordered.read_text().splitlines()]
    assert sorted(plain.read_text().splitlines()) == sorted(ordered.read_text().splitlines())
    rates = task_pass_rates([str(REAL_DIR)])
    seen = [rate_of(row["task_key"], rates) for row in rows]
    assert len(set(seen)) > 1 and seen == sorted(seen, reverse=True)
