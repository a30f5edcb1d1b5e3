"""The task-level step: per task success counts (:class:`TaskStats`, a first pass over the
inputs) and :class:`MinTaskSuccessRate`."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import ClassVar

from rollcraft._records import Quarantined, Rollout


@dataclass(slots=True)
class TaskStats:
    """Per task key: how many rollouts, how many succeeded (one pass; memory grows with tasks).

    >>> stats = TaskStats()
    >>> stats.rate("task_id:7") is None
    True
    """

    rollouts: Counter[str] = field(default_factory=Counter)
    successes: Counter[str] = field(default_factory=Counter)

    def add(self, rollout: Rollout) -> None:
        self.rollouts[rollout.task_key] += 1
        self.successes[rollout.task_key] += rollout.success

    def rate(self, task_key: str) -> float | None:
        n = self.rollouts.get(task_key, 0)
        return self.successes[task_key] / n if n else None

    def __add__(self, other: TaskStats) -> TaskStats:
        return TaskStats(self.rollouts + other.rollouts, self.successes + other.successes)

    @classmethod
    def collect(cls, items: Iterable[Rollout | Quarantined]) -> TaskStats:
        """Count every rollout of ``items`` (quarantined lines are skipped)."""
        stats = cls()
        for item in items:
            if isinstance(item, Rollout):
                stats.add(item)
        return stats


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
