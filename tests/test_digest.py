"""DigestWriter: the bytes and sha256 of what was written, in the calling thread or in its own."""

from __future__ import annotations

import contextlib
import hashlib
import os
from pathlib import Path

import pytest

from rollcraft._digest import DigestWriter
from rollcraft._errors import OutputError


@pytest.mark.parametrize("background", [False, True])
def test_writes_the_bytes_and_their_sha256(tmp_path: Path, background: bool) -> None:
    pieces = [os.urandom(n) for n in (0, 1, 5000, 1 << 20, 3 << 19, 17)] * 5
    path = tmp_path / "out.bin"
    with DigestWriter(path, background=background) as writer:
        for piece in pieces:
            assert writer.write(piece) == len(piece)
    data = b"".join(pieces)
    assert path.read_bytes() == data
    assert writer.size == len(data) and writer.sha256 == hashlib.sha256(data).hexdigest()


@pytest.mark.skipif(not Path("/dev/full").exists(), reason="needs /dev/full")
@pytest.mark.parametrize("background", [False, True])
def test_a_full_disk_is_raised_not_lost(background: bool) -> None:
    writer = DigestWriter("/dev/full", background=background)
    with pytest.raises(OutputError, match=r"^/dev/full: cannot write \(No space left on device\)$"):
        for _ in range(8):
            writer.write(b"x" * (1 << 20))
        writer.close()
    with contextlib.suppress(OutputError):
        writer.close()  # stops the thread and closes the file even after the error
    writer.close()  # then closing again does nothing
    assert writer._file.closed
    assert writer._thread is None or not writer._thread.is_alive()


@pytest.mark.parametrize("background", [False, True])
def test_tell_is_where_the_next_write_lands(tmp_path: Path, background: bool) -> None:
    path = tmp_path / "rows.jsonl"
    starts = []
    with DigestWriter(path, background=background) as writer:
        for n in range(3000):
            starts.append(writer.tell())
            writer.write(b"%d:" % n + b"x" * (n % 5000) + b"\n")
    data = path.read_bytes()
    for n, start in enumerate(starts):
        assert data[start:].startswith(b"%d:" % n)
