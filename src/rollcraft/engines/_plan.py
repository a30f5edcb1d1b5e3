"""The per-rollout work of a pipeline pass, shared by every engine.

A :class:`Plan` is everything a pass needs, picklable so worker processes can rebuild it. A
:class:`Pass` streams items through filters, review decisions and balancing, redacts what it
writes, writes SFT rows (and, when asked, the kept and the rejected lines) and collects DPO
candidates.
"""

from __future__ import annotations

import contextlib
import gc
from collections import Counter
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

from rollcraft._alloc import process_tuned, tune_process
from rollcraft._compact import CategoryLog, IdSet, LocatorSet
from rollcraft._pipeline_config import LoadedConfig, row_sections
from rollcraft._records import Quarantined, Rollout
from rollcraft.engines._dedupe import Decisions, DedupeLog, LaterDrops, PlannedDedupe
from rollcraft.filters import Dedupe, Filter, FilterConfig, FilterReport, TaskStats, build_steps
from rollcraft.formats import SftReport
from rollcraft.formats.dpo import Candidate
from rollcraft.read._reader import ReadOptions
from rollcraft.review.decisions import Decision
from rollcraft.steps import (
    SHARD_LINES,
    Categorize,
    CollectDpo,
    ExpandTrajectories,
    Review,
    Select,
    Stage,
    Step,
    TellingWriter,
    WriteKept,
    Writer,
    WriteRejects,
    WriteRows,
    drain,
    run_steps,
    with_redaction,
)

__all__ = ["SHARD_LINES", "Pass", "PassResult", "Plan", "Sinks", "few_collections", "moved_to"]


@contextlib.contextmanager
def few_collections(threshold: int = 100_000, *, own_process: bool = False) -> Iterator[None]:
    """Run the hot path with the cyclic garbage collector mostly out of the way (output unchanged).

    Decoding one long line allocates thousands of containers that stay alive until the line is
    done, so the default threshold (700) runs a young collection every few lines and, now and
    then, a full one over every imported module's objects: about 15-20% of a pass. What the pass
    makes is acyclic and freed by reference counting; the imports' objects are frozen (never
    scanned) and young collections run every ``threshold`` net allocations instead.

    Only in a process that is rollcraft's own (see :mod:`rollcraft._alloc`): the command line,
    which tunes its process first, or ``own_process=True`` (a Ray worker running rollcraft's task,
    a benchmark). A caller of the Python API keeps its collector as it was: ``gc.freeze`` and
    ``gc.unfreeze`` would also freeze and release what the caller had frozen itself.
    """
    if own_process:
        tune_process()
    elif not process_tuned():
        yield
        return
    old = gc.get_threshold()
    gc.freeze()
    gc.set_threshold(max(threshold, old[0]), old[1], old[2])
    try:
        yield
    finally:
        gc.set_threshold(*old)
        gc.unfreeze()


@dataclass(frozen=True, slots=True)
class Plan:
    """What every pass of one run shares (all of it picklable)."""

    loaded: LoadedConfig
    read_options: ReadOptions
    task_stats: TaskStats | None = None
    #: The review decisions (rollout id -> decision); None: no review step.
    decisions: Mapping[str, Decision] | None = None
    #: Balance's choice: the locators of the rollouts it keeps (None: no balance).
    selected: LocatorSet | None = None
    #: The ids (content hashes) of the lines an earlier pass over the same inputs searched for
    #: secrets and found clean: not searched again. None: search every line.
    clean_lines: IdSet | None = None
    #: ``filters.dedupe`` decided ahead, for passes over shards (see :mod:`._dedupe`); None: the
    #: streaming step.
    dedupe: Decisions | None = None
    #: What a first pass in this process counted that ran every filter, review and balance's
    #: choice over the whole input (its ``balance_dropped`` set): the main pass is then given
    #: only the chosen rollouts (read by their locators) and runs only the writers. None: the
    #: main pass judges every rollout.
    judged: PassResult | None = None

    @property
    def filters(self) -> FilterConfig:
        return self.loaded.filters

    def filter_steps(self, dedupe_log: DedupeLog | None = None) -> list[Filter]:
        """Fresh filter steps (stateful ones such as dedupe start empty); dedupe is the plan's
        decisions when it has them, or ``dedupe_log`` (a first pass over shards) when given."""
        steps = build_steps(self.filters, task_stats=self.task_stats)
        if self.dedupe is not None:
            steps = [PlannedDedupe(self.dedupe) if isinstance(s, Dedupe) else s for s in steps]
        if dedupe_log is not None:
            steps = [dedupe_log if isinstance(s, Dedupe) else s for s in steps]
        return steps

    def redaction_step(self, clean: IdSet | None = None) -> Any:
        """A fresh redaction step; ``clean`` collects the ids of the lines it finds clean."""
        from rollcraft.redact import secrets_step

        section = self.loaded.config.redact
        assert section is not None
        allowlist = self.loaded.resolve(section.allowlist) if section.allowlist else None
        return secrets_step(
            section.on_secret,
            allowlist=allowlist,
            pii=section.pii,
            options=self.read_options,
            clean=self.clean_lines,
            record_clean=clean,
        )


@dataclass(slots=True)
class PassResult:
    """What a pass (or a shard of one) counted and collected; results add up."""

    filter: FilterReport = field(default_factory=FilterReport)
    #: Per row format (``sft``, ``kto``): rows written and rollouts skipped.
    rows: dict[str, SftReport] = field(default_factory=dict)
    review_rejected: int = 0
    review_matched: int = 0
    balance_dropped: int = 0
    redaction: dict[str, Any] = field(default_factory=dict)
    dpo_excluded: Counter[str] = field(default_factory=Counter)
    dpo_rollouts: int = 0
    candidates: list[tuple[str, Candidate]] = field(default_factory=list)
    categories: CategoryLog = field(default_factory=CategoryLog)

    def __add__(self, other: PassResult) -> PassResult:
        return PassResult(
            self.filter + other.filter,
            _add_rows(self.rows, other.rows),
            self.review_rejected + other.review_rejected,
            self.review_matched + other.review_matched,
            self.balance_dropped + other.balance_dropped,
            _add_redaction(self.redaction, other.redaction),
            self.dpo_excluded + other.dpo_excluded,
            self.dpo_rollouts + other.dpo_rollouts,
            self.candidates + other.candidates,
            self.categories + other.categories,
        )

    def __getstate__(self) -> dict[str, Any]:
        """Pickled (a worker's result) with its candidates as plain tuples: pickle writes those in C,
        where each named tuple costs a Python call (twice the time for a shard's tens of thousands)."""
        state = {name: getattr(self, name) for name in self.__slots__}
        state["candidates"] = [(key, tuple(candidate)) for key, candidate in self.candidates]
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        new = tuple.__new__  # Candidate._make without its Python frame
        state["candidates"] = [(key, new(Candidate, fields)) for key, fields in state["candidates"]]
        for name, value in state.items():
            object.__setattr__(self, name, value)


def _add_rows(a: dict[str, SftReport], b: dict[str, SftReport]) -> dict[str, SftReport]:
    return {name: a.get(name, SftReport()) + b.get(name, SftReport()) for name in dict.fromkeys([*a, *b])}


def _add_redaction(a: dict[str, Any], b: dict[str, Any]) -> dict[str, Any]:
    if not a or not b:
        return a or b
    kinds = Counter(a.get("kinds", {})) + Counter(b.get("kinds", {}))
    keys = ("rollouts", "redacted", "dropped")
    return {k: a.get(k, 0) + b.get(k, 0) for k in keys} | {"kinds": dict(sorted(kinds.items()))}


@dataclass(slots=True)
class Sinks:
    """Where a pass writes; any may be None."""

    #: Per row format (``sft``, ``kto``): its rows, and its rows' rollout ids.
    rows: dict[str, Writer] = field(default_factory=dict)
    ids: dict[str, Writer] = field(default_factory=dict)
    kept: Writer | None = None
    rejects: Writer | None = None
    #: Scratch file of the trl rows of the DPO candidates that get no SFT row, where pairs are
    #: read back from (see ``PairCollector.keep_sides``).
    sides: TellingWriter | None = None
    #: A shard's redacted lines of the DPO candidates that get no SFT row (replace-mode redaction
    #: with DPO): their input lines still hold the secrets. Candidates point here with
    #: :data:`SHARD_LINES`; the parent moves them with :func:`moved_to`.
    lines: TellingWriter | None = None


def moved_to(candidates: list[tuple[str, Candidate]], path: str, base: int) -> list[tuple[str, Candidate]]:
    """``candidates`` with their :data:`SHARD_LINES` locators moved to ``path``, ``base`` bytes on."""
    return [
        (
            key,
            c
            if c.locator[0] != SHARD_LINES
            else Candidate(c.reward, c.rollout_id, (path, base + c.locator[1])),
        )
        for key, c in candidates
    ]


class Pass:
    """One streaming pass over items (a whole input, or one shard of it): the pipeline's steps,
    built from the plan, run by :func:`rollcraft.steps.run_steps`."""

    def __init__(
        self,
        plan: Plan,
        sinks: Sinks,
        *,
        collector: Any = None,
        collect_categories: bool = False,
        sft_locators: bool = False,
        dedupe_log: DedupeLog | None = None,
    ) -> None:
        """``sft_locators``: without a collector, DPO candidates that got an SFT row point at it
        (offset in this pass's SFT sink) instead of at the input line. ``dedupe_log``: the first
        pass over shards (for dedupe and balance), which logs every rollout in the dedupe step's
        place and writes nothing (no SFT rows or DPO candidates; categories when asked)."""
        self.plan = plan
        self.sinks = sinks
        self.collector = collector
        self.collect_categories = collect_categories
        self.sft_locators = sft_locators
        self.dedupe_log = dedupe_log
        self.result = PassResult()
        #: A first pass (balance's categories, dedupe's log) writes nothing and collects no pairs;
        #: with drop-mode redaction it collects the ids of the lines found clean, so the main pass
        #: does not search them again (replace mode searches only what is written: not here).
        self.first_pass = collect_categories or dedupe_log is not None
        redact = plan.loaded.config.redact
        searches = redact is not None and redact.on_secret == "drop"
        self.clean_lines: IdSet | None = IdSet() if self.first_pass and searches else None
        self.secrets: Any = None  # the redaction step, once built
        #: Replace mode's drops after the filters, in a pass given only the chosen rollouts.
        self.late = FilterReport()

    def steps(self) -> list[Step]:
        """This pass's steps, in order: the pipeline config written as steps."""
        plan, config = self.plan, self.plan.loaded.config
        if config.redact is not None:
            self.secrets = plan.redaction_step(self.clean_lines)
        writers = [] if self.first_pass else self._writers()
        if plan.judged is None:
            return with_redaction(self.secrets, self._judges(), writers, self.result.filter)
        if self.secrets is not None and self.secrets.on_secret == "drop":
            return list(writers)  # the first pass dropped every rollout that holds a secret
        return with_redaction(self.secrets, [], writers, self.late)

    def _judges(self) -> list[Step]:
        """The filters, then the stages that drop (review, balance) or note (categories)."""
        plan, config = self.plan, self.plan.loaded.config
        steps: list[Step] = [*plan.filter_steps(self.dedupe_log)]
        if self.dedupe_log is not None and plan.filters.dedupe:
            steps.append(LaterDrops(self.dedupe_log))
        if plan.decisions is not None:
            steps.append(Review(plan.decisions))
        if self.collect_categories:
            steps.append(Categorize(config.balance.by if config.balance is not None else "task_type"))
        if plan.selected is not None:
            steps.append(Select(plan.selected))
        return steps

    def _writers(self) -> list[Stage]:
        """The stages that write: the kept and rejected lines, the rows, the DPO candidates."""
        plan, config, sinks = self.plan, self.plan.loaded.config, self.sinks
        steps: list[Stage] = []
        if sinks.kept is not None:
            steps.append(WriteKept(sinks.kept))
        if sinks.rejects is not None:
            steps.append(WriteRejects(sinks.rejects))
        if config.read.trajectory == "branches":  # more rows, not more input lines: after those writers
            flags = frozenset(plan.filters.drop_flagged)
            steps.append(ExpandTrajectories(config.read.reasoning, flags))
        sft_rows = None
        for name, section in row_sections(config):
            fmt = section.rows(plan.loaded.shape)
            writer = WriteRows(fmt, sinks.rows.get(name), ids=sinks.ids.get(name))
            sft_rows = writer if name == "sft" else sft_rows
            steps.append(writer)
        if config.dpo is not None:
            steps.append(
                CollectDpo(self.collector, sft_rows, sinks.sides, sinks.lines, sft_locators=self.sft_locators)
            )
        return steps

    def run(self, items: Iterable[Rollout | Quarantined]) -> PassResult:
        """Push every item through the steps; return what they counted (and collected)."""
        steps = self.steps()
        drain(run_steps(items, steps, self.result.filter))
        self._gather(steps)
        if self.plan.judged is not None:
            self._judged_counts(self.plan.judged)
        return self.result

    def _judged_counts(self, judged: PassResult) -> None:
        """The counts of a pass given only the chosen rollouts: the first pass's, which judged
        every line, and what this one's redaction added."""
        result = self.result
        result.filter = judged.filter + self.late
        result.review_rejected, result.review_matched = judged.review_rejected, judged.review_matched
        result.balance_dropped = judged.balance_dropped
        result.redaction = _add_redaction(judged.redaction, result.redaction)

    def _gather(self, steps: list[Step]) -> None:
        result = self.result
        if self.secrets is not None:
            result.redaction = self.secrets.report.to_dict()
        for step in steps:
            if isinstance(step, Review):
                result.review_rejected, result.review_matched = step.report.rejected, step.report.matched
            elif isinstance(step, Categorize):
                result.categories = step.log
            elif isinstance(step, Select):
                result.balance_dropped = step.dropped
            elif isinstance(step, WriteRows):
                result.rows[step.name] = step.report
            elif isinstance(step, CollectDpo):
                result.dpo_excluded, result.dpo_rollouts = step.excluded, step.rollouts
                result.candidates = step.candidates
