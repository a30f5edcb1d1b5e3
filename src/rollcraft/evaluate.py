"""Did training help? Compare baseline and candidate rollouts of the same held-out tasks.

Rollouts are paired by task key. Per task, each file gives a mean reward, a success rate and,
where every task has several rollouts, pass@k (the unbiased estimator of Chen et al., 2021).
A metric's value is the mean over paired tasks; its difference (candidate - baseline) gets a
paired bootstrap 95% confidence interval (tasks resampled with replacement) and a paired
sign-flip permutation test (exact for up to 16 tasks with a non-zero difference). The verdict
is ``improved`` or ``regressed`` when the interval excludes zero and p < 0.05, else ``no
significant change``. Everything is pure Python and seeded: the same inputs give the same
numbers.

>>> from rollcraft.evaluate import Score, compare
>>> base = [Score(f"t{i}", "math", 0.0, False) for i in range(30)]
>>> cand = [Score(f"t{i}", "math", 1.0, True) for i in range(30)]
>>> compare(base, cand).overall["success_rate"].verdict
'improved'
"""

from __future__ import annotations

import math
import random
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from itertools import product
from typing import Any, NamedTuple

from rollcraft._errors import ConfigError, InputError
from rollcraft._inspect import require_rollouts
from rollcraft._read import ReadOptions, ReadReport, read_rollouts
from rollcraft._records import Rollout

__all__ = [
    "IMPROVED",
    "METRICS",
    "NO_CHANGE",
    "REGRESSED",
    "Comparison",
    "MetricResult",
    "Score",
    "bootstrap_ci",
    "compare",
    "evaluate_files",
    "load_scores",
    "pass_at_k",
    "permutation_p_value",
    "render_html",
]

IMPROVED, REGRESSED, NO_CHANGE = "improved", "regressed", "no significant change"
METRICS = ("mean_reward", "success_rate", "pass_at_k")
_EXACT_LIMIT = 16
_ALPHA = 0.05


class Score(NamedTuple):
    """What evaluation needs of one rollout."""

    task_key: str
    task_type: str
    reward: float
    success: bool


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

    def to_dict(self) -> dict[str, Any]:
        """The JSON form (``k`` only for pass@k)."""
        data: dict[str, Any] = {
            "baseline": self.baseline,
            "candidate": self.candidate,
            "difference": self.difference,
            "ci95": list(self.ci95),
            "p_value": self.p_value,
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
        }


# ---------------------------------------------------------------- statistics


def pass_at_k(n: int, c: int, k: int) -> float:
    """Probability that at least one of ``k`` of ``n`` samples (``c`` correct) is correct.

    >>> pass_at_k(4, 1, 1), pass_at_k(4, 1, 4), pass_at_k(5, 0, 2)
    (0.25, 1.0, 0.0)
    """
    if not 0 <= c <= n or not 1 <= k <= n:
        raise ValueError(f"need 0 <= c <= n and 1 <= k <= n, got n={n} c={c} k={k}")
    if n - c < k:
        return 1.0
    return 1.0 - math.comb(n - c, k) / math.comb(n, k)


def _percentile(sorted_values: Sequence[float], q: float) -> float:
    """Linear-interpolation percentile (``q`` in [0, 1]) of already sorted values."""
    position = q * (len(sorted_values) - 1)
    low = math.floor(position)
    high = min(low + 1, len(sorted_values) - 1)
    return sorted_values[low] + (sorted_values[high] - sorted_values[low]) * (position - low)


def bootstrap_ci(differences: Sequence[float], *, samples: int, rng: random.Random) -> tuple[float, float]:
    """Percentile 95% interval of the mean of ``differences`` under resampling with replacement.

    >>> bootstrap_ci([1.0, 1.0, 1.0], samples=100, rng=random.Random(0))
    (1.0, 1.0)
    """
    n = len(differences)
    if n == 0:
        return (0.0, 0.0)
    means = sorted(math.fsum(rng.choices(differences, k=n)) / n for _ in range(samples))
    return (_percentile(means, 0.025), _percentile(means, 0.975))


def permutation_p_value(differences: Sequence[float], *, permutations: int, rng: random.Random) -> float:
    """Two-sided p-value of a paired sign-flip test that the mean difference is zero.

    Zero differences are left out (they are the same under any flip). Exact when at most 16
    differences remain, else Monte Carlo with ``permutations`` draws and the +1 correction.

    >>> permutation_p_value([0.0, 0.0], permutations=100, rng=random.Random(0))
    1.0
    """
    nonzero = [d for d in differences if d != 0]
    if not nonzero:
        return 1.0
    observed = abs(math.fsum(nonzero)) - 1e-12
    if len(nonzero) <= _EXACT_LIMIT:
        flips = list(product((1.0, -1.0), repeat=len(nonzero)))
        hits = sum(
            1
            for signs in flips
            if abs(math.fsum(s * d for s, d in zip(signs, nonzero, strict=True))) >= observed
        )
        return hits / len(flips)
    total = math.fsum(nonzero)
    hits = 0
    for _ in range(permutations):
        bits = rng.getrandbits(len(nonzero))
        kept = math.fsum(d for i, d in enumerate(nonzero) if bits >> i & 1)
        hits += abs(2 * kept - total) >= observed
    return (hits + 1) / (permutations + 1)


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
    A task's type is the baseline's.
    """
    if k is not None and k < 1:
        raise ConfigError(f"must be at least 1, not {k}", key="k")
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
    )


# ---------------------------------------------------------------- files


def load_scores(path: str, *, options: ReadOptions | None = None) -> tuple[list[Score], ReadReport]:
    """Read one rollout file (or folder, glob) into scores; quarantined lines are counted, not scored."""
    report = ReadReport()
    scores = [
        Score(item.task_key, item.task_type, item.reward, item.success)
        for item in read_rollouts([path], options=options, report=report)
        if isinstance(item, Rollout)
    ]
    return scores, report


def evaluate_files(
    baseline: str,
    candidate: str,
    *,
    options: ReadOptions | None = None,
    k: int | None = None,
    bootstrap_samples: int = 5000,
    permutations: int = 5000,
    seed: int = 0,
) -> Comparison:
    """Read, pair and compare two rollout files; ``inputs`` records what each file held.

    Raises :class:`~rollcraft.InputError` when a file holds no rollout (the message says what it
    looks like) or the files share no task.
    """
    base, base_report = load_scores(baseline, options=options)
    require_rollouts(base_report, label=f"the baseline ({baseline})")
    cand, cand_report = load_scores(candidate, options=options)
    require_rollouts(cand_report, label=f"the candidate ({candidate})")
    result = compare(
        base, cand, k=k, bootstrap_samples=bootstrap_samples, permutations=permutations, seed=seed
    )
    if result.paired_tasks == 0:
        raise InputError(f"{baseline} and {candidate} share no task key (is --task-key right?)")
    result.inputs = {
        "baseline": _input_facts(baseline, base, base_report),
        "candidate": _input_facts(candidate, cand, cand_report),
    }
    result.reads = {"baseline": base_report, "candidate": cand_report}
    return result


def _input_facts(path: str, scores: list[Score], report: ReadReport) -> dict[str, Any]:
    return {
        "path": path,
        "lines": report.lines,
        "rollouts": len(scores),
        "tasks": len({s.task_key for s in scores}),
        "quarantined": dict(report.quarantined),
    }


# ---------------------------------------------------------------- HTML


def render_html(comparison: Comparison) -> str:
    """A self-contained HTML report: the tables, and per metric a plot of both values with the CI."""
    from rollcraft._svg import esc, histogram_svg, html_page, table_html

    parts = [
        f"<p>{comparison.paired_tasks} paired tasks; only in baseline: {len(comparison.only_in_baseline)}, "
        f"only in candidate: {len(comparison.only_in_candidate)}.</p>"
    ]
    headers = ["group", "metric", "baseline", "candidate", "difference", "95% CI", "p", "verdict", "tasks"]
    parts.append(table_html(headers, _rows(comparison)))
    for metric, result in comparison.overall.items():
        parts.append(_pair_svg(metric, result))
        diffs = comparison.task_differences.get(metric, [])
        parts.append(
            histogram_svg(
                diffs, bins=21, title=f"Per-task difference: {metric}", x_label="candidate - baseline"
            )
        )
    unpaired = comparison.only_in_baseline + comparison.only_in_candidate
    if unpaired:
        parts.append("<h2>Unpaired tasks</h2><pre>" + esc("\n".join(unpaired[:200])) + "</pre>")
    return html_page("rollcraft evaluate", "".join(parts))


def _fmt(x: float) -> str:
    return f"{x:.3f}"


def _rows(comparison: Comparison) -> list[list[str]]:
    groups = [("overall", comparison.overall), *comparison.by_task_type.items()]
    rows = []
    for group, metrics in groups:
        for metric, r in metrics.items():
            name = f"pass@{r.k}" if r.k is not None else metric
            ci = f"[{r.ci95[0]:+.3f}, {r.ci95[1]:+.3f}]"
            rows.append(
                [
                    group,
                    name,
                    _fmt(r.baseline),
                    _fmt(r.candidate),
                    f"{r.difference:+.3f}",
                    ci,
                    f"{r.p_value:.3g}",
                    r.verdict,
                    str(r.n_tasks),
                ]
            )
    return rows


def _pair_svg(metric: str, result: MetricResult) -> str:
    """Two bars (baseline, candidate) on a 0..max scale, with the candidate's CI as a whisker."""
    from rollcraft._svg import esc

    width, height, left, bar_h = 560, 110, 110, 26
    top = max(result.baseline, result.candidate, result.baseline + result.ci95[1], 1e-9)
    scale = (width - left - 70) / top
    lo = max(result.baseline + result.ci95[0], 0.0) * scale + left
    hi = (result.baseline + result.ci95[1]) * scale + left
    bars = []
    for i, (label, value, color) in enumerate(
        (("baseline", result.baseline, "#9aa5b1"), ("candidate", result.candidate, "#4a78b5"))
    ):
        y = 30 + i * (bar_h + 8)
        bars.append(
            f'<text x="{left - 8}" y="{y + 17}" text-anchor="end">{label}</text>'
            f'<rect x="{left}" y="{y}" width="{value * scale:.1f}" height="{bar_h}" fill="{color}"/>'
            f'<text x="{left + value * scale + 6:.1f}" y="{y + 17}">{value:.3f}</text>'
        )
    whisker_y = 30 + bar_h + 8 + bar_h / 2
    whisker = (
        f'<line x1="{lo:.1f}" y1="{whisker_y:.1f}" x2="{hi:.1f}" y2="{whisker_y:.1f}" '
        f'stroke="#222" stroke-width="2"><title>95% CI: baseline + CI of the difference</title></line>'
    )
    title = f"{metric}: {result.verdict} (difference {result.difference:+.3f}, p={result.p_value:.3g})"
    return (
        f'<svg xmlns="http://www.w3.org/2000/svg" class="chart" width="{width}" height="{height}" '
        f'viewBox="0 0 {width} {height}" role="img" aria-label="{esc(title)}">'
        f'<text x="{width / 2:.0f}" y="18" text-anchor="middle" class="title">{esc(title)}</text>'
        + "".join(bars)
        + whisker
        + "</svg>"
    )
