"""YAML configs whose errors name the file, the key and its line: the one reader of every config
file (pipeline, filters, train) and of ``--set KEY=VALUE`` values."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ValidationError

from rollcraft._errors import ConfigError

__all__ = ["key_lines", "load_yaml", "validation_error", "yaml_value"]


def load_yaml(path: str | os.PathLike[str]) -> tuple[dict[str, Any], dict[tuple[str, ...], int]]:
    """A YAML file's top-level mapping and the line of every key path in it."""
    source = Path(path)
    try:
        text = source.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(f"cannot read config {source}: {exc.strerror or exc}") from None
    except UnicodeDecodeError as exc:
        row = exc.object[: exc.start].count(b"\n") + 1
        byte = exc.object[exc.start]
        raise ConfigError(f"{source}: not UTF-8 text (byte 0x{byte:02x} on line {row})", line=row) from None
    try:
        node = yaml.compose(text)
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        line = _problem_line(exc)
        where = f" (line {line})" if line is not None else ""
        raise ConfigError(f"{source}: not valid YAML{where}: {_problem(exc)}", line=line) from None
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise ConfigError(f"{source}: the config must be a mapping of keys, not a {type(data).__name__}")
    return data, key_lines(node)


def yaml_value(text: str, *, key: str) -> Any:
    """One value in YAML syntax (``8``, ``1e-5``, ``[a, b]``, ``null``), as ``--set KEY=VALUE`` gives it.

    Not valid YAML is a :class:`ConfigError` naming ``key``.
    """
    try:
        return yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise ConfigError(f"{text!r} is not a valid YAML value: {_problem(exc)}", key=key) from None


def _problem(exc: yaml.YAMLError) -> str:
    return str(getattr(exc, "problem", None) or exc)


def _problem_line(exc: yaml.YAMLError) -> int | None:
    mark = getattr(exc, "problem_mark", None)
    return int(mark.line) + 1 if mark is not None else None


def key_lines(node: Any, prefix: tuple[str, ...] = ()) -> dict[tuple[str, ...], int]:
    """``{("sft", "format"): 12, ...}`` for every key of a composed YAML node."""
    lines: dict[tuple[str, ...], int] = {}
    if isinstance(node, yaml.MappingNode):
        for key, value in node.value:
            path = (*prefix, str(key.value))
            lines[path] = key.start_mark.line + 1
            lines.update(key_lines(value, path))
    elif isinstance(node, yaml.SequenceNode):
        for index, item in enumerate(node.value):
            path = (*prefix, str(index))
            lines[path] = item.start_mark.line + 1
            lines.update(key_lines(item, path))
    return lines


def validation_error(
    exc: ValidationError, lines: dict[tuple[str, ...], int], source: str | os.PathLike[str]
) -> ConfigError:
    """The first pydantic error as a :class:`ConfigError` naming the dotted key and its line."""
    error = exc.errors()[0]
    loc = tuple(str(part) for part in error["loc"])
    line = None
    for cut in range(len(loc), 0, -1):
        line = lines.get(loc[:cut])
        if line is not None:
            break
    key = ".".join(loc) or "(top level)"
    message = error["msg"]
    if error["type"] == "extra_forbidden":
        message = "unknown key"
    return ConfigError(f"{message} (in {os.fspath(source)})", key=key, line=line)


def validate_model(
    model: type[BaseModel],
    data: dict[str, Any],
    lines: dict[tuple[str, ...], int],
    source: str | os.PathLike[str],
) -> Any:
    """``model.model_validate(data)``, with errors as :class:`ConfigError`."""
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        raise validation_error(exc, lines, source) from None
