"""Filter steps: each keeps a rollout or drops it and says why.

A step is a small frozen object with a ``name`` (its config key) and one method,
``check(rollout) -> str | None``: ``None`` keeps the rollout, a string is the reason it is
dropped. Steps run in config order; a dropped rollout is attributed to the first step that
drops it, and the report also counts what each step alone would drop::

    >>> from rollcraft.filters import FilterConfig, build_steps
    >>> steps = build_steps(FilterConfig(min_reward=0.5, dedupe=True))
    >>> [step.name for step in steps]
    ['min_reward', 'dedupe', 'drop_flagged']

Keys run in the order they are named (YAML order, keyword order); active keys not named (a
flag not in the YAML, the default ``drop_flagged``) follow in :data:`STEP_KEYS` order.

The task-level step (``min_success_rate``) needs :class:`TaskStats` from a first pass over the
inputs; :func:`rollcraft.filter_paths` does both passes (spooling stdin to a temporary file).

The package, one role a module: ``_base`` (:class:`Filter`, :class:`Drop`), ``_thresholds``
(the per-rollout steps), ``_components`` (:class:`MinComponent`: a threshold per reward
component), ``_tokens`` (:class:`MaxTokens`), ``_tasks`` (:class:`TaskStats`,
:class:`MinTaskSuccessRate`), ``_dedupe`` (:class:`Dedupe`), ``_contamination``
(:class:`Decontaminate`, :class:`EvalPrompts`: evaluation prompts matched exactly and by 13-grams),
``_config`` (:class:`FilterConfig`, the registry: each key's annotation says how it becomes a
step and a flag; :func:`build_steps`), ``_judge`` (:func:`judge`, :class:`FilterReport`),
``_passes`` (two passes over stdin). The runner of every kind of step, filters among them, is
:mod:`rollcraft.steps`.
"""

from __future__ import annotations

from rollcraft.filters._base import Drop, Filter, StepSpec
from rollcraft.filters._components import MinComponent
from rollcraft.filters._config import DEFAULT_DROP_FLAGS, STEP_KEYS, FilterConfig, build_steps, step_spec
from rollcraft.filters._contamination import Decontaminate, EvalPrompts
from rollcraft.filters._dedupe import Dedupe, conversation_key
from rollcraft.filters._judge import FilterReport, judge, run_filters
from rollcraft.filters._passes import relabel as relabel
from rollcraft.filters._passes import rereadable as rereadable
from rollcraft.filters._tasks import MinTaskSuccessRate, TaskStats
from rollcraft.filters._thresholds import (
    DropFlagged,
    MaxAssistantTurns,
    MaxChars,
    MaxReward,
    MaxTurns,
    MinAssistantTurns,
    MinReward,
    MinTurns,
    RequireToolUsage,
    SuccessOnly,
)
from rollcraft.filters._tokens import MaxTokens

__all__ = [
    "DEFAULT_DROP_FLAGS",
    "STEP_KEYS",
    "Decontaminate",
    "Dedupe",
    "Drop",
    "DropFlagged",
    "EvalPrompts",
    "Filter",
    "FilterConfig",
    "FilterReport",
    "MaxAssistantTurns",
    "MaxChars",
    "MaxReward",
    "MaxTokens",
    "MaxTurns",
    "MinAssistantTurns",
    "MinComponent",
    "MinReward",
    "MinTaskSuccessRate",
    "MinTurns",
    "RequireToolUsage",
    "StepSpec",
    "SuccessOnly",
    "TaskStats",
    "build_steps",
    "conversation_key",
    "judge",
    "rereadable",
    "run_filters",
    "step_spec",
]
