"""What a chat template does with the rows rollcraft writes: probed once, from tiny conversations.

:func:`probe_template` renders a few probe conversations with a tokenizer's chat template and
returns a :class:`TemplateProbe`: the :class:`RowShape` rows must have for the template to render
them faithfully, and what the template leaves out (or refuses) by design.

* **arguments**: ``"object"`` when the template fails on JSON-text arguments or prints them
  through ``tojson`` (double encoding: ``"arguments": "{\\"city\\": ...}"``); ``"string"`` when it
  prints a mapping as a Python dict, or renders both faithfully (the default rows' form).
* **empty_tools**: ``"none"`` when ``tools=[]`` renders differently from ``tools=None`` (the
  empty-tools boilerplate of Llama 3.1/3.2): rows without tools then carry ``null``.
* **reasoning**: the message key the template renders (``"reasoning_content"`` or
  ``"thinking"``), else ``"inline"`` (``<think>...</think>`` in the content).

Markers are ASCII words no template prints by itself, so a marker in the text is the probe's own.
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from rollcraft._errors import ConfigError, InputError

__all__ = [
    "DEFAULT_SHAPE",
    "RowShape",
    "TemplateProbe",
    "probe_template",
    "probe_tokenizer",
    "read_chat_template",
]

ArgumentsForm = Literal["string", "object"]
EmptyTools = Literal["list", "none"]
ReasoningKey = Literal["reasoning_content", "thinking", "inline"]


@dataclass(frozen=True, slots=True)
class RowShape:
    """How rows carry what a template reads: tool-call ``arguments`` (JSON ``string`` or ``object``),
    the tools of a row that has none (``list``: ``[]``; ``none``: ``null``), and the message key of
    reasoning (``reasoning_content``, ``thinking``, or ``inline`` as ``<think>...</think>``).

    The default is what rows have always been (``DEFAULT_SHAPE``).
    """

    arguments: ArgumentsForm = "string"
    empty_tools: EmptyTools = "list"
    reasoning: ReasoningKey = "reasoning_content"

    def to_dict(self) -> dict[str, str]:
        return {"arguments": self.arguments, "empty_tools": self.empty_tools, "reasoning": self.reasoning}


DEFAULT_SHAPE = RowShape()


@dataclass(frozen=True, slots=True)
class TemplateProbe:
    """A template's :class:`RowShape` and what it leaves out by design.

    ``drops``: what the template renders nowhere even in the shape it needs (``tool_calls``,
    ``extra_tool_calls`` (only a turn's first call), ``tool_results``, ``tool_definitions``,
    ``reasoning``). ``limits``: conversations it refuses (``one_call_per_turn``,
    ``content_with_reasoning_on_call``, ``no_tool_role``, ``no_tool_calls``, ``no_system_role``,
    ``needs_user_turn``), each a fact of the template, not of a row. ``template_sha256``: 16 hex
    digits of the template text.
    """

    shape: RowShape
    drops: tuple[str, ...] = ()
    limits: tuple[str, ...] = ()
    template_sha256: str = ""

    def to_dict(self) -> dict[str, Any]:
        return {
            **self.shape.to_dict(),
            "drops": list(self.drops),
            "limits": list(self.limits),
            "template_sha256": self.template_sha256,
        }


_TOOL = {
    "type": "function",
    "function": {
        "name": "zqprobefn",
        "description": "zqprobedesc",
        "parameters": {"type": "object", "properties": {"zqkey": {"type": "string"}}, "required": ["zqkey"]},
    },
}
_ARGS = {"zqkey": "zqvalue"}


def _call(arguments: Any, call_id: str = "call_zq1", name: str = "zqprobefn") -> dict[str, Any]:
    return {"id": call_id, "type": "function", "function": {"name": name, "arguments": arguments}}


def _tool_turns(arguments: Any, *, second: bool = False) -> list[dict[str, Any]]:
    calls = [_call(arguments)]
    if second:
        calls.append(_call(arguments, "call_zq2", "zqsecondfn"))
    results = [{"role": "tool", "tool_call_id": "call_zq1", "content": "zqresult"}]
    if second:
        results.append({"role": "tool", "tool_call_id": "call_zq2", "content": "zqresulttwo"})
    return [
        {"role": "user", "content": "zquser"},
        {"role": "assistant", "content": "", "tool_calls": calls},
        *results,
        {"role": "assistant", "content": "zqanswer"},
    ]


class _Renderer:
    def __init__(self, tokenizer: Any) -> None:
        self.tokenizer = tokenizer

    def __call__(self, messages: list[dict[str, Any]], tools: Any = None) -> str | None:
        """The rendered text, or None when the template raises."""
        try:
            text = self.tokenizer.apply_chat_template(messages, tools=tools, tokenize=False)
        except Exception:  # any template error: the probe's answer is "fails"
            return None
        return text if isinstance(text, str) else None


def probe_tokenizer(tokenizer: Any) -> TemplateProbe:
    """Probe ``tokenizer``'s chat template (its ``chat_template`` must be set)."""
    render = _Renderer(tokenizer)
    template = str(getattr(tokenizer, "chat_template", "") or "")
    drops: list[str] = []
    limits: list[str] = []
    arguments = _arguments_form(render, drops)
    obj: Any = _ARGS if arguments == "object" else json.dumps(_ARGS)
    _tool_facts(render, obj, drops, limits)
    reasoning = _reasoning_key(render, drops, limits, obj)
    _role_limits(render, limits)
    shape = RowShape(arguments, _empty_tools(render), reasoning)
    digest = hashlib.sha256(template.encode("utf-8")).hexdigest()[:16]
    return TemplateProbe(shape, tuple(drops), tuple(limits), digest)


def _faithful_args(text: str | None) -> bool:
    return text is not None and "zqvalue" in text and '\\"zqkey' not in text and "'zqkey'" not in text


def _arguments_form(render: _Renderer, drops: list[str]) -> ArgumentsForm:
    as_text = render(_tool_turns(json.dumps(_ARGS)), [_TOOL])
    as_map = render(_tool_turns(_ARGS), [_TOOL])
    if _faithful_args(as_text):
        return "string"
    if _faithful_args(as_map):
        return "object"
    shown = [t for t in (as_text, as_map) if t is not None]
    if shown and not any("zqprobefn" in t[t.find("zquser") :] for t in shown):
        drops.append("tool_calls")
    return "object" if as_map is not None else "string"


def _tool_facts(render: _Renderer, arguments: Any, drops: list[str], limits: list[str]) -> None:
    one = render(_tool_turns(arguments), [_TOOL])
    if one is None:
        turns = _tool_turns(arguments)
        no_call = [turns[0], {"role": "assistant", "content": "zqcall"}, *turns[2:]]
        limits.append("no_tool_role" if render(no_call) is None else "no_tool_calls")
        return
    if "zqresult" not in one:
        drops.append("tool_results")
    if "zqprobedesc" not in one and "zqprobefn" not in one[: max(one.find("zquser"), 0)]:
        drops.append("tool_definitions")
    two = render(_tool_turns(arguments, second=True), [_TOOL])
    if two is None:
        limits.append("one_call_per_turn")
    elif "tool_calls" not in drops and "zqsecondfn" not in two:
        drops.append("extra_tool_calls")


def _reasoning_key(render: _Renderer, drops: list[str], limits: list[str], arguments: Any) -> ReasoningKey:
    def final(message: dict[str, Any]) -> str | None:
        return render([{"role": "user", "content": "zquser"}, message])

    for key in ("reasoning_content", "thinking"):
        text = final({"role": "assistant", "content": "zqanswer", key: "zqthought"})
        if text is not None and "zqthought" in text:
            turns = _tool_turns(arguments)
            call_turn = {**turns[1], "content": "zqpre", key: "zqthought"}
            if render([turns[0], call_turn, *turns[2:]], [_TOOL]) is None:
                limits.append("content_with_reasoning_on_call")
            return key
    inline = final({"role": "assistant", "content": "<think>zqthought</think>zqanswer"})
    if inline is None or "zqthought" not in inline:
        drops.append("reasoning")
    return "inline"


def _empty_tools(render: _Renderer) -> EmptyTools:
    plain = [{"role": "user", "content": "zquser"}, {"role": "assistant", "content": "zqanswer"}]
    return "list" if render(plain, None) == render(plain, []) else "none"


def _role_limits(render: _Renderer, limits: list[str]) -> None:
    system = [
        {"role": "system", "content": "zqsystem"},
        {"role": "user", "content": "zquser"},
        {"role": "assistant", "content": "zqanswer"},
    ]
    if render(system) is None:
        limits.append("no_system_role")
    if render([{"role": "assistant", "content": "zqanswer"}]) is None:
        limits.append("needs_user_turn")


def read_chat_template(path: str | os.PathLike[str]) -> str:
    """The text of a Jinja chat template file; an unreadable file is one :class:`InputError`."""
    try:
        return Path(path).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise InputError(f"cannot read the chat template ({exc})", path=os.fspath(path)) from None


def probe_template(tokenizer: Any, chat_template: str | os.PathLike[str] | None = None) -> TemplateProbe:
    """Probe the chat template of ``tokenizer`` (a local tokenizer folder or a loaded tokenizer).

    ``chat_template``: a Jinja file that replaces the tokenizer's template (the tokenizer object
    passed in is left unchanged). Raises :class:`ConfigError` when there is no template.

    >>> probe_template("models/qwen3").shape.arguments          # doctest: +SKIP
    'object'
    """
    if isinstance(tokenizer, str | os.PathLike):
        from rollcraft._tokenizer import load_tokenizer

        where = os.fspath(tokenizer)
        tokenizer = load_tokenizer(where)
    else:
        where = type(tokenizer).__name__
    if chat_template is not None:
        import copy

        tokenizer = copy.copy(tokenizer)
        tokenizer.chat_template = read_chat_template(chat_template)
    if not getattr(tokenizer, "chat_template", None):
        raise ConfigError(
            f"{where}: the tokenizer has no chat template; pass --chat-template FILE", key="tokenizer"
        )
    return probe_tokenizer(tokenizer)
