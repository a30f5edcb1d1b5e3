"""NeMo Gym records that carry ``ng_trajectory`` (schema 1.0), as ``gym eval run`` writes them.

The shapes follow NeMo Gym's own models (``nemo_gym/rollout_observability.py``:
``TrajectoryRecord``, ``AgentInvocation``, ``TrajectoryModelCall``, ``ObservationGap``;
``nemo_gym/rollout_collection.py``: how a captured call becomes a ``TrajectoryModelCall``), field
for field, as ``model_dump(mode="json")`` writes them; every trajectory here validates against
``TrajectoryRecord``. Plain dicts, no rollcraft import.
"""

from __future__ import annotations

import json
from typing import Any

MODEL_REF = {"type": "responses_api_models", "name": "policy_model"}
SYSTEM = "You are a coding agent. Use the tools."
TASK = "Fix the failing test in calc.py."
SHELL_TOOL = {
    "type": "function",
    "name": "shell",
    "description": "Run a shell command.",
    "parameters": {"type": "object", "properties": {"cmd": {"type": "string"}}, "required": ["cmd"]},
    "strict": None,
}


def record(
    trajectory: dict[str, Any] | None, *, output: list[dict[str, Any]] | None = None, reward: float = 1.0
) -> dict[str, Any]:
    """A rollout line of a CLI agent: ``response.output`` holds only the final message."""
    row: dict[str, Any] = {
        "_ng_task_index": 3,
        "_ng_rollout_index": 0,
        "responses_create_params": {"input": [{"role": "user", "content": TASK}], "tools": []},
        "response": {
            "id": "resp_final",
            "created_at": 1760000000.0,
            "model": "policy",
            "object": "response",
            "output": output if output is not None else [final_message("Fixed: the test passes now.")],
            "parallel_tool_calls": True,
            "tool_choice": "auto",
            "tools": [],
        },
        "reward": reward,
        "agent_ref": {"type": "responses_api_agents", "name": "codex_agent"},
    }
    if trajectory is not None:
        row["ng_trajectory"] = trajectory
    return row


def line(row: dict[str, Any]) -> str:
    return json.dumps(row)


def final_message(text: str, item_id: str = "msg_final") -> dict[str, Any]:
    return {
        "id": item_id,
        "type": "message",
        "role": "assistant",
        "status": "completed",
        "content": [{"type": "output_text", "text": text, "annotations": []}],
    }


def function_call(call_id: str, name: str, arguments: dict[str, Any]) -> dict[str, Any]:
    return {
        "type": "function_call",
        "call_id": call_id,
        "name": name,
        "arguments": json.dumps(arguments),
        "id": f"fc_{call_id}",
        "status": "completed",
    }


def call_output(call_id: str, output: str) -> dict[str, Any]:
    return {"type": "function_call_output", "call_id": call_id, "output": output}


def trajectory(
    invocations: list[dict[str, Any]],
    model_calls: list[dict[str, Any]],
    gaps: list[dict[str, Any]] | None = None,
) -> dict[str, Any]:
    return {
        "schema_version": "1.0",
        "task_id": "3",
        "rollout_id": "3-0",
        "invocations": invocations,
        "turns": [],
        "model_calls": model_calls,
        "tool_calls": [],
        "gaps": [*(gaps or []), *conversation_unavailable(invocations)],
    }


def conversation_unavailable(invocations: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The gap ``rollout_collection._build_trajectory_record`` adds when no invocation has a
    ``conversation`` (every trajectory built from model calls alone)."""
    if any(invocation["conversation"] for invocation in invocations):
        return []
    return [{"code": "conversation_unavailable", "invocation_id": None, "detail": None}]


def invocation(
    invocation_id: str,
    call_ids: list[str],
    *,
    parent: str | None = None,
    spawned_by: str | None = None,
    conversation: list[dict[str, Any]] | None = None,
) -> dict[str, Any]:
    return {
        "kind": "agent_invocation",
        "invocation_id": invocation_id,
        "parent_invocation_id": parent,
        "spawned_by_tool_call_id": spawned_by,
        "status": "completed",
        "duration_ms": None,
        "error_type": None,
        "model_calls": [
            {"model_call_id": c, "model_ref": MODEL_REF, "response_id": f"resp_{c}"} for c in call_ids
        ],
        "conversation": conversation or [],
    }


def model_call(call_id: str, dialect: str, request: Any, response: Any, at: float) -> dict[str, Any]:
    """A captured call as ``rollout_collection._build_trajectory_record`` projects it."""
    return {
        "model_call_id": call_id,
        "started_at": at,
        "completed_at": at + 1.0,
        "duration_ms": 1000.0,
        "request": request,
        "response": response,
        "response_metadata": {
            "response_id": f"resp_{call_id}",
            "model_ref": MODEL_REF,
            "model": "policy",
            "dialect": dialect,
            "status_code": 200,
            "response_status": "completed" if dialect == "responses" else None,
            "finish_reason": None,
            "upstream_attempted": None,
            "response_source": None,
            "upstream_status_code": None,
            "local_response_reason": None,
            "error_category": None,
            "latency_ttft_ms": None,
        },
        "token_stats": {
            "prompt_tokens": 100,
            "completion_tokens": 10,
            "reasoning_tokens": None,
            "total_tokens": 110,
            "cached_tokens": None,
        },
    }


def responses_call(
    call_id: str,
    items: list[dict[str, Any]],
    output: list[dict[str, Any]],
    at: float,
    *,
    system: str = SYSTEM,
) -> dict[str, Any]:
    """A ``/v1/responses`` call: ``instructions`` and ``input`` in, ``output`` out."""
    request = {"model": "policy", "instructions": system, "input": items, "tools": [SHELL_TOOL]}
    response = {"id": f"resp_{call_id}", "object": "response", "status": "completed", "output": output}
    return model_call(call_id, "responses", request, response, at)


def chat_call(
    call_id: str, messages: list[dict[str, Any]], message: dict[str, Any], at: float, finish: str = "stop"
) -> dict[str, Any]:
    """A ``/v1/chat/completions`` call."""
    tool = {"type": "function", "function": {k: SHELL_TOOL[k] for k in ("name", "description", "parameters")}}
    request = {"model": "policy", "messages": messages, "tools": [tool]}
    response = {
        "id": f"resp_{call_id}",
        "object": "chat.completion",
        "choices": [{"index": 0, "message": message, "finish_reason": finish}],
    }
    return model_call(call_id, "chat", request, response, at)


def messages_call(
    call_id: str,
    messages: list[dict[str, Any]],
    content: list[dict[str, Any]],
    at: float,
    stop: str = "end_turn",
) -> dict[str, Any]:
    """A ``/v1/messages`` (Anthropic Messages) call."""
    tool = {"name": "shell", "description": "Run a shell command.", "input_schema": SHELL_TOOL["parameters"]}
    request = {"model": "policy", "system": SYSTEM, "messages": messages, "tools": [tool], "max_tokens": 1024}
    response = {
        "id": f"resp_{call_id}",
        "type": "message",
        "role": "assistant",
        "content": content,
        "stop_reason": stop,
    }
    return model_call(call_id, "messages", request, response, at)


USER = {"role": "user", "content": TASK}
RUN_TESTS = function_call("call_1", "shell", {"cmd": "pytest -q"})
TEST_FAILED = call_output("call_1", "1 failed")
FINAL = final_message("Fixed: the test passes now.")


def cli_agent_trajectory() -> dict[str, Any]:
    """One root invocation, two responses calls: a tool call, then the final answer."""
    calls = [
        responses_call("c1", [USER], [RUN_TESTS], 1.0),
        responses_call("c2", [USER, RUN_TESTS, TEST_FAILED], [FINAL], 3.0),
    ]
    return trajectory([invocation("root", ["c1", "c2"])], calls)


def subagent_trajectory(gaps: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    """The root spawns a subagent with its ``task`` tool call; the subagent answers in two calls."""
    spawn = function_call("call_task", "task", {"prompt": "Find the bug in calc.py"})
    sub_user = {"role": "user", "content": "Find the bug in calc.py"}
    grep = function_call("call_grep", "shell", {"cmd": "grep -n def calc.py"})
    calls = [
        responses_call("r1", [USER], [spawn], 1.0),
        responses_call("s1", [sub_user], [grep], 2.0, system="You are a search subagent."),
        responses_call(
            "s2",
            [sub_user, grep, call_output("call_grep", "3:def add(a, b): return a - b")],
            [final_message("add() subtracts.", "msg_sub")],
            3.0,
            system="You are a search subagent.",
        ),
        responses_call("r2", [USER, spawn, call_output("call_task", "add() subtracts.")], [FINAL], 4.0),
    ]
    invocations = [
        invocation("root", ["r1", "r2"]),
        invocation("sub-1", ["s1", "s2"], parent="root", spawned_by="call_task"),
    ]
    return trajectory(invocations, calls, gaps)


def compaction_trajectory() -> dict[str, Any]:
    """Two calls, then a compacted context (the history replaced by a summary) and two more."""
    summary = {"role": "user", "content": "Summary so far: pytest shows 1 failure in add()."}
    edit = function_call("call_2", "shell", {"cmd": "sed -i s/-/+/ calc.py"})
    calls = [
        responses_call("a1", [USER], [RUN_TESTS], 1.0),
        responses_call("a2", [USER, RUN_TESTS, TEST_FAILED], [final_message("Looking at add().", "m2")], 2.0),
        responses_call("a3", [USER, summary], [edit], 3.0),
        responses_call("a4", [USER, summary, edit, call_output("call_2", "")], [FINAL], 4.0),
    ]
    return trajectory([invocation("root", ["a1", "a2", "a3", "a4"])], calls)


def chat_trajectory() -> dict[str, Any]:
    system = {"role": "system", "content": SYSTEM}
    call = {
        "id": "call_1",
        "type": "function",
        "function": {"name": "shell", "arguments": '{"cmd": "pytest -q"}'},
    }
    first = {"role": "assistant", "content": None, "tool_calls": [call]}
    calls = [
        chat_call("h1", [system, USER], first, 1.0, "tool_calls"),
        chat_call(
            "h2",
            [system, USER, first, {"role": "tool", "tool_call_id": "call_1", "content": "1 failed"}],
            {
                "role": "assistant",
                "content": "Fixed: the test passes now.",
                "reasoning_content": "add() is wrong",
            },
            2.0,
        ),
    ]
    return trajectory([invocation("root", ["h1", "h2"])], calls)


def messages_trajectory() -> dict[str, Any]:
    use: dict[str, Any] = {
        "type": "tool_use",
        "id": "toolu_1",
        "name": "shell",
        "input": {"cmd": "pytest -q"},
    }
    first: list[dict[str, Any]] = [
        {"type": "thinking", "thinking": "Run the tests first.", "signature": "sig"},
        use,
    ]
    result = {
        "type": "tool_result",
        "tool_use_id": "toolu_1",
        "content": [{"type": "text", "text": "1 failed"}],
    }
    calls = [
        messages_call("m1", [{"role": "user", "content": TASK}], first, 1.0, "tool_use"),
        messages_call(
            "m2",
            [
                {"role": "user", "content": [{"type": "text", "text": TASK}]},
                {"role": "assistant", "content": first},
                {"role": "user", "content": [result]},
            ],
            [{"type": "text", "text": "Fixed: the test passes now."}],
            2.0,
        ),
    ]
    return trajectory([invocation("root", ["m1", "m2"])], calls)


def transcript_trajectory() -> dict[str, Any]:
    """No captured model call: the invocation's ``conversation`` items are the history."""
    items = [
        {"type": "message", "role": "user", "content": TASK},
        RUN_TESTS,
        TEST_FAILED,
        FINAL,
    ]
    gaps = [{"code": "model_calls_unavailable", "invocation_id": None, "detail": None}]
    return trajectory([invocation("ses_root", [], conversation=items)], [], gaps)
