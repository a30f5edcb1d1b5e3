"""Outputs, as a user meets them: ``-o -`` carries only data, no command writes over its own input,
FIFOs and devices are written as such, folders are refused, files get the umask's permissions,
and a broken config or a ``nan`` threshold is one line, exit 2. Every test runs the real CLI."""

from __future__ import annotations

import json
import os
import shutil
import stat
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from tests.conftest import EXAMPLES_DIR

ROLLOUTS = EXAMPLES_DIR / "tool_agents_rollouts.jsonl"


def _cli(
    *args: str | Path, cwd: Path | None = None, umask: int | None = None
) -> subprocess.CompletedProcess[str]:
    def set_umask() -> None:
        if umask is not None:
            os.umask(umask)

    return subprocess.run(
        [sys.executable, "-m", "rollcraft.cli", *map(str, args)],
        capture_output=True,
        text=True,
        cwd=cwd,
        preexec_fn=set_umask,
    )


def _one_line_error(result: subprocess.CompletedProcess[str], *needles: str) -> None:
    assert result.returncode == 2, result.stderr
    assert "Traceback" not in result.stderr
    for needle in needles:
        assert needle in result.stderr, result.stderr


@pytest.fixture
def rollouts(tmp_path: Path) -> Path:
    target = tmp_path / "in" / "rollouts.jsonl"
    target.parent.mkdir()
    shutil.copy(ROLLOUTS, target)
    return target


@pytest.fixture
def decisions(tmp_path: Path) -> Path:
    path = tmp_path / "decisions.jsonl"
    path.write_text('{"rollout_id": "0000000000000000", "decision": "reject"}\n')
    return path


def _commands(decisions: Path) -> dict[str, list[str]]:
    """Each command that writes rollouts or rows to ``-o``, with what it needs besides its input."""
    return {
        "filter": ["filter"],
        "sft": ["sft"],
        "dpo": ["dpo", "--pairing", "all"],
        "redact": ["redact"],
        "sample": ["sample"],
        "balance": ["balance", "--max-per-category", "3"],
        "apply-review": ["apply-review", "--decisions", str(decisions)],
    }


COMMANDS = ["filter", "sft", "dpo", "redact", "sample", "balance", "apply-review"]

# ------------------------------------------------------------------------------------------------
# -o -: standard output is the data, every report is on standard error


@pytest.mark.parametrize("command", COMMANDS)
def test_dash_output_carries_only_data(rollouts: Path, decisions: Path, command: str) -> None:
    result = _cli(*_commands(decisions)[command], rollouts, "-o", "-")
    assert result.returncode == 0, result.stderr
    rows = [json.loads(line) for line in result.stdout.splitlines()]
    assert rows and all(isinstance(row, dict) for row in rows)
    assert "Read " in result.stderr  # the reports are still there, on stderr


#: A regression run as root would replace the real /dev/null or /dev/stdout by a regular file
#: (as rollcraft did before it wrote devices in place): those cases run only unprivileged.
UNPRIVILEGED = pytest.mark.skipif(
    os.geteuid() == 0, reason="a regression would replace a root-owned /dev entry"
)


@pytest.mark.parametrize(
    "spelling",
    [["-o", "-"], ["-o-"], ["--output=-"], pytest.param(["-o", "/dev/stdout"], marks=UNPRIVILEGED)],
)
def test_every_spelling_of_stdout_moves_the_reports(rollouts: Path, spelling: list[str]) -> None:
    result = _cli("sft", rollouts, *spelling)
    assert result.returncode == 0, result.stderr
    assert [json.loads(line)["messages"] for line in result.stdout.splitlines()]
    assert "Wrote " in result.stderr


def test_a_report_on_stdout_is_only_json(rollouts: Path, tmp_path: Path) -> None:
    result = _cli("sft", rollouts, "-o", tmp_path / "sft.jsonl", "--report", "-")
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["sft"]["rows"] > 0
    assert "Wrote " in result.stderr


def test_reports_stay_on_stdout_when_the_data_goes_to_a_file(rollouts: Path, tmp_path: Path) -> None:
    result = _cli("sft", rollouts, "-o", tmp_path / "sft.jsonl")
    assert result.returncode == 0 and "Wrote " in result.stdout


# ------------------------------------------------------------------------------------------------
# no command writes over one of its inputs


@pytest.mark.parametrize(
    ("command", "given"),
    [(command, "file") for command in COMMANDS]
    + [("sft", "folder"), ("dpo", "glob"), ("redact", "hard link"), ("filter", "symlink")],
)
def test_no_command_writes_over_its_input(
    rollouts: Path, decisions: Path, tmp_path: Path, command: str, given: str
) -> None:
    before = rollouts.read_bytes()
    target = rollouts
    source: Path | str = rollouts
    if given == "folder":
        source = rollouts.parent
    elif given == "glob":
        source = str(rollouts.parent / "*.jsonl")
    elif given == "hard link":
        target = tmp_path / "linked.jsonl"
        os.link(rollouts, target)
    elif given == "symlink":
        source = tmp_path / "pointer.jsonl"
        source.symlink_to(rollouts)
    result = _cli(*_commands(decisions)[command], source, "-o", target)
    _one_line_error(result, f"{target}: is also an input; refusing to overwrite it")
    assert rollouts.read_bytes() == before


@pytest.mark.parametrize("option", ["--report", "--rejects"])
def test_a_report_or_rejects_file_is_no_input_either(rollouts: Path, tmp_path: Path, option: str) -> None:
    before = rollouts.read_bytes()
    result = _cli("filter", rollouts, "-o", tmp_path / "kept.jsonl", option, rollouts)
    _one_line_error(result, "is also an input")
    assert rollouts.read_bytes() == before and not (tmp_path / "kept.jsonl").exists()


def test_the_decisions_file_is_an_input_of_apply_review(rollouts: Path, decisions: Path) -> None:
    before = decisions.read_bytes()
    result = _cli("apply-review", rollouts, "--decisions", decisions, "-o", decisions)
    _one_line_error(result, "is also an input")
    assert decisions.read_bytes() == before


# ------------------------------------------------------------------------------------------------
# FIFOs, devices and folders


def test_a_fifo_is_written_as_a_fifo(rollouts: Path, tmp_path: Path) -> None:
    fifo = tmp_path / "rows.fifo"
    os.mkfifo(fifo)
    received: list[bytes] = []
    reader = threading.Thread(target=lambda: received.append(fifo.read_bytes()), daemon=True)
    reader.start()
    result = _cli("sft", rollouts, "-o", fifo)
    reader.join(timeout=20)
    assert result.returncode == 0, result.stderr
    assert stat.S_ISFIFO(os.stat(fifo).st_mode)
    rows = received[0].splitlines()
    assert rows and all(json.loads(row)["messages"] for row in rows)
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []


@UNPRIVILEGED
def test_dev_null_stays_a_device(rollouts: Path) -> None:
    before = os.stat("/dev/null")
    assert stat.S_ISCHR(before.st_mode)
    result = _cli("sft", rollouts, "-o", "/dev/null")
    assert result.returncode == 0, result.stderr
    after = os.stat("/dev/null")
    assert stat.S_ISCHR(after.st_mode) and after.st_rdev == before.st_rdev


def test_a_symlink_output_is_written_through(rollouts: Path, tmp_path: Path) -> None:
    real = tmp_path / "real.jsonl"
    real.write_text("old\n")
    link = tmp_path / "link.jsonl"
    link.symlink_to(real)
    assert _cli("sft", rollouts, "-o", link).returncode == 0
    assert link.is_symlink() and real.read_text() != "old\n"


@pytest.mark.parametrize("option", ["-o", "--report"])
def test_a_folder_given_as_an_output_is_one_line(rollouts: Path, tmp_path: Path, option: str) -> None:
    folder = tmp_path / "somewhere"
    folder.mkdir()
    args = (
        ["-o", str(folder)]
        if option == "-o"
        else ["-o", str(tmp_path / "sft.jsonl"), "--report", str(folder)]
    )
    result = _cli("sft", rollouts, *args)
    _one_line_error(result, f"{folder}: is a folder")
    assert list(folder.iterdir()) == [] and not (tmp_path / "sft.jsonl").exists()


# ------------------------------------------------------------------------------------------------
# permissions


@pytest.mark.parametrize(("umask", "mode"), [(0o022, 0o644), (0o027, 0o640), (0o002, 0o664)])
def test_outputs_get_the_umask_permissions(rollouts: Path, tmp_path: Path, umask: int, mode: int) -> None:
    target = tmp_path / "sft.jsonl"
    report = tmp_path / "report.json"
    result = _cli("sft", rollouts, "-o", target, "--report", report, umask=umask)
    assert result.returncode == 0, result.stderr
    assert stat.S_IMODE(target.stat().st_mode) == mode
    assert stat.S_IMODE(report.stat().st_mode) == mode


# ------------------------------------------------------------------------------------------------
# configs and thresholds


def test_a_config_that_is_not_utf8_is_one_line(tmp_path: Path) -> None:
    config = tmp_path / "bad.yaml"
    config.write_bytes(b"inputs: [x]\n# caf\xe9 in latin-1\nsft: {}\n")
    result = _cli("run", config)
    _one_line_error(result, "bad.yaml: not UTF-8 text (byte 0xe9 on line 2)")


@pytest.mark.parametrize(
    "args",
    [
        ["filter", "--min-reward", "nan"],
        ["filter", "--max-reward", "NaN"],
        ["filter", "--min-task-success-rate", "nan"],
        ["sft", "--min-reward", "nan"],
        ["sft", "--success-threshold", "nan"],
        ["dpo", "--min-margin", "nan"],
    ],
)
def test_a_nan_threshold_is_a_usage_error(rollouts: Path, tmp_path: Path, args: list[str]) -> None:
    result = _cli(*args, rollouts, "-o", tmp_path / "out.jsonl")
    _one_line_error(result, "must be a finite number, not nan")
    assert not (tmp_path / "out.jsonl").exists()


@pytest.mark.parametrize(
    ("body", "key"),
    [
        ("filters: {min_reward: .nan}\nsft: {}\n", "filters.min_reward (line 3)"),
        ("read: {success_threshold: .nan}\nsft: {}\n", "read.success_threshold (line 3)"),
        ("dpo: {min_margin: .nan}\n", "dpo.min_margin (line 3)"),
    ],
)
def test_a_nan_threshold_in_a_pipeline_config_is_one_line(tmp_path: Path, body: str, key: str) -> None:
    config = tmp_path / "pipeline.yaml"
    config.write_text(f"inputs: [{EXAMPLES_DIR}]\noutput_dir: out\n{body}")
    result = _cli("run", config)
    _one_line_error(result, key, "finite number")
    assert not (tmp_path / "out").exists()


def test_a_nan_threshold_in_a_filter_config_is_one_line(rollouts: Path, tmp_path: Path) -> None:
    config = tmp_path / "filters.yaml"
    config.write_text("min_reward: .nan\n")
    result = _cli("filter", rollouts, "--config", config, "-o", tmp_path / "kept.jsonl")
    _one_line_error(result, "min_reward (line 1)", "finite number")


@pytest.mark.parametrize("option", ["--json", "--html"])
def test_validate_and_evaluate_keep_their_inputs(rollouts: Path, tmp_path: Path, option: str) -> None:
    rows = tmp_path / "sft.jsonl"
    assert _cli("sft", rollouts, "-o", rows).returncode == 0
    before = rows.read_bytes(), rollouts.read_bytes()
    _one_line_error(_cli("validate", rows, option, rows), f"{rows}: is also an input")
    _one_line_error(_cli("evaluate", rollouts, rollouts, option, rollouts), f"{rollouts}: is also an input")
    assert (rows.read_bytes(), rollouts.read_bytes()) == before


def test_validate_json_on_stdout_is_only_json(rollouts: Path, tmp_path: Path) -> None:
    rows = tmp_path / "sft.jsonl"
    assert _cli("sft", rollouts, "-o", rows).returncode == 0
    result = _cli("validate", rows, "--json", "-")
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["rows"] > 0
    assert " rows, " in result.stderr  # the verdict line, on stderr


def test_two_outputs_naming_one_file_are_refused(rollouts: Path, tmp_path: Path) -> None:
    """``-o X --rejects X`` would keep only the last written of the two: refused, nothing written."""
    same = tmp_path / "same.jsonl"
    same.write_text("keep me\n")
    result = _cli("filter", rollouts, "-o", same, "--rejects", same, "--min-reward", "0.5")
    _one_line_error(result, "given as two of the outputs")
    assert same.read_text() == "keep me\n"
    devnull = _cli("filter", rollouts, "-o", os.devnull, "--rejects", os.devnull)
    assert devnull.returncode == 0, devnull.stderr  # a device takes both


def test_a_run_that_reads_no_rollout_leaves_no_output_folder(tmp_path: Path) -> None:
    broken = tmp_path / "broken.jsonl"
    broken.write_text('{"a": \n{"b": \n')
    config = tmp_path / "run.yaml"
    config.write_text(f'inputs: ["{broken}"]\noutput_dir: out\nsft: {{}}\n')
    _one_line_error(_cli("run", config), "no rollouts in the input", "broken.jsonl")
    assert not (tmp_path / "out").exists()
