"""A real ``rollcraft serve`` app (uvicorn on a free loopback port, in a thread) over a tiny
model taught to call a tool; shared by the module's tests."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.serve._model import tool_model

pytest.importorskip("transformers")
pytest.importorskip("uvicorn")
pytest.importorskip("httpx")


@pytest.fixture(scope="session")
def model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    import torch

    torch.set_num_threads(1)
    return tool_model(tmp_path_factory.mktemp("serve-model"))


@pytest.fixture(scope="session")
def app(model_dir: Path) -> Any:
    """The app over the taught model, served as ``tiny-tool``."""
    from rollcraft.serve import create_app, load_engine

    return create_app(load_engine(model_dir), model_name="tiny-tool")


@pytest.fixture(scope="session")
def base_url(app: Any) -> Iterator[str]:
    """``http://127.0.0.1:PORT/v1`` of a server running until the session ends."""
    import uvicorn

    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen(64)
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning", lifespan="off"))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not server.started:
        if time.monotonic() > deadline or not thread.is_alive():
            raise RuntimeError("the server did not start")
        time.sleep(0.02)
    yield f"http://127.0.0.1:{sock.getsockname()[1]}/v1"
    server.should_exit = True
    thread.join(10)
    sock.close()
