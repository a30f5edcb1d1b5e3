"""The matrix: real rows (the shared NeMo Gym rollouts) written with each real TRL-bundled chat
template's probed shape render on that template, as written (TRL's trainers read the file as it
is) and as ``train`` prepares them, with nothing double-encoded and the final answer in the text;
a row that does not render hits a limit the template has by design, named as such.

A sample of the rows keeps it fast: every rollout with a tool call at stride 2, every tenth of
the rest, and the DPO pairs of the real files.
"""

from __future__ import annotations

import copy
import json
import re
from functools import cache
from pathlib import Path
from typing import Any

import pytest

from rollcraft import Rollout, read_rollouts
from rollcraft.formats import (
    DpoOptions,
    RowShape,
    TemplateProbe,
    dpo_rows,
    probe_tokenizer,
    sft_row,
    sft_skip_reason,
)
from rollcraft.train._data import template_ready, trainer_messages
from tests.conftest import REAL_DIR

trl = pytest.importorskip("trl")

TEMPLATES = Path(trl.__file__).parent / "chat_templates"
#: Image-text templates (their content is a list of parts) are outside the matrix.
_IMAGE = re.compile(r"vl|llava|idefics|smolvlm|diffusion|muse")
MATRIX = sorted(p.stem for p in TEMPLATES.glob("*.jinja") if not _IMAGE.search(p.stem))
Row = dict[str, Any]


@cache
def tokenizer(root: str) -> Any:
    from transformers import AutoTokenizer

    from rollcraft.tiny import save_tiny_tokenizer, synthetic_corpus

    folder = Path(root) / "matrix-tok"
    if not (folder / "tokenizer_config.json").exists():
        save_tiny_tokenizer(folder, corpus=synthetic_corpus(200), vocab_size=300)
    return AutoTokenizer.from_pretrained(str(folder))


@cache
def sample() -> tuple[Rollout, ...]:
    rollouts = [
        r for r in read_rollouts([str(REAL_DIR)]) if isinstance(r, Rollout) and sft_skip_reason(r) is None
    ]
    called = [r for r in rollouts if any(m.get("tool_calls") for m in r.conversation.messages)]
    plain = [r for r in rollouts if r not in called]
    return (*called[::2], *plain[::10])


@cache
def real_rollouts() -> tuple[Rollout, ...]:
    return tuple(r for r in read_rollouts([str(REAL_DIR)]) if isinstance(r, Rollout))


def rows_for(shape: RowShape | None) -> list[list[Row]]:
    """Each sample row's message lists as a trainer renders them: SFT ``messages``; DPO
    prompt+chosen and prompt+rejected. JSON round trip (the file), tools as TRL reads them."""
    out = []
    for rollout in sample():
        row = json.loads(json.dumps(sft_row(rollout, "trl", shape=shape)))
        out.append([row["messages"], _tools(row["tools"])])
    options = DpoOptions(shape=shape)
    for line in dpo_rows(copy.deepcopy(list(real_rollouts())), options):
        pair = json.loads(line)
        for side in ("chosen", "rejected"):
            out.append([pair["prompt"] + pair[side], _tools(pair["tools"])])
    return out


def _tools(value: Any) -> Any:
    return json.loads(value) if isinstance(value, str) else value


def _renders(tok: Any, messages: list[Row], tools: Any) -> str | Exception:
    try:
        return str(tok.apply_chat_template(messages, tools=tools, tokenize=False))
    except Exception as exc:  # the template's refusal
        return exc


def _doubled(messages: list[Row], text: str) -> bool:
    for message in messages:
        for call in message.get("tool_calls") or []:
            args = call["function"]["arguments"]
            if isinstance(args, str) and (
                json.dumps(args) in text or json.dumps(args, ensure_ascii=False) in text
            ):
                return True
    return False


def _answer(messages: list[Row]) -> str:
    return str(messages[-1]["content"]).split("</think>")[-1].strip()[:30]


@pytest.mark.parametrize("template", MATRIX)
def test_every_expressible_row_renders_faithfully(
    template: str, tmp_path_factory: pytest.TempPathFactory
) -> None:
    from rollcraft.validate._template import limit_finding

    tok = copy.copy(tokenizer(str(tmp_path_factory.getbasetemp())))
    tok.chat_template = (TEMPLATES / f"{template}.jinja").read_text(encoding="utf-8")
    probe: TemplateProbe = probe_tokenizer(tok)
    train_tok = template_ready(copy.copy(tok), probe.shape)
    rendered = refused = 0
    for messages, tools in rows_for(probe.shape):
        as_written = _renders(tok, messages, tools)
        for_training = _renders(train_tok, trainer_messages(messages), tools)
        if isinstance(as_written, Exception) or isinstance(for_training, Exception):
            exc = as_written if isinstance(as_written, Exception) else for_training
            code, message = limit_finding(probe, messages, exc)
            assert code == "template_limit", f"{template}: {message}"
            refused += 1
            continue
        assert as_written == for_training, f"{template}: train renders a written row differently"
        assert not _doubled(messages, as_written), f"{template}: double-encoded arguments"
        assert _answer(messages) in as_written, f"{template}: the final answer is lost"
        rendered += 1
    assert rendered, (template, refused)


def test_without_the_shape_rows_fail_or_double_encode(tmp_path_factory: pytest.TempPathFactory) -> None:
    """The matrix's claim needs the shape: today's rows fail on Nemotron 3 and double-encode on Qwen 2.5."""
    tok = copy.copy(tokenizer(str(tmp_path_factory.getbasetemp())))
    plain = rows_for(None)
    with_calls = [(m, t) for m, t in plain if any(x.get("tool_calls") for x in m)]
    tok.chat_template = (TEMPLATES / "nemotron_3_nano.jinja").read_text(encoding="utf-8")
    assert all(isinstance(_renders(tok, m, t), Exception) for m, t in with_calls)
    tok.chat_template = (TEMPLATES / "qwen2_5.jinja").read_text(encoding="utf-8")
    assert all(_doubled(m, str(_renders(tok, m, t))) for m, t in with_calls)


@pytest.mark.parametrize("template", ["llama3_1", "gptoss", "qwen3_6", "gemma3"])
def test_validate_agrees_with_the_rendering(
    template: str, tmp_path: Path, tmp_path_factory: pytest.TempPathFactory
) -> None:
    """validate --tokenizer fails exactly the rows train cannot render, with a named limit."""
    from rollcraft.validate import validate_file

    root = str(tmp_path_factory.getbasetemp())
    tok = copy.copy(tokenizer(root))
    chat = TEMPLATES / f"{template}.jinja"
    tok.chat_template = chat.read_text(encoding="utf-8")
    probe = probe_tokenizer(tok)
    rows = [json.loads(json.dumps(sft_row(r, "trl", shape=probe.shape))) for r in sample()]
    data = tmp_path / "sft.jsonl"
    data.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    train_tok = template_ready(copy.copy(tok), probe.shape)
    failing = {
        i + 1
        for i, row in enumerate(rows)
        if isinstance(_renders(train_tok, trainer_messages(row["messages"]), _tools(row["tools"])), Exception)
    }
    report = validate_file(data, tokenizer=Path(root) / "matrix-tok", chat_template=chat, roundtrip=False)
    refused = {f.row for f in report.findings if f.code in ("template_limit", "template_error")}
    assert refused == failing and failing
    assert {f.code for f in report.findings if f.row in failing} >= {"template_limit"}
    assert "template_error" not in report.counts
