"""Pre-training validation of SFT/DPO/KTO JSONL files: findings with stable codes, and statistics.

:func:`validate_file` streams a file written in one of the trainer dialects (``trl``,
``openai``, ``nemo-rl``; SFT, DPO or KTO, detected from the rows unless given; SFT rows may be
trl prompt-completion rows, as ``sft --expand turns`` writes), checks every row, and returns a
:class:`ValidationReport` (``to_json()``, ``to_dict()``, ``to_html()``).

>>> report = validate_file("train.jsonl")                          # doctest: +SKIP
>>> report.errors, [f.code for f in report.findings][:3]           # doctest: +SKIP
(0, [])

Finding codes are stable strings (other tools read them); :data:`CODES` maps each to its severity
and meaning. ``row`` is the 1-based line number in the file, or ``None`` for a finding about the
whole file. Decisions worth knowing:

- ``developer`` is accepted as a role: silently in the ``openai`` dialect (the OpenAI API knows
  it), with the ``developer_role`` warning elsewhere (most Hugging Face chat templates do not).
- A tool call is *unanswered* when the conversation moves on (a user or assistant message comes)
  before its result. Calls in the very last message are the model's next action: fine in a DPO
  completion, the ``final_tool_call`` warning at the end of an SFT conversation.
- *Identical* chosen/rejected compares the two with tool-call ids set aside and ``arguments``
  parsed, so a re-run of the same trajectory counts as identical.
- Tool-call ``arguments`` may be a JSON string or an object in ``trl`` and ``nemo-rl`` (a string
  must hold a JSON object); ``openai`` needs the string. ``trl`` ``tools`` may be a JSON string.
- The ``datasets`` round trip (``roundtrip_changed``) runs for the dialects that trainers load with
  ``datasets`` (``trl``, ``nemo-rl``). A ``null`` added to a message, tool call or row is tolerated
  (templates read it as absent); any other change (a key added inside ``arguments`` or a tool's
  ``parameters``, a changed value) is an error; numbers equal within 1e-12 (relative) count as equal.

The package: ``_codes`` (codes, severities, findings), ``_report`` (the report), ``_json`` (JSON
helpers, the file's lines), ``_detect`` (kind and dialect), ``_row`` (the row under check),
``_messages`` (message checks), ``_checks`` (row checks per kind and dialect), ``_render``
(tokenizer checks), ``_turns`` (per-turn rows: would one row per trajectory drop earlier-turn
reasoning), ``_stats`` (statistics), ``_roundtrip`` (``datasets``), ``_html`` (the HTML report);
this module holds the streaming pass over the file.
"""

from __future__ import annotations

import os
from pathlib import Path

from rollcraft._errors import ConfigError, InputError
from rollcraft.formats._dialects import DIALECTS
from rollcraft.formats.tokens import TOKENS
from rollcraft.validate._checks import _check_line
from rollcraft.validate._codes import CODES, KINDS, Finding, _Findings
from rollcraft.validate._codes import Kind as Kind
from rollcraft.validate._codes import Severity as Severity
from rollcraft.validate._detect import _detect
from rollcraft.validate._html import stat_lines as stat_lines
from rollcraft.validate._json import _lines
from rollcraft.validate._render import _Renderer, _token_check
from rollcraft.validate._report import ValidationReport
from rollcraft.validate._roundtrip import _compare_loaded as _compare_loaded
from rollcraft.validate._roundtrip import _load_json_dataset as _load_json_dataset
from rollcraft.validate._roundtrip import _loaded_rows as _loaded_rows
from rollcraft.validate._roundtrip import _roundtrip
from rollcraft.validate._row import _Row
from rollcraft.validate._stats import _series, _shape_findings, _Stats, _stats_dict
from rollcraft.validate._stats import summarize as summarize
from rollcraft.validate._turns import EarlierReasoning

__all__ = [
    "CODES",
    "DIALECTS",
    "KINDS",
    "Finding",
    "ValidationReport",
    "validate_file",
]


_EXCERPT_CHARS = 1500
_MAX_EXCERPTS = 300


def validate_file(
    path: str | os.PathLike[str],
    *,
    kind: str | None = None,
    dialect: str = "auto",
    tokenizer: str | os.PathLike[str] | None = None,
    max_seq_len: int | None = None,
    chat_template: str | os.PathLike[str] | None = None,
    roundtrip: bool = True,
    max_findings_per_code: int = 1000,
) -> ValidationReport:
    """Check every row of ``path`` and gather statistics.

    ``kind`` (``"sft"``/``"dpo"``/``"kto"``) and ``dialect`` (``"trl"``, ``"openai"``, ``"nemo-rl"``) are
    detected from the rows when not given. With ``tokenizer`` (a local Hugging Face tokenizer
    folder; ``chat_template`` a Jinja file that replaces its template) every row is rendered with
    ``apply_chat_template`` and lengths are in tokens; ``max_seq_len`` then reports rows whose final
    assistant turn would be truncated. Without a tokenizer lengths are in characters.

    >>> validate_file("sft.jsonl", kind="sft").ok                  # doctest: +SKIP
    True
    """
    source = _check_options(path, kind, dialect, max_seq_len)
    kind, dialect = _detect(source, kind, dialect)
    renders = dialect != TOKENS  # token rows have no messages to render
    renderer = None
    if tokenizer is not None and renders:
        renderer = _Renderer(os.fspath(tokenizer), _opt(chat_template), kind)
    sink = _Findings(max_findings_per_code)
    turns = EarlierReasoning()
    stats, clean_json = _scan(source, kind, dialect, renderer, max_seq_len, sink, turns)
    unit = "tokens" if renderer is not None or dialect == TOKENS else "chars"
    if stats.rows == 0:
        sink.add("empty_file", "the file has no rows", None)
    _shape_findings(stats, unit, sink)
    if roundtrip and dialect in ("trl", "nemo-rl") and clean_json and stats.rows:
        _roundtrip(source, sink)
    findings = sorted(
        sink.items, key=lambda f: (f.row is not None, f.row or 0, f.severity != "error", f.code)
    )
    report = ValidationReport(
        source, kind, dialect, stats.rows, findings, dict(sink.counts), _stats_dict(stats, kind, unit)
    )
    if renderer is not None:
        report.stats["template"] = renderer.probe.to_dict()
        earlier = turns.to_dict(renderer.name)
        if earlier is not None:
            report.stats["earlier_turn_reasoning"] = earlier
    report.excerpts = _excerpts(source, sink.rows_with_findings())
    report.series = _series(stats, unit)
    return report


def _opt(value: str | os.PathLike[str] | None) -> str | None:
    return None if value is None else os.fspath(value)


def _check_options(
    path: str | os.PathLike[str], kind: str | None, dialect: str, max_seq_len: int | None
) -> str:
    source = os.fspath(path)
    if kind is not None and kind not in KINDS:
        raise ConfigError(f"must be one of {', '.join(KINDS)}, not {kind!r}", key="kind")
    if dialect not in ("auto", *DIALECTS, TOKENS):
        known = ", ".join((*DIALECTS, TOKENS))
        raise ConfigError(f"must be auto or one of {known}, not {dialect!r}", key="format")
    if max_seq_len is not None and max_seq_len < 1:
        raise ConfigError(f"must be a positive number of tokens, not {max_seq_len}", key="max_seq_len")
    if not Path(source).is_file():
        raise InputError("no such file", path=source)
    return source


def _scan(
    source: str,
    kind: str,
    dialect: str,
    renderer: _Renderer | None,
    max_len: int | None,
    sink: _Findings,
    turns: EarlierReasoning,
) -> tuple[_Stats, bool]:
    """The streaming pass, each row checked once; returns the stats and whether every line was an object."""
    stats, clean_json = _Stats(), True
    for number, data in _lines(source):
        if not data.strip():
            sink.add("blank_line", "an empty line", number)
            continue
        stats.rows += 1
        row = _Row(number, kind, dialect, sink)
        facts = _check_line(data, row)
        if facts is None:
            clean_json = False
            continue
        first = stats.duplicate_of(number, facts.fingerprint)
        if first is not None:
            row.add("duplicate_row", f"repeats row {first}")
        stats.add(number, facts)
        if facts.n_tokens is not None:  # an exact-token row: its length is its token count
            stats.tokens.append((number, facts.n_tokens))
        if renderer is not None:
            tokens = _token_check(renderer, facts, row, max_len)
            if tokens is not None:
                stats.tokens.append((number, tokens))
            turns.check(renderer, number, facts)
    return stats, clean_json


def _excerpts(source: str, rows: set[int]) -> dict[int, str]:
    """The first characters of each row that has a finding (for the HTML report), at most a few hundred."""
    wanted = set(sorted(rows)[:_MAX_EXCERPTS])
    out: dict[int, str] = {}
    if not wanted:
        return out
    for number, data in _lines(source, limit=max(wanted)):
        if number in wanted:
            text = data.decode("utf-8", errors="replace")
            out[number] = text if len(text) <= _EXCERPT_CHARS else text[:_EXCERPT_CHARS] + " …"
    return out
