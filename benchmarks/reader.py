"""rollcraft's reader alone: every line read, decoded and normalized, nothing filtered or written.

``python benchmarks/reader.py FILE``; prints how many lines became rollouts and how many were
quarantined. Every ``rollcraft run`` pays this first (with the same read options and the same
garbage-collector settings as a pass), so its time against the floor (a) says how much of a run's
ratio the reader alone takes, before any filter, format or write.
"""

from __future__ import annotations

import sys

from rollcraft._records import Rollout
from rollcraft.engines._plan import few_collections
from rollcraft.read._reader import ReadOptions, read_rollouts


def main(path: str) -> None:
    """Read every line; count rollouts and quarantined lines so nothing is optimized away."""
    rollouts = quarantined = 0
    with few_collections(own_process=True):  # as in `rollcraft run`, whose process is its own
        for item in read_rollouts([path], options=ReadOptions()):
            if isinstance(item, Rollout):
                rollouts += 1
            else:
                quarantined += 1
    print(f"reader: {rollouts} rollouts, {quarantined} quarantined")


if __name__ == "__main__":
    main(sys.argv[1])
