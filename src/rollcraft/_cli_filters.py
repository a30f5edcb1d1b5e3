"""The filter options (and secret redaction) shared by ``filter``, ``sft``, ``dpo`` and other commands,
and :func:`judged_rollouts`, which runs a command's steps.

:func:`with_filters` adds every filter flag of ``rollcraft filter`` to a Typer command; the
command receives one ``filters: FilterConfig`` (flags laid over ``--config``) and one
``redaction`` (``None`` or the redaction step).
"""

from __future__ import annotations

import functools
import inspect
from collections.abc import Callable, Iterator, Sequence
from typing import Annotated, Any, TypeVar

import typer

from rollcraft._cli_common import finite
from rollcraft._read import ReadOptions
from rollcraft.filters import FilterConfig, FilterReport, build_steps
from rollcraft.steps import Judged, Stage, Step, redaction_steps, run_paths

__all__ = [
    "AllowlistOpt",
    "ConfigOpt",
    "DedupeOpt",
    "DropFlaggedOpt",
    "MaxAssistantTurnsOpt",
    "MaxCharsOpt",
    "MaxRewardOpt",
    "MaxTokensOpt",
    "MaxTurnsOpt",
    "MinAssistantTurnsOpt",
    "MinRewardOpt",
    "MinTaskSuccessRateOpt",
    "MinTurnsOpt",
    "OnSecretOpt",
    "RedactOpt",
    "RequireToolUseOpt",
    "SuccessOnlyOpt",
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
MinRewardOpt = Annotated[
    float | None,
    typer.Option("--min-reward", help="Keep reward >= this.", rich_help_panel=_P, callback=finite),
]
MaxRewardOpt = Annotated[
    float | None,
    typer.Option("--max-reward", help="Keep reward <= this.", rich_help_panel=_P, callback=finite),
]
SuccessOnlyOpt = Annotated[
    bool | None,
    typer.Option("--success-only/--no-success-only", help="Keep successful rollouts.", rich_help_panel=_P),
]
MinTurnsOpt = Annotated[
    int | None, typer.Option("--min-turns", help="Keep >= N completion messages.", rich_help_panel=_P)
]
MaxTurnsOpt = Annotated[
    int | None, typer.Option("--max-turns", help="Keep <= N completion messages.", rich_help_panel=_P)
]
MinAssistantTurnsOpt = Annotated[
    int | None,
    typer.Option("--min-assistant-turns", help="Keep >= N assistant messages.", rich_help_panel=_P),
]
MaxAssistantTurnsOpt = Annotated[
    int | None,
    typer.Option("--max-assistant-turns", help="Keep <= N assistant messages.", rich_help_panel=_P),
]
RequireToolUseOpt = Annotated[
    bool | None,
    typer.Option(
        "--require-tool-use/--no-require-tool-use", help="Keep rollouts with a tool call.", rich_help_panel=_P
    ),
]
MinTaskSuccessRateOpt = Annotated[
    float | None,
    typer.Option(
        "--min-task-success-rate",
        help="Keep rollouts of tasks whose rollouts succeed at rate >= X (two passes).",
        rich_help_panel=_P,
        callback=finite,
    ),
]
MaxCharsOpt = Annotated[
    int | None, typer.Option("--max-chars", help="Keep <= N characters of message text.", rich_help_panel=_P)
]
MaxTokensOpt = Annotated[
    int | None, typer.Option("--max-tokens", help="Keep <= N tokens (needs --tokenizer).", rich_help_panel=_P)
]
TokenizerOpt = Annotated[
    str | None, typer.Option("--tokenizer", help="A local Hugging Face tokenizer folder.", rich_help_panel=_P)
]
DropFlaggedOpt = Annotated[
    str | None,
    typer.Option(
        "--drop-flagged",
        help="Drop rollouts with these flags (comma-separated; 'none' drops none). Default: truncated,"
        " unpaired_tool_call, orphan_tool_output, empty_completion, invalid_tool_arguments, mask_sample,"
        " verification_skipped.",
        rich_help_panel=_P,
    ),
]
DedupeOpt = Annotated[
    bool | None,
    typer.Option("--dedupe/--no-dedupe", help="Drop repeated identical conversations.", rich_help_panel=_P),
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


#: option parameter name -> (annotation, config key)
_FILTER_OPTIONS: dict[str, tuple[Any, str]] = {
    "config": (ConfigOpt, ""),
    "min_reward": (MinRewardOpt, "min_reward"),
    "max_reward": (MaxRewardOpt, "max_reward"),
    "success_only": (SuccessOnlyOpt, "success_only"),
    "min_turns": (MinTurnsOpt, "min_turns"),
    "max_turns": (MaxTurnsOpt, "max_turns"),
    "min_assistant_turns": (MinAssistantTurnsOpt, "min_assistant_turns"),
    "max_assistant_turns": (MaxAssistantTurnsOpt, "max_assistant_turns"),
    "require_tool_use": (RequireToolUseOpt, "require_tool_usage"),
    "min_task_success_rate": (MinTaskSuccessRateOpt, "min_success_rate"),
    "max_chars": (MaxCharsOpt, "max_chars"),
    "max_tokens": (MaxTokensOpt, "max_tokens"),
    "tokenizer": (TokenizerOpt, "tokenizer"),
    "drop_flagged": (DropFlaggedOpt, "drop_flagged"),
    "dedupe": (DedupeOpt, "dedupe"),
}
_REDACT_OPTIONS: dict[str, tuple[Any, Any]] = {
    "redact_secrets": (RedactOpt, False),
    "on_secret": (OnSecretOpt, "replace"),
    "allowlist": (AllowlistOpt, None),
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
        for n, (a, _) in _FILTER_OPTIONS.items()
    ]
    extra += [
        inspect.Parameter(n, inspect.Parameter.KEYWORD_ONLY, default=d, annotation=a)
        for n, (a, d) in _REDACT_OPTIONS.items()
    ]

    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        values = {name: kwargs.pop(name, None) for name in _FILTER_OPTIONS}
        config = values.pop("config")
        flags = {_FILTER_OPTIONS[name][1]: value for name, value in values.items()}
        redact = {name: kwargs.pop(name, default) for name, (_, default) in _REDACT_OPTIONS.items()}
        return func(
            *args, **kwargs, filters=filter_config(config, **flags), redaction=redaction_step(**redact)
        )

    params = [*[p.replace(kind=inspect.Parameter.KEYWORD_ONLY) for p in own], *extra]
    wrapper.__signature__ = inspect.Signature(params)  # type: ignore[attr-defined]
    wrapper.__annotations__ = {p.name: p.annotation for p in params}
    return wrapper  # type: ignore[return-value]


def redaction_step(*, redact_secrets: bool, on_secret: str, allowlist: str | None) -> Any:
    if on_secret not in ("replace", "drop"):
        raise typer.BadParameter("must be replace or drop", param_hint="--on-secret")
    if not redact_secrets:
        if allowlist:
            raise typer.BadParameter("needs --redact-secrets", param_hint="--allowlist")
        return None
    from rollcraft.redact import Allowlist, Redactor, RedactSecrets, load_allowlist

    allow = load_allowlist(allowlist) if allowlist else Allowlist()
    return RedactSecrets(on_secret=on_secret, redactor=Redactor(allowlist=allow))  # type: ignore[arg-type]


def judged_rollouts(
    paths: list[str],
    filters: FilterConfig,
    redaction: Any,
    options: ReadOptions,
    report: FilterReport,
    stages: Sequence[Stage] = (),
) -> Iterator[Judged]:
    """Read and run the command's steps: redaction (when asked), the filters, then ``stages``
    (see :mod:`rollcraft.steps`); every drop counted in ``report``."""
    first: list[Step] = []
    if redaction is not None:
        redaction.options = options
        first = redaction_steps(redaction)
    return run_paths(
        paths,
        lambda stats: [*first, *build_steps(filters, task_stats=stats), *stages],
        options=options,
        report=report,
        task_stats=filters.min_success_rate is not None,
    )
