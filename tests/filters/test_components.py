"""``--min-component NAME=X``: a threshold per reward component of a multi-reward record."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from rollcraft import FilterConfig, Rollout, build_steps, read_rollouts
from rollcraft._errors import ConfigError
from rollcraft.filters import MinComponent
from tests.read.test_gym_records import _message, _record, _write


def _rollouts(tmp_path: Path) -> tuple[Path, list[Rollout]]:
    records = [
        _record([_message("a")], 1.0, reward_components={"accuracy": 1.0, "format": 0.5}),
        _record([_message("b")], 0.5, reward_components={"accuracy": 0.4, "format": 1.0}),
        _record([_message("c")], 1.0),
    ]
    path = _write(tmp_path / "r.jsonl", records)
    return path, [r for r in read_rollouts([str(path)]) if isinstance(r, Rollout)]


def test_each_named_component_must_reach_its_threshold(tmp_path: Path) -> None:
    _, (both, low_accuracy, plain) = _rollouts(tmp_path)
    step = MinComponent.of({"accuracy": 0.5, "format": 0.5})
    assert step.check(both) is None
    assert step.check(low_accuracy) == "accuracy 0.4 < 0.5"
    assert step.check(plain) == "no reward component accuracy"
    assert MinComponent.of({"format": 0.75}).check(both) == "format 0.5 < 0.75"


def test_the_key_takes_pairs_as_text_and_stays_out_of_dumps_when_off() -> None:
    config = FilterConfig(min_component="accuracy=0.5, format=1")
    assert config.min_component == {"accuracy": 0.5, "format": 1.0}
    assert next(s.name for s in build_steps(config)) == "min_component"
    assert FilterConfig(min_component={"accuracy": 1}).model_dump()["min_component"] == {"accuracy": 1.0}
    assert "min_component" not in FilterConfig().model_dump()  # manifests of runs without it unchanged
    for bad in ("accuracy", "=1", "accuracy=high", "accuracy=nan"):
        with pytest.raises(ConfigError, match="min_component"):
            FilterConfig(min_component=bad)


def test_the_flag_filters_and_names_its_drops(tmp_path: Path) -> None:
    path, _ = _rollouts(tmp_path)
    kept, report = tmp_path / "kept.jsonl", tmp_path / "report.json"
    args = ["filter", str(path), "-o", str(kept), "--min-component", "accuracy=0.5", "--report", str(report)]
    done = subprocess.run([sys.executable, "-m", "rollcraft.cli", *args], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert [json.loads(line)["response"]["output"][0]["content"][0]["text"] for line in kept.open()] == ["a"]
    steps = {s["filter"]: s["dropped"] for s in json.loads(report.read_text())["steps"]}
    assert steps["min_component"] == 2
    bad = subprocess.run(
        [sys.executable, "-m", "rollcraft.cli", *args[:5], "accuracy"], capture_output=True, text=True
    )
    assert bad.returncode == 2 and "Traceback" not in bad.stderr and "NAME=X" in bad.stderr
