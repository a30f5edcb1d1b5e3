"""A tiny model that calls a tool: the tiny Qwen2 model, taught in a few seconds (plain torch, real
gradient steps on its own chat template) to answer a weather question with a ``get_weather`` call
and a tool result with a sentence. Nothing is downloaded."""

from __future__ import annotations

from pathlib import Path
from typing import Any

WEATHER_TOOL: dict[str, Any] = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "The weather in a city.",
        "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]},
    },
}
CITIES = ("Paris", "Oslo")
ANSWER = "It is sunny."


def conversations() -> list[list[dict[str, Any]]]:
    """What it learns: for each city, the question -> a call, and the call's result -> the answer."""
    out = []
    for city in CITIES:
        ask = [{"role": "user", "content": f"What is the weather in {city}?"}]
        call = {
            "role": "assistant",
            "content": "",
            "tool_calls": [
                {"type": "function", "function": {"name": "get_weather", "arguments": {"city": city}}}
            ],
        }
        out.append([*ask, call])
        out.append(
            [*ask, call, {"role": "tool", "content": "sunny"}, {"role": "assistant", "content": ANSWER}]
        )
    return out


def tool_model(
    root: Path,
    *,
    examples: list[tuple[list[dict[str, Any]], list[dict[str, Any]]]] | None = None,
    steps: int = 100,
    hidden_size: int = 64,
    lr: float = 1e-2,
) -> Path:
    """Save the taught model under ``root/model`` and return the folder. ``examples``: the
    (conversation, tools) pairs to learn (default: :func:`conversations` with the weather tool)."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from rollcraft.tiny import save_tiny_model, save_tiny_tokenizer

    base = save_tiny_model(
        root / "base", tokenizer_dir=save_tiny_tokenizer(root / "tok"), hidden_size=hidden_size
    )
    tokenizer = AutoTokenizer.from_pretrained(str(base))
    model = AutoModelForCausalLM.from_pretrained(str(base))
    rows = []
    for conv, tools in examples or [(conv, [WEATHER_TOOL]) for conv in conversations()]:
        enc = tokenizer.apply_chat_template(
            conv, tools=tools, tokenize=True, return_dict=True, return_assistant_tokens_mask=True
        )
        ids = torch.tensor(enc["input_ids"])
        mask = torch.tensor(enc["assistant_masks"], dtype=torch.bool)
        rows.append((ids, torch.where(mask, ids, torch.full_like(ids, -100))))
    width = max(len(ids) for ids, _ in rows)
    pad = tokenizer.pad_token_id
    batch = torch.stack([torch.cat([ids, torch.full((width - len(ids),), pad)]) for ids, _ in rows])
    labels = torch.stack([torch.cat([lab, torch.full((width - len(lab),), -100)]) for _, lab in rows])
    attention = (labels != -100) | (batch != pad)
    torch.manual_seed(0)
    optimizer = torch.optim.AdamW(model.parameters(), lr=lr)
    model.train()
    for _ in range(steps):
        loss = model(input_ids=batch, attention_mask=attention, labels=labels).loss
        loss.backward()
        optimizer.step()
        optimizer.zero_grad()
    model.eval()
    out = root / "model"
    model.save_pretrained(str(out))
    tokenizer.save_pretrained(str(out))
    return out
