"""The benchmark command runs end to end (tiny, not timed) and rejects bad flags with a clear error."""

from __future__ import annotations

import gzip
import sys
from pathlib import Path

import pytest

from benchmarks import make_data, rss, run
from tests.conftest import EXAMPLES_DIR


def test_a_tiny_run_prints_every_ratio(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setattr(run, "DATA", tmp_path)
    run.main(
        [
            "--sizes",
            "300KB",
            "--source",
            str(EXAMPLES_DIR),
            "--repeat",
            "1",
            "--modes",
            "a,c,sft,dpo,r",
            "--no-warmup",
        ]
    )
    out = capsys.readouterr().out
    lines = ("(c)/(a) run vs decode floor", "sft/(a)", "dpo/(a)", "r/(a) rollcraft's reader alone", "| r |")
    for line in (*lines, "| c |", "| dpo |", "| CPU s |"):
        assert line in out
    assert list(tmp_path.glob("rollouts-0.3MB-*.jsonl"))  # the input, built from the examples


def test_an_input_built_from_changed_source_files_gets_a_new_name(tmp_path: Path) -> None:
    source = tmp_path / "rollouts"
    source.mkdir()
    (source / "a.jsonl").write_bytes((EXAMPLES_DIR / "tool_agents_rollouts.jsonl").read_bytes())
    first = run.source_digest([source])
    assert run.source_digest([source]) == first  # the same files: the same input is reused
    (source / "b.jsonl").write_bytes((EXAMPLES_DIR / "chat_agents_rollouts.jsonl").read_bytes())
    second = run.source_digest([source])
    assert second != first
    (source / "b.jsonl").write_bytes(b"{}\n")
    assert run.source_digest([source]) not in (first, second)


def test_a_large_source_gives_a_seeded_sample_of_its_lines() -> None:
    whole = make_data.load_templates(EXAMPLES_DIR)
    size = sum(len(line) for line in whole.rollouts + whole.odd)
    sample = make_data.load_templates(EXAMPLES_DIR, max_bytes=size // 4)
    assert 0 < len(sample.rollouts) < len(whole.rollouts)
    assert set(sample.rollouts) <= set(whole.rollouts)
    assert make_data.load_templates(EXAMPLES_DIR, max_bytes=size // 4) == sample  # the same sample again
    assert len(sample.sizes) == len(sample.rollouts)


def test_a_compressed_source_is_sampled_too(tmp_path: Path) -> None:
    """A .gz file holds more lines than its size says: the sample still stays under the limit."""
    lines = b"".join((EXAMPLES_DIR / name).read_bytes() for name in ("tool_agents_rollouts.jsonl",) * 8)
    (tmp_path / "many.jsonl.gz").write_bytes(gzip.compress(lines))
    limit = len(lines) // 3
    assert (tmp_path / "many.jsonl.gz").stat().st_size < limit  # the files' size alone would keep all
    sample = make_data.load_templates(tmp_path, max_bytes=limit)
    assert 0 < sum(len(line) for line in sample.rollouts + sample.odd) <= limit


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
        (["--source", "{empty}"], "folder holds no *.jsonl* files"),
    ],
)
def test_bad_flags_are_usage_errors(
    flags: list[str], message: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as exit_info:
        run.main([flag.format(empty=tmp_path) for flag in flags])
    assert exit_info.value.code == 2
    assert message in capsys.readouterr().err
