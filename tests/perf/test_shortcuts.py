"""Every shortcut kept only for speed gives the same bytes as its plain path, on the real files.

Each is switched off as ``benchmarks/shortcuts.py`` switches it off to measure what it buys
(:func:`benchmarks.shortcuts.switch_off`), so the path measured is the path tested. The tests
of the others live beside their modules: the fast decoder against the general reader line by
line (``tests/read/test_fast.py``), pairs spliced from SFT rows against pairs encoded again and
the packed candidate table against ``plan_pairs`` over lists, spilled or not
(``tests/formats/test_formats_dpo.py``), spilled candidates through the engines
(``tests/pipeline/test_engines.py``), the side rows against the input lines
(``tests/pipeline/test_pipeline.py``), the compact sets against ``set`` and ``dict``
(``tests/test_compact.py``), the digest writer with and without its thread
(``tests/test_digest.py``).
"""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from benchmarks.shortcuts import switch_off
from rollcraft.engines import local
from rollcraft.formats import dpo
from rollcraft.pipeline import run_pipeline
from tests.conftest import REAL_DIR, ROOT

EXAMPLES = ROOT / "examples" / "rollouts"
SFT = "sft: {format: trl, success_only: false}\n"
DPO = "dpo: {format: trl, pairing: all}\n"
BODY = f"""
inputs: ["{REAL_DIR}", "{EXAMPLES}"]
output_dir: out
filters: {{max_turns: 400}}
validate: {{enabled: false}}
write_filtered: true
write_rejects: true
"""


def _outputs(tmp_path: Path, name: str, sections: str, workers: int | None = None) -> dict[str, bytes]:
    """Every data file a run writes (the manifest, which names the run, left out)."""
    config = tmp_path / f"{name}.yaml"
    config.write_text(BODY + sections)
    folder = run_pipeline(config, version=name, workers=workers).folder
    found = {p.name: p.read_bytes() for p in sorted(folder.iterdir()) if p.name != "manifest.json"}
    assert found and all(found.values()), sorted(found)
    return found


def _counted(monkeypatch: pytest.MonkeyPatch, module: object, name: str) -> list[object]:
    """Wrap ``module.name`` so each call's result is recorded (the real function does the work)."""
    original: Callable[..., Any] = getattr(module, name)
    calls: list[object] = []

    def counting(*args: Any, **kwargs: Any) -> Any:
        result = original(*args, **kwargs)
        calls.append(result)
        return result

    monkeypatch.setattr(module, name, counting)
    return calls


def test_the_fast_decoder_writes_what_the_general_reader_writes(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from rollcraft.read import _reader as _read

    with monkeypatch.context() as patch:
        taken = _counted(patch, _read, "_fast_rollout")
        fast = _outputs(tmp_path, "fast", SFT + DPO)
    assert sum(rollout is not None for rollout in taken) > 400  # the shortcut ran
    switch_off("fast", "off", monkeypatch.setattr)
    taken = _counted(monkeypatch, _read, "_fast_rollout")
    assert _outputs(tmp_path, "general", SFT + DPO) == fast and not taken


@pytest.mark.parametrize("sections", [SFT + DPO, DPO], ids=["sft-and-dpo", "dpo-only"])
@pytest.mark.parametrize("plain", ["rows", "plain"])
def test_spliced_pairs_are_the_pairs_read_back_and_encoded(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, sections: str, plain: str
) -> None:
    """Pairs spliced from the bytes of SFT rows and side rows (``.dpo-sides.jsonl``) equal the
    rows decoded (``rows``) and the input lines read back and normalized again (``plain``)."""
    with monkeypatch.context() as patch:
        spliced = _counted(patch, dpo, "_spliced")
        on = _outputs(tmp_path, "spliced", sections)
    assert sum(line is not None for line in spliced) > 10  # the shortcut ran
    switch_off("splice", plain, monkeypatch.setattr)
    assert _outputs(tmp_path, plain, sections) == on


def test_pairs_encoded_by_forked_workers_are_the_pairs_encoded_in_the_parent(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """DPO only with ``--workers 2``: no rows to splice, so the pairs are read back by a pool."""
    monkeypatch.setattr(local, "_MIN_SHARD", 64 << 10)
    with monkeypatch.context() as patch:
        forked = _counted(patch, local, "_parallel_pairs")
        on = _outputs(tmp_path, "forked", DPO, workers=2)
    assert forked  # the pool ran
    switch_off("pairs", "off", monkeypatch.setattr)
    assert _outputs(tmp_path, "parent", DPO, workers=2) == on


def test_lines_found_clean_once_give_the_same_bytes_searched_again(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Drop-mode redaction (the real files' emails drop their rollouts) with balance: the main pass
    skips the lines balance's first pass found clean, or searches them all again."""
    sections = "redact: {on_secret: drop}\nbalance: {max_per_category: 20, by: task_type}\n" + SFT + DPO
    with monkeypatch.context() as patch:
        balanced = _counted(patch, local, "_balanced")
        on = _outputs(tmp_path, "skipped", sections)
    plan = balanced[0][0]  # type: ignore[index]
    assert plan.clean_lines is not None and len(plan.clean_lines) > 100
    switch_off("clean", "off", monkeypatch.setattr)
    assert _outputs(tmp_path, "searched", sections) == on


def test_a_main_pass_given_only_the_chosen_lines_writes_and_counts_what_a_full_one_does(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Replace-mode redaction, dedupe, review decisions and balance, no rejects file: the main
    pass reads only the lines balance chose, or reads and judges every line again; the same
    files and counts."""
    from rollcraft import Rollout, read_rollouts

    ids = [r.rollout_id for r in read_rollouts([str(REAL_DIR)]) if isinstance(r, Rollout)][:60]
    decisions = tmp_path / "decisions.jsonl"
    verdicts = ("reject", "accept", "skip")
    decisions.write_text(
        "".join(f'{{"rollout_id": "{i}", "decision": "{verdicts[n % 3]}"}}\n' for n, i in enumerate(ids))
    )
    body = BODY.replace("write_rejects: true\n", "")
    body = body.replace("{max_turns: 400}", "{max_turns: 40, dedupe: true}")
    sections = "redact: {on_secret: replace}\nbalance: {max_per_category: 6, by: task_type}\n" + SFT + DPO
    sections += f"review: {{decisions: {decisions}}}\n"

    def run(name: str) -> tuple[dict[str, bytes], dict[str, Any]]:
        config = tmp_path / f"{name}.yaml"
        config.write_text(body + sections)
        result = run_pipeline(config, version=name)
        files = {p.name: p.read_bytes() for p in sorted(result.folder.iterdir()) if p.name != "manifest.json"}
        return files, result.manifest["counts"]

    with monkeypatch.context() as patch:
        chosen = _counted(patch, local, "_chosen_only")
        on = run("chosen")
    assert chosen == [True]  # the shortcut ran
    assert on[1]["redaction"]["redacted"] > 0 and on[1]["balance"]["dropped"] > 100
    assert on[1]["review"]["rejected"] > 10
    switch_off("chosen", "off", monkeypatch.setattr)
    assert run("every") == on


def test_outputs_written_by_a_thread_are_the_outputs_written_inline(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    threaded = _outputs(tmp_path, "thread", SFT + DPO)
    switch_off("writer", "off", monkeypatch.setattr)
    assert _outputs(tmp_path, "inline", SFT + DPO) == threaded


def test_a_tuned_process_writes_what_an_untuned_one_writes(tmp_path: Path) -> None:
    """The command line's garbage-collector and allocator tuning, each switched off in turn
    (fresh processes: the tuning stays for the process)."""
    found = {}
    for name, variant in (("gc", "on"), ("gc", "off"), ("malloc", "off")):
        config = tmp_path / f"{name}-{variant}.yaml"
        config.write_text(BODY.replace("output_dir: out", f"output_dir: {name}-{variant}") + SFT + DPO)
        command = [sys.executable, str(ROOT / "benchmarks" / "shortcuts.py"), "--child", name, variant]
        done = subprocess.run([*command, "run", str(config)], capture_output=True, text=True, timeout=120)
        assert done.returncode == 0, done.stderr
        folder = next((tmp_path / f"{name}-{variant}").glob("v*"))
        found[name, variant] = {p.name: p.read_bytes() for p in folder.iterdir() if p.name != "manifest.json"}
    assert found["gc", "on"]["dpo.jsonl"]
    assert found["gc", "off"] == found["gc", "on"] == found["malloc", "off"]
