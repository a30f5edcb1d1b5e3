"""``rollcraft inspect`` on the examples and the real files, as a user runs it."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from rollcraft import InputError, ReadReport, read_rollouts
from rollcraft.read._inspect import require_rollouts
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


def _report_of(paths: list[Path]) -> ReadReport:
    report = ReadReport()
    for _ in read_rollouts([str(p) for p in paths], report=report):
        pass
    return report


def test_no_rollouts_names_each_kind_of_file_once(tmp_path: Path) -> None:
    sft = [tmp_path / f"sft{i}.jsonl" for i in range(5)]
    for path in sft:
        path.write_text('{"messages": []}\n')
    broken = tmp_path / "broken.jsonl"
    broken.write_text("{not json\n")
    with pytest.raises(InputError) as caught:
        require_rollouts(_report_of([*sft, broken]))
    message = str(caught.value)
    assert message.startswith(f"no rollouts in the input: {sft[0]}, {sft[1]}, {sft[2]} and 2 more files look")
    assert "look like SFT rows (messages, no reward); " in message
    assert f"{broken} looks like text that is not JSON (line 1: " in message
    assert message.endswith("(Read 6 lines: 0 rollouts + 6 quarantined (no_result 5, not_json 1))")


def test_one_rollout_anywhere_is_enough(tmp_path: Path, examples_dir: Path) -> None:
    sft = tmp_path / "sft.jsonl"
    sft.write_text('{"messages": []}\n')
    require_rollouts(_report_of([sft, examples_dir / "chat_agents_rollouts.jsonl"]))


def test_inspect_prints_its_tables_then_names_a_wrong_file(tmp_path: Path) -> None:
    path = tmp_path / "pairs.jsonl"
    path.write_text('{"prompt": "q", "chosen": "a", "rejected": "b"}\n' * 7)
    result = rollcraft("inspect", str(path))
    assert result.returncode == 2 and "Rollouts per file" in result.stdout
    assert f"{path} looks like DPO pairs (prompt, chosen, rejected)" in result.stderr


def test_no_rollouts_says_when_it_judged_from_the_first_lines_only(tmp_path: Path) -> None:
    path = tmp_path / "inputs.jsonl"
    path.write_text('{"responses_create_params": {"input": "q"}}\n' * 25)
    with pytest.raises(InputError, match=r"input rows .*\(judged from 20 of its 25 lines\)"):
        require_rollouts(_report_of([path]))
