"""Engines give the same bytes: the local engine with 1 and 2 workers, and the Ray engine.

The Ray test joins a running head (``ray start --head``) or starts a local Ray; it is skipped
only when ``ray`` is not installed (``pip install 'rollcraft[ray]'``).
"""

from __future__ import annotations

import importlib.util
import itertools
import json
import pickle
import sys
from pathlib import Path

import pytest

from rollcraft import DependencyError
from rollcraft.engines import local
from rollcraft.pipeline import run_pipeline
from tests.conftest import REAL_DIR

OUTPUTS = ("sft.jsonl", "sft_ids.txt", "dpo.jsonl", "dpo_ids.txt", "filtered.jsonl", "rejects.jsonl")

BODY = f"""
inputs: ["{REAL_DIR}"]
output_dir: out
filters:
  max_turns: 400
sft: {{format: trl, success_only: false}}
dpo: {{format: trl, pairing: all}}
validate: {{enabled: false}}
write_filtered: true
write_rejects: true
"""

HAVE_RAY = importlib.util.find_spec("ray") is not None


def _run(tmp_path: Path, name: str, extra: str = "", workers: int | None = None) -> Path:
    config = tmp_path / f"{name}.yaml"
    config.write_text(BODY + extra)
    return run_pipeline(config, version=name, workers=workers).folder


def _same(a: Path, b: Path) -> None:
    for name in OUTPUTS:
        assert (a / name).read_bytes() == (b / name).read_bytes(), name
    counts_a = json.loads((a / "manifest.json").read_text())["counts"]
    counts_b = json.loads((b / "manifest.json").read_text())["counts"]
    counts_a.pop("engine"), counts_b.pop("engine")
    assert counts_a == counts_b


@pytest.fixture(scope="module")
def small_shards() -> object:
    """Shards of 64 KiB, so the 97 real files make many shards (some files several)."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(local, "_MIN_SHARD", 64 << 10)
        yield


def test_one_and_two_local_workers_write_the_same_bytes(tmp_path: Path, small_shards: object) -> None:
    one = _run(tmp_path, "one", workers=1)
    two = _run(tmp_path, "two", workers=2)
    _same(one, two)
    assert json.loads((two / "manifest.json").read_text())["counts"]["engine"]["workers"] == 2
    assert (one / "sft.jsonl").stat().st_size > 0 and (one / "dpo.jsonl").stat().st_size > 0
    assert sorted(p.name for p in two.iterdir()) == sorted(p.name for p in one.iterdir())  # no parts left


@pytest.mark.parametrize("sections", ["sft and dpo", "dpo only", "openai pairs"])
def test_spilled_dpo_candidates_write_the_same_bytes(
    tmp_path: Path, small_shards: object, monkeypatch: pytest.MonkeyPatch, sections: str
) -> None:
    """A run whose DPO candidates outgrow their memory budget (sorted runs on disk, merged) writes
    what a run that keeps them in memory writes, with 1 and 2 workers (with 2, pairs that have no
    SFT row to splice are read back from the input lines by forked workers, from the plan on
    disk)."""
    from rollcraft.formats import _spill, dpo

    if sections == "dpo only":
        without_sft = BODY.replace("sft: {format: trl, success_only: false}\n", "")
        monkeypatch.setattr(sys.modules[__name__], "BODY", without_sft)
    if sections == "openai pairs":
        monkeypatch.setattr(
            sys.modules[__name__], "BODY", BODY.replace("dpo: {format: trl", "dpo: {format: openai")
        )
    names = ("dpo.jsonl", "dpo_ids.txt", "filtered.jsonl", "rejects.jsonl")
    kept = _run(tmp_path, "kept", workers=1)
    runs: list[object] = []
    write_run = _spill.write_run
    monkeypatch.setattr(dpo, "write_run", lambda tasks: runs.append(1) or write_run(tasks))
    monkeypatch.setattr(dpo, "SPILL_BYTES", 2048)  # a run every 10-odd candidates
    forked: list[int] = []
    parallel_pairs = local._parallel_pairs
    monkeypatch.setattr(local, "_parallel_pairs", lambda *a: forked.append(1) or parallel_pairs(*a))
    for workers in (1, 2):
        runs.clear()
        spilled = _run(tmp_path, f"spilled{workers}", workers=workers)
        assert len(runs) > 10
        for name in names:
            assert (spilled / name).read_bytes() == (kept / name).read_bytes(), name
    assert (kept / "dpo.jsonl").stat().st_size > 0
    assert bool(forked) is (sections != "sft and dpo")  # else the pairs are spliced from SFT rows


SECRET = "AKIAIOSFODNN7EXAMPLE"


def _planted(tmp_path: Path) -> str:
    """The real lines with a secret in each assistant message's text: every rollout with one is
    rewritten by replace-mode redaction, and its pairs hold the redacted text."""
    lines = []
    for path in sorted(REAL_DIR.glob("*.jsonl")):
        for raw in path.read_bytes().splitlines():
            record = json.loads(raw)
            for part in _texts(record):
                part["text"] = f"key {SECRET} " + part["text"]
            lines.append(json.dumps(record))
    data = tmp_path / "planted.jsonl"
    data.write_text("\n".join(lines) + "\n")
    return f'inputs: ["{data}"]\nredact: {{on_secret: replace}}\n'


def _texts(record: object) -> list[dict[str, str]]:
    """The text parts of the assistant messages in a NeMo Gym record's output."""
    response = record.get("response") if isinstance(record, dict) else None
    output = response.get("output") if isinstance(response, dict) else None
    items = [i for i in output if isinstance(i, dict)] if isinstance(output, list) else []
    parts = [
        p
        for i in items
        if i.get("type") == "message" and isinstance(i.get("content"), list)
        for p in i["content"]
    ]
    return [p for p in parts if isinstance(p, dict) and isinstance(p.get("text"), str)]


def _redacting(body: str) -> str:
    """With SFT rows for successes only, the rewritten DPO candidates that fail have no SFT row
    to be read from: their redacted lines must travel from the shard that made them."""
    body = body.replace(f'inputs: ["{REAL_DIR}"]\n', "")
    return body.replace("sft: {format: trl, success_only: false}", "sft: {format: trl}")


@pytest.mark.skipif(not HAVE_RAY, reason="ray is not installed: pip install 'rollcraft[ray]'")
@pytest.mark.filterwarnings("ignore::DeprecationWarning")
@pytest.mark.parametrize("redacting", [False, True], ids=["plain", "redacting"])
def test_ray_writes_the_same_bytes_as_local(
    tmp_path: Path, small_shards: object, monkeypatch: pytest.MonkeyPatch, redacting: bool
) -> None:
    extra = ""
    if redacting:
        monkeypatch.setattr(sys.modules[__name__], "BODY", _redacting(BODY))
        extra = _planted(tmp_path)
    one = _run(tmp_path, "local", extra=extra, workers=1)
    from rollcraft.formats import _sides

    decoded: list[int] = []  # pair sides decoded again from their lines, here or in forked workers
    decode, parallel_pairs = _sides.conversation_of_line, local._parallel_pairs
    monkeypatch.setattr(_sides, "conversation_of_line", lambda *a: decoded.append(1) or decode(*a))
    monkeypatch.setattr(local, "_parallel_pairs", lambda *a: decoded.append(1) or parallel_pairs(*a))
    on_ray = _run(tmp_path, "ray", extra=extra + "engine: ray\n", workers=2)
    _same(one, on_ray)
    if not redacting:  # every pair side has an SFT row: spliced from it, as the local engine does
        assert not decoded
    engine = json.loads((on_ray / "manifest.json").read_text())["counts"]["engine"]
    assert engine["name"] == "ray"
    assert sorted(p.name for p in on_ray.iterdir()) == sorted(p.name for p in one.iterdir())


def test_replace_mode_redaction_with_dpo_runs_in_shards(
    tmp_path: Path, small_shards: object, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(sys.modules[__name__], "BODY", _redacting(BODY))
    extra = _planted(tmp_path)
    one = _run(tmp_path, "one", extra=extra, workers=1)
    two = _run(tmp_path, "two", extra=extra, workers=2)
    _same(one, two)
    counts = json.loads((two / "manifest.json").read_text())["counts"]
    assert counts["engine"]["workers"] == 2 and counts["redaction"]["redacted"] > 300
    pairs = (two / "dpo.jsonl").read_text()
    assert SECRET not in pairs and pairs.count("key <REDACTED:aws_access_key>") > 100
    rejected = [json.loads(row)["rejected"] for row in pairs.splitlines()]
    assert any(rejected)  # pairs whose rejected side (no SFT row: a failure) came from the shards
    assert sorted(p.name for p in two.iterdir()) == sorted(p.name for p in one.iterdir())  # no scratch left


def _with_duplicates(tmp_path: Path) -> str:
    """The real lines, and for every 9th rollout three copies of its conversation: one with reward
    0 at the top (dropped by min_reward before dedupe sees it), one byte for byte in the middle,
    one with reward 1 at the end. Duplicates across shards, and ones only the twin sees first."""
    lines = [raw for path in sorted(REAL_DIR.glob("*.jsonl")) for raw in path.read_bytes().splitlines()]
    rollouts = [raw for raw in lines if b'"responses_create_params"' in raw and b'"reward"' in raw][::9]
    top, end = [], []
    for raw in rollouts:
        record = json.loads(raw)
        top.append(json.dumps({**record, "reward": 0.0}).encode())
        end.append(json.dumps({**record, "reward": 1.0}).encode())
    middle = len(lines) // 2
    data = tmp_path / "duplicates.jsonl"
    data.write_bytes(b"\n".join([*top, *lines[:middle], *rollouts, *lines[middle:], *end]) + b"\n")
    return f'inputs: ["{data}"]\n'


DEDUPING = "filters: {min_reward: 0.5, dedupe: true, max_turns: 400}\n"


def _deduping(body: str) -> str:
    return body.replace(f'inputs: ["{REAL_DIR}"]\n', "").replace("filters:\n  max_turns: 400\n", DEDUPING)


@pytest.mark.parametrize(
    ("engine", "balance"),
    [
        (engine, balance)
        for engine in ("local", "ray")
        for balance in ("", "balance: {max_per_category: 5, by: task_type}\n")
    ],
)
@pytest.mark.filterwarnings("ignore::DeprecationWarning")
def test_dedupe_runs_in_shards_and_decides_as_one_stream(
    tmp_path: Path, small_shards: object, monkeypatch: pytest.MonkeyPatch, engine: str, balance: str
) -> None:
    if engine == "ray" and not HAVE_RAY:
        pytest.skip("ray is not installed: pip install 'rollcraft[ray]'")
    monkeypatch.setattr(sys.modules[__name__], "BODY", _deduping(BODY))
    extra = _with_duplicates(tmp_path) + balance
    one = _run(tmp_path, "one", extra=extra, workers=1)
    two = _run(tmp_path, "two", extra=extra + ("engine: ray\n" if engine == "ray" else ""), workers=2)
    _same(one, two)
    counts = json.loads((two / "manifest.json").read_text())["counts"]
    # Dedupe's log and balance's categories are one pass; the main pass is the other.
    assert counts["engine"]["workers"] == 2 and counts["engine"]["passes"] == 2
    assert json.loads((one / "manifest.json").read_text())["counts"]["engine"]["passes"] == 1 + bool(balance)
    if balance:
        assert counts["balance"]["dropped"] > 0
    (dedupe,) = [s for s in counts["filter"]["steps"] if s["filter"] == "dedupe"]
    assert dedupe["dropped"] > 40 and dedupe["alone"] > dedupe["dropped"]  # the twin saw the reward-0 copies
    assert "duplicate of" in (two / "rejects.jsonl").read_text()


def _decisions(tmp_path: Path) -> Path:
    """Review decisions (reject, accept, skip in turn) for the first 90 rollouts of the input."""
    from rollcraft import Rollout, read_rollouts

    rollouts = read_rollouts([str(tmp_path / "duplicates.jsonl")])
    ids = [r.rollout_id for r in rollouts if isinstance(r, Rollout)][:90]
    verdicts = ("reject", "accept", "skip")
    decisions = tmp_path / "decisions.jsonl"
    decisions.write_text(
        "".join(f'{{"rollout_id": "{i}", "decision": "{verdicts[n % 3]}"}}\n' for n, i in enumerate(ids))
    )
    return decisions


CHOSEN_BODY = """
output_dir: out
filters: FILTERS
redact: {on_secret: replace}
balance: {max_per_category: 4, by: task_type, seed: 3}
sft: {format: trl, success_only: false}
dpo: {format: trl, pairing: all}
validate: {enabled: false}
write_filtered: true
"""


@pytest.mark.parametrize(
    ("engine", "filters", "chosen"),
    [
        (engine, filters, chosen)
        for engine in ("local", "ray")
        for filters, chosen in (
            ("{drop_flagged: [truncated], max_turns: 20, dedupe: true}", True),  # dedupe last
            ("{min_reward: 0.5, dedupe: true, max_turns: 3}", True),  # filters after dedupe
            ("{max_turns: 20}", True),
            ("{max_turns: 20, dedupe: true}\nreview: {decisions: DECISIONS}", False),
        )
    ],
)
@pytest.mark.filterwarnings("ignore::DeprecationWarning")
def test_a_first_pass_in_shards_lets_the_main_pass_read_only_the_chosen_lines(
    tmp_path: Path,
    small_shards: object,
    monkeypatch: pytest.MonkeyPatch,
    engine: str,
    filters: str,
    chosen: bool,
) -> None:
    """With balance and no rejects file, the main pass after a first pass over shards reads
    only the lines balance chose, where the shards' counts (dedupe decided after them) give
    what one process counts: the same files and counts as one process."""
    if engine == "ray" and not HAVE_RAY:
        pytest.skip("ray is not installed: pip install 'rollcraft[ray]'")
    extra = _with_duplicates(tmp_path)
    if "DECISIONS" in filters:  # review counted the rollouts dedupe drops: every line read again
        filters = filters.replace("DECISIONS", str(_decisions(tmp_path)))
    monkeypatch.setattr(sys.modules[__name__], "BODY", CHOSEN_BODY.replace("FILTERS", filters))
    one = _run(tmp_path, "one", extra=extra, workers=1)
    reads: list[bool] = []
    read = local._read
    monkeypatch.setattr(
        local, "_read", lambda *a, **k: reads.append(k.get("only") is not None) or read(*a, **k)
    )
    two = _run(tmp_path, "two", extra=extra + ("engine: ray\n" if engine == "ray" else ""), workers=2)
    assert any(reads) is chosen
    names = sorted(p.name for p in one.iterdir())
    assert names == sorted(p.name for p in two.iterdir())
    for name in ("sft.jsonl", "sft_ids.txt", "dpo.jsonl", "dpo_ids.txt", "filtered.jsonl"):
        assert (one / name).read_bytes() == (two / name).read_bytes(), name
    counts = [json.loads((run / "manifest.json").read_text())["counts"] for run in (one, two)]
    assert counts[1].pop("engine")["passes"] == 2
    counts[0].pop("engine")
    assert counts[0] == counts[1]
    assert counts[0]["balance"]["dropped"] > 0 and counts[0]["redaction"]["rollouts"] > 0
    if "dedupe" in filters:
        (dedupe,) = [s for s in counts[1]["filter"]["steps"] if s["filter"] == "dedupe"]
        assert dedupe["dropped"] > 40 and dedupe["alone"] >= dedupe["dropped"]


def test_ray_missing_names_the_extra(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "ray", None)  # import ray -> ImportError, installed or not
    with pytest.raises(DependencyError, match=r"rollcraft\[ray\]"):
        _run(tmp_path, "ray", extra="engine: ray\n")


def test_a_pass_result_pickles_whole_with_its_candidates_as_named_tuples() -> None:
    from collections import Counter

    from rollcraft.engines._plan import PassResult
    from rollcraft.formats.dpo import Candidate, sft_locator

    result = PassResult(dpo_excluded=Counter(no_completion=2), dpo_rollouts=5, balance_dropped=1)
    result.candidates = [
        ("task:a", Candidate(1.0, "0123456789abcdef", sft_locator(2, 4096))),
        ("task:a", Candidate(0.0, "fedcba9876543210", ("/data/rollouts.jsonl", 17))),
    ]
    result.categories = [("math", ("/data/rollouts.jsonl", 17))]
    back = pickle.loads(pickle.dumps(result))
    assert back == result
    assert all(type(candidate) is Candidate for _, candidate in back.candidates)
    assert back.candidates[0][1].locator == sft_locator(2, 4096)


def test_pair_chunks_are_bounded_and_keep_each_task_whole() -> None:
    from rollcraft.formats.dpo import Candidate, PlannedPair

    side = Candidate(1.0, "0123456789abcdef", ("/data/rollouts.jsonl", 0))
    planned = [PlannedPair(f"task:{i // 3:05d}", side, side) for i in range(10_000)]  # 3 pairs a task
    chunks = local._task_chunks(planned, workers=2)
    assert chunks[0][0] == 0 and chunks[-1][1] == len(planned)
    assert all(a[1] == b[0] for a, b in itertools.pairwise(chunks))  # contiguous, in plan order
    assert all(end % 3 == 0 or end == len(planned) for _, end in chunks)  # never inside a task
    assert max(end - start for start, end in chunks) <= local._CHUNK_PAIRS + 2
    assert len(chunks) >= 16 * 2
