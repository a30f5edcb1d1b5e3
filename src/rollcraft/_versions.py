"""The versions of Python and of installed distributions, as the records of a run keep them.

The pipeline's manifest and train's ``training_manifest.json`` both call :func:`dependency_versions`
with their own list of names (their keys stay what they were).
"""

from __future__ import annotations

import platform
from collections.abc import Iterable
from importlib import metadata

__all__ = ["dependency_versions", "installed_version"]


def dependency_versions(names: Iterable[str], *, missing: bool = False) -> dict[str, str | None]:
    """``{"python": "3.11.9", name: version, ...}`` in ``names`` order.

    A distribution that is not installed is left out, or kept as ``None`` with ``missing=True``.
    """
    found: dict[str, str | None] = {"python": platform.python_version()}
    for name in names:
        version = installed_version(name)
        if version is not None or missing:
            found[name] = version
    return found


def installed_version(name: str) -> str | None:
    """``importlib.metadata.version(name)``, read from the metadata's header lines only.

    ``version()`` parses the whole METADATA file (long descriptions included) with the email
    parser: 20-60 ms for this list, on every run.
    """
    try:
        distribution = metadata.distribution(name)
    except metadata.PackageNotFoundError:
        return None
    text = distribution.read_text("METADATA") or distribution.read_text("PKG-INFO") or ""
    for line in text.splitlines():
        if line.startswith("Version:"):
            return line[len("Version:") :].strip()
        if not line:  # the end of the headers
            break
    return distribution.version
