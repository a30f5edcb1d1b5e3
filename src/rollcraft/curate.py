"""Curation: a stratified review sample, review decisions, and balancing across categories.

Review decisions and balance are steps (:mod:`rollcraft.steps`: :class:`~rollcraft.steps.Review`,
:class:`~rollcraft.steps.Categorize`, :func:`~rollcraft.steps.choose`,
:class:`~rollcraft.steps.Select`), the same the pipeline runs; the functions here run them
alone over files. Sampling and balancing make two passes: the first keeps only (stratum, ordinal) per rollout,
the choice is made with a seeded ``random.Random`` per stratum (sorted), and the second pass
yields the chosen rollouts in input order. The same input and seed give the same output::

    >>> from rollcraft.curate import Strata, sample_for_review
    >>> picked = list(sample_for_review(["examples/rollouts"], strata=Strata(), seed=0))
"""

from __future__ import annotations

import itertools
import random
from collections import Counter, defaultdict
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from rollcraft._errors import ConfigError
from rollcraft._records import Quarantined, Rollout
from rollcraft.filters import Drop, FilterReport, relabel, rereadable
from rollcraft.read._reader import ReadOptions, ReadReport, read_rollouts
from rollcraft.review.decisions import Decision, read_decisions
from rollcraft.steps import (
    Categorize,
    Review,
    ReviewReport,
    Select,
    category_of,
    choose,
    drain,
    run_steps,
)

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


def apply_review(
    items: Iterable[Rollout | Quarantined],
    decisions: Mapping[str, Decision],
    *,
    drop_undecided: bool = False,
    report: ReviewReport | None = None,
) -> Iterator[tuple[Rollout, Drop | None]]:
    """Yield each rollout with ``Drop("review", note)`` when rejected (``None``: kept): the
    :class:`rollcraft.steps.Review` step, alone.

    Rollouts without a decision (or with a ``skip``, which is no decision) are kept, or dropped
    as ``undecided`` with ``drop_undecided``.
    When the input is exhausted, ``report.unmatched`` lists the decisions that matched nothing.

    >>> from rollcraft import read_rollouts
    >>> kept = [r for r, d in apply_review(read_rollouts(["examples/rollouts"]), {}) if d is None]
    """
    review = Review(decisions, drop_undecided, report if report is not None else ReviewReport())
    counts = FilterReport(read=review.report.read)
    yield from run_steps(items, [review], counts)
    review.report.unmatched = review.unmatched()


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
    category draws with ``random.Random(f"{seed}/{category}")`` (:func:`rollcraft.steps.choose`,
    the pipeline's ``balance:`` too); the kept rollouts come in input order. Two passes: the
    :class:`~rollcraft.steps.Categorize` step, then :class:`~rollcraft.steps.Select`.

    >>> kept = list(balance(["examples/rollouts"], max_per_category=5, seed=0))
    """
    if max_per_category < 0:
        raise ConfigError("must be >= 0", key="max_per_category")
    report = report if report is not None else BalanceReport()
    with rereadable(paths) as sources:
        categorize = Categorize(by)
        counts = FilterReport(read=report.read)
        drain(run_steps(read_rollouts(sources, options=options), [categorize], counts))
        choice = choose(categorize.log, max_per_category, seed)
        report.before.update(choice.before)
        report.after.update(choice.after)
        select = [Select(choice.selected)]
        second = run_steps(read_rollouts(sources, options=options), select, FilterReport())
        kept = (rollout for rollout, drop in second if drop is None)
        for item in relabel(kept, sources, paths):
            if isinstance(item, Rollout):
                yield item
