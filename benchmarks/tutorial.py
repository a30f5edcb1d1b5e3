"""THE TUTORIAL'S APPROACH, re-implemented faithfully for comparison (not rollcraft's code).

NeMo Gym's "Offline Training with Rollouts (SFT/DPO)" tutorial: ``json.loads`` every line into
a list, filter, write the kept rollouts with ``json.dumps``, then build SFT rows and DPO pairs
from lists held in memory. It reads the flattened shape (top-level ``output`` Responses items,
``reward``, ``success``, ``metadata.task_type``, ``responses_create_params.input``).

Run: ``python benchmarks/tutorial.py INPUT OUTPUT_DIR``.
"""

from __future__ import annotations

import json
import sys
from collections import defaultdict
from pathlib import Path
from typing import Any

FILTERS: dict[str, Any] = {
    "min_reward": 0.0,
    "success_only": False,
    "min_turns": 1,
    "max_turns": 400,
    "require_tool_usage": False,
}


def filter_rollouts(input_file: str, output_file: str, filters: dict[str, Any]) -> list[dict[str, Any]]:
    """Keep the rollouts that pass every filter; write them; return them (all in memory)."""
    with open(input_file) as f:
        rollouts = [json.loads(line) for line in f]
    filtered = []
    for rollout in rollouts:
        if rollout.get("reward", 0) < filters.get("min_reward", 0):
            continue
        if filters.get("success_only") and not rollout.get("success", False):
            continue
        output = rollout.get("output", [])
        if len(output) < filters.get("min_turns", 0) or len(output) > filters.get("max_turns", 1_000_000):
            continue
        if filters.get("require_tool_usage") and not any(
            msg.get("type") == "function_call" for msg in output
        ):
            continue
        filtered.append(rollout)
    with open(output_file, "w") as f:
        for rollout in filtered:
            f.write(json.dumps(rollout) + "\n")
    print(
        f"Kept {len(filtered)}/{len(rollouts)} rollouts ({100 * len(filtered) / max(1, len(rollouts)):.1f}%)"
    )
    return filtered


def format_for_sft(rollouts: list[dict[str, Any]], output_file: str) -> None:
    """One SFT example per rollout: the input messages then the output, with the reward."""
    with open(output_file, "w") as f:
        for rollout in rollouts:
            messages = rollout["responses_create_params"]["input"] + rollout["output"]
            f.write(json.dumps({"messages": messages, "quality_score": rollout["reward"]}) + "\n")


def create_dpo_pairs(rollouts: list[dict[str, Any]], output_file: str) -> None:
    """Group by the hash of the input; pair groups of exactly 2 whose rewards differ by >= 0.1."""
    groups: dict[int, list[dict[str, Any]]] = defaultdict(list)
    for rollout in rollouts:
        key = hash(json.dumps(rollout["responses_create_params"]["input"], sort_keys=True))
        groups[key].append(rollout)
    pairs = []
    for group in groups.values():
        if len(group) != 2:
            continue
        a, b = sorted(group, key=lambda r: r["reward"], reverse=True)
        if a["reward"] - b["reward"] >= 0.1:
            pairs.append(
                {
                    "prompt": a["responses_create_params"]["input"],
                    "chosen": a["output"],
                    "rejected": b["output"],
                    "quality_difference": a["reward"] - b["reward"],
                }
            )
    with open(output_file, "w") as f:
        for pair in pairs:
            f.write(json.dumps(pair) + "\n")
    print(f"Created {len(pairs)} DPO pairs")


def main(input_file: str, output_dir: str) -> None:
    """filter + SFT + DPO, as the tutorial runs them."""
    out = Path(output_dir)
    out.mkdir(parents=True, exist_ok=True)
    kept = filter_rollouts(input_file, str(out / "filtered.jsonl"), FILTERS)
    format_for_sft(kept, str(out / "sft.jsonl"))
    create_dpo_pairs(kept, str(out / "dpo.jsonl"))


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
