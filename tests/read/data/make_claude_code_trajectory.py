"""Regenerate ``claude_code_trajectory.jsonl`` with NeMo Gym's own code (not run by the tests).

A Claude Code rollout whose root agent spawns a subagent with its ``Agent`` tool: the transcripts
go through ``extract_claude_code_observations``, three captured ``/v1/messages`` calls through
``join_model_call_observations``, and the rollout through ``_attach_trajectory_record`` (what
``gym eval run`` does with ``observability_enabled``). Run with NeMo Gym importable::

    PYTHONPATH=path/to/nemo_gym_wheel python tests/read/data/make_claude_code_trajectory.py
"""

from __future__ import annotations

import json
import tempfile
from pathlib import Path

from nemo_gym.base_responses_api_model import ModelCallRecord
from nemo_gym.config_types import ModelServerRef
from nemo_gym.rollout_collection import _attach_trajectory_record
from nemo_gym.rollout_observability import join_model_call_observations
from responses_api_agents.claude_code_agent.observability import (
    associate_claude_code_compaction_calls,
    extract_claude_code_observations,
)

MODEL_REF = ModelServerRef(type="responses_api_models", name="policy")
SESSION, CHILD = "session-root", "agent-child"
SYSTEM = [{"type": "text", "text": "You are Claude Code.", "cache_control": {"type": "ephemeral"}}]
TASK = "Fix the failing test in calc.py."
SPAWN = {
    "type": "tool_use",
    "id": "tool-child",
    "name": "Agent",
    "input": {"prompt": "Find the bug in calc.py"},
}
TOOLS = [
    {
        "name": "Agent",
        "description": "Launch a subagent.",
        "input_schema": {
            "type": "object",
            "properties": {"prompt": {"type": "string"}},
            "required": ["prompt"],
        },
    }
]


def event(
    role: str, at: str, content: object, uuid: str, *, agent: str | None = None, **extra: object
) -> dict:
    message: dict = {"role": role, "content": content}
    if role == "assistant":
        message["id"] = uuid
    found = {"type": role, "sessionId": SESSION, "timestamp": at, "message": message, "uuid": uuid, **extra}
    if agent:
        found["agentId"] = agent
    return found


def write(path: Path, *events: dict) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("\n".join(json.dumps(e) for e in events))


def call(
    index: int, response_id: str, messages: list[dict], content: list[dict], stop: str
) -> ModelCallRecord:
    request = {"model": "policy", "system": SYSTEM, "messages": messages, "tools": TOOLS, "max_tokens": 4096}
    response = {
        "id": response_id,
        "type": "message",
        "role": "assistant",
        "model": "policy",
        "content": content,
        "stop_reason": stop,
        "usage": {"input_tokens": 50, "output_tokens": 5},
    }
    return ModelCallRecord(
        model_call_id=f"mc-{index}",
        response_id=response_id,
        call_index=index,
        model_ref=MODEL_REF,
        model="policy",
        dialect="messages",
        status_code=200,
        finish_reason=stop,
        started_at=1.0 + index,
        completed_at=1.5 + index,
        tokens_in=50,
        tokens_out=5,
        request=request,
        response=response,
    )


def rollout(bundle: object, calls: list[ModelCallRecord], final: str) -> dict:
    """The rollout line ``gym eval run`` writes: ``response.output`` holds the final message only."""
    bundle = associate_claude_code_compaction_calls(bundle, calls)  # as merge_model_call_capture does
    bundle = join_model_call_observations(bundle, calls)
    row = {"_ng_task_index": 0, "_ng_rollout_index": 0}
    output = [
        {
            "id": "msg-final",
            "type": "message",
            "role": "assistant",
            "status": "completed",
            "content": [{"type": "output_text", "text": final, "annotations": []}],
        }
    ]
    record = {
        **row,
        "responses_create_params": {"input": [{"role": "user", "content": TASK}], "tools": []},
        "response": {
            "id": "resp-final",
            "created_at": 0.0,
            "model": "policy",
            "object": "response",
            "output": output,
            "parallel_tool_calls": True,
            "tool_choice": "auto",
            "tools": [],
        },
        "reward": 1.0,
        "agent_ref": {"type": "responses_api_agents", "name": "claude_code_agent"},
        "ng_agent_observations": bundle.model_dump(mode="json"),
        "ng_model_call_capture": {"calls": [c.model_dump(mode="json") for c in calls]},
    }
    _attach_trajectory_record(row, record)
    return record


SUMMARY = "pytest shows 1 failure: add() subtracts."
COMPACT_PREFIX = (
    "This session is being continued from a previous conversation that ran out of context. "
    "The summary below covers the earlier portion of the conversation.\n\n"
)


def compaction() -> dict:
    """A root agent whose context is compacted: two calls, the hidden summary call, one more."""
    bash = {"type": "tool_use", "id": "tool-1", "name": "Agent", "input": {"prompt": "run pytest"}}
    result = [{"type": "tool_result", "tool_use_id": "tool-1", "content": "1 failed"}]
    with tempfile.TemporaryDirectory() as folder:
        write(
            Path(folder) / "projects" / "work" / f"{SESSION}.jsonl",
            event("user", "2026-07-22T10:00:00Z", TASK, "root-user"),
            event("assistant", "2026-07-22T10:00:01Z", [bash], "msg-1"),
            event("user", "2026-07-22T10:00:02Z", result, "tool-1-result"),
            event(
                "assistant", "2026-07-22T10:00:03Z", [{"type": "text", "text": "Looking at add()."}], "msg-2"
            ),
            {
                "type": "system",
                "subtype": "compact_boundary",
                "sessionId": SESSION,
                "timestamp": "2026-07-22T10:00:04Z",
                "uuid": "boundary",
                "compactMetadata": {"trigger": "auto"},
            },
            event(
                "user",
                "2026-07-22T10:00:05Z",
                COMPACT_PREFIX + SUMMARY,
                "summary",
                isCompactSummary=True,
                compactMetadata={"tokensBefore": 1000, "tokensAfter": 200, "trigger": "auto"},
            ),
            event("assistant", "2026-07-22T10:00:06Z", [{"type": "text", "text": "Fixed."}], "msg-3"),
        )
        bundle = extract_claude_code_observations(Path(folder), model_ref=MODEL_REF, root_status="completed")
    user = {"role": "user", "content": TASK}
    history = [user, {"role": "assistant", "content": [bash]}, {"role": "user", "content": result}]
    looking = {"role": "assistant", "content": [{"type": "text", "text": "Looking at add()."}]}
    ask = {"role": "user", "content": "Your task is to create a detailed summary of this conversation."}
    calls = [
        call(0, "msg-1", [user], [bash], "tool_use"),
        call(1, "msg-2", history, looking["content"], "end_turn"),
        call(2, "msg-summary", [*history, looking, ask], [{"type": "text", "text": SUMMARY}], "end_turn"),
        call(
            3,
            "msg-3",
            [{"role": "user", "content": COMPACT_PREFIX + SUMMARY}],
            [{"type": "text", "text": "Fixed."}],
            "end_turn",
        ),
    ]
    return rollout(bundle, calls, "Fixed.")


def main() -> None:
    with tempfile.TemporaryDirectory() as folder:
        root = Path(folder) / "projects" / "work" / f"{SESSION}.jsonl"
        result = [{"type": "tool_result", "tool_use_id": "tool-child", "content": "add() subtracts."}]
        write(
            root,
            event("user", "2026-07-22T10:00:00Z", TASK, "root-user"),
            event("assistant", "2026-07-22T10:00:01Z", [SPAWN], "msg-root-1"),
            event(
                "user",
                "2026-07-22T10:00:05Z",
                result,
                "tool-child-result",
                toolUseResult={"agentId": CHILD, "status": "completed"},
            ),
            event("assistant", "2026-07-22T10:00:06Z", [{"type": "text", "text": "Fixed."}], "msg-root-2"),
        )
        write(
            root.parent / SESSION / "subagents" / f"{CHILD}.jsonl",
            event("user", "2026-07-22T10:00:02Z", "Find the bug in calc.py", "child-user", agent=CHILD),
            event(
                "assistant",
                "2026-07-22T10:00:03Z",
                [{"type": "text", "text": "add() subtracts."}],
                "msg-child-1",
                agent=CHILD,
            ),
        )
        bundle = extract_claude_code_observations(
            Path(folder), model_ref=MODEL_REF, root_status="completed", root_duration_ms=6000
        )
    user = {"role": "user", "content": TASK}
    calls = [
        call(0, "msg-root-1", [user], [SPAWN], "tool_use"),
        call(
            1,
            "msg-child-1",
            [{"role": "user", "content": "Find the bug in calc.py"}],
            [{"type": "text", "text": "add() subtracts."}],
            "end_turn",
        ),
        call(
            2,
            "msg-root-2",
            [user, {"role": "assistant", "content": [SPAWN]}, {"role": "user", "content": result}],
            [{"type": "text", "text": "Fixed."}],
            "end_turn",
        ),
    ]
    bundle = join_model_call_observations(bundle, calls)
    row = {"_ng_task_index": 0, "_ng_rollout_index": 0}
    record = {
        **row,
        "responses_create_params": {"input": [{"role": "user", "content": TASK}], "tools": []},
        "response": {
            "id": "resp-final",
            "created_at": 0.0,
            "model": "policy",
            "object": "response",
            "output": [
                {
                    "id": "msg-final",
                    "type": "message",
                    "role": "assistant",
                    "status": "completed",
                    "content": [{"type": "output_text", "text": "Fixed.", "annotations": []}],
                }
            ],
            "parallel_tool_calls": True,
            "tool_choice": "auto",
            "tools": [],
        },
        "reward": 1.0,
        "agent_ref": {"type": "responses_api_agents", "name": "claude_code_agent"},
        "ng_agent_observations": bundle.model_dump(mode="json"),
        "ng_model_call_capture": {"calls": [c.model_dump(mode="json") for c in calls]},
    }
    _attach_trajectory_record(row, record)
    out = Path(__file__).with_name("claude_code_trajectory.jsonl")
    out.write_text(json.dumps(record, sort_keys=True) + "\n")
    out = Path(__file__).with_name("claude_code_compaction.jsonl")
    out.write_text(json.dumps(compaction(), sort_keys=True) + "\n")


if __name__ == "__main__":
    main()
