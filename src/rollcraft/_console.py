"""Shared terminal helpers: one rich console for reports (stdout) and one for messages (stderr)."""

from __future__ import annotations

import sys

from rich.console import Console

__all__ = ["err", "out"]

# Piped output is read by people too (logs, CI): wide enough that tables keep one line a row.
out = Console(highlight=False, soft_wrap=False, width=None if sys.stdout.isatty() else 140)
err = Console(stderr=True, highlight=False, soft_wrap=True)
