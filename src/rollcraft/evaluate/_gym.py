"""NeMo Gym's ``X_aggregate_metrics.json``, read beside a rollout file ``X.jsonl`` when present.

Gym writes it after a collection: a JSON list with one entry per agent (environment server),
each ``{"agent_ref": {"name": ...}, "agent_metrics": {...}, "key_metrics": {...},
"group_level_metrics": [one per task], "repeat_level_metrics": [one per repeat]}``. rollcraft
shows each agent's key metrics and keeps the numeric agent metrics in the JSON report; the
paired statistics are always computed from the rollouts themselves.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import orjson

__all__ = ["aggregate_metrics_path", "read_aggregate_metrics"]

_SUFFIX = "_aggregate_metrics"
_COMPRESSED = (".gz", ".zst")


def aggregate_metrics_path(rollouts: str) -> Path | None:
    """Gym's sibling of one rollout file: ``results/run.jsonl`` -> ``results/run_aggregate_metrics.json``.

    A compressed file (``run.jsonl.gz``) is named as its uncompressed self. None for stdin, a
    folder or a glob (they are not one run).
    """
    path = Path(rollouts)
    if rollouts == "-" or not path.is_file():
        return None
    if path.suffix in _COMPRESSED:
        path = path.with_suffix("")
    return path.with_name(path.stem + _SUFFIX + ".json")


def _numbers(metrics: Any) -> dict[str, float]:
    if not isinstance(metrics, dict):
        return {}
    return {
        str(name): value
        for name, value in metrics.items()
        if isinstance(value, int | float) and not isinstance(value, bool)
    }


def _agent(entry: Any, position: int) -> tuple[str, dict[str, Any]]:
    if not isinstance(entry, dict):
        raise ValueError(f"entry {position} is not an object")
    name = (entry.get("agent_ref") or {}).get("name")
    if not isinstance(name, str) or not name:
        raise ValueError(f"entry {position} has no agent_ref.name")
    groups = entry.get("group_level_metrics")
    return name, {
        "key_metrics": _numbers(entry.get("key_metrics")),
        "agent_metrics": _numbers(entry.get("agent_metrics")),
        "tasks": len(groups) if isinstance(groups, list) else None,
    }


def read_aggregate_metrics(rollouts: str) -> dict[str, Any] | None:
    """The aggregate metrics beside ``rollouts``: ``{"path", "agents": {name: {...}}}``, or None.

    A file that is there but not Gym's shape gives ``{"path", "error"}`` (the evaluation itself
    does not depend on it).
    """
    path = aggregate_metrics_path(rollouts)
    if path is None or not path.is_file():
        return None
    try:
        payload = orjson.loads(path.read_bytes())
        if not isinstance(payload, list) or not payload:
            raise ValueError("expected a JSON list of per-agent entries")
        agents = dict(_agent(entry, i) for i, entry in enumerate(payload))
    except (OSError, ValueError) as exc:  # orjson.JSONDecodeError is a ValueError
        return {"path": str(path), "error": str(exc)}
    return {"path": str(path), "agents": agents}
