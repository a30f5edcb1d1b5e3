"""Any input, as a user hits it: a clean per-line verdict or one error line (exit 2), never a traceback.

Deep nesting, numbers beyond a double's range, a byte order mark, truncated and corrupt gzip and
zstd files: through the reader and through the real CLI.
"""

from __future__ import annotations

import gzip
import subprocess
import sys
from pathlib import Path

import orjson
import pytest
import zstandard

from rollcraft import Quarantined, ReadOptions, ReadReport, Rollout, read_rollouts
from rollcraft._errors import InputError
from rollcraft._io import RawLine, iter_lines
from rollcraft.read._reader import parse_line
from tests.conftest import real_files

_MARK = b'"@@"'


def _record(**changes: object) -> dict[str, object]:
    record: dict[str, object] = {
        "responses_create_params": {
            "input": [{"role": "user", "content": "What is 2+2?"}],
            "tools": [{"type": "function", "name": "add", "parameters": {"type": "object"}}],
        },
        "response": {
            "output": [
                {"type": "function_call", "call_id": "c1", "name": "add", "arguments": '{"a":2}'},
                {"type": "function_call_output", "call_id": "c1", "output": "4"},
                {"type": "message", "role": "assistant", "content": [{"type": "output_text", "text": "4"}]},
            ]
        },
        "reward": 1.0,
    }
    record.update(changes)
    return record


def _line(record: dict[str, object], value: bytes) -> bytes:
    """``record`` as JSON with its ``"@@"`` replaced by ``value`` (raw JSON text)."""
    data = orjson.dumps(record)
    assert data.count(_MARK) == 1
    return data.replace(_MARK, value)


def _good() -> bytes:
    return orjson.dumps(_record())


def _run(*args: str | Path, stdin: bytes | None = None) -> subprocess.CompletedProcess[bytes]:
    return subprocess.run(
        [sys.executable, "-m", "rollcraft.cli", *map(str, args)],
        input=stdin,
        capture_output=True,
        timeout=120,
    )


def _one_error_line(result: subprocess.CompletedProcess[bytes], *words: str) -> str:
    """Exit 2 and one ``error:`` line that says ``words``, no traceback."""
    err = result.stderr.decode()
    assert result.returncode == 2, err
    assert "Traceback" not in err and "Traceback" not in result.stdout.decode()
    lines = [line for line in err.splitlines() if line.startswith("error:")]
    assert len(lines) == 1, err
    for word in words:
        assert word in lines[0], lines[0]
    return lines[0]


# --------------------------------------------------------------------------------------------
# Deep nesting: the line nested ~990-1023 deep crashed every command (RecursionError).


def test_a_line_nested_1000_deep_in_its_content_is_quarantined_by_the_cli(tmp_path: Path) -> None:
    deep = _line(
        _record(response={"output": [{"role": "assistant", "content": ["@@"]}]}), b"[" * 1000 + b"]" * 1000
    )
    path = tmp_path / "deep.jsonl"
    path.write_bytes(_good() + b"\n" + deep + b"\n")
    result = _run("inspect", path)
    assert result.returncode == 0, result.stderr.decode()
    assert b"Traceback" not in result.stderr
    assert "1 rollouts + 1 quarantined (too_deeply_nested 1)" in result.stdout.decode().replace("\n", " ")


def test_deep_tool_parameters_are_quarantined_not_a_crash_when_written(tmp_path: Path) -> None:
    # orjson writes 254 levels: the reader kept such a tool, and every SFT writer then failed.
    tools = [{"type": "function", "name": "f", "parameters": "@@"}]
    deep = _line(
        _record(responses_create_params={"input": "q", "tools": tools}), b'{"a":' * 300 + b"1" + b"}" * 300
    )
    path = tmp_path / "tools.jsonl"
    path.write_bytes(deep + b"\n" + _good() + b"\n")
    out = tmp_path / "sft.jsonl"
    result = _run("sft", path, "-o", out, "--format", "openai")
    assert result.returncode == 0, result.stderr.decode()
    assert b"Traceback" not in result.stderr
    assert len(out.read_bytes().splitlines()) == 1
    items = list(read_rollouts([str(path)]))
    assert isinstance(items[0], Quarantined) and items[0].reason == "too_deeply_nested"
    assert (items[0].source, items[0].line) == (str(path), 1)


def test_the_depth_rule_does_not_depend_on_the_python_stack() -> None:
    # Values turned into text are written as JSON by orjson (254 levels), not by Python's repr
    # (about 1000 levels minus the stack in use): the same verdict in any process or worker.
    line = _line(
        _record(response={"output": [{"role": "assistant", "content": ["@@"]}]}), b"[" * 300 + b"]" * 300
    )

    def nested(depth: int) -> Rollout | Quarantined:
        return parse_line(RawLine("x", 1, 0, line), ReadOptions()) if depth == 0 else nested(depth - 1)

    verdicts = {nested(depth).reason for depth in (0, 400, 800)}  # type: ignore[union-attr]
    assert verdicts == {"too_deeply_nested"}
    shallow = _line(_record(response={"output": [{"role": "assistant", "content": ["@@"]}]}), b"[[1, 2]]")
    rollout = parse_line(RawLine("x", 1, 0, shallow), ReadOptions())
    assert isinstance(rollout, Rollout) and rollout.conversation.completion[-1]["content"] == "[[1,2]]"


# --------------------------------------------------------------------------------------------
# Numbers beyond a double's range: the fast path skipped them, the general path refused the line.


@pytest.mark.parametrize("number", [b"1e400", b"-1E+400", b"1" + b"0" * 400])
def test_a_number_beyond_a_double_in_an_unused_field_keeps_the_rollout(number: bytes) -> None:
    raw = RawLine("big.jsonl", 1, 0, _line(_record(usage={"cost": "@@"}), number))
    fast = parse_line(raw, ReadOptions())
    general = parse_line(raw, ReadOptions(), fast=False)
    assert isinstance(fast, Rollout) and fast == general
    assert fast.record["usage"]["cost"] == number.decode()  # read as its text, not refused


def test_a_reward_beyond_a_double_is_a_bad_reward_on_both_paths() -> None:
    raw = RawLine("big.jsonl", 1, 0, _line(_record(reward="@@"), b"1e400"))
    fast = parse_line(raw, ReadOptions())
    assert isinstance(fast, Quarantined) and fast.reason == "bad_reward" and "1e400" in fast.detail
    assert parse_line(raw, ReadOptions(), fast=False) == fast


def test_what_orjson_refuses_besides_a_big_number_stays_not_json() -> None:
    for tail in (b'"\\ud800"', b"NaN"):  # a lone surrogate, a constant: Python's json reads both
        line = _line(_record(usage={"cost": 1, "x": "@@"}), b"[1e400, " + tail + b"]")
        raw = RawLine("bad.jsonl", 1, 0, line)
        verdict = parse_line(raw, ReadOptions())
        assert isinstance(verdict, Quarantined) and verdict.reason == "not_json", tail
        assert parse_line(raw, ReadOptions(), fast=False) == verdict


@pytest.mark.parametrize("depth", [300, 990, 1022, 1030])
def test_a_big_number_in_a_deep_unused_value_keeps_orjsons_depth_rule(depth: int) -> None:
    # After orjson refused the number, Python's json read the line: its recursion limit (about
    # 990 levels) is not orjson's 1024, and the paths disagreed.
    raw = RawLine("x", 1, 0, _line(_record(usage="@@"), b'{"k":' * depth + b"1e400" + b"}" * depth))
    verdict = parse_line(raw, ReadOptions(), fast=False)
    assert parse_line(raw, ReadOptions()) == verdict
    if depth + 1 > 1024:
        assert isinstance(verdict, Quarantined) and verdict.reason == "too_deeply_nested"
    else:
        assert isinstance(verdict, Rollout)


# --------------------------------------------------------------------------------------------
# Compressed inputs: truncated and corrupt files are errors that name the file.


def _data() -> bytes:
    lines = [line for path in real_files()[:3] for line in path.read_bytes().splitlines() if line.strip()]
    return b"\n".join(lines[:12]) + b"\n"


def _frames(data: bytes) -> list[bytes]:
    """Two frames (the second streamed: no content size, several blocks) with a skippable frame between."""
    first = zstandard.ZstdCompressor(write_checksum=True).compress(data)
    streamed = zstandard.ZstdCompressor(level=1, write_checksum=True, write_content_size=False).compressobj()
    second = streamed.compress(data * 2) + streamed.flush()
    skippable = b"\x5e\x2a\x4d\x18" + (5).to_bytes(4, "little") + b"hello"
    return [first, skippable, second]


def _zstd(data: bytes) -> bytes:
    return b"".join(_frames(data))


def test_a_complete_zstd_stream_of_frames_reads_every_line(tmp_path: Path) -> None:
    data = _data()
    path = tmp_path / "all.jsonl.zst"
    path.write_bytes(_zstd(data))
    assert [raw.data for raw in iter_lines([str(path)])] == (data * 3).splitlines()


def test_a_zstd_file_cut_anywhere_is_an_error_that_says_truncated(tmp_path: Path) -> None:
    data = b'{"a": 1}\n' * 30000  # several blocks in the streamed frame
    frames = _frames(data)
    whole = b"".join(frames)
    path = tmp_path / "cut.jsonl.zst"
    # A cut between two frames leaves a complete stream of fewer frames: nothing tells it apart.
    ends = {len(frames[0]), len(frames[0]) + len(frames[1])}
    for cut in sorted(set(range(4, len(whole))) - ends):
        path.write_bytes(whole[:cut])
        with pytest.raises(InputError, match="truncated"):
            list(iter_lines([str(path)]))


def test_a_truncated_zstd_file_fails_the_command_and_leaves_no_output(tmp_path: Path) -> None:
    whole = zstandard.ZstdCompressor().compress(_data())
    path = tmp_path / "cut.jsonl.zst"
    path.write_bytes(whole[: len(whole) * 2 // 3])
    out = tmp_path / "sft.jsonl"
    _one_error_line(_run("sft", path, "-o", out), str(path), "truncated")
    assert not out.exists()
    _one_error_line(_run("inspect", "-", stdin=path.read_bytes()), "<stdin>", "truncated")


def _gzip_bad_block(data: bytes) -> bytes:
    body = bytearray(gzip.compress(data, mtime=0))
    body[10] |= 0b110  # the first deflate block's type: 3, reserved (zlib.error, not an OSError)
    return bytes(body)


def _gzip_flipped(data: bytes) -> bytes:
    body = bytearray(gzip.compress(data, mtime=0))
    middle = len(body) // 2
    body[middle : middle + 16] = bytes(b ^ 0xFF for b in body[middle : middle + 16])
    return bytes(body)


@pytest.mark.parametrize("corrupt", [_gzip_bad_block, _gzip_flipped], ids=["bad-block", "flipped-middle"])
def test_a_corrupt_gzip_body_is_one_error_line_naming_the_file(tmp_path: Path, corrupt: object) -> None:
    path = tmp_path / "bad.jsonl.gz"
    path.write_bytes(corrupt(_data()))  # type: ignore[operator]
    with pytest.raises(InputError, match=r"bad\.jsonl\.gz"):
        list(iter_lines([str(path)]))
    out = tmp_path / "sft.jsonl"
    _one_error_line(_run("sft", path, "-o", out), str(path))
    assert not out.exists()


# --------------------------------------------------------------------------------------------
# A UTF-8 byte order mark before the first record.


@pytest.mark.parametrize("kind", ["plain", "gzip", "zstd"])
def test_a_byte_order_mark_before_the_first_record_is_no_reason_to_quarantine_it(
    tmp_path: Path, kind: str
) -> None:
    data = _data()
    packed = {"plain": bytes, "gzip": gzip.compress, "zstd": zstandard.ZstdCompressor().compress}[kind]
    plain, marked = tmp_path / "plain.jsonl", tmp_path / f"bom.{kind}.jsonl"
    plain.write_bytes(data)
    marked.write_bytes(packed(b"\xef\xbb\xbf" + data))
    report = ReadReport()
    got = list(read_rollouts([str(marked)], report=report))
    want = list(read_rollouts([str(plain)]))
    assert report.quarantined == {} and report.rollouts == len(want)
    assert [r.rollout_id for r in got] == [r.rollout_id for r in want]  # type: ignore[union-attr]
    assert got[0].offset == 3 and got[0].raw == want[0].raw  # line 1 starts after the mark


def test_a_byte_order_mark_on_stdin_and_only_on_line_one(tmp_path: Path) -> None:
    data = _data()
    first, second = data.splitlines()[:2]
    result = _run("inspect", "-", stdin=b"\xef\xbb\xbf" + first + b"\n\xef\xbb\xbf" + second + b"\n")
    text = result.stdout.decode().replace("\n", " ")
    assert result.returncode == 0, result.stderr.decode()
    assert "1 rollouts + 1 quarantined (not_json 1)" in text  # a mark inside the stream is no BOM


@pytest.mark.parametrize("compress", [None, "gzip"])
def test_reading_only_some_locators_gives_those_items_as_a_full_read_does(
    tmp_path: Path, compress: str | None
) -> None:
    """``read_rollouts(only=...)``: the lines at the locators, numbered and parsed as a full read
    gives them (a BOM, CRLF endings, an empty line, a line over 4 MiB; a compressed file too)."""
    from rollcraft._compact import LocatorSet

    lines = [line for path in real_files()[:6] for line in path.read_bytes().splitlines()]
    lines[3] = lines[3] + b" " * (5 << 20)  # longer than the first reads and the count blocks
    data = b"\xef\xbb\xbf" + b"\r\n".join(lines[:10]) + b"\n\n" + b"\n".join(lines[10:])
    path = tmp_path / "mixed.jsonl"
    if compress == "gzip":
        path = tmp_path / "mixed.jsonl.gz"
        data = gzip.compress(data)
    path.write_bytes(data)
    every = list(read_rollouts([str(path)]))
    picked = [item for i, item in enumerate(every) if i % 3 == 0 or i in (3, 4, len(every) - 1)]
    only = LocatorSet((item.source, item.offset) for item in picked)
    assert list(read_rollouts([str(path)], only=only)) == picked
    numbered = LocatorSet(((i.source, i.offset) for i in picked), lines=(i.line for i in picked))
    assert list(read_rollouts([str(path)], only=numbered)) == picked  # by offset, numbers given
    assert list(read_rollouts([str(path)], only=LocatorSet())) == []
