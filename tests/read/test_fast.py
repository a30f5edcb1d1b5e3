"""The fast path (rollcraft.read._fast) decides exactly what the general reader decides, line for line."""

from __future__ import annotations

import ast
import json
import random
import sys
from pathlib import Path

import orjson
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import rollcraft.read._fast
from rollcraft import Quarantined, ReadOptions, Rollout
from rollcraft._io import RawLine
from rollcraft.read._fast import fast_decode, prompt_task_key, tools_of
from rollcraft.read._reader import _fast_rollout, conversation_of_line, parse_line, task_key_of
from tests.conftest import ROOT, real_files
from tests.read.test_fuzz_read import _mutations

MODES = [ReadOptions(), ReadOptions(reasoning="think"), ReadOptions(reasoning="drop", success_threshold=0.5)]


def _same(raw: RawLine, options: ReadOptions) -> bool:
    """Both paths agree on ``raw``; returns whether the fast path took it."""
    fast = parse_line(raw, options)
    general = parse_line(raw, options, fast=False)
    assert type(fast) is type(general)
    if isinstance(general, Quarantined):
        assert fast == general
        return False
    assert isinstance(fast, Rollout)
    assert fast == general  # every field but the conversation's identity
    assert fast.conversation == general.conversation
    assert fast.reward_components == general.reward_components
    assert conversation_of_line(raw.data, options) == general.conversation
    return _fast_rollout(raw, options, None) is not None


def _lines(path: Path) -> list[RawLine]:
    return [RawLine(str(path), n, 0, line) for n, line in enumerate(path.read_bytes().splitlines(), 1)]


@pytest.mark.parametrize("options", MODES, ids=["separate", "think", "drop"])
def test_every_real_line_gets_the_same_result(options: ReadOptions) -> None:
    taken = rollouts = 0
    for path in [*real_files(), *sorted((ROOT / "examples" / "rollouts").glob("*.jsonl"))]:
        for raw in _lines(path):
            taken += _same(raw, options)
            rollouts += isinstance(parse_line(raw, options), Rollout)
    assert rollouts == 405 + 72
    # The fast path is the common case on real files, not a corner of them: only the step
    # snapshots (5 real rollouts) take the general path.
    assert taken / rollouts > 0.98, (taken, rollouts)


def _record(**changes: object) -> dict[str, object]:
    record: dict[str, object] = {
        "responses_create_params": {
            "input": [{"role": "user", "content": "What is 2+2?"}],
            "tools": [{"type": "function", "name": "calc", "parameters": {"type": "object"}}],
        },
        "response": {
            "output": [
                {"type": "reasoning", "summary": [{"type": "summary_text", "text": "add"}]},
                {"type": "function_call", "name": "calc", "arguments": '{"x": 2}', "call_id": "c1"},
                {"type": "function_call_output", "call_id": "c1", "output": "4"},
                {"type": "message", "role": "assistant", "content": [{"type": "output_text", "text": "4"}]},
            ]
        },
        "reward": 1,
        "agent_ref": {"name": "math_agent"},
    }
    record.update(changes)
    return record


def _out(*items: object, **response: object) -> dict[str, object]:
    return _record(response={"output": list(items), **response})


def _item(**changes: object) -> dict[str, object]:
    return {"type": "message", "role": "assistant", "content": "ok", **changes}


ODD = {
    "plain": (_record(), True),
    "big_task_id": (_record(task_id=2**70), False),
    "int_task_id": (_record(task_id=7), True),
    "float_task_id": (_record(task_id=7.5), False),
    "failure_class_null": (_record(_ng_failure_class=None), False),
    "bool_reward": (_record(reward=True), False),
    "string_reward": (_record(reward="1"), False),
    "components_with_bool": (_record(reward_components={"a": True, "b": 0.5}), False),
    "components": (_record(reward_components={"a": 1, "b": 0.5}), True),
    "task_type_number": (_record(metadata={"task_type": 3}), False),
    "task_type_empty": (_record(metadata={"task_type": ""}, category="cat"), True),
    "success_string": (_record(success="yes", is_correct=False), True),
    "success_float": (_record(is_correct=0.5), True),
    "success_list": (_record(success=[True]), False),
    "resolved": (_record(resolved=False), True),
    "huge_rollout_index": (_record(_ng_rollout_index=2**64), False),
    "mask_sample": (_record(mask_sample=True, verification_skipped=False), True),
    "no_prompt": (_record(responses_create_params={"input": []}, _ng_task_index=3), True),
    "string_input": (_record(responses_create_params={"input": "hi", "instructions": "be brief"}), True),
    "step_snapshots": (_out([_item()], [_item(content="done")]), False),
    "image_part": (_out(_item(content=[{"type": "input_image", "image_url": "data:..."}])), True),
    "image_in_prompt": (
        _record(
            responses_create_params={
                "input": [
                    {
                        "role": "user",
                        "content": [{"type": "input_text", "text": "q"}, {"type": "input_image"}],
                    }
                ]
            }
        ),
        True,
    ),
    "file_and_audio_parts": (_out(_item(content=[{"type": "input_file"}, {"type": "audio"}])), True),
    "refusal_part": (_out(_item(content=[{"type": "refusal", "refusal": "no"}])), True),
    "refusal_null": (_out(_item(content=[{"type": "refusal", "refusal": None}])), True),
    "refusal_number": (_out(_item(content=[{"type": "refusal", "refusal": 3}])), False),
    "unknown_part_type": (_out(_item(content=[{"type": "x", "text": "t"}])), True),
    "untyped_part_without_text": (_out(_item(content=[{"image": "x"}, {"text": None}])), True),
    "text_part_without_text": (_out(_item(content=[{"type": "output_text"}])), True),
    "number_text": (_out(_item(content=[{"type": "output_text", "text": 5}])), False),
    "image_in_tool_output": (
        _out(
            {"type": "function_call", "name": "f", "arguments": "{}", "call_id": "c"},
            {"type": "function_call_output", "call_id": "c", "output": [{"type": "input_image"}]},
        ),
        True,
    ),
    "image_in_reasoning": (_out({"type": "reasoning", "summary": [{"type": "input_image"}]}, _item()), True),
    "untyped_part": (_out(_item(content=[{"text": "a"}, {"text": "b"}])), True),
    "chat_tool_calls": (_out(_item(tool_calls=[{"id": "a", "function": {}}])), False),
    "reasoning_content": (_out(_item(reasoning_content="hmm")), False),
    "hosted_call": (_out({"type": "web_search_call"}, _item()), False),
    "item_not_object": (_out("text", _item()), False),
    "list_output": (
        _out({"type": "function_call_output", "call_id": "x", "output": [{"text": "a"}]}),
        True,
    ),
    "reasoning_string_content": (_out({"type": "reasoning", "content": "x"}), False),
    "encrypted": (_out({"type": "reasoning", "encrypted_content": "e"}, _item()), True),
    "truncated": (_out(_item(), incomplete_details={"reason": "max_tokens"}), True),
    "incomplete_not_object": (_out(_item(), incomplete_details="x"), False),
    "status_incomplete": (_out(_item(), status="incomplete"), True),
    "response_null": (_record(response=None), False),
    "developer_and_tool_roles": (
        _record(
            response={
                "output": [
                    {"role": "developer", "content": "d"},
                    {"type": "function_call", "name": "f", "arguments": "{bad", "id": "i1"},
                    {"role": "tool", "tool_call_id": "i1", "content": "r"},
                    {"type": "message", "content": "no role"},
                    _item(),
                ]
            }
        ),
        True,
    ),
    "hosted_tool": (_record(responses_create_params={"input": "q", "tools": [{"type": "web_search"}]}), True),
    "deep_tools": (_record(responses_create_params={"input": "q", "tools": [[[[[[]]]]]] * 1}), True),
    "prompt_in_output": (
        _record(
            responses_create_params={"input": []},
            response={"output": [{"role": "user", "content": "q"}, _item()]},
        ),
        True,
    ),
}


@pytest.mark.parametrize("name", sorted(ODD))
def test_odd_records_take_the_path_they_should_and_agree(name: str) -> None:
    record, fast = ODD[name]
    raw = RawLine("odd.jsonl", 1, 0, json.dumps(record).encode())  # big integers too
    for options in MODES:
        assert _same(raw, options) is fast


def test_deeply_nested_tools_fall_back_to_the_general_reader() -> None:
    tools = b"[" * 2000 + b"]" * 2000
    line = b'{"responses_create_params":{"input":"q","tools":%s},"response":{"output":[]},"reward":1}' % tools
    raw = RawLine("deep.jsonl", 1, 0, line)
    assert _same(raw, ReadOptions()) is False
    assert isinstance(parse_line(raw, ReadOptions()), Quarantined)


@pytest.mark.parametrize(
    "bad",
    [b"\xff\xfe", b"caf\xe9 \xa9\xae", b"\xe2\x82", b"\xed\xa0\x80"],
    ids=["not-utf8", "latin-1", "truncated", "surrogate"],
)
def test_a_line_not_utf8_where_the_fast_path_skips_is_quarantined_on_both(bad: bytes) -> None:
    # msgspec skips unknown keys without checking their UTF-8; orjson rejects the whole line.
    line = orjson.dumps(_record(note="NOTE"), option=orjson.OPT_NON_STR_KEYS).replace(b"NOTE", bad)
    raw = RawLine("bad.jsonl", 4, 0, line)
    assert _same(raw, ReadOptions()) is False
    quarantined = parse_line(raw, ReadOptions())
    assert isinstance(quarantined, Quarantined) and quarantined.reason == "not_json"
    # Valid UTF-8 there stays on the fast path.
    ok = RawLine("ok.jsonl", 1, 0, orjson.dumps(_record(note="café ©® ’ 🙂")))
    assert _same(ok, ReadOptions()) is True


def test_duplicate_keys_keep_the_last_value_on_both_paths() -> None:
    line = orjson.dumps(_record())[:-1] + b',"reward":0.25}'
    raw = RawLine("dup.jsonl", 1, 0, line)
    assert _same(raw, ReadOptions())
    rollout = parse_line(raw, ReadOptions())
    assert isinstance(rollout, Rollout) and rollout.reward == 0.25


def test_prompt_task_key_is_the_general_rules_digest() -> None:
    raw = orjson.dumps(_record())
    rollout = parse_line(RawLine("x", 1, 0, raw), ReadOptions())
    assert isinstance(rollout, Rollout)
    record = fast_decode(raw)
    assert record is not None
    tools, tools_json, _ = tools_of(record.responses_create_params.tools)
    expected = task_key_of(orjson.loads(raw), rollout.conversation, "math_agent", None)
    assert prompt_task_key("math_agent", rollout.conversation.prompt, tools_json) == expected
    assert tools == rollout.conversation.tools


def test_forced_shapes_and_task_key_fields_skip_the_fast_path() -> None:
    assert ReadOptions().fast and ReadOptions(shape="nemo-gym").fast
    assert not ReadOptions(shape="tutorial").fast
    assert not ReadOptions(task_key="metadata.id").fast


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.integers(min_value=0, max_value=10**6))
def test_mutated_real_records_agree(seed: int) -> None:
    rng = random.Random(seed)
    path: Path = rng.choice(real_files())
    line = rng.choice(path.read_bytes().splitlines())
    mutated = orjson.dumps(_mutations(orjson.loads(line), rng))
    _same(RawLine("mutated.jsonl", 1, 0, mutated), ReadOptions())


def test_shared_tool_lists_have_their_trl_text_made_once() -> None:
    from rollcraft.formats import encode_tools
    from rollcraft.read._fast import shared_tools_text

    rollout = parse_line(RawLine("x", 1, 0, orjson.dumps(_record())), ReadOptions())
    assert isinstance(rollout, Rollout)
    tools = rollout.conversation.tools
    expected = orjson.dumps(tools, option=orjson.OPT_SORT_KEYS).decode()
    assert shared_tools_text(tools) == expected == encode_tools(tools, "trl")
    copy = [dict(t) for t in tools]  # an equal list the reader did not make: encoded as usual
    assert shared_tools_text(copy) is None and encode_tools(copy, "trl") == expected


def _placed(where: str, value: bytes) -> bytes:
    """A record with ``value`` (raw JSON text) at one place the reader uses, or one it skips."""
    mark = "@@"
    places: dict[str, dict[str, object]] = {
        "unknown_key": _record(usage={"x": mark}),
        "metadata": _record(metadata={"task_type": "t", "x": mark}),
        "components": _record(reward_components={"x": mark}),
        "tool_parameters": _record(
            responses_create_params={
                "input": "q",
                "tools": [{"type": "function", "name": "f", "parameters": mark}],
            }
        ),
        "content": _out(_item(content=mark)),
        "content_part": _out(_item(content=["t", mark])),
        "text_of_a_part": _record(
            responses_create_params={"input": [{"role": "user", "content": [{"text": mark}]}]}
        ),
        "arguments": _out({"type": "function_call", "name": "f", "call_id": "c", "arguments": mark}, _item()),
        "call_name": _out(
            {"type": "function_call", "name": mark, "call_id": "c", "arguments": "{}"}, _item()
        ),
        "output_item": _out(_item(), mark),
        "task_id": _record(task_id=mark),
        "failure_class": _record(_ng_failure_class=mark),
        "reward": _record(reward=mark),
    }
    return orjson.dumps(places[where]).replace(b'"@@"', value)


_PLACES = sorted(
    "unknown_key metadata components tool_parameters content content_part text_of_a_part arguments"
    " call_name output_item task_id failure_class reward".split()
)


@pytest.mark.parametrize(
    "depth", [250, 254, 255, 256, 300, 500, 980, 990, 1000, 1010, 1017, 1020, 1023, 1024, 1100]
)
def test_any_nesting_anywhere_gets_one_clean_verdict_on_both_paths(depth: int) -> None:
    # One rule on both paths: deeper than 1024 levels (orjson's decode limit), or a value the
    # reader keeps or turns into text deeper than orjson writes, is too_deeply_nested; never a
    # RecursionError (which crashed every command at ~990-1023 levels).
    for where in _PLACES:
        for deep in (b"[" * depth + b"1" + b"]" * depth, b'{"a":' * depth + b"1" + b"}" * depth):
            raw = RawLine("deep.jsonl", 1, 0, _placed(where, deep))
            _same(raw, ReadOptions())
            verdict = parse_line(raw, ReadOptions())
            if isinstance(verdict, Quarantined):
                assert verdict.reason in {"too_deeply_nested", "bad_reward", "failed_attempt"}, (
                    where,
                    verdict,
                )
                if depth >= 1024:  # no place holds it: the line nests deeper than orjson reads
                    assert verdict.reason == "too_deeply_nested", (where, verdict)
            else:
                assert depth < 1024, where
                orjson.dumps([[[[verdict.conversation.tools]]]])  # whatever the reader keeps can be written


@pytest.mark.parametrize(
    "number",
    [b"1e400", b"-1e400", b"1E+999", b"1" + b"0" * 400, b"2e308", b"1e-400", b"1.7976931348623157e308"],
)
def test_numbers_beyond_a_double_get_the_same_verdict_on_both_paths(number: bytes) -> None:
    # The fast path skips unused values without reading their numbers; orjson refused the whole
    # line for one such number: now both read it (rollcraft.read._normalize.read_json).
    for where in _PLACES:
        raw = RawLine("big.jsonl", 1, 0, _placed(where, number))
        _same(raw, ReadOptions())
        verdict = parse_line(raw, ReadOptions())
        assert not (isinstance(verdict, Quarantined) and verdict.reason == "not_json"), (where, verdict)
        if isinstance(verdict, Rollout):
            assert verdict.record is not None


def test_a_raised_recursion_limit_does_not_let_the_fast_path_read_deeper_than_orjson() -> None:
    # msgspec skips unused values as deep as Python's recursion limit lets it: raised (Hypothesis
    # raises it), it kept lines nested deeper than orjson reads, which the general path refuses.
    raw = RawLine("deep.jsonl", 1, 0, _placed("unknown_key", b"[" * 1030 + b"]" * 1030))
    limit = sys.getrecursionlimit()
    sys.setrecursionlimit(20000)
    try:
        _same(raw, ReadOptions())
        verdict = parse_line(raw, ReadOptions())
        assert isinstance(verdict, Quarantined) and verdict.reason == "too_deeply_nested"
        assert sys.getrecursionlimit() == 20000  # given back
        shallow = RawLine("ok.jsonl", 1, 0, _placed("unknown_key", b"[" * 900 + b"]" * 900))
        _same(shallow, ReadOptions())
        assert isinstance(parse_line(shallow, ReadOptions()), Rollout)
    finally:
        sys.setrecursionlimit(limit)


def test_the_fast_path_uses_only_the_normalizers_public_api() -> None:
    # One place per mapping rule: the fast decoder feeds rollcraft.read._normalize.Builder through its
    # public methods, never re-implementing (or reaching into) the builder's private parts.
    tree = ast.parse(Path(rollcraft.read._fast.__file__).read_text(encoding="utf-8"))
    imported = [
        alias.name
        for node in ast.walk(tree)
        if isinstance(node, ast.ImportFrom) and node.module == "rollcraft.read._normalize"
        for alias in node.names
    ]
    assert imported and "Builder" in imported
    assert [name for name in imported if name.startswith("_")] == []
    private_uses = [
        node.attr
        for node in ast.walk(tree)
        if isinstance(node, ast.Attribute)
        and isinstance(node.value, ast.Name)
        and node.value.id == "builder"
        and node.attr.startswith("_")
    ]
    assert private_uses == []
