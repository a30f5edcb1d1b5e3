"""``rollcraft inspect``: what is in a set of rollout files, per file and in total."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from rollcraft._read import ReadOptions, ReadReport, read_rollouts
from rollcraft._records import Quarantined, Rollout

__all__ = ["FileSummary", "InspectReport", "inspect_paths"]


@dataclass(slots=True)
class FileSummary:
    """Counts and reward figures of one file (or of all files together)."""

    source: str
    read: ReadReport = field(default_factory=ReadReport)
    task_counts: Counter[str] = field(default_factory=Counter)
    reward_sum: float = 0.0
    reward_min: float | None = None
    reward_max: float | None = None
    successes: int = 0
    tool_users: int = 0
    task_types: Counter[str] = field(default_factory=Counter)
    flags: Counter[str] = field(default_factory=Counter)

    def add(self, item: Rollout | Quarantined) -> None:
        self.read.count(item)
        if isinstance(item, Rollout):
            self._add_rollout(item)

    def _add_rollout(self, rollout: Rollout) -> None:
        reward = rollout.reward
        self.task_counts[rollout.task_key] += 1
        self.reward_sum += reward
        self.reward_min = reward if self.reward_min is None else min(self.reward_min, reward)
        self.reward_max = reward if self.reward_max is None else max(self.reward_max, reward)
        self.successes += rollout.success
        self.tool_users += rollout.uses_tools
        self.task_types[rollout.task_type] += 1
        self.flags.update(rollout.flags)

    def to_dict(self) -> dict[str, Any]:
        """The summary as plain JSON-ready data (the keys ``rollcraft inspect --json`` prints)."""
        n = self.read.rollouts
        per_task = list(self.task_counts.values())
        return {
            "lines": self.read.lines,
            "rollouts": n,
            "quarantined": dict(sorted(self.read.quarantined.items())),
            "tasks": len(self.task_counts),
            "rollouts_per_task": {
                "min": min(per_task, default=0),
                "mean": round(n / len(per_task), 4) if per_task else 0.0,
                "max": max(per_task, default=0),
            },
            "reward": {
                "min": self.reward_min,
                "mean": round(self.reward_sum / n, 6) if n else None,
                "max": self.reward_max,
            },
            "success_rate": round(self.successes / n, 6) if n else None,
            "tool_use_rate": round(self.tool_users / n, 6) if n else None,
            "task_types": dict(self.task_types.most_common()),
            "flags": dict(sorted(self.flags.items())),
        }


@dataclass(slots=True)
class InspectReport:
    """One summary per file and one for everything."""

    files: dict[str, FileSummary]
    total: FileSummary

    def to_dict(self) -> dict[str, Any]:
        data = self.total.to_dict()
        data["files"] = {name: summary.to_dict() for name, summary in self.files.items()}
        data["quarantine_examples"] = [
            {"file": q.source, "line": q.line, "reason": q.reason, "detail": q.detail}
            for q in self.total.read.quarantine_examples
        ]
        return data


def inspect_paths(paths: Iterable[str], *, options: ReadOptions | None = None) -> InspectReport:
    """Read every line of ``paths`` and summarize them, per file and in total.

    >>> report = inspect_paths(["examples/rollouts"])
    >>> report.total.read.lines == report.total.read.rollouts + sum(report.total.read.quarantined.values())
    True
    """
    files: dict[str, FileSummary] = {}
    total = FileSummary("total")
    for item in read_rollouts(paths, options=options):
        summary = files.get(item.source)
        if summary is None:
            summary = files[item.source] = FileSummary(item.source)
        summary.add(item)
        total.add(item)
    return InspectReport(files, total)
