"""Tasks for NeMo Gym's bundled ``example_single_tool_call`` environment, and the base model's script.

The environment's resources server offers one tool, ``get_weather(city)``, and its verifier gives
reward 1.0 when the model's output holds a ``get_weather`` function call, else 0.0. Its own
dataset has 5 tasks (all about San Francisco); :func:`make_tasks` writes more of the same form
(the same developer message and tool, a user asking about a city), with disjoint cities for the
training and held-out splits, so held-out success measures what the model learned, not which
prompts it saw.

:func:`script_record` is a scripted NeMo Gym record of a task, in the shape ``gym eval run``
writes: the assistant either calls ``get_weather`` and answers from its result (reward 1.0), or
answers at once without looking (reward 0.0). Pre-training on half of each gives the demo's base
model its mixed quality.

>>> train, heldout = make_tasks(4, seed=0, split="train"), make_tasks(4, seed=0, split="heldout")
>>> {task_city(t) for t in train} & {task_city(t) for t in heldout}
set()
"""

from __future__ import annotations

import json
import random
import re
from typing import Any, Literal

__all__ = ["ENVIRONMENT", "TOOL", "make_tasks", "script_record", "task_city"]

#: The bundled environment (its config is ``environments/example_single_tool_call/config.yaml``).
ENVIRONMENT = "example_single_tool_call"
#: The environment's developer message and tool, as its own ``data/example.jsonl`` has them.
DEVELOPER = (
    "You are a helpful personal assistant that aims to be helpful and reduce any pain points the user has."
)
TOOL: dict[str, Any] = {
    "name": "get_weather",
    "parameters": {
        "type": "object",
        "properties": {"city": {"type": "string", "description": ""}},
        "required": ["city"],
        "additionalProperties": False,
    },
    "strict": True,
    "type": "function",
    "description": "",
}
_TRAIN_CITIES = (
    "paris", "berlin", "tokyo", "lima", "oslo", "cairo", "dublin", "madrid", "rome", "seoul",
    "delhi", "quito", "sydney", "vienna", "prague", "lisbon", "athens", "boston", "denver", "austin",
    "miami", "dallas", "seattle", "chicago", "toronto", "havana", "nairobi", "accra", "dakar", "tunis",
    "riga", "minsk", "kyiv", "sofia", "zagreb", "bern", "brussels", "warsaw", "budapest", "helsinki",
)  # fmt: skip
_HELDOUT_CITIES = (
    "sf", "london", "moscow", "beijing", "manila", "hanoi", "bogota", "santiago", "caracas", "oaxaca",
    "reno", "tulsa", "omaha", "boise", "tampa", "porto", "malmo", "bergen", "gdansk", "krakow",
    "lagos", "kigali", "lusaka", "harare", "doha", "muscat", "amman", "beirut", "tbilisi", "baku",
    "almaty", "tashkent", "kabul", "dhaka", "colombo", "male", "perth", "hobart", "suva", "apia",
)  # fmt: skip
_PHRASES = (
    "what's it like in {}?",
    "going out in {} tn",
    "humidity in {}",
    "weather in {} today?",
    "is it cold in {}?",
    "should i bring an umbrella in {}?",
    "forecast for {}",
    "how warm is it in {} right now",
)
_DECLINES = (
    "I can't check the weather in {} right now.",
    "Have a nice time in {}!",
    "It is probably fine in {}.",
)
Split = Literal["train", "heldout"]


def make_tasks(n: int, *, seed: int, split: Split) -> list[dict[str, Any]]:
    """``n`` distinct NeMo Gym input rows of one split (a seeded choice of city and phrasing)."""
    cities = _TRAIN_CITIES if split == "train" else _HELDOUT_CITIES
    pairs = [(c, p) for c in cities for p in _PHRASES]
    if n > len(pairs):
        raise ValueError(f"at most {len(pairs)} {split} tasks")
    random.Random(f"{seed}/{split}").shuffle(pairs)
    return [_task(phrase.format(city)) for city, phrase in pairs[:n]]


def _task(question: str) -> dict[str, Any]:
    return {
        "responses_create_params": {
            "input": [
                {"role": "developer", "content": DEVELOPER},
                {"role": "user", "content": question},
            ],
            "tools": [TOOL],
        }
    }


def task_city(task: dict[str, Any]) -> str:
    """The city a task asks about (the word of the question that is a known city)."""
    question: str = task["responses_create_params"]["input"][-1]["content"]
    for word in re.findall(r"[a-z]+", question):
        if word in _TRAIN_CITIES or word in _HELDOUT_CITIES:
            return str(word)
    raise ValueError(f"no known city in {question!r}")


def script_record(task: dict[str, Any], *, use_tool: bool, rng: random.Random) -> dict[str, Any]:
    """A scripted rollout of ``task``: a ``get_weather`` call and an answer (reward 1), or an answer alone."""
    city = task_city(task)
    output: list[dict[str, Any]] = []
    if use_tool:
        result = {"city": city, "weather_description": f"The weather in {city} is cold."}
        output += [
            {
                "type": "function_call",
                "call_id": "call_0",
                "name": "get_weather",
                "arguments": json.dumps({"city": city}, separators=(",", ":")),
                "status": "completed",
            },
            {
                "type": "function_call_output",
                "call_id": "call_0",
                "output": json.dumps(result, separators=(",", ":")),
            },
        ]
        answer = f"It is cold in {city}."
    else:
        answer = rng.choice(_DECLINES).format(city)
    output.append(
        {
            "type": "message",
            "role": "assistant",
            "status": "completed",
            "content": [{"type": "output_text", "text": answer, "annotations": []}],
        }
    )
    return {
        "responses_create_params": task["responses_create_params"],
        "response": {"object": "response", "status": "completed", "output": output},
        "reward": 1.0 if use_tool else 0.0,
    }
