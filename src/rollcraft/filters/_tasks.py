"""The task-level step: per task success counts (:class:`TaskStats`, a first pass over the
inputs) and :class:`MinTaskSuccessRate`."""

from __future__ import annotations

import os
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import ClassVar

from rollcraft._json import read_json
from rollcraft._records import Quarantined, Rollout
from rollcraft.read._attempts import ATTEMPT_FLAGS, line_keys
from rollcraft.read._sidecars import (
    FailedAttempt,
    failed_attempt,
    failed_attempts,
    main_file,
    sidecar_of,
    task_index_key,
)


@dataclass(slots=True)
class TaskStats:
    """Per task key: how many rollouts, how many succeeded (one pass; memory grows with tasks).

    ``rollouts`` counts a task's rollouts and its failed attempts (``failed``, part of it): a
    rollout that failed before it had a result (NeMo Gym's ``_ng_failure_class``) still counts
    against its task's success rate, unless a rollout of the same identity was read (a retry
    that got a result). A line that is not its rollout's latest attempt (``superseded_attempt``,
    ``duplicate_rollout``) is not counted.

    >>> stats = TaskStats()
    >>> stats.rate("task_id:7") is None
    True
    """

    rollouts: Counter[str] = field(default_factory=Counter)
    successes: Counter[str] = field(default_factory=Counter)
    failed: Counter[str] = field(default_factory=Counter)

    def add(self, rollout: Rollout) -> None:
        self.rollouts[rollout.task_key] += 1
        self.successes[rollout.task_key] += rollout.success

    def add_failed(self, task_key: str) -> None:
        """One failed attempt of the task ``task_key``."""
        self.rollouts[task_key] += 1
        self.failed[task_key] += 1

    def rate(self, task_key: str) -> float | None:
        n = self.rollouts.get(task_key, 0)
        return self.successes[task_key] / n if n else None

    def __add__(self, other: TaskStats) -> TaskStats:
        return TaskStats(
            self.rollouts + other.rollouts, self.successes + other.successes, self.failed + other.failed
        )

    @classmethod
    def collect(cls, items: Iterable[Rollout | Quarantined], *, sidecars: bool = True) -> TaskStats:
        """Count every rollout of ``items``, and the failed attempts among the quarantined lines
        and, with ``sidecars``, in the ``X_failures.jsonl`` beside each file ``X.jsonl`` read
        (when that file was not among the inputs itself: each failure is counted once)."""
        stats = cls()
        failures = _Failures(sidecars)
        for item in items:
            if isinstance(item, Rollout):
                if item.flags.isdisjoint(ATTEMPT_FLAGS):
                    stats.add(item)
                    failures.saw_rollout(item)
            elif item.reason == "failed_attempt":
                failures.saw_failure(item)
        for task_key in failures.task_keys():
            stats.add_failed(task_key)
        return stats


class _Failures:
    """The failed attempts met while collecting, resolved to their tasks at the end."""

    def __init__(self, sidecars: bool) -> None:
        self.sidecars = sidecars
        #: main file -> its failed attempts (from the inputs or its sidecar)
        self.attempts: dict[str, list[FailedAttempt]] = {}
        self.failure_sources: set[str] = set()
        #: rollouts file -> the failures sidecar beside it (None: none)
        self.sidecar: dict[str, str | None] = {}
        #: main file -> (agent, _ng_task_index) -> task key, and the rollout identities read
        self.tasks: dict[str, dict[str, str]] = {}
        self.identities: dict[str, set[str]] = {}

    def saw_rollout(self, rollout: Rollout) -> None:
        source = rollout.source
        if source not in self.sidecar:
            self.sidecar[source] = sidecar_of(source, "failures")
        if self.sidecar[source] is not None or source in self.attempts:
            self._remember(rollout)  # else no failure of this file is known: nothing to remember

    def _remember(self, rollout: Rollout) -> None:
        keys = line_keys(rollout.raw)
        if keys is None:
            return
        source = rollout.source
        if keys.task_index is not None:
            self.tasks.setdefault(source, {})[task_index_key(keys.agent, keys.task_index)] = rollout.task_key
        if keys.identity is not None:
            self.identities.setdefault(source, set()).add(keys.identity)

    def saw_failure(self, item: Quarantined) -> None:
        try:
            found = failed_attempt(read_json(item.raw))
        except ValueError:
            return
        if found is not None:
            self.failure_sources.add(os.path.normpath(item.source))
            self.attempts.setdefault(main_file(item.source), []).append(found)

    def task_keys(self) -> list[str]:
        """The task key of each failed attempt that counts (the latest of its rollout, when no
        rollout of that identity was read)."""
        for source, path in self.sidecar.items():
            if self.sidecars and path is not None and os.path.normpath(path) not in self.failure_sources:
                self.attempts.setdefault(source, []).extend(failed_attempts(path))
        keys: list[str] = []
        for source, attempts in self.attempts.items():
            tasks = self.tasks.get(source, {})
            read = self.identities.get(source, set())
            latest: dict[str, FailedAttempt] = {}
            for attempt in attempts:
                if attempt.identity is None:
                    keys.append(_task_of(attempt, tasks))
                elif attempt.identity not in read:
                    best = latest.get(attempt.identity)
                    if best is None or attempt.attempt >= best.attempt:
                        latest[attempt.identity] = attempt
            keys.extend(_task_of(attempt, tasks) for attempt in latest.values())
        return keys


def _task_of(attempt: FailedAttempt, tasks: dict[str, str]) -> str:
    return tasks.get(task_index_key(attempt.agent, attempt.task_index)) or attempt.fallback_key()


@dataclass(frozen=True, slots=True)
class MinTaskSuccessRate:
    """Keep rollouts of tasks whose rollouts (all those read) succeed at a rate of at least ``threshold``."""

    threshold: float
    stats: TaskStats = field(repr=False)
    name: ClassVar[str] = "min_success_rate"

    def check(self, rollout: Rollout) -> str | None:
        key = rollout.task_key
        n, s = self.stats.rollouts.get(key, 0), self.stats.successes.get(key, 0)
        if n and s / n >= self.threshold:
            return None
        rate = s / n if n else 0.0
        return f"task success rate {s}/{n} = {rate:.3g} < {self.threshold:g}"
