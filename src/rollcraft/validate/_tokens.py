"""The checks of an exact-token SFT row (``sft --format tokens``: :mod:`rollcraft.formats.tokens`).

A row is ``input_ids`` (non-negative integers) and ``assistant_masks`` (one 0 or 1 per id, at
least one 1: a row with nothing to train on teaches nothing), with the rollout's ``reward`` and
``task_type`` beside. There are no messages to render: lengths are the rows' token counts.
"""

from __future__ import annotations

from typing import Any

import orjson

from rollcraft.validate._row import _Facts, _Row

__all__ = ["check_token_row", "is_token_row"]


def is_token_row(row: dict[str, Any]) -> bool:
    """Whether a row's keys are an exact-token row's."""
    return "input_ids" in row and "messages" not in row


def check_token_row(value: dict[str, Any], row: _Row) -> _Facts | None:
    """Check one decoded token row; its facts (``n_tokens``, reward, task), or None when its
    arrays are missing or malformed."""
    ids, mask = value.get("input_ids"), value.get("assistant_masks")
    for key, found in (("input_ids", ids), ("assistant_masks", mask)):
        if found is None:
            row.add("missing_key", f"no {key}")
            return None
        if not isinstance(found, list) or not all(type(v) is int and v >= 0 for v in found):
            row.add("wrong_type", f"{key} is not a list of non-negative integers")
            return None
    assert isinstance(ids, list) and isinstance(mask, list)
    if len(mask) != len(ids) or any(v > 1 for v in mask):
        row.add("wrong_type", f"assistant_masks has {len(mask)} values of 0 or 1 for {len(ids)} input_ids")
        return None
    if 1 not in mask:
        row.add("no_assistant_mask", "assistant_masks is all 0: no token of the row is trained")
    reward, task = value.get("reward"), value.get("task_type")
    return _Facts(
        reward=float(reward) if isinstance(reward, (int, float)) and not isinstance(reward, bool) else None,
        task=task if isinstance(task, str) else None,
        fingerprint=orjson.dumps(ids),
        n_tokens=len(ids),
    )
