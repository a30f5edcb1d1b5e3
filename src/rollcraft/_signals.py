"""Interrupted runs leave no partial output: SIGTERM and SIGINT remove live temporary files.

Every output is written through :func:`rollcraft._io.atomic_writer` (a hidden temporary sibling
``.NAME.XXXX.tmp`` renamed over ``NAME`` on success), so the target is either the old file or
the complete new one. On SIGTERM or SIGINT the handler deletes the temporaries of writes in
progress and exits with 128 + the signal number (143, 130). SIGKILL cannot be caught: it can
leave a ``.NAME.*.tmp`` file behind, but never a half-written ``NAME``.
"""

from __future__ import annotations

import signal
import sys
import threading
from types import FrameType

from rollcraft._io import remove_live_temps

__all__ = ["install_cleanup_handlers"]

_installed = False


def install_cleanup_handlers() -> None:
    """Make SIGTERM and SIGINT delete live temporary outputs, then exit 143 / 130.

    Safe to call more than once; does nothing outside the main thread (where Python cannot
    install handlers).
    """
    global _installed
    if _installed or threading.current_thread() is not threading.main_thread():
        return
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, _cleanup_and_exit)
    _installed = True


def _cleanup_and_exit(signum: int, frame: FrameType | None) -> None:
    for other in (signal.SIGTERM, signal.SIGINT):
        signal.signal(other, signal.SIG_IGN)  # a second signal must not interrupt the cleanup
    remove_live_temps()
    name = signal.Signals(signum).name
    print(f"\n{name}: stopped; no partial output was left", file=sys.stderr)
    raise SystemExit(128 + signum)
