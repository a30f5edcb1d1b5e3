"""The per-component reward threshold: :class:`MinComponent` (``--min-component NAME=X``).

A multi-reward NeMo Gym record carries ``reward_components`` (``rollout.reward_component(name)``);
a rollout is kept when each named component reaches its threshold. A rollout without a named
component is dropped: a threshold it cannot be held to is never a pass.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, ClassVar

from rollcraft._records import Rollout

__all__ = ["MinComponent", "parse_components"]


@dataclass(frozen=True, slots=True)
class MinComponent:
    """Keep rollouts whose reward component ``name`` is at least its threshold, for each pair of
    ``thresholds`` (in the order given)."""

    thresholds: tuple[tuple[str, float], ...]
    name: ClassVar[str] = "min_component"

    @classmethod
    def of(cls, value: Mapping[str, float]) -> MinComponent:
        """The step of a ``min_component`` mapping (component name -> threshold)."""
        return cls(tuple(value.items()))

    def check(self, rollout: Rollout) -> str | None:
        for component, threshold in self.thresholds:
            value = rollout.reward_component(component)
            if value is None:
                return f"no reward component {component}"
            if value < threshold:
                return f"{component} {value:g} < {threshold:g}"
        return None


def parse_components(value: Any) -> Any:
    """``"NAME=X"`` or comma-separated pairs (``"a=0.5,b=1"``, a flag's text) as a mapping of
    floats; any other value is left to the config's validation."""
    if not isinstance(value, str):
        return value
    pairs: dict[str, float] = {}
    for part in (p.strip() for p in value.split(",")):
        name, sep, number = part.partition("=")
        if not part or not sep or not name.strip():
            raise ValueError(f"expected NAME=X (comma-separated pairs), got {part!r}")
        try:
            pairs[name.strip()] = float(number)
        except ValueError:
            raise ValueError(f"the threshold of {name.strip()} is not a number: {number.strip()!r}") from None
    return pairs
