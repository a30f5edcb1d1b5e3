"""Write the bundled example rollouts (NeMo Gym's record shape), deterministically.

    python examples/make_examples.py

The records are made up by rollcraft (not copied from anywhere): a weather agent with one tool,
a calculator agent that makes parallel tool calls over several steps, a math agent with
reasoning items, and a multi-turn support chat whose later user turns sit in ``response.output``.
Several rollouts per task, written in a shuffled (completion-like) order, with mixed rewards.
"""

from __future__ import annotations

import json
import random
from pathlib import Path
from typing import Any

HERE = Path(__file__).parent / "rollouts"
WEATHER_TOOL = {
    "type": "function",
    "name": "get_weather",
    "description": "Current weather for a city.",
    "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]},
    "strict": True,
}
CALC_TOOL = {
    "type": "function",
    "name": "calculate",
    "description": "Evaluate an arithmetic expression.",
    "parameters": {
        "type": "object",
        "properties": {"expression": {"type": "string"}},
        "required": ["expression"],
    },
    "strict": True,
}
CITIES = {
    "Zagreb": "sunny, 21C",
    "Oslo": "rain, 9C",
    "Lima": "cloudy, 17C",
    "Nairobi": "sunny, 26C",
    "Osaka": "humid, 29C",
    "Quito": "drizzle, 14C",
}


def msg(role: str, text: str) -> dict[str, Any]:
    kind = "output_text" if role == "assistant" else "input_text"
    return {"type": "message", "role": role, "content": [{"type": kind, "text": text}]}


def call(call_id: str, name: str, args: dict[str, Any]) -> dict[str, Any]:
    return {
        "type": "function_call",
        "call_id": call_id,
        "id": f"fc_{call_id}",
        "name": name,
        "arguments": json.dumps(args),
    }


def result(call_id: str, output: str) -> dict[str, Any]:
    return {"type": "function_call_output", "call_id": call_id, "output": output}


def record(
    agent: str,
    task: int,
    rollout: int,
    inputs: list[Any],
    tools: list[Any],
    output: list[Any],
    reward: float,
    **extra: Any,
) -> dict[str, Any]:
    return {
        "responses_create_params": {"input": inputs, "tools": tools, "temperature": 1.0},
        "response": {
            "id": f"resp_{agent}_{task}_{rollout}",
            "object": "response",
            "output": output,
            "status": "completed",
            "incomplete_details": None,
        },
        "reward": reward,
        "_ng_task_index": task,
        "_ng_rollout_index": rollout,
        "agent_ref": {"type": "responses_api_agents", "name": agent},
        **extra,
    }


def weather(rng: random.Random) -> list[dict[str, Any]]:
    rows = []
    for task, (city, report) in enumerate(CITIES.items()):
        prompt = [
            msg("system", "You are a weather assistant. Use the tool."),
            msg("user", f"Weather in {city}?"),
        ]
        for rollout in range(4):
            cid = f"call_w{task}{rollout}{rng.randrange(10**6):06d}"
            if rng.random() < 0.6:
                answer = rng.choice(
                    [
                        f"In {city} it is {report}.",
                        f"{city}: {report} right now.",
                        f"Currently {report} in {city}.",
                    ]
                )
                leaked = task == 1  # a tool that echoed its (made-up) credentials
                text = (
                    f"{report} (GET /v1/weather?key=AIzaSyD-3xAmpleKeyN0tRealButL00ks123456)"
                    if leaked
                    else report
                )
                out = [call(cid, "get_weather", {"city": city}), result(cid, text), msg("assistant", answer)]
                reward = 1.0
            else:
                guess = rng.choice(["probably fine", "likely sunny", "hard to say", "nice, I guess"])
                out = [msg("assistant", f"I think {city} is {guess} today.")]
                reward = 0.0
            rows.append(
                record(
                    "weather_agent",
                    task,
                    rollout,
                    prompt,
                    [WEATHER_TOOL],
                    out,
                    reward,
                    metadata={"task_type": "tool_use"},
                )
            )
    return rows


def calculator(rng: random.Random) -> list[dict[str, Any]]:
    rows = []
    for task in range(5):
        a, b, c = rng.randrange(10, 99), rng.randrange(10, 99), rng.randrange(2, 9)
        prompt = f"What is ({a} + {b}) * {c}? Use the calculator for each step."
        for rollout in range(3):
            ids = [f"call_c{task}{rollout}{k}{rng.randrange(10**6):06d}" for k in range(3)]
            wrong = rng.random() < 0.35
            total = (a + b) * c + (7 if wrong else 0)
            out = [
                {
                    "type": "reasoning",
                    "id": f"rs_{task}_{rollout}",
                    "summary": [{"type": "summary_text", "text": "Add first, then multiply."}],
                },
                call(ids[0], "calculate", {"expression": f"{a} + {b}"}),
                call(ids[1], "calculate", {"expression": f"{c} * 1"}),
                result(ids[0], str(a + b)),
                result(ids[1], str(c)),
                call(ids[2], "calculate", {"expression": f"{a + b} * {c}"}),
                result(ids[2], str((a + b) * c)),
                msg(
                    "assistant",
                    rng.choice(["The answer is {}.", "Result: {}.", "({a} + {b}) * {c} = {}."])
                    .replace("{a}", str(a))
                    .replace("{b}", str(b))
                    .replace("{c}", str(c))
                    .format(total),
                ),
            ]
            rows.append(
                record(
                    "calculator_agent",
                    task,
                    rollout,
                    prompt,
                    [CALC_TOOL],
                    out,
                    0.0 if wrong else 1.0,
                    expected_answer=str((a + b) * c),
                )
            )
    return rows


def math(rng: random.Random) -> list[dict[str, Any]]:
    rows = []
    for task in range(6):
        a, b = rng.randrange(100, 999), rng.randrange(100, 999)
        inputs = [msg("user", f"Compute {a} + {b}. Put the final answer in \\boxed{{}}.")]
        for rollout in range(4):
            off = rng.choice([0, 0, 0, 1, 10])
            reasoning = {
                "type": "reasoning",
                "id": f"rs_m{task}{rollout}",
                "summary": [{"type": "summary_text", "text": f"{a} plus {b}, carry the digits."}],
            }
            lead = rng.choice(["", "Adding the numbers: ", "Sure. ", "Let me add them. "])
            out = [reasoning, msg("assistant", f"{lead}{a} + {b} = \\boxed{{{a + b + off}}}")]
            reward = 1.0 if off == 0 else 0.0
            rows.append(
                record(
                    "math_agent",
                    task,
                    rollout,
                    inputs,
                    [],
                    out,
                    reward,
                    expected_answer=str(a + b),
                    metadata={"task_type": "math"},
                )
            )
    return rows


def support(rng: random.Random) -> list[dict[str, Any]]:
    rows = []
    issues = ["my order is late", "I was charged twice", "the app crashes on start"]
    for task, issue in enumerate(issues):
        inputs = [
            msg("developer", "You are a polite support agent. Ask for the order number first."),
            msg("user", f"Hi, {issue}."),
        ]
        for rollout in range(3):
            polite = rng.random() < 0.7
            first = "Sorry to hear that! Could you share your order number?" if polite else "What?"
            closing = rng.choice(
                [
                    "Thanks, I have escalated order 48213; you will hear from us today.",
                    "Got it: order 48213 is escalated and support will email you today.",
                    "Thank you! Order 48213 is now with our team; expect news within the day.",
                ]
            )
            out = [
                msg("assistant", first),
                msg("user", "It is 48213, reach me at jane.roe@example.org."),
                msg("assistant", closing),
            ]
            reward = round(rng.uniform(0.75, 1.0), 3) if polite else round(rng.uniform(0.0, 0.4), 3)
            rows.append(
                record(
                    "support_agent",
                    task,
                    rollout,
                    inputs,
                    [],
                    out,
                    reward,
                    metadata={"task_type": "multi_turn_chat"},
                )
            )
    return rows


def main() -> None:
    rng = random.Random(20261124)
    HERE.mkdir(parents=True, exist_ok=True)
    tool_rows = weather(rng) + calculator(rng)
    chat_rows = math(rng) + support(rng)
    for name, rows in (("tool_agents_rollouts.jsonl", tool_rows), ("chat_agents_rollouts.jsonl", chat_rows)):
        rng.shuffle(rows)
        with open(HERE / name, "w") as handle:
            for row in rows:
                handle.write(json.dumps(row) + "\n")
    with open(HERE / "tool_agents_materialized_inputs.jsonl", "w") as handle:
        for task, city in enumerate(CITIES):
            row = {
                "responses_create_params": {"input": [msg("user", f"Weather in {city}?")]},
                "_ng_task_index": task,
                "_ng_rollout_index": 0,
                "agent_ref": {"name": "weather_agent"},
            }
            handle.write(json.dumps(row) + "\n")


if __name__ == "__main__":
    main()
