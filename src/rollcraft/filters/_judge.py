"""Running steps: the first drop of each rollout and what each step alone would drop
(:func:`judge`, :func:`run_filters`), counted in a :class:`FilterReport`."""

from __future__ import annotations

import dataclasses
from collections import Counter
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

from rollcraft._records import Quarantined, Rollout
from rollcraft.filters._base import Drop, Filter
from rollcraft.read._reader import ReadReport


@dataclass(slots=True)
class FilterReport:
    """What filtering did; reports add (``a + b``), so per-worker reports merge.

    ``dropped``: per step, the rollouts it dropped first (config order); ``alone``: what each
    step would drop on its own. ``kept + sum(dropped) == read.rollouts`` always holds.
    """

    read: ReadReport = field(default_factory=ReadReport)
    steps: list[str] = field(default_factory=list)
    kept: int = 0
    dropped: Counter[str] = field(default_factory=Counter)
    alone: Counter[str] = field(default_factory=Counter)
    examples: dict[str, str] = field(default_factory=dict)

    def count(self, drop: Drop | None, alone: Iterable[str] = ()) -> None:
        if alone:
            self.alone.update(alone)
        if drop is None:
            self.kept += 1
            return
        self.dropped[drop.by] += 1
        self.examples.setdefault(drop.by, drop.reason)

    def dropped_later(self, drop: Drop) -> None:
        """A rollout the filters kept and a later step dropped (one replace-mode redaction cannot
        redact): counted as that step's drop, so ``kept + sum(dropped)`` still adds up."""
        if drop.by not in self.steps:
            self.steps.append(drop.by)
        self.kept -= 1
        self.alone[drop.by] += 1
        self.count(drop)

    @property
    def total(self) -> int:
        return self.read.rollouts

    @property
    def balanced(self) -> bool:
        return self.read.balanced and self.kept + sum(self.dropped.values()) == self.read.rollouts

    def summary_line(self) -> str:
        """``Kept K/T rollouts (P%)``, as the tutorial prints it."""
        share = 100.0 * self.kept / self.total if self.total else 0.0
        return f"Kept {self.kept}/{self.total} rollouts ({share:.1f}%)"

    def __add__(self, other: FilterReport) -> FilterReport:
        return FilterReport(
            self.read + other.read,
            list(dict.fromkeys([*self.steps, *other.steps])),
            self.kept + other.kept,
            self.dropped + other.dropped,
            self.alone + other.alone,
            {**other.examples, **self.examples},
        )

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-ready data (what ``--report`` writes)."""
        read = self.read
        return {
            "lines": read.lines,
            "rollouts": read.rollouts,
            "kept": self.kept,
            "dropped": sum(self.dropped.values()),
            "quarantined": dict(sorted(read.quarantined.items())),
            "balanced": self.balanced,
            "steps": [
                {
                    "filter": s,
                    "dropped": self.dropped[s],
                    "alone": self.alone[s],
                    "example": self.examples.get(s),
                }
                for s in self.steps
            ],
            "quarantine_examples": [
                {"source": q.source, "line": q.line, "reason": q.reason, "detail": q.detail}
                for q in read.quarantine_examples
            ],
        }


class _Judge:
    """Runs the steps: the first drop in order, and every step's own verdict (for ``alone``).

    Stateful steps (dedupe) get a twin that sees every rollout, so ``alone`` means alone.
    """

    def __init__(self, steps: Sequence[Filter]) -> None:
        self.pairs = [(s, _twin(s) if getattr(s, "stateful", False) else None) for s in steps]
        self.plain = None if any(twin is not None for _, twin in self.pairs) else list(steps)

    def __call__(self, rollout: Rollout) -> tuple[Drop | None, list[str]]:
        first: Drop | None = None
        alone: list[str] = []
        if self.plain is not None:  # no stateful step: each step's verdict is its own (the usual case)
            for step in self.plain:
                own = step.check(rollout)
                if own is not None:
                    alone.append(step.name)
                    if first is None:
                        first = Drop(step.name, own)
            return first, alone
        for step, twin in self.pairs:
            own = step.check(rollout) if twin is None or first is None else None
            if (own if twin is None else twin.check(rollout)) is not None:
                alone.append(step.name)
            if first is None and own is not None:
                first = Drop(step.name, own)
        return first, alone


def _twin(step: Filter) -> Filter:
    """A stateful step's twin: its own ``twin()`` when it has one, else a fresh copy."""
    make = getattr(step, "twin", None)
    return make() if make is not None else dataclasses.replace(step)  # type: ignore[type-var]


def judge(
    items: Iterable[Rollout | Quarantined], steps: Sequence[Filter], report: FilterReport
) -> Iterator[tuple[Rollout, Drop | None]]:
    """Yield each rollout with the :class:`Drop` that removed it (``None``: kept); count everything.

    Quarantined items are counted in ``report.read`` and not yielded.

    >>> from rollcraft import read_rollouts
    >>> report = FilterReport()
    >>> pairs = list(judge(read_rollouts(["examples/rollouts"]), [MinReward(1.0)], report))
    >>> report.kept + sum(report.dropped.values()) == report.read.rollouts
    True
    """
    run = _Judge(steps)
    report.steps = list(dict.fromkeys([*report.steps, *(s.name for s in steps)]))
    read = report.read
    for item in items:
        read.count(item)
        if isinstance(item, Rollout):
            drop, alone = run(item)
            if drop is None and not alone:
                report.kept += 1  # FilterReport.count, for the common case
            else:
                report.count(drop, alone)
            yield item, drop


def run_filters(
    items: Iterable[Rollout | Quarantined], steps: Sequence[Filter], report: FilterReport
) -> Iterator[Rollout]:
    """Yield the rollouts every step keeps (see :func:`judge` for the dropped ones too).

    >>> from rollcraft import read_rollouts
    >>> kept = list(run_filters(read_rollouts(["examples/rollouts"]), [SuccessOnly()], FilterReport()))
    """
    return (rollout for rollout, drop in judge(items, steps, report) if drop is None)
