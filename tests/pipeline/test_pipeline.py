"""``rollcraft run``: versions, manifests, reproducibility, refusals, config errors, diff, workers."""

from __future__ import annotations

import contextlib
import gzip
import hashlib
import json
import os
import stat
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from rollcraft import ConfigError, OutputError
from rollcraft.engines import local
from rollcraft.pipeline import DIGEST_CACHE, diff_versions, list_versions, load_pipeline_config, run_pipeline
from tests.conftest import REAL_DIR, ROOT


def _config(tmp_path: Path, body: str, name: str = "pipeline.yaml") -> Path:
    path = tmp_path / name
    path.write_text(body)
    return path


REAL = f"""
inputs: ["{REAL_DIR}"]
output_dir: out
filters:
  max_turns: 400
sft: {{format: trl, success_only: false}}
dpo: {{format: trl, pairing: all}}
write_rejects: true
"""


def _sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_run_on_the_real_files(tmp_path: Path) -> None:
    result = run_pipeline(_config(tmp_path, REAL))
    folder = result.folder
    assert folder == tmp_path / "out" / "v1"
    manifest = json.loads((folder / "manifest.json").read_text())
    for entry in manifest["outputs"]:
        assert _sha(folder / entry["path"]) == entry["sha256"]
        assert (folder / entry["path"]).stat().st_size == entry["bytes"]
    assert {e["path"] for e in manifest["inputs"]} == {str(p) for p in sorted(REAL_DIR.glob("*.jsonl"))}
    read, filt = manifest["counts"]["read"], manifest["counts"]["filter"]
    assert read["lines"] == 485 and read["lines"] == read["rollouts"] + sum(read["quarantined"].values())
    assert filt["kept"] + filt["dropped"] == read["rollouts"]
    rejects = (folder / "rejects.jsonl").read_text().splitlines()
    assert len(rejects) == filt["dropped"]
    assert manifest["counts"]["sft"]["rows"] == len((folder / "sft.jsonl").read_text().splitlines())
    assert manifest["validation"]["sft"]["errors"] == 0
    assert manifest["versions"]["rollcraft"] and manifest["config"]["sft"]["format"] == "trl"
    assert list_versions(tmp_path / "out")[0]["version"] == "v1"


def test_a_version_is_never_overwritten(tmp_path: Path) -> None:
    config = _config(tmp_path, REAL)
    run_pipeline(config, version="keep")
    before = _sha(tmp_path / "out" / "keep" / "sft.jsonl")
    with pytest.raises(OutputError, match="never overwrites"):
        run_pipeline(config, version="keep")
    assert _sha(tmp_path / "out" / "keep" / "sft.jsonl") == before
    assert run_pipeline(config).folder.name == "v1"
    assert not [p for p in (tmp_path / "out").iterdir() if p.name.startswith(".") and p.name != DIGEST_CACHE]


@pytest.mark.parametrize(
    ("body", "key", "line"),
    [
        ("inputs: [x]\nsft:\n  format: torch\n", "sft.format", 3),
        ("inputs: [x]\nsft: {}\nfilters:\n  min_reward: high\n", "filters.min_reward", 4),
        ("inputs: [x]\nsft: {}\nbogus: 1\n", "bogus", 3),
        ("sft: {}\n", "inputs", None),
    ],
)
def test_config_errors_name_the_key_and_line(tmp_path: Path, body: str, key: str, line: int | None) -> None:
    with pytest.raises(ConfigError) as info:
        load_pipeline_config(_config(tmp_path, body))
    assert info.value.key == key and info.value.line == line


def test_broken_config_on_the_command_line(tmp_path: Path) -> None:
    config = _config(tmp_path, "inputs: [x]\nsft:\n  format: torch\n")
    result = subprocess.run(
        [sys.executable, "-m", "rollcraft.cli", "run", str(config)], capture_output=True, text=True
    )
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert "sft.format (line 3)" in result.stderr


@pytest.mark.skipif(sys.platform != "linux", reason="RLIMIT_FSIZE and EFBIG as on Linux")
@pytest.mark.parametrize("workers", [1, 2])
def test_an_output_that_cannot_be_written_is_one_line_and_leaves_no_version(
    tmp_path: Path, workers: int
) -> None:
    """Files over RLIMIT_FSIZE fail with EFBIG (Python ignores SIGXFSZ), as a full disk fails."""
    import resource

    config = _config(tmp_path, REAL)

    def small_files() -> None:
        resource.setrlimit(resource.RLIMIT_FSIZE, (64 << 10, 64 << 10))

    result = subprocess.run(
        [sys.executable, "-m", "rollcraft.cli", "run", str(config), "--workers", str(workers)],
        capture_output=True,
        text=True,
        preexec_fn=small_files,
    )
    assert result.returncode == 2, result.stderr
    assert "Traceback" not in result.stderr
    assert "cannot write (File too large)" in result.stderr
    out = tmp_path / "out"  # removed when the run made it and left nothing in it
    left = {p.name for p in out.iterdir()} if out.exists() else set()
    assert left <= {DIGEST_CACHE}, left  # no version, no staging folder


def test_same_config_same_bytes_across_processes(tmp_path: Path) -> None:
    config = _config(tmp_path, REAL)
    for _ in range(2):
        subprocess.run(
            [sys.executable, "-m", "rollcraft.cli", "run", str(config)],
            check=True,
            capture_output=True,
            env={"PYTHONHASHSEED": "random", "PATH": ""},
        )
    v1, v2 = tmp_path / "out" / "v1", tmp_path / "out" / "v2"
    m1, m2 = (json.loads((v / "manifest.json").read_text()) for v in (v1, v2))
    assert m1["outputs"] == m2["outputs"]
    for entry in m1["outputs"]:
        assert (v1 / entry["path"]).read_bytes() == (v2 / entry["path"]).read_bytes()


def test_diff_of_two_versions(tmp_path: Path) -> None:
    run_pipeline(_config(tmp_path, REAL))
    run_pipeline(_config(tmp_path, REAL.replace("max_turns: 400", "max_turns: 400\n  min_reward: 0.5")))
    data: dict[str, Any] = diff_versions(tmp_path / "out" / "v1", tmp_path / "out" / "v2")
    assert data["config"]["filters.min_reward"] == {"from": None, "to": 0.5}
    assert data["rows"]["sft"]["removed"] and not data["rows"]["sft"]["added"]
    assert data["counts"]["filter.kept"]["to"] < data["counts"]["filter.kept"]["from"]
    assert data["inputs"] == {"added": [], "removed": [], "changed": []}


def test_two_workers_write_the_same_bytes(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(local, "_MIN_SHARD", 64 << 10)
    config = _config(tmp_path, REAL + "write_filtered: true\n")
    one = run_pipeline(config, workers=1).folder
    two = run_pipeline(config, workers=2).folder
    assert json.loads((two / "manifest.json").read_text())["counts"]["engine"]["workers"] == 2
    for name in ("sft.jsonl", "dpo.jsonl", "rejects.jsonl", "filtered.jsonl", "sft_ids.txt"):
        assert (one / name).read_bytes() == (two / name).read_bytes(), name


def test_the_readme_example_pipeline(tmp_path: Path) -> None:
    body = (ROOT / "examples" / "pipeline.yaml").read_text()
    body = body.replace("  - rollouts/", f"  - {ROOT / 'examples' / 'rollouts'}").replace(
        "../training", "training"
    )
    result = run_pipeline(_config(tmp_path, body))
    counts = result.manifest["counts"]
    first = counts["read"].pop("first_quarantined")
    assert counts["read"] == {"lines": 78, "rollouts": 72, "quarantined": {"no_result": 6}}
    assert [(Path(q["source"]).name, q["line"], q["reason"]) for q in first] == [
        ("tool_agents_materialized_inputs.jsonl", n, "no_result") for n in range(1, 7)
    ]
    assert counts["sft"]["rows"] > 0 and counts["dpo"]["pairs"] > 0
    assert result.validation_errors == 0
    # Replace mode searches the rollouts written: the 62 kept less balance's drops (9 emails in all 72)
    assert counts["redaction"]["rollouts"] == counts["filter"]["kept"] - counts["balance"]["dropped"]
    assert counts["redaction"]["kinds"] == {"email": 4, "google_api_key": 2}
    for name in ("sft.jsonl", "dpo.jsonl"):  # the DPO read-back must see the redacted lines too
        text = (result.folder / name).read_text()
        assert "AIza" not in text and "jane.roe@example.org" not in text


def test_redaction_drop_mode_counts_what_it_dropped(tmp_path: Path) -> None:
    config = _config(
        tmp_path,
        f"inputs: [{ROOT / 'examples' / 'rollouts'}]\noutput_dir: out\n"
        "redact: {on_secret: drop}\nsft: {}\n",
    )
    counts = run_pipeline(config).manifest["counts"]
    assert counts["redaction"]["dropped"] == 11 == counts["filter"]["steps"][0]["dropped"]
    assert counts["redaction"]["kinds"] == {"email": 9, "google_api_key": 2}


def test_input_digests_are_cached_and_follow_changed_files(tmp_path: Path) -> None:
    data = tmp_path / "in.jsonl"
    data.write_bytes((ROOT / "examples" / "rollouts" / "chat_agents_rollouts.jsonl").read_bytes())
    config = _config(tmp_path, 'inputs: ["in.jsonl"]\noutput_dir: out\nsft: {format: trl}\n')

    def input_sha(version: str) -> str:
        manifest = json.loads((tmp_path / "out" / version / "manifest.json").read_text())
        return str(manifest["inputs"][0]["sha256"])

    run_pipeline(config)
    cache = tmp_path / "out" / ".rollcraft-input-digests.json"
    assert input_sha("v1") == _sha(data) and str(data.resolve()) in json.loads(cache.read_text())
    # The cache is what a second run reads: a planted digest for the unchanged file comes back.
    planted = json.loads(cache.read_text())
    planted[str(data.resolve())][1] = "0" * 64
    cache.write_text(json.dumps(planted))
    run_pipeline(config)
    assert input_sha("v2") == "0" * 64
    # A changed file (new size and mtime) is hashed again; a broken cache is ignored.
    data.write_bytes(data.read_bytes() + data.read_bytes().splitlines(keepends=True)[0])
    run_pipeline(config)
    assert input_sha("v3") == _sha(data)
    cache.write_text("{not json")
    run_pipeline(config)
    assert input_sha("v4") == _sha(data)
    assert [v["version"] for v in list_versions(tmp_path / "out")] == ["v1", "v2", "v3", "v4"]


def test_with_workers_the_inputs_are_hashed_in_a_forked_process(tmp_path: Path) -> None:
    config = _config(tmp_path, REAL)
    result = run_pipeline(config, workers=2)
    manifest = json.loads((result.folder / "manifest.json").read_text())
    assert manifest["counts"]["engine"]["workers"] == 2
    for entry in manifest["inputs"]:
        assert entry["sha256"] == _sha(Path(entry["path"]))
    cached = json.loads((tmp_path / "out" / DIGEST_CACHE).read_text())
    assert {str(Path(e["path"]).resolve()) for e in manifest["inputs"]} <= set(cached)


@pytest.mark.parametrize("completion", ["full", "first-divergence"])
def test_pairs_read_back_from_sft_rows_are_the_pairs_read_back_from_the_input(
    tmp_path: Path, completion: str
) -> None:
    """With trl SFT rows in the same run, pair sides come back from sft.jsonl (and from side
    rows where SFT's min_reward left a candidate without an SFT row): the same bytes as a run
    that writes no SFT rows (side rows only; those equal the input read back, see below)."""
    common = f"""
inputs: ["{REAL_DIR}", "{ROOT / "examples" / "rollouts"}"]
filters: {{max_turns: 400, drop_flagged: none}}
dpo: {{format: trl, pairing: all, completion: {completion}}}
validate: {{enabled: false}}
"""
    both = run_pipeline(
        _config(tmp_path, common + "output_dir: both\nsft: {format: trl, min_reward: 0.5}\n", "a.yaml")
    )
    alone = run_pipeline(_config(tmp_path, common + "output_dir: alone\n", "b.yaml"))
    for name in ("dpo.jsonl", "dpo_ids.txt"):
        assert (both.folder / name).read_bytes() == (alone.folder / name).read_bytes()
    assert len((both.folder / "dpo.jsonl").read_bytes().splitlines()) > 10


@pytest.mark.parametrize("completion", ["full", "first-divergence"])
def test_pairs_without_sft_rows_are_read_back_from_a_scratch_file_of_their_rows(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, completion: str
) -> None:
    """A run writing trl pairs and no SFT rows keeps its candidates' rows in a scratch file (side
    rows) and reads pairs back from it: the same bytes as reading the input lines back (what
    workers do), and the scratch file is gone afterwards."""
    monkeypatch.setattr(local, "_MIN_SHARD", 64 << 10)
    body = f"""
inputs: ["{REAL_DIR}", "{ROOT / "examples" / "rollouts"}"]
filters: {{max_turns: 400, drop_flagged: none}}
dpo: {{format: trl, pairing: all, completion: {completion}}}
validate: {{enabled: false}}
"""
    scratch: list[bool] = []
    sides = local._sides

    @contextlib.contextmanager
    def watched(*args: Any) -> Iterator[Any]:
        with sides(*args) as writer:
            scratch.append(writer is not None)
            yield writer

    monkeypatch.setattr(local, "_sides", watched)  # records whether the real scratch file was used
    one = run_pipeline(_config(tmp_path, body + "output_dir: one\n", "a.yaml"), workers=1).folder
    two = run_pipeline(_config(tmp_path, body + "output_dir: two\n", "b.yaml"), workers=2).folder
    assert scratch == [True]  # the single process used it; the workers read input lines back
    for name in ("dpo.jsonl", "dpo_ids.txt"):
        assert (one / name).read_bytes() == (two / name).read_bytes(), name
    assert len((one / "dpo.jsonl").read_bytes().splitlines()) > 10
    assert sorted(p.name for p in one.iterdir()) == ["dpo.jsonl", "dpo_ids.txt", "manifest.json"]
    assert not list(one.parent.glob("**/" + local._SIDES))


def test_the_manifests_versions_are_the_installed_distributions_versions() -> None:
    from importlib import metadata

    from rollcraft import pipeline
    from rollcraft._versions import dependency_versions, installed_version

    versions = dependency_versions(pipeline._DEPENDENCIES)
    assert {"rollcraft", "orjson", "msgspec", "xxhash", "pydantic"} <= set(versions)
    for name, version in versions.items():
        if name != "python":
            assert version == metadata.version(name), name
    assert installed_version("no-such-distribution-here") is None


def test_a_killed_runs_staging_folder_is_swept_by_the_next_run(tmp_path: Path) -> None:
    from rollcraft._io import HOST as _HOST

    config = _config(tmp_path, f"inputs: [{ROOT / 'examples' / 'rollouts'}]\noutput_dir: out\nsft: {{}}\n")
    out = tmp_path / "out"
    dead = subprocess.run(
        [sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True
    )
    stale = out / f".v1.{_HOST}-{int(dead.stdout)}.abc123.partial"  # a process that has exited
    live = out / f".v1.{_HOST}-{os.getpid()}.def456.partial"  # this process: a run still going
    foreign = out / f".v1.otherhost-{int(dead.stdout)}.ghi789.partial"  # another machine's run
    for folder in (stale, live, foreign):
        folder.mkdir(parents=True)
        (folder / "sft.jsonl").write_bytes(b"half\n")
    run_pipeline(config)
    assert not stale.exists()
    assert live.exists() and foreign.exists()
    assert (out / "v1" / "sft.jsonl").stat().st_size > 0
    assert sorted(p.name for p in out.glob(".*.partial")) == sorted([live.name, foreign.name])


def test_an_interrupted_run_leaves_no_version_and_the_next_run_publishes_v1(tmp_path: Path) -> None:
    config = _config(tmp_path, f"inputs: [{ROOT / 'examples' / 'rollouts'}]\noutput_dir: out\nsft: {{}}\n")
    killed = subprocess.run(
        [
            sys.executable,
            "-c",
            "import os, sys; from rollcraft.pipeline import run_pipeline; "
            "from rollcraft.engines import local; local.execute = lambda *a, **k: os.kill(os.getpid(), 9); "
            "run_pipeline(sys.argv[1])",
            str(config),
        ],
        capture_output=True,
    )
    assert killed.returncode == -9
    out = tmp_path / "out"
    assert not (out / "v1").exists() and len(list(out.glob(".v1.*.partial"))) == 1
    assert run_pipeline(config).folder == out / "v1"
    assert list(out.glob(".*.partial")) == []


@pytest.mark.parametrize("on_secret", ["replace", "drop"])
def test_balance_with_redaction_searches_again_only_what_the_first_pass_could_not_clear(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, on_secret: str
) -> None:
    monkeypatch.setattr(local, "_MIN_SHARD", 64 << 10)
    secret = "AKIAIOSFODNN7EXAMPLE"
    lines = [raw for path in sorted(REAL_DIR.glob("*.jsonl"))[:30] for raw in path.read_bytes().splitlines()]
    planted = [raw.replace(b'"user"', f'"user", "note": "key {secret}"'.encode(), 1) for raw in lines[:40:4]]
    data = tmp_path / "in.jsonl"
    data.write_bytes(b"\n".join(lines + planted) + b"\n")
    body = f"""
inputs: ["{data}"]
filters: {{max_turns: 400}}
redact: {{on_secret: {on_secret}}}
balance: {{max_per_category: 1000, by: task_type}}
sft: {{format: trl, success_only: true}}
dpo: {{format: trl, pairing: all}}
validate: {{enabled: false}}
write_filtered: true
"""
    one = run_pipeline(_config(tmp_path, body + "output_dir: one\n", "a.yaml"), workers=1)
    two = run_pipeline(_config(tmp_path, body + "output_dir: two\n", "b.yaml"), workers=2)
    assert one.manifest["counts"]["balance"] == two.manifest["counts"]["balance"]  # its first pass in shards
    for name in ("sft.jsonl", "sft_ids.txt", "filtered.jsonl", "dpo.jsonl", "dpo_ids.txt"):
        written = (one.folder / name).read_bytes()
        assert written == (two.folder / name).read_bytes(), name
        assert secret.encode() not in written, name
    assert two.manifest["counts"]["engine"]["workers"] == 2  # the main pass in shards
    redaction = one.manifest["counts"]["redaction"]
    assert redaction == two.manifest["counts"]["redaction"]
    assert redaction["kinds"].get("aws_access_key", 0) >= 1


def test_a_secret_in_a_line_that_is_not_utf8_never_reaches_an_output(tmp_path: Path) -> None:
    # Redaction decodes each line with orjson; a line it cannot decode must not be written at all.
    secret = b"AKIAIOSFODNN7EXAMPLE"
    lines = (REAL_DIR / sorted(p.name for p in REAL_DIR.glob("*.jsonl"))[0]).read_bytes().splitlines()
    bad = lines[0].replace(b'"user"', b'"user", "note": "\xff key ' + secret + b'"', 1)
    data = tmp_path / "in.jsonl"
    data.write_bytes(b"\n".join([bad, *lines[1:]]) + b"\n")
    body = f"""
inputs: ["{data}"]
output_dir: out
redact: {{on_secret: replace}}
sft: {{format: trl}}
validate: {{enabled: false}}
write_filtered: true
"""
    result = run_pipeline(_config(tmp_path, body))
    for path in result.folder.iterdir():
        assert secret not in path.read_bytes(), path.name
    read = result.manifest["counts"]["read"]
    assert read["quarantined"] == {"not_json": 1}
    assert read["first_quarantined"][0]["line"] == 1, read["first_quarantined"]


@pytest.mark.parametrize("on_secret", ["replace", "drop"])
def test_no_output_file_holds_a_secret_rejects_included(tmp_path: Path, on_secret: str) -> None:
    secret = b"AKIAIOSFODNN7EXAMPLE"
    lines = sorted(REAL_DIR.glob("*.jsonl"))[0].read_bytes().splitlines()
    planted = lines[0].replace(b'"user"', b'"user", "note": "key ' + secret + b'"', 1)
    # The same secret behind an escape, in a line redaction cannot decode (a number out of range).
    hidden = lines[1].replace(b'"user"', b'"user", "note": "key \\u0041KIAIOSFODNN7EXAMPLE"', 1)
    hidden = hidden[:-1] + b',"zz":1e400}'
    data = tmp_path / "in.jsonl"
    data.write_bytes(b"\n".join([planted, hidden, *lines[2:]]) + b"\n")
    body = f"""
inputs: ["{data}"]
output_dir: out
redact: {{on_secret: {on_secret}}}
sft: {{format: trl}}
validate: {{enabled: false}}
write_filtered: true
write_rejects: true
"""
    result = run_pipeline(_config(tmp_path, body))
    for path in result.folder.iterdir():
        assert secret not in path.read_bytes() and b"\\u0041KIA" not in path.read_bytes(), path.name
    rejects = [json.loads(x) for x in (result.folder / "rejects.jsonl").read_bytes().splitlines()]
    by_secret = [r for r in rejects if r["dropped_by"] == "redact_secrets"]
    assert [r["rollout"] is None for r in by_secret] == ([True] if on_secret == "replace" else [False, True])
    (step,) = [s for s in result.manifest["counts"]["filter"]["steps"] if s["filter"] == "redact_secrets"]
    assert step["dropped"] == len(by_secret)


@pytest.mark.parametrize(
    ("extra", "why"),
    [
        ("", None),
        ("filters: {max_turns: 400, dedupe: true}\n", None),  # decided by a first pass over the shards
        ("redact: {on_secret: replace}\n", None),  # with DPO: the shards keep the redacted lines
        ("redact: {on_secret: drop}\n", None),
        ("gzip", "compressed input or stdin"),
    ],
)
def test_a_run_asked_for_workers_says_why_it_used_one_process(
    tmp_path: Path, extra: str, why: str | None
) -> None:
    body = REAL.replace("filters:\n  max_turns: 400\n", "") + extra
    if extra == "gzip":
        packed = tmp_path / "in.jsonl.gz"
        packed.write_bytes(gzip.compress(b"".join(p.read_bytes() for p in sorted(REAL_DIR.glob("*.jsonl")))))
        body = REAL.replace(f'["{REAL_DIR}"]', f'["{packed}"]')
    two = run_pipeline(_config(tmp_path, body + "output_dir: two\n", "b.yaml"), workers=2).manifest
    engine = two["counts"]["engine"]
    assert engine["workers"] == (2 if why is None else 1)
    assert engine.get("one_process_because", "").startswith(why or "") and (why is None) == (
        "one_process_because" not in engine
    )
    one = run_pipeline(_config(tmp_path, body + "output_dir: one\n", "a.yaml")).manifest
    assert "one_process_because" not in one["counts"]["engine"]  # one process was asked for
    if why is not None:
        config = _config(tmp_path, body + "output_dir: cli\n", "c.yaml")
        command = [sys.executable, "-m", "rollcraft.cli", "run", str(config), "--workers", "2"]
        done = subprocess.run(command, capture_output=True, text=True, check=True)
        assert "the main pass ran in one process: " + why in done.stderr


class _Progress:
    """Records what a run tells its progress bar: the bytes of each pass, under its name."""

    def __init__(self) -> None:
        self.passes: list[list[Any]] = [["", 0]]

    def __call__(self, n: float = 1) -> None:
        self.passes[-1][1] += n

    def restart(self, description: str) -> None:
        self.passes.append([description, 0])


@pytest.mark.parametrize(
    ("filters", "workers", "names"),
    [
        ("{max_turns: 400}", 1, ["first pass (balance)", "main pass"]),
        ("{max_turns: 400}", 2, ["first pass (balance)", "main pass"]),
        ("{max_turns: 400, dedupe: true}", 2, ["first pass (dedupe, balance)", "main pass"]),
    ],
)
def test_each_pass_over_the_input_fills_the_progress_bar_once(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, filters: str, workers: int, names: list[str]
) -> None:
    monkeypatch.setattr(local, "_MIN_SHARD", 64 << 10)
    lines = [raw for path in sorted(REAL_DIR.glob("*.jsonl"))[:30] for raw in path.read_bytes().splitlines()]
    data = tmp_path / "in.jsonl"
    data.write_bytes(b"\n".join(lines) + b"\n")
    body = f'inputs: ["{data}"]\noutput_dir: out\nfilters: {filters}\nbalance: {{max_per_category: 5}}\n'
    bar = _Progress()
    config = _config(tmp_path, body + "sft: {}\nvalidate: {enabled: false}\n")
    run_pipeline(config, workers=workers, progress=bar)
    assert bar.passes == [["", 0]] + [[name, data.stat().st_size] for name in names]


def _cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "rollcraft.cli", *args], capture_output=True, text=True)


def test_versions_of_a_folder_that_is_not_there_is_one_line_exit_2(tmp_path: Path) -> None:
    (tmp_path / "a-file").write_text("x")
    for target, why in (("nope", "no such folder"), ("a-file", "not a folder")):
        done = _cli("versions", str(tmp_path / target))
        assert done.returncode == 2 and "Traceback" not in done.stderr
        assert done.stderr.strip().splitlines() == [done.stderr.strip()] and why in done.stderr
    (tmp_path / "empty").mkdir()
    done = _cli("versions", str(tmp_path / "empty"))
    assert done.returncode == 0 and done.stdout.startswith("No versions in") and "┏" not in done.stdout


def test_cli_diff_prints_key_old_new_lines_and_no_empty_tables(tmp_path: Path) -> None:
    examples = ROOT / "examples" / "rollouts"
    body = f"inputs: [{examples}]\noutput_dir: out\nsft: {{}}\nbalance: {{max_per_category: N}}\n"
    for n in (15, 10):
        run_pipeline(_config(tmp_path, body.replace("N", str(n))))
    changed = _cli("diff", str(tmp_path / "out" / "v1"), str(tmp_path / "out" / "v2"))
    assert changed.returncode == 0, changed.stderr
    lines = changed.stdout.splitlines()
    assert "config: 1 changed" in lines and "  balance.max_per_category: 15 -> 10" in lines
    assert "inputs: unchanged" in lines and any(line.startswith("  sft.rows: ") for line in lines)
    same = _cli("diff", str(tmp_path / "out" / "v1"), str(tmp_path / "out" / "v1"))
    assert same.returncode == 0
    assert {"config: unchanged", "counts: unchanged"} <= set(same.stdout.splitlines())
    for text in (changed.stdout, same.stdout):
        assert not {"{", "'", "┏", "└"} & set(text), text  # no dict text, no (empty) tables


def test_two_runs_into_one_folder_at_once_publish_two_versions(tmp_path: Path) -> None:
    """Both runs start (each sees no version yet: each would be v1), then both finish: the second
    to publish takes v2. Reading stdin holds each run mid-way until the test closes it."""
    config = _config(tmp_path, 'inputs: ["-"]\noutput_dir: out\nsft: {}\n')
    data = (ROOT / "examples" / "rollouts" / "tool_agents_rollouts.jsonl").read_bytes()
    runs = [
        subprocess.Popen(
            [sys.executable, "-m", "rollcraft.cli", "run", str(config)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
        )
        for _ in range(2)
    ]
    for run in runs:  # both are past choosing a name once their staging folder exists
        assert run.stdin is not None
        run.stdin.write(data)
        run.stdin.flush()
    out = tmp_path / "out"
    for _ in range(600):
        if len(list(out.glob(".*.partial"))) == 2:
            break
        time.sleep(0.05)
    results = [run.communicate(timeout=60) for run in runs]
    for run, (_, stderr) in zip(runs, results, strict=True):
        assert run.returncode == 0, stderr
    assert sorted(v["version"] for v in list_versions(out)) == ["v1", "v2"]
    for name in ("v1", "v2"):
        manifest = json.loads((out / name / "manifest.json").read_text())
        assert manifest["version"] == name
        assert (out / name / "sft.jsonl").read_bytes() == (out / "v1" / "sft.jsonl").read_bytes()
    assert not list(out.glob(".*.partial"))


def test_a_version_folder_and_its_files_get_the_umask_permissions(tmp_path: Path) -> None:
    config = _config(tmp_path, f"inputs: [{ROOT / 'examples' / 'rollouts'}]\noutput_dir: out\nsft: {{}}\n")
    subprocess.run(
        [sys.executable, "-m", "rollcraft.cli", "run", str(config)],
        check=True,
        capture_output=True,
        preexec_fn=lambda: os.umask(0o022) and None,
    )
    folder = tmp_path / "out" / "v1"
    assert stat.S_IMODE(folder.stat().st_mode) == 0o755
    for path in folder.iterdir():
        assert stat.S_IMODE(path.stat().st_mode) == 0o644, path.name


@pytest.mark.skipif(sys.platform != "linux", reason="RLIMIT_FSIZE and EFBIG as on Linux")
@pytest.mark.parametrize(
    ("validate", "limit", "fails"),
    [("{html: true}", 2048, "validation_sft.html"), ("{enabled: false}", 4096, "manifest.json")],
)
def test_a_full_disk_while_writing_reports_or_the_manifest_is_one_line_and_no_version(
    tmp_path: Path, validate: str, limit: int, fails: str
) -> None:
    """No rollout is kept (min_reward 2): the data files are empty and the first file over the
    limit is the validation report (about 4 KB), or without validation the manifest (5 KB)."""
    import resource

    config = _config(
        tmp_path,
        f"inputs: [{ROOT / 'examples' / 'rollouts'}]\noutput_dir: out\nfilters: {{min_reward: 2}}\n"
        f"sft: {{}}\nvalidate: {validate}\n",
    )

    def small_files() -> None:
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))

    result = subprocess.run(
        [sys.executable, "-m", "rollcraft.cli", "run", str(config)],
        capture_output=True,
        text=True,
        preexec_fn=small_files,
    )
    assert result.returncode == 2, result.stderr
    assert "Traceback" not in result.stderr
    assert f"{tmp_path / 'out' / 'v1' / fails}: cannot write (File too large)" in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1
    assert {p.name for p in (tmp_path / "out").iterdir()} <= {DIGEST_CACHE}


def test_an_openai_pipeline_counts_the_rows_that_lose_reasoning(tmp_path: Path) -> None:
    lost = []
    for dialect, reasoning in (("trl", "separate"), ("openai", "separate"), ("openai", "think")):
        body = (
            f'inputs: ["{REAL_DIR}"]\noutput_dir: out-{dialect}-{reasoning}\n'
            f"read: {{reasoning: {reasoning}}}\nsft: {{format: {dialect}, success_only: true}}\n"
            "validate: {enabled: false}\n"
        )
        folder = run_pipeline(_config(tmp_path, body)).folder
        lost.append(json.loads((folder / "manifest.json").read_text())["counts"]["sft"]["reasoning_lost"])
        if dialect == "trl":
            rows = [json.loads(line) for line in (folder / "sft.jsonl").read_text().splitlines()]
            carried = sum(any(m["reasoning_content"] for m in row["messages"]) for row in rows)
    assert carried > 0 and lost == [0, carried, 0]


def test_sft_keeps_only_successful_rollouts_by_default_as_the_command_does(tmp_path: Path) -> None:
    examples = ROOT / "examples" / "rollouts"
    run_pipeline(_config(tmp_path, f"inputs: [{examples}]\noutput_dir: out\nsft: {{}}\n"))
    run_pipeline(_config(tmp_path, f"inputs: [{examples}]\noutput_dir: out\nsft: {{success_only: false}}\n"))
    manifests = (tmp_path / "out" / v / "manifest.json" for v in ("v1", "v2"))
    default, everything = (json.loads(path.read_text()) for path in manifests)
    assert default["counts"]["sft"]["skipped"]["not_success"] > 0
    assert "not_success" not in everything["counts"]["sft"]["skipped"]
    rows = (tmp_path / "out" / "v1" / "sft.jsonl").read_bytes().splitlines()
    assert all(json.loads(row)["reward"] >= 1.0 for row in rows)
