"""``rollcraft run pipeline.yaml``: every step from one config, into a new immutable version folder.

A run reads its inputs, filters (and optionally redacts, applies review decisions and balances),
writes SFT rows and DPO pairs as the rollouts stream by, validates the outputs, optionally trains,
and publishes ``OUTPUT_DIR/vN/`` with a ``manifest.json`` that hashes every input and output.
The folder is built under a hidden temporary name and renamed when complete, so a version that
exists is always whole; an existing version is never overwritten.

The package, one role a module: ``_versions`` (version folders: names, staging, publishing,
listing), ``_manifest`` (the manifest), ``_digests`` (the inputs' sha256 and their cache),
``_validate`` (validating the outputs), ``_diff`` (two versions compared), ``_train`` (the
``train`` section); this module loads the config and runs the pipeline.
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
import shutil
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from rollcraft._digest import sha256_file as sha256_file
from rollcraft._errors import ConfigError, OutputError
from rollcraft._io import NO_ROOM, expand_inputs, write_failed
from rollcraft._pipeline_config import LoadedConfig, PipelineConfig, row_sections  # the engines import it too
from rollcraft._yamlconf import load_yaml, validate_model
from rollcraft.engines import select_engine
from rollcraft.filters import FilterConfig
from rollcraft.formats import TemplateProbe

# Every name pipeline.py had stays importable from here (the ``as`` imports re-export).
from rollcraft.pipeline._diff import _by_path as _by_path
from rollcraft.pipeline._diff import _dict_diff as _dict_diff
from rollcraft.pipeline._diff import _flatten as _flatten
from rollcraft.pipeline._diff import _ids as _ids
from rollcraft.pipeline._diff import _ids_diff as _ids_diff
from rollcraft.pipeline._diff import _inputs_diff as _inputs_diff
from rollcraft.pipeline._diff import _read_manifest as _read_manifest
from rollcraft.pipeline._diff import diff_versions
from rollcraft.pipeline._digests import _CACHE_ENTRIES as _CACHE_ENTRIES
from rollcraft.pipeline._digests import DIGEST_CACHE as DIGEST_CACHE
from rollcraft.pipeline._digests import HashMode as HashMode
from rollcraft.pipeline._digests import _DigestCache, _InputHashes
from rollcraft.pipeline._digests import _hash_files as _hash_files
from rollcraft.pipeline._digests import _HashingChild as _HashingChild
from rollcraft.pipeline._digests import _input_entry as _input_entry
from rollcraft.pipeline._manifest import _DEPENDENCIES as _DEPENDENCIES
from rollcraft.pipeline._manifest import MANIFEST as MANIFEST
from rollcraft.pipeline._manifest import _file_entry as _file_entry
from rollcraft.pipeline._manifest import _manifest
from rollcraft.pipeline._manifest import _write as _write
from rollcraft.pipeline._manifest import _write_manifest as _write_manifest
from rollcraft.pipeline._order import order_rows
from rollcraft.pipeline._train import train_version as train_version
from rollcraft.pipeline._validate import _prestart, _validate_outputs
from rollcraft.pipeline._versions import _VERSION as _VERSION
from rollcraft.pipeline._versions import _check_name, _publish, _staging_folder, list_versions
from rollcraft.pipeline._versions import _children as _children
from rollcraft.pipeline._versions import _summary as _summary
from rollcraft.pipeline._versions import next_version as next_version
from rollcraft.read._inspect import require_rollouts

__all__ = [
    "PipelineConfig",
    "RunResult",
    "diff_versions",
    "list_versions",
    "load_pipeline_config",
    "run_pipeline",
]


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
    if not row_sections(config) and config.dpo is None and not config.write_filtered:
        raise ConfigError(
            "the pipeline writes nothing: add an sft, kto or dpo section (or write_filtered: true)"
        )
    base = source.resolve().parent
    return LoadedConfig(config, filters, source.resolve(), base, _template(config, base))


def _template(config: PipelineConfig, base: Path) -> TemplateProbe | None:
    """The chat template's probe when the config names a tokenizer (relative to the config)."""
    if config.tokenizer is None:
        if config.chat_template is not None:
            raise ConfigError("needs tokenizer (the folder of the model to train)", key="chat_template")
        return None
    from rollcraft.formats import probe_template

    template = None if config.chat_template is None else base / config.chat_template
    return probe_template(base / config.tokenizer, template)


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
    fresh = not output_dir.exists()  # made for this run: removed again if the run writes nothing
    staging = _staging_folder(output_dir, name)
    started = time.time()
    processes = workers or config.workers
    digests = _DigestCache(output_dir / DIGEST_CACHE)
    mode: HashMode = "inline" if config.engine != "local" else ("thread" if processes == 1 else "process")
    hashing = _InputHashes(inputs, digests, mode=mode)
    _prestart(loaded)
    try:
        outcome = select_engine(config.engine)(loaded, inputs, staging, workers=processes, progress=progress)
        require_rollouts(outcome.result.filter.read)  # no version of nothing: say what the inputs are
        order_rows(loaded, inputs, staging, outcome)  # sft: {order: easy-to-hard}
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
        if fresh:
            with contextlib.suppress(OSError):  # not empty: it holds the new version
                output_dir.rmdir()
    errors = sum(v["errors"] for v in validation.values())
    result = RunResult(final.name, final, manifest, validation_errors=errors)
    if config.train is not None:
        if errors and config.validate_data.fail_on_error:
            raise ConfigError(f"validation found {errors} errors in {final}; not training on it", key="train")
        result.model_folder = train_version(loaded, final, manifest)
    return result


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
