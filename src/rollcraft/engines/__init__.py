"""Engines that run the pipeline's passes: ``local`` (one process or ``--workers N``) and ``ray``.

:func:`select_engine` picks one by name; each is an :class:`~rollcraft.engines._base.Engine` and returns
an :class:`~rollcraft.engines._base.Outcome`. An engine's module is imported only when picked.
"""

from __future__ import annotations

from rollcraft.engines._base import Engine, EngineName, Outcome

__all__ = ["Engine", "EngineName", "Outcome", "select_engine"]


def select_engine(name: EngineName) -> Engine:
    """The engine called ``name`` (``local`` or ``ray``), imported on first use."""
    if name == "ray":
        from rollcraft.engines.ray import execute_ray

        return execute_ray
    from rollcraft.engines.local import execute

    return execute
