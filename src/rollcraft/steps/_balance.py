"""Balance as steps: :class:`Categorize` notes each kept rollout's category (a first pass),
:func:`choose` draws up to N per category (seeded), :class:`Select` keeps only those (the
next pass). :func:`category_of` is what a category is."""

from __future__ import annotations

import random
from array import array
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

import orjson

from rollcraft._compact import CategoryLog, LocatorSet
from rollcraft._errors import ConfigError
from rollcraft._records import Rollout
from rollcraft.filters import Drop
from rollcraft.steps._base import Judged

__all__ = ["MISSING", "TOO_DEEP", "Categorize", "Choice", "Select", "category_of", "choose", "draw"]

MISSING = "(missing)"
#: The category of a value nested deeper than can be written as JSON text (254 levels).
TOO_DEEP = "(too deeply nested)"
#: A rollout balance left out: its drop reason.
NOT_CHOSEN = "not chosen for its category"


def category_of(rollout: Rollout, by: str) -> str:
    """The category of a rollout: ``task_type``, ``agent``, ``task_key``, ``none``, or a record field.

    A record field may use dots (``metadata.difficulty``); a missing one is ``(missing)``.

    >>> category_of(rollout, "task_type")  # doctest: +SKIP
    'math'
    """
    if by == "none":
        return "all"
    if by in ("task_type", "task_key"):
        return str(getattr(rollout, by))
    if by == "agent":
        return rollout.agent or MISSING
    value: Any = rollout.record
    for part in by.split("."):
        value = value.get(part) if isinstance(value, dict) else None
    if value is None:
        return MISSING
    if isinstance(value, str):
        return value
    try:
        return orjson.dumps(value, option=orjson.OPT_SORT_KEYS).decode()
    except orjson.JSONEncodeError:  # nests deeper than orjson writes: one category for all such
        return TOO_DEEP


@dataclass(slots=True)
class Categorize:
    """Note the category and locator of each kept rollout, in input order (in :attr:`log`)."""

    by: str = "task_type"
    log: CategoryLog = field(default_factory=CategoryLog)
    name: str = "categorize"

    def run(self, judged: Iterator[Judged]) -> Iterator[Judged]:
        by, log = self.by, self.log
        for rollout, drop in judged:
            if drop is None:
                log.append(category_of(rollout, by), (rollout.source, rollout.offset), rollout.line)
            yield rollout, drop


@dataclass(frozen=True, slots=True)
class Choice:
    """Balance's choice: the locators of the rollouts it keeps, and the counts per category."""

    selected: LocatorSet
    before: dict[str, int]
    after: dict[str, int]


def choose(log: CategoryLog, max_per_category: int, seed: int) -> Choice:
    """At most ``max_per_category`` of each category's rollouts, drawn with
    ``random.Random(f"{seed}/{category}")`` (not the first N: files are in completion order, so
    the first N favour fast rollouts)."""
    if max_per_category < 0:
        raise ConfigError("must be >= 0", key="max_per_category")
    groups = log.groups()
    chosen = array("I")  # the chosen entries' numbers
    before, after = {}, {}
    for category in sorted(groups):
        members = groups[category]
        picked = draw(members, max_per_category, f"{seed}/{category}")
        chosen.extend(picked)
        before[category], after[category] = len(members), len(picked)
    del groups
    selected = LocatorSet((log.locator(index) for index in chosen), lines=(log.line(i) for i in chosen))
    return Choice(selected, before, after)


def draw(members: Sequence[int], k: int, seed: str) -> Sequence[int]:
    """``k`` of ``members`` (all when there are no more), a seeded choice, in their order."""
    if len(members) <= k:
        return members
    return [members[i] for i in sorted(random.Random(seed).sample(range(len(members)), k))]


@dataclass(slots=True)
class Select:
    """Drop each kept rollout balance did not choose (``Drop("balance", ...)``), counting them."""

    selected: LocatorSet
    dropped: int = 0
    name: str = "balance"

    def run(self, judged: Iterator[Judged]) -> Iterator[Judged]:
        selected = self.selected
        for rollout, drop in judged:
            if drop is None and (rollout.source, rollout.offset) not in selected:
                self.dropped += 1
                drop = Drop("balance", NOT_CHOSEN)
            yield rollout, drop
