"""A small verifiable environment: two-digit arithmetic, answered directly or with a calculator tool.

A task asks ``What is 47 + 38?`` (task type ``add``) or ``What is 6 * 23?`` (``multiply``). The
agent may call the ``add`` / ``multiply`` tool and then answer, or answer at once. The verifier
is an exact match of the final answer (stripped) against the expected number: reward 1.0 or 0.0.

Rollouts are written as NeMo Gym records (``responses_create_params``, ``response.output`` of
Responses items, ``reward``, ``_ng_task_index``, ``_ng_rollout_index``, ``agent_ref``, and the
input row's own keys ``task_id``, ``question``, ``expected_answer``, ``category``), so every
rollcraft command reads them like rollouts collected with ``gym``.

>>> task = make_tasks(1, seed=0, split="train")[0]
>>> verify(task, str(task.answer)), verify(task, "no idea")
(1.0, 0.0)
"""

from __future__ import annotations

import hashlib
import json
import random
from dataclasses import dataclass
from typing import Any, Literal

__all__ = [
    "AGENT_NAME",
    "TOOLS",
    "ArithmeticTask",
    "Turn",
    "chat_tools",
    "demonstration",
    "execute_tool",
    "make_tasks",
    "nemo_gym_record",
    "verify",
]

AGENT_NAME = "arithmetic_agent"
Split = Literal["train", "heldout"]
_OPS = {"add": "+", "multiply": "*"}

#: The tools as NeMo Gym's ``responses_create_params.tools`` holds them (flat Responses form).
TOOLS: list[dict[str, Any]] = [
    {
        "type": "function",
        "name": name,
        "description": f"{name.capitalize()} two integers.",
        "parameters": {
            "type": "object",
            "properties": {"a": {"type": "integer"}, "b": {"type": "integer"}},
            "required": ["a", "b"],
        },
        "strict": True,
    }
    for name in _OPS
]


@dataclass(frozen=True, slots=True)
class ArithmeticTask:
    """One question with its expected answer."""

    task_id: str
    task_type: str
    a: int
    b: int

    @property
    def question(self) -> str:
        """The user's question, e.g. ``What is 47 + 38?``."""
        return f"What is {self.a} {_OPS[self.task_type]} {self.b}?"

    @property
    def answer(self) -> int:
        """The exact result."""
        return self.a + self.b if self.task_type == "add" else self.a * self.b


@dataclass(frozen=True, slots=True)
class Turn:
    """One assistant turn as generated: text, or a tool call (name and parsed arguments)."""

    text: str
    tool_name: str | None = None
    arguments: dict[str, Any] | None = None


def _split_of(task_type: str, a: int, b: int) -> Split:
    """A fixed, hash-based split of the (type, a, b) space: about 1 in 4 questions is held out."""
    digest = hashlib.sha256(f"{task_type}:{a}:{b}".encode()).digest()
    return "heldout" if digest[0] < 64 else "train"


def _draw(rng: random.Random, task_type: str) -> tuple[int, int]:
    if task_type == "add":
        return rng.randint(10, 99), rng.randint(10, 99)
    return rng.randint(2, 20), rng.randint(10, 99)


def make_tasks(
    n: int, *, seed: int, split: Split, types: tuple[str, ...] = ("add", "multiply")
) -> list[ArithmeticTask]:
    """``n`` distinct tasks of one split, the types alternating (the same arguments, the same tasks)."""
    rng = random.Random(f"{seed}:{split}")
    tasks: list[ArithmeticTask] = []
    seen: set[tuple[str, int, int]] = set()
    for _ in range(1000 * n + 1000):
        if len(tasks) == n:
            break
        task_type = types[len(tasks) % len(types)]
        a, b = _draw(rng, task_type)
        if (task_type, a, b) in seen or _split_of(task_type, a, b) != split:
            continue
        seen.add((task_type, a, b))
        tasks.append(ArithmeticTask(f"{task_type}-{a}-{b}", task_type, a, b))
    if len(tasks) < n:
        raise ValueError(f"cannot draw {n} distinct {split} tasks")
    return tasks


def chat_tools() -> list[dict[str, Any]]:
    """The tools in the nested chat form chat templates read."""
    return [
        {"type": "function", "function": {k: t[k] for k in ("name", "description", "parameters")}}
        for t in TOOLS
    ]


def execute_tool(name: str | None, arguments: dict[str, Any] | None) -> str:
    """Run a tool call; a bad call returns an error text (as a real environment would)."""
    args = arguments or {}
    a, b = args.get("a"), args.get("b")
    if name not in _OPS or not isinstance(a, int) or not isinstance(b, int):
        return "error: call add or multiply with integer a and b"
    return str(a + b if name == "add" else a * b)


def verify(task: ArithmeticTask, final_answer: str) -> float:
    """Exact match of the final answer against the expected number: 1.0 or 0.0."""
    return 1.0 if final_answer.strip() == str(task.answer) else 0.0


def _call_item(index: int, turn: Turn) -> dict[str, Any]:
    call_id = f"call_{index}"
    return {
        "type": "function_call",
        "id": f"fc_{index}",
        "call_id": call_id,
        "name": turn.tool_name,
        "arguments": json.dumps(turn.arguments or {}),
        "status": "completed",
    }


def _message_item(index: int, text: str) -> dict[str, Any]:
    return {
        "type": "message",
        "id": f"msg_{index}",
        "role": "assistant",
        "status": "completed",
        "content": [{"type": "output_text", "text": text, "annotations": []}],
    }


def response_items(turns: list[Turn], tool_outputs: list[str]) -> list[dict[str, Any]]:
    """``response.output`` for the turns: function_call + function_call_output pairs, then the message."""
    items: list[dict[str, Any]] = []
    for i, turn in enumerate(turns):
        if turn.tool_name is not None:
            items.append(_call_item(i, turn))
            if i < len(tool_outputs):
                items.append(
                    {"type": "function_call_output", "call_id": f"call_{i}", "output": tool_outputs[i]}
                )
        else:
            items.append(_message_item(i, turn.text))
    return items


def nemo_gym_record(
    task: ArithmeticTask,
    turns: list[Turn],
    tool_outputs: list[str],
    *,
    task_index: int,
    rollout_index: int,
    reward: float,
) -> dict[str, Any]:
    """One rollout as NeMo Gym writes it (the fields rollcraft and NeMo-RL read)."""
    return {
        "responses_create_params": {
            "input": [{"type": "message", "role": "user", "content": task.question}],
            "tools": TOOLS,
            "temperature": 1.0,
        },
        "response": {
            "id": f"resp_{task.task_id}_{rollout_index}",
            "object": "response",
            "status": "completed",
            "output": response_items(turns, tool_outputs),
        },
        "reward": reward,
        "task_id": task.task_id,
        "question": task.question,
        "expected_answer": str(task.answer),
        "category": task.task_type,
        "_ng_task_index": task_index,
        "_ng_rollout_index": rollout_index,
        "agent_ref": {"name": AGENT_NAME},
    }


def demonstration(task: ArithmeticTask, *, use_tool: bool, rng: random.Random) -> list[dict[str, Any]]:
    """A scripted conversation used to pre-train the demo's base model.

    With ``use_tool`` the assistant calls the right tool, reads the result and answers correctly;
    without, it guesses: ``about N``, N the answer rounded to tens and off by up to 20 (a careless
    habit the exact-match verifier punishes and training on verified rollouts should remove).
    """
    user = {"role": "user", "content": task.question}
    if not use_tool:
        guess = round(task.answer, -1) + 10 * rng.randint(-2, 2)
        return [user, {"role": "assistant", "content": f"about {guess}"}]
    call = {
        "id": "call_0",
        "type": "function",
        "function": {"name": task.task_type, "arguments": json.dumps({"a": task.a, "b": task.b})},
    }
    return [
        user,
        {"role": "assistant", "content": "", "tool_calls": [call]},
        {"role": "tool", "tool_call_id": "call_0", "content": str(task.answer)},
        {"role": "assistant", "content": str(task.answer)},
    ]
