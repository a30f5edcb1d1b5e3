"""Row formats: one row per kept rollout (SFT, KTO), behind one small protocol.

A :class:`RowFormat` says which rollouts it leaves out by choice (``left_out``: success only, a
reward threshold), how a rollout it keeps is labelled (``label``: KTO's desirable or
undesirable; None for SFT) and what its rows are (``rows``: one, or one per assistant turn).
Whether a rollout can be a row at all is the same for every format
(:func:`rollcraft.formats.sft_skip_reason`: a conversation that ends with an answer, every call
answered). :func:`count_row` applies both and counts in an
:class:`~rollcraft.formats.SftReport`; the :class:`rollcraft.steps.WriteRows` step writes the
rows, for the commands and for the pipeline, where each row format is a section
(:mod:`rollcraft._pipeline_config`).
"""

from __future__ import annotations

from typing import Any, Protocol

from rollcraft._records import Rollout
from rollcraft.formats._dialects import Dialect

__all__ = ["RowFormat", "RowReport", "count_row", "drops_reasoning"]


class RowReport(Protocol):
    """What :func:`count_row` counts in (an :class:`~rollcraft.formats.SftReport`)."""

    rows: int
    reasoning_lost: int

    def skip(self, reason: str) -> None: ...

    def label(self, label: str) -> None: ...


class RowFormat(Protocol):
    """A format of one row per kept rollout (see the module docstring)."""

    @property
    def name(self) -> str:
        """The format's name: its command, its pipeline section, its report's key."""
        ...

    @property
    def dialect(self) -> Dialect:
        """The trainer dialect its rows are in."""
        ...

    def left_out(self, rollout: Rollout) -> str | None:
        """Why the format leaves ``rollout`` out by choice, or None."""
        ...

    def label(self, rollout: Rollout) -> str | None:
        """The row's label (counted in the report), or None."""
        ...

    def rows(self, rollout: Rollout) -> list[dict[str, Any]]:
        """The rows of a rollout it keeps (one, or one per assistant turn: ``sft --expand turns``)."""
        ...


def count_row(fmt: RowFormat, rollout: Rollout, unfit: str | None, report: RowReport) -> bool:
    """Whether ``rollout`` gets rows of ``fmt`` (``unfit``: ``sft_skip_reason(rollout)``),
    counted in ``report``: its label, or the reason it is skipped (the caller adds its rows)."""
    reason = fmt.left_out(rollout) or unfit
    if reason is not None:
        report.skip(reason)
        return False
    if drops_reasoning(rollout, fmt.dialect):
        report.reasoning_lost += 1
    label = fmt.label(rollout)
    if label is not None:
        report.label(label)
    return True


def drops_reasoning(rollout: Rollout, dialect: Dialect) -> bool:
    """Whether ``dialect``'s row of ``rollout`` leaves reasoning out.

    Only ``openai`` does: its fine-tuning messages have no field for reasoning. Reading with
    ``reasoning="think"`` (``--reasoning think``) inlines it in the content as
    ``<think>...</think>``, which every dialect carries.
    """
    return dialect == "openai" and any(m.get("reasoning_content") for m in rollout.conversation.messages)
