"""The ``datasets`` round trip in a child process finds what it finds in this one: the same
findings in the same order, for clean files, changed rows and files it cannot load; one child
checks every file, and a child that ended is replaced."""

from __future__ import annotations

import importlib
import json
import sys
import time
from pathlib import Path

import pytest

from rollcraft.validate import _codes
from tests.conftest import FIXTURES

pytest.importorskip("datasets")
#: The module (``rollcraft.validate`` exports its function of the same name).
rt = importlib.import_module("rollcraft.validate._roundtrip")
FIX = FIXTURES / "validate"


def _files(tmp_path: Path) -> list[Path]:
    """Clean files, a row whose content becomes a list, a file pyarrow refuses, long floats."""
    sft = [json.loads(line) for line in (FIX / "sft_trl_clean.jsonl").read_text().splitlines()]
    changed = [dict(row) for row in sft]
    changed[2] = json.loads(json.dumps(sft[2]))
    changed[2]["messages"][1]["content"] = [{"type": "text", "text": "a list content"}]
    refused = [json.dumps(row) for row in sft]
    refused[3] = refused[3].replace('"messages": ', '"messages": 1, "messages": ')
    floats = [dict(row, reward=0.123456789012345678) for row in sft]
    out = [FIX / "sft_trl_clean.jsonl", FIX / "dpo_trl_clean.jsonl"]
    for name, rows in (("changed", changed), ("refused", refused), ("floats", floats)):
        path = tmp_path / f"{name}.jsonl"
        path.write_text("".join((r if isinstance(r, str) else json.dumps(r)) + "\n" for r in rows))
        out.append(path)
    return out


def _findings(sink: _codes._Findings) -> list[tuple[str, str, int | None]]:
    return [(f.code, f.message, f.row) for f in sink.items]


def test_the_child_finds_what_this_process_finds(tmp_path: Path) -> None:
    found_any = False
    for path in _files(tmp_path):
        here, there = _codes._Findings(100), _codes._Findings(100)
        rt._roundtrip_here(str(path), here)
        rt._roundtrip_in_child(str(path), there)
        assert _findings(there) == _findings(here), path.name
        assert there.counts == here.counts
        found_any = found_any or bool(here.items)
    assert found_any  # the changed and refused files have findings


def test_one_child_checks_every_file_and_an_ended_one_is_replaced(tmp_path: Path) -> None:
    path = FIX / "sft_trl_clean.jsonl"
    rt._roundtrip_in_child(str(path), _codes._Findings(100))
    child = rt._child()
    rt._roundtrip_in_child(str(path), _codes._Findings(100))
    assert rt._child() is child  # started once
    child.kill()
    child.wait()
    sink = _codes._Findings(100)
    rt._roundtrip_in_child(str(path), sink)  # a new child
    assert rt._child() is not child and rt._child().poll() is None
    assert sink.items == []


def test_an_idle_child_ends_and_the_next_file_starts_another(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(rt, "_IDLE_SECONDS", 1.0)
    path = FIX / "sft_trl_clean.jsonl"
    for child in rt._CHILDREN:
        child.kill()
    rt._roundtrip_in_child(str(path), _codes._Findings(100))
    child = rt._child()
    assert child.wait(timeout=30) == rt._IDLE  # ended by itself, its memory given back
    sink = _codes._Findings(100)
    rt._roundtrip_in_child(str(path), sink)
    assert rt._child() is not child and sink.items == []


def test_a_child_started_early_waits_for_its_first_file(monkeypatch: pytest.MonkeyPatch) -> None:
    """What a pipeline with validation starts first: it imports ``datasets`` while the run
    reads, waits for its first file past the idle limit, then ends when idle as any child."""
    monkeypatch.setattr(rt, "_IDLE_SECONDS", 0.5)
    for old in rt._CHILDREN:
        old.kill()
        old.wait()
    monkeypatch.delitem(sys.modules, "datasets")  # as in a run, which has not imported it
    rt.prestart()
    child = rt._child()
    time.sleep(2.0)
    assert child.poll() is None  # past the idle limit, still waiting for its first file
    sink = _codes._Findings(100)
    rt._roundtrip_in_child(str(FIX / "sft_trl_clean.jsonl"), sink)
    assert rt._child() is child and sink.items == []
    assert child.wait(timeout=30) == rt._IDLE
