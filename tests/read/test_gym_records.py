"""What newer NeMo Gym records hold, read right: token capture, message phases, namespaced calls,
reward components, retries (``_ng_attempt_index``) and the files beside a rollouts file.

The records are built from a real NeMo Gym example rollout (its request and tools), with the
parts NeMo Gym's own code writes: the token-bearing items of
``token_id_capture.builder.project_chain_to_output_items`` (cumulative ``prompt_token_ids`` on
the item that carried each call's generation; a ``{"type": "message"}`` item with no role or
content for a call whose content was not captured), the ``proj-`` response id and
``mask_sample`` / ``_ng_token_capture`` of ``token_id_capture.delivery``, the ``phase`` and
``namespace`` fields of ``openai_utils`` / ``responses_streaming``, the failure sidecar rows of
``rollout_collection`` (``_ng_failure_class``, ``_ng_failure_terminal``) and the reward-profiling
rows of ``reward_profile``.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import orjson
import pytest

from rollcraft import FilterConfig, Quarantined, ReadOptions, ReadReport, Rollout, build_steps, read_rollouts
from rollcraft._io import RawLine
from rollcraft.filters import MinTaskSuccessRate, TaskStats
from rollcraft.read._fast import fast_conversation, fast_decode
from rollcraft.read._inspect import inspect_paths
from rollcraft.read._reader import parse_line, parse_lines
from rollcraft.read._tokens import contiguous, token_turns
from tests.conftest import REAL_DIR

EXAMPLE = REAL_DIR / "resources_servers_example_single_tool_call_data_example_rollouts.jsonl"


def _example() -> dict[str, Any]:
    """A real NeMo Gym rollout (the weather tool example): its request, tools and agent."""
    record = orjson.loads(EXAMPLE.read_bytes().splitlines()[0])
    assert isinstance(record, dict) and record["responses_create_params"]["tools"]
    return record


def _record(output: list[dict[str, Any]], reward: float = 1.0, **extra: Any) -> dict[str, Any]:
    record = _example()
    record["response"] = {**record["response"], "output": output}
    record["reward"] = reward
    record["agent_ref"] = {"type": "responses_api_agents", "name": "weather_agent"}
    return record | extra


def _call(name: str = "get_weather", call_id: str = "call_1", **extra: Any) -> dict[str, Any]:
    return {
        "type": "function_call",
        "call_id": call_id,
        "name": name,
        "arguments": '{"city": "Paris"}',
        **extra,
    }


def _output(call_id: str = "call_1", text: str = "sunny") -> dict[str, Any]:
    return {"type": "function_call_output", "call_id": call_id, "output": text}


def _message(text: str, **extra: Any) -> dict[str, Any]:
    part = {"type": "output_text", "text": text, "annotations": []}
    return {"type": "message", "role": "assistant", "status": "completed", "content": [part], **extra}


def _tokens(prompt: list[int], generated: list[int]) -> dict[str, Any]:
    return {
        "prompt_token_ids": prompt,
        "generation_token_ids": generated,
        "generation_log_probs": [-0.5] * len(generated),
    }


def _both(record: dict[str, Any], options: ReadOptions | None = None) -> Rollout:
    """The rollout of a record, read by the fast and the general path (which must agree)."""
    raw = RawLine("mem.jsonl", 1, 0, orjson.dumps(record))
    opts = options or ReadOptions()
    fast, general = parse_line(raw, opts), parse_line(raw, opts, fast=False)
    assert isinstance(fast, Rollout) and isinstance(general, Rollout), (fast, general)
    assert fast.conversation == general.conversation
    assert fast.flags == general.flags
    return fast


def _write(path: Path, records: list[Any]) -> Path:
    path.write_bytes(b"".join(orjson.dumps(r) + b"\n" for r in records))
    return path


def _read(paths: list[str]) -> tuple[list[Rollout], list[Quarantined], ReadReport]:
    report = ReadReport()
    items = list(read_rollouts(paths, report=report))
    return (
        [i for i in items if isinstance(i, Rollout)],
        [i for i in items if isinstance(i, Quarantined)],
        report,
    )


# -- token capture --------------------------------------------------------------------------


def _captured() -> dict[str, Any]:
    """A projected main chain of three model calls: a tool call, the answer, and a call whose
    content was not captured (a token-only item), as ``project_chain_to_output_items`` writes."""
    output = [
        _call() | _tokens([1, 2, 3], [4, 5]),
        _output(),
        _message("It is sunny in Paris.") | _tokens([1, 2, 3, 4, 5, 6, 7], [8, 9]),
        {"type": "message"} | _tokens([1, 2, 3, 4, 5, 6, 7, 8, 9, 10], [11]),
    ]
    record = _record(output, _ng_task_index=0, _ng_rollout_index=0)
    # the whole response as project_main_chain_response makes it (an agent that returned none)
    usage = {"input_tokens": 3, "output_tokens": 5}
    record["response"] = {
        "id": "proj-0-0",
        "model": "",
        "object": "response",
        "output": output,
        "usage": usage,
    }
    return record


def test_token_only_items_make_no_empty_messages() -> None:
    decoded = fast_decode(orjson.dumps(_captured()))
    assert decoded is not None and fast_conversation(decoded, "separate", set()) is not None  # fast path
    rollout = _both(_captured())
    completion = rollout.conversation.completion
    assert [m["role"] for m in completion] == ["assistant", "tool", "assistant"]
    assert all(m["content"] or m.get("tool_calls") for m in completion)
    assert completion[-1]["content"] == "It is sunny in Paris."
    assert "token_only_item" in rollout.flags
    assert not {"empty_final_answer", "no_final_assistant", "unknown_item"} & rollout.flags


def test_token_turns_reach_each_calls_tokens_and_its_message() -> None:
    rollout = _both(_captured())
    turns = token_turns(rollout)
    assert [t.item for t in turns] == [0, 2, 3]
    assert [t.message for t in turns] == [0, 2, None]  # the token-only call has no message
    assert turns[1].prompt_token_ids == [1, 2, 3, 4, 5, 6, 7]
    assert turns[1].generation_token_ids == [8, 9]
    assert turns[1].generation_log_probs == [-0.5, -0.5]
    assert turns[1].generated_span == (7, 9)
    last = turns[-1]
    assert last.prompt_token_ids + last.generation_token_ids == list(range(1, 12))
    assert contiguous(turns)
    assert not contiguous([turns[1], turns[0]])
    assert token_turns(_both(_record([_message("no tokens here")]))) == []


def test_a_masked_capture_reads_as_a_flagged_rollout() -> None:
    record = _captured() | {
        "mask_sample": True,
        "_ng_token_capture": {"n_calls": 0, "error": "nothing recorded"},
    }
    rollout = _both(record)
    assert "mask_sample" in rollout.flags
    assert build_steps(FilterConfig())[-1].check(rollout) is not None  # drop_flagged drops it


def test_real_token_bearing_records_read_as_before() -> None:
    path = REAL_DIR / "resources_servers_competitive_coding_challenges_data_example_rollouts.jsonl"
    rollouts, quarantined, _ = _read([str(path)])
    assert len(rollouts) == 5 and not quarantined
    for rollout in rollouts:
        assert "token_only_item" not in rollout.flags
        turns = token_turns(rollout)
        assert turns and all(t.message is not None for t in turns)
        assert all(len(t.generation_token_ids) == len(t.generation_log_probs) for t in turns)
    hermes = REAL_DIR / "responses_api_agents_anyswe_agent_data_example_rollouts_hermes.jsonl"
    empty, _, _ = _read([str(hermes)])  # its items carry the token fields, all empty: no tokens
    assert empty and all(token_turns(r) == [] for r in empty)


# -- phases and namespaced calls ------------------------------------------------------------


def test_commentary_is_the_turns_text_and_the_final_answer_ends_the_conversation() -> None:
    output = [
        _message("Let me look that up.", phase="commentary"),
        _call(),
        _output(),
        _message("It is sunny.", phase="final_answer"),
    ]
    completion = _both(_record(output)).conversation.completion
    assert completion[0]["content"] == "Let me look that up."
    assert completion[0]["tool_calls"][0]["function"]["name"] == "get_weather"
    assert completion[2] == {"role": "assistant", "content": "It is sunny."}


def test_namespaced_calls_and_tools_keep_the_name_the_model_saw() -> None:
    record = _record([_call(name="read_file", namespace="fs"), _output(), _message("done")])
    record["responses_create_params"]["tools"].append(
        {
            "type": "namespace",
            "name": "fs",
            "description": "files",
            "tools": [{"type": "function", "name": "read_file", "parameters": {"type": "object"}}],
        }
    )
    record["responses_create_params"]["input"].append(
        _call(name="list", call_id="call_0", namespace="fs") | {"id": "fc_0"}
    )
    record["responses_create_params"]["input"].append(_output("call_0", "a.txt"))
    rollout = _both(record)
    assert rollout.conversation.completion[0]["tool_calls"][0]["function"]["name"] == "fs__read_file"
    assert rollout.conversation.prompt[-2]["tool_calls"][0]["function"]["name"] == "fs__list"
    names = [t["function"]["name"] for t in rollout.conversation.tools]
    assert names[-1] == "fs__read_file" and "hosted_tool" not in rollout.flags


def test_dotted_call_names_stay_as_they_are() -> None:
    rollout = _both(_record([_call(name="functions.get_weather"), _output(), _message("ok")]))
    assert rollout.conversation.completion[0]["tool_calls"][0]["function"]["name"] == "functions.get_weather"


# -- rewards --------------------------------------------------------------------------------


def test_reward_components_negative_and_partial_rewards(tmp_path: Path) -> None:
    records = [
        _record([_message("a")], 1.0, reward_components={"accuracy": 1.0, "format": 0.5}),
        _record([_message("b")], -0.5, reward_components={"accuracy": -1.0, "format": 1}),
        _record([_message("c")], 0.25),
    ]
    path = _write(tmp_path / "r.jsonl", records)
    rollouts, _, _ = _read([str(path)])
    assert [r.reward for r in rollouts] == [1.0, -0.5, 0.25]
    assert [r.success for r in rollouts] == [True, False, False]
    assert rollouts[1].reward_components == {"accuracy": -1.0, "format": 1.0}
    assert rollouts[1].reward_component("accuracy") == -1.0
    assert rollouts[2].reward_component("accuracy") is None
    half = [
        r.success
        for r in read_rollouts([str(path)], options=ReadOptions(success_threshold=0.25))
        if isinstance(r, Rollout)
    ]
    assert half == [True, False, True]
    data = inspect_paths([str(path)]).to_dict()
    assert data["reward"] == {"min": -0.5, "mean": 0.25, "max": 1.0}
    assert data["reward_components"] == {
        "accuracy": {"count": 2, "mean": 0.0, "min": -1.0, "max": 1.0},
        "format": {"count": 2, "mean": 0.75, "min": 0.5, "max": 1.0},
    }
    for item in _both(records[1]), _both(records[0]):
        assert item.reward_components  # both paths read them


# -- retries --------------------------------------------------------------------------------


def _attempt(task: int, rollout: int, attempt: int, reward: float) -> dict[str, Any]:
    return _record(
        [_message(f"t{task} r{rollout} a{attempt}")],
        reward,
        _ng_task_index=task,
        _ng_rollout_index=rollout,
        _ng_attempt_index=attempt,
    )


def test_the_latest_attempt_of_a_rollout_wins(tmp_path: Path) -> None:
    path = _write(
        tmp_path / "rollouts.jsonl",
        [
            _attempt(0, 0, 0, 1.0),  # replaced by attempt 1
            _attempt(0, 1, 0, 1.0),
            _attempt(0, 0, 1, 0.0),  # the result of rollout (0, 0)
            _attempt(0, 0, 1, 0.0),  # the same attempt again
            _attempt(1, 0, "2", 1.0),  # type: ignore[arg-type]  # NeMo Gym coerces a numeric string
        ],
    )
    rollouts, quarantined, report = _read([str(path)])
    assert report.lines == len(rollouts) == 5 and not quarantined
    flags = [sorted(r.flags & {"superseded_attempt", "duplicate_rollout"}) for r in rollouts]
    assert flags == [["superseded_attempt"], [], [], ["duplicate_rollout"], []]
    dropped = [build_steps(FilterConfig())[-1].check(r) for r in rollouts]
    assert [d is not None for d in dropped] == [True, False, False, True, False]
    stats = TaskStats.collect(read_rollouts([str(path)]))
    key = rollouts[1].task_key
    assert stats.rollouts[key] == 2 and stats.successes[key] == 1  # rollouts (0,0) and (0,1), once each


def test_attempt_flags_do_not_depend_on_reading_order(tmp_path: Path) -> None:
    """The engines read byte ranges in separate processes: a line's flag is the same read alone."""
    path = _write(tmp_path / "rollouts.jsonl", [_attempt(0, 0, 0, 1.0), _attempt(0, 0, 1, 0.0)])
    lines, offset = [], 0
    for number, line in enumerate(path.read_bytes().splitlines(keepends=True), start=1):
        lines.append(RawLine(str(path), number, offset, line.rstrip(b"\n")))
        offset += len(line)
    forward = [i.flags for i in parse_lines(lines, ReadOptions()) if isinstance(i, Rollout)]
    backward = [i.flags for i in parse_lines(lines[::-1], ReadOptions()) if isinstance(i, Rollout)]
    assert forward == backward[::-1]
    assert "superseded_attempt" in forward[0] and "superseded_attempt" not in forward[1]
    general = parse_line(lines[0], ReadOptions(), fast=False)
    assert isinstance(general, Rollout) and general.flags == forward[0]


# -- the files beside a rollouts file -------------------------------------------------------


def _failure(task: int, rollout: int, attempt: int, failure: str = "judge_failed") -> dict[str, Any]:
    """A failed attempt as ``rollout_collection`` writes it to ``X_failures.jsonl``."""
    return {
        "reward": 0.0,
        "response": {},
        "_ng_failure_class": failure,
        "_ng_failure_terminal": failure == "timeout_exceeded",
        "failure_reason": "Judge unavailable",
        "_ng_task_index": task,
        "_ng_rollout_index": rollout,
        "_ng_attempt_index": attempt,
        "agent_ref": {"type": "responses_api_agents", "name": "weather_agent"},
    }


def _run_folder(tmp_path: Path) -> Path:
    folder = tmp_path / "run"
    folder.mkdir()
    ok = [_attempt(0, 0, 0, 1.0), _attempt(0, 1, 1, 1.0), _attempt(1, 0, 0, 1.0)]
    _write(folder / "rollouts.jsonl", ok)
    failures = [
        _failure(0, 1, 0),
        _failure(0, 2, 0),
        _failure(0, 2, 1, "timeout_exceeded"),
        _failure(2, 0, 0),
    ]
    _write(folder / "rollouts_failures.jsonl", failures)
    inputs = [{k: v for k, v in r.items() if k not in ("response", "reward")} for r in ok]
    _write(folder / "rollouts_materialized_inputs.jsonl", inputs)
    return folder


def test_failed_attempts_beside_a_file_lower_their_tasks_success_rate(tmp_path: Path) -> None:
    folder = _run_folder(tmp_path)
    main = str(folder / "rollouts.jsonl")
    rollouts, _, _ = _read([main])
    task0 = rollouts[0].task_key
    stats = TaskStats.collect(read_rollouts([main]))
    # task 0: rollouts (0,0) and (0,1) succeeded ((0,1) after a failed first attempt, not
    # counted); rollout (0,2) failed twice: one failure, its latest attempt.
    assert (stats.rollouts[task0], stats.successes[task0], stats.failed[task0]) == (3, 2, 1)
    assert stats.rate(task0) == pytest.approx(2 / 3)
    assert stats.rate(rollouts[2].task_key) == 1.0
    assert stats.failed["index:weather_agent:2"] == 1  # a task of failures only
    assert MinTaskSuccessRate(1.0, stats).check(rollouts[0]) is not None
    assert MinTaskSuccessRate(1.0, stats).check(rollouts[2]) is None
    assert TaskStats.collect(read_rollouts([main]), sidecars=False).rate(task0) == 1.0


def test_a_folder_reads_each_sidecar_line_once_and_never_as_a_rollout(tmp_path: Path) -> None:
    folder = _run_folder(tmp_path)
    rollouts, _, report = _read([str(folder)])
    assert len(rollouts) == 3 and {r.source for r in rollouts} == {str(folder / "rollouts.jsonl")}
    assert report.lines == 3 + 4 + 3
    assert dict(report.quarantined) == {"failed_attempt": 4, "no_result": 3}
    stats = TaskStats.collect(read_rollouts([str(folder)]))
    alone = TaskStats.collect(read_rollouts([str(folder / "rollouts.jsonl")]))
    assert stats == alone  # the failures counted once, read from the folder or from beside


def test_the_filter_command_counts_failures_beside_its_input(tmp_path: Path) -> None:
    folder = _run_folder(tmp_path)
    out = tmp_path / "kept.jsonl"
    command = [
        sys.executable,
        "-m",
        "rollcraft.cli",
        "filter",
        str(folder / "rollouts.jsonl"),
        "-o",
        str(out),
    ]
    result = subprocess.run(
        [*command, "--min-task-success-rate", "1.0"], capture_output=True, text=True, check=False
    )
    assert result.returncode == 0, result.stderr
    kept = [json.loads(line) for line in out.read_text().splitlines()]
    assert [(r["_ng_task_index"], r["_ng_rollout_index"]) for r in kept] == [(1, 0)]


def test_inspect_shows_what_is_beside_a_rollouts_file(tmp_path: Path) -> None:
    folder = _run_folder(tmp_path)
    profile = {
        "_ng_task_index": 0,
        "mean/reward": 0.5,
        "max/reward": 1.0,
        "min/reward": 0.0,
        "sample": {"responses_create_params": {"input": "hi"}},
        "num_rollouts": 4,
        "rollout_infos": [],
    }
    _write(
        folder / "rollouts_reward_profiling.jsonl",
        [profile, profile | {"min/reward": 1.0, "mean/reward": 1.0}],
    )
    metrics = [{"agent_ref": {"name": "weather_agent"}, "key_metrics": {"mean/reward": 0.75, "n": 3}}]
    (folder / "rollouts_aggregate_metrics.json").write_bytes(orjson.dumps(metrics))
    main = str(folder / "rollouts.jsonl")
    sidecars = inspect_paths([main]).to_dict()["sidecars"][main]
    assert sidecars["failures"]["attempts"] == 4
    assert sidecars["failures"]["classes"] == {"judge_failed": 3, "timeout_exceeded": 1}
    assert sidecars["reward_profiling"]["tasks"] == 2 and sidecars["reward_profiling"]["rollouts"] == 8
    assert sidecars["reward_profiling"]["full_reward"] == {"never": 0, "sometimes": 1, "always": 1}
    assert sidecars["aggregate_metrics"]["agents"] == {"weather_agent": {"mean/reward": 0.75, "n": 3}}
    assert "sidecars" not in inspect_paths([str(EXAMPLE)]).to_dict()


def test_the_inspect_command_prints_components_and_sidecars(tmp_path: Path) -> None:
    folder = _run_folder(tmp_path)
    path = _write(
        folder / "scored.jsonl",
        [_record([_message("a")], 0.5, reward_components={"accuracy": 0.0, "format": 1.0})],
    )
    command = [sys.executable, "-m", "rollcraft.cli", "inspect", str(folder / "rollouts.jsonl"), str(path)]
    result = subprocess.run(command, capture_output=True, text=True, check=False, env=_wide())
    assert result.returncode == 0, result.stderr
    assert "Reward components" in result.stdout and "accuracy" in result.stdout
    assert "4 failed attempts (judge_failed 3, timeout_exceeded 1)" in result.stdout


def _wide() -> dict[str, str]:
    return {**os.environ, "COLUMNS": "200"}
