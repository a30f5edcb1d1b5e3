"""Each task's observed pass rate, from rollouts (with their failed attempts) or a reward profile.

From rollouts: the reader reads them (:func:`rollcraft.read_rollouts`) and
:class:`rollcraft.filters.TaskStats` counts them: a task's pass rate is its rollouts that
succeeded (``rollout.success``) over its rollouts and its failed attempts (those in the inputs and
in the ``X_failures.jsonl`` beside each ``X.jsonl``). The line of a task's first counted rollout
is kept for its input row.

From a reward-profiling file (``X_reward_profiling.jsonl``, one line per task): its
``rollout_infos`` when it has them (each rollout succeeds by its ``success``, ``is_correct`` or
``resolved`` 0/1, else ``reward >= success_threshold``); else the task's ``mean/success``
(``is_correct``, ``resolved``); else 1.0 when ``min/reward`` reaches the threshold, 0.0 when
``max/reward`` does not, and ``mean/reward`` (clamped to 0..1) in between. A profile whose
rollouts file ``X.jsonl`` is among the inputs is not used: the rollouts and failures say more.
"""

from __future__ import annotations

import os
from collections import Counter
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Any

import orjson

from rollcraft._io import RawLine, expand_inputs, iter_lines
from rollcraft._records import Rollout
from rollcraft.filters._tasks import TaskStats
from rollcraft.read._attempts import ATTEMPT_FLAGS
from rollcraft.read._reader import ReadOptions, ReadReport, parse_line, read_rollouts
from rollcraft.read._sidecars import main_file, sidecar_kind

__all__ = ["Inputs", "Task", "collect_tasks", "split_inputs"]

_FLAG_KEYS = ("success", "is_correct", "resolved")


@dataclass(slots=True)
class Task:
    """One task: its counts, its pass rate and where they come from (``rate_from``: ``rollouts``,
    ``profile_rollouts`` or ``profile_mean``), and what its input row is built from."""

    key: str
    task_type: str
    source: str
    rollouts: int = 0
    successes: int = 0
    failed: int = 0
    rate: float | None = None
    rate_from: str = "rollouts"
    #: the line of the first counted rollout (in ``source``): it finds the task's input row, or
    #: gives it (only the line is kept, not the rollout: memory grows with the tasks)
    line: bytes | None = None
    #: a profile's ``sample`` (the task's input row, without its indices)
    sample: dict[str, Any] | None = None


@dataclass(frozen=True, slots=True)
class Inputs:
    """The inputs by kind: rollouts files (failures included), profiles, materialized inputs."""

    rollouts: list[str]
    profiles: list[str]
    materialized: list[str]
    #: profiles left out because their rollouts file is among the inputs
    profiles_skipped: list[str]


def split_inputs(paths: Iterable[str]) -> Inputs:
    """Sort the files named by ``paths`` (files, folders, globs, ``-``) by what NeMo Gym wrote."""
    rollouts: list[str] = []
    profiles: list[str] = []
    materialized: list[str] = []
    for path in expand_inputs(paths):
        kind = sidecar_kind(path)
        if kind == "reward_profiling":
            profiles.append(path)
        elif kind == "materialized_inputs":
            materialized.append(path)
        else:
            rollouts.append(path)
    read = {os.path.normpath(p) for p in rollouts}
    used = [p for p in profiles if os.path.normpath(main_file(p)) not in read]
    return Inputs(rollouts, used, materialized, [p for p in profiles if p not in used])


def collect_tasks(
    inputs: Inputs, options: ReadOptions, report: ReadReport, profile_lines: Counter[str]
) -> dict[str, Task]:
    """Every task of the inputs, by key, in the order first seen, with its pass rate.

    ``profile_lines`` counts the profiles' lines: ``lines``, ``tasks`` and ``skipped`` (not a
    task's row: not JSON, not an object, no reward statistics)."""
    tasks: dict[str, Task] = {}
    if inputs.rollouts:
        _from_rollouts(inputs.rollouts, options, report, tasks)
    for path in inputs.profiles:
        for task in _from_profile(path, options, profile_lines):
            tasks.setdefault(task.key, task)  # a task also read from rollouts keeps their counts
    return tasks


def _from_rollouts(
    files: list[str], options: ReadOptions, report: ReadReport, tasks: dict[str, Task]
) -> None:
    def watch(items: Iterable[Any]) -> Iterator[Any]:
        for item in items:
            if (
                isinstance(item, Rollout)
                and item.flags.isdisjoint(ATTEMPT_FLAGS)
                and item.task_key not in tasks
            ):
                tasks[item.task_key] = Task(item.task_key, item.task_type, item.source, line=item.raw)
            yield item

    stats = TaskStats.collect(watch(read_rollouts(files, options=options, report=report)))
    for key, n in stats.rollouts.items():
        # a task whose every attempt failed has no rollout: its key is NeMo Gym's indices
        task = tasks.setdefault(key, Task(key, "unknown", ""))
        task.rollouts, task.successes, task.failed = n, stats.successes[key], stats.failed[key]
        task.rate = task.successes / n


def _from_profile(path: str, options: ReadOptions, counts: Counter[str]) -> Iterator[Task]:
    """The tasks of one reward-profiling file (lines that are not a task's row are skipped)."""
    seen: set[str] = set()
    for raw in iter_lines([path]):
        counts["lines"] += 1
        try:
            row = orjson.loads(raw.data)
        except orjson.JSONDecodeError:
            row = None
        task = _profile_task(raw, row, options) if isinstance(row, dict) else None
        if task is None:
            counts["skipped"] += 1
            continue
        counts["tasks"] += 1
        if task.key in seen:  # two rows of one prompt and no index: told apart by their line
            task.key = f"{task.key}@{raw.line}"
        seen.add(task.key)
        yield task


def _profile_task(raw: RawLine, row: dict[str, Any], options: ReadOptions) -> Task | None:
    threshold = options.success_threshold
    counted = _from_infos(row.get("rollout_infos"), threshold)
    rate = counted[1] / counted[0] if counted and counted[0] else _mean_rate(row, threshold)
    if rate is None:
        return None
    sample = row.get("sample") if isinstance(row.get("sample"), dict) else None
    key, task_type = _profile_identity(raw, row, sample, options)
    task = Task(key, task_type, raw.source, rate=rate, sample=sample)
    if counted and counted[0]:
        task.rollouts, task.successes, task.rate_from = counted[0], counted[1], "profile_rollouts"
    else:
        n = row.get("num_rollouts")
        task.rollouts = n if isinstance(n, int) and not isinstance(n, bool) else 0
        task.rate_from = "profile_mean"
    return task


def _from_infos(infos: Any, threshold: float) -> tuple[int, int] | None:
    """(rollouts, successes) from a profile row's ``rollout_infos``; None when it has none."""
    if not isinstance(infos, list):
        return None
    infos = [info for info in infos if isinstance(info, dict)]
    return len(infos), sum(_info_success(info, threshold) for info in infos)


def _info_success(info: dict[str, Any], threshold: float) -> bool:
    for key in _FLAG_KEYS:  # NeMo Gym writes a boolean field of the rollout as 0 or 1
        value = info.get(key)
        if isinstance(value, (bool, int)) and value in (0, 1):
            return bool(value)
    reward = _number(info.get("reward"))
    return reward is not None and reward >= threshold


def _mean_rate(row: dict[str, Any], threshold: float) -> float | None:
    for key in _FLAG_KEYS:
        mean = _number(row.get(f"mean/{key}"))
        if mean is not None and 0.0 <= mean <= 1.0:
            return mean
    low, high, mean = (_number(row.get(f"{stat}/reward")) for stat in ("min", "max", "mean"))
    if low is not None and low >= threshold:
        return 1.0
    if high is not None and high < threshold:
        return 0.0
    return None if mean is None else min(1.0, max(0.0, mean))


def _profile_identity(
    raw: RawLine, row: dict[str, Any], sample: dict[str, Any] | None, options: ReadOptions
) -> tuple[str, str]:
    """The key and type the reader gives a rollout of this task: its input row read as a rollout
    with an empty response (so a profile's task and the same task's rollouts meet)."""
    record: dict[str, Any] = dict(sample or {})
    for name in ("_ng_task_index", "agent_ref"):
        if name in row and name not in record:
            record[name] = row[name]
    record.update(response={"output": []}, reward=0.0)
    parsed = parse_line(RawLine(raw.source, raw.line, raw.offset, orjson.dumps(record)), options)
    if isinstance(parsed, Rollout):
        return parsed.task_key, parsed.task_type
    return f"profile:{raw.source}:{raw.line}", "unknown"


def _number(value: Any) -> float | None:
    return float(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else None
