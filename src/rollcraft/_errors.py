"""The one exception hierarchy of rollcraft.

::

    RollcraftError            anything rollcraft raises on purpose; the CLI prints it, exit 2
    ├── InputError            an input cannot be read: missing file, unreadable compression
    │                         (``path`` and, where known, ``line`` say where)
    ├── ConfigError           a configuration file or option is wrong (``key`` and ``line``)
    ├── OutputError           an output cannot be written, or would overwrite something kept
    └── DependencyError       an optional extra (``rollcraft[train]``, ``[ray]``, ``[review]``)
                              is needed and not installed

A record that is merely odd is never an exception: it is quarantined with a reason.
"""

from __future__ import annotations

__all__ = ["ConfigError", "DependencyError", "InputError", "OutputError", "RollcraftError"]


class RollcraftError(Exception):
    """Base class of every error rollcraft raises on purpose."""


class InputError(RollcraftError):
    """An input file, folder, glob or stream cannot be read."""

    def __init__(self, message: str, *, path: str | None = None, line: int | None = None) -> None:
        where = path if line is None else f"{path}:{line}"
        super().__init__(f"{where}: {message}" if where else message)
        self.path = path
        self.line = line


class ConfigError(RollcraftError):
    """A configuration value is missing, of the wrong type or out of range."""

    def __init__(self, message: str, *, key: str | None = None, line: int | None = None) -> None:
        where = ""
        if key:
            where = f"{key}" + (f" (line {line})" if line else "") + ": "
        super().__init__(f"{where}{message}")
        self.message = message
        self.key = key
        self.line = line


class OutputError(RollcraftError):
    """An output cannot be written (or would overwrite something that must be kept)."""


class DependencyError(RollcraftError):
    """An optional dependency is missing; the message names the extra to install."""
