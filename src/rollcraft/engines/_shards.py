"""The shards of the local engine: byte ranges of plain files cut at line boundaries, and their lines.

:func:`rollcraft.engines.local.split_shards` cuts the inputs (its minimum size, ``_MIN_SHARD``, is
read in :mod:`rollcraft.engines.local`, where tests set it); a :class:`Shard` is read here as
:func:`rollcraft.read_rollouts` reads a whole file.
"""

from __future__ import annotations

import itertools
import os
from collections.abc import Iterator
from dataclasses import dataclass

from rollcraft._io import RawLine, is_plain_file, skip_bom
from rollcraft._pipeline_config import LoadedConfig
from rollcraft._records import Quarantined, Rollout
from rollcraft.read._reader import ReadOptions, parse_lines


def one_process_reason(loaded: LoadedConfig, sources: list[str]) -> str | None:
    """Why the main pass must stream in one process, or None when it may run over shards.

    Not for compressed files or stdin (no byte ranges). (``dedupe``, whose "first seen" spans
    the whole input, is decided by a first pass then: see :func:`_first_pass`.)
    """
    if not all(is_plain_file(s) for s in sources):
        return "compressed input or stdin cannot be cut into byte ranges"
    return None


@dataclass(frozen=True, slots=True)
class Shard:
    """A byte range of one file, starting and ending at line boundaries."""

    index: int
    source: str
    start: int
    end: int


def _ranges(source: str, size: int) -> list[tuple[int, int]]:
    length = os.path.getsize(source)
    cuts = [0]
    with open(source, "rb") as handle:
        while cuts[-1] + size < length:
            handle.seek(cuts[-1] + size)
            handle.readline()
            position = handle.tell()
            if position >= length:
                break
            cuts.append(position)
    cuts.append(length)
    return [(a, b) for a, b in itertools.pairwise(cuts) if b > a] or [(0, 0)]


def shard_lines(shard: Shard, options: ReadOptions) -> Iterator[Rollout | Quarantined]:
    """The rollouts and quarantined lines of one shard, read as :func:`rollcraft.read_rollouts` reads."""
    return parse_lines(_shard_raw_lines(shard), options)


def _shard_raw_lines(shard: Shard) -> Iterator[RawLine]:
    with open(shard.source, "rb", buffering=1 << 20) as handle:
        handle.seek(shard.start)
        position, number = shard.start or skip_bom(handle, shard.source), 0
        while position < shard.end:
            line = handle.readline()
            if not line:
                break
            number += 1
            yield RawLine(shard.source, number, position, line.rstrip(b"\r\n"))
            position += len(line)
