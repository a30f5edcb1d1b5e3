"""Shared terminal helpers: one rich console for reports (stdout) and one for messages (stderr).

When a command writes data to standard output (an output given as ``-``), :func:`reports_to_stderr`
sends the reports there too, so standard output carries only the data.
"""

from __future__ import annotations

import sys

from rich.console import Console

__all__ = ["err", "out", "reports_to_stderr"]

# Piped output is read by people too (logs, CI): wide enough that tables keep one line a row.
out = Console(highlight=False, soft_wrap=False, width=None if sys.stdout.isatty() else 140)
err = Console(stderr=True, highlight=False, soft_wrap=True)


def reports_to_stderr() -> None:
    """Print every report (tables, summaries) on standard error from now on: stdout is data."""
    out.file = sys.stderr
