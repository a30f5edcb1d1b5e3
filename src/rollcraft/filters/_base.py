"""What a filter step is (:class:`Filter`), and why a rollout was dropped (:class:`Drop`)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar, Protocol

from rollcraft._records import Rollout


class Filter(Protocol):
    """What a filter step is: a config-key ``name`` and ``check`` (None keeps, a string drops)."""

    name: ClassVar[str]

    def check(self, rollout: Rollout) -> str | None: ...


@dataclass(frozen=True, slots=True)
class Drop:
    """Why a rollout was dropped: ``by`` is the step name, ``reason`` its detail."""

    by: str
    reason: str
