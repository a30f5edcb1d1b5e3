"""The NeMo Gym input row of a task: what ``gym eval run --input`` takes as it is.

In order of preference:

1. ``materialized_inputs``: the task's own row from the ``X_materialized_inputs.jsonl`` beside
   its rollouts file ``X.jsonl`` (or named among the inputs), found by the agent and
   ``_ng_task_index`` of the task's first rollout (by ``_ng_task_index`` alone when the rollout
   names no agent and one agent's rows hold that index).
2. ``profile_sample``: a reward profile's ``sample`` (the materialized row without its indices).
3. ``rollout``: rebuilt from the task's first rollout: the record without what collection and
   verification added (``response``, ``reward``, ``ng_trajectory``, ``ng_model_call_capture``,
   ``ng_perf``, ``mask_sample``, ``failure_kind``, ``failure_reason``, ``reward_components``), and
   ``responses_create_params`` without its null fields (the API's defaults, which NeMo Gym's
   request model refuses for ``tool_choice`` and ``parallel_tool_calls``). Fields an environment's
   verifier wrote stay (they cannot be told from the task's own); only a record with a
   ``responses_create_params`` object can be rebuilt.

Every row loses its ``_ng_*`` keys (``_ng_task_index``, ``_ng_rollout_index``, ...): NeMo Gym
numbers the rows it reads again.
"""

from __future__ import annotations

from typing import Any

import orjson

from rollcraft._io import iter_lines
from rollcraft.read._attempts import line_keys
from rollcraft.read._facts import _agent
from rollcraft.read._sidecars import main_file, sidecar_of, task_index_key

__all__ = ["RESULT_KEYS", "InputRows", "input_row", "rebuilt_row"]

#: What collection and verification add to an input row.
RESULT_KEYS = frozenset(
    {
        "response",
        "reward",
        "ng_trajectory",
        "ng_model_call_capture",
        "ng_perf",
        "mask_sample",
        "failure_kind",
        "failure_reason",
        "reward_components",
    }
)


def input_row(row: dict[str, Any]) -> dict[str, Any]:
    """``row`` without NeMo Gym's ``_ng_*`` bookkeeping."""
    return {k: v for k, v in row.items() if not k.startswith("_ng_")}


def rebuilt_row(record: dict[str, Any]) -> dict[str, Any] | None:
    """The input row a rollout record was collected from, as near as the record tells; None when
    it has no ``responses_create_params`` object."""
    params = record.get("responses_create_params")
    if not isinstance(params, dict):
        return None
    row = {k: v for k, v in input_row(record).items() if k not in RESULT_KEYS}
    row["responses_create_params"] = {k: v for k, v in params.items() if v is not None}
    return row


class InputRows:
    """The materialized input rows beside the rollouts files, read once per file when needed."""

    def __init__(self, named: list[str]) -> None:
        #: rollouts file -> the materialized inputs file named among the inputs for it
        self._named = {main_file(path): path for path in named}
        self._files: dict[str, _Rows | None] = {}

    def row_of(self, source: str, line: bytes) -> dict[str, Any] | None:
        """The materialized row of the task of a rollout (its ``line`` in ``source``), without
        ``_ng_*`` keys; None when none."""
        rows = self._rows(source)
        keys = line_keys(line)
        if rows is None or keys is None or keys.task_index is None:
            return None
        found = rows.exact.get(task_index_key(keys.agent, keys.task_index))
        if found is None and keys.agent is None:
            found = rows.by_index.get(task_index_key(None, keys.task_index))
        return input_row(found) if found is not None else None

    def _rows(self, source: str) -> _Rows | None:
        if source not in self._files:
            path = self._named.get(source) or sidecar_of(source, "materialized_inputs")
            self._files[source] = _Rows.read(path) if path else None
        return self._files[source]


class _Rows:
    """One materialized inputs file: each task's first row by (agent, index), and by index alone
    where one agent's rows hold it."""

    def __init__(self) -> None:
        self.exact: dict[str, dict[str, Any]] = {}
        self.by_index: dict[str, dict[str, Any]] = {}
        self._agents: dict[str, set[str | None]] = {}

    @classmethod
    def read(cls, path: str) -> _Rows:
        rows = cls()
        for raw in iter_lines([path]):
            try:
                row = orjson.loads(raw.data)
            except orjson.JSONDecodeError:
                continue
            if isinstance(row, dict) and row.get("_ng_task_index") is not None:
                rows._add(row, _agent(row), row["_ng_task_index"])
        for index, agents in rows._agents.items():
            if len(agents) > 1:
                del rows.by_index[index]
        return rows

    def _add(self, row: dict[str, Any], agent: str | None, task_index: Any) -> None:
        self.exact.setdefault(task_index_key(agent, task_index), row)
        index = task_index_key(None, task_index)
        self.by_index.setdefault(index, row)
        self._agents.setdefault(index, set()).add(agent)
