"""SFT rows in every dialect, on the shared real files and the examples."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import datasets
import orjson
import pytest

from benchmarks.real_data import SHARED_DIR
from rollcraft import ReadOptions, Rollout, read_rollouts
from rollcraft.formats import DIALECTS, SftReport, sft_row, sft_rows, sft_skip_reason
from tests._chat_check import TEMPLATES, check_messages, check_tools, parse_tools, render, tokenizer
from tests.conftest import REAL_DIR, real_files


def _rollouts(paths: list[str]) -> list[Rollout]:
    return [r for r in read_rollouts(paths) if isinstance(r, Rollout)]


@pytest.fixture(scope="module")
def real_rollouts() -> list[Rollout]:
    return _rollouts([str(REAL_DIR)])


def _raw_calls(record: dict[str, Any]) -> list[tuple[str, Any]]:
    """Every function call of the raw record (last snapshot), computed from the raw JSON alone."""
    items = (
        list(record["responses_create_params"].get("input") or [])
        if isinstance(record["responses_create_params"].get("input"), list)
        else []
    )
    output = record["response"].get("output") or []
    if output and all(isinstance(x, list) for x in output):
        output = output[-1]
    return [
        (i["name"], json.loads(i["arguments"]))
        for i in [*items, *output]
        if isinstance(i, dict) and i.get("type") == "function_call"
    ]


def _raw_final_answer(record: dict[str, Any]) -> str:
    output = record["response"].get("output") or []
    if output and all(isinstance(x, list) for x in output):
        output = output[-1]
    texts = [
        p["text"]
        for i in output
        if isinstance(i, dict) and i.get("role") == "assistant"
        for p in (i["content"] if isinstance(i["content"], list) else [{"text": i["content"]}])
    ]
    return texts[-1] if texts else ""


@pytest.mark.parametrize("dialect", DIALECTS)
def test_every_real_row_is_valid_and_keeps_calls_and_answer(
    real_rollouts: list[Rollout], dialect: str
) -> None:
    written = 0
    for rollout in real_rollouts:
        if sft_skip_reason(rollout) is not None:
            continue
        row = json.loads(json.dumps(sft_row(rollout, dialect)))  # type: ignore[arg-type]
        check_messages(row["messages"])
        tools = parse_tools(row["tools"])
        check_tools(tools)
        calls = [
            (c["function"]["name"], json.loads(c["function"]["arguments"]))
            for m in row["messages"]
            for c in m.get("tool_calls") or []
        ]
        assert calls == _raw_calls(rollout.record)
        assert _raw_final_answer(rollout.record) in row["messages"][-1]["content"]
        written += 1
    assert written == 344


def test_dialect_row_keys(real_rollouts: list[Rollout]) -> None:
    rollout = next(r for r in real_rollouts if r.n_tool_calls and sft_skip_reason(r) is None)
    trl, openai, nemo = (sft_row(rollout, d) for d in DIALECTS)  # type: ignore[arg-type]
    assert set(trl) == {"messages", "tools", "reward", "task_type", "rollout_id"}
    assert isinstance(trl["tools"], str) and trl["rollout_id"] == rollout.rollout_id
    assert set(openai) == {"messages", "tools"} and isinstance(openai["tools"], list)
    assert set(nemo) == {"messages", "tools", "task_name"}
    assert all(
        list(m) == ["role", "content", "tool_calls", "tool_call_id", "reasoning_content"]
        for m in trl["messages"] + nemo["messages"]
    )
    assert all("tool_call_id" not in m for m in openai["messages"] if m["role"] != "tool")
    args = sft_row(rollout, "nemo-rl", arguments="object")["messages"]
    assert any(isinstance(c["function"]["arguments"], dict) for m in args for c in m["tool_calls"] or [])


def test_skip_reasons_are_counted(real_rollouts: list[Rollout]) -> None:
    report = SftReport()
    lines = list(sft_rows(real_rollouts, "trl", report=report, include_failures=True))
    assert len(lines) == report.rows == 344
    assert report.rows + sum(report.skipped.values()) == len(real_rollouts)
    assert dict(report.skipped) == {
        "empty_completion": 10,
        "empty_final_answer": 11,
        "no_final_assistant": 39,
        "unpaired_tool_call": 1,
    }


def test_only_successful_rollouts_become_rows_by_default(real_rollouts: list[Rollout]) -> None:
    report = SftReport()
    lines = list(sft_rows(real_rollouts, "trl", report=report))
    successful = [r for r in real_rollouts if r.success]
    # the shared files, or the nemo-gym wheel's (whose abstention and single-tool-call files differ)
    successes, rows = (208, 191) if REAL_DIR == SHARED_DIR else (204, 187)
    assert (len(real_rollouts), len(successful)) == (405, successes)
    fit = [r.rollout_id for r in successful if sft_skip_reason(r) is None]
    assert [json.loads(line)["rollout_id"] for line in lines] == fit and len(fit) == report.rows == rows
    # a failure counts as not_success whatever else is wrong with it; the successful: rows + 17
    assert dict(report.skipped) == {
        "not_success": 405 - successes,
        "no_final_assistant": 16,
        "unpaired_tool_call": 1,
    }


def _reasoning_rows(lines: list[bytes]) -> int:
    return sum(any(m.get("reasoning_content") for m in orjson.loads(line)["messages"]) for line in lines)


def test_openai_counts_the_rows_that_lose_reasoning_and_nemo_rl_carries_it(
    real_rollouts: list[Rollout],
) -> None:
    with_reasoning = [
        r
        for r in real_rollouts
        if sft_skip_reason(r) is None and any(m.get("reasoning_content") for m in r.conversation.messages)
    ]
    assert len(with_reasoning) == 85
    reports = {d: SftReport() for d in DIALECTS}
    rows = {
        d: list(sft_rows(real_rollouts, d, report=reports[d], include_failures=True))  # type: ignore[arg-type]
        for d in DIALECTS
    }
    assert [reports[d].reasoning_lost for d in DIALECTS] == [0, 85, 0]
    assert [_reasoning_rows(rows[d]) for d in DIALECTS] == [85, 0, 85]
    assert rows["nemo-rl"][0].count(b'"reasoning_content"') == rows["trl"][0].count(b'"reasoning_content"')
    assert reports["openai"].to_dict()["reasoning_lost"] == 85
    assert (reports["openai"] + reports["openai"]).reasoning_lost == 170


def test_openai_keeps_reasoning_read_as_think(tmp_path: Path) -> None:
    record = {
        "responses_create_params": {"input": [{"role": "user", "content": "2+2?"}]},
        "response": {
            "output": [
                {"type": "reasoning", "summary": [{"type": "summary_text", "text": "add them"}]},
                {"type": "message", "role": "assistant", "content": [{"type": "output_text", "text": "4"}]},
            ]
        },
        "reward": 1.0,
    }
    path = tmp_path / "r.jsonl"
    path.write_bytes(orjson.dumps(record) + b"\n")
    for mode, lost, content in (("separate", 1, "4"), ("think", 0, "<think>\nadd them\n</think>\n4")):
        read = read_rollouts([str(path)], options=ReadOptions(reasoning=mode))  # type: ignore[arg-type]
        rollouts = [r for r in read if isinstance(r, Rollout)]
        report = SftReport()
        (line,) = sft_rows(rollouts, "openai", report=report)
        assert report.reasoning_lost == lost and orjson.loads(line)["messages"][-1]["content"] == content


@pytest.mark.parametrize("template", TEMPLATES)
def test_real_rows_render_through_tool_capable_chat_templates(
    real_rollouts: list[Rollout], template: str, tmp_path_factory: pytest.TempPathFactory
) -> None:
    tok = tokenizer(str(tmp_path_factory.getbasetemp()), template)
    for rollout in real_rollouts:
        if sft_skip_reason(rollout) is None:
            row = sft_row(rollout, "trl")
            parallel = any(len(m["tool_calls"] or []) > 1 for m in row["messages"])
            if template == "llama3_1" and parallel:  # Llama 3.1's template refuses parallel calls
                with pytest.raises(Exception, match="single tool-calls"):
                    render(tok, row["messages"], parse_tools(row["tools"]))
                continue
            text = render(tok, row["messages"], parse_tools(row["tools"]))
            for call in (c for m in row["messages"] for c in m["tool_calls"] or []):
                assert call["function"]["name"] in text


@pytest.mark.parametrize("dialect", DIALECTS)
def test_load_dataset_round_trip(tmp_path: Path, dialect: str) -> None:
    path = tmp_path / f"{dialect}.jsonl"
    path.write_bytes(b"".join(sft_rows(_rollouts([str(p) for p in real_files()]), dialect)))  # type: ignore[arg-type]
    datasets.disable_progress_bars()
    loaded = datasets.load_dataset("json", data_files=str(path), split="train")
    original = [json.loads(line) for line in path.read_text().splitlines()]
    changed = [i for i, (a, b) in enumerate(zip(original, loaded, strict=True)) if a != b]
    if dialect == "trl":
        assert changed == []
    else:  # messages survive exactly; Arrow's JSON parser may move a float in a tool schema by one ulp
        assert all(a["messages"] == b["messages"] for a, b in zip(original, loaded, strict=True))
        assert len(changed) <= 1


def _uniform_one_by_one(messages: list[dict[str, Any]], arguments: str) -> list[dict[str, Any]]:
    """The trl shape built key by key (what ``encode_messages`` computes in one step)."""
    return [
        {
            "role": m["role"],
            "content": m["content"],
            "tool_calls": [
                {
                    "id": c["id"],
                    "type": "function",
                    "function": {
                        "name": c["function"]["name"],
                        "arguments": (
                            json.loads(c["function"]["arguments"])
                            if arguments == "object"
                            else c["function"]["arguments"]
                        ),
                    },
                }
                for c in m["tool_calls"]
            ]
            if m.get("tool_calls")
            else None,
            "tool_call_id": m.get("tool_call_id"),
            "reasoning_content": m.get("reasoning_content"),
        }
        for m in messages
    ]


@pytest.mark.parametrize("arguments", ["string", "object"])
def test_trl_messages_are_built_key_by_key_equal(real_rollouts: list[Rollout], arguments: str) -> None:
    from rollcraft.formats._dialects import encode_messages

    for rollout in real_rollouts:
        messages = rollout.conversation.messages
        encoded = encode_messages(messages, "trl", arguments=arguments)  # type: ignore[arg-type]
        expected = _uniform_one_by_one(messages, arguments)
        assert orjson.dumps(encoded) == orjson.dumps(expected)  # same keys, same order, same values


def test_trl_messages_of_unusual_shapes() -> None:
    from rollcraft.formats._dialects import encode_messages

    odd = [
        {"role": "assistant", "content": "a", "tool_calls": []},  # no calls: null
        {"role": "user", "content": "b", "extra": 1},  # a key trl does not carry: dropped
        {"content": "c", "role": "user"},  # other key order: trl order
        {"role": "assistant", "content": None},  # null content stays null
    ]
    assert orjson.dumps(encode_messages(odd, "trl")) == orjson.dumps(
        [
            {"role": r, "content": c, "tool_calls": None, "tool_call_id": None, "reasoning_content": None}
            for r, c in [("assistant", "a"), ("user", "b"), ("user", "c"), ("assistant", None)]
        ]
    )
    with pytest.raises(KeyError):
        encode_messages([{"role": "user"}], "trl")  # a message without content is a caller's bug
