"""Compact per-rollout collections: the same answers as Python sets and lists, in a tenth of the memory."""

from __future__ import annotations

import pickle
import tracemalloc

from hypothesis import given
from hypothesis import strategies as st
from xxhash import xxh3_64_hexdigest, xxh3_128_digest

from rollcraft._compact import CategoryLog, FirstSeen, IdSet, LocatorSet, id_bits

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


#: Keys that share their first two bytes (one bucket) and keys whose bytes straddle two records.
KEYS = st.one_of(
    st.binary(min_size=16, max_size=16),
    st.binary(min_size=14, max_size=14).map(lambda tail: b"\x00\x01" + tail),
    st.sampled_from([bytes(16), b"\x00\x01" + bytes(14), b"\x00" * 8 + b"\x01" * 8]),
)
VALUES = st.one_of(st.none(), HEX, ODD)


@given(
    st.lists(st.tuples(st.sampled_from(["set", "setdefault", "add", "claim"]), KEYS, VALUES), max_size=80),
    st.lists(KEYS),
)
def test_first_seen_answers_as_a_dict(
    operations: list[tuple[str, bytes, str | None]], probes: list[bytes]
) -> None:
    compact, plain = FirstSeen(), dict[bytes, str | None]()
    for operation, key, value in operations:
        if operation == "set":
            compact[key], plain[key] = value, value
        elif operation == "add":
            if key not in plain:  # add is for keys the caller found absent
                compact.add(key, value)
                plain[key] = value
        elif operation == "claim":  # the key's first id, given value where it had none
            expected = (key in plain, plain.get(key))
            if plain.get(key) is None:
                plain[key] = value
            assert compact.claim(key, value) == expected
        else:
            assert compact.setdefault(key, value) == plain.setdefault(key, value)
        assert (key in compact) and compact.get(key) == plain[key]
    for key in [*plain, *probes]:
        assert (key in compact) == (key in plain)
        assert compact.lookup(key) == (key in plain, plain.get(key))
        assert compact.get(key) == plain.get(key)
    assert len(compact) == len(plain)
    copy = pickle.loads(pickle.dumps(compact))
    assert all(copy.get(key) == value and key in copy for key, value in plain.items())


def test_a_key_whose_bytes_straddle_two_records_is_not_found_there() -> None:
    first, second = b"\x00\x01" + b"\xaa" * 14, b"\x00\x01" + b"\xbb" * 14
    memory = FirstSeen()
    memory[first], memory[second] = "00000000000000aa", None
    # the last 9 bytes of first's record (state, id bits) and the head of second's, as a key
    straddling = (b"\x00\x01" + bytes(7) + b"\xaa" + bytes(6))[:16]
    assert straddling not in memory and memory.get(straddling) is None
    assert memory.get(first) == "00000000000000aa" and second in memory and memory.get(second) is None


def test_first_seen_takes_under_60_bytes_an_entry() -> None:
    """One entry per distinct conversation (a dict of the same keys and ids takes about 170 bytes)."""
    keys = [xxh3_128_digest(n.to_bytes(8, "little")) for n in range(200_000)]
    ids = [xxh3_64_hexdigest(key) for key in keys]
    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        memory = FirstSeen()
        for key, rollout_id in zip(keys, ids, strict=True):
            memory[key] = rollout_id
        grown = tracemalloc.get_traced_memory()[0] - before
    finally:
        tracemalloc.stop()
    assert grown < 60 * len(keys), f"{grown / len(keys):.0f} bytes per entry"
    assert memory.get(keys[7]) == ids[7] and len(memory) == len(keys)
    assert xxh3_128_digest(b"no") not in memory and memory.get(xxh3_128_digest(b"no")) is None
