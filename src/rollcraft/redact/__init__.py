"""Find secrets and personal data in rollout lines and replace them with typed placeholders.

Every string *value* of a record (message text, tool-call arguments, tool results, reasoning,
metadata; keys are field names and are left alone) is scanned with documented patterns, one per
kind (see :data:`SECRET_KINDS`). Each hit becomes ``<REDACTED:kind>``; only the JSON string
tokens that held a secret are rewritten, every other byte of the line stays as it was, and a
line with nothing to redact is returned unchanged (byte-identical).

Why patterns and not ``detect-secrets``: it reports values per line, not spans inside a string;
it knows none of the Anthropic, Hugging Face, NVIDIA or email formats; and its entropy and
keyword plugins fire on hashes, UUIDs and code, which rollouts are full of.

>>> redactor = Redactor()
>>> redactor.redact_text("key AKIAIOSFODNN7EXAMPLE, mail bob@corp.io")
('key <REDACTED:aws_access_key>, mail <REDACTED:email>', Counter({'aws_access_key': 1, 'email': 1}))
"""

from __future__ import annotations

from rollcraft.redact._allowlist import Allowlist, load_allowlist
from rollcraft.redact._patterns import _PATTERNS as _PATTERNS
from rollcraft.redact._patterns import PII_KINDS, SECRET_KINDS, placeholder
from rollcraft.redact._patterns import Starts as Starts
from rollcraft.redact._patterns import Validator as Validator
from rollcraft.redact._redactor import Redactor
from rollcraft.redact._search import _JSON_STRING as _JSON_STRING
from rollcraft.redact._search import _all_tokens as _all_tokens
from rollcraft.redact._search import _sub as _sub
from rollcraft.redact._search import _token_end as _token_end
from rollcraft.redact._step import DropSecrets as DropSecrets
from rollcraft.redact._step import (
    OnSecret,
    RedactionReport,
    RedactionResult,
    RedactSecrets,
    redacted_reject,
    secrets_step,
)

__all__ = [
    "PII_KINDS",
    "SECRET_KINDS",
    "Allowlist",
    "OnSecret",
    "RedactSecrets",
    "RedactionReport",
    "RedactionResult",
    "Redactor",
    "load_allowlist",
    "placeholder",
    "redacted_reject",
    "secrets_step",
]
