"""The ``redact_secrets`` step: each rollout redacted (replace mode) or dropped (drop mode), the
hits counted in a :class:`RedactionReport`; and what a rejects file holds of a dropped line.

A shortcut for speed lives here: a drop-mode run that makes two passes (balance) records the
ids of the lines its first pass searched and found clean (``record_clean``), and the main pass
passes them on unsearched (``clean``), where the main pass reads every line again (a rejects
file, or a review after dedupe). On 1 GB of the benchmark's input, drop-mode redaction with
balance, SFT, DPO and a rejects file over ``--workers 2`` takes 41 CPU seconds with it and 58
searching every line again (``python benchmarks/shortcuts.py --only clean``; the same bytes:
``tests/perf/test_shortcuts.py``). Replace mode searches only the rollouts written
(:func:`rollcraft.steps.with_redaction`), so a first pass does not search at all."""

from __future__ import annotations

import dataclasses
import functools
import os
from collections import Counter
from collections.abc import Container, Iterable, Iterator
from dataclasses import dataclass, field
from typing import ClassVar, Literal, Protocol

from rollcraft._errors import ConfigError
from rollcraft._io import RawLine
from rollcraft._records import Quarantined, Rollout
from rollcraft.read._reader import ReadOptions, parse_line
from rollcraft.redact._allowlist import Allowlist, load_allowlist
from rollcraft.redact._redactor import Redactor
from rollcraft.redact._search import _Unreadable

OnSecret = Literal["replace", "drop"]


@dataclass(frozen=True, slots=True)
class RedactionResult:
    """What redaction did to one rollout.

    ``rollout`` is the redacted rollout (the same object when nothing was found), or None when
    it was dropped; ``dropped`` is then the reason. ``counts`` are the hits per kind.
    """

    rollout: Rollout | None
    counts: Counter[str]
    dropped: str | None = None


@dataclass(slots=True)
class RedactionReport:
    """Counts over many rollouts; reports add (``a + b``)."""

    rollouts: int = 0
    redacted: int = 0
    dropped: int = 0
    kinds: Counter[str] = field(default_factory=Counter)

    def count(self, result: RedactionResult) -> None:
        self.rollouts += 1
        self.kinds.update(result.counts)
        if result.dropped is not None:
            self.dropped += 1
        elif result.counts:
            self.redacted += 1

    def __add__(self, other: RedactionReport) -> RedactionReport:
        return RedactionReport(
            self.rollouts + other.rollouts,
            self.redacted + other.redacted,
            self.dropped + other.dropped,
            self.kinds + other.kinds,
        )

    def to_dict(self) -> dict[str, object]:
        return {
            "rollouts": self.rollouts,
            "redacted": self.redacted,
            "dropped": self.dropped,
            "kinds": dict(sorted(self.kinds.items())),
        }


class _Recorder(Protocol):
    """What collects the ids of clean lines: a ``set``, or an :class:`rollcraft._compact.IdSet`."""

    def add(self, rollout_id: str, /) -> None: ...


@dataclass(slots=True)
class RedactSecrets:
    """The ``redact_secrets`` pipeline step: redact (or drop) each rollout, counting per kind.

    A redacted rollout is re-read from its redacted line (with ``options``, the reader's options),
    so its conversation, ``raw`` and ``rollout_id`` (the hash of the new line) all agree.

    >>> step = RedactSecrets(on_secret="replace")
    >>> # result = step.apply(rollout); write result.rollout.raw when result.rollout is not None
    """

    on_secret: OnSecret = "replace"
    redactor: Redactor = field(default_factory=Redactor)
    options: ReadOptions = field(default_factory=ReadOptions)
    report: RedactionReport = field(default_factory=RedactionReport)
    #: Ids of lines an earlier pass with the same redactor searched and found clean: a rollout
    #: whose id is here is passed on unsearched. The id is the 64-bit hash of the line's bytes,
    #: so a line is skipped only for the same content (an unknown line is searched).
    clean: Container[str] | None = None
    #: Collects the ids of the lines searched and found clean, when given (a ``set`` or an
    #: :class:`rollcraft._compact.IdSet`: anything with ``add``).
    record_clean: _Recorder | None = None
    name: ClassVar[str] = "redact_secrets"

    def __post_init__(self) -> None:
        if self.on_secret not in ("replace", "drop"):
            raise ConfigError("must be replace or drop", key="on_secret")

    def apply(self, rollout: Rollout) -> RedactionResult:
        """Redact one rollout (or drop it when ``on_secret="drop"`` and it holds a secret)."""
        result = self._result(rollout)
        self.report.count(result)
        return result

    def check(self, rollout: Rollout) -> str | None:
        """The filter-step form (drop mode): the drop reason, or None when the rollout is clean."""
        try:
            _, counts = self.redactor._redact_line(rollout.raw, checked=True)
        except _Unreadable:
            return _UNREADABLE
        return _drop_reason(counts) if counts else None

    def drop_step(self) -> DropSecrets:
        """Drop mode as a filter step that also counts the hits in :attr:`report`."""
        return DropSecrets(self)

    def redact_items(self, items: Iterable[Rollout | Quarantined]) -> Iterator[Rollout | Quarantined]:
        """The stream with each quarantined line's detail redacted (it may quote the record: a
        failed attempt's ``_ng_failure_class``, an unknown record's keys), as the terminal, the
        report and the manifest show it; rollouts pass on unchanged (replace mode redacts the
        kept ones later, :class:`rollcraft.steps.RedactWritten`; drop mode's filter judges them)."""
        for item in items:
            yield item if isinstance(item, Rollout) else self.redact_quarantined(item)

    def redacted_line(self, raw: bytes) -> bytes:
        """``raw`` (a JSON line) with its secrets replaced, not counted; ``null`` when it cannot
        be decoded: what a rejects file holds of a dropped line in replace mode."""
        return _line_or_null(self.redactor, raw)

    def redact_quarantined(self, item: Quarantined) -> Quarantined:
        """``item`` with its detail redacted (every kind, allowlist applied; not counted in
        :attr:`report`, which counts rollouts); the same object when the detail is clean."""
        detail, counts = self.redactor.redact_text(item.detail)
        return dataclasses.replace(item, detail=detail) if counts else item

    def _result(self, rollout: Rollout) -> RedactionResult:
        if self.clean is not None and not rollout.rewritten and rollout.rollout_id in self.clean:
            return RedactionResult(rollout, Counter())
        try:
            line, counts = self.redactor._redact_line(rollout.raw, checked=True)
        except _Unreadable:
            return RedactionResult(None, Counter(), _UNREADABLE)
        if not counts:
            if self.record_clean is not None and not rollout.rewritten:
                self.record_clean.add(rollout.rollout_id)
            return RedactionResult(rollout, counts)
        if self.on_secret == "drop":
            return RedactionResult(None, counts, _drop_reason(counts))
        reparsed = parse_line(RawLine(rollout.source, rollout.line, rollout.offset, line), self.options)
        if isinstance(reparsed, Quarantined):
            return RedactionResult(None, counts, f"redacted record unreadable: {reparsed.reason}")
        return RedactionResult(dataclasses.replace(reparsed, rewritten=True), counts)


@dataclass(frozen=True, slots=True)
class DropSecrets:
    """A filter step (``redact_secrets``) that drops rollouts holding a secret and counts every hit.

    A filter step sees each rollout once, so the counts in ``report`` are right (the plain
    :meth:`RedactSecrets.check` does not count).
    """

    secrets: RedactSecrets
    name: ClassVar[str] = "redact_secrets"

    @property
    def report(self) -> RedactionReport:
        return self.secrets.report

    def check(self, rollout: Rollout) -> str | None:
        return self.secrets.apply(rollout).dropped


def secrets_step(
    on_secret: str = "replace",
    *,
    allowlist: str | os.PathLike[str] | None = None,
    pii: Iterable[str] = (),
    options: ReadOptions | None = None,
    clean: Container[str] | None = None,
    record_clean: _Recorder | None = None,
) -> RedactSecrets:
    """The one way a command or the pipeline builds its ``redact_secrets`` step: ``on_secret``
    (``replace`` or ``drop``; another value is a :class:`ConfigError`), an allowlist file, the
    opt-in PII kinds (:data:`~rollcraft.redact.PII_KINDS`) and the reader's options."""
    allowed = load_allowlist(os.fspath(allowlist)) if allowlist else Allowlist()
    return RedactSecrets(
        on_secret=on_secret,  # type: ignore[arg-type]  # checked in __post_init__
        redactor=Redactor(allowlist=allowed, pii=frozenset(pii)),
        options=options if options is not None else ReadOptions(),
        clean=clean,
        record_clean=record_clean,
    )


def redacted_reject(raw: bytes) -> bytes:
    """What a rejects file holds of a line dropped by ``redact_secrets``: the line with every
    kind of secret replaced (no allowlist), or ``null`` when it cannot be decoded."""
    return _line_or_null(_every_kind(), raw)


def _line_or_null(redactor: Redactor, raw: bytes) -> bytes:
    try:
        return redactor._redact_line(raw, checked=False)[0]
    except _Unreadable:
        return b"null"


@functools.cache
def _every_kind() -> Redactor:
    return Redactor()


_UNREADABLE = "not valid JSON to redaction (cannot be searched)"


def _drop_reason(counts: Counter[str]) -> str:
    return "secret found: " + ", ".join(sorted(counts))
