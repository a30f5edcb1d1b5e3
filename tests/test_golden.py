"""THE BEHAVIOUR PIN FOR REFACTORS: every data command's output bytes, before and after a change.

A restructuring (issue #24) must leave rollcraft's behaviour unchanged: the same output bytes on
the same inputs, for every command and dialect. This test runs the real CLI (the ``rollcraft``
console script in a subprocess, as a user would) over fixed inputs and compares the sha256 of
everything it writes with the goldens stored in ``tests/fixtures/golden/golden.json``:

* the inputs, one test each: the bundled examples (``examples/rollouts/``); rollouts never seen
  elsewhere (``tests/fixtures/golden/unseen/``, written by ``make_unseen.py`` beside it: the
  examples' generators with another seed, the tutorial and chat shapes, secrets, reasoning, odd
  and quarantined lines, a gzip file); and the real NeMo Gym files from both of their sources,
  ``shared`` (``../shared/data/nemo-gym-rollouts``) and ``wheel`` (the same-named files taken
  from the ``nemo-gym`` wheel into ``.cache/nemo-gym-rollouts``; four files differ between the
  two, so each has its own goldens). The source ``tests.conftest.REAL_DIR`` points at always
  runs; the other runs when it is there.
* the commands, each run once (``_commands`` lists them): ``inspect --json``, ``filter`` (three
  sets of flags, one writing to stdout), ``sample`` and ``balance`` (two each), ``redact --json``
  (replace; drop with an allowlist), ``apply-review`` (a decisions file made from the sample),
  ``sft`` in trl/openai/nemo-rl (``--include-failures``, ``--reasoning think|drop``,
  ``--success-threshold``, ``--arguments object``, stdin to stdout), ``dpo`` in
  trl/openai/nemo-rl with ``--pairing best-worst|all|top-k`` and ``--completion
  full|first-divergence``, ``validate --json --html`` of an SFT and a DPO output, and
  ``rollcraft run`` of a small pipeline config with ``--workers 1`` and ``--workers 2``.
* what is compared: every output file's bytes (JSONL, HTML, id lists), every JSON report after
  normalizing what legitimately varies (the temporary folder and the input folder in strings
  become ``<TMP>`` / ``<IN>``; the keys in ``VOLATILE_KEYS``, times and versions, are dropped),
  and each command's exit code and terminal text (stdout + stderr, paths normalized, at a fixed
  width wide enough that no path wraps).

When a change is MEANT to change output, regenerate on purpose and commit the new goldens with
the change, saying why in the commit message::

    ROLLCRAFT_UPDATE_GOLDEN=1 python -m pytest -q -p no:cacheprovider tests/test_golden.py

(it rewrites the entries of the sources it ran; the other real source is kept as it was, so run
it where both sources exist, or point ``ROLLCRAFT_GOLDEN_WHEEL_DIR`` at the wheel's files).
A failure lists every output that changed, appeared or disappeared. Only ``*.terminal`` entries
changed after upgrading a dependency (rich draws the tables) is a rendering change, not rollcraft's.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import subprocess
import sys
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from xxhash import xxh3_64_hexdigest

from benchmarks.real_data import CACHE_DIR, SHARED_DIR
from tests.conftest import EXAMPLES_DIR, FIXTURES, REAL_DIR

GOLDEN = FIXTURES / "golden" / "golden.json"
#: Rollouts neither the examples nor the real files hold (``make_unseen.py`` there wrote them).
UNSEEN_DIR = FIXTURES / "golden" / "unseen"
UPDATE = os.environ.get("ROLLCRAFT_UPDATE_GOLDEN") == "1"
#: JSON keys whose values are times, durations or versions of the environment: dropped.
VOLATILE_KEYS = frozenset({"created", "duration_s", "versions"})
#: Files the test writes itself (inputs of commands), or a cache of file stats: not outputs.
NOT_OUTPUTS = frozenset({"in", "decisions.jsonl", "allow.txt", "run_w1.yaml", "run_w2.yaml"})
#: Commands whose exit status is not 0 on purpose, by source (none: every command succeeds).
KNOWN_FAILURES: dict[str, dict[str, str]] = {}
#: Commands that read their standard input from a file (an output of the first group).
STDIN = {"sft_stdin": "filter_flags.jsonl"}
#: ``--allowlist`` of ``redact_drop``: one literal and one regex.
ALLOWLIST = "admin@example.com\nre:.*@example\\.org\n"
NOT_OUTPUT_NAMES = frozenset({".rollcraft-input-digests.json"})
#: The console script ``rollcraft`` (its entry point, ``rollcraft.cli:main``), as a user runs it.
_SCRIPT = Path(sys.executable).with_name("rollcraft")
CLI = [str(_SCRIPT)] if _SCRIPT.exists() else [sys.executable, "-c", "from rollcraft.cli import main; main()"]
#: Wide enough that no line with a temporary path wraps (wrapping would depend on its length).
COLUMNS = "400"

PIPELINE = """\
inputs: [in/]
output_dir: {out}
filters: {{max_turns: 40, dedupe: true, min_success_rate: 0.1}}
redact: {{on_secret: replace}}
balance: {{max_per_category: 4, by: task_type, seed: 3}}
sft: {{format: openai, success_only: true}}
dpo: {{format: nemo-rl, pairing: all, min_margin: 0.1}}
validate: {{enabled: true, fail_on_error: false}}
"""


@dataclass(frozen=True)
class Source:
    name: str
    folder: Path


def _sources() -> list[Any]:
    wheel = Path(os.environ.get("ROLLCRAFT_GOLDEN_WHEEL_DIR", str(CACHE_DIR)))
    params: list[Any] = [
        pytest.param(Source("examples", EXAMPLES_DIR), id="examples"),
        pytest.param(Source("unseen", UNSEEN_DIR), id="unseen"),
    ]
    for name, folder in (("shared", SHARED_DIR), ("wheel", wheel)):
        here = any(folder.glob("*.jsonl"))
        required = folder.resolve() == REAL_DIR.resolve()
        marks = [] if here or required else [pytest.mark.skip(reason=f"{folder} is not here")]
        params.append(pytest.param(Source(name, folder), id=name, marks=marks))
    return params


def _commands() -> tuple[dict[str, list[str]], dict[str, list[str]]]:
    """(independent commands, commands that read the first group's outputs), by name."""
    first: dict[str, list[str]] = {
        "inspect": ["inspect", "in", "--json"],
        "filter_flags": [
            "filter",
            "in",
            "-o",
            "filter_flags.jsonl",
            "--report",
            "filter_flags.json",
            "--rejects",
            "filter_flags_rejects.jsonl",
            "--min-reward",
            "0.5",
            "--max-turns",
            "40",
            "--dedupe",
        ],
        "filter_rate": [
            "filter",
            "in",
            "-o",
            "filter_rate.jsonl",
            "--report",
            "filter_rate.json",
            "--min-task-success-rate",
            "0.2",
            "--require-tool-use",
            "--drop-flagged",
            "none",
            "--redact-secrets",
        ],
        "sample": [
            "sample",
            "in",
            "-o",
            "sample.jsonl",
            "--sizes",
            "3,4,5",
            "--seed",
            "0",
            "--report",
            "sample.json",
        ],
        "balance": [
            "balance",
            "in",
            "-o",
            "balance.jsonl",
            "--max-per-category",
            "2",
            "--seed",
            "1",
            "--report",
            "balance.json",
        ],
        "redact": ["redact", "in", "-o", "redact.jsonl", "--json"],
        "redact_drop": [
            *("redact", "in", "-o", "redact_drop.jsonl", "--on-secret", "drop"),
            *("--allowlist", "allow.txt", "--json"),
        ],
        "filter_stdout": ["filter", "in", "-o", "-", "--success-only", "--max-chars", "20000"],
        "sample_none": [
            *("sample", "in", "-o", "sample_none.jsonl", "--by", "none"),
            *("--edges", "0.3", "--sizes", "2,6", "--seed", "7"),
        ],
        "balance_agent": [
            *("balance", "in", "-o", "balance_agent.jsonl", "--by", "agent"),
            *("--max-per-category", "3", "--report", "balance_agent.json"),
        ],
        "sft_think": [
            *("sft", "in", "-o", "sft_think.jsonl", "--format", "openai", "--reasoning", "think"),
        ],
        "sft_drop": [
            *("sft", "in", "-o", "sft_drop.jsonl", "--format", "nemo-rl", "--reasoning", "drop"),
            *("--success-threshold", "0.5", "--arguments", "object"),
        ],
        "dpo_top3": [
            *("dpo", "in", "-o", "dpo_top3.jsonl", "--pairing", "top-k", "--k", "3"),
            *("--min-margin", "0.3", "--completion", "first-divergence", "--redact-secrets"),
        ],
        "sft_failures": [
            "sft",
            "in",
            "-o",
            "sft_failures.jsonl",
            "--include-failures",
            "--arguments",
            "object",
            "--report",
            "sft_failures.json",
        ],
        "run_w1": ["run", "run_w1.yaml", "--workers", "1"],
        "run_w2": ["run", "run_w2.yaml", "--workers", "2"],
    }
    for dialect in ("trl", "openai", "nemo-rl"):
        first[f"sft_{dialect}"] = [
            "sft",
            "in",
            "-o",
            f"sft_{dialect}.jsonl",
            "--format",
            dialect,
            "--report",
            f"sft_{dialect}.json",
        ]
        for pairing, completion in (
            ("best-worst", None),
            ("all", "full"),
            ("all", "first-divergence"),
            ("top-k", "full"),
        ):
            name = f"dpo_{dialect}_{pairing}_{completion or 'default'}"
            argv = [
                "dpo",
                "in",
                "-o",
                f"{name}.jsonl",
                "--format",
                dialect,
                "--pairing",
                pairing,
                "--report",
                f"{name}.json",
            ]
            first[name] = argv + (["--completion", completion] if completion else [])
    then: dict[str, list[str]] = {
        "sft_stdin": ["sft", "-", "-o", "-", "--format", "openai"],  # stdin: STDIN["sft_stdin"]
        "apply_review": [
            "apply-review",
            "in",
            "--decisions",
            "decisions.jsonl",
            "-o",
            "reviewed.jsonl",
            "--rejects",
            "reviewed_rejects.jsonl",
            "--report",
            "reviewed.json",
        ],
        "apply_review_sample": [
            "apply-review",
            "sample.jsonl",
            "--decisions",
            "decisions.jsonl",
            "-o",
            "reviewed_sample.jsonl",
            "--drop-undecided",
        ],
        "validate_sft": [
            "validate",
            "sft_trl.jsonl",
            "--json",
            "validate_sft.json",
            "--html",
            "validate_sft.html",
        ],
        "validate_dpo": [
            "validate",
            "dpo_openai_all_first-divergence.jsonl",
            "--json",
            "validate_dpo.json",
            "--html",
            "validate_dpo.html",
        ],
    }
    return first, then


def _write_decisions(work: Path) -> None:
    """Reject every other sampled rollout, accept the rest, and name one id that matches none."""
    sample = work / "sample.jsonl"
    lines = sample.read_bytes().splitlines() if sample.exists() else []
    rows = [{"rollout_id": "0" * 16, "decision": "reject", "note": "matches nothing"}]
    for index, line in enumerate(lines):
        decision = "reject" if index % 2 else "accept"
        rows.append(
            {"rollout_id": xxh3_64_hexdigest(line.strip()), "decision": decision, "note": f"golden {index}"}
        )
    (work / "decisions.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))


def _run(work: Path, name: str, argv: list[str]) -> tuple[int, str]:
    env = {
        **os.environ,
        "COLUMNS": COLUMNS,
        "LINES": "50",
        "NO_COLOR": "1",
        "TERM": "dumb",
        "PYTHONHASHSEED": "0",
    }
    env.pop("FORCE_COLOR", None)
    stdin = (work / STDIN[name]).read_bytes().decode() if name in STDIN else None
    result = subprocess.run(
        [*CLI, *argv],
        input=stdin,
        cwd=work,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    return result.returncode, f"{result.stdout}\n--- stderr ---\n{result.stderr}"


def _normalizer(work: Path, source: Path) -> Callable[[str], str]:
    """Replace the temporary and input folders (as given and resolved) by placeholders."""
    pairs = sorted(
        {
            (str(work.resolve()), "<TMP>"),
            (str(work), "<TMP>"),
            (str(source.resolve()), "<IN>"),
            (str(source), "<IN>"),
        },
        key=lambda pair: -len(pair[0]),
    )

    def normalize(text: str) -> str:
        for old, new in pairs:
            text = text.replace(old, new)
        return text

    return normalize


def _strip(value: Any, normalize: Callable[[str], str]) -> Any:
    if isinstance(value, dict):
        return {k: _strip(v, normalize) for k, v in value.items() if k not in VOLATILE_KEYS}
    if isinstance(value, list):
        return [_strip(v, normalize) for v in value]
    if isinstance(value, str):
        return normalize(value)
    return value


def _json_digest(text: str, normalize: Callable[[str], str]) -> str | None:
    try:
        value = json.loads(text)
    except ValueError:
        return None
    canonical = json.dumps(_strip(value, normalize), indent=1, ensure_ascii=False)
    return hashlib.sha256(canonical.encode()).hexdigest()


def _terminal_digest(text: str, normalize: Callable[[str], str]) -> str:
    stdout, _, stderr = text.partition("\n--- stderr ---\n")
    json_stdout = _json_digest(stdout, normalize) if stdout.lstrip().startswith("{") else None
    body = f"json:{json_stdout}" if json_stdout else normalize(stdout)
    # "Wrote version v1 to /tmp/..." etc.: the folder is normalized; nothing else varies.
    return hashlib.sha256(f"{body}\n--- stderr ---\n{normalize(stderr)}".encode()).hexdigest()


def _output_digests(work: Path, normalize: Callable[[str], str]) -> dict[str, str]:
    digests: dict[str, str] = {}
    for path in sorted(work.rglob("*")):
        relative = path.relative_to(work)
        if relative.parts[0] in NOT_OUTPUTS or path.name in NOT_OUTPUT_NAMES or not path.is_file():
            continue
        data = path.read_bytes()
        digest = None
        if path.suffix == ".json":
            digest = _json_digest(data.decode(), normalize)
        digests[relative.as_posix()] = digest or hashlib.sha256(data).hexdigest()
    return digests


def _input_digest(folder: Path) -> str:
    names = sorted(folder.glob("*.jsonl*"))
    lines = [f"{p.name} {hashlib.sha256(p.read_bytes()).hexdigest()}" for p in names]
    return hashlib.sha256("\n".join(lines).encode()).hexdigest()


def _observe(work: Path, source: Path) -> dict[str, str]:
    """Run every command once in ``work`` (inputs at ``work/in``); every digest, by name."""
    (work / "in").symlink_to(source.resolve(), target_is_directory=True)
    (work / "allow.txt").write_text(ALLOWLIST)
    for name in ("run_w1", "run_w2"):
        (work / f"{name}.yaml").write_text(PIPELINE.format(out=name))
    first, then = _commands()
    results: dict[str, tuple[int, str]] = {}
    with ThreadPoolExecutor(max_workers=2) as pool:
        for group in (first, then):
            if group is then:
                _write_decisions(work)
            runs = pool.map(lambda item: _run(work, *item), group.items())
            results |= dict(zip(group, runs, strict=True))
    normalize = _normalizer(work, source)
    observed = {f"{name}.exit": str(code) for name, (code, _) in results.items()}
    observed |= {f"{name}.terminal": _terminal_digest(text, normalize) for name, (_, text) in results.items()}
    observed |= _output_digests(work, normalize)
    return dict(sorted(observed.items()))


def _differences(stored: dict[str, str], observed: dict[str, str]) -> list[str]:
    lines = []
    for key in sorted(stored.keys() | observed.keys()):
        if key not in observed:
            lines.append(f"  disappeared: {key}")
        elif key not in stored:
            lines.append(f"  new:         {key}")
        elif stored[key] != observed[key]:
            lines.append(f"  changed:     {key}")
    return lines


@pytest.mark.parametrize("source", _sources())
def test_outputs_match_the_goldens(source: Source, tmp_path: Path) -> None:
    """Every command's outputs, reports, exit codes and terminal text are byte-identical."""
    inputs = _input_digest(source.folder)
    observed = _observe(tmp_path, source.folder)
    goldens: dict[str, Any] = json.loads(GOLDEN.read_text()) if GOLDEN.exists() else {}
    if UPDATE:
        goldens[source.name] = {"inputs": inputs, "outputs": observed}
        GOLDEN.parent.mkdir(parents=True, exist_ok=True)
        GOLDEN.write_text(json.dumps(dict(sorted(goldens.items())), indent=1) + "\n")
        return
    stored = goldens.get(source.name)
    assert stored is not None, f"no goldens for {source.name}: run with ROLLCRAFT_UPDATE_GOLDEN=1"
    assert stored["inputs"] == inputs, (
        f"the input files of {source.name} ({source.folder}) are not those the goldens were "
        "made from; the goldens say nothing about these inputs"
    )
    changed = _differences(stored["outputs"], observed)
    if changed:
        pytest.fail(
            f"{len(changed)} output(s) of the CLI on {source.name} differ from the goldens "
            f"({GOLDEN.relative_to(FIXTURES.parent.parent)}):\n"
            + "\n".join(changed)
            + "\nIf the change is intended, regenerate: ROLLCRAFT_UPDATE_GOLDEN=1 python -m pytest "
            "tests/test_golden.py (and say why in the commit)."
        )


def test_the_goldens_cover_every_command() -> None:
    """The stored goldens name every command and hold no failed run by accident."""
    goldens = json.loads(GOLDEN.read_text())
    first, then = _commands()
    for name, entry in goldens.items():
        outputs = entry["outputs"]
        missing = [c for c in (*first, *then) if f"{c}.exit" not in outputs]
        assert not missing, f"{name}: no golden for {missing}"
        assert re.fullmatch(r"[0-9a-f]{64}", entry["inputs"])
        failed = {k: v for k, v in outputs.items() if k.endswith(".exit") and v != "0"}
        assert failed == KNOWN_FAILURES.get(name, {}), f"{name}: the goldens pin a failing command"
        data = [k.removeprefix("run_w1/") for k in outputs if k.startswith("run_w1/v1/")]
        differ = [k for k in data if outputs[f"run_w1/{k}"] != outputs.get(f"run_w2/{k}")]
        # The manifests name their own config file and folder; the data is the same bytes.
        assert differ == ["v1/manifest.json"], f"{name}: --workers 2 changes {differ}"
