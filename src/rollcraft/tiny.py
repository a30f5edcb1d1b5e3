"""Tiny local tokenizers and models, built on this machine with no hub download.

They exist for tests, the closed-loop demo and quick experiments: a byte-level BPE tokenizer
with digits split one per token, a ChatML-like chat template that renders tools, tool calls and
tool results (assistant output inside ``{% generation %}`` markers, so TRL's assistant-only loss
works), and a Qwen2-architecture causal LM of about 168k parameters.

Example::

    >>> from rollcraft.tiny import save_tiny_model, save_tiny_tokenizer
    >>> tok_dir = save_tiny_tokenizer("build/tiny-tok")        # doctest: +SKIP
    >>> save_tiny_model("build/tiny-model", tokenizer_dir=tok_dir)  # doctest: +SKIP

Needs the ``rollcraft[train]`` extra (``tokenizers``, ``transformers``, ``torch``); the imports
happen inside the functions.
"""

from __future__ import annotations

import json
import os
import random
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

from rollcraft._errors import DependencyError

__all__ = [
    "BOS_TOKEN",
    "CHAT_TEMPLATE",
    "EOS_TOKEN",
    "PAD_TOKEN",
    "SPECIAL_TOKENS",
    "save_tiny_model",
    "save_tiny_tokenizer",
    "synthetic_corpus",
]

PAD_TOKEN = "<|endoftext|>"
BOS_TOKEN = "<|im_start|>"
EOS_TOKEN = "<|im_end|>"
SPECIAL_TOKENS = (PAD_TOKEN, BOS_TOKEN, EOS_TOKEN, "<tool_call>", "</tool_call>")

# ChatML-like and tool-capable. Everything the assistant emits, its <|im_end|> included, sits
# inside {% generation %} so TRL's assistant_only_loss trains it; the template is prefix
# preserving (a turn renders the same whatever follows), which TRL's DPO and multi-turn SFT need.
CHAT_TEMPLATE = (
    "{%- if tools %}"
    "{{- '<|im_start|>system\\n' }}"
    "{%- if messages and messages[0].role == 'system' %}{{- messages[0].content + '\\n\\n' }}{%- endif %}"
    "{{- '# Tools\\n' }}"
    "{%- for tool in tools %}{{- (tool | tojson) + '\\n' }}{%- endfor %}"
    "{{- '<|im_end|>\\n' }}"
    "{%- elif messages and messages[0].role == 'system' %}"
    "{{- '<|im_start|>system\\n' + messages[0].content + '<|im_end|>\\n' }}"
    "{%- endif %}"
    "{%- for message in messages %}"
    "{%- set content = message.content if message.content is string else '' %}"
    "{%- if message.role == 'system' and loop.first %}"
    "{%- elif message.role == 'assistant' %}"
    "{{- '<|im_start|>assistant\\n' }}"
    "{%- generation %}"
    "{%- if message.reasoning_content is string and message.reasoning_content %}"
    "{{- '<think>' + message.reasoning_content + '</think>\\n' }}"
    "{%- endif %}"
    "{{- content }}"
    "{%- if message.tool_calls %}"
    "{%- for call in message.tool_calls %}"
    "{%- set fn = call.function if call.function is defined and call.function else call %}"
    '{{- \'<tool_call>{"name": "\' + fn.name + \'", "arguments": \' }}'
    "{%- if fn.arguments is string %}{{- fn.arguments }}{%- else %}{{- fn.arguments | tojson }}{%- endif %}"
    "{{- '}</tool_call>' }}"
    "{%- endfor %}"
    "{%- endif %}"
    "{{- '<|im_end|>\\n' }}"
    "{%- endgeneration %}"
    "{%- else %}"
    "{{- '<|im_start|>' + message.role + '\\n' + content + '<|im_end|>\\n' }}"
    "{%- endif %}"
    "{%- endfor %}"
    "{%- if add_generation_prompt %}{{- '<|im_start|>assistant\\n' }}{%- endif %}"
)


def _require(module: str) -> Any:
    """Import ``module`` or raise a DependencyError naming the ``train`` extra."""
    import importlib

    try:
        return importlib.import_module(module)
    except ImportError as exc:
        raise DependencyError(
            f"{module} is not installed: pip install 'rollcraft[train]' (needed for tiny models and training)"
        ) from exc


def synthetic_corpus(n: int = 2000, *, seed: int = 0) -> Iterator[str]:
    """Yield ``n`` short synthetic chat texts (arithmetic, tool calls, JSON) to train a tokenizer on.

    >>> next(synthetic_corpus(1)).startswith("<|im_start|>")
    True
    """
    rng = random.Random(seed)
    words = "What is the sum of and plus minus times answer result Use tool call add question".split()
    for _ in range(n):
        a, b = rng.randint(0, 999), rng.randint(0, 999)
        phrase = " ".join(rng.choice(words) for _ in range(rng.randint(2, 8)))
        args = json.dumps({"a": a, "b": b})
        yield (
            f"<|im_start|>user\n{phrase} {a} + {b}?<|im_end|>\n<|im_start|>assistant\n"
            f'<tool_call>{{"name": "add", "arguments": {args}}}</tool_call><|im_end|>\n'
            f"<|im_start|>tool\n{a + b}<|im_end|>\n<|im_start|>assistant\nThe answer is {a + b}.<|im_end|>\n"
        )


def _train_bpe(corpus: Iterable[str], vocab_size: int) -> Any:
    """Train a byte-level BPE (digits one per token) on ``corpus``; returns a ``tokenizers.Tokenizer``."""
    tk = _require("tokenizers")
    tokenizer = tk.Tokenizer(tk.models.BPE())
    pre = tk.pre_tokenizers
    tokenizer.pre_tokenizer = pre.Sequence(
        [pre.Digits(individual_digits=True), pre.ByteLevel(add_prefix_space=False)]
    )
    tokenizer.decoder = tk.decoders.ByteLevel()
    trainer = tk.trainers.BpeTrainer(
        vocab_size=vocab_size,
        special_tokens=list(SPECIAL_TOKENS),
        initial_alphabet=tk.pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tokenizer.train_from_iterator(corpus, trainer=trainer)
    return tokenizer


def save_tiny_tokenizer(
    out_dir: str | os.PathLike[str],
    *,
    corpus: Iterable[str] | None = None,
    vocab_size: int = 512,
) -> Path:
    """Train a tiny byte-level BPE tokenizer with a tool-capable chat template and save it.

    ``corpus`` is an iterable of texts (default: :func:`synthetic_corpus`). The result loads with
    ``AutoTokenizer.from_pretrained(out_dir)``; pad is ``<|endoftext|>``, eos ``<|im_end|>``.
    Returns the folder.
    """
    transformers = _require("transformers")
    raw = _train_bpe(corpus if corpus is not None else synthetic_corpus(), vocab_size)
    tokenizer = transformers.PreTrainedTokenizerFast(
        tokenizer_object=raw,
        bos_token=BOS_TOKEN,
        eos_token=EOS_TOKEN,
        pad_token=PAD_TOKEN,
        model_max_length=2048,
        padding_side="left",
    )
    tokenizer.chat_template = CHAT_TEMPLATE
    path = Path(out_dir)
    path.mkdir(parents=True, exist_ok=True)
    tokenizer.save_pretrained(str(path))
    return path


def _tiny_config(tokenizer: Any, hidden_size: int, layers: int) -> Any:
    """A Qwen2 config sized for CPU: 4 heads, MLP 4x hidden, tied embeddings."""
    transformers = _require("transformers")
    return transformers.Qwen2Config(
        vocab_size=len(tokenizer),
        hidden_size=hidden_size,
        intermediate_size=4 * hidden_size,
        num_hidden_layers=layers,
        num_attention_heads=4,
        num_key_value_heads=4,
        max_position_embeddings=1024,
        tie_word_embeddings=True,
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
    )


def save_tiny_model(
    out_dir: str | os.PathLike[str],
    *,
    tokenizer_dir: str | os.PathLike[str],
    hidden_size: int = 64,
    layers: int = 2,
    seed: int = 0,
) -> Path:
    """Build a randomly initialised Qwen2-architecture causal LM and save it with its tokenizer.

    The defaults give about 168k parameters with the 512-token tiny tokenizer. The folder loads
    with ``AutoModelForCausalLM.from_pretrained(out_dir)`` and ``AutoTokenizer.from_pretrained``.
    """
    transformers = _require("transformers")
    torch = _require("torch")
    tokenizer = transformers.AutoTokenizer.from_pretrained(str(tokenizer_dir))
    torch.manual_seed(seed)
    model = transformers.AutoModelForCausalLM.from_config(_tiny_config(tokenizer, hidden_size, layers))
    model.generation_config.eos_token_id = tokenizer.eos_token_id
    model.generation_config.pad_token_id = tokenizer.pad_token_id
    path = Path(out_dir)
    path.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(str(path))
    tokenizer.save_pretrained(str(path))
    return path
