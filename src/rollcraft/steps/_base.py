"""What a step is, and the one runner that runs a list of them.

A run is a list of steps over one stream of read lines. There are three kinds, by what they
take and give (each a small protocol; a step is whichever one it implements):

* a :class:`Rewrite` takes the read items (rollouts and quarantined lines) and yields them,
  perhaps changed (secret redaction);
* a :class:`~rollcraft.filters.Filter` is a check: ``check(rollout)`` returns ``None`` (keep)
  or the reason it drops the rollout;
* a :class:`Stage` takes the judged stream, ``(rollout, drop)`` pairs (``drop`` is ``None``
  while the rollout is kept), and yields it: it may drop a kept rollout (review, balance),
  note what it sees (balance's categories) or write (the kept lines, the rejects, SFT rows, DPO
  candidates). A dropped rollout flows on to the end, so a rejects writer sees it.

:func:`run_steps` runs the rewrites, then the filters as one judged group (each rollout
dropped by the first filter that drops it, and counted for every filter that would drop it
alone: :func:`rollcraft.filters.judge`), then the stages, in list order. Each step keeps its
own counts in its ``report``, and reports add (``a + b``), so what shards and workers counted
adds up to what one process would have.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from typing import Protocol, runtime_checkable

from rollcraft._records import Quarantined, Rollout
from rollcraft.filters import Drop, Filter, FilterReport, judge

__all__ = ["Item", "Judged", "Rewrite", "Stage", "Step", "drain", "run_steps"]

#: What the reader yields: a rollout or a quarantined line.
Item = Rollout | Quarantined
#: A rollout and why it was dropped (``None``: kept so far).
Judged = tuple[Rollout, Drop | None]


@runtime_checkable
class Rewrite(Protocol):
    """A step over the read items, before any filter: yields each item, perhaps rewritten."""

    def rewrite(self, items: Iterable[Item], /) -> Iterator[Item]: ...


@runtime_checkable
class Stage(Protocol):
    """A step over the judged stream, after the filters: yields every pair it is given."""

    @property
    def name(self) -> str:
        """The step's name (a drop's ``dropped_by`` when it drops)."""
        ...

    def run(self, judged: Iterator[Judged], /) -> Iterator[Judged]: ...


#: A step of a run (see the module docstring).
Step = Rewrite | Filter | Stage


def run_steps(items: Iterable[Item], steps: Sequence[Step], report: FilterReport) -> Iterator[Judged]:
    """Run ``steps`` over ``items``; yields what the last step yields. ``report`` counts the
    lines read and the filters' drops (``kept + sum(dropped) == read.rollouts``).

    The steps come in kind order: rewrites, then filters, then stages (a step out of that order
    is a programming error, raised as ``ValueError``).

    >>> from rollcraft import read_rollouts
    >>> from rollcraft.filters import MinReward
    >>> report = FilterReport()
    >>> kept = [r for r, drop in run_steps(read_rollouts(["examples/rollouts"]), [MinReward(1.0)], report)
    ...         if drop is None]
    """
    rewrites, filters, stages = _kinds(steps)
    for step in rewrites:
        items = step.rewrite(items)
    judged: Iterator[Judged] = judge(items, filters, report)
    for stage in stages:
        judged = stage.run(judged)
    return judged


def drain(judged: Iterable[Judged]) -> None:
    """Run a stream to its end (its stages write and count as it goes)."""
    for _ in judged:
        pass


def _kinds(steps: Sequence[Step]) -> tuple[list[Rewrite], list[Filter], list[Stage]]:
    rewrites: list[Rewrite] = []
    filters: list[Filter] = []
    stages: list[Stage] = []
    for step in steps:
        if isinstance(step, Rewrite):
            if filters or stages:
                raise ValueError("a rewrite after a filter or stage: rewrites run first")
            rewrites.append(step)
        elif isinstance(step, Stage):
            stages.append(step)
        elif hasattr(step, "check"):
            if stages:
                raise ValueError(f"filter {step.name!r} after a stage: filters run before stages")
            filters.append(step)
        else:
            raise ValueError(f"not a step: {step!r}")
    return rewrites, filters, stages
