"""NeMo Gym's ``ng_trajectory`` (schema 1.0) -> one chat conversation per model-visible context.

With model-call capture or agent observations on, a NeMo Gym record carries ``ng_trajectory``:
``invocations`` (the root agent and its subagents: a subagent names ``parent_invocation_id`` and
``spawned_by_tool_call_id``; each lists the ``model_calls`` it owns and a ``conversation`` of
Responses items), ``turns``, ``tool_calls``, ``model_calls`` (each call's exact ``request`` and
``response`` in the ``responses``, ``chat`` or ``messages`` dialect) and ``gaps`` (what the
producer could not observe or join).

The rules (``docs/reading.md`` has them for users):

* An invocation's conversations come from its model calls: what the model saw (the request) and
  produced (the response), each mapped to chat through :class:`rollcraft.read._normalize.Builder`
  (the ``messages`` dialect's content blocks through a small mapping here). A call whose request
  extends an earlier call's request continues that call's context; one that extends none (a
  compacted context, a side call) starts a new one. Each context's conversation is its last
  call's request and response: the prompt is its leading system/user messages.
* An invocation with no usable model call falls back to its ``conversation`` items.
* The main conversation is the last context of the last root invocation (no parent): kind
  ``main``; the root's other contexts (and earlier roots) are kind ``branch``; every context of
  a subagent is kind ``subagent``. Every row shares its rollout's reward (schema 1.0 has no
  per-invocation reward).
* A gap of an invocation (or of the whole record) that can touch its history flags the rows of
  that invocation ``trajectory_gap`` (the codes are on the row): nothing is stitched across it.
  Gaps about timing, outcomes, token counts or turn metadata (:data:`METADATA_GAPS`) do not; nor
  do gaps of the transcript (``compaction_*``, ``*transcript*``, ``conversation_unavailable``)
  for a history read from the model calls, or gaps of the model calls (``model_call*``,
  ``model_response_id_*``) for one read from the transcript.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, replace
from typing import Any, Literal

import orjson
from xxhash import xxh3_64_hexdigest

from rollcraft._records import Conversation, Rollout, Tool
from rollcraft.read._normalize import (
    Builder,
    ReasoningMode,
    nest_tools,
    value_text,
)
from rollcraft.read._trajectory_calls import _Context, _contexts, _list

__all__ = [
    "DEFAULT_TRAJECTORY_MODE",
    "METADATA_GAPS",
    "TRAJECTORY_MODES",
    "RowKind",
    "TrajectoryMode",
    "TrajectoryRow",
    "main_conversation",
    "row_rollout",
    "trajectory_conversations",
    "trajectory_rollouts",
]

TrajectoryMode = Literal["main", "branches", "off"]
RowKind = Literal["main", "subagent", "branch"]

#: ``main``: the main agent's last model-visible conversation (the rollout's conversation when
#: ``response.output`` holds less); ``branches``: every conversation, one row each; ``off``: the
#: trajectory is not read.
TRAJECTORY_MODES: tuple[TrajectoryMode, ...] = ("main", "branches", "off")
DEFAULT_TRAJECTORY_MODE: TrajectoryMode = "main"

#: Gap codes about what is around the history (timing, outcomes, token counts, turn metadata,
#: sandboxes), not the model-visible history itself: they flag nothing.
METADATA_GAPS = frozenset(
    {
        "turns_unavailable",
        "resolution_unavailable",
        "invocation_outcome_unavailable",
        "tool_timing_invalid",
        "tool_start_timestamp_missing",
        "tool_result_timestamp_missing",
        "sandbox_lifecycle_timing_unavailable",
        "no_sandbox_runtime",
        "verifier_sandbox_observation_unavailable",
        "verifier_sandbox_observation_invalid",
        "turn_model_call_scope_incomplete",
    }
)

#: Gap codes about the harness's transcript (``conversation`` items) and its compaction events
#: do not touch a conversation read from the model calls' exact requests; gap codes about the
#: model calls do not touch one read from the transcript.
_TRANSCRIPT_GAPS = ("compaction_", "conversation_unavailable", "agent_transcript_", "transcript_")
_TRANSCRIPT_GAP_WORDS = ("_transcript_",)
_MODEL_CALL_GAPS = ("model_call", "model_response_id_")

#: Flags of the record, not of its conversation: kept on every row of the rollout.
_RECORD_FLAGS = frozenset({"mask_sample", "verification_skipped", "superseded_attempt", "duplicate_rollout"})


@dataclass(frozen=True, slots=True)
class TrajectoryRow:
    """One model-visible conversation of a rollout's trajectory, linked to its rollout.

    ``row_id`` is the rollout id for the main conversation, else
    ``<rollout_id>/<invocation_id>/<context>``; ``context`` numbers an invocation's contexts
    from 0 (a compaction starts the next): None for the main row of ``main`` mode, which reads
    only the main context (its last model call) and does not count the ones before.
    ``source``: ``model_calls`` (exact requests) or ``conversation`` (the harness's
    transcript). ``gaps``: the gap codes that flagged it.
    """

    rollout_id: str
    row_id: str
    invocation_id: str
    parent_invocation_id: str | None
    spawned_by_tool_call_id: str | None
    kind: RowKind
    context: int | None
    conversation: Conversation
    reward: float
    flags: frozenset[str]
    gaps: tuple[str, ...]
    source: Literal["model_calls", "conversation"]
    status: str


def trajectory_conversations(
    rollout: Rollout, mode: TrajectoryMode = DEFAULT_TRAJECTORY_MODE, *, reasoning: ReasoningMode = "separate"
) -> list[TrajectoryRow]:
    """The model-visible conversations of ``rollout``'s ``ng_trajectory``: the main one
    (``main``), all of them, main first (``branches``), none (``off``, or no trajectory)."""
    if mode == "off":
        return []
    record = rollout.record  # decodes the whole line: once
    trajectory = record.get("ng_trajectory")
    if not isinstance(trajectory, dict):
        return []
    tools = _record_tools(record)
    rows = _rows(trajectory, rollout.rollout_id, rollout.reward, reasoning, tools, only_main=mode == "main")
    return [row for row in rows if row.kind == "main"] if mode == "main" else rows


def trajectory_rollouts(
    rollout: Rollout, mode: TrajectoryMode = DEFAULT_TRAJECTORY_MODE, *, reasoning: ReasoningMode = "separate"
) -> list[Rollout]:
    """What to write for ``rollout``: itself (its conversation is already the main one, see
    :func:`main_conversation`), then, with ``branches``, each other conversation as a rollout."""
    if mode != "branches":
        return [rollout]
    rows = trajectory_conversations(rollout, "branches", reasoning=reasoning)
    return [rollout, *(row_rollout(rollout, row) for row in rows if row.kind != "main")]


def row_rollout(rollout: Rollout, row: TrajectoryRow) -> Rollout:
    """``row`` as a rollout: ``rollout``'s facts (reward, success, task type, record flags) with
    the row's id, conversation and flags.

    A subagent or branch conversation is not its rollout's task (the model was asked something
    else): its task key is ``<rollout task key>/<kind>:<digest of its prompt and tools>``, so
    it pairs only with the same conversation of another rollout of the task, never with a main one.
    """
    conversation = row.conversation
    task_key = rollout.task_key
    if row.kind != "main":
        payload = {"prompt": conversation.prompt, "tools": conversation.tools}
        digest = xxh3_64_hexdigest(orjson.dumps(payload, option=orjson.OPT_SORT_KEYS))
        task_key = f"{task_key}/{row.kind}:{digest}"
    n_assistant = n_calls = n_chars = 0
    for message in conversation.messages:
        n_chars += len(message["content"])
        if message["role"] == "assistant":
            n_assistant += 1
            n_calls += len(message.get("tool_calls") or ())
    return replace(
        rollout,
        rollout_id=row.row_id,
        task_key=task_key,
        reward=row.reward,
        flags=(rollout.flags & _RECORD_FLAGS) | row.flags,
        conversation=conversation,
        n_messages=len(conversation.prompt) + len(conversation.completion),
        n_assistant_turns=n_assistant,
        n_tool_calls=n_calls,
        n_chars=n_chars,
    )


def main_conversation(
    record: dict[str, Any], current: Conversation, reasoning: ReasoningMode, flags: set[str]
) -> Conversation:
    """The reader's hook: the conversation of a record: its ``ng_trajectory``'s main
    conversation when it has one with no gap (what the model saw, exactly), or one with a gap
    that holds more completion messages than ``current`` (read from ``response.output``: an
    agent whose output holds only its final message); else ``current``. When the trajectory's
    is taken, ``flags`` become its flags, with ``from_trajectory``.

    A ``response.output`` that carries token ids (NeMo Gym's token-capture projection of the
    main chain: the exact tokens, :mod:`rollcraft.read._tokens`) stays the conversation.
    """
    trajectory = record.get("ng_trajectory")
    if not isinstance(trajectory, dict) or _carries_tokens(record.get("response")):
        return current
    rows = _rows(trajectory, "", 0.0, reasoning, _record_tools(record), only_main=True)
    main = next((row for row in rows if row.kind == "main"), None)
    if main is None:
        return current
    if "trajectory_gap" in main.flags and len(main.conversation.completion) <= len(current.completion):
        return current
    flags.clear()
    flags.update(main.flags)
    flags.add("from_trajectory")
    return main.conversation


# --- invocations -----------------------------------------------------------------------------


def _rows(
    trajectory: dict[str, Any],
    rollout_id: str,
    reward: float,
    reasoning: ReasoningMode,
    tools: list[Tool],
    *,
    only_main: bool = False,
) -> list[TrajectoryRow]:
    """The trajectory's rows, main first (``only_main``: only the main invocation's)."""
    calls = [call for call in _list(trajectory.get("model_calls")) if isinstance(call, dict)]
    invocations = [
        inv
        for inv in _list(trajectory.get("invocations"))
        if isinstance(inv, dict) and isinstance(inv.get("invocation_id"), str)
    ]
    gaps = [gap for gap in _list(trajectory.get("gaps")) if isinstance(gap, dict)]
    if not invocations and calls:  # calls captured, no agent observation: whose they are is unknown
        invocations = [{"invocation_id": "root", "model_calls": None}]
        gaps.append({"code": "model_call_ownership_unavailable", "invocation_id": "root"})
    roots = [inv for inv in invocations if not inv.get("parent_invocation_id")]
    main_id = roots[-1]["invocation_id"] if roots else None
    rows: list[TrajectoryRow] = []
    for invocation in invocations:
        if only_main and invocation["invocation_id"] != main_id:
            continue
        rows.extend(
            _invocation_rows(
                invocation, main_id, calls, gaps, rollout_id, reward, reasoning, tools, last_only=only_main
            )
        )
    rows.sort(key=lambda row: row.kind != "main")  # main first; otherwise the record's order
    return rows


def _invocation_rows(
    invocation: dict[str, Any],
    main_id: str | None,
    calls: list[dict[str, Any]],
    gaps: list[dict[str, Any]],
    rollout_id: str,
    reward: float,
    reasoning: ReasoningMode,
    record_tools: list[Tool],
    *,
    last_only: bool,
) -> list[TrajectoryRow]:
    invocation_id: str = invocation["invocation_id"]
    own_gaps: list[str] = []
    owned = calls if invocation.get("model_calls") is None else _owned_calls(invocation, calls, own_gaps)
    contexts = _contexts(owned, reasoning, own_gaps, last_only=last_only)
    source: Literal["model_calls", "conversation"] = "model_calls"
    if not contexts:
        source = "conversation"
        items = _list(invocation.get("conversation"))
        if not items:
            return []
        flags: set[str] = set()
        builder = Builder(reasoning, flags)
        builder.feed(items)
        tools = record_tools if invocation["invocation_id"] == main_id else []
        contexts = [_Context((), builder.finish(tools, flag_prompt_in_output=False), flags)]
    codes = [code for code in (*own_gaps, *_gap_codes(gaps, invocation_id)) if _touches(code, source)]
    parent = invocation.get("parent_invocation_id")
    spawned = invocation.get("spawned_by_tool_call_id")
    rows = []
    for index, context in enumerate(contexts):
        kind: RowKind = "subagent" if parent else "branch"
        if invocation_id == main_id and index == len(contexts) - 1:
            kind = "main"
        flags = set(context.flags)
        if codes:
            flags.add("trajectory_gap")
        rows.append(
            TrajectoryRow(
                rollout_id=rollout_id,
                row_id=rollout_id if kind == "main" else f"{rollout_id}/{invocation_id}/{index}",
                invocation_id=invocation_id,
                parent_invocation_id=parent if isinstance(parent, str) else None,
                spawned_by_tool_call_id=spawned if isinstance(spawned, str) else None,
                kind=kind,
                context=None if last_only and source == "model_calls" else index,
                conversation=context.conversation,
                reward=reward,
                flags=frozenset(flags),
                gaps=tuple(dict.fromkeys(codes)),
                source=source,
                status=value_text(invocation.get("status") or "unknown"),
            )
        )
    return rows


def _owned_calls(
    invocation: dict[str, Any], calls: list[dict[str, Any]], gaps: list[str]
) -> list[dict[str, Any]]:
    """The model calls an invocation's references name, each joined exactly as NeMo Gym joins
    them (``model_call_id``, else ``model_ref`` and ``response_id``); a reference that names
    none or several is a gap."""
    by_id: dict[Any, list[dict[str, Any]]] = {}
    for call in calls:
        by_id.setdefault(call.get("model_call_id"), []).append(call)
    owned = []
    for ref in _list(invocation.get("model_calls")):
        if not isinstance(ref, dict):
            continue
        call_id = ref.get("model_call_id")
        candidates = by_id.get(call_id, []) if call_id and isinstance(call_id, str) else calls
        found = [call for call in candidates if _matches(ref, call)]
        if len(found) == 1:
            owned.append(found[0])
        else:
            gaps.append("model_call_reference_ambiguous" if found else "model_call_reference_unmatched")
    return owned


def _matches(ref: dict[str, Any], call: dict[str, Any]) -> bool:
    metadata = call.get("response_metadata")
    metadata = metadata if isinstance(metadata, dict) else {}
    call_id, model_ref, response_id = ref.get("model_call_id"), ref.get("model_ref"), ref.get("response_id")
    if call_id:
        return (
            call.get("model_call_id") == call_id
            and (model_ref is None or model_ref == metadata.get("model_ref"))
            and (response_id is None or response_id == metadata.get("response_id"))
        )
    return (
        model_ref is not None
        and model_ref == metadata.get("model_ref")
        and response_id == metadata.get("response_id")
    )


def _gap_codes(gaps: list[dict[str, Any]], invocation_id: str) -> Iterator[str]:
    for gap in gaps:
        owner = gap.get("invocation_id")
        code = gap.get("code")
        if isinstance(code, str) and (owner is None or owner == invocation_id):
            yield code


def _touches(code: str, source: str) -> bool:
    """Whether a gap can touch a history read from ``source``."""
    if code in METADATA_GAPS:
        return False
    if code.startswith(_TRANSCRIPT_GAPS) or any(word in code for word in _TRANSCRIPT_GAP_WORDS):
        return source == "conversation"
    if code.startswith(_MODEL_CALL_GAPS):
        return source == "model_calls"
    return True


# --- small helpers ---------------------------------------------------------------------------


def _carries_tokens(response: Any) -> bool:
    output = response.get("output") if isinstance(response, dict) else None
    return any(isinstance(item, dict) and item.get("generation_token_ids") for item in _list(output))


def _record_tools(record: dict[str, Any]) -> list[Tool]:
    """The record's own tools (``responses_create_params.tools``): a transcript's tools."""
    params = record.get("responses_create_params")
    return nest_tools(params.get("tools"), set()) if isinstance(params, dict) else []
