"""``rollcraft inspect`` on the examples and the real files, as a user runs it."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from tests._expected_real import EXPECTED


def rollcraft(*args: str, stdin: bytes | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "rollcraft.cli", *args],
        capture_output=True,
        text=True,
        input=None if stdin is None else stdin.decode(),
    )


def test_inspect_json_on_real_files(real_dir: Path) -> None:
    result = rollcraft("inspect", "--json", str(real_dir))
    assert result.returncode == 0, result.stderr
    data = json.loads(result.stdout)
    assert data["lines"] == sum(v[0] for v in EXPECTED.values())
    assert data["rollouts"] == sum(v[1] for v in EXPECTED.values())
    assert data["lines"] == data["rollouts"] + sum(data["quarantined"].values())
    # No two files share a task; within a file, a task is one prompt and one _ng_task_index.
    assert data["tasks"] == sum(v[3] for v in EXPECTED.values()) == 370
    assert {Path(name).name: f["tasks"] for name, f in data["files"].items()} == {
        name: v[3] for name, v in EXPECTED.items()
    }
    assert len(data["files"]) == len(EXPECTED)


def test_inspect_tables_on_examples(examples_dir: Path) -> None:
    result = rollcraft("inspect", str(examples_dir))
    assert result.returncode == 0, result.stderr
    assert "Read 78 lines: 72 rollouts + 6 quarantined (no_result 6)" in result.stdout


def test_inspect_missing_file_is_one_clear_line(tmp_path: Path) -> None:
    result = rollcraft("inspect", str(tmp_path / "nope.jsonl"))
    assert result.returncode == 2
    assert "nope.jsonl: no such file or folder" in result.stderr and "Traceback" not in result.stderr


def test_inspect_bad_option_is_a_usage_error(examples_dir: Path) -> None:
    result = rollcraft("inspect", "--shape", "weird", str(examples_dir))
    assert result.returncode == 2 and "--shape" in result.stderr and "Traceback" not in result.stderr


def test_inspect_stdin(examples_dir: Path) -> None:
    data = (examples_dir / "chat_agents_rollouts.jsonl").read_bytes()
    result = rollcraft("inspect", "--json", "-", stdin=data)
    assert json.loads(result.stdout)["rollouts"] == 33
