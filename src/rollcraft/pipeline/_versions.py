"""Version folders: their names (``vN``), the hidden staging folder, publishing, listing.

A run builds its version under a hidden ``.NAME.HOST-PID.RANDOM.partial`` folder (stale ones of
dead runs are swept) and renames it to ``OUTPUT_DIR/NAME`` when complete, so a version that exists
is always whole; an existing version is never overwritten.
"""

from __future__ import annotations

import errno
import os
import re
import tempfile
from pathlib import Path
from typing import Any

import orjson

from rollcraft._errors import ConfigError, OutputError
from rollcraft._io import current_umask, owned_prefix, sweep_stale, write_failed
from rollcraft.pipeline._manifest import MANIFEST, _write_manifest

_VERSION = re.compile(r"^v(\d+)$")


def next_version(output_dir: Path) -> str:
    """``v1``, or one past the highest ``vN`` in ``output_dir``."""
    numbers = [int(m.group(1)) for p in _children(output_dir) if (m := _VERSION.match(p.name))]
    return f"v{max(numbers, default=0) + 1}"


def _children(folder: Path) -> list[Path]:
    return sorted(p for p in folder.iterdir() if p.is_dir()) if folder.is_dir() else []


def list_versions(output_dir: str | os.PathLike[str]) -> list[dict[str, Any]]:
    """Every version folder (with a manifest) under ``output_dir``, oldest first, with its counts."""
    rows = []
    for folder in _children(Path(output_dir)):
        manifest = folder / MANIFEST
        if manifest.is_file():
            data = orjson.loads(manifest.read_bytes())
            rows.append({"version": folder.name, "path": str(folder), **_summary(data)})
    return sorted(rows, key=lambda r: (r["created"] or "", r["version"]))


def _summary(manifest: dict[str, Any]) -> dict[str, Any]:
    counts = manifest.get("counts", {})
    return {
        "created": manifest.get("created"),
        "parent": manifest.get("parent"),
        "lines": counts.get("read", {}).get("lines"),
        "rollouts": counts.get("read", {}).get("rollouts"),
        "kept": counts.get("filter", {}).get("kept"),
        "sft_rows": counts.get("sft", {}).get("rows"),
        "dpo_pairs": counts.get("dpo", {}).get("pairs"),
    }


def _check_name(name: str) -> None:
    if not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9._-]*", name):
        raise ConfigError(f"{name!r} is not a usable folder name (letters, digits, . _ -)", key="version")


def _staging_folder(output_dir: Path, name: str) -> Path:
    """A new hidden ``.NAME.HOST-PID.RANDOM.partial`` folder, with the umask's permissions.

    The host and pid let a later run tell a dead run's staging folder from a live one's (see
    :func:`rollcraft._io.sweep_stale`).
    """
    try:
        output_dir.mkdir(parents=True, exist_ok=True)
        sweep_stale(output_dir, ".partial")
        staging = Path(tempfile.mkdtemp(prefix=owned_prefix(name), suffix=".partial", dir=output_dir))
        staging.chmod(0o777 & ~current_umask())
    except OSError as exc:  # read-only, full, not ours: one line, not a traceback
        raise write_failed(output_dir, exc) from None
    return staging


def _publish(staging: Path, output_dir: Path, manifest: dict[str, Any], *, fixed: str | None) -> Path:
    """Write the manifest and rename ``staging`` to its version folder; return that folder.

    The rename claims the name atomically: a version named by the user that exists is an error;
    an automatic ``vN`` taken meanwhile by another run (two runs into one folder) moves on to
    the next free number, so both runs publish, neither overwrites.
    """
    while True:
        name = fixed or manifest["version"]
        manifest["version"] = name
        _write_manifest(staging, manifest)
        final = output_dir / name
        try:
            if final.exists():
                raise FileExistsError(errno.EEXIST, "exists", str(final))
            os.rename(staging, final)  # fails if another run published a (non-empty) final meanwhile
        except OSError as exc:
            if exc.errno not in (errno.EEXIST, errno.ENOTEMPTY):
                raise
            if fixed:
                raise OutputError(f"{final}: version appeared while running; not overwriting it") from None
            manifest["version"] = next_version(output_dir)
            continue
        return final
