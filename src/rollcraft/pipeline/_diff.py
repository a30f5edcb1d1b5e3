"""``rollcraft diff``: what changed between two version folders."""

from __future__ import annotations

import os
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import orjson

from rollcraft._errors import ConfigError
from rollcraft.pipeline._manifest import MANIFEST


def diff_versions(a: str | os.PathLike[str], b: str | os.PathLike[str]) -> dict[str, Any]:
    """What changed from version folder ``a`` to ``b``: config, inputs, counts, rows by rollout id."""
    first, second = Path(a), Path(b)
    ma, mb = (_read_manifest(p) for p in (first, second))
    return {
        "from": str(first),
        "to": str(second),
        "config": _dict_diff(ma.get("config", {}), mb.get("config", {})),
        "inputs": _inputs_diff(ma.get("inputs", []), mb.get("inputs", [])),
        "counts": _dict_diff(ma.get("counts", {}), mb.get("counts", {})),
        "rows": {
            kind: _ids_diff(first / f"{kind}_ids.txt", second / f"{kind}_ids.txt") for kind in ("sft", "dpo")
        },
        "outputs_identical": {
            o["path"]: o["sha256"] == _by_path(mb.get("outputs", [])).get(o["path"], {}).get("sha256")
            for o in ma.get("outputs", [])
        },
    }


def _read_manifest(folder: Path) -> dict[str, Any]:
    path = folder / MANIFEST
    if not path.is_file():
        raise ConfigError(f"{folder}: not a version folder (no {MANIFEST})")
    data: dict[str, Any] = orjson.loads(path.read_bytes())
    return data


def _flatten(data: Any, prefix: str = "") -> dict[str, Any]:
    if isinstance(data, dict):
        flat: dict[str, Any] = {}
        for key, value in data.items():
            flat.update(_flatten(value, f"{prefix}.{key}" if prefix else str(key)))
        return flat
    return {prefix: data}


def _dict_diff(a: dict[str, Any], b: dict[str, Any]) -> dict[str, Any]:
    fa, fb = _flatten(a), _flatten(b)
    return {
        k: {"from": fa.get(k), "to": fb.get(k)} for k in sorted(set(fa) | set(fb)) if fa.get(k) != fb.get(k)
    }


def _by_path(entries: Iterable[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    return {e["path"]: e for e in entries}


def _inputs_diff(a: list[dict[str, Any]], b: list[dict[str, Any]]) -> dict[str, Any]:
    pa, pb = _by_path(a), _by_path(b)
    changed = sorted(p for p in set(pa) & set(pb) if pa[p]["sha256"] != pb[p]["sha256"])
    return {"added": sorted(set(pb) - set(pa)), "removed": sorted(set(pa) - set(pb)), "changed": changed}


def _ids(path: Path) -> list[str]:
    return path.read_text().split() if path.is_file() else []


def _ids_diff(a: Path, b: Path) -> dict[str, Any]:
    ia, ib = _ids(a), _ids(b)
    sa, sb = set(ia), set(ib)
    return {"from": len(ia), "to": len(ib), "added": sorted(sb - sa), "removed": sorted(sa - sb)}
