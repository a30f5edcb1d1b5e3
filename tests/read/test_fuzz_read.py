"""Property tests: arbitrary bytes and mutated real records never crash the reader, and always add up."""

from __future__ import annotations

import random
from pathlib import Path

import orjson
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from rollcraft import Quarantined, ReadOptions, ReadReport, Rollout
from rollcraft._io import RawLine
from rollcraft.read._reader import parse_line
from tests.conftest import real_files

OPTIONS = ReadOptions(max_line_bytes=1 << 20)


def _check(data: bytes) -> None:
    report = ReadReport()
    for number, line in enumerate(data.split(b"\n"), start=1):
        item = parse_line(RawLine("fuzz", number, 0, line), OPTIONS)
        assert isinstance(item, (Rollout, Quarantined))
        report.count(item)
    assert report.balanced


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=400))
def test_arbitrary_bytes_never_crash(data: bytes) -> None:
    _check(data)


_json = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**63), max_value=2**63 - 1)
    | st.floats(allow_nan=False)
    | st.text(max_size=8),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=4)
    ),
    max_leaves=20,
)
_keys = st.sampled_from(
    [
        "responses_create_params",
        "response",
        "reward",
        "output",
        "messages",
        "input",
        "tools",
        "type",
        "role",
        "content",
        "call_id",
        "summary",
        "arguments",
        "instructions",
        "task_id",
    ]
)


_SLOW = [HealthCheck.too_slow, HealthCheck.data_too_large]


@settings(max_examples=60, deadline=None, suppress_health_check=_SLOW)
@given(
    st.dictionaries(_keys, _json | st.dictionaries(_keys, _json | st.lists(st.dictionaries(_keys, _json))))
)
def test_arbitrary_records_of_known_keys_never_crash(record: dict[str, object]) -> None:
    _check(orjson.dumps(record))


def _mutations(value: object, rng: random.Random) -> object:
    if isinstance(value, dict):
        out = {}
        for key, child in value.items():
            roll = rng.random()
            if roll < 0.05:
                continue
            out[key] = rng.choice([None, 1, "x", [], {}, True]) if roll < 0.1 else _mutations(child, rng)
        return out
    if isinstance(value, list):
        items = [_mutations(v, rng) for v in value if rng.random() > 0.05]
        if items and rng.random() < 0.1:
            items.append(rng.choice(items))
        return items
    return value


@settings(max_examples=200, deadline=None)
@given(st.integers(min_value=0, max_value=10**6))
def test_mutated_real_records_never_crash(seed: int) -> None:
    rng = random.Random(seed)
    path: Path = rng.choice(real_files())
    line = rng.choice(path.read_bytes().splitlines())
    _check(orjson.dumps(_mutations(orjson.loads(line), rng)))


def _bury(value: object, rng: random.Random, deep: bytes) -> tuple[object, bool]:
    """``value`` with one of its values (any depth, any kind) replaced by a marker for ``deep``."""
    if isinstance(value, dict) and value and rng.random() < 0.8:
        key = rng.choice(sorted(value))
        child, done = _bury(value[key], rng, deep)
        return {**value, key: child}, done
    if isinstance(value, list) and value and rng.random() < 0.8:
        at = rng.randrange(len(value))
        child, done = _bury(value[at], rng, deep)
        return [*value[:at], child, *value[at + 1 :]], done
    return "@@DEEP@@", True


@settings(max_examples=120, deadline=None)
@given(st.integers(min_value=0, max_value=10**6), st.integers(min_value=200, max_value=1100))
def test_deep_values_anywhere_in_real_records_never_crash_and_both_paths_agree(seed: int, depth: int) -> None:
    # A value nested ~990-1023 deep crashed every command (RecursionError in Python's repr).
    rng = random.Random(seed)
    path: Path = rng.choice(real_files())
    line = rng.choice([line for line in path.read_bytes().splitlines() if line.strip()])
    opener, closer = rng.choice([(b"[", b"]"), (b'{"k":', b"}")])
    deep = (
        opener * depth + rng.choice([b"1", b'"t"', b"1e400", b'{"type":"text","text":"x"}']) + closer * depth
    )
    record, _ = _bury(orjson.loads(line), rng, deep)
    data = orjson.dumps(record).replace(b'"@@DEEP@@"', deep)
    raw = RawLine("deep", 1, 0, data)
    fast, general = parse_line(raw, OPTIONS), parse_line(raw, OPTIONS, fast=False)
    assert fast == general
    if isinstance(fast, Rollout):
        assert fast.conversation == general.conversation
    elif depth > 1024:
        assert fast.reason in {"too_deeply_nested", "not_object"}, fast
