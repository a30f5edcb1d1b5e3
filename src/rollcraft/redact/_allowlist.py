"""The allowlist: hits that are not secrets (exact strings or ``re:`` regexes), and its file."""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from rollcraft._errors import ConfigError


@dataclass(frozen=True, slots=True)
class Allowlist:
    """Matches that are not secrets: exact strings, or regexes that match the whole hit.

    >>> Allowlist.of(["noreply@github.com", "re:.*@example\\\\.com"]).allows("ann@example.com")
    True
    """

    exact: frozenset[str] = frozenset()
    patterns: tuple[re.Pattern[str], ...] = ()

    @classmethod
    def of(cls, entries: Iterable[str]) -> Allowlist:
        """Build from entries: ``re:REGEX`` is a regex, anything else an exact string."""
        exact: set[str] = set()
        patterns: list[re.Pattern[str]] = []
        for entry in entries:
            if entry.startswith("re:"):
                patterns.append(_compile(entry[3:]))
            else:
                exact.add(entry)
        return cls(frozenset(exact), tuple(patterns))

    def allows(self, hit: str) -> bool:
        """True when ``hit`` is on the list (then it is kept as it is)."""
        return hit in self.exact or any(p.fullmatch(hit) for p in self.patterns)


def _compile(text: str) -> re.Pattern[str]:
    try:
        return re.compile(text)
    except re.error as exc:
        raise ConfigError(f"bad allowlist regex {text!r}: {exc}", key="allowlist") from None


def load_allowlist(path: str | Path) -> Allowlist:
    """Read an allowlist file: one entry a line, ``re:`` for regexes, ``#`` starts a comment line."""
    try:
        lines = Path(path).read_text(encoding="utf-8").splitlines()
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read ({exc.strerror or exc})", key="allowlist") from None
    return Allowlist.of(line.strip() for line in lines if line.strip() and not line.lstrip().startswith("#"))
