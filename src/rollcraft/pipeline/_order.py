"""A run's SFT rows from easy to hard (``sft: {order: easy-to-hard}``, as ``rollcraft sft --order``).

The engines write rows as they come (in shards, in parallel); once the run is done, the rows and
their ids file are put in order of their task's pass rate (:mod:`rollcraft.formats._order`): the
rates from the inputs (:func:`rollcraft.curriculum.task_pass_rates`), each row's task from its
rollout id (a trajectory conversation's id starts with its rollout's).
"""

from __future__ import annotations

from array import array
from pathlib import Path

from rollcraft._pipeline_config import LoadedConfig
from rollcraft._records import Rollout
from rollcraft.engines import Outcome
from rollcraft.formats._order import EASY_TO_HARD, rate_of, reorder_file
from rollcraft.read._reader import read_rollouts

__all__ = ["order_rows"]


def order_rows(loaded: LoadedConfig, inputs: list[str], folder: Path, outcome: Outcome) -> None:
    """Reorder the SFT rows in ``folder`` (and ``sft_ids.txt``) when the config asks for it."""
    section = loaded.config.sft
    if section is None or section.order != EASY_TO_HARD:
        return
    from rollcraft.curriculum import task_pass_rates

    options = loaded.config.read.options()
    rates = task_pass_rates(inputs, options=options)
    tasks: dict[str, str] = {}
    for item in read_rollouts(inputs, options=options):
        if isinstance(item, Rollout):
            tasks.setdefault(item.rollout_id, item.task_key)
    ids = folder / "sft_ids.txt"
    with ids.open("rb") as lines:  # a row's id: its rollout's, or <rollout id>/... (a trajectory's)
        rollout_ids = (line.rstrip(b"\n").decode().split("/", 1)[0] for line in lines)
        row_rates = array("d", (rate_of(tasks.get(rid, ""), rates) for rid in rollout_ids))
    for path in (folder / section.file, ids):
        reorder_file(path, row_rates)
        outcome.digests.pop(path.name, None)  # its bytes moved: hashed again for the manifest
