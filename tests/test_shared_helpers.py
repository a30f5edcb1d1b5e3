"""One helper for each job that several modules do (issue #24): dialects, file digests,
dependency versions, tokenizer loading and YAML configs behave the same wherever they are used."""

from __future__ import annotations


def test_validate_and_the_formatters_share_one_list_of_dialects() -> None:
    from rollcraft import formats, validate

    assert validate.DIALECTS is formats.DIALECTS
    assert validate.__all__.count("DIALECTS") == 1
