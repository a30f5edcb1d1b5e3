"""The review step: the reviewers' decisions applied to the kept rollouts (:class:`Review`)."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

from rollcraft._records import Rollout
from rollcraft.filters import Drop
from rollcraft.read._reader import ReadReport
from rollcraft.review.decisions import Decision
from rollcraft.steps._base import Judged

__all__ = ["Review", "ReviewReport"]

#: A rejected rollout's drop reason when its decision has no note.
REJECTED = "rejected in review"


@dataclass(slots=True)
class ReviewReport:
    """What applying decisions did; ``undecided`` includes the ``skipped`` (a skip is no decision);
    ``unmatched``: decision ids no rollout had. Reports add (``unmatched`` is the caller's to set)."""

    read: ReadReport = field(default_factory=ReadReport)
    kept: int = 0
    accepted: int = 0
    rejected: int = 0
    skipped: int = 0
    undecided: int = 0
    dropped_undecided: int = 0
    unmatched: list[str] = field(default_factory=list)

    @property
    def matched(self) -> int:
        """The rollouts that had a decision (accepted or rejected)."""
        return self.accepted + self.rejected

    def __add__(self, other: ReviewReport) -> ReviewReport:
        return ReviewReport(
            self.read + other.read,
            self.kept + other.kept,
            self.accepted + other.accepted,
            self.rejected + other.rejected,
            self.skipped + other.skipped,
            self.undecided + other.undecided,
            self.dropped_undecided + other.dropped_undecided,
            sorted({*self.unmatched, *other.unmatched}),
        )

    def to_dict(self) -> dict[str, Any]:
        return {
            "lines": self.read.lines,
            "rollouts": self.read.rollouts,
            "kept": self.kept,
            "accepted": self.accepted,
            "rejected": self.rejected,
            "skipped": self.skipped,
            "undecided": self.undecided,
            "dropped_undecided": self.dropped_undecided,
            "unmatched_decisions": len(self.unmatched),
            "unmatched_ids": self.unmatched[:50],
        }


@dataclass(slots=True)
class Review:
    """Drop each kept rollout a reviewer rejected (``Drop("review", note)``); with
    ``drop_undecided``, also each one without a decision (``Drop("undecided", ...)``).

    ``seen`` collects the decided ids that some rollout had, for the decisions that matched none.
    """

    decisions: Mapping[str, Decision]
    drop_undecided: bool = False
    report: ReviewReport = field(default_factory=ReviewReport)
    seen: set[str] = field(default_factory=set)
    name: str = "review"

    def run(self, judged: Iterator[Judged]) -> Iterator[Judged]:
        for rollout, drop in judged:
            yield rollout, drop if drop is not None else self._judge(rollout)

    def unmatched(self) -> list[str]:
        """The decisions' ids that no rollout had (once the stream is done), sorted."""
        return sorted(set(self.decisions) - self.seen)

    def _judge(self, rollout: Rollout) -> Drop | None:
        report = self.report
        decision = self.decisions.get(rollout.rollout_id)
        if decision is not None:
            self.seen.add(rollout.rollout_id)
            if not decision.decided:
                report.skipped += 1
                decision = None
        if decision is None:
            report.undecided += 1
            if self.drop_undecided:
                report.dropped_undecided += 1
                return Drop("undecided", "no review decision")
            report.kept += 1
            return None
        if decision.decision == "reject":
            report.rejected += 1
            return Drop("review", decision.note or REJECTED)
        report.accepted += 1
        report.kept += 1
        return None
