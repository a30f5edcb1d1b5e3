"""``rollcraft run pipeline.yaml``: every step from one config, into a new immutable version folder.

A run reads its inputs, filters (and optionally redacts, applies review decisions and balances),
writes SFT rows and DPO pairs as the rollouts stream by, validates the outputs, optionally trains,
and publishes ``OUTPUT_DIR/vN/`` with a ``manifest.json`` that hashes every input and output.
The folder is built under a hidden temporary name and renamed when complete, so a version that
exists is always whole; an existing version is never overwritten.
"""

from __future__ import annotations

import contextlib
import dataclasses
import errno
import os
import re
import shutil
import tempfile
import time
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import orjson

from rollcraft._digest import sha256_file
from rollcraft._errors import ConfigError, OutputError
from rollcraft._inspect import require_rollouts
from rollcraft._io import (
    NO_ROOM,
    atomic_writer,
    current_umask,
    expand_inputs,
    owned_prefix,
    sweep_stale,
    write_failed,
)
from rollcraft._pipeline_config import LoadedConfig, PipelineConfig  # apart: the engines import it
from rollcraft._versions import dependency_versions
from rollcraft._yamlconf import load_yaml, validate_model
from rollcraft.engines import Outcome, select_engine
from rollcraft.filters import FilterConfig

__all__ = [
    "PipelineConfig",
    "RunResult",
    "diff_versions",
    "list_versions",
    "load_pipeline_config",
    "run_pipeline",
]

MANIFEST = "manifest.json"


def load_pipeline_config(path: str | os.PathLike[str]) -> LoadedConfig:
    """Read and validate a pipeline YAML; errors name the key and its line.

    >>> loaded = load_pipeline_config("examples/pipeline.yaml")
    >>> loaded.config.sft.format
    'trl'
    """
    source = Path(path)
    data, lines = load_yaml(source)
    config: PipelineConfig = validate_model(PipelineConfig, data, lines, source)
    filter_lines = {k[1]: v for k, v in lines.items() if len(k) == 2 and k[0] == "filters"}
    try:
        filters = FilterConfig.from_mapping(config.filters, lines=filter_lines, source=str(source))
    except ConfigError as exc:
        key = f"filters.{exc.key}" if exc.key else "filters"
        raise ConfigError(exc.message, key=key, line=exc.line) from None
    if config.sft is None and config.dpo is None and not config.write_filtered:
        raise ConfigError("the pipeline writes nothing: add an sft or dpo section (or write_filtered: true)")
    return LoadedConfig(config, filters, source.resolve(), source.resolve().parent)


# ------------------------------------------------------------------------------------------------
# Versions


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


def _file_entry(path: Path, name: str, known: dict[str, tuple[int, str]] | None = None) -> dict[str, Any]:
    size = path.stat().st_size
    digest = (known or {}).get(name)
    sha = digest[1] if digest is not None and digest[0] == size else sha256_file(path)
    return {"path": name, "bytes": size, "sha256": sha}


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


# ------------------------------------------------------------------------------------------------
# The run


@dataclass(slots=True)
class RunResult:
    """A finished run: its folder, its manifest and whether validation passed."""

    version: str
    folder: Path
    manifest: dict[str, Any]
    validation_errors: int = 0
    model_folder: Path | None = None


def run_pipeline(
    config_path: str | os.PathLike[str],
    *,
    version: str | None = None,
    workers: int | None = None,
    engine: str | None = None,
    ray_address: str | None = None,
    progress: Any = None,
) -> RunResult:
    """Run the pipeline of ``config_path`` into a new version folder and return what it made.

    >>> result = run_pipeline("examples/pipeline.yaml")            # doctest: +SKIP
    >>> result.folder.name
    'v1'
    """
    loaded = _with_engine(load_pipeline_config(config_path), engine, ray_address)
    config = loaded.config
    output_dir = Path(loaded.resolve(config.output_dir))
    name = version or config.version or next_version(output_dir)
    _check_name(name)
    final = output_dir / name
    if final.exists():
        raise OutputError(
            f"{final}: version exists; rollcraft never overwrites a version (pick another name)"
        )
    parent = config.parent
    if parent is not None and not (output_dir / parent / MANIFEST).is_file():
        raise ConfigError(f"no version {parent!r} in {output_dir}", key="parent")
    inputs = expand_inputs([loaded.resolve(p) for p in config.inputs])
    staging = _staging_folder(output_dir, name)
    started = time.time()
    processes = workers or config.workers
    digests = _DigestCache(output_dir / DIGEST_CACHE)
    mode: HashMode = "inline" if config.engine != "local" else ("thread" if processes == 1 else "process")
    hashing = _InputHashes(inputs, digests, mode=mode)
    try:
        outcome = select_engine(config.engine)(loaded, inputs, staging, workers=processes, progress=progress)
        require_rollouts(outcome.result.filter.read)  # no version of nothing: say what the inputs are
        input_entries = hashing.entries()
        digests.save()
        try:
            validation = _validate_outputs(loaded, staging, outcome)
            manifest = _manifest(loaded, name, parent, input_entries, staging, outcome, validation, started)
            final = _publish(staging, output_dir, manifest, fixed=version or config.version)
        except OSError as exc:
            if exc.errno not in NO_ROOM:
                raise
            where = Path(os.fsdecode(exc.filename or staging))
            shown = output_dir / name / where.relative_to(staging) if where.is_relative_to(staging) else where
            raise write_failed(shown, exc) from None
    finally:
        if staging.exists():
            shutil.rmtree(staging, ignore_errors=True)
    errors = sum(v["errors"] for v in validation.values())
    result = RunResult(final.name, final, manifest, validation_errors=errors)
    if config.train is not None:
        if errors and config.validate_data.fail_on_error:
            raise ConfigError(f"validation found {errors} errors in {final}; not training on it", key="train")
        result.model_folder = train_version(loaded, final, manifest)
    return result


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


def train_version(loaded: LoadedConfig, folder: Path, manifest: dict[str, Any]) -> Path:
    """Train on a published version's data (the config's ``train`` section) into ``models/NAME/``.

    The model folder's ``data_version.json`` points at the version: its folder, name, data file
    and that file's sha256 from the version's manifest.
    """
    from rollcraft.train import load_train_config, train

    section = loaded.config.train
    assert section is not None
    data_section = loaded.config.sft if section.method == "sft" else loaded.config.dpo
    if data_section is None:
        raise ConfigError(
            f"train.method is {section.method} but the pipeline writes no {section.method} data",
            key="train.method",
        )
    data = folder / data_section.file
    model = loaded.resolve(section.model) if os.path.exists(loaded.resolve(section.model)) else section.model
    output = Path(loaded.resolve(section.models_dir)) / (section.name or f"{folder.name}-{section.method}")
    config = load_train_config(
        loaded.resolve(section.config) if section.config else None,
        **{
            **section.options,
            "method": section.method,
            "model": model,
            "data": str(data),
            "output_dir": str(output),
        },
    )
    result = train(config)
    entry = next(o for o in manifest["outputs"] if o["path"] == data_section.file)
    pointer = {
        "data_version": folder.name,
        "version_folder": str(folder),
        "data_file": data_section.file,
        "data_sha256": entry["sha256"],
        "pipeline_config": manifest["config_file"],
    }
    (result.output_dir / "data_version.json").write_bytes(
        orjson.dumps(pointer, option=orjson.OPT_INDENT_2) + b"\n"
    )
    return result.output_dir


def _with_engine(loaded: LoadedConfig, engine: str | None, address: str | None) -> LoadedConfig:
    if engine is None and address is None:
        return loaded
    if engine not in (None, "local", "ray"):
        raise ConfigError(f"unknown engine {engine!r} (local or ray)", key="engine")
    changes: dict[str, Any] = {}
    if engine is not None:
        changes["engine"] = engine
    if address is not None:
        changes["ray_address"] = address
    return dataclasses.replace(loaded, config=loaded.config.model_copy(update=changes))


HashMode = Literal["thread", "process", "inline"]


class _InputHashes:
    """The manifest's input entries, hashed while the pipeline runs.

    One process (``mode="thread"``): a background thread; hashlib releases the GIL while it
    hashes, so on a machine with a second core the inputs' sha256 costs (almost) no time. With a
    worker pool (``mode="process"``): a thread running while the pool forks could leave a worker
    deadlocked on a lock the thread held, so a forked process hashes instead, started before any
    pool and before any of rollcraft's threads, alongside the workers. ``mode="inline"`` (the Ray
    driver) hashes at once. Digests cached in the output folder are not computed again.
    """

    def __init__(self, inputs: list[str], cache: _DigestCache, *, mode: HashMode) -> None:
        import threading

        self._inputs = inputs
        self._entries: list[dict[str, Any]] = []
        self._error: BaseException | None = None
        self._cache = cache
        self._thread = threading.Thread(target=self._work, daemon=True)
        self._child: Any = None
        missing = [p for p in inputs if not cache.knows(p)]
        if missing and mode == "thread":
            self._thread.start()
        elif missing and mode == "process" and hasattr(os, "fork"):
            self._child = _HashingChild(missing)
        else:
            self._work()

    def _work(self) -> None:
        try:
            self._entries = [_input_entry(p, self._cache) for p in self._inputs]
        except BaseException as exc:  # re-raised in entries()
            self._error = exc

    def entries(self) -> list[dict[str, Any]]:
        """The entries (waits for the thread or process); an error, if any, is raised here."""
        if self._thread.is_alive():
            self._thread.join()
        if self._child is not None:
            for path, digest in self._child.digests().items():
                self._cache.store(path, digest)
            self._child = None
            self._work()
        if self._error is not None:
            raise self._error
        return self._entries


class _HashingChild:
    """A forked process computing the sha256 of some files; ``digests()`` collects them."""

    def __init__(self, paths: list[str]) -> None:
        import multiprocessing

        context = multiprocessing.get_context("fork")
        self._receive, send = context.Pipe(duplex=False)
        self._process = context.Process(target=_hash_files, args=(paths, send), daemon=True)
        self._process.start()
        send.close()

    def digests(self) -> dict[str, str]:
        """What the child computed (files it could not hash are simply missing: hashed again here)."""
        try:
            result = self._receive.recv()
        except (EOFError, OSError):
            result = {}
        self._process.join()
        self._receive.close()
        return result if isinstance(result, dict) else {}


def _hash_files(paths: list[str], send: Any) -> None:
    import signal

    signal.signal(signal.SIGTERM, signal.SIG_DFL)  # not the parent's temporary-file cleanup
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    digests: dict[str, str] = {}
    for path in paths:
        with contextlib.suppress(OSError):
            digests[path] = sha256_file(path)
    send.send(digests)
    send.close()


def _check_name(name: str) -> None:
    if not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9._-]*", name):
        raise ConfigError(f"{name!r} is not a usable folder name (letters, digits, . _ -)", key="version")


def _validate_outputs(loaded: LoadedConfig, folder: Path, outcome: Outcome) -> dict[str, dict[str, Any]]:
    section = loaded.config.validate_data
    if not section.enabled:
        return {}
    from rollcraft.validate import validate_file

    results: dict[str, dict[str, Any]] = {}
    for kind, sub in (("sft", loaded.config.sft), ("dpo", loaded.config.dpo)):
        if sub is None:
            continue
        report = validate_file(
            folder / sub.file,
            kind=kind,
            dialect=sub.format,
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
    return {
        "rollcraft_manifest": 1,
        "version": name,
        "parent": parent,
        "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "duration_s": round(time.time() - started, 3),
        "config_file": str(loaded.path),
        "config": loaded.config.model_dump(mode="json", by_alias=True),
        "filters": loaded.filters.model_dump(mode="json") | {"order": list(loaded.filters.key_order)},
        "inputs": inputs,
        "outputs": outputs,
        "counts": outcome.counts(),
        "validation": validation,
        "versions": dependency_versions(_DEPENDENCIES),
    }


def _input_entry(path: str, cache: _DigestCache | None = None) -> dict[str, Any]:
    if path == "-":
        return {"path": "-", "bytes": None, "sha256": None}
    digest = cache.sha256(path) if cache is not None else sha256_file(path)
    return {"path": path, "bytes": os.path.getsize(path), "sha256": digest}


#: The input digests of earlier runs, in the output folder (a cache: deleting it is harmless).
DIGEST_CACHE = ".rollcraft-input-digests.json"
_CACHE_ENTRIES = 4096


class _DigestCache:
    """Inputs' sha256 remembered by path, size, mtime (ns), inode and device, as git and DVC do.

    Iterating on a pipeline re-reads the same inputs; hashing them again cost 0.7-1.5 s per GB.
    A file rewritten in place keeping its size and its nanosecond mtime would keep its old digest;
    delete the cache file (``OUTPUT_DIR/.rollcraft-input-digests.json``) to hash everything anew.
    """

    def __init__(self, path: Path) -> None:
        self.path = path
        self._entries: dict[str, list[Any]] = {}
        self._changed = False
        with contextlib.suppress(OSError, ValueError):
            loaded = orjson.loads(path.read_bytes())
            if isinstance(loaded, dict):
                self._entries = {k: v for k, v in loaded.items() if isinstance(v, list) and len(v) == 2}

    @staticmethod
    def _key(path: str) -> tuple[str, list[int]]:
        stat = os.stat(path)
        return os.path.realpath(path), [stat.st_size, stat.st_mtime_ns, stat.st_ino, stat.st_dev]

    def knows(self, path: str) -> bool:
        """Whether ``path``'s digest is cached for the file as it is now."""
        if path == "-":
            return True
        name, facts = self._key(path)
        entry = self._entries.get(name)
        return entry is not None and entry[0] == facts

    def sha256(self, path: str) -> str:
        """``path``'s sha256, from the cache when the file is unchanged."""
        name, facts = self._key(path)
        entry = self._entries.get(name)
        if entry is not None and entry[0] == facts and isinstance(entry[1], str):
            return entry[1]
        digest = sha256_file(path)
        self._put(name, facts, digest)
        return digest

    def store(self, path: str, digest: str) -> None:
        """Remember ``digest`` for ``path`` as the file is now."""
        self._put(*self._key(path), digest)

    def _put(self, name: str, facts: list[int], digest: str) -> None:
        self._entries.pop(name, None)  # re-inserted last: the newest entries are the ones kept
        self._entries[name] = [facts, digest]
        self._changed = True

    def save(self) -> None:
        """Write the cache (atomically; the newest entries only). Failing to write is harmless."""
        if not self._changed:
            return
        entries = dict(list(self._entries.items())[-_CACHE_ENTRIES:])
        with contextlib.suppress(OSError):
            with atomic_writer(self.path) as handle:
                handle.write(orjson.dumps(entries))


def _write_manifest(folder: Path, manifest: dict[str, Any]) -> None:
    _write(folder / MANIFEST, orjson.dumps(manifest, option=orjson.OPT_INDENT_2) + b"\n")


def _write(path: Path, data: bytes) -> None:
    """``path.write_bytes(data)``; an error names ``path`` (a write error alone does not)."""
    try:
        path.write_bytes(data)
    except OSError as exc:
        raise OSError(exc.errno, exc.strerror, os.fspath(path)) from None


# ------------------------------------------------------------------------------------------------
# Diff


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
