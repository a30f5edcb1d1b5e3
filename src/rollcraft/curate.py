"""Curation: a stratified review sample, review decisions, and balancing across categories.

Sampling and balancing make two passes: the first keeps only (stratum, ordinal) per rollout,
the choice is made with a seeded ``random.Random`` per stratum (sorted), and the second pass
yields the chosen rollouts in input order. The same input and seed give the same output::

    >>> from rollcraft.curate import Strata, sample_for_review
    >>> picked = list(sample_for_review(["examples/rollouts"], strata=Strata(), seed=0))
"""

from __future__ import annotations

import itertools
import random
from collections import Counter, defaultdict
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

import orjson

from rollcraft._errors import ConfigError
from rollcraft._read import ReadOptions, ReadReport, read_rollouts
from rollcraft._records import Quarantined, Rollout
from rollcraft.filters import Drop, relabel, rereadable
from rollcraft.review.decisions import Decision, read_decisions

__all__ = [
    "BalanceReport",
    "Decision",
    "ReviewReport",
    "SampleReport",
    "Strata",
    "apply_review",
    "balance",
    "category_of",
    "read_decisions",
    "sample_for_review",
]

MISSING = "(missing)"
#: The category of a value nested deeper than can be written as JSON text (254 levels).
TOO_DEEP = "(too deeply nested)"


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


# ---------------------------------------------------------------------------------------------
# Review sample


@dataclass(frozen=True, slots=True)
class Strata:
    """Reward bands and how many rollouts to draw from each.

    ``edges`` split rewards into ``len(edges) + 1`` bands (each band includes its lower edge);
    ``sizes`` gives one count per band. The default is the tutorial's: reward < 0.5: 10,
    0.5-0.8: 20, >= 0.8: 20.

    >>> Strata().labels
    ['<0.5', '0.5-0.8', '>=0.8']
    """

    edges: tuple[float, ...] = (0.5, 0.8)
    sizes: tuple[int, ...] = (10, 20, 20)

    def __post_init__(self) -> None:
        if list(self.edges) != sorted(set(self.edges)):
            raise ConfigError("edges must be strictly increasing", key="edges")
        if len(self.sizes) != len(self.edges) + 1:
            raise ConfigError(
                f"{len(self.edges)} edges make {len(self.edges) + 1} bands: give as many sizes", key="sizes"
            )
        if any(n < 0 for n in self.sizes):
            raise ConfigError("sizes must be >= 0", key="sizes")

    @property
    def labels(self) -> list[str]:
        e = [f"{x:g}" for x in self.edges]
        if not e:
            return ["all"]
        return [f"<{e[0]}", *(f"{a}-{b}" for a, b in itertools.pairwise(e)), f">={e[-1]}"]

    def band(self, reward: float) -> int:
        """The index of the band ``reward`` falls in."""
        return sum(reward >= edge for edge in self.edges)


@dataclass(slots=True)
class SampleReport:
    """Per (band, category): rollouts available and chosen; ``read`` counts the lines."""

    read: ReadReport = field(default_factory=ReadReport)
    available: Counter[tuple[str, str]] = field(default_factory=Counter)
    chosen: Counter[tuple[str, str]] = field(default_factory=Counter)

    def to_dict(self) -> dict[str, Any]:
        rows = [
            {"stratum": b, "category": c, "available": n, "chosen": self.chosen[(b, c)]}
            for (b, c), n in sorted(self.available.items())
        ]
        return {
            "lines": self.read.lines,
            "rollouts": self.read.rollouts,
            "chosen": sum(self.chosen.values()),
            "strata": rows,
        }


def sample_for_review(
    paths: Sequence[str],
    *,
    strata: Strata | None = None,
    by: str = "task_type",
    seed: int = 0,
    options: ReadOptions | None = None,
    report: SampleReport | None = None,
) -> Iterator[Rollout]:
    """The tutorial's stratified review sample, also stratified by ``by`` (``none`` turns that off).

    Each band's size is shared out evenly across its categories (one slot at a time, round the
    categories in an order shuffled by ``random.Random(f"{seed}/{band}")``, so which categories
    get the slots that do not divide evenly is a seeded random choice; a category with too few
    rollouts gives its share to the others); within a (band, category) the rollouts are drawn
    with ``random.Random(f"{seed}/{band}/{category}")``. Yields the chosen rollouts in input order.

    >>> picked = list(sample_for_review(["examples/rollouts"], seed=1))
    """
    strata = strata or Strata()
    report = report if report is not None else SampleReport()
    labels = strata.labels
    with rereadable(paths) as sources:
        groups = _groups(
            read_rollouts(sources, options=options),
            lambda r: (labels[strata.band(r.reward)], category_of(r, by)),
            report.read,
        )
        chosen = _sample_groups(groups, strata, labels, seed)
        report.available.update({k: len(v) for k, v in groups.items()})
        report.chosen.update({k: len(v) for k, v in chosen.items()})
        yield from _pick(relabel(read_rollouts(sources, options=options), sources, paths), chosen)


def _groups(items: Iterable[Rollout | Quarantined], key: Any, read: ReadReport) -> dict[Any, list[int]]:
    """First pass: the ordinals (item positions) of the rollouts in each group."""
    groups: dict[Any, list[int]] = defaultdict(list)
    for ordinal, item in enumerate(items):
        read.count(item)
        if isinstance(item, Rollout):
            groups[key(item)].append(ordinal)
    return dict(groups)


def _sample_groups(
    groups: dict[tuple[str, str], list[int]], strata: Strata, labels: list[str], seed: int
) -> dict[tuple[str, str], list[int]]:
    chosen: dict[tuple[str, str], list[int]] = {}
    for label, size in zip(labels, strata.sizes, strict=True):
        available = {c: len(v) for (b, c), v in groups.items() if b == label}
        for category, k in _share(size, available, random.Random(f"{seed}/{label}")).items():
            rng = random.Random(f"{seed}/{label}/{category}")
            chosen[(label, category)] = rng.sample(groups[(label, category)], k)
    return chosen


def _share(size: int, available: dict[str, int], rng: random.Random) -> dict[str, int]:
    """Share ``size`` evenly across categories, none beyond what it has (keys sorted).

    One slot at a time round the categories in an order ``rng`` shuffles: when the slots do not
    divide evenly, which categories get one more is a seeded random choice, not the first names
    in alphabetical order.

    >>> _share(5, {"a": 9, "b": 9, "c": 1}, random.Random(0))
    {'a': 2, 'b': 2, 'c': 1}
    """
    shares = dict.fromkeys(sorted(available), 0)
    order = list(shares)
    rng.shuffle(order)
    left = min(size, sum(available.values()))
    while left:
        for category in order:
            if left and shares[category] < available[category]:
                shares[category] += 1
                left -= 1
    return shares


def _pick(items: Iterable[Rollout | Quarantined], chosen: dict[Any, list[int]]) -> Iterator[Rollout]:
    """Second pass: the rollouts at the chosen ordinals, in input order."""
    wanted = {ordinal for ordinals in chosen.values() for ordinal in ordinals}
    for ordinal, item in enumerate(items):
        if ordinal in wanted and isinstance(item, Rollout):
            yield item


# ---------------------------------------------------------------------------------------------
# Review decisions

# ``Decision`` and ``read_decisions`` come from ``rollcraft.review.decisions``: the one decision
# type and reader, shared with the review server and the pipeline's review step.


@dataclass(slots=True)
class ReviewReport:
    """What applying decisions did; ``undecided`` includes the ``skipped`` (a skip is no decision);
    ``unmatched``: decision ids no rollout had."""

    read: ReadReport = field(default_factory=ReadReport)
    kept: int = 0
    accepted: int = 0
    rejected: int = 0
    skipped: int = 0
    undecided: int = 0
    dropped_undecided: int = 0
    unmatched: list[str] = field(default_factory=list)

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


def apply_review(
    items: Iterable[Rollout | Quarantined],
    decisions: dict[str, Decision],
    *,
    drop_undecided: bool = False,
    report: ReviewReport | None = None,
) -> Iterator[tuple[Rollout, Drop | None]]:
    """Yield each rollout with ``Drop("review", note)`` when rejected (``None``: kept).

    Rollouts without a decision (or with a ``skip``, which is no decision) are kept, or dropped
    as ``undecided`` with ``drop_undecided``.
    When the input is exhausted, ``report.unmatched`` lists the decisions that matched nothing.

    >>> from rollcraft import read_rollouts
    >>> kept = [r for r, d in apply_review(read_rollouts(["examples/rollouts"]), {}) if d is None]
    """
    report = report if report is not None else ReviewReport()
    matched: set[str] = set()
    for item in items:
        report.read.count(item)
        if isinstance(item, Rollout):
            drop = _review_one(item, decisions.get(item.rollout_id), drop_undecided, report)
            if item.rollout_id in decisions:
                matched.add(item.rollout_id)
            yield item, drop
    report.unmatched = sorted(set(decisions) - matched)


def _review_one(
    rollout: Rollout, decision: Decision | None, drop_undecided: bool, report: ReviewReport
) -> Drop | None:
    if decision is not None and not decision.decided:
        report.skipped += 1
        decision = None
    if decision is None:
        report.undecided += 1
        if drop_undecided:
            report.dropped_undecided += 1
            return Drop("undecided", "no review decision")
        report.kept += 1
        return None
    if decision.decision == "reject":
        report.rejected += 1
        return Drop("review", decision.note or "rejected in review")
    report.accepted += 1
    report.kept += 1
    return None


# ---------------------------------------------------------------------------------------------
# Balance


@dataclass(slots=True)
class BalanceReport:
    """Rollouts per category before and after balancing."""

    read: ReadReport = field(default_factory=ReadReport)
    before: Counter[str] = field(default_factory=Counter)
    after: Counter[str] = field(default_factory=Counter)

    def to_dict(self) -> dict[str, Any]:
        rows = [{"category": c, "before": n, "after": self.after[c]} for c, n in sorted(self.before.items())]
        return {
            "lines": self.read.lines,
            "rollouts": self.read.rollouts,
            "kept": sum(self.after.values()),
            "categories": rows,
        }


def balance(
    paths: Sequence[str],
    *,
    max_per_category: int,
    by: str = "task_type",
    seed: int = 0,
    options: ReadOptions | None = None,
    report: BalanceReport | None = None,
) -> Iterator[Rollout]:
    """Keep at most ``max_per_category`` rollouts per category, a seeded random choice in each.

    Not the first N: files are in completion order, so the first N favour fast rollouts. Each
    category draws with ``random.Random(f"{seed}/{category}")``; the kept rollouts come in input order.

    >>> kept = list(balance(["examples/rollouts"], max_per_category=5, seed=0))
    """
    if max_per_category < 0:
        raise ConfigError("must be >= 0", key="max_per_category")
    report = report if report is not None else BalanceReport()
    with rereadable(paths) as sources:
        groups = _groups(read_rollouts(sources, options=options), lambda r: category_of(r, by), report.read)
        chosen = {c: _draw(v, max_per_category, f"{seed}/{c}") for c, v in sorted(groups.items())}
        report.before.update({c: len(v) for c, v in groups.items()})
        report.after.update({c: len(v) for c, v in chosen.items()})
        yield from _pick(relabel(read_rollouts(sources, options=options), sources, paths), chosen)


def _draw(ordinals: list[int], k: int, seed: str) -> list[int]:
    return ordinals if len(ordinals) <= k else random.Random(seed).sample(ordinals, k)
