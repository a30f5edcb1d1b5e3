"""What a filter step is (:class:`Filter`), why a rollout was dropped (:class:`Drop`), and how a
config key becomes a step (:class:`StepSpec`)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import ClassVar, Literal, Protocol

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


@dataclass(frozen=True, slots=True)
class StepSpec:
    """How a :class:`~rollcraft.filters.FilterConfig` key becomes a filter step and a flag: the
    key's annotation carries it, so the config is the registry of filters.

    ``make`` builds the step: from the key's value (``kind="value"``), from nothing when the
    key is true (``"switch"``), or from the value, the whole config and the task stats of a
    first pass (``"context"``). ``help`` is the flag's help; ``flag`` its name when it is not
    ``--`` and the key with dashes. ``needs_tasks``: the step needs a first pass's task stats.
    """

    make: Callable[..., Filter]
    help: str
    kind: Literal["value", "switch", "context"] = "value"
    flag: str | None = None
    needs_tasks: bool = False

    def option(self, key: str) -> str:
        """The command-line flag of ``key``."""
        return self.flag or "--" + key.replace("_", "-")
