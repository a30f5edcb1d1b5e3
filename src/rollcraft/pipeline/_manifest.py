"""A version's ``manifest.json``: config, inputs, outputs (with sha256), counts, dependency versions."""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Any

import orjson

from rollcraft._digest import sha256_file
from rollcraft._pipeline_config import LoadedConfig
from rollcraft._versions import dependency_versions
from rollcraft.engines import Outcome

MANIFEST = "manifest.json"


#: The distributions whose versions the manifest records (those installed).
_DEPENDENCIES = (
    "rollcraft",
    "orjson",
    "msgspec",
    "xxhash",
    "pydantic",
    "typer",
    "rich",
    "pyyaml",
    "zstandard",
    "transformers",
    "trl",
    "datasets",
    "torch",
    "peft",
    "ray",
)


def _manifest(
    loaded: LoadedConfig,
    name: str,
    parent: str | None,
    inputs: list[dict[str, Any]],
    folder: Path,
    outcome: Outcome,
    validation: dict[str, Any],
    started: float,
) -> dict[str, Any]:
    known = outcome.digests
    outputs = [
        _file_entry(p, p.name, known) for p in sorted(folder.iterdir()) if p.is_file() and p.name != MANIFEST
    ]
    manifest = {
        "rollcraft_manifest": 1,
        "version": name,
        "parent": parent,
        "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "duration_s": round(time.time() - started, 3),
        "config_file": str(loaded.path),
        "config": loaded.config.model_dump(mode="json", by_alias=True, exclude=_unset_later(loaded)),
        "filters": loaded.filters.model_dump(mode="json") | {"order": list(loaded.filters.key_order)},
        "inputs": inputs,
        "outputs": outputs,
        "counts": outcome.counts(),
        "validation": validation,
        "versions": dependency_versions(_DEPENDENCIES),
    }
    if loaded.template is not None:  # rows shaped for a chat template: which, and how
        manifest["row_shape"] = loaded.template.to_dict() | {"tokenizer": loaded.config.tokenizer}
    return manifest


def _file_entry(path: Path, name: str, known: dict[str, tuple[int, str]] | None = None) -> dict[str, Any]:
    size = path.stat().st_size
    digest = (known or {}).get(name)
    sha = digest[1] if digest is not None and digest[0] == size else sha256_file(path)
    return {"path": name, "bytes": size, "sha256": sha}


def _write_manifest(folder: Path, manifest: dict[str, Any]) -> None:
    _write(folder / MANIFEST, orjson.dumps(manifest, option=orjson.OPT_INDENT_2) + b"\n")


def _write(path: Path, data: bytes) -> None:
    """``path.write_bytes(data)``; an error names ``path`` (a write error alone does not)."""
    try:
        path.write_bytes(data)
    except OSError as exc:
        raise OSError(exc.errno, exc.strerror, os.fspath(path)) from None


#: Sections added to the config after manifests were first written: left out when unset, so a
#: run that does not use them writes the manifest it wrote before.
_LATER_SECTIONS = ("kto", "tokenizer", "chat_template")


def _unset_later(loaded: LoadedConfig) -> dict[str, Any]:
    config = loaded.config
    unset: dict[str, Any] = {name: True for name in _LATER_SECTIONS if getattr(config, name) is None}
    if config.sft is not None:  # keys added later, at their defaults
        later = {"expand": config.sft.expand == "none", "order": config.sft.order == "input"}
        if any(later.values()):
            unset["sft"] = {key: True for key, default in later.items() if default}
    if config.redact is not None and not config.redact.pii:
        unset["redact"] = {"pii": True}
    if config.read.trajectory == "main":
        unset["read"] = {"trajectory": True}
    return unset
