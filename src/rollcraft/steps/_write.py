"""Steps that write lines: the kept rollouts' original lines (:class:`WriteKept`) and the
dropped ones, each wrapped with who dropped it and why (:class:`WriteRejects`)."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Protocol

import orjson

from rollcraft._records import Rollout
from rollcraft.filters import Drop
from rollcraft.steps._base import Judged

__all__ = ["TellingWriter", "WriteKept", "WriteRejects", "Writer", "reject_line"]


class Writer(Protocol):
    """What a step writes to: a binary file, a ``BytesIO``, a :class:`rollcraft._digest.DigestWriter`."""

    def write(self, data: bytes, /) -> int: ...


class TellingWriter(Writer, Protocol):
    """A :class:`Writer` that says where the next write starts."""

    def tell(self) -> int: ...


@dataclass(slots=True)
class WriteKept:
    """Write each kept rollout's line (its original bytes; redacted, when redaction changed it)."""

    sink: Writer
    written: int = 0
    name: str = "write_kept"

    def run(self, judged: Iterator[Judged]) -> Iterator[Judged]:
        write = self.sink.write
        for rollout, drop in judged:
            if drop is None:
                write(rollout.raw + b"\n")
                self.written += 1
            yield rollout, drop


@dataclass(slots=True)
class WriteRejects:
    """Write each dropped rollout as ``{"dropped_by", "reason", "rollout"}`` (:func:`reject_line`)."""

    sink: Writer
    written: int = 0
    name: str = "write_rejects"

    def run(self, judged: Iterator[Judged]) -> Iterator[Judged]:
        write = self.sink.write
        for rollout, drop in judged:
            if drop is not None:
                write(reject_line(rollout, drop))
                self.written += 1
            yield rollout, drop


def reject_line(rollout: Rollout, drop: Drop) -> bytes:
    """``{"dropped_by": ..., "reason": ..., "rollout": <the original line>}`` and a newline
    (for a drop by ``redact_secrets``, the line with its secrets replaced)."""
    head = b'{"dropped_by":' + orjson.dumps(drop.by) + b',"reason":' + orjson.dumps(drop.reason)
    raw = rollout.raw.strip()
    if drop.by == "redact_secrets":
        from rollcraft.redact import redacted_reject

        raw = redacted_reject(raw)
    return head + b',"rollout":' + raw + b"}\n"
