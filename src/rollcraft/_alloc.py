"""Process tuning for the streaming hot path, for processes rollcraft owns (glibc allocator, GC).

The library leaves its caller's process alone: ``import rollcraft; rollcraft.run_pipeline(...)``
changes neither the allocator nor the garbage collector. Only a process that is rollcraft's own
is tuned: the ``rollcraft`` command line (:func:`rollcraft.cli.main` calls :func:`tune_process`
first), the worker processes it forks (they inherit it), and the worker processes a Ray run
starts its tasks in (``few_collections(own_process=True)``).

Both are shortcuts for speed, and the output is the same without them
(``tests/perf/test_shortcuts.py``). What they buy, ``rollcraft run`` (filter + SFT + DPO) over
300 MB of the benchmark's input, three or four runs of 4-8 interleaved rounds (``python
benchmarks/shortcuts.py --size 300MB --only gc,malloc``): without the collector's tuning a run
takes 0-4% more CPU time (medians; the fastest rounds -3% to +4%), without the allocator's 2-6%
more (the fastest rounds 1-2%).
"""

from __future__ import annotations

import sys

__all__ = ["process_tuned", "tune_process"]

_M_TRIM_THRESHOLD, _M_TOP_PAD, _M_MMAP_THRESHOLD = -1, -2, -3
_TUNED: list[bool] = []


def tune_process() -> None:
    """Mark this process as rollcraft's own and tune its allocator (once; call it only there).

    Marked, the hot path (:func:`rollcraft.engines._plan.few_collections`) also keeps the cyclic
    garbage collector out of its way. The allocator: glibc malloc's mmap and trim thresholds are
    raised (elsewhere nothing changes). A pass allocates and frees a long line and its decoded
    objects line after line. With glibc's defaults the larger blocks are mapped and unmapped, and
    the heap top trimmed and regrown, each time: page faults that cost about a fifth of a pass's
    time in the kernel (system time 1.2 s -> 0.6 s per GB when set at start-up). Blocks up to
    32 MiB now come from the heap, and up to 64 MiB of free heap top is kept; peak RSS is
    unchanged within a few MB. It stays set for the process (mallopt has no getter), and forked
    workers inherit it.
    """
    if _TUNED:
        return
    _TUNED.append(True)
    if not sys.platform.startswith("linux"):
        return
    try:
        import ctypes

        libc = ctypes.CDLL("libc.so.6")
        libc.mallopt(_M_MMAP_THRESHOLD, 32 << 20)
        libc.mallopt(_M_TRIM_THRESHOLD, 16 << 20)
        libc.mallopt(_M_TOP_PAD, 4 << 20)
    except (OSError, AttributeError):  # not glibc (musl, ...): keep the defaults
        return


def process_tuned() -> bool:
    """Whether this process is rollcraft's own (:func:`tune_process` ran here or before a fork)."""
    return bool(_TUNED)
