"""Reading rollout files into scores and comparing them: one candidate, or several with Holm."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from rollcraft._errors import InputError
from rollcraft._records import Rollout
from rollcraft.evaluate._compare import Comparison, adjust_candidates, compare
from rollcraft.evaluate._gym import read_aggregate_metrics
from rollcraft.evaluate._score import Score
from rollcraft.read._inspect import require_rollouts
from rollcraft.read._reader import ReadOptions, ReadReport, read_rollouts

__all__ = ["evaluate_files", "evaluate_many", "load_scores", "read_run"]


def load_scores(path: str, *, options: ReadOptions | None = None) -> tuple[list[Score], ReadReport]:
    """Read one rollout file (or folder, glob) into scores; quarantined lines are counted, not scored."""
    report = ReadReport()
    scores = [
        Score(item.task_key, item.task_type, item.reward, item.success, item.rollout_id)
        for item in read_rollouts([path], options=options, report=report)
        if isinstance(item, Rollout)
    ]
    return scores, report


def read_run(path: str, role: str, *, options: ReadOptions | None = None) -> tuple[list[Score], ReadReport]:
    """:func:`load_scores`, refusing a file of no rollouts (an ``InputError`` naming ``role``)."""
    scores, report = load_scores(path, options=options)
    require_rollouts(report, label=f"the {role} ({path})")
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
    return evaluate_many(
        baseline,
        [candidate],
        options=options,
        k=k,
        bootstrap_samples=bootstrap_samples,
        permutations=permutations,
        seed=seed,
    )[0]


def evaluate_many(
    baseline: str,
    candidates: Sequence[str],
    *,
    options: ReadOptions | None = None,
    k: int | None = None,
    bootstrap_samples: int = 5000,
    permutations: int = 5000,
    seed: int = 0,
) -> list[Comparison]:
    """Compare each candidate file with one baseline; with several, Holm-adjust across them.

    See :func:`~rollcraft.evaluate.adjust_candidates`: each result gets ``p_adjusted`` and its
    verdict is decided on it. One candidate gives exactly :func:`evaluate_files`' result.
    """
    if not candidates:
        raise InputError("no candidate file to compare with the baseline")
    base, base_report = read_run(baseline, "baseline", options=options)
    base_facts = _input_facts(baseline, base, base_report)
    results = []
    for candidate in candidates:
        cand, cand_report = read_run(candidate, "candidate", options=options)
        result = compare(
            base, cand, k=k, bootstrap_samples=bootstrap_samples, permutations=permutations, seed=seed
        )
        if result.paired_tasks == 0:
            raise InputError(f"{baseline} and {candidate} share no task key (is --task-key right?)")
        result.inputs = {"baseline": base_facts, "candidate": _input_facts(candidate, cand, cand_report)}
        result.reads = {"baseline": base_report, "candidate": cand_report}
        results.append(result)
    adjust_candidates(results)
    return results


def _input_facts(path: str, scores: list[Score], report: ReadReport) -> dict[str, Any]:
    facts: dict[str, Any] = {
        "path": path,
        "lines": report.lines,
        "rollouts": len(scores),
        "tasks": len({s.task_key for s in scores}),
        "quarantined": dict(report.quarantined),
    }
    aggregate = read_aggregate_metrics(path)
    if aggregate is not None:
        facts["aggregate_metrics"] = aggregate
    return facts
