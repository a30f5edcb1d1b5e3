"""The benchmark command runs end to end (tiny, not timed) and rejects bad flags with a clear error."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from benchmarks import rss, run

EXAMPLES = Path(__file__).resolve().parent.parent / "examples" / "rollouts"


def test_a_tiny_run_prints_every_ratio(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setattr(run, "DATA", tmp_path)
    run.main(
        [
            "--sizes",
            "300KB",
            "--source",
            str(EXAMPLES),
            "--repeat",
            "1",
            "--modes",
            "a,c,sft,dpo",
            "--no-warmup",
        ]
    )
    out = capsys.readouterr().out
    for line in ("(c)/(a) run vs decode floor", "sft/(a)", "dpo/(a)", "| c |", "| dpo |", "| CPU s |"):
        assert line in out
    assert list(tmp_path.glob("rollouts-0.3MB-*.jsonl"))  # the input, built from the examples


def test_cpu_time_counts_the_command_and_its_children() -> None:
    burn = "import time; t = time.process_time(); exec('while time.process_time() - t < 0.3: pass')"
    forked = f"import subprocess, sys; subprocess.run([sys.executable, '-c', {burn!r}]); {burn}"
    peak, codes = rss.run_measured([[sys.executable, "-c", forked]])
    assert codes == [0]
    assert peak.cpu_seconds >= 0.6  # 0.3 s in the command, 0.3 s in the child it waited for


def test_the_cpu_bound_is_the_workers_cpu_time_on_every_cpu() -> None:
    results = run.Results(size=1, flat_size=1)
    results.samples = {"c": [run.Sample(4.0, 60, 60, 4.4)], "d": [run.Sample(3.0, 70, 140, 6.0)]}
    (line,) = run.cpu_bound(results, cpus=2)
    assert "c kept 1.10 busy on average, d 2.00 of 2" in line
    assert "would take 3.00 s, a speed-up over c of at most 1.33x" in line
    results.samples.pop("d")
    assert run.cpu_bound(results, cpus=2) == []


@pytest.mark.parametrize(
    ("flags", "message"),
    [
        (["--sizes", "1XB"], "--sizes: '1XB' is not a list of sizes"),
        (["--modes", "a,z"], "--modes: unknown mode z"),
        (["--source", "/no/such/rollouts"], "--source: /no/such/rollouts: no such file or folder"),
    ],
)
def test_bad_flags_are_usage_errors(
    flags: list[str], message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as exit_info:
        run.main(flags)
    assert exit_info.value.code == 2
    assert message in capsys.readouterr().err
