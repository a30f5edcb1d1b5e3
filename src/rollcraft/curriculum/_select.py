"""Which tasks go to the next round: the pass-rate band, then the per-type cap.

Each task ends as exactly one outcome (:data:`OUTCOMES`): ``too_hard`` (pass rate below the
band), ``too_easy`` (above it), ``no_input_row`` (in the band, but no input row can be written),
``over_cap`` (in the band, left out by ``max_per_type``) or ``kept``. The bounds are inclusive:
with ``0.1:0.9``, a task solved 1 time in 10 is kept. The cap keeps a seeded random choice of a
type's tasks (``random.Random(seed)`` over the tasks sorted by key), never the first N.
"""

from __future__ import annotations

import math
import random
from collections import Counter
from collections.abc import Iterable

__all__ = ["BINS", "OUTCOMES", "band_outcome", "cap", "decile", "histogram"]

OUTCOMES = ("kept", "too_easy", "too_hard", "over_cap", "no_input_row")

#: The pass-rate histogram's bins: ``0.0-0.1`` ... ``0.9-1.0`` (each holds its lower bound; the
#: last holds 1.0 too).
BINS = tuple(f"{i / 10:.1f}-{(i + 1) / 10:.1f}" for i in range(10))


def band_outcome(rate: float, low: float, high: float) -> str | None:
    """``too_hard``, ``too_easy``, or None for a rate in ``[low, high]``."""
    if rate < low:
        return "too_hard"
    if rate > high:
        return "too_easy"
    return None


def cap(candidates: dict[str, list[str]], max_per_type: int | None, seed: int) -> set[str]:
    """The task keys kept of each type's ``candidates``: all, or a seeded choice of
    ``max_per_type`` of them."""
    kept: set[str] = set()
    for task_type in sorted(candidates):
        keys = sorted(candidates[task_type])
        if max_per_type is not None and len(keys) > max_per_type:
            keys = random.Random(f"{seed}:{task_type}").sample(keys, max_per_type)
        kept.update(keys)
    return kept


def decile(rate: float) -> str:
    """The histogram bin of a pass rate (0.3 is in ``0.3-0.4``, 1.0 in ``0.9-1.0``)."""
    return BINS[min(9, max(0, math.floor(rate * 10 + 1e-9)))]


def histogram(rates: Iterable[float]) -> dict[str, int]:
    """How many tasks' pass rates fall in each decile (every bin listed)."""
    counts = Counter(decile(rate) for rate in rates)
    return {name: counts.get(name, 0) for name in BINS}
