"""How many tasks x repeats a paired comparison needs, from the baseline's variance (``evaluate --plan``).

A rollout's score (success 0/1, or its reward) is ``y = mu + task effect + noise``. From the
baseline: the within-task variance ``s_w2`` (pooled over tasks with two or more rollouts) and
the between-task variance ``s_b2`` (the variance of the task means less the part the noise
explains, ``s_w2 * mean(1/n)``, at least 0). With ``R`` repeats per task in each run and a
correlation ``rho`` between the two runs' true task scores, one task's paired difference has
variance ``V(R) = 2 (1 - rho) s_b2 + 2 s_w2 / R``; detecting a difference ``d`` with a
two-sided test at ``alpha`` and power ``1 - beta`` needs ``T(R) = ceil((z(1 - alpha/2) +
z(1 - beta))^2 V(R) / d^2)`` tasks (the normal approximation of the paired tests ``evaluate``
runs). ``rho`` is assumed (0, the default, is the safe bound) or measured on a pilot candidate.
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

from rollcraft._errors import ConfigError, InputError
from rollcraft.evaluate._score import Score

__all__ = ["PLAN_METRICS", "PlanRow", "RunPlan", "plan_run", "task_correlation", "variance_components"]

PLAN_METRICS = ("success_rate", "mean_reward")
DEFAULT_REPEATS = (1, 2, 4, 8, 16, 32)


@dataclass(frozen=True, slots=True)
class PlanRow:
    """Repeats per task, the tasks needed, and the rollouts that makes per run."""

    repeats: int
    tasks: int
    rollouts: int


@dataclass(frozen=True, slots=True)
class RunPlan:
    """The plan and the numbers it came from."""

    metric: str
    detect: float
    power: float
    alpha: float
    baseline_tasks: int
    baseline_repeats: int
    mean: float
    between_task_variance: float
    within_task_variance: float
    correlation: float
    correlation_source: str
    #: Power of a run the baseline's size (its tasks x its median repeats) for ``detect``.
    baseline_power: float
    #: The fewest tasks any number of repeats allows (the between-task part alone).
    min_tasks: int
    rows: list[PlanRow] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["rows"] = [asdict(row) for row in self.rows]
        return data


def _values(scores: Iterable[Score], metric: str) -> dict[str, list[float]]:
    tasks: dict[str, list[float]] = {}
    for s in scores:
        value = float(s.success) if metric == "success_rate" else float(s.reward)
        tasks.setdefault(s.task_key, []).append(value)
    return tasks


def _components(tasks: dict[str, list[float]]) -> tuple[float, float, float]:
    """(mean of task means, between-task variance, within-task variance)."""
    multi = [v for v in tasks.values() if len(v) >= 2]
    if len(tasks) < 2 or not multi:
        raise InputError(
            f"--plan needs at least 2 tasks and a task with 2 or more rollouts (within-task variance); "
            f"the baseline has {len(tasks)} task(s), {len(multi)} with several rollouts"
        )
    squares = math.fsum(math.fsum((x - statistics.fmean(v)) ** 2 for x in v) for v in multi)
    within = squares / sum(len(v) - 1 for v in multi)
    means = [statistics.fmean(v) for v in tasks.values()]
    noise = within * statistics.fmean(1 / len(v) for v in tasks.values())
    return statistics.fmean(means), max(0.0, statistics.variance(means) - noise), within


def variance_components(scores: Iterable[Score], metric: str = "success_rate") -> tuple[float, float, float]:
    """The baseline's mean, between-task and within-task variance of ``metric`` (per rollout)."""
    return _components(_values(scores, metric))


def task_correlation(
    baseline: Iterable[Score], pilot: Iterable[Score], metric: str = "success_rate"
) -> float:
    """Correlation of the two runs' true task scores, in [0, 1], from a pilot run of the same tasks.

    The covariance of the task means (the runs' noise is independent, so it estimates the
    covariance of the true scores) over the root of each run's between-task variance; 0 when
    either has none or the runs share fewer than 2 tasks.
    """
    base, cand = _values(baseline, metric), _values(pilot, metric)
    keys = sorted(set(base) & set(cand))
    if len(keys) < 2:
        return 0.0
    b_between = _components({t: base[t] for t in keys})[1]
    c_between = _components({t: cand[t] for t in keys})[1]
    if b_between <= 0 or c_between <= 0:
        return 0.0
    covariance = statistics.covariance(
        [statistics.fmean(base[t]) for t in keys], [statistics.fmean(cand[t]) for t in keys]
    )
    return min(1.0, max(0.0, covariance / math.sqrt(b_between * c_between)))


def _check(detect: float, power: float, alpha: float, correlation: float, metric: str) -> None:
    checks = (
        ("detect", detect > 0, "must be > 0"),
        ("power", 0 < power < 1, "must be between 0 and 1"),
        ("alpha", 0 < alpha < 1, "must be between 0 and 1"),
        ("correlation", 0 <= correlation <= 1, "must be between 0 and 1"),
        ("metric", metric in PLAN_METRICS, f"must be one of {', '.join(PLAN_METRICS)}"),
    )
    for key, ok, message in checks:
        if not ok:
            raise ConfigError(message, key=key)


def plan_run(
    baseline: Iterable[Score],
    *,
    detect: float,
    power: float = 0.8,
    alpha: float = 0.05,
    correlation: float = 0.0,
    correlation_source: str = "assumed",
    metric: str = "success_rate",
    repeats: Sequence[int] = DEFAULT_REPEATS,
) -> RunPlan:
    """Tasks needed per repeat count to detect ``detect`` (see the module docstring)."""
    _check(detect, power, alpha, correlation, metric)
    tasks = _values(baseline, metric)
    mean, between, within = _components(tasks)
    normal = statistics.NormalDist()
    z_alpha = normal.inv_cdf(1 - alpha / 2)
    factor = (z_alpha + normal.inv_cdf(power)) ** 2 / detect**2
    shared = 2 * (1 - correlation) * between

    def variance(r: int) -> float:
        return shared + 2 * within / r

    rows = [PlanRow(r, max(1, math.ceil(factor * variance(r))), 0) for r in repeats]
    rows = [PlanRow(row.repeats, row.tasks, row.tasks * row.repeats) for row in rows]
    own_repeats = statistics.median_low(len(v) for v in tasks.values())
    own_se = math.sqrt(variance(own_repeats) / len(tasks))
    return RunPlan(
        metric=metric,
        detect=detect,
        power=power,
        alpha=alpha,
        baseline_tasks=len(tasks),
        baseline_repeats=own_repeats,
        mean=mean,
        between_task_variance=between,
        within_task_variance=within,
        correlation=correlation,
        correlation_source=correlation_source,
        baseline_power=normal.cdf(detect / own_se - z_alpha) if own_se > 0 else 1.0,
        min_tasks=math.ceil(factor * shared),
        rows=rows,
    )
