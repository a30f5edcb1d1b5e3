"""Choosing DPO pairs per task: candidates ranked by reward, then best-worst, all or top-k pairs
over a margin (tasks of one rollout, or all tied, are counted and skipped).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, NamedTuple, TypeVar

from rollcraft.formats._spill import Entry

if TYPE_CHECKING:
    from rollcraft.formats.dpo import DpoOptions, DpoReport


class Candidate(NamedTuple):
    """What the first pass keeps of a rollout: enough to choose pairs and find the line again.

    A named tuple: one is made per rollout (a frozen dataclass's ``__init__`` costs 3x more).
    """

    reward: float
    rollout_id: str
    locator: tuple[str, int]


@dataclass(frozen=True, slots=True)
class PlannedPair:
    task_key: str
    chosen: Candidate
    rejected: Candidate


class _Ranked(NamedTuple):
    reward: float
    order: int | str  # the rollout id's 64 bits, or the id itself
    number: int


def _rank(item: _Ranked | Entry) -> tuple[float, int | str]:
    """How a task's candidates are ranked: by reward, high first, then by rollout id."""
    return -item.reward, item.order


def plan_pairs(
    groups: dict[str, list[Candidate]], options: DpoOptions, report: DpoReport
) -> list[PlannedPair]:
    """Choose pairs per task (tasks in sorted key order; deterministic tie-breaking by rollout id)."""
    planned: list[PlannedPair] = []
    for task_key in sorted(groups):
        _plan_task(task_key, groups[task_key], options, report, planned)
    return planned


def _plan_task(
    task_key: str,
    candidates: list[Candidate],
    options: DpoOptions,
    report: DpoReport,
    planned: list[PlannedPair],
) -> None:
    ranked = sorted(candidates, key=lambda c: (-c.reward, c.rollout_id))
    planned.extend(PlannedPair(task_key, c, r) for c, r in _task_pairs(ranked, options, report))


_C = TypeVar("_C", Candidate, "_Ranked", Entry)


def _task_pairs(ranked: list[_C], options: DpoOptions, report: DpoReport) -> list[tuple[_C, _C]]:
    """The pairs of one task's ranked candidates (the task counted in ``report``)."""
    if not _plannable(ranked, report):
        return []
    pairs = _choose(ranked, options)
    if not pairs:
        report.skipped_tasks["under_margin"] += 1
    return pairs


def _choose(ranked: list[_C], options: DpoOptions) -> list[tuple[_C, _C]]:
    def ok(chosen: _C, rejected: _C) -> bool:
        margin = chosen.reward - rejected.reward
        return margin > 0 and margin >= options.min_margin

    if options.pairing == "best-worst":
        candidates = [(ranked[0], ranked[-1])]
    elif options.pairing == "all":
        candidates = [(a, b) for i, a in enumerate(ranked) for b in ranked[i + 1 :]]
    else:
        k = max(1, options.k)
        best, worst = ranked[:k], ranked[::-1][:k]
        candidates = [(a, b) for a in best for b in worst if a is not b]
    return [(a, b) for a, b in candidates if ok(a, b)]


def _plannable(ranked: Sequence[_Ranked] | Sequence[Candidate] | Sequence[Entry], report: DpoReport) -> bool:
    """Counts the task; whether it has two or more rollouts that are not all tied."""
    report.tasks += 1
    if len(ranked) < 2:
        report.skipped_tasks["single_rollout"] += 1
        return False
    report.tasks_with_two_or_more += 1
    if ranked[0].reward == ranked[-1].reward:
        report.skipped_tasks["all_tied"] += 1
        return False
    return True
