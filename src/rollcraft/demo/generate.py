"""Collect rollouts from a local model with batched ``transformers`` generation (left padding).

:func:`collect` plays every task ``n`` times against the environment: the model answers or calls
a tool, tool calls are executed and their results fed back, up to ``max_turns`` assistant turns;
the final answer is verified and each attempt becomes one NeMo Gym record.

Generating one conversation at a time is 30-50x slower than batching on CPU: every turn of
every pending attempt is generated in one batch.
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from rollcraft.demo.env import ArithmeticTask, Turn, chat_tools, execute_tool, nemo_gym_record, verify

__all__ = ["Attempt", "LocalGenerator", "collect", "parse_turn"]

_CALL = re.compile(r"^\s*<tool_call>(.*?)</tool_call>", re.DOTALL)


def parse_turn(text: str) -> Turn:
    """A generated assistant turn: a tool call when it starts with ``<tool_call>{json}</tool_call>``.

    >>> parse_turn('<tool_call>{"name": "add", "arguments": {"a": 1, "b": 2}}</tool_call>').tool_name
    'add'
    >>> parse_turn("42").text
    '42'
    """
    match = _CALL.match(text)
    if match is None:
        return Turn(text.strip())
    try:
        payload = json.loads(match.group(1))
    except json.JSONDecodeError:
        return Turn(text.strip())
    if not isinstance(payload, dict) or not isinstance(payload.get("arguments"), dict):
        return Turn(text.strip())
    return Turn(text.strip(), str(payload.get("name")), payload["arguments"])


@dataclass(slots=True)
class Attempt:
    """One attempt at a task while it is being played."""

    task: ArithmeticTask
    task_index: int
    rollout_index: int
    turns: list[Turn] = field(default_factory=list)
    tool_outputs: list[str] = field(default_factory=list)
    done: bool = False

    def messages(self) -> list[dict[str, Any]]:
        """The conversation so far, in chat form, for the chat template."""
        messages: list[dict[str, Any]] = [{"role": "user", "content": self.task.question}]
        for i, turn in enumerate(self.turns):
            if turn.tool_name is None:
                messages.append({"role": "assistant", "content": turn.text})
                continue
            call = {
                "id": f"call_{i}",
                "type": "function",
                "function": {"name": turn.tool_name, "arguments": turn.arguments},
            }
            messages.append({"role": "assistant", "content": "", "tool_calls": [call]})
            messages.append({"role": "tool", "tool_call_id": f"call_{i}", "content": self.tool_outputs[i]})
        return messages

    def record(self) -> dict[str, Any]:
        """The finished attempt as a NeMo Gym record (reward 0 when it never answered)."""
        last = self.turns[-1] if self.turns else None
        answered = last is not None and last.tool_name is None
        reward = verify(self.task, last.text) if answered and last is not None else 0.0
        return nemo_gym_record(
            self.task,
            self.turns,
            self.tool_outputs,
            task_index=self.task_index,
            rollout_index=self.rollout_index,
            reward=reward,
        )


class LocalGenerator:
    """A causal LM and its tokenizer from a local folder, generating in batches on CPU or GPU."""

    def __init__(
        self,
        model_dir: str,
        *,
        max_new_tokens: int = 48,
        batch_size: int = 256,
        tools_in_prompt: bool = False,
    ) -> None:
        import importlib

        import torch

        transformers: Any = importlib.import_module("transformers")
        self.tokenizer: Any = transformers.AutoTokenizer.from_pretrained(model_dir, padding_side="left")
        self.model: Any = transformers.AutoModelForCausalLM.from_pretrained(model_dir)
        self.model.eval()
        self.device = "cuda" if torch.cuda.is_available() else "cpu"
        self.model.to(self.device)
        self.max_new_tokens = max_new_tokens
        self.batch_size = batch_size
        self.tools: Any = chat_tools() if tools_in_prompt else None

    def complete(self, conversations: Sequence[list[dict[str, Any]]], *, temperature: float) -> list[str]:
        """The next assistant turn for each conversation (text up to, without, the end-of-turn token)."""
        prompts = [
            self.tokenizer.apply_chat_template(
                c, tools=self.tools, tokenize=False, add_generation_prompt=True
            )
            for c in conversations
        ]
        texts: list[str] = []
        for start in range(0, len(prompts), self.batch_size):
            texts.extend(self._batch(prompts[start : start + self.batch_size], temperature))
        return texts

    def _batch(self, prompts: list[str], temperature: float) -> list[str]:
        import torch

        enc = self.tokenizer(prompts, return_tensors="pt", padding=True, add_special_tokens=False).to(
            self.device
        )
        sampling: dict[str, Any] = {"do_sample": True, "temperature": temperature, "top_k": 0, "top_p": 1.0}
        with torch.no_grad():
            out = self.model.generate(
                **enc,
                max_new_tokens=self.max_new_tokens,
                pad_token_id=self.tokenizer.pad_token_id,
                eos_token_id=self.tokenizer.eos_token_id,
                **(sampling if temperature > 0 else {"do_sample": False}),
            )
        new = out[:, enc["input_ids"].shape[1] :]
        decoded = self.tokenizer.batch_decode(new, skip_special_tokens=False)
        return [self._cut(text) for text in decoded]

    def _cut(self, text: str) -> str:
        eos, pad = self.tokenizer.eos_token, self.tokenizer.pad_token
        return text.split(eos)[0].replace(pad, "")


def collect(
    generator: LocalGenerator,
    tasks: Sequence[ArithmeticTask],
    *,
    n: int,
    temperature: float = 1.0,
    seed: int = 0,
    max_turns: int = 3,
) -> list[dict[str, Any]]:
    """Play every task ``n`` times; returns one NeMo Gym record per attempt (task-major order)."""
    import torch

    torch.manual_seed(seed)
    attempts = [Attempt(task, i, r) for i, task in enumerate(tasks) for r in range(n)]
    for turn_number in range(max_turns):
        pending = [a for a in attempts if not a.done]
        if not pending:
            break
        texts = generator.complete([a.messages() for a in pending], temperature=temperature)
        for attempt, text in zip(pending, texts, strict=True):
            _advance(attempt, parse_turn(text), last_turn=turn_number == max_turns - 1)
    return [a.record() for a in attempts]


def _advance(attempt: Attempt, turn: Turn, *, last_turn: bool) -> None:
    attempt.turns.append(turn)
    if turn.tool_name is None or last_turn:
        attempt.done = True
        return
    attempt.tool_outputs.append(execute_tool(turn.tool_name, turn.arguments))
