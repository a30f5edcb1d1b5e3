"""Training-data formats: SFT rows and DPO pairs in the TRL, OpenAI and NeMo-RL dialects, KTO rows.

A format of one row per rollout is a :class:`RowFormat` (``sft``: :class:`SftFormat`, ``kto``:
:class:`KtoFormat`); DPO pairs rollouts of a task (:mod:`rollcraft.formats.dpo`)."""

from __future__ import annotations

from rollcraft.formats._dialects import (
    DIALECTS,
    ArgumentsMode,
    Dialect,
    encode_messages,
    encode_tools,
    strip_call_ids,
)
from rollcraft.formats._rows import RowFormat
from rollcraft.formats._templates import (
    DEFAULT_SHAPE,
    RowShape,
    TemplateProbe,
    probe_template,
    probe_tokenizer,
    read_chat_template,
)
from rollcraft.formats.dpo import DpoOptions, DpoReport, build_pair, dpo_rows, plan_pairs
from rollcraft.formats.kto import KtoFormat, kto_weights
from rollcraft.formats.sft import SFT_SKIP_REASONS, SftFormat, SftReport, sft_row, sft_rows, sft_skip_reason

__all__ = [
    "DEFAULT_SHAPE",
    "DIALECTS",
    "SFT_SKIP_REASONS",
    "ArgumentsMode",
    "Dialect",
    "DpoOptions",
    "DpoReport",
    "KtoFormat",
    "RowFormat",
    "RowShape",
    "SftFormat",
    "SftReport",
    "TemplateProbe",
    "build_pair",
    "dpo_rows",
    "encode_messages",
    "encode_tools",
    "kto_weights",
    "plan_pairs",
    "probe_template",
    "probe_tokenizer",
    "read_chat_template",
    "sft_row",
    "sft_rows",
    "sft_skip_reason",
    "strip_call_ids",
]
