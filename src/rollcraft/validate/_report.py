"""The result of a validation: :class:`ValidationReport` and its JSON and HTML forms."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from rollcraft.validate._codes import CODES, Finding
from rollcraft.validate._html import _render_html


@dataclass(slots=True)
class ValidationReport:
    """What :func:`validate_file` found: findings (capped per code; ``counts`` has full counts), stats."""

    path: str
    kind: str
    dialect: str
    rows: int
    findings: list[Finding]
    counts: dict[str, int]
    stats: dict[str, Any]
    excerpts: dict[int, str] = field(default_factory=dict, repr=False)
    series: dict[str, list[float]] = field(default_factory=dict, repr=False)

    @property
    def errors(self) -> int:
        """How many error findings (including any left out of ``findings`` by the cap)."""
        return sum(n for code, n in self.counts.items() if CODES[code][0] == "error")

    @property
    def warnings(self) -> int:
        """How many warning findings (including any left out of ``findings`` by the cap)."""
        return sum(n for code, n in self.counts.items() if CODES[code][0] == "warning")

    @property
    def ok(self) -> bool:
        """True when there is no error: the file may go to training."""
        return self.errors == 0

    def to_dict(self) -> dict[str, Any]:
        """Every figure and finding, in the stable JSON layout."""
        return {
            "path": self.path,
            "kind": self.kind,
            "dialect": self.dialect,
            "rows": self.rows,
            "errors": self.errors,
            "warnings": self.warnings,
            "counts": dict(sorted(self.counts.items())),
            "findings_omitted": sum(self.counts.values()) - len(self.findings),
            "findings": [f.to_dict() for f in self.findings],
            "stats": self.stats,
        }

    def to_json(self) -> str:
        """:meth:`to_dict` as indented JSON text."""
        return json.dumps(self.to_dict(), indent=2, ensure_ascii=False, allow_nan=False) + "\n"

    def to_html(self) -> str:
        """One self-contained HTML page: summary, plots, findings linked to row excerpts."""
        return _render_html(self)
