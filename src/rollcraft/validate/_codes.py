"""Finding codes and their severities, one finding, and the collector that dedupes, caps and counts them."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from typing import Any, Literal

Severity = Literal["error", "warning"]
Kind = Literal["sft", "dpo", "kto"]
KINDS: tuple[str, ...] = ("sft", "dpo", "kto")

#: Every finding code: its severity and what it means. Codes never change meaning.
CODES: dict[str, tuple[Severity, str]] = {
    "empty_file": ("error", "the file has no rows"),
    "not_json": ("error", "the line is not valid JSON"),
    "not_object": ("error", "the line is JSON but not an object"),
    "missing_key": ("error", "a required key is missing"),
    "wrong_type": ("error", "a value has the wrong type"),
    "empty_messages": ("error", "an SFT conversation has no messages"),
    "unknown_role": ("error", "a message role outside system/user/assistant/tool (and developer)"),
    "invalid_tool": ("error", "a tool definition is not {type: function, function: {name, ...}}"),
    "invalid_arguments": ("error", "tool-call arguments are not a JSON object (or not valid JSON)"),
    "duplicate_tool_call_id": ("error", "two tool calls of one conversation share an id"),
    "orphan_tool_result": ("error", "a tool message answers no earlier, still open tool call"),
    "unanswered_tool_call": (
        "error",
        "a tool call whose result never comes before the conversation moves on",
    ),
    "last_not_assistant": (
        "error",
        "the conversation (SFT) or completion (DPO, KTO, prompt-completion SFT) does not end with "
        "the assistant",
    ),
    "empty_completion": ("error", "chosen, rejected or a completion is empty"),
    "invalid_label": ("error", "a KTO label is not true or false"),
    "prompt_required": (
        "error",
        "a KTO or prompt-completion SFT row has an empty prompt, which TRL's trainers fail on",
    ),
    "identical_pair": ("error", "chosen and rejected are identical (tool-call ids set aside)"),
    "non_positive_margin": ("error", "the pair's margin (quality_difference or reward gap) is <= 0"),
    "multi_message_completion": ("error", "a completion of several messages where the dialect trains one"),
    "bad_completions": ("error", "nemo-rl completions are not exactly two with ranks 0 and 1"),
    "roundtrip_changed": ("error", "datasets.load_dataset('json') changes the row"),
    "roundtrip_failed": ("error", "datasets.load_dataset('json') cannot load the file"),
    "template_error": ("error", "the chat template fails to render the row"),
    "answer_truncated": ("error", "the final assistant turn would be cut by truncation at max_seq_len"),
    "template_limit": ("error", "the chat template refuses the row by design (e.g. one tool call per turn)"),
    "answer_not_rendered": ("error", "the final assistant answer is not in the rendered text"),
    "no_assistant_mask": ("error", "no token of the row is in the template's assistant mask"),
    "double_encoded_arguments": (
        "warning",
        "the template prints JSON-text tool-call arguments as a quoted string",
    ),
    "template_drops_calls": ("warning", "the chat template leaves tool calls of the row out"),
    "template_drops_results": ("warning", "the chat template leaves tool results of the row out"),
    "template_drops_tools": ("warning", "the chat template leaves the row's tool definitions out"),
    "template_drops_reasoning": ("warning", "the chat template leaves reasoning of the row out"),
    "empty_tools_boilerplate": ("warning", "tools is [] and the template renders tool instructions for it"),
    "prompt_not_prefix": ("warning", "a prompt rendered alone is not a prefix of prompt+completion"),
    "answer_mask_partial": ("warning", "the assistant mask covers little of the final answer"),
    "roundtrip_rounded_float": (
        "warning",
        "datasets.load_dataset('json') rounds a long float inside an object to 10 decimals",
    ),
    "roundtrip_unavailable": ("warning", "the datasets round trip was skipped: datasets is not installed"),
    "blank_line": ("warning", "an empty line"),
    "empty_prompt": ("warning", "a DPO pair has an empty prompt: it trains answers without their question"),
    "single_label": ("warning", "a KTO file holds only one label: KTO learns from desirable and undesirable"),
    "reasoning_in_prompt": (
        "warning",
        "an earlier assistant turn of a prompt keeps its reasoning, which thinking templates do not show",
    ),
    "developer_role": ("warning", "a developer message: most chat templates do not know the role"),
    "unexpected_key": ("warning", "a key the dialect does not define (the OpenAI API may reject it)"),
    "unknown_tool": ("warning", "a tool call names a tool the row does not declare"),
    "final_tool_call": ("warning", "an SFT conversation ends in a tool call that is never answered"),
    "near_empty_answer": ("warning", "an assistant answer without tool calls has no letters or digits"),
    "duplicate_row": ("warning", "the row repeats an earlier row (tool-call ids set aside)"),
    "extreme_length": ("warning", "the row is far longer or shorter than the file's median"),
    "dominant_task_type": ("warning", "one task type holds most of the data"),
    "reward_out_of_range": ("warning", "a reward outside [0, 1]"),
}


@dataclass(frozen=True, slots=True)
class Finding:
    """One validation result: a stable ``code``, its ``severity``, a ``message`` and the 1-based ``row``.

    >>> Finding("not_json", "error", "line 3 is not JSON", 3).to_dict()["severity"]
    'error'
    """

    code: str
    severity: Severity
    message: str
    row: int | None

    def to_dict(self) -> dict[str, Any]:
        """The JSON form: ``{"code", "severity", "row", "message"}``."""
        return {"code": self.code, "severity": self.severity, "row": self.row, "message": self.message}


class _Findings:
    """Findings of a whole file: deduplicated per row, capped per code, counted in full."""

    def __init__(self, max_per_code: int) -> None:
        self.items: list[Finding] = []
        self.counts: Counter[str] = Counter()
        self.max_per_code = max_per_code
        self._seen: set[tuple[str, str, int | None]] = set()

    def add(self, code: str, message: str, row: int | None) -> None:
        key = (code, message, row)
        if key in self._seen:
            return
        self._seen.add(key)
        self.counts[code] += 1
        if self.counts[code] <= self.max_per_code:
            self.items.append(Finding(code, CODES[code][0], message, row))

    def rows_with_findings(self) -> set[int]:
        return {f.row for f in self.items if f.row is not None}
