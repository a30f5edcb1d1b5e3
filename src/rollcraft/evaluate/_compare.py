"""Comparing two runs' scores: per metric the paired difference, its CI, p-value and verdict."""

from __future__ import annotations

import math
import random
from collections.abc import Iterable
from dataclasses import dataclass, field, replace
from typing import Any

from rollcraft._errors import ConfigError
from rollcraft.evaluate._binary import PairedBinary, paired_binary
from rollcraft.evaluate._score import Score
from rollcraft.evaluate._stats import bootstrap_ci, holm_bonferroni, pass_at_k, permutation_p_value
from rollcraft.read._reader import ReadReport

__all__ = [
    "IMPROVED",
    "METRICS",
    "NO_CHANGE",
    "REGRESSED",
    "Comparison",
    "MetricResult",
    "adjust_candidates",
    "compare",
]

IMPROVED, REGRESSED, NO_CHANGE = "improved", "regressed", "no significant change"
METRICS = ("mean_reward", "success_rate", "pass_at_k")
_ALPHA = 0.05


@dataclass(frozen=True, slots=True)
class MetricResult:
    """One metric compared: values, paired difference, its 95% CI, p-value and verdict."""

    baseline: float
    candidate: float
    difference: float
    ci95: tuple[float, float]
    p_value: float
    verdict: str
    n_tasks: int
    k: int | None = None
    #: Holm-adjusted p, set when several candidates are compared with one baseline.
    p_adjusted: float | None = None

    def to_dict(self) -> dict[str, Any]:
        """The JSON form (``k`` only for pass@k, ``p_adjusted`` only with several candidates)."""
        data: dict[str, Any] = {
            "baseline": self.baseline,
            "candidate": self.candidate,
            "difference": self.difference,
            "ci95": list(self.ci95),
            "p_value": self.p_value,
            **({} if self.p_adjusted is None else {"p_adjusted": self.p_adjusted}),
            "verdict": self.verdict,
            "n_tasks": self.n_tasks,
        }
        if self.k is not None:
            data["k"] = self.k
        return data


@dataclass(slots=True)
class Comparison:
    """The whole comparison: overall and per task type, plus what could not be paired."""

    overall: dict[str, MetricResult]
    by_task_type: dict[str, dict[str, MetricResult]]
    paired_tasks: int
    only_in_baseline: list[str]
    only_in_candidate: list[str]
    settings: dict[str, Any]
    inputs: dict[str, Any] = field(default_factory=dict)
    task_differences: dict[str, list[float]] = field(default_factory=dict)
    #: What reading each file counted ("baseline", "candidate"), for the ``Read L lines`` lines.
    reads: dict[str, ReadReport] = field(default_factory=dict, repr=False)
    #: Flips and McNemar's test; None unless every reward of the paired tasks is 0 or 1.
    paired_binary: PairedBinary | None = None

    @property
    def regressions(self) -> list[str]:
        """``metric`` or ``task_type/metric`` for every regressed metric."""
        found = [m for m, r in self.overall.items() if r.verdict == REGRESSED]
        for task_type, metrics in self.by_task_type.items():
            found.extend(f"{task_type}/{m}" for m, r in metrics.items() if r.verdict == REGRESSED)
        return found

    def to_dict(self) -> dict[str, Any]:
        """The JSON report (``overall`` and ``by_task_type`` map metric names to results)."""
        return {
            "inputs": self.inputs,
            "settings": self.settings,
            "paired_tasks": self.paired_tasks,
            "only_in_baseline": self.only_in_baseline,
            "only_in_candidate": self.only_in_candidate,
            "overall": {m: r.to_dict() for m, r in self.overall.items()},
            "by_task_type": {
                t: {m: r.to_dict() for m, r in ms.items()} for t, ms in self.by_task_type.items()
            },
            "regressions": self.regressions,
            **({} if self.paired_binary is None else {"paired_binary": self.paired_binary.to_dict()}),
        }


def _verdict(difference: float, ci95: tuple[float, float], p_value: float) -> str:
    if p_value < _ALPHA and ci95[0] > 0 and difference > 0:
        return IMPROVED
    if p_value < _ALPHA and ci95[1] < 0 and difference < 0:
        return REGRESSED
    return NO_CHANGE


# ---------------------------------------------------------------- comparing


@dataclass(slots=True)
class _Task:
    task_type: str
    rewards: list[float] = field(default_factory=list)
    successes: list[bool] = field(default_factory=list)


def _group(scores: Iterable[Score]) -> dict[str, _Task]:
    tasks: dict[str, _Task] = {}
    for score in scores:
        task = tasks.setdefault(score.task_key, _Task(score.task_type))
        task.rewards.append(float(score.reward))
        task.successes.append(bool(score.success))
    return tasks


def _task_value(task: _Task, metric: str, k: int | None) -> float:
    if metric == "mean_reward":
        return math.fsum(task.rewards) / len(task.rewards)
    if metric == "success_rate":
        return sum(task.successes) / len(task.successes)
    assert k is not None
    return pass_at_k(len(task.successes), sum(task.successes), k)


def _choose_k(base: dict[str, _Task], cand: dict[str, _Task], keys: list[str], k: int | None) -> int | None:
    """The k of pass@k: the one asked for, else the fewest rollouts any paired task has (if >= 2)."""
    if k is not None:
        return k
    fewest = min((min(len(base[t].rewards), len(cand[t].rewards)) for t in keys), default=0)
    return fewest if fewest >= 2 else None


def _metric(
    base: dict[str, _Task],
    cand: dict[str, _Task],
    keys: list[str],
    metric: str,
    k: int | None,
    settings: dict[str, Any],
    group: str,
) -> tuple[MetricResult, list[float]] | None:
    if metric == "pass_at_k":
        if k is None:
            return None
        keys = [t for t in keys if min(len(base[t].rewards), len(cand[t].rewards)) >= k]
    if not keys:
        return None
    b = [_task_value(base[t], metric, k) for t in keys]
    c = [_task_value(cand[t], metric, k) for t in keys]
    diffs = [y - x for x, y in zip(b, c, strict=True)]
    rng = random.Random(f"{settings['seed']}:{group}:{metric}")
    ci = bootstrap_ci(diffs, samples=settings["bootstrap_samples"], rng=rng)
    p = permutation_p_value(diffs, permutations=settings["permutations"], rng=rng)
    mean_b, mean_c, diff = (math.fsum(v) / len(keys) for v in (b, c, diffs))
    result = MetricResult(
        mean_b, mean_c, diff, ci, p, _verdict(diff, ci, p), len(keys), k if metric == "pass_at_k" else None
    )
    return result, diffs


def _metrics(
    base: dict[str, _Task],
    cand: dict[str, _Task],
    keys: list[str],
    k: int | None,
    settings: dict[str, Any],
    group: str,
) -> tuple[dict[str, MetricResult], dict[str, list[float]]]:
    results: dict[str, MetricResult] = {}
    diffs: dict[str, list[float]] = {}
    for metric in METRICS:
        found = _metric(base, cand, keys, metric, k, settings, group)
        if found is not None:
            results[metric], diffs[metric] = found
    return results, diffs


def compare(
    baseline: Iterable[Score],
    candidate: Iterable[Score],
    *,
    k: int | None = None,
    bootstrap_samples: int = 5000,
    permutations: int = 5000,
    seed: int = 0,
) -> Comparison:
    """Compare two sets of scored rollouts of the same tasks (see the module docstring).

    ``k`` fixes pass@k's k (default: the fewest rollouts any paired task has, when at least 2).
    A task's type is the baseline's. ``paired_binary`` is set when the rewards are binary.
    """
    if k is not None and k < 1:
        raise ConfigError(f"must be at least 1, not {k}", key="k")
    baseline, candidate = list(baseline), list(candidate)
    base, cand = _group(baseline), _group(candidate)
    keys = sorted(set(base) & set(cand))
    k = _choose_k(base, cand, keys, k)
    settings = {
        "bootstrap_samples": bootstrap_samples,
        "permutations": permutations,
        "seed": seed,
        "alpha": _ALPHA,
        "k": k,
    }
    overall, task_differences = _metrics(base, cand, keys, k, settings, "")
    by_type: dict[str, dict[str, MetricResult]] = {}
    for task_type in sorted({base[t].task_type for t in keys}):
        typed = [t for t in keys if base[t].task_type == task_type]
        by_type[task_type] = _metrics(base, cand, typed, k, settings, task_type)[0]
    return Comparison(
        overall=overall,
        by_task_type=by_type,
        paired_tasks=len(keys),
        only_in_baseline=sorted(set(base) - set(cand)),
        only_in_candidate=sorted(set(cand) - set(base)),
        settings=settings,
        task_differences=task_differences,
        paired_binary=paired_binary(baseline, candidate) if keys else None,
    )


def adjust_candidates(comparisons: list[Comparison]) -> None:
    """Holm-Bonferroni across candidates compared with one baseline, in place.

    For each row (overall or a task type, and a metric) the candidates that have it form one
    family: each gets its Holm-adjusted p (``p_adjusted``) and its verdict is decided on it
    (the 95% interval stays per comparison). McNemar's p is adjusted the same way. Nothing
    changes for a single candidate.
    """
    if len(comparisons) < 2:
        return
    rows: dict[tuple[str | None, str], list[tuple[dict[str, MetricResult], str]]] = {}
    for comparison in comparisons:
        comparison.settings["correction"] = "holm"
        comparison.settings["candidates"] = len(comparisons)
        groups: list[tuple[str | None, dict[str, MetricResult]]] = [(None, comparison.overall)]
        groups.extend(comparison.by_task_type.items())
        for group, metrics in groups:
            for metric in metrics:
                rows.setdefault((group, metric), []).append((metrics, metric))
    for family in rows.values():
        adjusted = holm_bonferroni([metrics[m].p_value for metrics, m in family])
        for (metrics, m), p in zip(family, adjusted, strict=True):
            r = metrics[m]
            metrics[m] = replace(r, p_adjusted=p, verdict=_verdict(r.difference, r.ci95, p))
    binaries = [c.paired_binary for c in comparisons if c.paired_binary is not None]
    for binary, p in zip(binaries, holm_bonferroni([b.mcnemar_p for b in binaries]), strict=True):
        binary.mcnemar_p_adjusted = p
