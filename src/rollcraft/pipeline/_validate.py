"""The outputs of a run validated in its staging folder (``validation_KIND.json``/``.html``)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from rollcraft._pipeline_config import LoadedConfig
from rollcraft.engines import Outcome
from rollcraft.pipeline._manifest import _write


def _prestart(loaded: LoadedConfig) -> None:
    """With validation on, start the round trip's process now (it imports ``datasets`` meanwhile)."""
    if loaded.config.validate_data.enabled:
        from rollcraft.validate._roundtrip import prestart

        prestart()


def _validate_outputs(loaded: LoadedConfig, folder: Path, outcome: Outcome) -> dict[str, dict[str, Any]]:
    section = loaded.config.validate_data
    if not section.enabled:
        return {}
    from rollcraft.validate import validate_file

    results: dict[str, dict[str, Any]] = {}
    for kind, sub in (("sft", loaded.config.sft), ("dpo", loaded.config.dpo), ("kto", loaded.config.kto)):
        if sub is None:
            continue
        report = validate_file(
            folder / sub.file,
            kind=kind,
            dialect=getattr(sub, "format", "trl"),  # KTO rows are trl rows
            tokenizer=loaded.resolve(section.tokenizer) if section.tokenizer else None,
            max_seq_len=section.max_seq_len,
            chat_template=loaded.resolve(section.chat_template) if section.chat_template else None,
        )
        report.path = sub.file  # the name inside the version folder, not the staging path
        _write(folder / f"validation_{kind}.json", report.to_json().encode())
        if section.html:
            _write(folder / f"validation_{kind}.html", report.to_html().encode())
        results[kind] = {
            "errors": report.errors,
            "warnings": report.warnings,
            "rows": report.to_dict()["rows"],
        }
    return results
