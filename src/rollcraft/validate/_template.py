"""What a chat template does to one row: the findings of ``validate --tokenizer`` beyond lengths.

* ``template_limit``: the template refuses the row for a reason that is the template's own
  (:attr:`rollcraft.formats.TemplateProbe.limits`: one tool call per turn, no tool or system
  role, no tool calls, a user message required, content and reasoning together on a tool-call
  turn), with the template's message.
* ``double_encoded_arguments``: JSON-text arguments printed through ``tojson``.
* ``template_drops_calls`` / ``_results`` / ``_tools`` / ``_reasoning``: what the rendered text
  leaves out (the probe's ``drops``, and tool results or reasoning not found in the text).
* ``answer_not_rendered``: the final answer is not in the text.
* ``empty_tools_boilerplate``: ``tools`` is ``[]`` and the template renders tool instructions
  for an empty list (``train`` passes none; trainers that pass ``[]`` render them).
* ``prompt_not_prefix`` (DPO, KTO, prompt-completion SFT): the prompt rendered alone is not a
  prefix of prompt+completion.
* ``no_assistant_mask`` / ``answer_mask_partial`` (SFT on templates with ``{% generation %}``):
  TRL's assistant mask is empty (TRL stops) or covers little of the final answer.

A text is "in" the rendering when a distinctive run of letters and digits from it is.
"""

from __future__ import annotations

import json
import re
from typing import TYPE_CHECKING, Any

from rollcraft.formats._templates import TemplateProbe
from rollcraft.train._data import prepare_tools, trainer_messages

if TYPE_CHECKING:
    from rollcraft.validate._render import _Renderer
    from rollcraft.validate._row import _Row

__all__ = ["limit_finding", "row_findings"]

Messages = list[dict[str, Any]]

_RUN = re.compile(r"[A-Za-z0-9][A-Za-z0-9 ]{5,}[A-Za-z0-9]")
_THINK = re.compile(r"<think>(.*?)</think>", re.DOTALL)
_MASK_COVERAGE = 0.8


def _needle(text: Any) -> str | None:
    """A run of letters, digits and spaces from the start of ``text`` (the longest of the first few)."""
    if not isinstance(text, str):
        return None
    runs = _RUN.findall(text[:400])
    if not runs:
        return None
    longest: str = max(runs[:8], key=len)
    return longest[:40].strip()


def _shown(text: Any, rendered: str) -> bool:
    needle = _needle(text)
    if needle is None:  # no run of letters and digits: the text itself, if short enough to be exact
        needle = text.strip()[:40] if isinstance(text, str) else ""
    # a template may print the text through tojson (Llama 3.1 does for tool results)
    return not needle or needle in rendered or json.dumps(needle)[1:-1] in rendered


def _calls(messages: Messages) -> list[dict[str, Any]]:
    return [c for m in messages if m.get("role") == "assistant" for c in m.get("tool_calls") or []]


def _most_calls(messages: Messages) -> int:
    return max((len(m.get("tool_calls") or []) for m in messages), default=0)


def limit_finding(probe: TemplateProbe, messages: Messages, exc: Exception) -> tuple[str, str]:
    """The finding of a row the template fails on: a named limit of the template, or its error."""
    said = f"{type(exc).__name__}: {str(exc)[:200]}"
    limits = set(probe.limits)
    roles = {m.get("role") for m in messages}
    if "one_call_per_turn" in limits and _most_calls(messages) > 1:
        most = _most_calls(messages)
        why = f"the template renders one tool call per turn (Llama 3.x); a turn here has {most}"
    elif "no_tool_role" in limits and "tool" in roles:
        why = "the template has no tool role; this row has tool results"
    elif "no_tool_calls" in limits and _most_calls(messages):
        why = "the template refuses tool calls; this row has some"
    elif "no_system_role" in limits and "system" in roles:
        why = "the template has no system role; this row has a system message"
    elif "needs_user_turn" in limits and "user" not in roles:
        why = "the template needs a user message; this row has none"
    elif "content_with_reasoning_on_call" in limits and any(
        m.get("tool_calls") and m.get("content") and (m.get("reasoning_content") or m.get("thinking"))
        for m in messages
    ):
        why = "the template refuses content and reasoning together on a tool-call turn (gpt-oss)"
    else:
        return "template_error", f"the chat template fails: {said}"
    return "template_limit", f"{why} ({said})"


def row_findings(
    renderer: _Renderer,
    row: _Row,
    messages: Messages,
    tools: list[dict[str, Any]],
    text: str,
    tokens: tuple[list[int], int],
    *,
    empty_tools: bool = False,
) -> None:
    """Add the findings of what the template did to ``messages`` (rendered as ``text``)."""
    probe = renderer.probe
    _double_encoding(renderer, row, messages, tools, text)
    _dropped_calls(probe, row, messages)
    _dropped_texts(probe, row, messages, tools, text)
    if empty_tools and probe.shape.empty_tools == "none":
        row.add(
            "empty_tools_boilerplate",
            "tools is [] and this template renders tool instructions for an empty list "
            "(rollcraft train passes none; write the rows with --tokenizer to carry null)",
        )
    start_ids, start = tokens
    if start_ids and start < len(start_ids):
        tail = renderer.tokenizer.decode(start_ids[start:])[:80]
        row.add(
            "prompt_not_prefix",
            f"the prompt rendered alone is not a prefix of prompt+completion (from token {start}: "
            f"{tail!r}); TRL trains on a context the model does not see at inference",
        )
    if renderer.masks and row.kind == "sft":
        _mask_check(renderer, row, messages, tools, text)


def _doubled(messages: Messages, text: str) -> int:
    doubled = 0
    for call in _calls(messages):
        args = (call.get("function") or {}).get("arguments")
        if (
            isinstance(args, str)
            and args
            and (json.dumps(args) in text or json.dumps(args, ensure_ascii=False) in text)
        ):
            doubled += 1
    return doubled


def _double_encoding(
    renderer: _Renderer, row: _Row, messages: Messages, tools: list[dict[str, Any]], text: str
) -> None:
    """Arguments printed as a quoted JSON string: in what train renders, or (for a template that
    needs mappings) in the row as written, rendered as it is by a trainer that does not parse it."""
    if renderer.probe.shape.arguments == "string":
        doubled, how = _doubled(messages, text), "as rendered for training"
    elif any(isinstance((c.get("function") or {}).get("arguments"), str) for c in _calls(messages)):
        try:
            written = str(renderer.as_written(messages, tools=tools or None, tokenize=False))
        except Exception:  # the row as written fails on this template: train's preparation renders it
            return
        how = "as written, by a trainer that renders rows as they are (rollcraft train parses them)"
        doubled = _doubled(messages, written)
    else:
        return
    if doubled:
        row.add(
            "double_encoded_arguments",
            f"{doubled} tool call(s) print their JSON-text arguments as a quoted string {how}; "
            "write the rows with --tokenizer for this template",
        )


def _dropped_calls(probe: TemplateProbe, row: _Row, messages: Messages) -> None:
    calls = _calls(messages)
    if not calls:
        return
    if "tool_calls" in probe.drops:
        row.add("template_drops_calls", f"the template renders no tool calls: {len(calls)} call(s) left out")
    elif "extra_tool_calls" in probe.drops and _most_calls(messages) > 1:
        extra = sum(max(len(m.get("tool_calls") or []) - 1, 0) for m in messages)
        row.add(
            "template_drops_calls",
            f"the template renders only the first tool call of a turn: {extra} call(s) left out",
        )


def _dropped_texts(
    probe: TemplateProbe, row: _Row, messages: Messages, tools: list[dict[str, Any]], text: str
) -> None:
    results = [m for m in messages if m.get("role") == "tool"]
    by_design = "tool_results" in probe.drops
    lost = len(results) if by_design else sum(not _shown(m.get("content"), text) for m in results)
    if lost:
        row.add("template_drops_results", f"{lost} of {len(results)} tool result(s) are not in the rendering")
    names = [(t.get("function") or {}).get("name") for t in tools]
    missing = [
        n for n in names if isinstance(n, str) and ("tool_definitions" in probe.drops or n not in text)
    ]
    if missing:
        row.add(
            "template_drops_tools",
            f"{len(missing)} of {len(names)} tool definition(s) are not in the rendering ({missing[0]}, ...)",
        )
    thoughts = [_reasoning(m) for m in messages if m.get("role") == "assistant"]
    thoughts = [t for t in thoughts if t]
    lost = sum(not _shown(t, text) for t in thoughts)
    if lost:
        row.add(
            "template_drops_reasoning",
            f"{lost} of {len(thoughts)} assistant turn(s) lose their reasoning in the rendering",
        )
    answer = _final_answer(messages)
    if answer is not None and not _shown(answer, text):
        row.add("answer_not_rendered", "the final assistant answer is not in the rendering")


def _final_answer(messages: Messages) -> str | None:
    """The text of the row's final answer (the last message, an assistant's) without its
    reasoning (inline, up to the last ``</think>``); None when the row does not end with one."""
    if not messages or messages[-1].get("role") != "assistant":
        return None
    return str(messages[-1].get("content") or "").split("</think>")[-1]


def _reasoning(message: dict[str, Any]) -> str | None:
    for key in ("reasoning_content", "thinking"):
        value = message.get(key)
        if isinstance(value, str) and value.strip():
            return value
    inline = _THINK.search(str(message.get("content") or ""))
    return inline.group(1) if inline and inline.group(1).strip() else None


def _answer_span(renderer: _Renderer, messages: Messages, text: str) -> tuple[int, int] | None:
    """The token span of the final answer's text in ``text`` (None when it is not found as is)."""
    answer = (_final_answer(messages) or "").strip()
    where = text.rfind(answer) if answer else -1
    if where < 0:
        return None
    return len(renderer.ids(text[:where])), len(renderer.ids(text[: where + len(answer)]))


def _mask_check(
    renderer: _Renderer, row: _Row, messages: Messages, tools: list[dict[str, Any]], text: str
) -> None:
    try:
        mask = renderer.assistant_mask(trainer_messages(messages), prepare_tools(tools))
    except Exception as exc:  # a tokenizer without offsets (slow) cannot make masks
        row.add(
            "no_assistant_mask", f"the assistant mask cannot be made: {type(exc).__name__}: {str(exc)[:120]}"
        )
        return
    if 1 not in mask:
        row.add(
            "no_assistant_mask", "no token is marked as the assistant's: TRL stops with assistant_only_loss"
        )
        return
    span = _answer_span(renderer, messages, text)
    if span is None or span[1] <= span[0]:
        return
    answer = mask[span[0] : span[1]]
    coverage = sum(answer) / len(answer)
    if coverage < _MASK_COVERAGE:
        row.add(
            "answer_mask_partial",
            f"the assistant mask covers {coverage:.0%} of the final answer's {len(answer)} tokens",
        )
