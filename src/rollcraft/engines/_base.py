"""What every engine is: the :class:`Engine` protocol the pipeline calls, and the
:class:`Outcome` an engine returns.

The pipeline (:mod:`rollcraft.pipeline`) picks an engine with :func:`rollcraft.engines.select_engine`
and calls it; the engines import this module and the config (:mod:`rollcraft._pipeline_config`),
never the pipeline.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, Protocol

from rollcraft._pipeline_config import LoadedConfig
from rollcraft.engines._plan import PassResult
from rollcraft.formats import DpoReport, SftReport

__all__ = ["Digests", "Engine", "EngineName", "Outcome"]

#: The engines a config names (``engine:``).
EngineName = Literal["local", "ray"]

#: Output file name -> (bytes, sha256).
Digests = dict[str, tuple[int, str]]


@dataclass(slots=True)
class Outcome:
    """Everything a run counted."""

    result: PassResult
    dpo: DpoReport | None
    workers: int
    passes: int
    balance: dict[str, Any] = field(default_factory=dict)
    engine: str = "local"
    #: Output file name -> (bytes, sha256), computed while writing.
    digests: Digests = field(default_factory=dict)
    #: Why the run streamed in one process although it was asked for more (or for Ray).
    one_process: str | None = None

    def counts(self) -> dict[str, Any]:
        """The manifest's ``counts``: read, redaction, filter, review, balance, sft, dpo."""
        result = self.result
        filtered = result.filter.to_dict()
        read = {k: filtered.pop(k) for k in ("lines", "rollouts", "quarantined")}
        read["first_quarantined"] = filtered.pop("quarantine_examples", [])
        counts: dict[str, Any] = {"read": read, "filter": filtered}
        if result.redaction:
            counts["redaction"] = result.redaction
        counts["review"] = {"rejected": result.review_rejected, "decisions_matched": result.review_matched}
        counts["balance"] = self.balance | {"dropped": result.balance_dropped}
        if "sft" not in result.rows:
            counts["sft"] = SftReport().to_dict()  # a manifest always has the sft counts
        for name, report in result.rows.items():
            counts[name] = report.to_dict()
        if self.dpo is not None:
            counts["dpo"] = self.dpo.to_dict()
        counts["engine"] = {"name": self.engine, "workers": self.workers, "passes": self.passes}
        if self.one_process is not None:
            counts["engine"]["one_process_because"] = self.one_process
        return counts


class Engine(Protocol):
    """Runs a pipeline's passes over ``inputs``, writing the data files into ``folder``.

    ``workers`` is how many shards run at once; ``progress`` (optional) is called with the
    bytes read, and its ``restart(description)``, when it has one, at each new pass.
    """

    def __call__(
        self, loaded: LoadedConfig, inputs: list[str], folder: Path, *, workers: int = 1, progress: Any = None
    ) -> Outcome: ...
