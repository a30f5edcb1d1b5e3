"""Loading a Hugging Face tokenizer: the one function behind ``max_tokens`` (filter), ``validate
--tokenizer`` and ``train``, with one error for each way it fails.

``transformers`` is imported only when a tokenizer is loaded (it is in ``rollcraft[train]``).
"""

from __future__ import annotations

import functools
from pathlib import Path
from typing import Any

from rollcraft._errors import DependencyError, InputError

__all__ = ["cached_tokenizer", "load_tokenizer"]


def load_tokenizer(name: str, *, local_only: bool = True) -> Any:
    """``AutoTokenizer.from_pretrained(name)``; a failure is one :class:`InputError` naming ``name``.

    ``local_only``: ``name`` must be a local tokenizer folder (nothing is downloaded); otherwise it
    may also be a Hugging Face hub id (what a model name in a training config is).
    """
    where = Path(name)
    if (local_only or where.exists()) and not where.is_dir():
        raise InputError("not a folder (a tokenizer is a local Hugging Face tokenizer folder)", path=name)
    try:
        import transformers
    except ImportError:
        raise DependencyError(
            "loading a tokenizer needs transformers: pip install 'rollcraft[train]'"
        ) from None
    try:
        return transformers.AutoTokenizer.from_pretrained(name, local_files_only=local_only)
    except Exception as exc:  # whatever a broken folder makes transformers raise
        raise InputError(f"cannot load a tokenizer ({type(exc).__name__}: {exc})", path=name) from None


@functools.lru_cache(maxsize=4)
def cached_tokenizer(folder: str) -> Any:
    """:func:`load_tokenizer` of a local folder, once per process (for readers that do not change it)."""
    return load_tokenizer(folder)
