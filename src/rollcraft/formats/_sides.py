"""Reading a DPO pair's sides back: from their input lines, from trl SFT rows or from the sides
file (locators marked :func:`sft_locator` or side rows), or spliced from the rows' bytes.

Reading sides from rows and splicing pairs from their bytes (:func:`_spliced`) are shortcuts for
speed; the plain path reads the input lines back and normalizes them again. What they buy, on
300 MB of the benchmark's input (``python benchmarks/shortcuts.py --size 300MB --only
splice-sft,splice``, 4-8 interleaved rounds, medians): with SFT rows written too, a run takes
2.03 CPU seconds spliced, 2.12 with the rows decoded instead, 2.39 on the plain path (the plain
path costs 18% more, 34% more wall time). DPO alone, where the pass writes every candidate's trl
row to the ``.dpo-sides.jsonl`` scratch file to splice from: the plain path took -2% to 8% more
CPU time (medians of four runs; -2% in the one of 8 rounds), nothing beyond the noise. The same
bytes: ``tests/perf/test_shortcuts.py`` (both), ``tests/formats/test_formats_dpo.py``.
"""

from __future__ import annotations

from dataclasses import dataclass

import orjson

from rollcraft._records import Conversation
from rollcraft.formats._dialects import encode_messages
from rollcraft.formats._lines import LineStore
from rollcraft.formats._pairing import Candidate, PlannedPair
from rollcraft.read._fast import tools_from_text
from rollcraft.read._reader import ReadOptions, conversation_of_line


def _spliced(
    pair: PlannedPair, store: LineStore, rows: _Rows, lines: dict[tuple[str, int], bytes]
) -> bytes | None:
    """The trl row of a pair whose sides both have trl rows (SFT or side rows), spliced from
    the rows' bytes.

    The same bytes as decoding both rows and encoding the pair: the rows' message lists are the
    trl encoding of the sides (the mapping is one to one) and orjson writes no whitespace. None
    (the general path decides) when a side has no SFT row, or when the sides end with the same
    message: they might be identical but for their call ids, which needs the decoded messages.
    (The last message is a final answer: no tool calls, so no call ids, in its bytes.)
    """
    chosen, rejected = pair.chosen, pair.rejected
    good_at, bad_at = rows.find(chosen.locator), rows.find(rejected.locator)
    if good_at is None or bad_at is None:
        return None
    good = _row_parts(_row(chosen, good_at, store, lines), good_at[2])
    bad = _row_parts(_row(rejected, bad_at, store, lines), bad_at[2])
    if good is None or bad is None or good[3] == bad[3]:
        return None
    tail = orjson.dumps(
        {
            "quality_difference": round(chosen.reward - rejected.reward, 12),
            "task_key": pair.task_key,
            "chosen_reward": chosen.reward,
            "rejected_reward": rejected.reward,
            "chosen_id": chosen.rollout_id,
            "rejected_id": rejected.rollout_id,
        },
        option=orjson.OPT_APPEND_NEWLINE,
    )
    prompt, win, tools = good[0], good[1], good[2]
    parts = (b'{"prompt":[', prompt, b'],"chosen":[', win, b'],"rejected":[', bad[1], b'],"tools":', tools)
    return b"".join((*parts, b",", memoryview(tail)[1:]))


_MESSAGES_HEAD = b'{"messages":['
_MESSAGE_START = b',{"role":'
_TOOLS_KEY = b'],"tools":'
_REWARD_KEY = b',"reward":'

_Parts = tuple[memoryview, memoryview, memoryview, memoryview]


def _row(
    candidate: Candidate, at: tuple[str, int, int], store: LineStore, lines: dict[tuple[str, int], bytes]
) -> bytes:
    """A candidate's trl row (``at`` from :meth:`_Rows.find`), read once per task."""
    row = lines.get(candidate.locator)
    if row is None:
        row = lines[candidate.locator] = store.fetch(at[:2])
    return row


def _row_parts(row: bytes, prompt_messages: int) -> _Parts | None:
    """A trl SFT row cut into its prompt messages, completion messages, tools JSON and last
    message, or None (not laid out as expected).

    The row is orjson's JSON: no whitespace outside strings, and every quote inside a string is
    escaped. So ``,{"role":`` starts a message (tool calls have no role), the last
    ``],"tools":`` ends the messages and the last ``,"reward":`` ends the tools' string.
    """
    if not row.startswith(_MESSAGES_HEAD):
        return None
    head = start = len(_MESSAGES_HEAD)
    try:
        for _ in range(prompt_messages):
            start = row.index(_MESSAGE_START, start) + 1
        end = row.rindex(_TOOLS_KEY, start)
        tools = end + len(_TOOLS_KEY)
        tools_end = row.rindex(_REWARD_KEY, tools)
    except ValueError:
        return None
    if start == end:  # no completion messages
        return None
    last = row.rfind(_MESSAGE_START, start, end) + 1 or start
    view = memoryview(row)
    return view[head : max(head, start - 1)], view[start:end], view[tools:tools_end], view[last:end]


def _load(
    candidate: Candidate,
    store: LineStore,
    read_options: ReadOptions,
    cache: dict[tuple[str, int], Conversation],
    rows: _Rows | None = None,
    lines: dict[tuple[str, int], bytes] | None = None,
) -> Conversation:
    """The conversation of a candidate's line (read back; the first pass has every other fact).

    With ``rows`` (see :meth:`PairCollector.read_sft_rows`) every conversation comes back with
    trl-encoded messages: from its trl row where it has one (``lines``: the rows this task has
    read already), else encoded here.
    """
    found = cache.get(candidate.locator)
    if found is None:
        where = rows.find(candidate.locator) if rows is not None else None
        try:
            if where is not None:
                row = _row(candidate, where, store, lines if lines is not None else {})
                found = _from_sft_row(row, where[2])
            else:
                found = conversation_of_line(store.fetch(candidate.locator), read_options)
                if rows is not None:
                    prompt, completion = found.prompt, found.completion
                    found = Conversation(
                        encode_messages(prompt, "trl"), encode_messages(completion, "trl"), found.tools
                    )
        except ValueError:  # the same bytes parsed once already
            raise RuntimeError(f"line of rollout {candidate.rollout_id} could not be read back") from None
        cache[candidate.locator] = found
    return found


#: Locators into the SFT file (or into the side rows) carry this prefix and the number of prompt
#: messages.
_SFT_MARK = "\0sft:"
_SIDE_MARK = "\0side:"
_MARKS: dict[tuple[str, int], str] = {}


def sft_locator(prompt_messages: int, offset: int) -> tuple[str, int]:
    """A candidate's locator pointing at its row in the SFT file (see :meth:`PairCollector.read_sft_rows`)."""
    return _locator(_SFT_MARK, prompt_messages, offset)


def _locator(kind: str, prompt_messages: int, offset: int) -> tuple[str, int]:
    mark = _MARKS.get((kind, prompt_messages))
    if mark is None:
        mark = _MARKS[kind, prompt_messages] = f"{kind}{prompt_messages}"
    return mark, offset


@dataclass(frozen=True, slots=True)
class _Rows:
    """Where trl rows of candidates are: the SFT file and the side rows (either may be None)."""

    sft: str | None
    sides: str | None

    def holds(self, source: str) -> bool:
        """Whether a locator with this source points into one of the files."""
        return (source.startswith(_SFT_MARK) and self.sft is not None) or (
            source.startswith(_SIDE_MARK) and self.sides is not None
        )

    def find(self, locator: tuple[str, int]) -> tuple[str, int, int] | None:
        """``(path, offset, prompt messages)`` of a locator into one of the files, else None."""
        source, offset = locator
        if source.startswith(_SFT_MARK) and self.sft is not None:
            return self.sft, offset, int(source[len(_SFT_MARK) :])
        if source.startswith(_SIDE_MARK) and self.sides is not None:
            return self.sides, offset, int(source[len(_SIDE_MARK) :])
        return None


def shift_sft_locator(candidate: Candidate, base: int) -> Candidate:
    """``candidate`` with an SFT-row locator moved by ``base`` bytes (others unchanged)."""
    source, offset = candidate.locator
    if not source.startswith(_SFT_MARK):
        return candidate
    return Candidate(candidate.reward, candidate.rollout_id, (source, base + offset))


def _from_sft_row(line: bytes, prompt_messages: int) -> Conversation:
    row = orjson.loads(line)
    messages = row["messages"]
    return Conversation(messages[:prompt_messages], messages[prompt_messages:], tools_from_text(row["tools"]))
