"""The per-rollout work of a pipeline pass, shared by every engine.

A :class:`Plan` is everything a pass needs, picklable so worker processes can rebuild it. A
:class:`Pass` streams items through redaction, filters, review decisions and balancing, writes
SFT rows (and, when asked, the kept and the rejected lines) and collects DPO candidates.
"""

from __future__ import annotations

import contextlib
import gc
from collections import Counter
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any, Protocol

import orjson

from rollcraft._alloc import process_tuned, tune_process
from rollcraft._compact import CategoryLog, IdSet, LocatorSet
from rollcraft._pipeline_config import LoadedConfig
from rollcraft._read import ReadOptions
from rollcraft._records import Quarantined, Rollout
from rollcraft.engines._dedupe import Decisions, DedupeLog, PlannedDedupe
from rollcraft.filters import Dedupe, Filter, FilterConfig, FilterReport, TaskStats, build_steps, judge
from rollcraft.formats import SftReport, sft_row, sft_skip_reason
from rollcraft.formats.dpo import Candidate, sft_locator
from rollcraft.formats.sft import drops_reasoning

__all__ = ["Pass", "PassResult", "Plan", "few_collections"]


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
    rejected_ids: frozenset[str] = frozenset()
    reviewed_ids: frozenset[str] = frozenset()
    #: Balance's choice: the locators of the rollouts it keeps (None: no balance).
    selected: LocatorSet | None = None
    #: The ids (content hashes) of the lines an earlier pass over the same inputs searched for
    #: secrets and found clean: not searched again. None: search every line.
    clean_lines: IdSet | None = None
    #: ``filters.dedupe`` decided ahead, for passes over shards (see :mod:`._dedupe`); None: the
    #: streaming step.
    dedupe: Decisions | None = None

    @property
    def filters(self) -> FilterConfig:
        return self.loaded.filters

    def steps(self, clean: IdSet | None = None) -> list[Filter]:
        """Fresh filter steps (stateful ones such as dedupe start empty).

        ``clean``: collects the ids of the lines the drop-mode redaction step finds clean."""
        steps = build_steps(self.filters, task_stats=self.task_stats)
        if self.dedupe is not None:
            steps = [PlannedDedupe(self.dedupe) if isinstance(s, Dedupe) else s for s in steps]
        redact = self.loaded.config.redact
        if redact is not None and redact.on_secret == "drop":
            steps.insert(0, self.redaction_step(clean).drop_step())
        return steps

    def redaction_step(self, clean: IdSet | None = None) -> Any:
        """A fresh redaction step; ``clean`` collects the ids of the lines it finds clean."""
        from rollcraft.redact import Allowlist, Redactor, RedactSecrets, load_allowlist

        section = self.loaded.config.redact
        assert section is not None
        allow = load_allowlist(self.loaded.resolve(section.allowlist)) if section.allowlist else Allowlist()
        return RedactSecrets(
            on_secret=section.on_secret,
            redactor=Redactor(allowlist=allow),
            options=self.read_options,
            clean=self.clean_lines,
            record_clean=clean,
        )


def _redacted_reject(raw: bytes) -> bytes:
    from rollcraft.redact import redacted_reject

    return redacted_reject(raw)


@dataclass(slots=True)
class PassResult:
    """What a pass (or a shard of one) counted and collected; results add up."""

    filter: FilterReport = field(default_factory=FilterReport)
    sft: SftReport = field(default_factory=SftReport)
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
            self.sft + other.sft,
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


def _add_redaction(a: dict[str, Any], b: dict[str, Any]) -> dict[str, Any]:
    if not a or not b:
        return a or b
    kinds = Counter(a.get("kinds", {})) + Counter(b.get("kinds", {}))
    keys = ("rollouts", "redacted", "dropped")
    return {k: a.get(k, 0) + b.get(k, 0) for k in keys} | {"kinds": dict(sorted(kinds.items()))}


class Writer(Protocol):
    """What a pass writes to: a binary file, a ``BytesIO``, a :class:`rollcraft._digest.DigestWriter`."""

    def write(self, data: bytes, /) -> int: ...


class TellingWriter(Writer, Protocol):
    """A :class:`Writer` that says where the next write starts."""

    def tell(self) -> int: ...


@dataclass(slots=True)
class Sinks:
    """Where a pass writes; any may be None."""

    sft: Writer | None = None
    sft_ids: Writer | None = None
    kept: Writer | None = None
    rejects: Writer | None = None
    #: Scratch file of the trl rows of the DPO candidates that get no SFT row, where pairs are
    #: read back from (see ``PairCollector.keep_sides``).
    sides: TellingWriter | None = None
    #: A shard's redacted lines of the DPO candidates that get no SFT row (replace-mode redaction
    #: with DPO): their input lines still hold the secrets. Candidates point here with
    #: :data:`SHARD_LINES`; the parent moves them with :func:`moved_to`.
    lines: TellingWriter | None = None


#: A candidate locator's file name for "this shard's ``Sinks.lines``".
SHARD_LINES = "\0shard-lines"


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
    """One streaming pass over items (a whole input, or one shard of it)."""

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
        self.dedupe_log = dedupe_log
        self.plan = plan
        self.sft_locators = sft_locators
        self.collector = collector
        self.sinks = sinks
        self.result = PassResult()
        self.collect_categories = collect_categories
        self.sft = plan.loaded.config.sft
        first_pass = collect_categories or dedupe_log is not None
        self.want_dpo = plan.loaded.config.dpo is not None and not first_pass
        if dedupe_log is not None:
            self.sft = None
        self._pairs_read_sft_rows = False  # set by run(), once the collector knows
        self._selects = self.sft is not None and (self.sft.min_reward is not None or self.sft.success_only)
        #: With ``collect_categories`` (balance's first pass): the ids of the lines redaction found
        #: clean, so the main pass does not search them again (redaction is most of such a run).
        redacts = plan.loaded.config.redact is not None
        self.clean_lines: IdSet | None = IdSet() if first_pass and redacts else None
        self._redactor = self._replace_redactor()
        self._sft_tell = getattr(sinks.sft, "tell", None)  # SFT row offsets, when the sink has them
        self._curating = bool(
            plan.reviewed_ids or plan.rejected_ids or collect_categories or plan.selected is not None
        )

    def _replace_redactor(self) -> Any:
        section = self.plan.loaded.config.redact
        if section is None or section.on_secret != "replace":
            return None
        return self.plan.redaction_step(self.clean_lines)

    def run(self, items: Iterable[Rollout | Quarantined]) -> PassResult:
        """Push every item through; return the counts (and DPO candidates / categories)."""
        steps = self.plan.steps(self.clean_lines)
        if self.dedupe_log is not None:
            steps = [self.dedupe_log if isinstance(s, Dedupe) else s for s in steps]
        if self._redactor is not None:
            steps.insert(0, self._redactor.failure_step())
        self._pairs_read_sft_rows = self.collector is not None and self.collector.reads_sft_rows
        # In drop mode, its step redacts the quarantined lines' details (which may quote a secret).
        dropper = next((getattr(s, "secrets", None) for s in steps if s.name == "redact_secrets"), None)
        redaction = self._redactor or dropper
        source = redaction.redact_items(items) if redaction is not None else items
        for rollout, drop in judge(source, steps, self.result.filter):
            if drop is not None:
                self._reject(rollout, drop.by, drop.reason)
            elif not self._curating or self._passes_curation(rollout):
                self._keep(rollout)
        self._finish_redaction(steps)
        return self.result

    def _finish_redaction(self, steps: list[Filter]) -> None:
        step = self._redactor or next((s for s in steps if s.name == "redact_secrets"), None)
        if step is not None and hasattr(step, "report"):
            self.result.redaction = step.report.to_dict()

    def _passes_curation(self, rollout: Rollout) -> bool:
        plan = self.plan
        if rollout.rollout_id in plan.reviewed_ids:
            self.result.review_matched += 1
        if rollout.rollout_id in plan.rejected_ids:
            self.result.review_rejected += 1
            self._reject(rollout, "review", "rejected in review")
            return False
        locator = (rollout.source, rollout.offset)
        if self.collect_categories:
            self.result.categories.append(_category(rollout, plan), locator)
        if plan.selected is not None and locator not in plan.selected:
            self.result.balance_dropped += 1
            self._reject(rollout, "balance", "not chosen for its category")
            return False
        return True

    def _reject(self, rollout: Rollout, by: str, reason: str) -> None:
        if self.sinks.rejects is not None:
            record = orjson.Fragment(rollout.raw if by != "redact_secrets" else _redacted_reject(rollout.raw))
            self.sinks.rejects.write(
                orjson.dumps(
                    {"dropped_by": by, "reason": reason, "rollout": record}, option=orjson.OPT_APPEND_NEWLINE
                )
            )

    def _keep(self, rollout: Rollout) -> None:
        if self.sinks.kept is not None:
            self.sinks.kept.write(rollout.raw + b"\n")
        if self.sft is None and not self.want_dpo:
            return
        unfit = sft_skip_reason(rollout)  # why it can be neither an SFT row nor a pair's side
        offset = self._sft(rollout, unfit) if self.sft is not None else None
        if self.want_dpo:
            self._dpo(rollout, unfit, offset)

    def _sft(self, rollout: Rollout, unfit: str | None) -> int | None:
        """Write the rollout's SFT row; returns where it starts when the sink can tell.

        ``unfit``: ``sft_skip_reason(rollout)``."""
        assert self.sft is not None
        report = self.result.sft
        reason = None
        if self._selects:
            reason = _sft_selection(rollout, self.sft.min_reward, self.sft.success_only)
        reason = reason or unfit
        if reason is not None:
            report.skipped[reason] += 1
            return None
        report.rows += 1
        if drops_reasoning(rollout, self.sft.format):
            report.reasoning_lost += 1
        offset = None
        sink = self.sinks.sft
        if sink is not None:
            row = sft_row(rollout, self.sft.format, arguments=self.sft.arguments)
            offset = self._sft_tell() if self._sft_tell is not None else None
            sink.write(orjson.dumps(row, option=orjson.OPT_APPEND_NEWLINE))
        if self.sinks.sft_ids is not None:
            self.sinks.sft_ids.write(rollout.rollout_id.encode() + b"\n")
        return offset

    def _dpo(self, rollout: Rollout, unfit: str | None, sft_offset: int | None = None) -> None:
        """Collect the rollout as a DPO candidate (``unfit``: ``sft_skip_reason(rollout)``)."""
        if self.collector is not None:
            if not self._pairs_read_sft_rows:
                sft_offset = None  # an SFT row of another dialect: no use to the pairs
            sides, side_offset = self.sinks.sides, None
            if sides is not None and sft_offset is None and unfit is None:
                side_offset = sides.tell()
                sides.write(orjson.dumps(sft_row(rollout, "trl"), option=orjson.OPT_APPEND_NEWLINE))
            self.collector.add_checked(rollout, unfit, sft_offset=sft_offset, side_offset=side_offset)
            return
        self.result.dpo_rollouts += 1
        if unfit is not None:
            self.result.dpo_excluded[unfit] += 1
            return
        if self.sft_locators and sft_offset is not None:
            locator = sft_locator(len(rollout.conversation.prompt), sft_offset)
        elif rollout.rewritten:  # its input line is not what the pair must hold
            lines = self.sinks.lines
            if lines is None:
                raise RuntimeError("a redacted DPO candidate in a pass without Sinks.lines")
            locator = (SHARD_LINES, lines.tell())
            lines.write(rollout.raw + b"\n")
        else:
            locator = (rollout.source, rollout.offset)
        self.result.candidates.append(
            (rollout.task_key, Candidate(rollout.reward, rollout.rollout_id, locator))
        )


def _sft_selection(rollout: Rollout, min_reward: float | None, success_only: bool) -> str | None:
    if min_reward is not None and rollout.reward < min_reward:
        return "below_sft_min_reward"
    if success_only and not rollout.success:
        return "not_success"
    return None


def _category(rollout: Rollout, plan: Plan) -> str:
    from rollcraft.curate import category_of

    balance = plan.loaded.config.balance
    return category_of(rollout, balance.by if balance is not None else "task_type")
