"""The model behind the server: a local Hugging Face causal LM, its tokenizer and chat template.

:func:`load_engine` checks the folder and loads it (a GPU when there is one, else the CPU);
:meth:`Engine.render` writes a prompt with the chat template; :meth:`Engine.generate` samples one
completion, :meth:`Engine.generate_batch` several at once (left padding). Generations run one
batch at a time (a lock); a seeded request is generated alone, so it gives the same text whatever
else is being served. torch and transformers are imported inside the functions.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from rollcraft._errors import DependencyError, InputError
from rollcraft._records import Message, Tool
from rollcraft.serve._request import RequestError, Sampling

__all__ = ["DEFAULT_MAX_TOKENS", "Engine", "Generation", "load_engine"]

#: Tokens generated when a request names no limit (always capped by the room left in the context).
DEFAULT_MAX_TOKENS = 1024
_FALLBACK_CONTEXT = 4096


@dataclass(frozen=True, slots=True)
class Generation:
    """One completion: its text (without the end-of-turn token) and token counts; ``finish_reason``
    is ``stop`` when the model ended its turn, ``length`` when the token limit cut it."""

    text: str
    prompt_tokens: int
    completion_tokens: int
    finish_reason: Literal["stop", "length"]


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip() or type(exc).__name__
    return text.splitlines()[0]


def _check_folder(path: Path) -> None:
    if not path.exists():
        raise InputError("no such model folder", path=str(path))
    if not path.is_dir():
        raise InputError(
            "not a folder: rollcraft serve takes a Hugging Face model folder (config.json, weights)",
            path=str(path),
        )
    if not (path / "config.json").is_file():
        if (path / "adapter_config.json").is_file():
            raise InputError(
                "a LoRA adapter, not a model: merge it into its base model first", path=str(path)
            )
        raise InputError("not a Hugging Face model folder (no config.json)", path=str(path))


def load_engine(model_dir: str | Path, *, device: str | None = None) -> Engine:
    """Load the model folder ``model_dir``; an :class:`~rollcraft.InputError` (one line) when it is
    not a causal LM with a tokenizer that has a chat template."""
    path = Path(model_dir)
    _check_folder(path)
    try:
        import torch
        import transformers
    except ImportError as exc:
        raise DependencyError(f"rollcraft serve needs {exc.name}: pip install 'rollcraft[serve]'") from None
    try:
        tokenizer = transformers.AutoTokenizer.from_pretrained(str(path))
    except Exception as exc:
        raise InputError(f"the tokenizer does not load: {_first_line(exc)}", path=str(path)) from None
    if not getattr(tokenizer, "chat_template", None):
        raise InputError(
            "the tokenizer has no chat template (an instruction-tuned model has one)", path=str(path)
        )
    try:
        model: Any = transformers.AutoModelForCausalLM.from_pretrained(str(path))
    except Exception as exc:
        raise InputError(
            f"the model does not load as a causal LM: {_first_line(exc)}", path=str(path)
        ) from None
    device = device or ("cuda" if torch.cuda.is_available() else "cpu")
    model.to(device)
    model.eval()
    return Engine(model, tokenizer, device=device)


class Engine:
    """A loaded model and tokenizer; thread-safe (one generation at a time)."""

    def __init__(self, model: Any, tokenizer: Any, *, device: str) -> None:
        self.model = model
        self.tokenizer = tokenizer
        self.device = device
        self.context = _context_length(model, tokenizer)
        self._stop_ids = _stop_ids(model, tokenizer)
        self._lock = threading.Lock()

    def render(self, messages: list[Message], tools: list[Tool]) -> str:
        """The prompt text: ``messages`` and ``tools`` through the chat template, with the
        assistant's generation prompt."""
        try:
            text = self.tokenizer.apply_chat_template(
                messages, tools=tools or None, tokenize=False, add_generation_prompt=True
            )
        except Exception as exc:  # jinja2 errors, and templates that raise on what they refuse
            raise RequestError(f"the chat template refused the messages: {_first_line(exc)}") from None
        return str(text)

    def generate(self, prompt: str, sampling: Sampling) -> Generation:
        """One completion of ``prompt`` (tokens up to the model's end-of-turn, or the limit)."""
        return self.generate_batch([prompt], [sampling])[0]

    def limit(self, n_prompt: int, sampling: Sampling) -> int:
        """The tokens a request may generate: its limit (else the default), capped by the room
        left in the context; a :class:`RequestError` when there is none."""
        room = self.context - n_prompt
        if room <= 0:
            raise RequestError(
                f"the prompt is {n_prompt} tokens and the model's context length is {self.context} tokens"
            )
        return min(sampling.max_tokens or DEFAULT_MAX_TOKENS, room)

    def encode(self, prompt: str) -> list[int]:
        """The prompt's token ids (the chat template wrote its special tokens)."""
        return list(self.tokenizer(prompt, add_special_tokens=False)["input_ids"])

    def generate_batch(self, prompts: list[str], samplings: list[Sampling]) -> list[Generation]:
        """Completions of ``prompts`` in one batch (left padding). The samplings must share
        temperature and top_p; a seed is honoured for a batch of one (the generator is reseeded)."""
        import torch

        rows = [self.encode(prompt) for prompt in prompts]
        limits = [self.limit(len(ids), sampling) for ids, sampling in zip(rows, samplings, strict=True)]
        width = max(len(ids) for ids in rows)
        if len(rows) > 1 and width + max(limits) > self.context:  # a batch must fit the context
            return [self.generate_batch([p], [s])[0] for p, s in zip(prompts, samplings, strict=True)]
        pad = self.tokenizer.pad_token_id
        pad = pad if isinstance(pad, int) else self._stop_ids[0] if self._stop_ids else 0
        ids = torch.tensor([[pad] * (width - len(r)) + r for r in rows])
        mask = torch.tensor([[0] * (width - len(r)) + [1] * len(r) for r in rows])
        first = samplings[0]
        options: dict[str, Any] = {"do_sample": False}
        if first.temperature > 0:
            options = {"do_sample": True, "temperature": first.temperature, "top_p": first.top_p, "top_k": 0}
        with self._lock, torch.no_grad():
            if len(rows) == 1 and first.seed is not None:
                torch.manual_seed(first.seed)
            out = self.model.generate(
                input_ids=ids.to(self.device),
                attention_mask=mask.to(self.device),
                max_new_tokens=max(limits),
                eos_token_id=self._stop_ids or None,
                pad_token_id=pad,
                **options,
            )
        new = out[:, width:].tolist()
        return [self._generation(new[i][: limits[i]], len(rows[i])) for i in range(len(rows))]

    def _generation(self, new: list[int], n_prompt: int) -> Generation:
        stop = next((i for i, token in enumerate(new) if token in self._stop_ids), None)
        kept = new if stop is None else new[:stop]
        text = self.tokenizer.decode(kept, skip_special_tokens=False)
        pad = self.tokenizer.pad_token
        if pad and pad not in (self.tokenizer.eos_token,):
            text = text.replace(pad, "")
        count = len(new) if stop is None else stop + 1
        return Generation(text, n_prompt, count, "length" if stop is None else "stop")


def _context_length(model: Any, tokenizer: Any) -> int:
    """The longest sequence the model takes: its position embeddings, else the tokenizer's limit."""
    for value in (getattr(model.config, "max_position_embeddings", None), tokenizer.model_max_length):
        if isinstance(value, int) and 0 < value < 10**7:
            return value
    return _FALLBACK_CONTEXT


def _stop_ids(model: Any, tokenizer: Any) -> list[int]:
    """The tokens that end a turn: the generation config's end tokens and the tokenizer's."""
    ids: set[int] = set()
    for value in (getattr(model.generation_config, "eos_token_id", None), tokenizer.eos_token_id):
        if isinstance(value, int):
            ids.add(value)
        elif isinstance(value, (list, tuple)):
            ids.update(v for v in value if isinstance(v, int))
    return sorted(ids)
