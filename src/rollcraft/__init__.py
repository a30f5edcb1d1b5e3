"""rollcraft: turn agent rollouts into training data, train on it, and prove it helped.

The command line (``rollcraft --help``) is a thin layer over this API::

    >>> from rollcraft import read_rollouts, Rollout
    >>> rollouts = [r for r in read_rollouts(["examples/rollouts"]) if isinstance(r, Rollout)]
"""

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING, Any

# The names are imported when first used (PEP 562), so the command line starts without importing
# the modules a command does not need; ``tests/test_api.py`` checks this table against the imports.
if TYPE_CHECKING:
    from rollcraft._errors import ConfigError, DependencyError, InputError, OutputError, RollcraftError
    from rollcraft._io import atomic_writer, expand_inputs
    from rollcraft._records import Conversation, Message, Quarantined, Rollout, Tool
    from rollcraft.curate import Decision, Strata, apply_review, balance, read_decisions, sample_for_review
    from rollcraft.evaluate import Comparison, Score, compare, evaluate_files
    from rollcraft.filters import (
        DEFAULT_DROP_FLAGS,
        Drop,
        FilterConfig,
        FilterReport,
        TaskStats,
        build_steps,
        judge,
        run_filters,
    )
    from rollcraft.formats import DpoOptions, DpoReport, SftReport, dpo_rows, sft_row, sft_rows
    from rollcraft.pipeline import diff_versions, list_versions, load_pipeline_config, run_pipeline
    from rollcraft.read._inspect import FileSummary, InspectReport, inspect_paths
    from rollcraft.read._normalize import FLAGS
    from rollcraft.read._reader import QUARANTINE_REASONS, ReadOptions, ReadReport, parse_line, read_rollouts
    from rollcraft.steps import filter_paths
    from rollcraft.validate import Finding, ValidationReport, validate_file

_EXPORTS: dict[str, tuple[str, ...]] = {
    "rollcraft._errors": (
        "ConfigError",
        "DependencyError",
        "InputError",
        "OutputError",
        "RollcraftError",
    ),
    "rollcraft.read._inspect": (
        "FileSummary",
        "InspectReport",
        "inspect_paths",
    ),
    "rollcraft._io": (
        "atomic_writer",
        "expand_inputs",
    ),
    "rollcraft.read._normalize": ("FLAGS",),
    "rollcraft.read._reader": (
        "QUARANTINE_REASONS",
        "ReadOptions",
        "ReadReport",
        "parse_line",
        "read_rollouts",
    ),
    "rollcraft._records": (
        "Conversation",
        "Message",
        "Quarantined",
        "Rollout",
        "Tool",
    ),
    "rollcraft.curate": (
        "Decision",
        "Strata",
        "apply_review",
        "balance",
        "read_decisions",
        "sample_for_review",
    ),
    "rollcraft.evaluate": (
        "Comparison",
        "Score",
        "compare",
        "evaluate_files",
    ),
    "rollcraft.filters": (
        "DEFAULT_DROP_FLAGS",
        "Drop",
        "FilterConfig",
        "FilterReport",
        "TaskStats",
        "build_steps",
        "judge",
        "run_filters",
    ),
    "rollcraft.formats": (
        "DpoOptions",
        "DpoReport",
        "SftReport",
        "dpo_rows",
        "sft_row",
        "sft_rows",
    ),
    "rollcraft.pipeline": (
        "diff_versions",
        "list_versions",
        "load_pipeline_config",
        "run_pipeline",
    ),
    "rollcraft.steps": ("filter_paths",),
    "rollcraft.validate": (
        "Finding",
        "ValidationReport",
        "validate_file",
    ),
}

_MODULE_OF = {name: module for module, names in _EXPORTS.items() for name in names}

__version__ = "0.1.0"

__all__ = [
    "DEFAULT_DROP_FLAGS",
    "FLAGS",
    "QUARANTINE_REASONS",
    "Comparison",
    "ConfigError",
    "Conversation",
    "Decision",
    "DependencyError",
    "DpoOptions",
    "DpoReport",
    "Drop",
    "FileSummary",
    "FilterConfig",
    "FilterReport",
    "Finding",
    "InputError",
    "InspectReport",
    "Message",
    "OutputError",
    "Quarantined",
    "ReadOptions",
    "ReadReport",
    "RollcraftError",
    "Rollout",
    "Score",
    "SftReport",
    "Strata",
    "TaskStats",
    "Tool",
    "ValidationReport",
    "__version__",
    "apply_review",
    "atomic_writer",
    "balance",
    "build_steps",
    "compare",
    "diff_versions",
    "dpo_rows",
    "evaluate_files",
    "expand_inputs",
    "filter_paths",
    "inspect_paths",
    "judge",
    "list_versions",
    "load_pipeline_config",
    "parse_line",
    "read_decisions",
    "read_rollouts",
    "run_filters",
    "run_pipeline",
    "sample_for_review",
    "sft_row",
    "sft_rows",
    "validate_file",
]


def __getattr__(name: str) -> Any:
    module = _MODULE_OF.get(name)
    if module is None:
        raise AttributeError(f"module 'rollcraft' has no attribute {name!r}")
    value = getattr(import_module(module), name)
    globals()[name] = value  # the next lookup is a plain attribute
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *__all__})
