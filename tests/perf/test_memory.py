"""Memory grows with the number of tasks, not with bytes: 200 MB of rollouts in well under 200 MB."""

from __future__ import annotations

import sys
from pathlib import Path

from benchmarks.make_data import build
from benchmarks.rss import run_measured

SIZE = 200_000_000
LIMIT_MB = 150


def _peak_rss_mb(command: list[str]) -> float:
    peak, codes = run_measured([command])
    assert codes == [0]
    return peak.max_mb


def test_200mb_input_in_well_under_its_size(tmp_path: Path) -> None:
    data = build(tmp_path / "rollouts.jsonl", SIZE)
    config = tmp_path / "pipeline.yaml"
    config.write_text(
        f'inputs: ["{data}"]\noutput_dir: "{tmp_path / "out"}"\nfilters: {{max_turns: 400}}\n'
        "sft: {format: trl}\ndpo: {format: trl}\nvalidate: {enabled: false}\n"
    )
    peak = _peak_rss_mb([sys.executable, "-m", "rollcraft.cli", "run", str(config)])
    assert (tmp_path / "out" / "v1" / "dpo.jsonl").stat().st_size > 0
    assert peak < LIMIT_MB, f"peak RSS {peak:.0f} MB for {data.stat().st_size / 1e6:.0f} MB of input"
