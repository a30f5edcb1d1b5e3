"""rollcraft: turn agent rollouts into training data, train on it, and prove it helped.

The command line (``rollcraft --help``) is a thin layer over this API::

    >>> from rollcraft import read_rollouts, Rollout
    >>> rollouts = [r for r in read_rollouts(["examples/rollouts"]) if isinstance(r, Rollout)]
"""

from __future__ import annotations

from rollcraft._errors import ConfigError, DependencyError, InputError, OutputError, RollcraftError
from rollcraft._inspect import FileSummary, InspectReport, inspect_paths
from rollcraft._io import atomic_writer, expand_inputs
from rollcraft._normalize import FLAGS
from rollcraft._read import QUARANTINE_REASONS, ReadOptions, ReadReport, parse_line, read_rollouts
from rollcraft._records import Conversation, Message, Quarantined, Rollout, Tool

__version__ = "0.1.0"

__all__ = [
    "FLAGS",
    "QUARANTINE_REASONS",
    "ConfigError",
    "Conversation",
    "DependencyError",
    "FileSummary",
    "InputError",
    "InspectReport",
    "Message",
    "OutputError",
    "Quarantined",
    "ReadOptions",
    "ReadReport",
    "RollcraftError",
    "Rollout",
    "Tool",
    "__version__",
    "atomic_writer",
    "expand_inputs",
    "inspect_paths",
    "parse_line",
    "read_rollouts",
]
