"""The inputs' sha256 for the manifest: hashed alongside the run, and cached between runs."""

from __future__ import annotations

import contextlib
import os
from pathlib import Path
from typing import Any, Literal

import orjson

from rollcraft._digest import sha256_file
from rollcraft._io import atomic_writer

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
