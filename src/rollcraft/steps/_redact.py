"""Secret redaction as steps: :class:`RedactLines` rewrites the read items, and a filter named
``redact_secrets`` drops what must not go on (:func:`redaction_steps`)."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING

from rollcraft.steps._base import Item, Step

if TYPE_CHECKING:
    from rollcraft.redact import RedactSecrets

__all__ = ["RedactLines", "redaction_steps"]


@dataclass(frozen=True, slots=True)
class RedactLines:
    """The rewrite of :meth:`RedactSecrets.redact_items`: in replace mode each rollout redacted,
    in both modes each quarantined line's detail (which may quote a secret)."""

    secrets: RedactSecrets

    def rewrite(self, items: Iterable[Item]) -> Iterator[Item]:
        return self.secrets.redact_items(items)


def redaction_steps(secrets: RedactSecrets) -> list[Step]:
    """The steps of ``redact_secrets``: the rewrite, then its filter (drop mode: drop a rollout
    holding a secret; replace mode: drop one that could not be redacted). Both count in
    ``secrets.report``."""
    check = secrets.drop_step() if secrets.on_secret == "drop" else secrets.failure_step()
    return [RedactLines(secrets), check]
