"""KTO rows: unpaired preferences, one row per rollout, for TRL's ``KTOTrainer``.

NeMo Gym rewards are mostly binary and many tasks have a single rollout, so most rollouts can
never be one side of a DPO pair. KTO learns from each alone: ``{"prompt", "completion",
"label"}`` in TRL's conversational form (``label`` true: desirable), the tools carried as the trl
dialect carries them (JSON text, which ``KTOTrainer`` reads), with the rollout's reward, task type
and id beside (``KTOTrainer`` ignores other keys). The prompt is the task's prompt, the
completion everything the agent produced.

Desirable is a success and undesirable a failure (the reader's ``success``), or, with
thresholds, a reward >= ``desirable_min_reward`` and <= ``undesirable_max_reward``; a rollout
between the two is left out (``between_kto_thresholds``).

>>> fmt = KtoFormat()
>>> # rows = [fmt.row(r) for r in rollouts if fmt.left_out(r) is None]
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from rollcraft._errors import ConfigError
from rollcraft._records import Rollout
from rollcraft.formats._dialects import ArgumentsMode, Dialect, encode_messages, encode_tools
from rollcraft.formats._templates import RowShape

__all__ = ["DESIRABLE", "UNDESIRABLE", "KtoFormat", "kto_summary", "kto_weights", "label_weights"]

DESIRABLE, UNDESIRABLE = "desirable", "undesirable"
#: A rollout left out because its reward is between the two thresholds.
BETWEEN = "between_kto_thresholds"
#: A rollout left out because nothing precedes the agent's output (no system or user turn).
EMPTY_PROMPT = "empty_prompt"


@dataclass(frozen=True, slots=True)
class KtoFormat:
    """The KTO row format (:class:`rollcraft.formats._rows.RowFormat`; see the module docstring)."""

    arguments: ArgumentsMode = "string"
    desirable_min_reward: float | None = None
    undesirable_max_reward: float | None = None
    shape: RowShape | None = None
    name: str = "kto"
    dialect: Dialect = "trl"

    def __post_init__(self) -> None:
        low, high = self.undesirable_max_reward, self.desirable_min_reward
        if (low is None) != (high is None):
            raise ConfigError("give both desirable_min_reward and undesirable_max_reward, or neither")
        if low is not None and high is not None and low >= high:
            raise ConfigError("must be below desirable_min_reward", key="undesirable_max_reward")

    def desirable(self, rollout: Rollout) -> bool:
        if self.desirable_min_reward is None:
            return rollout.success
        return rollout.reward >= self.desirable_min_reward

    def left_out(self, rollout: Rollout) -> str | None:
        if not rollout.conversation.prompt:
            return EMPTY_PROMPT  # TRL's KTOTrainer needs a prompt to condition on
        high, low = self.desirable_min_reward, self.undesirable_max_reward
        if high is None or low is None:
            return None
        return BETWEEN if low < rollout.reward < high else None

    def label(self, rollout: Rollout) -> str | None:
        return DESIRABLE if self.desirable(rollout) else UNDESIRABLE

    def rows(self, rollout: Rollout) -> list[dict[str, Any]]:
        return [self.row(rollout)]

    def row(self, rollout: Rollout) -> dict[str, Any]:
        conversation = rollout.conversation
        return {
            "prompt": encode_messages(conversation.prompt, "trl", arguments=self.arguments, shape=self.shape),
            "completion": encode_messages(
                conversation.completion, "trl", arguments=self.arguments, shape=self.shape
            ),
            "label": self.desirable(rollout),
            "tools": encode_tools(conversation.tools, "trl", self.shape),
            "reward": rollout.reward,
            "task_type": rollout.task_type,
            "rollout_id": rollout.rollout_id,
        }


def kto_weights(desirable: int, undesirable: int) -> dict[str, Any]:
    """The loss weights TRL documents for an unbalanced ratio (KTO paper, Eq. 8, as
    ``KTOTrainer`` checks them): with the other weight at 1, EITHER ``desirable_weight`` in
    ``[nu/nd, 1.33 nu/nd]`` OR ``undesirable_weight`` in ``[nd/(1.33 nu), nd/nu]``.

    >>> kto_weights(100, 400)["desirable_weight"]
    [4.0, 5.32]
    """
    nd, nu = max(desirable, 1), max(undesirable, 1)
    return {
        "desirable": desirable,
        "undesirable": undesirable,
        "balanced": desirable == undesirable,
        "desirable_weight": [round(nu / nd, 2), round(nu / nd * 1.33, 2)],
        "undesirable_weight": [round(nd / nu / 1.33, 2), round(nd / nu, 2)],
    }


def label_weights(counts: dict[str, Any]) -> dict[str, Any]:
    """:func:`kto_weights` of a report's counts (its ``labels``)."""
    labels = counts.get("labels", {})
    return kto_weights(labels.get(DESIRABLE, 0), labels.get(UNDESIRABLE, 0))


def kto_summary(counts: dict[str, Any]) -> str:
    """One line on a KTO file's labels, and the loss weights TRL suggests when they are unbalanced."""
    weights = label_weights(counts)
    line = f"KTO: {weights['desirable']} desirable, {weights['undesirable']} undesirable"
    if weights["balanced"] or not (weights["desirable"] and weights["undesirable"]):
        return line + ("" if weights["balanced"] else " (KTO needs both)")
    low, high = weights["desirable_weight"]
    under_low, under_high = weights["undesirable_weight"]
    return (
        f"{line}; unbalanced: set desirable_weight in [{low}, {high}] "
        f"or undesirable_weight in [{under_low}, {under_high}] (KTOConfig)"
    )
