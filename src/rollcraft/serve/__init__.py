"""``rollcraft serve``: an OpenAI-compatible server over a local Hugging Face model.

Enough of the OpenAI API for NeMo Gym's ``openai_model`` (``POST /v1/responses``) and
``vllm_model`` (``POST /v1/chat/completions``) servers and for the ``openai`` client, on CPU or a
GPU, with no network. The modules, one role each:

* :mod:`~rollcraft.serve._request`: a request's prompt and sampling settings, and its refusals;
* :mod:`~rollcraft.serve._responses` and :mod:`~rollcraft.serve._chat`: the two APIs' requests
  and response objects;
* :mod:`~rollcraft.serve._calls`: tool calls parsed out of generated text
  (``<tool_call>{json}</tool_call>``: Hermes, Qwen and the tiny template);
* :mod:`~rollcraft.serve._engine`: the model, its chat template and generation;
* :mod:`~rollcraft.serve._queue`: waiting requests generated together, in batches;
* :mod:`~rollcraft.serve._app`: the Starlette routes.

Example::

    >>> from rollcraft.serve import create_app, load_engine
    >>> app = create_app(load_engine("build/model"), model_name="model")  # doctest: +SKIP

Needs the ``rollcraft[serve]`` extra (starlette and uvicorn here, torch and transformers in
:mod:`~rollcraft.serve._engine`).
"""

from __future__ import annotations

from rollcraft.serve._app import LOOPBACK_NAMES, create_app
from rollcraft.serve._calls import ToolCall, parse_calls
from rollcraft.serve._engine import DEFAULT_MAX_TOKENS, Engine, Generation, load_engine
from rollcraft.serve._queue import MAX_BATCH, Queue
from rollcraft.serve._request import RequestError, Sampling

__all__ = [
    "DEFAULT_MAX_TOKENS",
    "LOOPBACK_NAMES",
    "MAX_BATCH",
    "Engine",
    "Generation",
    "Queue",
    "RequestError",
    "Sampling",
    "ToolCall",
    "create_app",
    "load_engine",
    "parse_calls",
]
