"""Steps: what every command and the pipeline are made of.

A run reads lines and pushes them through a list of steps (:func:`run_steps`, the one runner):
rewrites (a quarantined line's detail redacted), filters (``check(rollout) -> None | reason``:
:mod:`rollcraft.filters`), then stages over the judged stream: review decisions
(:class:`Review`), balance (:class:`Categorize` in a first pass, :func:`choose`, then
:class:`Select`), and the writers (:class:`WriteKept`, :class:`WriteRejects`, :class:`WriteRows`,
:class:`CollectDpo`); replace-mode redaction (:class:`RedactWritten`) comes just before the
writers, so only what is written is searched (:func:`with_redaction` places it). Each step
counts in its own report, and reports add up across shards and workers. ``rollcraft filter``,
``sft``, ``dpo``, ``apply-review``, ``balance`` and the pipeline (:mod:`rollcraft.engines`,
every engine) each build a list of these steps::

    >>> from rollcraft import read_rollouts
    >>> from rollcraft.filters import FilterReport, SuccessOnly
    >>> import io
    >>> sink = io.BytesIO()
    >>> steps = [SuccessOnly(), WriteKept(sink)]
    >>> drain(run_steps(read_rollouts(["examples/rollouts"]), steps, FilterReport()))

The modules: ``_base`` (the kinds of step, :func:`run_steps`), ``_redact``, ``_review``,
``_balance``, ``_write`` (lines kept and rejected), ``_formats`` (SFT rows, DPO candidates),
``_paths`` (steps over files: :func:`run_paths`, :func:`filter_paths`).
"""

from __future__ import annotations

from rollcraft.steps._balance import Categorize, Choice, Select, category_of, choose, draw
from rollcraft.steps._base import Item, Judged, Rewrite, Stage, Step, drain, run_steps
from rollcraft.steps._formats import SHARD_LINES, CollectDpo, WriteRows
from rollcraft.steps._paths import filter_paths, run_paths
from rollcraft.steps._redact import RedactLines, RedactWritten, with_redaction
from rollcraft.steps._review import Review, ReviewReport
from rollcraft.steps._trajectories import ExpandTrajectories
from rollcraft.steps._write import TellingWriter, WriteKept, Writer, WriteRejects, reject_line

__all__ = [
    "SHARD_LINES",
    "Categorize",
    "Choice",
    "CollectDpo",
    "ExpandTrajectories",
    "Item",
    "Judged",
    "RedactLines",
    "RedactWritten",
    "Review",
    "ReviewReport",
    "Rewrite",
    "Select",
    "Stage",
    "Step",
    "TellingWriter",
    "WriteKept",
    "WriteRejects",
    "WriteRows",
    "Writer",
    "category_of",
    "choose",
    "drain",
    "draw",
    "filter_paths",
    "reject_line",
    "run_paths",
    "run_steps",
    "with_redaction",
]
