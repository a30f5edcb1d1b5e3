"""Manual review of a rollout sample in the browser (``rollcraft review``; the ``review`` extra).

The server (:func:`rollcraft.review.server.create_app`) needs starlette; import it from there,
so that ``import rollcraft.review`` stays cheap. Decisions are one JSON object a line::

    {"rollout_id": "<16 hex>", "decision": "accept" | "reject" | "skip", "note": "...",
     "reviewer": "...", "time": "2025-01-01T12:00:00Z"}

(``reviewer`` only when known); a later line for the same id wins. :class:`Decision` and
:func:`read_decisions` are the one decision type and the one reader: ``apply-review``
(:mod:`rollcraft.curate`) and the pipeline's ``review:`` step use them too.
"""

from __future__ import annotations

from rollcraft.review.decisions import (
    DECISIONS,
    Choice,
    Decision,
    DecisionLog,
    default_decisions_path,
    read_decisions,
)

__all__ = ["DECISIONS", "Choice", "Decision", "DecisionLog", "default_decisions_path", "read_decisions"]
