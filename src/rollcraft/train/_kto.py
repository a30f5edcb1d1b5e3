"""KTO's loss weights for a file's labels: TRL's suggestion for the minority label, unless given."""

from __future__ import annotations

from typing import Any

from rollcraft.formats.kto import kto_weights
from rollcraft.train._config import TrainConfig


def resolve_kto_weights(config: TrainConfig, rows: list[dict[str, Any]]) -> tuple[TrainConfig, str]:
    """``config`` with the KTO weights in force, and one line saying what they are and why.

    Neither weight given and the labels unbalanced: the minority label's weight is the one that
    makes both labels weigh the same (``desirable_weight = nu/nd`` or ``undesirable_weight =
    nd/nu``), an end of the range TRL checks (:func:`rollcraft.formats.kto.kto_weights`), so TRL
    does not warn. A weight given is kept as it is.

    >>> rows = [{"label": True}] + [{"label": False}] * 3
    >>> config, line = resolve_kto_weights(TrainConfig(method="kto"), rows)
    >>> config.desirable_weight, config.undesirable_weight
    (3.0, 1.0)
    """
    desirable = sum(bool(row["label"]) for row in rows)
    undesirable = len(rows) - desirable
    counts = f"KTO: {desirable} desirable, {undesirable} undesirable rows"
    given = config.desirable_weight is not None or config.undesirable_weight is not None
    weights = kto_weights(desirable, undesirable)
    update = {"desirable_weight": 1.0, "undesirable_weight": 1.0}
    if given:
        update = {k: v if v is not None else 1.0 for k, v in _weights_of(config).items()}
        why = "as configured"
    elif not desirable or not undesirable:
        missing = "undesirable" if desirable else "desirable"
        why = f"no {missing} rows: KTO learns from both labels"
    elif weights["balanced"]:
        why = "balanced labels"
    elif desirable < undesirable:
        update["desirable_weight"] = weights["desirable_weight"][0]
        why = "TRL's suggestion for the ratio; set either weight to choose"
    else:
        update["undesirable_weight"] = weights["undesirable_weight"][1]
        why = "TRL's suggestion for the ratio; set either weight to choose"
    line = (
        f"{counts}; desirable_weight {update['desirable_weight']:g}, "
        f"undesirable_weight {update['undesirable_weight']:g} ({why})"
    )
    return config.model_copy(update=update), line


def _weights_of(config: TrainConfig) -> dict[str, float | None]:
    return {"desirable_weight": config.desirable_weight, "undesirable_weight": config.undesirable_weight}
