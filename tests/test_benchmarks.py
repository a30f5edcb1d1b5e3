"""The benchmark command runs end to end (tiny, not timed) and rejects bad flags with a clear error."""

from __future__ import annotations

from pathlib import Path

import pytest

from benchmarks import run

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
    for line in ("(c)/(a) run vs decode floor", "sft/(a)", "dpo/(a)", "| c |", "| dpo |"):
        assert line in out
    assert list(tmp_path.glob("rollouts-0.3MB-*.jsonl"))  # the input, built from the examples


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
