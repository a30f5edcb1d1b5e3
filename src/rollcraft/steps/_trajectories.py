"""``--trajectory branches`` as a step: after each kept rollout, the other model-visible
conversations of its ``ng_trajectory`` (each subagent's, each context before a compaction) as
rollouts of their own (:func:`rollcraft.read._trajectory.trajectory_rollouts`), for the row writers."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field

from rollcraft.read._normalize import ReasoningMode
from rollcraft.read._trajectory import trajectory_rollouts
from rollcraft.steps._base import Judged

__all__ = ["ExpandTrajectories"]


@dataclass(slots=True)
class ExpandTrajectories:
    """Yield each pair, then, after a kept rollout, its trajectory's other conversations as kept
    rollouts. They are rows, not input lines: place it after the kept and rejects writers. One
    carrying a flag of ``drop_flags`` (a ``trajectory_gap`` of its own) is left out and counted."""

    reasoning: ReasoningMode = "separate"
    drop_flags: frozenset[str] = frozenset()
    added: int = 0
    left_out: Counter[str] = field(default_factory=Counter)
    name: str = "trajectory_branches"

    def run(self, judged: Iterator[Judged]) -> Iterator[Judged]:
        for rollout, drop in judged:
            yield rollout, drop
            if drop is not None:
                continue
            for extra in trajectory_rollouts(rollout, "branches", reasoning=self.reasoning)[1:]:
                flagged = sorted(extra.flags & self.drop_flags)
                if flagged:
                    self.left_out[flagged[0]] += 1
                    continue
                self.added += 1
                yield extra, None
