"""The ``datasets`` round trip: load the file with ``load_dataset('json')`` and report changed rows.

A shortcut for memory lives here: ``datasets`` and what it imports (pandas, pyarrow, fsspec,
huggingface_hub) take about 150 MB whatever the file, and loading one about 40 MB more. A process
that has not imported it runs the round trip in a child process (this module alone, without the
package's imports; started when needed, or by a pipeline with validation as it starts, and ended
when idle: it reads file names and prints their findings as JSON lines), so the run itself never
holds that memory on top of its own. The example pipeline on 100 MB of the benchmark's input
peaks at 233 MB in one process; this way the child peaks at about 160 MB (Arrow's system
allocator, not its own, which keeps what it freed: 188 MB) and the run itself stays at about 60
MB (more at larger inputs, see docs/performance.md), for the child's start (about 0.1 s of CPU
besides importing ``datasets``, which the process would import anyway). A process that has
imported ``datasets`` already pays its memory: it checks in place. The same findings either way:
``tests/validate/test_roundtrip_child.py``.
"""

from __future__ import annotations

import atexit
import contextlib
import importlib.util
import json
import math
import os
import select
import shutil
import subprocess
import sys
import tempfile
import threading
from collections.abc import Iterator
from typing import Any

import orjson

from rollcraft.validate._codes import _Findings
from rollcraft.validate._json import _is_number, _lines

_LOOSE_LIST_KEYS = frozenset(
    {
        "messages",
        "prompt",
        "chosen",
        "rejected",
        "context",
        "completion",
        "completions",
        "tool_calls",
        "tools",
        "preferred_output",
        "non_preferred_output",
    }
)


def _diff(before: Any, after: Any, path: str, loose: bool, rounded: list[str] | None = None) -> str | None:
    """Where ``after`` first differs from ``before`` (None when equal); ``loose`` dicts may gain nulls.

    A float the JSON loader rounded (to 10 decimals, inside an object it parses as a struct) is
    not a difference when ``rounded`` collects it (``path: before -> after``)."""
    if isinstance(before, dict) and isinstance(after, dict):
        for key in before.keys() | after.keys():
            if key not in before:
                if loose and after[key] is None:
                    continue
                return f"{path}.{key} appears ({json.dumps(after[key])[:40]})"
            if key not in after:
                return f"{path}.{key} disappears"
            child_loose = key in ("function", "input")
            if isinstance(before[key], list):
                child_loose = key in _LOOSE_LIST_KEYS
            found = _diff(before[key], after[key], f"{path}.{key}", child_loose, rounded)
            if found:
                return found
        return None
    if isinstance(before, list) and isinstance(after, list) and len(before) == len(after):
        for i, (b, a) in enumerate(zip(before, after, strict=True)):
            found = _diff(b, a, f"{path}[{i}]", loose, rounded)
            if found:
                return found
        return None
    if _same_scalar(before, after):
        return None
    if rounded is not None and _rounded(before, after):
        rounded.append(f"{path}: {before!r} -> {after!r}")
        return None
    return f"{path} changes from {json.dumps(before)[:40]} to {json.dumps(after, default=str)[:40]}"


def _same_scalar(before: Any, after: Any) -> bool:
    """Equal scalars; numbers within 1e-12 relative (Arrow's float parsing may move the last digit)."""
    if isinstance(before, (list, dict)) or isinstance(after, (list, dict)):
        return False
    if _is_number(before) and _is_number(after):
        return bool(math.isclose(before, after, rel_tol=1e-12, abs_tol=0.0))
    return bool(type(before) is type(after) and before == after)


def _rounded(before: Any, after: Any) -> bool:
    """``after`` is the float ``before`` rounded to 10 decimals (datasets' JSON loader does that)."""
    return isinstance(before, float) and isinstance(after, float) and round(before, 10) == after


def _roundtrip(path: str, sink: _Findings) -> None:
    """Load the file with ``datasets`` and report every row the load changes: in this process
    when it has imported ``datasets``, else in a child process (see the module's docstring)."""
    if "datasets" in sys.modules or importlib.util.find_spec("datasets") is None:
        _roundtrip_here(path, sink)
    else:
        _roundtrip_in_child(path, sink)


def prestart() -> None:
    """Start the child process now (where the round trip would run in one), so that it imports
    ``datasets`` while the run still reads its input: a pipeline with validation calls this
    first. On a machine with a second core that import (about 1 s) is then off the run's path;
    the child waits for its first file without the idle limit, and ends with this process."""
    if "datasets" not in sys.modules and importlib.util.find_spec("datasets") is not None:
        with _LOCK:
            _child(early=True)


def _roundtrip_in_child(path: str, sink: _Findings) -> None:
    """:func:`_roundtrip_here` in the child process; its findings added to ``sink`` in its order."""
    with _LOCK:
        for _ in range(2):  # a child that ended idle (before this file) is replaced once
            status = _ask(_child(), path, sink)
            if status is None:
                return
            if status != _IDLE:
                break
    sink.add("roundtrip_failed", f"the round trip's process ended (exit status {status})", None)


def _ask(child: subprocess.Popen[bytes], path: str, sink: _Findings) -> int | None:
    """Send ``path``, add its findings; None when done, else the exit status of the child that
    ended before it answered."""
    assert child.stdin is not None and child.stdout is not None
    try:
        child.stdin.write(orjson.dumps(os.path.abspath(path)) + b"\n")
        child.stdin.flush()
        for line in iter(child.stdout.readline, b""):
            finding = orjson.loads(line)
            if finding is None:  # the end of this file's findings
                return None
            sink.add(*finding)
    except (OSError, orjson.JSONDecodeError):
        pass
    return child.wait()


_LOCK = threading.Lock()
_CHILDREN: list[subprocess.Popen[bytes]] = []
#: The child ends after this many seconds without a file to check (the pipeline's checks come
#: one after the other), so it holds its memory no longer than the checks need.
_IDLE_SECONDS = 10.0
#: The exit status of a child that ended idle: it read nothing it did not answer.
_IDLE = 3


def _child(*, early: bool = False) -> subprocess.Popen[bytes]:
    """The child process that checks files (started when needed; it ends when idle, or with
    this process). ``early``: started before there is a file (:func:`prestart`): it waits for
    its first one without the idle limit."""
    if _CHILDREN and _CHILDREN[-1].poll() is None:
        return _CHILDREN[-1]
    first = "wait" if early else str(_IDLE_SECONDS)
    command = [sys.executable, "-c", _BOOT.format(packages=_packages()), str(_IDLE_SECONDS), first]
    pipe = subprocess.PIPE
    # Arrow's own allocator keeps what it freed: the system's takes the child from 188 to 161 MB.
    env = {"ARROW_DEFAULT_MEMORY_POOL": "system", **os.environ}
    child = subprocess.Popen(command, stdin=pipe, stdout=pipe, stderr=subprocess.DEVNULL, env=env)
    if not _CHILDREN:
        atexit.register(_end_children)
    _CHILDREN.append(child)
    return child


#: The child's program: this module without the packages' ``__init__`` (``rollcraft`` imports
#: pydantic, typer, rich and the training config: about 25 MB and 0.3 s the child does not need).
_BOOT = """import sys, types
for name, path in {packages!r}:
    module = types.ModuleType(name)
    module.__path__ = [path]
    sys.modules[name] = module
from rollcraft.validate._roundtrip import _serve
_serve(float(sys.argv[1]), None if sys.argv[2] == "wait" else float(sys.argv[2]))
"""


def _packages() -> list[tuple[str, str]]:
    here = os.path.dirname(os.path.abspath(__file__))
    return [("rollcraft", os.path.dirname(here)), ("rollcraft.validate", here)]


def _end_children() -> None:
    for child in _CHILDREN:
        if child.poll() is None and child.stdin is not None:
            child.stdin.close()  # its loop ends at the end of its input
            try:
                child.wait(timeout=5)
            except subprocess.TimeoutExpired:
                child.kill()


def _serve(idle: float = _IDLE_SECONDS, first: float | None = _IDLE_SECONDS) -> None:
    """The child process: imports ``datasets``, then for each file name (a JSON line on stdin)
    gives its findings, then ``null``; it exits with :data:`_IDLE` after ``idle`` seconds
    without one (``first`` for the first: None, no limit), where ``select`` can wait on a pipe
    (not on Windows)."""
    with contextlib.suppress(ImportError):
        import datasets  # noqa: F401  # first: what an early start is for (see prestart)
    out, read = sys.stdout.buffer, sys.stdin.buffer
    wait = first
    while True:
        if os.name == "posix" and not select.select([read], [], [], wait)[0]:
            sys.exit(_IDLE)
        wait = idle
        line = read.readline()
        if not line:
            return
        _roundtrip_here(orjson.loads(line), _Printed())
        out.write(b"null\n")
        out.flush()


class _Printed:
    """The sink of the child process: each finding as a JSON line on stdout."""

    def add(self, code: str, message: str, row: int | None) -> None:
        sys.stdout.buffer.write(orjson.dumps([code, message, row]) + b"\n")


def _roundtrip_here(path: str, sink: _Findings | _Printed) -> None:
    """Load the file with ``datasets`` and report every row the load changes."""
    try:
        import datasets
    except ImportError:
        sink.add("roundtrip_unavailable", "datasets is not installed; the round trip was not checked", None)
        return
    cache = tempfile.mkdtemp(prefix="rollcraft-roundtrip-")
    try:
        _compare_loaded(path, _load_json_dataset(datasets, path, cache), sink)
    except _LoadFailed as exc:
        sink.add("roundtrip_failed", f"datasets cannot load the file: {exc}", None)
    finally:
        shutil.rmtree(cache, ignore_errors=True)


class _LoadFailed(Exception):
    pass


def _load_json_dataset(datasets: Any, path: str, cache: str) -> Any:
    datasets.disable_progress_bars()
    datasets.logging.set_verbosity_error()
    try:
        return datasets.load_dataset("json", data_files=os.path.abspath(path), split="train", cache_dir=cache)
    except Exception as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
        raise _LoadFailed(f"{type(exc).__name__}: {first[:200]}") from None


def _compare_loaded(path: str, dataset: Any, sink: _Findings | _Printed) -> None:
    loaded = _loaded_rows(dataset)
    for number, data in _lines(path):
        if not data.strip():
            continue
        after = next(loaded, None)
        rounded: list[str] = []
        change = _diff(orjson.loads(data), after, "row", True, rounded)
        if change:
            sink.add("roundtrip_changed", f"load_dataset('json') changes the row: {change}", number)
        elif rounded:
            sink.add(
                "roundtrip_rounded_float",
                f"load_dataset('json') rounds {len(rounded)} long float(s) to 10 decimals ({rounded[0]}); "
                "rollcraft train reads the file exactly (see docs/validation.md)",
                number,
            )


def _loaded_rows(dataset: Any) -> Iterator[Any]:
    """The rows of a loaded dataset as ``iter(dataset)`` gives them (decoded by its features),
    read from its Arrow cache files one record batch at a time.

    Iterating the dataset reads them through a memory map whose pages stay resident: the peak
    memory grew with the file (+214 MB for a 302 MB file, 4x slower). Any other dataset (in
    memory, or with an indices mapping) is iterated as it is.
    """
    files = [entry["filename"] for entry in getattr(dataset, "cache_files", None) or ()]
    features = getattr(dataset, "features", None)
    if not files or features is None or getattr(dataset, "_indices", None) is not None:
        yield from dataset
        return
    import pyarrow as pa

    try:  # the cache is an Arrow stream (as ``datasets`` writes it); anything else: iterate
        with pa.OSFile(files[0]) as handle:
            pa.ipc.open_stream(handle)
    except pa.ArrowInvalid:
        yield from dataset
        return
    for name in files:
        with pa.OSFile(name) as handle:
            for batch in pa.ipc.open_stream(handle):
                for row in batch.to_pylist():
                    yield features.decode_example(row)


if __name__ == "__main__":  # the child process of _roundtrip_in_child
    _serve(float(sys.argv[1]) if len(sys.argv) > 1 else _IDLE_SECONDS)
