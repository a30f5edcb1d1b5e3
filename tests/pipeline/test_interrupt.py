"""An interrupted run (SIGTERM, SIGINT, SIGKILL) never leaves a partial output file.

The run is a real ``rollcraft redact`` fed through stdin: the test writes a few MB of rollouts
(enough that the output's temporary file already holds data), keeps stdin open so the run is
surely mid-way, then sends the signal.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import orjson
import pytest

LINE = orjson.dumps(
    {
        "responses_create_params": {"input": [{"role": "user", "content": "mail bob@corp.io " + "x" * 2000}]},
        "response": {"output": [{"type": "message", "role": "assistant", "content": "ok " + "y" * 2000}]},
        "reward": 1.0,
    }
)


def _start(target: Path) -> subprocess.Popen[bytes]:
    command = [sys.executable, "-m", "rollcraft.cli", "redact", "-", "-o", str(target)]
    process = subprocess.Popen(command, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    assert process.stdin is not None
    process.stdin.write((LINE + b"\n") * 1500)  # ~6 MB: the 1 MB write buffer has been flushed
    process.stdin.flush()
    return process


def _temps(target: Path) -> list[Path]:
    return sorted(target.parent.glob(f".{target.name}.*.tmp"))


def _wait_for_temp_with_data(target: Path, process: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        if any(t.stat().st_size > 0 for t in _temps(target) if t.exists()):
            return
        assert process.poll() is None, process.stderr.read() if process.stderr else ""
        time.sleep(0.02)
    raise AssertionError("the run never started writing")


@pytest.mark.parametrize(("signum", "status"), [(signal.SIGTERM, 143), (signal.SIGINT, 130)])
def test_sigterm_and_sigint_leave_no_output_and_no_temp(tmp_path: Path, signum: int, status: int) -> None:
    target = tmp_path / "out.jsonl"
    process = _start(target)
    _wait_for_temp_with_data(target, process)
    process.send_signal(signum)
    _, stderr = process.communicate(timeout=20)
    assert process.returncode == status, stderr
    assert not target.exists()
    assert _temps(target) == []
    assert b"Traceback" not in stderr


def test_sigkill_leaves_at_most_a_hidden_temp_never_a_partial_target(tmp_path: Path) -> None:
    target = tmp_path / "out.jsonl"
    process = _start(target)
    _wait_for_temp_with_data(target, process)
    process.kill()
    process.communicate(timeout=20)
    assert process.returncode == -signal.SIGKILL
    assert not target.exists()
    assert [p.name for p in tmp_path.iterdir()] == [t.name for t in _temps(target)]


def test_an_interrupted_rewrite_keeps_the_old_complete_file(tmp_path: Path) -> None:
    target = tmp_path / "out.jsonl"
    target.write_bytes(LINE + b"\n")
    process = _start(target)
    _wait_for_temp_with_data(target, process)
    process.terminate()
    process.communicate(timeout=20)
    assert target.read_bytes() == LINE + b"\n"
    assert _temps(target) == []


def test_a_finished_run_writes_the_whole_file(tmp_path: Path) -> None:
    target = tmp_path / "out.jsonl"
    process = _start(target)
    _, stderr = process.communicate(timeout=60)  # closes stdin: the run ends normally
    assert process.returncode == 0, stderr
    lines = target.read_bytes().splitlines()
    assert len(lines) == 1500 and b"bob@corp.io" not in lines[0]
    assert _temps(target) == []


def test_the_next_write_in_the_folder_removes_a_killed_runs_temp(tmp_path: Path) -> None:
    """SIGKILL cannot be caught: the temporary it leaves is swept by the next rollcraft write there,
    once its process is gone. Temporaries of live processes, and names rollcraft did not make,
    are left alone."""
    from rollcraft._io import HOST

    target = tmp_path / "out.jsonl"
    process = _start(target)
    _wait_for_temp_with_data(target, process)
    process.kill()
    process.communicate(timeout=20)
    (left,) = _temps(target)
    live = tmp_path / f".other.jsonl.{HOST}-{os.getpid()}.abc123.tmp"  # this process: still writing
    foreign = tmp_path / ".notes.jsonl.tmp"  # not rollcraft's name
    for path in (live, foreign):
        path.write_bytes(b"keep\n")
    source = tmp_path / "in.jsonl"
    source.write_bytes(LINE + b"\n")
    result = subprocess.run(
        [sys.executable, "-m", "rollcraft.cli", "redact", str(source), "-o", str(tmp_path / "next.jsonl")],
        capture_output=True,
    )
    assert result.returncode == 0, result.stderr
    assert not left.exists()
    assert live.read_bytes() == foreign.read_bytes() == b"keep\n"
