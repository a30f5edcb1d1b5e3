"""One helper for each job that several modules do (issue #24): dialects, file digests,
dependency versions, tokenizer loading and YAML configs behave the same wherever they are used."""

from __future__ import annotations

from pathlib import Path


def test_validate_and_the_formatters_share_one_list_of_dialects() -> None:
    from rollcraft import formats, validate

    assert validate.DIALECTS is formats.DIALECTS
    assert validate.__all__.count("DIALECTS") == 1


def test_the_pipeline_and_train_hash_files_with_one_function(tmp_path: Path) -> None:
    import hashlib

    from rollcraft import _digest, pipeline, train

    data = tmp_path / "data.jsonl"
    data.write_bytes(bytes(range(256)) * (40 << 10))  # 10 MiB: more than one 4 MiB piece
    assert pipeline.sha256_file is train.data_sha256 is _digest.sha256_file
    assert _digest.sha256_file(data) == hashlib.sha256(data.read_bytes()).hexdigest()
    (tmp_path / "empty").write_bytes(b"")
    assert _digest.sha256_file(tmp_path / "empty") == hashlib.sha256(b"").hexdigest()


def test_the_manifest_and_the_model_record_list_versions_with_one_function() -> None:
    from importlib import metadata

    from rollcraft import _versions, pipeline, train

    names = ("rollcraft", "no-such-distribution-here", "pydantic")
    kept = _versions.dependency_versions(names, missing=True)
    assert list(kept) == ["python", "rollcraft", "no-such-distribution-here", "pydantic"]
    assert kept["no-such-distribution-here"] is None and kept["pydantic"] == metadata.version("pydantic")
    assert "no-such-distribution-here" not in _versions.dependency_versions(names)
    # the model folder's record keeps its keys, null when not installed; the manifest only those installed
    record = _versions.dependency_versions(train._DEPENDENCIES, missing=True)
    assert list(record) == ["python", "rollcraft", *train._DEPENDENCIES[1:]]
    assert train._DEPENDENCIES[1:] == ("torch", "transformers", "trl", "datasets", "accelerate", "peft")
    assert None not in _versions.dependency_versions(pipeline._DEPENDENCIES).values()
