"""Steps that write lines: the kept rollouts' original lines (:class:`WriteKept`) and the
dropped ones, each wrapped with who dropped it and why (:class:`WriteRejects`)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
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
    """Write each dropped rollout as ``{"dropped_by", "reason", "rollout"}`` (:func:`reject_line`);
    ``redact``: what each dropped line is written as (replace-mode redaction, which searches only
    the kept rollouts, sets it: :func:`rollcraft.steps.with_redaction`)."""

    sink: Writer
    written: int = 0
    name: str = "write_rejects"
    redact: Callable[[bytes], bytes] | None = None

    def run(self, judged: Iterator[Judged]) -> Iterator[Judged]:
        write, redact = self.sink.write, self.redact
        for rollout, drop in judged:
            if drop is not None:
                write(reject_line(rollout, drop, redact))
                self.written += 1
            yield rollout, drop


def reject_line(rollout: Rollout, drop: Drop, redact: Callable[[bytes], bytes] | None = None) -> bytes:
    """``{"dropped_by": ..., "reason": ..., "rollout": <the original line>}`` and a newline
    (for a drop by ``redact_secrets``, the line with every kind of secret replaced; else, with
    ``redact``, the line it gives)."""
    head = b'{"dropped_by":' + orjson.dumps(drop.by) + b',"reason":' + orjson.dumps(drop.reason)
    raw = rollout.raw.strip()
    if redact is not None and drop.by != "redact_secrets":
        raw = redact(raw)
    elif drop.by == "redact_secrets":
        from rollcraft.redact import redacted_reject

        raw = redacted_reject(raw)
    return head + b',"rollout":' + raw + b"}\n"
