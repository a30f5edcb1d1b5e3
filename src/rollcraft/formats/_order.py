"""Rows from easy to hard (``sft``/``dpo --order easy-to-hard``), for a curriculum run with shuffling off.

Each row's task has an observed pass rate (:func:`rollcraft.curriculum.task_pass_rates`: its
successes over its rollouts and failed attempts). :class:`RatedRows` wraps a row format and notes
each row's rate as the rows are written; :func:`copy_ordered` then copies the written lines in
order of rate, highest first, ties in the order they were written. Memory holds a rate and an
offset per row (16 bytes), never the rows: they are copied by offset from the file they were
written to. :func:`reorder_file` does the same to a finished file in place (the pipeline's rows,
with their ids file in the same order).
"""

from __future__ import annotations

import os
import tempfile
from array import array
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any, Final, Literal

from rollcraft._records import Rollout
from rollcraft.formats._dialects import Dialect
from rollcraft.formats._pair_plan import task_keys_of
from rollcraft.formats._rows import RowFormat
from rollcraft.formats.dpo import PairCollector

__all__ = [
    "EASY_TO_HARD",
    "ORDERS",
    "Order",
    "RatedRows",
    "copy_ordered",
    "ordered_pairs",
    "rate_of",
    "reorder_file",
]

Order = Literal["input", "easy-to-hard"]
ORDERS: tuple[Order, ...] = ("input", "easy-to-hard")
EASY_TO_HARD: Final = "easy-to-hard"

#: The rate of a row whose task has none (it comes after every rated task's rows).
UNRATED = -1.0
_CHUNK = 1 << 20


def rate_of(task_key: str, rates: Mapping[str, float]) -> float:
    """The pass rate of ``task_key``; a trajectory's subagent or branch conversation
    (``<task key>/<kind>:<digest>``) has its rollout's task's; :data:`UNRATED` when unknown."""
    rate = rates.get(task_key)
    if rate is None and "/" in task_key:
        rate = rates.get(task_key.rsplit("/", 1)[0])
    return UNRATED if rate is None else rate


@dataclass(slots=True)
class RatedRows:
    """A row format (``inner``) that notes the pass rate of each row's task in :attr:`noted`."""

    inner: RowFormat
    rates: Mapping[str, float]
    noted: array[float] = field(default_factory=lambda: array("d"))

    @property
    def name(self) -> str:
        return self.inner.name

    @property
    def dialect(self) -> Dialect:
        return self.inner.dialect

    def left_out(self, rollout: Rollout) -> str | None:
        return self.inner.left_out(rollout)

    def label(self, rollout: Rollout) -> str | None:
        return self.inner.label(rollout)

    def rows(self, rollout: Rollout) -> list[dict[str, Any]]:
        rows = self.inner.rows(rollout)
        self.noted.extend([rate_of(rollout.task_key, self.rates)] * len(rows))
        return rows


def copy_ordered(source: IO[bytes], rates: Sequence[float], sink: IO[bytes]) -> None:
    """Copy the lines of ``source`` (one per rate of ``rates``) to ``sink`` by rate, highest
    first; ties keep their order in ``source``. Each line ends with a newline."""
    offsets = _offsets(source)
    if len(offsets) - 1 != len(rates):
        raise RuntimeError(f"{len(offsets) - 1} lines for {len(rates)} rates")
    for i in sorted(range(len(rates)), key=lambda i: (-rates[i], i)):
        source.seek(offsets[i])
        line = source.read(offsets[i + 1] - offsets[i])
        sink.write(line if line.endswith(b"\n") else line + b"\n")


def ordered_pairs(collector: PairCollector, rates: Mapping[str, float], sink: IO[bytes]) -> None:
    """Write ``collector``'s DPO rows to ``sink`` by their task's pass rate (``dpo --order
    easy-to-hard``): each task's pairs are encoded on their own (a slice of the plan at task
    boundaries gives the rows the whole plan gives), noted with the task's rate in a scratch file,
    then copied in order (:func:`copy_ordered`)."""
    planned = collector.plan()
    keys = task_keys_of(planned)
    noted = array("d")
    with tempfile.TemporaryFile() as scratch:
        try:
            start = 0
            while start < len(keys):
                end = start + 1
                while end < len(keys) and keys[end] == keys[start]:
                    end += 1
                rate = rate_of(keys[start], rates)
                for _, line in collector.encode(planned[start:end], collector.report):
                    scratch.write(line)
                    noted.append(rate)
                start = end
        finally:
            collector.store.close()
        copy_ordered(scratch, noted, sink)


def reorder_file(path: Path, rates: Sequence[float]) -> None:
    """Rewrite the lines of ``path`` by rate (:func:`copy_ordered`), through a temporary sibling."""
    fd, temp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with path.open("rb") as source, os.fdopen(fd, "wb") as sink:
            copy_ordered(source, rates, sink)
        os.chmod(temp, path.stat().st_mode & 0o777)
        os.replace(temp, path)
    except BaseException:
        Path(temp).unlink(missing_ok=True)
        raise


def _offsets(source: IO[bytes]) -> array[int]:
    """Where each line of ``source`` starts, and its end."""
    source.seek(0)
    offsets, at, pending = array("q", [0]), 0, False
    while chunk := source.read(_CHUNK):
        start = 0
        while (end := chunk.find(b"\n", start)) >= 0:
            offsets.append(at + end + 1)
            start = end + 1
        at += len(chunk)
        pending = start < len(chunk)
    if pending:  # a last line without its newline
        offsets.append(at)
    return offsets
