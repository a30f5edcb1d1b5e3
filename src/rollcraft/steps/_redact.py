"""Secret redaction as steps, placed by :func:`with_redaction`: :class:`RedactLines` rewrites each
quarantined line's detail first; in drop mode a filter named ``redact_secrets`` drops each
rollout holding a secret; in replace mode :class:`RedactWritten` redacts each rollout that is
written, just before the writers.

Why replace mode comes last: a rollout that a filter, review or balance drops is never written,
so it need not be searched. Searching is most of what redaction costs (about 25 CPU seconds per
GB), and the example pipeline's balance writes a few hundred of tens of thousands of rollouts:
redacting only those takes the whole run from 35 s to 8 s at 1 GB (``python benchmarks/run.py
--modes a,default``). What the earlier steps see is the record as read: the review page's ids
(the hash of the line as read) match, and dedupe compares rollouts as read.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from rollcraft.filters import Drop, FilterReport
from rollcraft.steps._base import Item, Judged, Stage, Step
from rollcraft.steps._write import WriteRejects

if TYPE_CHECKING:
    from rollcraft.redact import RedactSecrets

__all__ = ["RedactLines", "RedactWritten", "with_redaction"]


@dataclass(frozen=True, slots=True)
class RedactLines:
    """The rewrite of :meth:`RedactSecrets.redact_items`: each quarantined line's detail (which
    may quote a secret) redacted; rollouts pass on unchanged."""

    secrets: RedactSecrets

    def rewrite(self, items: Iterable[Item]) -> Iterator[Item]:
        return self.secrets.redact_items(items)


@dataclass(frozen=True, slots=True)
class RedactWritten:
    """Replace mode's stage: each kept rollout redacted (re-read from its redacted line); one it
    cannot redact is dropped (``Drop("redact_secrets", why)``, counted in ``report``), so none is
    written with its secrets. Dropped rollouts pass on as they are (a rejects writer redacts
    what it writes)."""

    secrets: RedactSecrets
    report: FilterReport
    name: str = "redact_secrets"

    def run(self, judged: Iterator[Judged]) -> Iterator[Judged]:
        apply = self.secrets.apply
        for rollout, drop in judged:
            if drop is not None:
                yield rollout, drop
                continue
            result = apply(rollout)
            if result.rollout is None:
                drop = Drop(self.name, result.dropped or "could not be redacted")
                self.report.dropped_later(drop)
                yield rollout, drop
            else:
                yield result.rollout, None


def with_redaction(
    secrets: RedactSecrets | None, judges: Sequence[Step], writers: Sequence[Stage], report: FilterReport
) -> list[Step]:
    """The steps of a run: ``judges`` (the filters, then the stages that drop: review, balance),
    then ``writers``, with ``secrets``' steps in their places (none when it is None); ``report``
    is the run's (what :func:`run_steps` counts in).

    Each quarantined line's detail is redacted first. Drop mode: its filter comes first among
    the filters (every rollout searched). Replace mode: :class:`RedactWritten` comes between the
    judges and the writers (only the kept rollouts searched), and a rejects writer redacts each
    dropped line it writes; without writers (a first pass), nothing is searched.
    """
    if secrets is None:
        return [*judges, *writers]
    head: list[Step] = [RedactLines(secrets)]
    if secrets.on_secret == "drop":
        return [*head, secrets.drop_step(), *judges, *writers]
    if not writers:
        return [*head, *judges]
    redact = secrets.redacted_line
    written = [dataclasses.replace(w, redact=redact) if isinstance(w, WriteRejects) else w for w in writers]
    return [*head, *judges, RedactWritten(secrets, report), *written]
