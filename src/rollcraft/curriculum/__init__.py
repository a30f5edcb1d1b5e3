"""The next collection round's tasks: ``rollcraft curriculum``.

From rollouts (and their failed attempts) or NeMo Gym's reward-profiling files, each task's
observed pass rate (:mod:`._tasks`); the tasks in a pass-rate band, at most ``max_per_type`` of a
type (:mod:`._select`); their NeMo Gym input rows (:mod:`._rows`), each written ``repeats``
times, that ``gym eval run --input`` takes as they are.

>>> from rollcraft.curriculum import CurriculumConfig, build_curriculum
>>> curriculum = build_curriculum(["rollouts/"], CurriculumConfig(low=0.1, high=0.9))
>>> curriculum.write("next_round.jsonl")  # doctest: +SKIP
"""

from __future__ import annotations

import os
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

import orjson

from rollcraft._errors import ConfigError, InputError
from rollcraft._io import atomic_writer
from rollcraft._json import read_json
from rollcraft.curriculum._rows import InputRows, input_row, rebuilt_row
from rollcraft.curriculum._select import OUTCOMES, band_outcome, cap, histogram
from rollcraft.curriculum._tasks import Task, collect_tasks, split_inputs
from rollcraft.read._inspect import require_rollouts
from rollcraft.read._reader import ReadOptions, ReadReport

__all__ = [
    "OUTCOMES",
    "Curriculum",
    "CurriculumConfig",
    "build_curriculum",
    "parse_band",
    "task_pass_rates",
]


@dataclass(frozen=True, slots=True)
class CurriculumConfig:
    """The band ``[low, high]`` (inclusive), the per-type cap and its seed, and how many times each
    kept task's row is written."""

    low: float = 0.1
    high: float = 0.9
    max_per_type: int | None = None
    seed: int = 0
    repeats: int = 1

    def __post_init__(self) -> None:
        if not (0.0 <= self.low <= self.high <= 1.0):
            raise ConfigError(f"needs 0 <= low <= high <= 1, not {self.low:g}:{self.high:g}", key="pass_rate")
        if self.max_per_type is not None and self.max_per_type < 1:
            raise ConfigError(f"must be at least 1, not {self.max_per_type}", key="max_per_type")
        if self.repeats < 1:
            raise ConfigError(f"must be at least 1, not {self.repeats}", key="repeats")


def parse_band(text: str) -> tuple[float, float]:
    """``"0.1:0.9"`` -> ``(0.1, 0.9)``."""
    low, sep, high = text.partition(":")
    try:
        if not sep:
            raise ValueError
        return float(low), float(high)
    except ValueError:
        raise ConfigError(f"expected LOW:HIGH (e.g. 0.1:0.9), not {text!r}", key="pass_rate") from None


@dataclass(slots=True)
class Curriculum:
    """The tasks, each one's outcome, and the kept tasks' input rows (in the order first seen)."""

    config: CurriculumConfig
    tasks: dict[str, Task]
    outcomes: dict[str, str]
    rows: dict[str, dict[str, Any]]
    #: where each kept row comes from: ``materialized_inputs``, ``profile_sample`` or ``rollout``
    row_from: dict[str, str]
    read: ReadReport
    profiles: list[str] = field(default_factory=list)
    profiles_skipped: list[str] = field(default_factory=list)
    profile_lines: Counter[str] = field(default_factory=Counter)
    #: materialized inputs files named among the inputs (those beside a rollouts file are found)
    materialized: list[str] = field(default_factory=list)

    def write(self, path: str | os.PathLike[str]) -> int:
        """Write the kept tasks' rows, each ``repeats`` times in a row, atomically; the number of
        lines written."""
        written = 0
        with atomic_writer(path) as handle:
            for row in self.rows.values():
                line = orjson.dumps(row) + b"\n"
                for _ in range(self.config.repeats):
                    handle.write(line)
                    written += 1
        return written

    def report(self) -> dict[str, Any]:
        """Every task accounted for: outcomes, the pass-rate histogram, per type, per task."""
        per_type: dict[str, Counter[str]] = {}
        for key, task in self.tasks.items():
            per_type.setdefault(task.task_type, Counter())[self.outcomes[key]] += 1
        counts = Counter(self.outcomes.values())
        config = self.config
        return {
            "tasks": len(self.tasks),
            "outcomes": {name: counts.get(name, 0) for name in OUTCOMES},
            "rows_written": len(self.rows) * config.repeats,
            "pass_rate": {"low": config.low, "high": config.high},
            "max_per_type": config.max_per_type,
            "seed": config.seed,
            "repeats": config.repeats,
            "histogram": histogram(t.rate for t in self.tasks.values() if t.rate is not None),
            "per_type": {
                name: {"tasks": sum(c.values()), **{o: c.get(o, 0) for o in OUTCOMES}}
                for name, c in sorted(per_type.items())
            },
            "rows_from": dict(sorted(Counter(self.row_from.values()).items())),
            "rows_without_agent_ref": sum(1 for row in self.rows.values() if not _routed(row)),
            "rates_from": dict(sorted(Counter(t.rate_from for t in self.tasks.values()).items())),
            "read": {
                "lines": self.read.lines,
                "rollouts": self.read.rollouts,
                "quarantined": dict(sorted(self.read.quarantined.items())),
            },
            "profiles": {
                "used": self.profiles,
                "skipped_rollouts_read": self.profiles_skipped,
                "lines": dict(sorted(self.profile_lines.items())),
            },
            "materialized_inputs_named": self.materialized,
            "task_list": [_task_entry(task, self.outcomes[key]) for key, task in self.tasks.items()],
        }


def build_curriculum(
    paths: Iterable[str], config: CurriculumConfig | None = None, *, options: ReadOptions | None = None
) -> Curriculum:
    """Read ``paths`` (rollouts, failures, reward profiles, materialized inputs; files, folders,
    globs) and choose the next round's tasks. Raises :class:`~rollcraft.InputError` when the
    inputs hold no task."""
    config = config or CurriculumConfig()
    options = options or ReadOptions()
    inputs = split_inputs(paths)
    report = ReadReport()
    profile_lines: Counter[str] = Counter()
    tasks = collect_tasks(inputs, options, report, profile_lines)
    if not tasks:
        if inputs.rollouts and not inputs.profiles:
            require_rollouts(report)
        hint = " (materialized inputs are the rows before collection: give their rollouts X.jsonl)"
        raise InputError(
            "no tasks in the inputs: no rollout, failed attempt or reward-profile row"
            + (hint if inputs.materialized else "")
        )
    rows, row_from, outcomes = _choose(tasks, config, InputRows(inputs.materialized))
    return Curriculum(
        config,
        tasks,
        outcomes,
        rows,
        row_from,
        report,
        inputs.profiles,
        inputs.profiles_skipped,
        profile_lines,
        inputs.materialized,
    )


def task_pass_rates(paths: Iterable[str], *, options: ReadOptions | None = None) -> dict[str, float]:
    """Each task's observed pass rate by its task key (``rollout.task_key``), in the order first
    seen: successes over rollouts and failed attempts (the failures sidecars included), or a
    reward profile's. For ordering rows from easy to hard."""
    inputs = split_inputs(paths)
    tasks = collect_tasks(inputs, options or ReadOptions(), ReadReport(), Counter())
    return {key: task.rate for key, task in tasks.items() if task.rate is not None}


def _choose(
    tasks: dict[str, Task], config: CurriculumConfig, materialized: InputRows
) -> tuple[dict[str, dict[str, Any]], dict[str, str], dict[str, str]]:
    outcomes: dict[str, str] = {}
    found: dict[str, tuple[dict[str, Any], str]] = {}
    candidates: dict[str, list[str]] = {}
    for key, task in tasks.items():
        outcome = band_outcome(task.rate, config.low, config.high) if task.rate is not None else "too_hard"
        if outcome is None:
            row = _row_of(task, materialized)
            if row is None:
                outcome = "no_input_row"
            else:
                found[key] = row
                candidates.setdefault(task.task_type, []).append(key)
        if outcome is not None:
            outcomes[key] = outcome
    kept = cap(candidates, config.max_per_type, config.seed)
    rows: dict[str, dict[str, Any]] = {}
    row_from: dict[str, str] = {}
    for key in tasks:
        if key in found:
            outcomes[key] = "kept" if key in kept else "over_cap"
            if key in kept:
                rows[key], row_from[key] = found[key]
    return rows, row_from, {key: outcomes[key] for key in tasks}


def _row_of(task: Task, materialized: InputRows) -> tuple[dict[str, Any], str] | None:
    if task.line is not None:
        row = materialized.row_of(task.source, task.line)
        if row is not None:
            return row, "materialized_inputs"
    if task.sample is not None:
        return input_row(task.sample), "profile_sample"
    if task.line is not None:
        record = read_json(task.line)
        rebuilt = rebuilt_row(record) if isinstance(record, dict) else None
        if rebuilt is not None:
            return rebuilt, "rollout"
    return None


def _routed(row: dict[str, Any]) -> bool:
    """Whether NeMo Gym can route the row without ``--agent``: an ``agent_ref`` name, a
    ``task_source``, or a materialized task (``task_id`` object with ``task_input``)."""
    ref = row.get("agent_ref")
    if isinstance(ref, dict) and isinstance(ref.get("name"), str):
        return True
    return "task_source" in row or (isinstance(row.get("task_id"), dict) and "task_input" in row)


def _task_entry(task: Task, outcome: str) -> dict[str, Any]:
    return {
        "task": task.key,
        "type": task.task_type,
        "pass_rate": task.rate,
        "rollouts": task.rollouts,
        "successes": task.successes,
        "failed": task.failed,
        "rate_from": task.rate_from,
        "outcome": outcome,
    }
