"""Reading JSONL inputs (files, folders, globs, stdin; plain, gzip, zstd) and writing outputs atomically."""

from __future__ import annotations

import contextlib
import errno
import glob
import gzip
import io
import os
import platform
import re
import shutil
import stat
import sys
import tempfile
import zlib
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path
from typing import IO, Any, NamedTuple, cast

from rollcraft._errors import InputError, OutputError

__all__ = [
    "RawLine",
    "atomic_writer",
    "expand_inputs",
    "is_compressed",
    "is_plain_file",
    "iter_lines",
    "line_at",
    "lines_at",
    "open_input",
    "skip_bom",
]

_JSONL_SUFFIXES = (".jsonl", ".jsonl.gz", ".jsonl.zst", ".jsonl.zstd", ".ndjson", ".ndjson.gz", ".ndjson.zst")


class RawLine(NamedTuple):
    """One input line: where it came from (file, 1-based line, byte offset) and its bytes, line ending cut.

    A named tuple: one is made per input line, and a frozen dataclass's ``__init__`` costs 4x more.
    """

    source: str
    line: int
    offset: int
    data: bytes


def _is_jsonl(path: Path) -> bool:
    name = path.name.lower()
    return ".jsonl" in name or name.endswith(_JSONL_SUFFIXES)


def expand_inputs(paths: Iterable[str | os.PathLike[str]]) -> list[str]:
    """Turn files, folders (every ``*.jsonl*`` inside, recursively) and globs into a sorted file list.

    ``-`` stands for standard input and is kept as is. A path that matches nothing is an
    :class:`InputError`.

    >>> expand_inputs(["-"])
    ['-']
    """
    found: list[str] = []
    for item in paths:
        text = os.fspath(item)
        if text == "-":
            found.append("-")
            continue
        found.extend(_expand_one(text))
    if not found:
        raise InputError("no input files given")
    return found


def _expand_one(text: str) -> list[str]:
    path = Path(text)
    if path.is_dir():
        files = sorted(str(p) for p in path.rglob("*") if p.is_file() and _is_jsonl(p))
        if not files:
            raise InputError("folder holds no *.jsonl* files", path=text)
        return files
    if path.is_file():
        return [text]
    if glob.has_magic(text):
        matches = sorted(p for p in glob.glob(text, recursive=True) if Path(p).is_file())
        if not matches:
            raise InputError("glob matches no files", path=text)
        return matches
    raise InputError("no such file or folder", path=text)


_GZIP = b"\x1f\x8b"
_ZSTD = b"\x28\xb5\x2f\xfd"


def is_compressed(head: bytes) -> bool:
    """Whether a file's first bytes are gzip's or zstd's magic number."""
    return head[:2] == _GZIP or head[:4] == _ZSTD


def is_plain_file(source: str) -> bool:
    """A regular, uncompressed file (one that can be read by byte ranges and offsets)."""
    if source in ("-", "<stdin>") or not os.path.isfile(source):
        return False
    with open(source, "rb") as handle:
        return not is_compressed(handle.read(4))


def open_input(source: str) -> IO[bytes]:
    """Open a file (or ``-``) for binary reading, decompressing ``.gz`` and ``.zst`` by magic bytes."""
    if source == "-":
        raw: IO[bytes] = sys.stdin.buffer
    else:
        try:
            raw = open(source, "rb")
        except OSError as exc:
            raise InputError(exc.strerror or str(exc), path=source) from None
    return _decompressing(raw, source)


def _decompressing(raw: IO[bytes], source: str) -> IO[bytes]:
    buffered = raw if isinstance(raw, io.BufferedReader) else io.BufferedReader(cast(io.RawIOBase, raw))
    head = buffered.peek(4)[:4]
    if head[:2] == _GZIP:
        gz = gzip.GzipFile(fileobj=buffered, mode="rb")
        return io.BufferedReader(cast(io.RawIOBase, gz), buffer_size=1 << 20)
    if head == _ZSTD:
        import zstandard

        frames = cast(IO[bytes], _ZstdFrames(buffered))
        reader = zstandard.ZstdDecompressor().stream_reader(frames, read_across_frames=True)
        return io.BufferedReader(cast(io.RawIOBase, reader), buffer_size=1 << 20)
    return buffered


_ZSTD_SKIPPABLE = b"\x2a\x4d\x18"  # bytes 1-3 of a skippable frame's magic number (byte 0: 0x5?)
_TRUNCATED = "the file ends in the middle of a zstd frame: it is truncated"


class _ZstdFrames(io.RawIOBase):
    """A zstd stream's compressed bytes on their way to the decompressor, whose frame structure
    (headers and block sizes, not the blocks) it follows, to raise :class:`EOFError` when the
    stream ends inside a frame: python-zstandard's stream reader ends a truncated stream
    without a word, as if it were complete. A few header reads per 128 KiB block.
    """

    def __init__(self, raw: IO[bytes]) -> None:
        super().__init__()
        self._raw = raw
        self._state = "magic"  # the header being collected: magic, descriptor, block, skippable
        self._head = b""
        self._want = 4
        self._skip = 0  # bytes to pass before the next header
        self._checksum = False
        self._lost = False  # not a zstd frame: the decompressor says what is wrong

    def readable(self) -> bool:
        return True

    def read(self, size: int = -1) -> bytes:
        data = self._raw.read(size)
        if data:
            if not self._lost:
                self._walk(data)
        elif not self._lost and (self._state != "magic" or self._head or self._skip):
            raise EOFError(_TRUNCATED)
        return data

    def readinto(self, buffer: Any) -> int:
        data = self.read(len(buffer))
        buffer[: len(data)] = data
        return len(data)

    def _walk(self, data: bytes) -> None:
        at, end = 0, len(data)
        while at < end and not self._lost:
            if self._skip:
                step = min(self._skip, end - at)
                self._skip -= step
                at += step
                continue
            step = min(self._want - len(self._head), end - at)
            self._head += data[at : at + step]
            at += step
            if len(self._head) == self._want:
                head, self._head = self._head, b""
                self._header(head)

    def _header(self, head: bytes) -> None:
        state = self._state
        if state == "magic":
            if head == _ZSTD:
                self._state, self._want = "descriptor", 1
            elif head[0] & 0xF0 == 0x50 and head[1:] == _ZSTD_SKIPPABLE:
                self._state = "skippable"
            else:
                self._lost = True
        elif state == "descriptor":
            flags = head[0]
            single = flags >> 5 & 1
            self._checksum = bool(flags >> 2 & 1)
            self._skip = (1 - single) + (0, 1, 2, 4)[flags & 3] + (single, 2, 4, 8)[flags >> 6]
            self._state, self._want = "block", 3
        elif state == "block":
            header = int.from_bytes(head, "little")
            kind, size = header >> 1 & 3, header >> 3
            if kind == 3:  # reserved: corrupt, as the decompressor will say
                self._lost = True
            last = header & 1
            self._skip = (1 if kind == 1 else size) + (4 if last and self._checksum else 0)
            if last:
                self._state, self._want = "magic", 4
        else:  # the size of a skippable frame
            self._skip = int.from_bytes(head, "little")
            self._state, self._want = "magic", 4


def iter_lines(sources: Sequence[str], *, max_line_bytes: int | None = None) -> Iterator[RawLine]:
    """Yield every line of every source in order, with its file, 1-based number and byte offset.

    Offsets are in the decompressed stream. A line longer than ``max_line_bytes`` is yielded
    cut to that length plus one byte, so the reader can quarantine it without holding it all.
    """
    for source in sources:
        yield from _lines_of(source, max_line_bytes)


def _lines_of(source: str, max_line_bytes: int | None) -> Iterator[RawLine]:
    name = "<stdin>" if source == "-" else source
    stream = open_input(source)
    try:
        offset = skip_bom(stream, name)
        for number, line in enumerate(_read_lines(stream, name, max_line_bytes), start=1):
            yield RawLine(name, number, offset, line.rstrip(b"\r\n"))
            offset += len(line)
    finally:
        if source != "-":
            stream.close()


def _read_lines(stream: IO[bytes], name: str, max_line_bytes: int | None) -> Iterator[bytes]:
    with _reading(name):
        if max_line_bytes is None:
            yield from stream
            return
        while True:
            line = stream.readline(max_line_bytes + 1)
            if not line:
                return
            if len(line) > max_line_bytes and not line.endswith(b"\n"):
                rest = _skip_rest_of_line(stream)
                yield line + b"\n"  # marker: over the limit
                del rest
                continue
            yield line


@contextlib.contextmanager
def _reading(name: str) -> Iterator[None]:
    """Reading or decompressing ``name`` failed: one :class:`InputError` naming it, no traceback."""
    try:
        yield
    except (OSError, EOFError) as exc:  # EOFError: a truncated gzip or zstd stream
        raise InputError(f"cannot read ({exc})", path=name) from None
    except zlib.error as exc:  # a gzip body whose bytes were changed
        raise InputError(f"cannot decompress ({exc})", path=name) from None
    except Exception as exc:  # zstd errors have their own type
        if type(exc).__module__.startswith("zstandard"):
            raise InputError(f"cannot decompress ({exc})", path=name) from None
        raise


#: The first read of :func:`line_at`: the median SFT row of the benchmark is 4 KiB, the 90th
#: percentile 20 KiB; a larger read copies more than the line needs, most of the time.
_FIRST_READ = 1 << 14


def line_at(fd: int, offset: int) -> bytes:
    """The line starting at ``offset``, without its newline: positioned reads of growing size.

    ``seek`` + ``readline`` goes through the 8 KiB buffer and costs more than the line's decode.
    """
    size = _FIRST_READ
    chunk = os.pread(fd, size, offset)
    end = chunk.find(b"\n")
    if end >= 0:
        return chunk[:end]
    parts = [chunk]
    while len(chunk) == size:
        offset += size
        size = min(size * 2, 1 << 24)
        chunk = os.pread(fd, size, offset)
        end = chunk.find(b"\n")
        if end >= 0:
            parts.append(chunk[:end])
            break
        parts.append(chunk)
    return b"".join(parts)


def lines_at(source: str, offsets: Sequence[int], numbers: Sequence[int] | None = None) -> Iterator[RawLine]:
    """The lines of the plain file ``source`` that start at ``offsets`` (sorted), numbered as
    :func:`iter_lines` numbers them: ``numbers`` where given, else the bytes between are read in
    large blocks and their newlines counted, not cut into lines (for a few lines of a large
    file, the one pass over its bytes costs a tenth of cutting every line)."""
    with _reading(source), open(source, "rb") as handle:
        fd = handle.fileno()
        number, counted = 1, 0
        for index, offset in enumerate(offsets):
            if numbers is not None:
                yield RawLine(source, numbers[index], offset, line_at(fd, offset).rstrip(b"\r"))
                continue
            while counted < offset:
                block = os.pread(fd, min(_COUNT_BLOCK, offset - counted), counted)
                if not block:
                    break
                number += block.count(b"\n")
                counted += len(block)
            line = line_at(fd, offset)
            yield RawLine(source, number, offset, line.rstrip(b"\r"))


_COUNT_BLOCK = 1 << 22


_BOM = b"\xef\xbb\xbf"


def skip_bom(stream: IO[bytes], name: str) -> int:
    """Pass a UTF-8 byte order mark at the start of ``stream`` (what some Windows tools write
    first); returns its length, 0 or 3: line 1's offset. Once per file, not per line."""
    with _reading(name):  # the first read of a compressed stream: a header that is no header, say
        if not isinstance(stream, io.BufferedReader) or stream.peek(3)[:3] != _BOM:
            return 0
        return len(stream.read(3))


def _skip_rest_of_line(stream: IO[bytes]) -> int:
    skipped = 0
    while True:
        chunk = stream.readline(1 << 20)
        skipped += len(chunk)
        if not chunk or chunk.endswith(b"\n"):
            return skipped


@contextlib.contextmanager
def atomic_writer(path: str | os.PathLike[str], *, overwrite: bool = True) -> Iterator[IO[bytes]]:
    """Write a file through a temporary sibling that replaces ``path`` only on success.

    An exception (or a signal that ends the process) leaves no partial ``path`` behind; the
    temporary file is removed. ``-`` writes to standard output (and sends the reports to
    standard error). A FIFO or a device (``/dev/null``, ``/dev/stdout``) is opened and written
    as it is, never replaced by a regular file; a symbolic link is written through. The file
    gets the permissions of the user's umask (0644 under umask 022).
    """
    if os.fspath(path) == "-":
        from rollcraft._console import reports_to_stderr

        reports_to_stderr()
        yield sys.stdout.buffer
        sys.stdout.buffer.flush()
        return
    target = check_output_path(path)
    if is_stream(target):
        yield from _write_in_place(target)
        return
    if not overwrite and target.exists():
        raise OutputError(f"{target}: exists; refusing to overwrite it")
    yield from _write_through_temp(target)


def _write_in_place(target: Path) -> Iterator[IO[bytes]]:
    try:
        handle = open(target, "ab")  # "a": after whatever the shell wrote there already
    except OSError as exc:
        raise write_failed(target, exc) from None
    try:
        with handle:
            yield handle
    except OSError as exc:
        if exc.errno in NO_ROOM or exc.errno == errno.EPIPE:
            raise write_failed(target, exc) from None
        raise


def _write_through_temp(target: Path) -> Iterator[IO[bytes]]:
    folder = target.parent
    try:
        folder.mkdir(parents=True, exist_ok=True)
        sweep_stale(folder, ".tmp")
        fd, tmp = tempfile.mkstemp(prefix=owned_prefix(target.name), suffix=".tmp", dir=folder)
    except OSError as exc:
        raise write_failed(target, exc) from None
    _register_temp(tmp)
    try:
        try:
            os.fchmod(fd, 0o666 & ~current_umask())
            with os.fdopen(fd, "wb", buffering=1 << 20) as handle:
                yield handle
        except OSError as exc:
            if exc.errno in NO_ROOM:  # the disk is full, or read-only: not a bug
                raise write_failed(target, exc) from None
            raise
        os.replace(tmp, target)
    finally:
        _forget_temp(tmp)
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)


def check_output_path(path: str | os.PathLike[str]) -> Path:
    """The file an output named ``path`` is written to: a symbolic link's target; a folder is an error."""
    target = Path(path)
    if target.is_dir():
        raise OutputError(f"{target}: is a folder; give the name of a file to write")
    if target.is_symlink() and not _is_special(target):
        target = Path(os.path.realpath(target))
    return target


def is_stream(path: str | os.PathLike[str]) -> bool:
    """Whether ``path`` is written in place: a FIFO, a device, a socket, or a ``/dev``, ``/proc`` name."""
    if _is_special(Path(path)):
        return True
    try:
        mode = os.stat(path).st_mode
    except OSError:
        return False
    return not stat.S_ISREG(mode) and not stat.S_ISDIR(mode)


def _is_special(path: Path) -> bool:
    # /dev/stdout is a link to /proc/self/fd/1, which may be a regular file opened by the shell:
    # renaming over either would replace the link, or lose the output.
    top = path.parts[1:2] if path.is_absolute() else ()
    return top == ("proc",) or (top == ("dev",) and path.is_symlink())


def refuse_overwriting_inputs(
    inputs: Iterable[str | os.PathLike[str]], outputs: Iterable[str | os.PathLike[str] | None]
) -> None:
    """Raise :class:`OutputError` if an output (or a folder given as one) is one of the inputs,
    or two outputs are one file (the second would replace the first).

    ``inputs`` are as given on the command line (files, folders, globs, ``-``); an output is
    the same file as an input when both names reach one inode (links included). Outputs that
    are ``-``, absent, FIFOs or devices are never inputs' files, and may be given twice.
    """
    targets = [Path(p) for p in outputs if p is not None and os.fspath(p) != "-"]
    named: set[str] = set()
    for target in targets:
        check_output_path(target)
        real = os.path.realpath(target)
        if real in named and not is_stream(target):
            raise OutputError(f"{target}: given as two of the outputs; each needs a file of its own")
        named.add(real)
    existing = [t for t in targets if t.is_file() and not is_stream(t)]
    if not existing:
        return
    for source in expand_inputs(inputs):
        for target in existing:
            if source != "-" and os.path.isfile(source) and os.path.samefile(source, target):
                raise OutputError(f"{target}: is also an input; refusing to overwrite it")


#: ``errno`` values that say an output cannot be written: full, over quota, too big, read-only.
NO_ROOM = frozenset({errno.ENOSPC, errno.EDQUOT, errno.EFBIG, errno.EROFS})


def write_failed(path: str | os.PathLike[str], exc: OSError) -> OutputError:
    """The error to raise when writing ``path`` failed with ``exc``."""
    return OutputError(f"{os.fspath(path)}: cannot write ({exc.strerror or exc})")


#: The host name up to its first dot, made safe: part of the names of rollcraft's temporaries.
HOST = re.sub(r"[^A-Za-z0-9_-]", "_", platform.node().split(".")[0]) or "host"

#: rollcraft's own temporaries: ``.NAME.HOST-PID.RANDOM.tmp`` (files) and ``.partial`` (folders).
_OWNED = re.compile(r"^\..+\.(?P<host>[A-Za-z0-9_-]+)-(?P<pid>\d+)\.[^.]+(?P<suffix>\.tmp|\.partial)$")


def owned_prefix(name: str) -> str:
    """The start of the name of a temporary for ``name`` made by this process: ``.NAME.HOST-PID.``."""
    return f".{name}.{HOST}-{os.getpid()}."


def sweep_stale(folder: Path, suffix: str) -> None:
    """Remove rollcraft's temporaries (``suffix`` ``.tmp`` or ``.partial``) in ``folder`` left by
    processes of this host that are gone (killed with SIGKILL, or the machine lost power).

    Those of live processes, of other hosts sharing the folder, and names rollcraft did not make
    are left alone.
    """
    try:
        names = [e.name for e in os.scandir(folder) if e.name.startswith(".") and e.name.endswith(suffix)]
    except OSError:
        return
    for name in names:
        match = _OWNED.match(name)
        if match is None or match["suffix"] != suffix or match["host"] != HOST or alive(int(match["pid"])):
            continue
        path = folder / name
        with contextlib.suppress(OSError):
            if path.is_dir() and not path.is_symlink():
                shutil.rmtree(path)
            else:
                path.unlink()


def alive(pid: int) -> bool:
    """Whether a process ``pid`` runs on this host (of this user or another); a zombie (killed,
    not yet reaped by its parent) does not."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # a process of another user has that pid
        pass
    with contextlib.suppress(OSError, IndexError):
        with open(f"/proc/{pid}/stat", "rb") as stat_file:  # Linux: "pid (name) STATE ..."
            return stat_file.read().rsplit(b")", 1)[1].split()[0] != b"Z"
    return True


def current_umask() -> int:
    """The process's umask, read without changing it where Linux tells it (else set and restored)."""
    with contextlib.suppress(OSError, ValueError):
        with open("/proc/self/status", encoding="ascii") as status:
            for line in status:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


_LIVE_TEMPS: set[str] = set()


def _register_temp(path: str) -> None:
    _LIVE_TEMPS.add(path)


def _forget_temp(path: str) -> None:
    _LIVE_TEMPS.discard(path)


def remove_live_temps() -> None:
    """Delete temporary files of writes still in progress (called on SIGTERM)."""
    for path in list(_LIVE_TEMPS):
        with contextlib.suppress(OSError):
            os.unlink(path)
    _LIVE_TEMPS.clear()
