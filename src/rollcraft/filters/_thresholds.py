"""The per-rollout steps: thresholds on reward, turns and characters, switches, flags."""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from rollcraft._records import Rollout


@dataclass(frozen=True, slots=True)
class MinReward:
    """Keep rollouts whose reward is at least ``threshold``."""

    threshold: float
    name: ClassVar[str] = "min_reward"

    def check(self, rollout: Rollout) -> str | None:
        return None if rollout.reward >= self.threshold else f"reward {rollout.reward:g} < {self.threshold:g}"


@dataclass(frozen=True, slots=True)
class MaxReward:
    """Keep rollouts whose reward is at most ``threshold``."""

    threshold: float
    name: ClassVar[str] = "max_reward"

    def check(self, rollout: Rollout) -> str | None:
        return None if rollout.reward <= self.threshold else f"reward {rollout.reward:g} > {self.threshold:g}"


@dataclass(frozen=True, slots=True)
class SuccessOnly:
    """Keep successful rollouts (explicit success/is_correct/resolved, else reward >= the threshold)."""

    name: ClassVar[str] = "success_only"

    def check(self, rollout: Rollout) -> str | None:
        return None if rollout.success else f"not a success (reward {rollout.reward:g})"


@dataclass(frozen=True, slots=True)
class MinTurns:
    """Keep rollouts with at least ``minimum`` completion messages (the tutorial's ``len(output)``)."""

    minimum: int
    name: ClassVar[str] = "min_turns"

    def check(self, rollout: Rollout) -> str | None:
        n = rollout.n_turns
        return None if n >= self.minimum else f"{n} turns < {self.minimum}"


@dataclass(frozen=True, slots=True)
class MaxTurns:
    """Keep rollouts with at most ``maximum`` completion messages."""

    maximum: int
    name: ClassVar[str] = "max_turns"

    def check(self, rollout: Rollout) -> str | None:
        n = rollout.n_turns
        return None if n <= self.maximum else f"{n} turns > {self.maximum}"


@dataclass(frozen=True, slots=True)
class MinAssistantTurns:
    """Keep rollouts with at least ``minimum`` assistant messages in the completion."""

    minimum: int
    name: ClassVar[str] = "min_assistant_turns"

    def check(self, rollout: Rollout) -> str | None:
        n = rollout.n_assistant_turns
        return None if n >= self.minimum else f"{n} assistant turns < {self.minimum}"


@dataclass(frozen=True, slots=True)
class MaxAssistantTurns:
    """Keep rollouts with at most ``maximum`` assistant messages in the completion."""

    maximum: int
    name: ClassVar[str] = "max_assistant_turns"

    def check(self, rollout: Rollout) -> str | None:
        n = rollout.n_assistant_turns
        return None if n <= self.maximum else f"{n} assistant turns > {self.maximum}"


@dataclass(frozen=True, slots=True)
class RequireToolUsage:
    """Keep rollouts in which the agent made at least one tool call."""

    name: ClassVar[str] = "require_tool_usage"

    def check(self, rollout: Rollout) -> str | None:
        return None if rollout.uses_tools else "no tool call"


@dataclass(frozen=True, slots=True)
class MaxChars:
    """Keep rollouts whose message texts (prompt and completion) total at most ``maximum`` characters."""

    maximum: int
    name: ClassVar[str] = "max_chars"

    def check(self, rollout: Rollout) -> str | None:
        n = rollout.n_chars
        return None if n <= self.maximum else f"{n} chars > {self.maximum}"


@dataclass(frozen=True, slots=True)
class DropFlagged:
    """Drop rollouts that carry any of ``flags`` (see ``rollcraft.FLAGS``)."""

    flags: frozenset[str]
    name: ClassVar[str] = "drop_flagged"

    def check(self, rollout: Rollout) -> str | None:
        hit = rollout.flags & self.flags
        return "flagged " + ", ".join(sorted(hit)) if hit else None
