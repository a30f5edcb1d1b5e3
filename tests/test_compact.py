"""Compact per-rollout collections: the same answers as Python sets and lists, in a tenth of the memory."""

from __future__ import annotations

import pickle
import tracemalloc

from hypothesis import given
from hypothesis import strategies as st
from xxhash import xxh3_64_hexdigest

from rollcraft._compact import CategoryLog, IdSet, LocatorSet, id_bits

HEX = st.integers(0, 2**64 - 1).map(lambda bits: f"{bits:016x}")
ODD = st.sampled_from(
    ["", "short", "ABCDEF0123456789", "0x123456789abcde", "1234_6789abcdef0", " 123456789abcde"]
)
IDS = st.lists(st.one_of(HEX, ODD, st.text(max_size=20)), max_size=60)


def test_id_bits_only_for_ids_of_16_lowercase_hex_digits() -> None:
    assert id_bits("00000000000000ff") == 255
    for odd in ("", "ff", "00000000000000FF", "0x000000000000ff", "0000_00000000000f", " 00000000000000f"):
        assert id_bits(odd) is None


@given(IDS, IDS, IDS)
def test_idset_answers_as_a_set_of_strings(first: list[str], second: list[str], probes: list[str]) -> None:
    a, b = IdSet(first), IdSet(second)
    union = a | b
    for probe in [*first, *second, *probes]:
        assert (probe in a) == (probe in set(first))
        assert (probe in union) == (probe in set(first) | set(second))
    assert sorted(set(union)) == sorted(set(first) | set(second))
    copy = pickle.loads(pickle.dumps(union))  # a shard's ids go from a worker to the parent
    assert all((probe in copy) == (probe in union) for probe in [*first, *second, *probes])
    assert 12345 not in a and None not in a


@given(st.lists(st.tuples(st.sampled_from(["a.jsonl", "b.jsonl", ""]), st.integers(0, 2**62)), max_size=60))
def test_locator_set_answers_as_a_set_of_tuples(locators: list[tuple[str, int]]) -> None:
    chosen = LocatorSet(locators[::2])
    for locator in locators:
        assert (locator in chosen) == (locator in set(locators[::2]))
    assert ("c.jsonl", 0) not in chosen and "a.jsonl" not in chosen and ("a.jsonl",) not in chosen
    assert len(chosen) == len(locators[::2])


def test_ids_take_8_bytes_each() -> None:
    """One entry per rollout: 8 bytes (a set of the same id strings takes over 100)."""
    ids = [xxh3_64_hexdigest(n.to_bytes(8, "little")) for n in range(100_000)]
    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        kept = IdSet(ids).settled()
        grown = tracemalloc.get_traced_memory()[0] - before
    finally:
        tracemalloc.stop()
    assert grown < 12 * len(ids), f"{grown / len(ids):.0f} bytes per id"
    assert ids[5] in kept and xxh3_64_hexdigest(b"no") not in kept


@given(
    st.lists(
        st.tuples(
            st.sampled_from(["math", "code", "é"]),
            st.sampled_from(["a.jsonl", "b.jsonl"]),
            st.integers(0, 2**62),
        ),
        max_size=40,
    )
)
def test_category_log_keeps_the_entries_in_order(entries: list[tuple[str, str, int]]) -> None:
    log, other = CategoryLog(), CategoryLog()
    for category, file, offset in entries:
        log.append(category, (file, offset))
        other.append(category, (file, offset))
    expected = [(category, (file, offset)) for category, file, offset in entries]
    assert list(log) == expected and len(log) == len(entries)
    assert list(log + other) == expected + expected
    kept = CategoryLog()
    kept.extend(log, keep=lambda locator: locator[1] % 2 == 0)
    assert list(kept) == [entry for entry in expected if entry[1][1] % 2 == 0]
    groups = log.groups()
    assert sorted(groups) == sorted({category for category, _, _ in entries})
    for category, numbers in groups.items():
        assert [log.locator(i) for i in numbers] == [loc for c, loc in expected if c == category]
    copy = pickle.loads(pickle.dumps(log))  # a shard's categories go from a worker to the parent
    assert list(copy) == expected
