"""Paired binary outcomes: which tasks flipped between two runs, and McNemar's exact test.

Rewards are *binary* when every rollout of every task both runs attempted has a reward of
exactly 0 or 1 (``0``, ``1``, ``0.0``, ``1.0``, ``true``, ``false``), in both runs. A rollout
passes when its reward is 1. A task passes in a run when more than half of its rollouts pass,
fails when fewer than half pass, and is *tied* when exactly half pass (2 of 4): a tied task is
neither, so it never counts as a flip (the rule of NeMo Gym's ``compare``). McNemar's exact
test then asks whether the fail->pass and pass->fail counts differ more than a fair coin would
make them.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from rollcraft.evaluate._score import Score
from rollcraft.evaluate._stats import mcnemar_exact

__all__ = ["FAIL_TO_PASS", "PASS_TO_FAIL", "Flip", "PairedBinary", "TaskOutcome", "paired_binary"]

FAIL_TO_PASS, PASS_TO_FAIL = "fail_to_pass", "pass_to_fail"
_PASS, _FAIL, _TIE = "pass", "fail", "tie"


@dataclass(frozen=True, slots=True)
class TaskOutcome:
    """One task in one run: how many of its rollouts passed, and their ids (file order)."""

    passed: int
    rollouts: int
    rollout_ids: tuple[str, ...]

    @property
    def state(self) -> str:
        """``pass`` (more than half passed), ``fail`` (fewer than half) or ``tie`` (exactly half)."""
        twice = 2 * self.passed
        return _PASS if twice > self.rollouts else _FAIL if twice < self.rollouts else _TIE

    def to_dict(self) -> dict[str, Any]:
        return {"passed": self.passed, "rollouts": self.rollouts, "rollout_ids": list(self.rollout_ids)}


@dataclass(frozen=True, slots=True)
class Flip:
    """A task that passed in one run and failed in the other."""

    task: str
    task_type: str
    direction: str
    baseline: TaskOutcome
    candidate: TaskOutcome

    def to_dict(self) -> dict[str, Any]:
        return {
            "task": self.task,
            "task_type": self.task_type,
            "direction": self.direction,
            "baseline": self.baseline.to_dict(),
            "candidate": self.candidate.to_dict(),
        }


@dataclass(slots=True)
class PairedBinary:
    """The 2x2 table of task outcomes (baseline x candidate), the flips and McNemar's p."""

    tasks: int
    fail_to_pass: int
    pass_to_fail: int
    both_pass: int
    both_fail: int
    tied: int
    mcnemar_p: float
    flips: list[Flip] = field(default_factory=list)
    #: Holm-adjusted p, set when several candidates are compared with one baseline.
    mcnemar_p_adjusted: float | None = None

    def to_dict(self) -> dict[str, Any]:
        data: dict[str, Any] = {
            "tasks": self.tasks,
            "fail_to_pass": self.fail_to_pass,
            "pass_to_fail": self.pass_to_fail,
            "mcnemar_p": self.mcnemar_p,
        }
        if self.mcnemar_p_adjusted is not None:
            data["mcnemar_p_adjusted"] = self.mcnemar_p_adjusted
        data.update(both_pass=self.both_pass, both_fail=self.both_fail, tied=self.tied)
        data["flips"] = [flip.to_dict() for flip in self.flips]
        return data


def _outcomes(scores: Iterable[Score]) -> dict[str, tuple[str, list[Score]]]:
    found: dict[str, tuple[str, list[Score]]] = {}
    for score in scores:
        found.setdefault(score.task_key, (score.task_type, []))[1].append(score)
    return found


def _is_binary(groups: Iterable[Sequence[Score]]) -> bool:
    return all(float(s.reward) in (0.0, 1.0) for group in groups for s in group)


def _outcome(scores: Sequence[Score]) -> TaskOutcome:
    passed = sum(1 for s in scores if float(s.reward) == 1.0)
    return TaskOutcome(passed, len(scores), tuple(s.rollout_id for s in scores))


def paired_binary(baseline: Iterable[Score], candidate: Iterable[Score]) -> PairedBinary | None:
    """The paired binary comparison of the tasks both runs attempted; None unless rewards are binary.

    Flips are listed pass->fail first, then fail->pass, each by task key. A task's type is the
    baseline's.

    >>> base = [Score("a", "t", 0.0, False), Score("b", "t", 1.0, True)]
    >>> cand = [Score("a", "t", 1.0, True), Score("b", "t", 1.0, True)]
    >>> result = paired_binary(base, cand)
    >>> result.fail_to_pass, result.both_pass, result.mcnemar_p
    (1, 1, 1.0)
    """
    base, cand = _outcomes(baseline), _outcomes(candidate)
    keys = sorted(set(base) & set(cand))
    if not keys or not _is_binary([base[t][1] for t in keys] + [cand[t][1] for t in keys]):
        return None
    counts = {FAIL_TO_PASS: 0, PASS_TO_FAIL: 0, "both_pass": 0, "both_fail": 0, "tied": 0}
    flips: list[Flip] = []
    for key in keys:
        before, after = _outcome(base[key][1]), _outcome(cand[key][1])
        states = (before.state, after.state)
        if _TIE in states:
            counts["tied"] += 1
        elif states[0] == states[1]:
            counts["both_pass" if states[0] == _PASS else "both_fail"] += 1
        else:
            direction = FAIL_TO_PASS if states[1] == _PASS else PASS_TO_FAIL
            counts[direction] += 1
            flips.append(Flip(key, base[key][0], direction, before, after))
    flips.sort(key=lambda f: (f.direction != PASS_TO_FAIL, f.task))
    return PairedBinary(
        tasks=len(keys),
        fail_to_pass=counts[FAIL_TO_PASS],
        pass_to_fail=counts[PASS_TO_FAIL],
        both_pass=counts["both_pass"],
        both_fail=counts["both_fail"],
        tied=counts["tied"],
        mcnemar_p=mcnemar_exact(counts[FAIL_TO_PASS], counts[PASS_TO_FAIL]),
        flips=flips,
    )
