"""Dedupe decided over shards: the :class:`Decider` replays the shards' logs as one streaming step
would, and takes back what a filter after dedupe counted of the rollouts dedupe drops."""

from __future__ import annotations

from rollcraft.engines._dedupe import Decider, Entry

A, B = b"a" * 16, b"b" * 16


def _entry(offset: int, key: bytes, reached: bool = True, later: tuple[str, str] | None = None) -> Entry:
    return ("f.jsonl", offset), key, f"{offset:016x}", reached, later


def test_the_decider_drops_what_one_stream_drops_and_counts_its_twin() -> None:
    decider = Decider()
    decider.feed([_entry(0, A, reached=False), _entry(1, A), _entry(2, B)])  # shard 1
    decider.feed([_entry(3, A), _entry(4, B, reached=False)])  # shard 2
    assert decider.decisions == {
        ("f.jsonl", 1): (None, True),  # the twin saw offset 0 first; the step keeps it
        ("f.jsonl", 3): (f"duplicate of {1:016x}", True),
        ("f.jsonl", 4): (None, True),
    }
    assert (decider.dropped, decider.twins, decider.example) == (1, 3, f"duplicate of {1:016x}")


def test_a_later_filters_drop_of_a_duplicate_is_taken_back_and_its_example_is_the_first_it_keeps() -> None:
    decider = Decider()
    decider.feed([_entry(0, A), _entry(1, A, later=("max_turns", "9 turns"))])
    decider.feed([_entry(2, B, later=("max_turns", "5 turns")), _entry(3, B, later=("max_turns", "7 turns"))])
    assert decider.taken_back == {"max_turns": 2}  # offsets 1 and 3: dedupe drops them first
    assert decider.later_examples == {"max_turns": "5 turns"}  # offset 2, not offset 1's
