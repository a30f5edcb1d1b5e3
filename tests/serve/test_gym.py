"""The real NeMo Gym collecting rollouts from ``rollcraft serve``: its own ``gym eval run`` on its
bundled ``example_single_tool_call`` environment (reward 1 when the answer calls ``get_weather``),
through both of its model servers (``openai_model`` -> /v1/responses, ``vllm_model`` ->
/v1/chat/completions), the rollouts read back by rollcraft with every line accounted for.

It runs when ``ROLLCRAFT_GYM_VENV`` names a virtualenv holding ``nemo-gym`` (``docs/serve.md``
says how to make one); each run takes about a minute. Everything stays on 127.0.0.1, and every
process it starts (the server, gym, Ray and gym's servers) is gone when it ends.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from rollcraft import ReadReport, Rollout, read_rollouts
from rollcraft.serve._request import build_messages, parse_tools
from tests.serve._model import tool_model

GYM_VENV = os.environ.get("ROLLCRAFT_GYM_VENV", "")
pytestmark = pytest.mark.skipif(
    not GYM_VENV or not (Path(GYM_VENV) / "bin" / "gym").is_file(),
    reason="set ROLLCRAFT_GYM_VENV to a virtualenv with nemo-gym installed (docs/serve.md) to run it",
)
ENVIRONMENT = "example_single_tool_call"
#: The folders gym would build a virtualenv for, one per server; all point at the one venv.
SERVERS = (
    "responses_api_models/openai_model",
    "responses_api_models/vllm_model",
    f"resources_servers/{ENVIRONMENT}",
    "responses_api_agents/simple_agent",
    "environment_servers/legacy_agent",
)
TASKS, REPEATS = 5, 2


def gym_tasks() -> list[dict[str, Any]]:
    """The environment's own tasks, from the installed package."""
    code = (
        "import importlib.util, pathlib;"
        f"spec = importlib.util.find_spec('resources_servers.{ENVIRONMENT}');"
        "print(pathlib.Path(list(spec.submodule_search_locations)[0]) / 'data' / 'example.jsonl')"
    )
    python = str(Path(GYM_VENV) / "bin" / "python")
    path = subprocess.run([python, "-c", code], capture_output=True, text=True, check=True).stdout.strip()
    return [json.loads(line) for line in Path(path).read_text().splitlines() if line.strip()]


def examples(tasks: list[dict[str, Any]]) -> list[tuple[list[dict[str, Any]], list[dict[str, Any]]]]:
    """Each task's prompt, as the server renders it, answered with a ``get_weather`` call."""
    out = []
    for task in tasks:
        params = task["responses_create_params"]
        call = {"type": "function", "function": {"name": "get_weather", "arguments": {"city": "sf"}}}
        messages = [
            *build_messages(params["input"]),
            {"role": "assistant", "content": "", "tool_calls": [call]},
        ]
        out.append((messages, parse_tools(params)[0]))
    return out


def ours(marker: str) -> list[int]:
    """The processes whose environment carries ``marker`` (set for everything this test starts)."""
    pids = []
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit() or int(proc.name) == os.getpid():
            continue
        try:
            if marker.encode() in (proc / "environ").read_bytes():
                pids.append(int(proc.name))
        except OSError:
            continue
    return pids


def left_over(marker: str, keep: int, wait: float) -> list[int]:
    """The marked processes but ``keep`` still there after up to ``wait`` seconds."""
    deadline = time.monotonic() + wait
    while (pids := [pid for pid in ours(marker) if pid != keep]) and time.monotonic() < deadline:
        time.sleep(0.2)
    return pids


def stop_all(marker: str) -> None:
    """SIGTERM, then SIGKILL, to every marked process."""
    for sig in (signal.SIGTERM, signal.SIGKILL):
        for pid in ours(marker):
            try:
                os.kill(pid, sig)
            except ProcessLookupError:
                pass
        if not left_over(marker, 0, 10):
            return


@pytest.fixture(scope="module")
def gym_run(
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[tuple[Path, dict[str, str], list[dict[str, Any]]]]:
    """A work folder with the tasks, the gym config, the venv links, a model taught on the tasks'
    prompts and ``rollcraft serve`` running it; the environment marks every process started."""
    import torch

    torch.set_num_threads(1)
    root = tmp_path_factory.mktemp("gym")
    tasks = gym_tasks()[:TASKS]
    (root / "tasks.jsonl").write_text("".join(json.dumps(t) + "\n" for t in tasks))
    dataset = {"name": "heldout", "type": "validation", "jsonl_fpath": str(root / "tasks.jsonl")}
    config = {  # JSON is YAML
        "config_paths": [f"environments/{ENVIRONMENT}/config.yaml"],
        f"{ENVIRONMENT}_simple_agent": {
            "responses_api_agents": {"simple_agent": {"datasets": [{**dataset, "license": "Apache 2.0"}]}}
        },
    }
    (root / "gym.yaml").write_text(json.dumps(config))
    for server in SERVERS:
        (root / "venvs" / server).mkdir(parents=True)
        (root / "venvs" / server / ".venv").symlink_to(GYM_VENV)
    model = tool_model(root / "model", examples=examples(tasks), steps=250)
    marker = f"ROLLCRAFT_GYM_TEST={root}"
    env = {
        **os.environ,
        "ROLLCRAFT_GYM_TEST": str(root),
        "RAY_USAGE_STATS_ENABLED": "0",
        "RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER": "0",
        "RAY_TMPDIR": str(root / "ray"),
        "RAY_AUTH_MODE": "disabled",
        "HF_HUB_OFFLINE": "1",
        "TRANSFORMERS_OFFLINE": "1",
    }
    (root / "ray").mkdir()
    serve = subprocess.Popen(
        [sys.executable, "-m", "rollcraft.cli", "serve", str(model), "--port", "0", "--model-name", "tiny"],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
        env=env,
    )
    try:
        assert serve.stdout is not None
        lines = [serve.stdout.readline() for _ in range(2)]
        env["BASE_URL"] = lines[1].removeprefix("OpenAI base URL: ").strip()
        env["SERVE_PID"], env["ROLLCRAFT_GYM_MARKER"] = str(serve.pid), marker
        yield root, env, tasks
    finally:
        stop_all(marker)
        serve.wait(10)
    assert not ours(marker), "processes of the test outlived it"


@pytest.mark.parametrize("model_type", ["openai_model", "vllm_model"])
def test_gym_collects_from_rollcraft_serve(
    gym_run: tuple[Path, dict[str, str], list[dict[str, Any]]], model_type: str
) -> None:
    root, env, tasks = gym_run
    output = root / model_type / "rollouts.jsonl"
    output.parent.mkdir()
    command = [
        str(Path(GYM_VENV) / "bin" / "gym"), "eval", "run", "--config", str(root / "gym.yaml"),
        "--model-type", model_type, "--model-url", env["BASE_URL"], "--model", "tiny",
        "--model-api-key", "unused", "--split", "validation", "--output", str(output),
        "--limit", str(TASKS), "--num-repeats", str(REPEATS), "--temperature", "0",
        "+upload_rollouts=false", f"+uv_venv_dir={root / 'venvs'}", "+skip_venv_if_present=true",
        "+model_endpoint_readiness_timeout_seconds=60",
    ]  # fmt: skip
    gym = subprocess.Popen(
        command, cwd=output.parent, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    )
    try:
        log, _ = gym.communicate(timeout=400)
    finally:
        if gym.poll() is None:
            gym.kill()
            gym.wait()
    assert gym.returncode == 0, log[-3000:]
    # gym stops Ray and its servers itself: nothing it started outlives it (but the model server);
    # Ray's workers take tens of seconds to go on a loaded 2-core machine
    assert not left_over(env["ROLLCRAFT_GYM_MARKER"], int(env["SERVE_PID"]), 120)

    lines = output.read_text().splitlines()
    assert len(lines) == len(tasks) * REPEATS
    report = ReadReport()
    rollouts = [r for r in read_rollouts([str(output)], report=report) if isinstance(r, Rollout)]
    assert report.lines == report.rollouts == len(rollouts) == len(lines) and not report.quarantined
    assert {r.conversation.messages[-1]["role"] for r in rollouts} == {"assistant"}
    # the taught model calls get_weather on every task: the verifier read our function_call items
    assert [r.reward for r in rollouts] == [1.0] * len(lines), log[-3000:]
    assert all(r.n_tool_calls >= 1 for r in rollouts)
