"""``curriculum`` on NeMo Gym's real files: every task accounted for, every row an input row.

NeMo Gym's request model (``nemo_gym.base_resources_server.BaseRunRequest``) imports its server
stack (aiohttp, fastapi, omegaconf, hydra, wandb, scipy), which rollcraft's environment does not
hold: :func:`check_input_row` checks what it requires (a ``responses_create_params`` object with an
``input``, no null ``tool_choice``/``parallel_tool_calls``), or a materialized task row; and
with NeMo Gym (imported here, or NeMo Gym's own virtualenv named by ``ROLLCRAFT_GYM_VENV``, which
``.ci/run`` builds), the last two tests validate with the model itself and read the file as
``gym eval run`` does.
"""

from __future__ import annotations

import importlib
import json
import os
import subprocess
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

from rollcraft.curriculum import CurriculumConfig, build_curriculum
from tests._expected_real import EXPECTED


def check_input_row(row: dict[str, Any]) -> None:
    assert not any(key.startswith("_ng_") for key in row), sorted(row)
    assert "response" not in row and "reward" not in row
    if isinstance(row.get("task_id"), dict) and "task_input" in row:
        return  # a materialized task: its environment server validates task_input
    params = row["responses_create_params"]
    assert isinstance(params, dict) and isinstance(params["input"], (str, list))
    assert all(value is not None for value in params.values())


@pytest.fixture(scope="module")
def everything(real_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> tuple[dict[str, Any], Path]:
    out = tmp_path_factory.mktemp("curriculum") / "all.jsonl"
    curriculum = build_curriculum([str(real_dir)], CurriculumConfig(low=0.0, high=1.0))
    curriculum.write(out)
    return curriculum.report(), out


def test_every_real_task_is_accounted_for(real_dir: Path) -> None:
    report = build_curriculum([str(real_dir)]).report()
    rollout_tasks = sum(v[3] for v in EXPECTED.values())
    assert report["rates_from"]["rollouts"] == rollout_tasks == 370
    assert sum(report["outcomes"].values()) == report["tasks"] == len(report["task_list"])
    assert sum(report["histogram"].values()) == report["tasks"]
    assert sum(t["tasks"] for t in report["per_type"].values()) == report["tasks"]
    assert report["read"]["lines"] == report["read"]["rollouts"] + sum(report["read"]["quarantined"].values())


def test_every_real_task_gives_an_input_row(everything: tuple[dict[str, Any], Path]) -> None:
    report, out = everything
    rows = [json.loads(line) for line in out.read_text().splitlines()]
    assert len(rows) == report["tasks"] == report["outcomes"]["kept"]
    assert report["rows_from"]["materialized_inputs"] > 0 and report["rows_from"]["profile_sample"] > 0
    for row in rows:
        check_input_row(row)


#: NeMo Gym's own virtualenv (``.ci/run`` builds it: ``scripts/gym_venv.sh``), where its models import.
GYM_PYTHON = Path(os.environ.get("ROLLCRAFT_GYM_VENV", "/nonexistent")) / "bin" / "python"

_VALIDATE = """
import json, sys
from nemo_gym.base_resources_server import BaseRunRequest
n = 0
for line in open(sys.argv[1]):
    row = json.loads(line)
    if not (isinstance(row.get("task_id"), dict) and "task_input" in row):
        BaseRunRequest.model_validate(row)
        n += 1
print(n)
"""

_PREPROCESS = """
import json, sys
from collections import Counter
from nemo_gym import rollout_collection as c
config = c.RolloutCollectionConfig(
    input_jsonl_fpath=sys.argv[1], output_jsonl_fpath=sys.argv[2], agent_name="agent"
)
rows = c.RolloutCollectionHelper()._preprocess_rows_from_config(config)
print(json.dumps([len(rows), sorted(set(Counter(r["_ng_task_index"] for r in rows).values()))]))
"""


def _in_gym(code: str, *args: str) -> str:
    """Run ``code`` with NeMo Gym's own Python (its models and their dependencies import there)."""
    if not GYM_PYTHON.exists():
        pytest.skip("nemo_gym does not import here and ROLLCRAFT_GYM_VENV names no NeMo Gym virtualenv")
    done = subprocess.run([str(GYM_PYTHON), "-c", code, *args], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    return done.stdout.strip().splitlines()[-1]


def _gym_imports(module: str) -> bool:
    try:
        importlib.import_module(module)
    except ImportError:
        return False
    return True


def test_rows_pass_nemo_gyms_own_model(everything: tuple[dict[str, Any], Path]) -> None:
    _, out = everything
    if not _gym_imports("nemo_gym.base_resources_server"):
        validated = int(_in_gym(_VALIDATE, str(out)))
        assert validated > 0
        return
    model = importlib.import_module("nemo_gym.base_resources_server").BaseRunRequest
    for line in out.read_text().splitlines():
        row = json.loads(line)
        if not (isinstance(row.get("task_id"), dict) and "task_input" in row):
            model.model_validate(row)


def test_gym_eval_run_reads_the_rows_and_repeats(real_dir: Path, tmp_path: Path) -> None:
    """What ``gym eval run --input`` does first: read and number the rows; N copies of a row are
    one task with N rollouts, as ``--num-repeats N`` makes them."""
    out = tmp_path / "next.jsonl"
    build_curriculum([str(real_dir)], CurriculumConfig(low=0.0, high=1.0, max_per_type=2, repeats=3)).write(
        out
    )
    if not _gym_imports("nemo_gym.rollout_collection"):
        n_rows, repeats = json.loads(_in_gym(_PREPROCESS, str(out), str(tmp_path / "round2.jsonl")))
        assert n_rows == len(out.read_text().splitlines()) and repeats == [3]
        return
    collection = importlib.import_module("nemo_gym.rollout_collection")
    config = collection.RolloutCollectionConfig(
        input_jsonl_fpath=str(out), output_jsonl_fpath=str(tmp_path / "round2.jsonl"), agent_name="agent"
    )
    rows = collection.RolloutCollectionHelper()._preprocess_rows_from_config(config)
    per_task = Counter(row["_ng_task_index"] for row in rows)
    assert len(rows) == len(out.read_text().splitlines()) and set(per_task.values()) == {3}
