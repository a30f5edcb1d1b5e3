"""The closed loop on CPU: a verifiable arithmetic environment, a local generator, and the loop.

>>> from rollcraft.demo import run_demo
>>> report = run_demo("demo-run", size="small")      # doctest: +SKIP
>>> print(report.summary())                           # doctest: +SKIP

See :mod:`rollcraft.demo.loop` for the steps and ``docs/training.md`` for measured numbers.
Needs the ``rollcraft[train]`` extra; heavy imports happen inside the functions.
"""

from __future__ import annotations

from rollcraft.demo.env import ArithmeticTask, make_tasks, verify
from rollcraft.demo.loop import SIZES, DemoReport, DemoSize, run_demo

__all__ = ["SIZES", "ArithmeticTask", "DemoReport", "DemoSize", "make_tasks", "run_demo", "verify"]
