"""The filter options (and secret redaction) shared by ``filter``, ``sft``, ``dpo`` and other commands,
and :func:`judged_rollouts`, which runs a command's steps.

:func:`with_filters` adds every filter flag of ``rollcraft filter`` to a Typer command; the
command receives one ``filters: FilterConfig`` (flags laid over ``--config``) and one
``redaction`` (``None`` or the redaction step).
"""

from __future__ import annotations

import functools
import inspect
import types
import typing
from collections.abc import Callable, Iterator, Sequence
from typing import Annotated, Any, TypeVar

import typer

from rollcraft.cli._common import PiiOpt, finite, pii_kinds
from rollcraft.filters import FilterConfig, FilterReport, build_steps, step_spec
from rollcraft.read._reader import ReadOptions
from rollcraft.steps import Judged, Stage, run_paths, with_redaction

__all__ = [
    "AllowlistOpt",
    "ConfigOpt",
    "OnSecretOpt",
    "RedactOpt",
    "TokenizerOpt",
    "filter_config",
    "judged_rollouts",
    "redaction_step",
    "with_filters",
]

F = TypeVar("F", bound=Callable[..., Any])

_R = "Secrets"
RedactOpt = Annotated[
    bool,
    typer.Option(
        "--redact-secrets", help="Replace API keys, tokens, passwords, emails...", rich_help_panel=_R
    ),
]
OnSecretOpt = Annotated[
    str,
    typer.Option("--on-secret", help="replace (typed placeholder) or drop the rollout.", rich_help_panel=_R),
]
AllowlistOpt = Annotated[
    str | None,
    typer.Option("--allowlist", help="File of strings/regexes never redacted.", rich_help_panel=_R),
]

_P = "Filters"
ConfigOpt = Annotated[
    str | None, typer.Option("--config", help="YAML of filter keys (flags override it).", rich_help_panel=_P)
]
TokenizerOpt = Annotated[
    str | None, typer.Option("--tokenizer", help="A local Hugging Face tokenizer folder.", rich_help_panel=_P)
]


def filter_config(config: str | None, **flags: Any) -> FilterConfig:
    """The YAML config (if any) with the flags that were given (not None) laid over it.

    Keyword names are the config keys (``min_reward=...``, ``drop_flagged="truncated"``, ...).

    >>> filter_config(None, min_reward=0.5, dedupe=None).min_reward
    0.5
    """
    base = FilterConfig.from_yaml(config) if config else FilterConfig()
    given = {key: value for key, value in flags.items() if value is not None}
    return base.merged(given) if given else base


def _option(key: str) -> Any:
    """The Typer annotation of a :class:`FilterConfig` key's flag, from its :class:`StepSpec`."""
    if key == "tokenizer":
        return TokenizerOpt
    spec = step_spec(key)
    assert spec is not None
    kind = _value_type(FilterConfig.model_fields[key].annotation)
    flag = spec.option(key)
    if kind is bool:
        switch = typer.Option(f"{flag}/--no-{flag[2:]}", help=spec.help, rich_help_panel=_P)
        return Annotated[bool | None, switch]
    if kind is float:
        number = typer.Option(flag, help=spec.help, rich_help_panel=_P, callback=finite)
        return Annotated[float | None, number]
    if kind is int:
        return Annotated[int | None, typer.Option(flag, help=spec.help, rich_help_panel=_P)]
    listed = typer.Option(flag, help=spec.help, rich_help_panel=_P)  # a list, comma-separated
    return Annotated[str | None, listed]


def _value_type(annotation: Any) -> Any:
    """``float`` of ``float | None``, ``int`` of ``Annotated[int, ...] | None``, ``list`` of ``list[str]``."""
    args = [a for a in typing.get_args(annotation) if a is not type(None)]
    if typing.get_origin(annotation) in (types.UnionType, typing.Union):
        return _value_type(args[0])
    if typing.get_origin(annotation) is Annotated:
        return _value_type(args[0])
    return typing.get_origin(annotation) or annotation


#: option parameter name (the config key, and ``config``) -> its annotation: one flag per
#: :class:`FilterConfig` key, from the config's registry.
_FILTER_OPTIONS: dict[str, Any] = {"config": ConfigOpt} | {
    key: _option(key) for key in FilterConfig.model_fields if key == "tokenizer" or step_spec(key) is not None
}
_REDACT_OPTIONS: dict[str, tuple[Any, Any]] = {
    "redact_secrets": (RedactOpt, False),
    "on_secret": (OnSecretOpt, "replace"),
    "allowlist": (AllowlistOpt, None),
    "redact_pii": (PiiOpt, None),
}


def with_filters(func: F) -> F:
    """Give a command every filter flag and the redaction flags.

    The decorated function must accept ``filters`` and ``redaction`` keyword arguments.
    """
    own = [
        p
        for p in inspect.signature(func, eval_str=True).parameters.values()
        if p.name not in ("filters", "redaction")
    ]
    extra = [
        inspect.Parameter(n, inspect.Parameter.KEYWORD_ONLY, default=None, annotation=a)
        for n, a in _FILTER_OPTIONS.items()
    ]
    extra += [
        inspect.Parameter(n, inspect.Parameter.KEYWORD_ONLY, default=d, annotation=a)
        for n, (a, d) in _REDACT_OPTIONS.items()
    ]

    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        flags = {name: kwargs.pop(name, None) for name in _FILTER_OPTIONS}
        config = flags.pop("config")
        redact = {name: kwargs.pop(name, default) for name, (_, default) in _REDACT_OPTIONS.items()}
        return func(
            *args, **kwargs, filters=filter_config(config, **flags), redaction=redaction_step(**redact)
        )

    params = [*[p.replace(kind=inspect.Parameter.KEYWORD_ONLY) for p in own], *extra]
    wrapper.__signature__ = inspect.Signature(params)  # type: ignore[attr-defined]
    wrapper.__annotations__ = {p.name: p.annotation for p in params}
    return wrapper  # type: ignore[return-value]


def redaction_step(
    *, redact_secrets: bool, on_secret: str, allowlist: str | None, redact_pii: str | None = None
) -> Any:
    """The redaction step the flags ask for (None without ``--redact-secrets``)."""
    if on_secret not in ("replace", "drop"):
        raise typer.BadParameter("must be replace or drop", param_hint="--on-secret")
    if not redact_secrets:
        for given, hint in ((allowlist, "--allowlist"), (redact_pii, "--redact-pii")):
            if given:
                raise typer.BadParameter("needs --redact-secrets", param_hint=hint)
        return None
    from rollcraft.redact import secrets_step

    return secrets_step(on_secret, allowlist=allowlist, pii=pii_kinds(redact_pii))


def judged_rollouts(
    paths: list[str],
    filters: FilterConfig,
    redaction: Any,
    options: ReadOptions,
    report: FilterReport,
    stages: Sequence[Stage] = (),
) -> Iterator[Judged]:
    """Read and run the command's steps: the filters, then ``stages`` (the writers), with
    redaction in its places when asked (:func:`rollcraft.steps.with_redaction`); every drop
    counted in ``report``."""
    if redaction is not None:
        redaction.options = options
    return run_paths(
        paths,
        lambda stats: with_redaction(redaction, build_steps(filters, task_stats=stats), stages, report),
        options=options,
        report=report,
        task_stats=filters.min_success_rate is not None,
    )
