"""The request queue: waiting requests are generated together, one batch at a time.

While a batch generates (in a worker thread, so the server keeps accepting connections), new
requests wait. The next batch is the oldest waiting request and every other waiting one that
samples the same way (temperature and top_p), up to ``max_batch``, in arrival order. A request
with a ``seed`` is generated alone, so its text depends on its seed only.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field

from starlette.concurrency import run_in_threadpool

from rollcraft.serve._engine import Engine, Generation
from rollcraft.serve._request import Sampling

__all__ = ["MAX_BATCH", "Queue"]

MAX_BATCH = 32


@dataclass(slots=True)
class _Job:
    prompt: str
    sampling: Sampling
    done: asyncio.Future[Generation] = field(
        default_factory=lambda: asyncio.get_running_loop().create_future()
    )

    def key(self) -> tuple[float, float] | None:
        """What a batch shares; None: alone (seeded)."""
        return None if self.sampling.seed is not None else (self.sampling.temperature, self.sampling.top_p)


class Queue:
    """Batches of waiting requests for ``engine``; :meth:`generate` waits for one's turn."""

    def __init__(self, engine: Engine, *, max_batch: int = MAX_BATCH) -> None:
        self.engine = engine
        self.max_batch = max_batch
        self._waiting: list[_Job] = []
        self._worker: asyncio.Task[None] | None = None
        self.batches: list[int] = []  # the size of each batch generated (for tests and logs)

    async def generate(self, prompt: str, sampling: Sampling) -> Generation:
        """The completion of ``prompt``, generated in a batch with the requests waiting with it."""
        job = _Job(prompt, sampling)
        self._waiting.append(job)
        if self._worker is None or self._worker.done():
            self._worker = asyncio.get_running_loop().create_task(self._run())
        return await job.done

    def _next_batch(self) -> list[_Job]:
        first = self._waiting[0]
        key = first.key()
        batch = [first] if key is None else [j for j in self._waiting if j.key() == key][: self.max_batch]
        taken = {id(j) for j in batch}
        self._waiting = [j for j in self._waiting if id(j) not in taken]
        return batch

    async def _run(self) -> None:
        while self._waiting:
            batch = [j for j in self._next_batch() if not j.done.done()]  # a caller gone: skipped
            if not batch:
                continue
            self.batches.append(len(batch))
            try:
                results = await run_in_threadpool(
                    self.engine.generate_batch, [j.prompt for j in batch], [j.sampling for j in batch]
                )
            except Exception as exc:
                for job in batch:
                    if not job.done.done():
                        job.done.set_exception(exc)
                continue
            for job, result in zip(batch, results, strict=True):
                if not job.done.done():
                    job.done.set_result(result)
