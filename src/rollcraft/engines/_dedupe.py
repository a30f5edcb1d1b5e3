"""``filters.dedupe`` over shards: a first pass logs each rollout's conversation key, in input
order; the parent decides, as one streaming :class:`~rollcraft.filters.Dedupe` would, which
rollouts are duplicates; later passes, in any number of processes, look the decisions up.

What one ``Dedupe`` step decides depends on every rollout before it: it drops a rollout that
reaches it (no earlier step dropped it) when an earlier rollout that reached it had the same
conversation, and its twin (for the "alone would drop" counts, see ``filters._judge._Judge``) when
any earlier rollout had. The log keeps, per rollout, its key and whether it reached the step;
a :class:`Decider` replays both in input order and keeps a decision only for duplicates.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import ClassVar

from rollcraft._compact import FirstSeen
from rollcraft._records import Rollout
from rollcraft.filters import conversation_key
from rollcraft.steps import Judged

__all__ = ["Decider", "Decisions", "DedupeLog", "Entry", "LaterDrops", "PlannedDedupe"]

#: (source, offset) -> (the step's drop reason or None, whether its twin drops): duplicates only.
Decisions = Mapping[tuple[str, int], tuple[str | None, bool]]
#: One rollout: where it is, its conversation key, its id, whether it reached the step, and the
#: first drop of a filter after the step, as (step, reason) (see :class:`LaterDrops`).
Entry = tuple[tuple[str, int], bytes, str, bool, tuple[str, str] | None]


@dataclass(slots=True)
class DedupeLog:
    """A first pass's stand-in for the dedupe step: drops nothing, logs every rollout.

    The real step is asked only about the rollouts that reach it, the twin about all, the real
    one first: a rollout the twin sees just after the real step did is logged once.
    """

    entries: list[Entry] = field(default_factory=list)
    name: ClassVar[str] = "dedupe"
    stateful: ClassVar[bool] = True

    def check(self, rollout: Rollout) -> str | None:
        self.entries.append(_entry(rollout, reached=True))
        return None

    def twin(self) -> _DedupeLogTwin:
        return _DedupeLogTwin(self)


@dataclass(frozen=True, slots=True)
class _DedupeLogTwin:
    log: DedupeLog
    name: ClassVar[str] = "dedupe"

    def check(self, rollout: Rollout) -> str | None:
        entries = self.log.entries
        if not entries or entries[-1][0] != (rollout.source, rollout.offset):
            entries.append(_entry(rollout, reached=False))
        return None


def _entry(rollout: Rollout, *, reached: bool) -> Entry:
    key = conversation_key(rollout.conversation)
    return (rollout.source, rollout.offset), key, rollout.rollout_id, reached, None


@dataclass(frozen=True, slots=True)
class LaterDrops:
    """A first pass's stage right after the filters: notes in the log which filter after dedupe
    dropped a rollout that reached dedupe first. The log's stand-in drops nothing, so such a
    filter counted the rollouts dedupe drops; the parent takes them back (:class:`Decider`)."""

    log: DedupeLog
    name: ClassVar[str] = "dedupe"

    def run(self, judged: Iterator[Judged]) -> Iterator[Judged]:
        entries = self.log.entries
        for rollout, drop in judged:
            if drop is not None and entries:
                last = entries[-1]  # the judge logs a rollout, then yields it
                if last[3] and last[0] == (rollout.source, rollout.offset):
                    entries[-1] = (*last[:4], (drop.by, drop.reason))
            yield rollout, drop


@dataclass(slots=True)
class Decider:
    """The decisions of one streaming dedupe step, fed the logs one shard at a time (in input order)."""

    decisions: dict[tuple[str, int], tuple[str | None, bool]] = field(default_factory=dict)
    #: The rollouts the step drops, those its twin drops, and the step's first reason.
    dropped: int = 0
    twins: int = 0
    example: str | None = None
    #: Per filter after the step: the rollouts it dropped first in the shards' counts that the
    #: step drops, and its first reason among those it does drop.
    taken_back: Counter[str] = field(default_factory=Counter)
    later_examples: dict[str, str] = field(default_factory=dict)
    #: Every key seen: the id of the first rollout with it that reached the step, else None
    #: (one dict for the step and its twin, as in ``filters._DedupeMemory``).
    _first: FirstSeen = field(default_factory=FirstSeen)

    def feed(self, entries: Iterable[Entry]) -> None:
        memory = self._first
        for locator, key, rollout_id, reached, later in entries:
            # As the streaming step's memory (filters._dedupe): the key is the rollout's when it
            # reached the step and the key has no first id yet; remembered either way.
            twin, first = memory.claim(key, rollout_id if reached else None)
            reason = f"duplicate of {first}" if reached and first is not None else None
            if reason is not None or twin:
                self.decisions[locator] = (reason, twin)
                self.twins += twin
                if reason is not None:
                    self.dropped += 1
                    self.example = self.example or reason
            if later is not None:
                if reason is not None:
                    self.taken_back[later[0]] += 1
                else:
                    self.later_examples.setdefault(*later)


@dataclass(frozen=True, slots=True)
class PlannedDedupe:
    """The dedupe step of a pass over a shard: looks up what the :class:`Decider` decided."""

    decisions: Decisions
    as_twin: bool = False
    name: ClassVar[str] = "dedupe"
    stateful: ClassVar[bool] = True

    def check(self, rollout: Rollout) -> str | None:
        decision = self.decisions.get((rollout.source, rollout.offset))
        if decision is None:
            return None
        if self.as_twin:
            return "duplicate" if decision[1] else None
        return decision[0]

    def twin(self) -> PlannedDedupe:
        return PlannedDedupe(self.decisions, as_twin=True)
