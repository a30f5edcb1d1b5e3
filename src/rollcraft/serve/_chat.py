"""``POST /v1/chat/completions``: the OpenAI Chat Completions API, as NeMo Gym's ``vllm_model``
server calls it.

Input: ``messages`` (system/developer/user/assistant with ``tool_calls``/tool; text content),
function ``tools``, ``tool_choice`` (``auto``/``none``), ``temperature``, ``top_p``,
``max_completion_tokens`` (or ``max_tokens``) and ``seed``; ``n`` is 1. Output: a
``chat.completion`` whose message carries the text as ``content`` and parsed tool calls as
``tool_calls`` (``finish_reason`` ``tool_calls``).
"""

from __future__ import annotations

import time
import uuid
from typing import Any

from rollcraft.serve._calls import parse_calls
from rollcraft.serve._engine import Generation
from rollcraft.serve._request import Prompt, RequestError, build_messages, parse_tools, refuse, sampling_from

__all__ = ["chat_prompt", "completion_object"]

_REFUSED: dict[str, tuple[object, str]] = {
    "stream": (False, "streaming is not supported: send stream=false"),
    "n": (1, "n must be 1 (send one request per completion)"),
    "logprobs": (False, "logprobs are not supported"),
    "top_logprobs": (0, "logprobs are not supported"),
    "stop": ([], "stop sequences are not supported"),
    "continue_final_message": (False, "continue_final_message is not supported"),
}


def chat_prompt(body: dict[str, Any]) -> Prompt:
    """The prompt of a chat completions request (a :class:`RequestError` for what is not supported)."""
    refuse(body, _REFUSED)
    fmt = body.get("response_format")
    if isinstance(fmt, dict) and fmt.get("type", "text") != "text":
        raise RequestError("structured output (response_format) is not supported", param="response_format")
    messages = body.get("messages")
    if not isinstance(messages, list):
        raise RequestError("messages must be a list", param="messages")
    tools, parse = parse_tools(body)
    sampling = sampling_from(body, ("max_completion_tokens", "max_tokens"))
    return Prompt(build_messages(messages), tools, sampling, parse)


def _message(generation: Generation, parse: bool) -> tuple[dict[str, Any], str]:
    text, calls = parse_calls(generation.text) if parse else (generation.text, [])
    message: dict[str, Any] = {"role": "assistant", "content": text if text or not calls else None}
    if not calls:
        return message, generation.finish_reason
    message["tool_calls"] = [
        {
            "id": f"call_{uuid.uuid4().hex[:24]}",
            "type": "function",
            "function": {"name": call.name, "arguments": call.arguments},
        }
        for call in calls
    ]
    return message, "tool_calls" if generation.finish_reason == "stop" else "length"


def completion_object(prompt: Prompt, generation: Generation, model: str) -> dict[str, Any]:
    """The ``chat.completion`` answering the request of ``prompt``."""
    message, finish = _message(generation, prompt.parse_calls)
    return {
        "id": f"chatcmpl-{uuid.uuid4().hex}",
        "object": "chat.completion",
        "created": int(time.time()),
        "model": model,
        "choices": [{"index": 0, "message": message, "finish_reason": finish, "logprobs": None}],
        "usage": {
            "prompt_tokens": generation.prompt_tokens,
            "completion_tokens": generation.completion_tokens,
            "total_tokens": generation.prompt_tokens + generation.completion_tokens,
        },
    }
