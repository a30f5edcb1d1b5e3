"""``rollcraft inspect``: what is in a set of rollout files, per file and in total.

And what inputs of no rollout look like: :func:`require_rollouts` turns a read that found no
rollout into one error that names each file's shape (SFT rows, DPO pairs, NeMo Gym input
rows, ...) and what rollcraft reads instead; every command that reads rollouts calls it where
it reports what it read.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

import orjson

from rollcraft._errors import InputError
from rollcraft._records import Quarantined, Rollout
from rollcraft.read._reader import ReadOptions, ReadReport, read_rollouts
from rollcraft.read._sidecars import aggregate_summary, failed_attempts, profile_summary, sidecar_of

__all__ = [
    "FileSummary",
    "InspectReport",
    "inspect_paths",
    "looks_like",
    "read_summary",
    "require_rollouts",
    "sidecars_beside",
]

#: What rollcraft reads, said when an input holds none of it.
WHAT_ROLLCRAFT_READS = "rollcraft reads rollouts: records with responses_create_params, response and reward"


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
    #: reward component name -> [count, sum, min, max]
    components: dict[str, list[float]] = field(default_factory=dict)

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
        for name, value in rollout.reward_components.items():
            stat = self.components.get(name)
            if stat is None:
                self.components[name] = [1, value, value, value]
            else:
                stat[0] += 1
                stat[1] += value
                stat[2] = min(stat[2], value)
                stat[3] = max(stat[3], value)

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
        } | self._components_dict()

    def _components_dict(self) -> dict[str, Any]:
        """``reward_components``, when any rollout had some: per name, how many rollouts carry it,
        its mean, min and max."""
        if not self.components:
            return {}
        return {
            "reward_components": {
                name: {"count": int(n), "mean": round(total / n, 6), "min": low, "max": high}
                for name, (n, total, low, high) in sorted(self.components.items())
            }
        }


@dataclass(slots=True)
class InspectReport:
    """One summary per file and one for everything."""

    files: dict[str, FileSummary]
    total: FileSummary
    #: rollouts file -> what NeMo Gym wrote beside it (:func:`sidecars_beside`)
    sidecars: dict[str, dict[str, Any]] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        data = self.total.to_dict()
        data["files"] = {name: summary.to_dict() for name, summary in self.files.items()}
        if self.sidecars:
            data["sidecars"] = self.sidecars
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
    beside = {name: found for name in files if (found := sidecars_beside(name))}
    return InspectReport(files, total, beside)


def sidecars_beside(path: str) -> dict[str, Any]:
    """What NeMo Gym wrote beside the rollouts file ``path``, in brief: its failed attempts
    (``X_failures.jsonl``: how many, per failure class), reward profile
    (``X_reward_profiling.jsonl``) and aggregate metrics (``X_aggregate_metrics.json``)."""
    found: dict[str, Any] = {}
    failures = sidecar_of(path, "failures")
    if failures is not None:
        classes = Counter(attempt.failure_class for attempt in failed_attempts(failures))
        classes_sorted = dict(sorted(classes.items()))
        found["failures"] = {"file": failures, "attempts": classes.total(), "classes": classes_sorted}
    profile = sidecar_of(path, "reward_profiling")
    if profile is not None:
        found["reward_profiling"] = profile_summary(profile)
    metrics = sidecar_of(path, "aggregate_metrics")
    if metrics is not None:
        found["aggregate_metrics"] = aggregate_summary(metrics)
    return found


def read_summary(report: ReadReport) -> str:
    """``Read L lines: R rollouts + Q quarantined (reason n, ...)``."""
    parts = ", ".join(f"{reason} {n}" for reason, n in sorted(report.quarantined.items()))
    quarantined = sum(report.quarantined.values())
    tail = f" ({parts})" if parts else ""
    return f"Read {report.lines} lines: {report.rollouts} rollouts + {quarantined} quarantined{tail}"


def require_rollouts(report: ReadReport, *, label: str = "the input") -> None:
    """Raise :class:`~rollcraft.InputError` when ``report`` counted no rollout at all.

    The message says what each input looks like instead (from its first quarantined line) and
    what rollcraft reads, so a file of the wrong kind is never an empty output and exit 0.
    ``label`` names the input (``"the baseline (base.jsonl)"``).
    """
    if report.rollouts:
        return
    if not report.lines:
        raise InputError(f"no rollouts in {label}: it is empty (0 lines); {WHAT_ROLLCRAFT_READS}")
    looks = _looks_per_source(report.quarantine_examples)
    said = "; ".join(
        f"{_names(sources)} {'look' if len(sources) > 1 else 'looks'} like {what}"
        for what, sources in looks.items()
    )
    said = said or "no line is a rollout"
    if len(report.quarantine_examples) < report.lines:
        said += f" (judged from {len(report.quarantine_examples)} of its {report.lines} lines)"
    raise InputError(f"no rollouts in {label}: {said}; {WHAT_ROLLCRAFT_READS} ({read_summary(report)})")


def _looks_per_source(examples: Iterable[Quarantined]) -> dict[str, list[str]]:
    """What each source looks like (from its first quarantined example) -> the sources."""
    seen: set[str] = set()
    looks: dict[str, list[str]] = {}
    for item in examples:
        if item.source not in seen:
            seen.add(item.source)
            looks.setdefault(looks_like(item), []).append(item.source)
    return looks


def _names(sources: list[str], shown: int = 3) -> str:
    names = ", ".join(sources[:shown])
    more = len(sources) - shown
    return names + (f" and {more} more file{'s' if more > 1 else ''}" if more > 0 else "")


def looks_like(item: Quarantined) -> str:
    """What a quarantined line looks like, in words: the kind of file it comes from, when known."""
    record = _object(item.raw)
    if record is not None:
        known = _known_shape(set(record))
        if known is not None:
            return known
    return (
        _BY_REASON.get(item.reason, "lines that are not rollouts")
        + f" (line {item.line}: {item.detail[:80]})"
    )


def _known_shape(keys: set[str]) -> str | None:
    if {"prompt", "chosen", "rejected"} <= keys:
        return "DPO pairs (prompt, chosen, rejected)"
    if {"preferred_output", "non_preferred_output"} <= keys:
        return "OpenAI preference (DPO) rows (input, preferred_output, non_preferred_output)"
    if {"context", "completions"} <= keys:
        return "NeMo RL DPO rows (context, completions)"
    if "messages" in keys and "reward" not in keys:
        return "SFT rows (messages, no reward)"
    if "responses_create_params" in keys and not keys & {"response", "reward"}:
        return "NeMo Gym input rows (responses_create_params, no response or reward: not yet collected)"
    return None


#: What a file looks like, by the reason its first line was quarantined (after "looks like").
_BY_REASON = {
    "metric_row": "reward-profiling metric rows",
    "failed_attempt": "failed attempts (_ng_failure_class)",
    "bad_reward": "records without a usable reward",
    "unknown_schema": "records of no known rollout shape",
    "malformed_record": "rollouts with parts of the wrong types",
    "no_result": "rows without a result",
    "not_json": "text that is not JSON",
    "not_object": "JSON values that are not objects",
    "empty_line": "empty lines",
    "line_too_long": "lines over the length limit",
    "too_deeply_nested": "JSON nested too deeply",
}


def _object(raw: bytes) -> dict[str, Any] | None:
    try:
        value = orjson.loads(raw)
    except orjson.JSONDecodeError:
        return None
    return value if isinstance(value, dict) else None
