"""The format steps: :class:`WriteRows` writes a row per kept rollout a row format keeps (SFT, KTO);
:class:`CollectDpo` collects the kept rollouts as DPO candidates (pairs are planned and written
once the stream is done: :class:`rollcraft.formats.dpo.PairCollector`)."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field

import orjson

from rollcraft._records import Rollout
from rollcraft.formats import RowFormat, SftReport, sft_row, sft_skip_reason
from rollcraft.formats._dialects import Dialect
from rollcraft.formats._rows import count_row, drops_reasoning
from rollcraft.formats.dpo import Candidate, PairCollector, sft_locator
from rollcraft.steps._base import Judged
from rollcraft.steps._write import TellingWriter, Writer

__all__ = ["SHARD_LINES", "CollectDpo", "WriteRows"]

#: A candidate locator's file name for "this shard's redacted lines" (:attr:`CollectDpo.lines`);
#: the engine moves them to where it copies those lines (``engines._plan.moved_to``).
SHARD_LINES = "\0shard-lines"


@dataclass(slots=True)
class WriteRows:
    """Write the row of each kept rollout a row format keeps (:class:`rollcraft.formats.RowFormat`:
    SFT, KTO); count rows, labels and skips (by reason) in :attr:`report`.

    ``sink`` None counts without writing; ``ids`` gets each row's rollout id. The rollout it saw
    last, why it is unfit for a row (``sft_skip_reason``) and where its row starts (when the sink
    can tell and ``offsets``) are kept for a :class:`CollectDpo` after it.
    """

    format: RowFormat
    sink: Writer | None
    ids: Writer | None = None
    #: Whether to note where each row starts (when the sink can tell): for a :class:`CollectDpo`
    #: that reads pairs back from the rows.
    offsets: bool = True
    report: SftReport = field(default_factory=SftReport)
    last: Rollout | None = None
    last_unfit: str | None = None
    last_offset: int | None = None

    @property
    def name(self) -> str:
        return self.format.name

    def run(self, judged: Iterator[Judged]) -> Iterator[Judged]:
        tell = getattr(self.sink, "tell", None) if self.offsets else None
        for rollout, drop in judged:
            if drop is None:
                self._row(rollout, tell)
            yield rollout, drop

    def _row(self, rollout: Rollout, tell: object) -> None:
        unfit = sft_skip_reason(rollout)
        self.last, self.last_unfit, self.last_offset = rollout, unfit, None
        if not count_row(self.format, rollout, unfit, self.report):
            return
        rows = self.format.rows(rollout)
        self.report.rows += len(rows)
        sink = self.sink
        if sink is not None:
            self.last_offset = tell() if callable(tell) and len(rows) == 1 else None
            for row in rows:
                sink.write(orjson.dumps(row, option=orjson.OPT_APPEND_NEWLINE))
        if self.ids is not None:
            self.ids.write((rollout.rollout_id.encode() + b"\n") * len(rows))


@dataclass(slots=True)
class CollectDpo:
    """Collect each kept rollout as a DPO candidate.

    With a ``collector``, candidates go to it (read back from ``sft``'s rows (SFT rows) when the collector
    reads SFT rows, else from ``sides``, a scratch file of trl rows, else from the input line).
    Without one (a shard's pass), they are kept in :attr:`candidates` for the parent's collector:
    pointing at the rollout's SFT row (``sft_locators``), at its redacted line written to
    ``lines`` (:data:`SHARD_LINES`), or at its input line.

    ``reasoning_lost`` counts the kept rollouts whose reasoning ``dialect`` cannot carry.
    """

    collector: PairCollector | None
    sft: WriteRows | None = None
    sides: TellingWriter | None = None
    lines: TellingWriter | None = None
    sft_locators: bool = False
    dialect: Dialect = "trl"
    rollouts: int = 0
    excluded: Counter[str] = field(default_factory=Counter)
    candidates: list[tuple[str, Candidate]] = field(default_factory=list)
    reasoning_lost: int = 0
    name: str = "dpo"

    def run(self, judged: Iterator[Judged]) -> Iterator[Judged]:
        reads_rows = self.collector is not None and self.collector.reads_sft_rows
        for rollout, drop in judged:
            if drop is None:
                self._collect(rollout, reads_rows)
            yield rollout, drop

    def _collect(self, rollout: Rollout, reads_rows: bool) -> None:
        if drops_reasoning(rollout, self.dialect):
            self.reasoning_lost += 1
        sft = self.sft
        if sft is not None and sft.last is rollout:
            unfit, offset = sft.last_unfit, sft.last_offset
        else:
            unfit, offset = sft_skip_reason(rollout), None
        if self.collector is not None:
            self._add(self.collector, rollout, unfit, offset if reads_rows else None)
        else:
            self._keep(rollout, unfit, offset)

    def _add(self, collector: PairCollector, rollout: Rollout, unfit: str | None, offset: int | None) -> None:
        sides, side_offset = self.sides, None
        if sides is not None and offset is None and unfit is None:
            side_offset = sides.tell()
            sides.write(orjson.dumps(sft_row(rollout, "trl"), option=orjson.OPT_APPEND_NEWLINE))
        collector.add_checked(rollout, unfit, sft_offset=offset, side_offset=side_offset)

    def _keep(self, rollout: Rollout, unfit: str | None, offset: int | None) -> None:
        self.rollouts += 1
        if unfit is not None:
            self.excluded[unfit] += 1
            return
        if self.sft_locators and offset is not None:
            locator = sft_locator(len(rollout.conversation.prompt), offset)
        elif rollout.rewritten:  # its input line is not what the pair must hold
            lines = self.lines
            if lines is None:
                raise RuntimeError("a redacted DPO candidate in a pass without CollectDpo.lines")
            locator = (SHARD_LINES, lines.tell())
            lines.write(rollout.raw + b"\n")
        else:
            locator = (rollout.source, rollout.offset)
        self.candidates.append((rollout.task_key, Candidate(rollout.reward, rollout.rollout_id, locator)))
