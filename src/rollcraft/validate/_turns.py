"""Per-turn rows (``sft --expand turns``) and the template: would one row per trajectory have
dropped the reasoning of earlier turns?

Rows of one rollout follow each other in the file, turn after turn. For each row after the
first of its rollout, the previous row's completion is the turn just before: the conversation
up to this turn as ONE row is this row's prompt with that turn's reasoning put back. Rendered
with the tokenizer's own template (what the model sees at inference; for SFT ``train`` may
render with TRL's training variant, which can keep every turn's reasoning), and where the row's
own reasoning shows (a template that renders no reasoning at all is
``template_drops_reasoning``), the text either differs from the row's own rendering (the
template keeps earlier-turn reasoning) or is the same (a thinking template that drops it: a
whole-trajectory row would lose it, where the per-turn rows keep it as the reasoning of their
completion).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from rollcraft.train._data import prepare_tools, trainer_messages
from rollcraft.validate._template import _reasoning, _shown

if TYPE_CHECKING:
    from rollcraft.validate._render import _Renderer
    from rollcraft.validate._row import _Facts

Messages = list[dict[str, Any]]
_LISTED_ROWS = 50


@dataclass(slots=True)
class EarlierReasoning:
    """The rows where the template would (``dropped``) or would not (``kept``) have dropped the
    previous turn's reasoning in one row per trajectory."""

    dropped: list[int] = field(default_factory=list)
    kept: list[int] = field(default_factory=list)
    _previous: tuple[str, int, dict[str, Any]] | None = None

    def check(self, renderer: _Renderer, number: int, facts: _Facts) -> None:
        previous, self._previous = self._previous, None
        if facts.turn is None or facts.rollout_id is None or not facts.completion or not facts.renders:
            return
        self._previous = (facts.rollout_id, facts.turn, facts.completion[-1])
        if previous is None or previous[:2] != (facts.rollout_id, facts.turn - 1):
            return
        thought, own = _reasoning(previous[2]), _reasoning(facts.completion[-1])
        whole = _one_row(facts.renders[0][1], facts.prompt_messages, previous[2])
        if not thought or not own or whole is None:
            return
        tools = prepare_tools(facts.tools)
        try:
            text = renderer.inference_text(trainer_messages(whole), tools)
            row = renderer.inference_text(trainer_messages(facts.renders[0][1]), tools)
        except Exception:  # the template refuses the row: the row's own findings say so
            return
        if not _shown(own, text):  # no reasoning rendered at all: template_drops_reasoning says so
            return
        (self.kept if text != row else self.dropped).append(number)

    def to_dict(self, template: str) -> dict[str, Any] | None:
        checked = len(self.dropped) + len(self.kept)
        if not checked:
            return None
        return {
            "template": template,
            "checked": checked,
            "dropped": len(self.dropped),
            "dropped_rows": self.dropped[:_LISTED_ROWS],
        }


def _one_row(full: Messages, prompt_count: int, earlier: dict[str, Any]) -> Messages | None:
    """This row's prompt+completion with the previous turn (the prompt's last assistant message)
    carrying its reasoning again, as one row per trajectory would have it."""
    prompt = list(full[:prompt_count])
    at = next((i for i in range(len(prompt) - 1, -1, -1) if prompt[i].get("role") == "assistant"), None)
    if at is None:
        return None
    thought = earlier.get("reasoning_content") or earlier.get("thinking")
    prompt[at] = {**prompt[at], "reasoning_content": thought}
    return prompt + list(full[prompt_count:])


def turns_line(turns: dict[str, Any]) -> str:
    """The summary line of the check."""
    name, dropped, checked = turns["template"], turns["dropped"], turns["checked"]
    if not dropped:
        return (
            f"template {name} keeps earlier-turn reasoning ({checked} later turns checked): "
            "one row per trajectory would train on it too"
        )
    return (
        f"template {name} drops earlier-turn reasoning in {dropped} of {checked} later turns: "
        "per-turn rows keep it where it is rendered"
    )
