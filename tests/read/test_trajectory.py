"""``ng_trajectory`` (schema 1.0): one row per model-visible conversation, on records shaped as
NeMo Gym writes them (``tests/read/_trajectory_records.py``), read from files in ``tmp_path``."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from rollcraft import FLAGS, ReadOptions, Rollout, read_rollouts
from rollcraft.read._reader import conversation_of_line
from rollcraft.read._trajectory import (
    DEFAULT_TRAJECTORY_MODE,
    TrajectoryMode,
    trajectory_conversations,
    trajectory_rollouts,
)
from tests.read import _trajectory_records as ng

ASSISTANT_CALL = {
    "role": "assistant",
    "content": "",
    "tool_calls": [
        {
            "id": "call_1",
            "type": "function",
            "function": {"name": "shell", "arguments": '{"cmd": "pytest -q"}'},
        }
    ],
}
PROMPT = [{"role": "system", "content": ng.SYSTEM}, {"role": "user", "content": ng.TASK}]
TOOL_RESULT = {"role": "tool", "tool_call_id": "call_1", "content": "1 failed"}
FINAL = {"role": "assistant", "content": "Fixed: the test passes now."}


def read_one(tmp_path: Path, record: dict[str, Any], trajectory: TrajectoryMode = "main") -> Rollout:
    path = tmp_path / "rollouts.jsonl"
    path.write_text(ng.line(record) + "\n")
    (item,) = read_rollouts([str(path)], options=ReadOptions(trajectory=trajectory))
    assert isinstance(item, Rollout)
    return item


def test_a_cli_agent_trains_on_its_whole_trajectory_not_its_final_message(tmp_path: Path) -> None:
    record = ng.record(ng.cli_agent_trajectory())
    rollout = read_one(tmp_path, record)
    assert rollout.conversation.prompt == PROMPT
    assert rollout.conversation.completion == [ASSISTANT_CALL, TOOL_RESULT, FINAL]
    assert rollout.conversation.tools[0]["function"]["name"] == "shell"
    assert "from_trajectory" in rollout.flags
    assert (rollout.n_assistant_turns, rollout.n_tool_calls) == (2, 1)

    off = read_one(tmp_path, record, "off")  # response.output alone: only the final message
    assert off.conversation.completion == [FINAL]
    assert "from_trajectory" not in off.flags
    assert rollout.task_key == off.task_key  # the record's own prompt names the task, either way
    assert DEFAULT_TRAJECTORY_MODE == "main"


def test_the_fast_and_general_paths_and_reading_back_agree(tmp_path: Path) -> None:
    record = ng.record(ng.cli_agent_trajectory())
    rollout = read_one(tmp_path, record)
    assert conversation_of_line(rollout.raw, ReadOptions()) == rollout.conversation
    off = ReadOptions(trajectory="off")
    assert conversation_of_line(rollout.raw, off) == read_one(tmp_path, record, "off").conversation


def test_a_subagent_spawned_by_a_tool_call_is_its_own_row_linked_to_the_main_one(tmp_path: Path) -> None:
    rollout = read_one(tmp_path, ng.record(ng.subagent_trajectory(), reward=0.5))
    main, sub = trajectory_conversations(rollout, "branches")
    assert (main.kind, main.invocation_id, main.parent_invocation_id, main.row_id) == (
        "main",
        "root",
        None,
        rollout.rollout_id,
    )
    assert main.conversation == rollout.conversation
    assert main.conversation.completion[0]["tool_calls"][0]["id"] == "call_task"
    assert (sub.kind, sub.invocation_id, sub.parent_invocation_id, sub.spawned_by_tool_call_id) == (
        "subagent",
        "sub-1",
        "root",
        "call_task",
    )
    assert sub.rollout_id == rollout.rollout_id and sub.row_id == f"{rollout.rollout_id}/sub-1/0"
    assert sub.conversation.prompt == [
        {"role": "system", "content": "You are a search subagent."},
        {"role": "user", "content": "Find the bug in calc.py"},
    ]
    assert sub.conversation.completion[-1] == {"role": "assistant", "content": "add() subtracts."}
    assert main.reward == sub.reward == 0.5
    assert not main.flags and not sub.flags and sub.source == "model_calls"
    assert [row.kind for row in trajectory_conversations(rollout, "main")] == ["main"]
    assert trajectory_conversations(rollout, "off") == []


def test_branches_gives_each_conversation_as_a_rollout_of_its_task(tmp_path: Path) -> None:
    rollout = read_one(tmp_path, ng.record(ng.subagent_trajectory()))
    assert trajectory_rollouts(rollout, "main") == [rollout]
    first, sub = trajectory_rollouts(rollout, "branches")
    assert first is rollout
    assert (sub.rollout_id, sub.reward, sub.success) == (f"{rollout.rollout_id}/sub-1/0", 1.0, True)
    # not the rollout's task (never paired with a main conversation); the same subagent prompt of
    # another rollout of the task is the same key
    assert sub.task_key.startswith(f"{rollout.task_key}/subagent:") and sub.task_key != rollout.task_key
    other = read_one(tmp_path, {**ng.record(ng.subagent_trajectory()), "_ng_rollout_index": 1})
    assert trajectory_rollouts(other, "branches")[1].task_key == sub.task_key
    assert sub.conversation.completion[-1]["content"] == "add() subtracts."
    assert (sub.n_messages, sub.n_assistant_turns, sub.n_tool_calls) == (5, 2, 1)


def test_a_compaction_starts_a_new_context_the_earlier_one_is_a_branch(tmp_path: Path) -> None:
    rollout = read_one(tmp_path, ng.record(ng.compaction_trajectory()))
    main, branch = trajectory_conversations(rollout, "branches")
    assert (main.kind, main.context, branch.kind, branch.context) == ("main", 1, "branch", 0)
    assert main.invocation_id == branch.invocation_id == "root"
    assert branch.row_id == f"{rollout.rollout_id}/root/0"
    summary = {"role": "user", "content": "Summary so far: pytest shows 1 failure in add()."}
    assert main.conversation.prompt == [*PROMPT, summary]  # what the model saw after compaction
    assert main.conversation.completion[-1] == FINAL
    assert branch.conversation.completion == [
        ASSISTANT_CALL,
        TOOL_RESULT,
        {"role": "assistant", "content": "Looking at add()."},
    ]
    assert rollout.conversation == main.conversation
    assert not main.flags and not branch.flags
    (only,) = trajectory_conversations(rollout, "main")  # reads only the last call: contexts not counted
    assert (only.kind, only.context, only.conversation) == ("main", None, main.conversation)


def test_chat_dialect_calls(tmp_path: Path) -> None:
    rollout = read_one(tmp_path, ng.record(ng.chat_trajectory()))
    assert rollout.conversation.prompt == PROMPT
    assert rollout.conversation.completion == [
        ASSISTANT_CALL,
        TOOL_RESULT,
        {**FINAL, "reasoning_content": "add() is wrong"},
    ]
    assert rollout.conversation.tools[0]["function"]["name"] == "shell"


def test_messages_dialect_calls(tmp_path: Path) -> None:
    rollout = read_one(tmp_path, ng.record(ng.messages_trajectory()))
    assert rollout.conversation.prompt == PROMPT
    call, result, final = rollout.conversation.completion
    assert call["tool_calls"][0]["id"] == "toolu_1"
    assert json.loads(call["tool_calls"][0]["function"]["arguments"]) == {"cmd": "pytest -q"}
    assert call["reasoning_content"] == "Run the tests first."
    assert result == {"role": "tool", "tool_call_id": "toolu_1", "content": "1 failed"}
    assert final == FINAL
    tool = rollout.conversation.tools[0]["function"]
    assert (tool["name"], tool["parameters"]) == ("shell", ng.SHELL_TOOL["parameters"])
    assert not {"unpaired_tool_call", "orphan_tool_output"} & rollout.flags


def test_without_captured_calls_the_invocations_transcript_is_the_history(tmp_path: Path) -> None:
    rollout = read_one(tmp_path, ng.record(ng.transcript_trajectory()))
    (main,) = trajectory_conversations(rollout, "branches")
    assert (main.source, main.invocation_id) == ("conversation", "ses_root")
    assert rollout.conversation.completion == [ASSISTANT_CALL, TOOL_RESULT, FINAL]
    assert "trajectory_gap" not in rollout.flags  # model_calls_unavailable: not this history's gap


def test_a_gap_flags_its_conversation_and_nothing_is_stitched(tmp_path: Path) -> None:
    gaps = [
        {"code": "subagent_spawn_unattributed", "invocation_id": "sub-1", "detail": None},
        {"code": "turns_unavailable", "invocation_id": None, "detail": None},  # metadata: no flag
    ]
    rollout = read_one(tmp_path, ng.record(ng.subagent_trajectory(gaps)))
    main, sub = trajectory_conversations(rollout, "branches")
    assert "trajectory_gap" in sub.flags and sub.gaps == ("subagent_spawn_unattributed",)
    assert "trajectory_gap" not in main.flags and main.gaps == ()
    assert "trajectory_gap" not in rollout.flags
    assert "trajectory_gap" in trajectory_rollouts(rollout, "branches")[1].flags
    assert "trajectory_gap" in FLAGS and "from_trajectory" in FLAGS


def test_an_unjoinable_model_call_reference_flags_the_invocation(tmp_path: Path) -> None:
    trajectory = ng.cli_agent_trajectory()
    trajectory["invocations"][0]["model_calls"].insert(
        1, {"model_call_id": "lost", "model_ref": None, "response_id": None}
    )
    rollout = read_one(tmp_path, ng.record(trajectory))
    assert {"trajectory_gap", "from_trajectory"} <= rollout.flags
    (main,) = trajectory_conversations(rollout)
    assert main.gaps == ("model_call_reference_unmatched",)
    assert main.conversation.completion[-1] == FINAL  # the last call's own request: nothing guessed


def test_calls_owned_by_no_invocation_are_flagged(tmp_path: Path) -> None:
    trajectory = ng.cli_agent_trajectory()
    trajectory["invocations"] = []
    rollout = read_one(tmp_path, ng.record(trajectory))
    (main,) = trajectory_conversations(rollout)
    assert main.gaps == ("model_call_ownership_unavailable",)
    assert "trajectory_gap" in rollout.flags


@pytest.mark.parametrize("mode", ["main", "branches", "off"])
def test_a_record_without_ng_trajectory_is_unchanged(tmp_path: Path, mode: TrajectoryMode) -> None:
    record = ng.record(None, output=[ng.RUN_TESTS, ng.TEST_FAILED, ng.FINAL])
    rollout = read_one(tmp_path, record, mode)
    assert rollout == read_one(tmp_path, record, "off")
    assert trajectory_conversations(rollout, mode) == []
    assert trajectory_rollouts(rollout, mode) == [rollout]


def test_a_main_conversation_without_gap_is_the_rollouts_whatever_the_output_holds(tmp_path: Path) -> None:
    record = ng.record(ng.cli_agent_trajectory(), output=[ng.RUN_TESTS, ng.TEST_FAILED, ng.FINAL])
    rollout = read_one(tmp_path, record)
    assert rollout.conversation.messages == [*PROMPT, ASSISTANT_CALL, TOOL_RESULT, FINAL]
    assert rollout.flags == {"from_trajectory"}
    off = read_one(tmp_path, record, "off")  # the record's own: no instructions, same turns
    assert off.conversation.messages == [PROMPT[1], ASSISTANT_CALL, TOOL_RESULT, FINAL]


def test_a_main_conversation_with_a_gap_does_not_replace_an_output_that_holds_as_much(tmp_path: Path) -> None:
    trajectory = ng.cli_agent_trajectory()
    trajectory["gaps"].append({"code": "agent_run_timeout", "invocation_id": None, "detail": None})
    record = ng.record(trajectory, output=[ng.RUN_TESTS, ng.TEST_FAILED, ng.FINAL])
    rollout = read_one(tmp_path, record)
    assert rollout.conversation == read_one(tmp_path, record, "off").conversation
    assert "from_trajectory" not in rollout.flags and "trajectory_gap" not in rollout.flags
    (main,) = trajectory_conversations(rollout)  # still there for whoever asks, flagged
    assert main.gaps == ("agent_run_timeout",) and "trajectory_gap" in main.flags
    final_only = read_one(tmp_path, ng.record(trajectory))  # an output holding less: replaced, flagged
    assert {"from_trajectory", "trajectory_gap"} <= final_only.flags
    assert final_only.conversation.completion == [ASSISTANT_CALL, TOOL_RESULT, FINAL]


def test_a_claude_code_compaction_written_by_nemo_gym_gives_the_context_the_model_saw_last() -> None:
    """``data/claude_code_compaction.jsonl``: NeMo Gym's Claude Code observer saw a compaction;
    its hidden summary call extends the first context, the call after it starts the second."""
    path = Path(__file__).parent / "data" / "claude_code_compaction.jsonl"
    (rollout,) = read_rollouts([str(path)])
    assert isinstance(rollout, Rollout)
    summary = rollout.conversation.prompt[1]["content"]
    assert summary.startswith("This session is being continued") and summary.endswith("add() subtracts.")
    assert rollout.conversation.completion == [{"role": "assistant", "content": "Fixed."}]
    assert rollout.flags == {"from_trajectory"}
    main, branch = trajectory_conversations(rollout, "branches")
    assert (main.kind, main.context, branch.kind, branch.context) == ("main", 1, "branch", 0)
    assert branch.conversation.completion[-2:] == [
        {"role": "user", "content": "Your task is to create a detailed summary of this conversation."},
        {"role": "assistant", "content": "pytest shows 1 failure: add() subtracts."},
    ]
    assert not main.gaps and not branch.gaps


@pytest.mark.parametrize(
    "trajectory",
    [
        {"schema_version": "1.0", "invocations": "x", "model_calls": {"a": 1}, "gaps": [None, 3]},
        {
            "invocations": [{"invocation_id": "root", "model_calls": [{"model_call_id": "c1"}]}],
            "model_calls": [{"model_call_id": "c1", "request": "{not json", "response": {"output": []}}],
        },
        {"invocations": [{"invocation_id": 7, "conversation": [1, None, {"type": "message"}]}]},
        "not an object",
    ],
)
def test_a_trajectory_rollcraft_cannot_read_leaves_the_record_as_read(
    tmp_path: Path, trajectory: Any
) -> None:
    record = ng.record(None)
    record["ng_trajectory"] = trajectory
    rollout = read_one(tmp_path, record)
    assert rollout.conversation.completion == [FINAL]
    assert "from_trajectory" not in rollout.flags


def test_a_claude_code_rollout_written_by_nemo_gym_gives_its_main_and_subagent_rows() -> None:
    """``data/claude_code_trajectory.jsonl``: made by NeMo Gym's own Claude Code observer, model-call
    join and trajectory projection (``data/make_claude_code_trajectory.py``), messages dialect."""
    path = Path(__file__).parent / "data" / "claude_code_trajectory.jsonl"
    (rollout,) = read_rollouts([str(path)])
    assert isinstance(rollout, Rollout)
    assert rollout.conversation.messages == [
        {"role": "system", "content": "You are Claude Code."},
        {"role": "user", "content": "Fix the failing test in calc.py."},
        {
            "role": "assistant",
            "content": "",
            "tool_calls": [
                {
                    "id": "tool-child",
                    "type": "function",
                    "function": {"name": "Agent", "arguments": '{"prompt":"Find the bug in calc.py"}'},
                }
            ],
        },
        {"role": "tool", "tool_call_id": "tool-child", "content": "add() subtracts."},
        {"role": "assistant", "content": "Fixed."},
    ]
    assert rollout.flags == {"from_trajectory"}
    assert rollout.conversation.tools[0]["function"]["name"] == "Agent"
    main, sub = trajectory_conversations(rollout, "branches")
    assert (main.kind, main.invocation_id) == ("main", "session-root")
    assert (sub.kind, sub.invocation_id, sub.parent_invocation_id, sub.spawned_by_tool_call_id) == (
        "subagent",
        "agent-child",
        "session-root",
        "tool-child",
    )
    assert sub.conversation.completion == [{"role": "assistant", "content": "add() subtracts."}]
    assert not main.gaps and not sub.gaps


def test_an_output_with_token_ids_stays_the_conversation(tmp_path: Path) -> None:
    """NeMo Gym's token-capture projection of the main chain is the exact-token history."""
    final = {
        **ng.FINAL,
        "prompt_token_ids": [1, 2, 3],
        "generation_token_ids": [4, 5],
        "generation_log_probs": [-0.1, -0.2],
    }
    rollout = read_one(tmp_path, ng.record(ng.cli_agent_trajectory(), output=[final]))
    assert rollout.conversation.completion == [FINAL]
    assert "from_trajectory" not in rollout.flags


def test_a_request_that_continues_a_stored_response_is_a_gap(tmp_path: Path) -> None:
    """With ``previous_response_id`` the model saw a history its request does not hold."""
    trajectory = ng.cli_agent_trajectory()
    request = trajectory["model_calls"][1]["request"]
    request["previous_response_id"], request["input"] = "resp_c1", [ng.TEST_FAILED]
    rollout = read_one(tmp_path, ng.record(trajectory))
    (main,) = trajectory_conversations(rollout)
    assert main.gaps == ("model_call_previous_response",)
    assert "trajectory_gap" in rollout.flags  # flagged, not stitched to the call before
