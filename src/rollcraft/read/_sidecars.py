"""The files NeMo Gym writes beside a rollouts file ``X.jsonl``, found by name and read.

* ``X_failures.jsonl``: the failed attempts (``_ng_failure_class``), one line per attempt; read
  by :class:`rollcraft.filters.TaskStats` as its tasks' failures (:func:`failed_attempts`).
* ``X_materialized_inputs.jsonl``: the input rows, before collection.
* ``X_reward_profiling.jsonl``: per task, ``mean/…``, ``min/…``, ``max/…`` of the numeric
  fields, ``num_rollouts`` and the input row (``sample``); summarized by :func:`profile_summary`.
* ``X_aggregate_metrics.json``: per agent, its ``key_metrics`` (:func:`aggregate_summary`).

A sidecar named among the inputs (a folder or glob holding it) is read as lines like any other:
each line is quarantined with its own reason (``failed_attempt``, ``no_result``,
``metric_row``), never read as a rollout, and counted once.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson

from rollcraft.read._attempts import attempt_of, rollout_identity
from rollcraft.read._facts import _agent, _index_key, _scalar, _task_id_key

__all__ = [
    "SIDECARS",
    "FailedAttempt",
    "aggregate_summary",
    "failed_attempt",
    "failed_attempts",
    "main_file",
    "profile_summary",
    "sidecar_kind",
    "sidecar_of",
    "task_index_key",
]

#: Sidecar kind -> what NeMo Gym appends to the rollouts file's stem.
SIDECARS: dict[str, str] = {
    "failures": "_failures.jsonl",
    "materialized_inputs": "_materialized_inputs.jsonl",
    "reward_profiling": "_reward_profiling.jsonl",
    "aggregate_metrics": "_aggregate_metrics.json",
}


def sidecar_kind(path: str) -> str | None:
    """Which sidecar ``path`` is, by its name; None for any other file."""
    for kind, suffix in SIDECARS.items():
        if path.endswith(suffix):
            return kind
    return None


def main_file(path: str) -> str:
    """The rollouts file a sidecar belongs to (``X_failures.jsonl`` -> ``X.jsonl``); a rollouts
    file is its own."""
    kind = sidecar_kind(path)
    return path[: -len(SIDECARS[kind])] + ".jsonl" if kind is not None else path


def sidecar_of(rollouts: str, kind: str) -> str | None:
    """The ``kind`` sidecar beside the rollouts file ``rollouts``, when it is there."""
    if rollouts == "-" or not rollouts.endswith(".jsonl") or sidecar_kind(rollouts) is not None:
        return None
    path = rollouts[: -len(".jsonl")] + SIDECARS[kind]
    return path if os.path.isfile(path) else None


@dataclass(frozen=True, slots=True)
class FailedAttempt:
    """One failed attempt: which rollout of which task, and why (``failure_class``)."""

    identity: str | None
    attempt: int
    agent: str | None
    task_index: Any
    task_id: Any
    failure_class: str

    def fallback_key(self) -> str:
        """The task key when no rollout of its task was read: ``task_id`` (as the reader makes
        it), else the agent with ``_ng_task_index``."""
        if self.task_id is not None:
            return _task_id_key(self.agent, self.task_id)
        return _index_key(self.agent, self.task_index)


def failed_attempt(record: Any) -> FailedAttempt | None:
    """A decoded line as a failed attempt, or None when it is not one (no ``_ng_failure_class``)."""
    if not isinstance(record, dict) or "_ng_failure_class" not in record:
        return None
    agent = _agent(record)
    task_index = record.get("_ng_task_index")
    value = record.get("_ng_failure_class")
    return FailedAttempt(
        rollout_identity(agent, task_index, record.get("_ng_rollout_index"), record.get("_ng_rollout_id")),
        attempt_of(record.get("_ng_attempt_index")),
        agent,
        task_index,
        record.get("task_id"),
        value if isinstance(value, str) else _scalar(value),
    )


def failed_attempts(path: str) -> Iterator[FailedAttempt]:
    """The failed attempts of a ``X_failures.jsonl`` file; lines that are not one (a line cut
    short by a crash, a row without ``_ng_failure_class``) are skipped."""
    for record in _records(path):
        found = failed_attempt(record)
        if found is not None:
            yield found


def task_index_key(agent: str | None, task_index: Any) -> str:
    """How a failed attempt finds its task among the rollouts of its file."""
    return f"{agent or ''}\x00{_scalar(task_index)}"


def profile_summary(path: str) -> dict[str, Any]:
    """A reward-profiling file in brief: its tasks, their rollouts, and the spread of the tasks'
    mean reward (``mean/reward``), with how many tasks never, sometimes and always got full reward
    (``max/reward`` and ``min/reward`` against 1.0)."""
    tasks = rollouts = 0
    means: list[float] = []
    never = sometimes = always = 0
    for row in _records(path):
        if not isinstance(row, dict):
            continue
        tasks += 1
        count = row.get("num_rollouts")
        rollouts += count if isinstance(count, int) and not isinstance(count, bool) else 0
        mean, high, low = (_float(row.get(f"{stat}/reward")) for stat in ("mean", "max", "min"))
        if mean is not None:
            means.append(mean)
        if high is not None and low is not None:
            if low >= 1.0:
                always += 1
            elif high >= 1.0:
                sometimes += 1
            else:
                never += 1
    return {
        "file": path,
        "tasks": tasks,
        "rollouts": rollouts,
        "mean_reward": {
            "min": min(means, default=None),
            "mean": round(sum(means) / len(means), 6) if means else None,
            "max": max(means, default=None),
        },
        "full_reward": {"never": never, "sometimes": sometimes, "always": always},
    }


def aggregate_summary(path: str) -> dict[str, Any]:
    """An aggregate-metrics file in brief: each agent's ``key_metrics`` (numbers and strings)."""
    try:
        value = orjson.loads(Path(path).read_bytes())
    except (OSError, orjson.JSONDecodeError) as exc:
        return {"file": path, "error": str(exc).splitlines()[0] if str(exc) else type(exc).__name__}
    agents: dict[str, Any] = {}
    for entry in value if isinstance(value, list) else [value]:
        if not isinstance(entry, dict):
            continue
        name = _agent(entry) or "(no agent)"
        metrics = entry.get("key_metrics")
        agents[name] = {
            str(k): v
            for k, v in (metrics.items() if isinstance(metrics, dict) else ())
            if isinstance(v, (int, float, str, bool)) or v is None
        }
    return {"file": path, "agents": agents}


def _records(path: str) -> Iterator[Any]:
    try:
        handle = open(path, "rb")
    except OSError:
        return
    with handle:
        for line in handle:
            if not line.strip():
                continue
            try:
                yield orjson.loads(line)
            except orjson.JSONDecodeError:
                continue


def _float(value: Any) -> float | None:
    return float(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else None
