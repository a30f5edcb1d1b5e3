"""NeMo Gym beside rollcraft: find or build its virtualenv, run ``gym eval run``, start and stop processes.

NeMo Gym 0.7.0 needs Python 3.13 and about 1.5 GB of its own dependencies (Ray among them), so it
lives in a virtualenv of its own (:func:`install_gym_venv`, the recipe of ``docs/serve.md``) and
rollcraft talks to it only through its command line. Everything listens on 127.0.0.1; Ray is told
to stay off the network (:func:`gym_environment`); ``+upload_rollouts=false`` keeps rollouts here.

:class:`Processes` starts every child in a process group of its own with a marker in its
environment, and :meth:`Processes.stop_all` ends each group and then every process that still
carries the marker (Ray's daemons leave the group; gym's servers ignore SIGINT), so nothing
outlives the demo, also after Ctrl-C or a failure.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from types import FrameType
from typing import IO, Any

from rollcraft._errors import DependencyError, OutputError

__all__ = [
    "GYM_VERSION",
    "Processes",
    "default_gym_venv",
    "exit_on_sigterm",
    "find_gym_venv",
    "gym_environment",
    "install_gym_venv",
    "link_venvs",
    "marked_processes",
    "run_gym_eval",
    "start_server",
    "write_gym_config",
]

GYM_VERSION = "0.7.0"
#: The server folders ``gym`` would build a virtualenv for, one each; all point at the one venv.
_SERVERS = (
    "responses_api_models/openai_model",
    "responses_api_agents/simple_agent",
    "environment_servers/legacy_agent",
)
_MARKER = "ROLLCRAFT_DEMO_RUN"


def default_gym_venv() -> Path:
    """Where the demo builds NeMo Gym's virtualenv when none is given: the user's cache."""
    cache = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(cache) / "rollcraft" / f"nemo-gym-{GYM_VERSION}"


def _has_gym(venv: Path) -> bool:
    return (venv / "bin" / "gym").is_file() and (venv / "bin" / "python").exists()


def find_gym_venv(explicit: Path | None = None) -> Path | None:
    """``explicit`` (``--gym-venv``), else ``$ROLLCRAFT_GYM_VENV``, else the default; None: none has gym."""
    if explicit is not None:
        if not _has_gym(explicit):
            raise DependencyError(f"{explicit}: no NeMo Gym there (no bin/gym); see docs/training.md")
        return explicit
    named = os.environ.get("ROLLCRAFT_GYM_VENV")
    for candidate in ([Path(named)] if named else []) + [default_gym_venv()]:
        if _has_gym(candidate):
            return candidate
    return None


def _python313() -> str:
    """A Python 3.13 interpreter: pyenv's newest 3.13.x, else ``python3.13`` on PATH."""
    root = Path(os.environ.get("PYENV_ROOT") or Path.home() / ".pyenv") / "versions"
    versions = sorted(root.glob("3.13.*/bin/python3"), key=lambda p: [int(x) for x in p.parts[-3].split(".")])
    found = [str(v) for v in reversed(versions)] + [p for p in [shutil.which("python3.13")] if p]
    for python in found:
        if subprocess.run([python, "-c", "pass"], capture_output=True, check=False).returncode == 0:
            return python
    raise DependencyError("NeMo Gym needs Python 3.13: install it (e.g. pyenv install 3.13) and retry")


def _uv(tools: Path) -> list[str]:
    """The ``uv`` command: on PATH, else installed with pip into the virtualenv ``tools`` (2 s)."""
    found = shutil.which("uv")
    if found:
        return [found]
    uv = tools / "bin" / "uv"
    if not uv.is_file():
        for step in (
            [sys.executable, "-m", "venv", str(tools)],
            [str(tools / "bin" / "pip"), "install", "-q", "uv"],
        ):
            done = subprocess.run(step, capture_output=True, text=True, check=False)
            if done.returncode != 0:
                raise DependencyError(f"installing uv failed: {done.stderr.strip()[-300:]}")
    return [str(uv)]


def install_gym_venv(dest: Path, *, log: Any = print) -> Path:
    """Build NeMo Gym's virtualenv at ``dest`` (``uv``, Python 3.13, bytecode compiled); returns it.

    NeMo Gym 0.7.0 declares Python >= 3.13.14 and runs on any 3.13: the version check is told so
    with ``--python-version 3.13.14``. About 1.5 GB; 10-60 s from the package index.
    """
    if _has_gym(dest):
        return dest
    uv, python = _uv(dest.parent / "uv-tools"), _python313()
    log(f"installing NeMo Gym {GYM_VERSION} into {dest} (Python {python}, uv)")
    dest.parent.mkdir(parents=True, exist_ok=True)
    steps = [
        [*uv, "venv", "-q", "-p", python, str(dest)],
        [*uv, "pip", "install", "-q", "--python", str(dest / "bin" / "python"), "--python-version",
         "3.13.14", "--compile-bytecode", f"nemo-gym=={GYM_VERSION}"],
    ]  # fmt: skip
    # uv trusts its own bundled roots unless told otherwise: the system's store also holds a
    # company's or a proxy's CA, which pip uses (UV_SYSTEM_CERTS; UV_NATIVE_TLS in older uv).
    env = {"UV_SYSTEM_CERTS": "1", "UV_NATIVE_TLS": "1", **os.environ}
    for step in steps:
        done = subprocess.run(step, capture_output=True, text=True, check=False, env=env)
        if done.returncode != 0:
            raise DependencyError(f"installing NeMo Gym failed: {done.stderr.strip()[-300:]}")
    return dest


def gym_environment(ray_dir: Path, marker: str) -> dict[str, str]:
    """The environment of every child: Ray on 127.0.0.1 with its files in ``ray_dir``, nothing sent out."""
    inherited = {k: v for k, v in os.environ.items() if k != "RAY_ADDRESS"}  # gym starts its own Ray
    return {
        **inherited,
        _MARKER: marker,
        "RAY_USAGE_STATS_ENABLED": "0",
        "RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER": "0",
        "RAY_AUTH_MODE": "disabled",
        "RAY_TMPDIR": str(ray_dir),
        "HF_HUB_OFFLINE": "1",
        "TRANSFORMERS_OFFLINE": "1",
        "WANDB_MODE": "disabled",
        "PYTHONUNBUFFERED": "1",
    }


def link_venvs(work: Path, venv: Path, environment: str) -> Path:
    """``work/venvs``: a folder per server gym would build a virtualenv for, each linked to ``venv``."""
    for server in (*_SERVERS, f"resources_servers/{environment}"):
        link = work / "venvs" / server / ".venv"
        link.parent.mkdir(parents=True, exist_ok=True)
        if not link.is_symlink():
            link.symlink_to(venv.resolve())
    return work / "venvs"


def write_gym_config(folder: Path, environment: str, *, max_steps: int = 3) -> Path:
    """``folder/gym.yaml``: the bundled environment, its validation split read from ``folder/tasks.jsonl``.

    Gym writes ``tasks_metrics.json`` beside the tasks and refuses to run when it disagrees with a
    later run's: each run has a folder of its own.
    """
    dataset = {
        "name": "tasks",
        "type": "validation",
        "jsonl_fpath": str((folder / "tasks.jsonl").resolve()),
        "license": "Apache 2.0",
    }
    config = {  # JSON is YAML
        "config_paths": [f"environments/{environment}/config.yaml"],
        f"{environment}_simple_agent": {
            "responses_api_agents": {"simple_agent": {"max_steps": max_steps, "datasets": [dataset]}}
        },
    }
    path = folder / "gym.yaml"
    path.write_text(json.dumps(config, indent=2) + "\n")
    return path


def marked_processes(marker: str) -> list[int]:
    """The pids of the processes whose environment carries ``ROLLCRAFT_DEMO_RUN=marker`` (from /proc)."""
    needle = f"{_MARKER}={marker}\0".encode()
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        try:
            if needle in (entry / "environ").read_bytes() + b"\0":
                found.append(int(entry.name))
        except OSError:
            continue
    return found


class Processes:
    """The children of one run: each in its own process group, all marked, all stopped by :meth:`stop_all`."""

    def __init__(self, marker: str) -> None:
        # Ray's sockets live under RAY_TMPDIR and a socket path may not exceed 107 bytes: a short
        # folder of its own, removed by stop_all
        self.ray_dir = Path(tempfile.mkdtemp(prefix="rollcraft-ray-"))
        self.env = gym_environment(self.ray_dir, marker)
        self.marker = marker
        self.children: list[subprocess.Popen[str]] = []

    def start(
        self, command: Sequence[str], *, cwd: Path, log: IO[str] | None, pipe: bool = False
    ) -> subprocess.Popen[str]:
        """Start ``command`` in a new session; its output goes to ``log`` (or a pipe with ``pipe``)."""
        child = subprocess.Popen(
            list(command),
            cwd=cwd,
            env=self.env,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE if pipe else log,
            stderr=log,
            text=True,
            start_new_session=True,
        )
        self.children.append(child)
        return child

    def stop(self, child: subprocess.Popen[str], timeout: float = 10) -> None:
        """SIGTERM to the child's process group, SIGKILL after ``timeout`` seconds."""
        for sig, wait in ((signal.SIGTERM, timeout), (signal.SIGKILL, 5)):
            if child.poll() is not None:
                break
            try:
                os.killpg(child.pid, sig)
            except ProcessLookupError:
                break
            try:
                child.wait(wait)
            except subprocess.TimeoutExpired:
                continue
        _kill_group(child.pid)  # what the leader left behind in its group
        if child.stdout is not None:
            child.stdout.close()

    def stop_all(self) -> None:
        """Stop every child, then every process still carrying the marker (TERM, then KILL)."""
        for child in reversed(self.children):
            self.stop(child)
        for sig in (signal.SIGTERM, signal.SIGKILL):
            for pid in marked_processes(self.marker):
                try:
                    os.kill(pid, sig)
                except ProcessLookupError:
                    pass
            deadline = time.monotonic() + 10
            while marked_processes(self.marker) and time.monotonic() < deadline:
                time.sleep(0.2)
            if not marked_processes(self.marker):
                break
        shutil.rmtree(self.ray_dir, ignore_errors=True)


@contextmanager
def exit_on_sigterm() -> Iterator[None]:
    """SIGTERM raises SystemExit(143) inside the block (main thread only), so cleanups run.

    Its children live in sessions of their own: a SIGTERM that killed this process outright
    would leave them running.
    """
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def stop(signum: int, frame: FrameType | None) -> None:
        raise SystemExit(128 + signum)

    before = signal.signal(signal.SIGTERM, stop)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, before)


def _kill_group(pgid: int) -> None:
    try:
        os.killpg(pgid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass


def start_server(
    processes: Processes, model: Path, name: str, work: Path
) -> tuple[subprocess.Popen[str], str]:
    """``rollcraft serve MODEL --port 0`` in the background; returns it and its OpenAI base URL."""
    command = [
        sys.executable,
        "-m",
        "rollcraft.cli",
        "serve",
        str(model),
        "--port",
        "0",
        "--model-name",
        name,
    ]
    with open(work / f"serve-{name}.log", "w") as log:
        child = processes.start(command, cwd=work, log=log, pipe=True)
    assert child.stdout is not None
    for line in child.stdout:
        if line.startswith("OpenAI base URL: "):
            return child, line.removeprefix("OpenAI base URL: ").strip()
    child.wait()
    raise OutputError(
        f"rollcraft serve {model} stopped (exit {child.returncode}); see {work}/serve-{name}.log"
    )


def run_gym_eval(
    processes: Processes,
    venv: Path,
    *,
    venvs: Path,
    environment: str,
    tasks: list[dict[str, Any]],
    folder: Path,
    base_url: str,
    model: str,
    repeats: int,
    temperature: float,
    max_tokens: int,
    timeout: float = 600,
) -> Path:
    """``gym eval run`` of ``tasks`` x ``repeats`` against ``base_url``; returns ``folder/rollouts.jsonl``.

    It starts Ray and gym's servers, collects, and stops them; its log is ``folder/gym.log``.
    """
    folder.mkdir(parents=True, exist_ok=True)
    config = write_gym_config(folder, environment)
    (folder / "tasks.jsonl").write_text("".join(json.dumps(t) + "\n" for t in tasks))
    output = folder / "rollouts.jsonl"
    command = [
        str(venv / "bin" / "gym"), "eval", "run", "--config", str(config),
        "--model-type", "openai_model", "--model-url", base_url, "--model", model,
        "--model-api-key", "unused", "--split", "validation", "--output", str(output),
        "--num-repeats", str(repeats), "--temperature", str(temperature),
        "--max-output-tokens", str(max_tokens), "--no-health-check",
        "+upload_rollouts=false", f"+uv_venv_dir={venvs}", "+skip_venv_if_present=true",
        "+model_endpoint_readiness_timeout_seconds=60",
    ]  # fmt: skip
    with open(folder / "gym.log", "w") as log:
        child = processes.start(command, cwd=folder, log=log)
        try:
            code = child.wait(timeout)
        except subprocess.TimeoutExpired:
            code = -1
        finally:
            processes.stop(child)
    if code != 0 or not output.is_file():
        raise OutputError(f"gym eval run failed (exit {code}); its log is {folder / 'gym.log'}")
    return output
