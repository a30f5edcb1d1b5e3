"""``Score``: what evaluation needs of one rollout."""

from __future__ import annotations

from typing import NamedTuple

__all__ = ["Score"]


class Score(NamedTuple):
    """What evaluation needs of one rollout (``rollout_id`` names it in the list of flipped tasks)."""

    task_key: str
    task_type: str
    reward: float
    success: bool
    rollout_id: str = ""
