"""``POST /v1/responses``: the OpenAI Responses API, as NeMo Gym's ``openai_model`` server calls it.

Input: ``input`` (a string, or items: messages with text parts, ``function_call``,
``function_call_output``, ``reasoning``), ``instructions``, function ``tools``, ``tool_choice``
(``auto``/``none``), ``temperature``, ``top_p``, ``max_output_tokens`` and ``seed``. Output: a
Response object whose ``output`` holds a ``message`` (``output_text``) when there is text and a
``function_call`` item per parsed tool call.
"""

from __future__ import annotations

import time
import uuid
from typing import Any

from rollcraft.serve._calls import parse_calls
from rollcraft.serve._engine import Generation
from rollcraft.serve._request import Prompt, RequestError, build_messages, parse_tools, refuse, sampling_from

__all__ = ["response_object", "responses_prompt"]

_REFUSED: dict[str, tuple[object, str]] = {
    "stream": (False, "streaming is not supported: send stream=false"),
    "background": (False, "background responses are not supported"),
    "previous_response_id": (
        None,
        "previous_response_id is not supported: send the whole conversation as input",
    ),
    "conversation": (None, "stored conversations are not supported: send the whole conversation as input"),
    "prompt": (None, "stored prompts are not supported"),
    "top_logprobs": (0, "logprobs are not supported"),
}


def responses_prompt(body: dict[str, Any]) -> Prompt:
    """The prompt of a Responses request (a :class:`RequestError` for what is not supported)."""
    refuse(body, _REFUSED)
    text = body.get("text")
    if isinstance(text, dict) and isinstance(text.get("format"), dict):
        if text["format"].get("type", "text") != "text":
            raise RequestError("structured output (text.format) is not supported", param="text")
    raw = body.get("input")
    if isinstance(raw, str):
        items: list[Any] = [{"role": "user", "content": raw}]
    elif isinstance(raw, list):
        items = raw
    else:
        raise RequestError("input must be a string or a list of items", param="input")
    tools, parse = parse_tools(body)
    messages = build_messages(items, instructions=body.get("instructions"))
    return Prompt(messages, tools, sampling_from(body, ("max_output_tokens",)), parse)


def _output(generation: Generation, parse: bool) -> list[dict[str, Any]]:
    text, calls = parse_calls(generation.text) if parse else (generation.text, [])
    status = "completed" if generation.finish_reason == "stop" else "incomplete"
    items: list[dict[str, Any]] = []
    if text or not calls:
        part = {"type": "output_text", "text": text, "annotations": [], "logprobs": []}
        items.append(
            {
                "type": "message",
                "id": f"msg_{uuid.uuid4().hex}",
                "role": "assistant",
                "status": status,
                "content": [part],
            }
        )
    for call in calls:
        items.append(
            {
                "type": "function_call",
                "id": f"fc_{uuid.uuid4().hex}",
                "call_id": f"call_{uuid.uuid4().hex[:24]}",
                "name": call.name,
                "arguments": call.arguments,
                "status": "completed",
            }
        )
    return items


def response_object(
    body: dict[str, Any], prompt: Prompt, generation: Generation, model: str
) -> dict[str, Any]:
    """The Response object answering ``body``."""
    done = generation.finish_reason == "stop"
    sampling = prompt.sampling
    return {
        "id": f"resp_{uuid.uuid4().hex}",
        "object": "response",
        "created_at": int(time.time()),
        "status": "completed" if done else "incomplete",
        "incomplete_details": None if done else {"reason": "max_output_tokens"},
        "error": None,
        "model": model,
        "output": _output(generation, prompt.parse_calls),
        "instructions": body.get("instructions"),
        "tools": body.get("tools") or [],
        "tool_choice": body.get("tool_choice") or "auto",
        "parallel_tool_calls": body.get("parallel_tool_calls", True),
        "temperature": sampling.temperature,
        "top_p": sampling.top_p,
        "max_output_tokens": sampling.max_tokens,
        "metadata": body.get("metadata") or {},
        "previous_response_id": None,
        "reasoning": None,
        "store": False,
        "text": {"format": {"type": "text"}},
        "truncation": "disabled",
        "usage": {
            "input_tokens": generation.prompt_tokens,
            "input_tokens_details": {"cached_tokens": 0},
            "output_tokens": generation.completion_tokens,
            "output_tokens_details": {"reasoning_tokens": 0},
            "total_tokens": generation.prompt_tokens + generation.completion_tokens,
        },
    }
