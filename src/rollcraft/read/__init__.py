"""Reading rollouts: lines in, :class:`~rollcraft.Rollout` or :class:`~rollcraft.Quarantined` out.

The package, one role a module: ``_reader`` (the reading loop, shape detection, :func:`read_rollouts`,
:func:`parse_line`, :class:`ReadOptions`, :class:`ReadReport`), ``_fast`` (the fast partial decoder
of the common NeMo Gym shape), ``_normalize`` (the Responses-to-chat normalizer: ``Builder`` holds
each mapping rule once, and both decoders only decode and call it), ``_facts`` (the per-record
facts: task key, reward, success, task type, components, flags, rollout id), ``_attempts``
(retries), ``_sidecars`` (the files NeMo Gym writes beside a rollouts file), ``_tokens`` (the
token ids of each model call), ``_trajectory`` (``ng_trajectory``), ``_inspect`` (``rollcraft
inspect``: what a set of files holds).
"""

from __future__ import annotations

from rollcraft.read._reader import QUARANTINE_REASONS, ReadOptions, ReadReport, parse_line, read_rollouts

__all__ = ["QUARANTINE_REASONS", "ReadOptions", "ReadReport", "parse_line", "read_rollouts"]
