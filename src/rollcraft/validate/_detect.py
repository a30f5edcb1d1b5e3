"""Detection of the file's kind (SFT/DPO/KTO) and dialect from the keys of its first rows."""

from __future__ import annotations

import contextlib
from collections import Counter
from typing import Any

import orjson

from rollcraft._errors import ConfigError
from rollcraft.formats.tokens import TOKENS
from rollcraft.validate._json import _lines
from rollcraft.validate._tokens import is_token_row


def _guess(row: dict[str, Any]) -> tuple[str, str, int] | None:
    """(kind, dialect, weight) that one row's keys point to: weight 2 for a clear sign, 1 for a default."""
    if "chosen" in row and "rejected" in row:
        return "dpo", "trl", 2
    if "preferred_output" in row or "non_preferred_output" in row:
        return "dpo", "openai", 2
    if "completions" in row and "context" in row:
        return "dpo", "nemo-rl", 2
    if "prompt" in row and "completion" in row:  # KTO rows, or SFT rows of ``sft --expand turns``
        return ("kto" if "label" in row else "sft"), "trl", 2
    if is_token_row(row):
        return "sft", TOKENS, 2
    if "messages" not in row:
        return None
    if isinstance(row.get("tools"), str) or {"reward", "task_type", "rollout_id"} & row.keys():
        return "sft", "trl", 2
    if "task_name" in row:
        return "sft", "nemo-rl", 2
    arguments = _argument_types(row.get("messages"))
    if dict in arguments:
        return "sft", "nemo-rl", 2
    return "sft", "openai", 2 if str in arguments else 1


def _argument_types(messages: Any) -> set[type]:
    found: set[type] = set()
    for m in messages if isinstance(messages, list) else []:
        for call in (m.get("tool_calls") or []) if isinstance(m, dict) else []:
            fn = call.get("function") if isinstance(call, dict) else None
            if isinstance(fn, dict):
                found.add(type(fn.get("arguments")))
    return found


_SPECIFICITY = {TOKENS: 3, "trl": 2, "nemo-rl": 1, "openai": 0}


def _detect(path: str, kind: str | None, dialect: str) -> tuple[str, str]:
    """Look at up to 200 rows and settle (kind, dialect) by weighted vote (ties: the more specific)."""
    votes: Counter[tuple[str, str]] = Counter()
    for _, data in _lines(path, limit=200):
        with contextlib.suppress(ValueError):
            row = orjson.loads(data)
            guess = _guess(row) if isinstance(row, dict) else None
            if guess is not None:
                votes[guess[:2]] += guess[2]
    if kind is None:
        if not votes and dialect != "auto":
            raise ConfigError("cannot tell SFT from DPO or KTO from the rows; pass --kind", key="kind")
        kinds: Counter[str] = Counter()
        for (k, _), n in votes.items():
            kinds[k] += n
        kind = kinds.most_common(1)[0][0] if kinds else "sft"
    if dialect == TOKENS and kind != "sft":
        raise ConfigError(f"token rows are SFT rows, not {kind}", key="kind")
    if kind == "kto" and dialect not in ("auto", "trl"):
        raise ConfigError(f"KTO rows are written in the trl dialect only, not {dialect}", key="format")
    if dialect == "auto":
        seen = [(n, _SPECIFICITY[d], d) for (k, d), n in votes.items() if k == kind]
        dialect = max(seen)[2] if seen else "trl"
    return kind, dialect
