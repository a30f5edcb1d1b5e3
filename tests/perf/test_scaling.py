"""The scaling benchmark runs end to end (tiny, not timed), fits its model, and rejects bad flags."""

from __future__ import annotations

from pathlib import Path

import pytest

from benchmarks import run, scaling
from tests.conftest import EXAMPLES_DIR


def test_a_tiny_run_prints_each_worker_count(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setattr(run, "DATA", tmp_path)
    scaling.main(["--size", "300KB", "--source", str(EXAMPLES_DIR), "--repeat", "1", "--workers", "2"])
    out = capsys.readouterr().out
    for line in ("| --workers 1 |", "| --workers 2 |", "efficiency (speed-up / N)", "efficiency >= 0.8"):
        assert line in out
    assert list(tmp_path.glob("scale-c-2.yaml"))  # the config the runs read


def test_the_fit_recovers_a_serial_and_a_parallel_part() -> None:
    points = [(n, 0.5 + 4.0 / n) for n in (1, 2, 4, 8)]
    serial, parallel = scaling.fit(points) or (0.0, 0.0)
    assert serial == pytest.approx(0.5) and parallel == pytest.approx(4.0)
    assert scaling.fit([(1, 3.0)]) is None  # one worker count: nothing to fit


@pytest.mark.parametrize(
    ("flags", "message"),
    [
        (["--workers", "1,x"], "is not valid"),
        (["--workers", "0"], "--workers: give numbers of 1 or more"),
        (["--size", "1XB"], "is not valid"),
        (["--source", "/no/such/rollouts"], "/no/such/rollouts"),
    ],
)
def test_bad_flags_are_usage_errors(
    flags: list[str], message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as exit_info:
        scaling.main(flags)
    assert exit_info.value.code == 2
    assert message in capsys.readouterr().err
