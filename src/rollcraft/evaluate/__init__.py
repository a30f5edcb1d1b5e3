"""Did training help? Compare baseline and candidate rollouts of the same held-out tasks.

Rollouts are paired by task key. Per task, each file gives a mean reward, a success rate and,
where every task has several rollouts, pass@k (the unbiased estimator of Chen et al., 2021).
A metric's value is the mean over paired tasks; its difference (candidate - baseline) gets a
paired bootstrap 95% confidence interval (tasks resampled with replacement) and a paired
sign-flip permutation test (exact for up to 16 tasks with a non-zero difference). The verdict
is ``improved`` or ``regressed`` when the interval excludes zero and p < 0.05, else ``no
significant change``. Everything is pure Python and seeded: the same inputs give the same
numbers.

When every reward is 0 or 1, ``paired_binary`` lists the tasks that flipped and McNemar's
exact p (``_binary``). Several candidates against one baseline are Holm-adjusted
(``evaluate_many``). ``plan_run`` sizes a run from the baseline's variance (``_plan``), and
NeMo Gym's ``X_aggregate_metrics.json`` beside a rollout file is read into ``inputs``
(``_gym``).

>>> from rollcraft.evaluate import Score, compare
>>> base = [Score(f"t{i}", "math", 0.0, False) for i in range(30)]
>>> cand = [Score(f"t{i}", "math", 1.0, True) for i in range(30)]
>>> compare(base, cand).overall["success_rate"].verdict
'improved'
"""

from __future__ import annotations

from rollcraft.evaluate._binary import (
    FAIL_TO_PASS,
    PASS_TO_FAIL,
    Flip,
    PairedBinary,
    TaskOutcome,
    paired_binary,
)
from rollcraft.evaluate._compare import (
    IMPROVED,
    METRICS,
    NO_CHANGE,
    REGRESSED,
    Comparison,
    MetricResult,
    adjust_candidates,
    compare,
)
from rollcraft.evaluate._files import evaluate_files, evaluate_many, load_scores, read_run
from rollcraft.evaluate._gym import aggregate_metrics_path, read_aggregate_metrics
from rollcraft.evaluate._html import binary_summary, render_html
from rollcraft.evaluate._plan import (
    PLAN_METRICS,
    PlanRow,
    RunPlan,
    plan_run,
    task_correlation,
    variance_components,
)
from rollcraft.evaluate._score import Score
from rollcraft.evaluate._stats import (
    bootstrap_ci,
    holm_bonferroni,
    mcnemar_exact,
    pass_at_k,
    permutation_p_value,
)

__all__ = [
    "FAIL_TO_PASS",
    "IMPROVED",
    "METRICS",
    "NO_CHANGE",
    "PASS_TO_FAIL",
    "PLAN_METRICS",
    "REGRESSED",
    "Comparison",
    "Flip",
    "MetricResult",
    "PairedBinary",
    "PlanRow",
    "RunPlan",
    "Score",
    "TaskOutcome",
    "adjust_candidates",
    "aggregate_metrics_path",
    "binary_summary",
    "bootstrap_ci",
    "compare",
    "evaluate_files",
    "evaluate_many",
    "holm_bonferroni",
    "load_scores",
    "mcnemar_exact",
    "paired_binary",
    "pass_at_k",
    "permutation_p_value",
    "plan_run",
    "read_aggregate_metrics",
    "read_run",
    "render_html",
    "task_correlation",
    "variance_components",
]
