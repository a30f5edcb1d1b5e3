"""The decontamination step (:class:`Decontaminate`): drop a training rollout whose prompt is an
evaluation task's prompt, exactly or by long word n-grams (:class:`EvalPrompts`).

What is compared is a rollout's *prompt text*: the content of the user messages of
``rollout.conversation.prompt``, joined by newlines. System and developer messages are left
out (an environment gives every task the same one), and so is everything the agent produced.

Two kinds of match, checked in this order:

* **exact**: the prompt texts are equal after whitespace is collapsed and case folded.
* **13-gram**: the prompts' words (lower case, runs of letters and digits) cut into
  :data:`NGRAM` -word shingles, the GPT-3 and NeMo Curator convention. A shingle found in the
  prompts of two or more evaluation tasks is template text (an environment's instructions), not
  a task's own: it does not count, and the words it covers are not the task's own words. A
  training prompt is contaminated by an evaluation task when the shingles they share cover at
  least :data:`MIN_OVERLAP` of that task's own words (so the same question under another
  template matches, and a prompt that shares only the template does not).

An empty prompt text matches nothing; a prompt of fewer than :data:`NGRAM` words is matched
only exactly. A prompt that carries an image, audio or a file (its text holds a ``<image>``,
``<audio>`` or ``<file>`` placeholder) matches nothing: its text alone does not say which task
it is (one question about many images).
"""

from __future__ import annotations

import functools
import os
import re
from array import array
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import ClassVar

from xxhash import xxh3_64_intdigest, xxh3_128_digest

from rollcraft._errors import ConfigError
from rollcraft._records import Rollout

__all__ = [
    "MIN_OVERLAP",
    "NGRAM",
    "Decontaminate",
    "EvalPrompts",
    "decontaminate_step",
    "eval_paths",
    "load_eval_prompts",
    "prompt_text",
    "relative_to_config",
]

#: Words per shingle.
NGRAM = 13
#: The share of an evaluation task's own words that shared shingles must cover for a drop.
MIN_OVERLAP = 0.8

_WORD = re.compile(r"\w+")
_PLACEHOLDER = re.compile(r"<(?:image|audio|file)>")
_TEMPLATE = -1  # a shingle of two or more evaluation tasks


def prompt_text(rollout: Rollout) -> str:
    """The text that is compared: the prompt's user messages, joined by newlines."""
    return "\n".join(
        content
        for message in rollout.conversation.prompt
        if message.get("role") == "user" and isinstance(content := message.get("content"), str)
    )


def _exact_key(normal: str) -> bytes:
    return xxh3_128_digest(normal.encode())


def _normal(text: str) -> str | None:
    """The text with whitespace collapsed and case folded; None: the text is never compared."""
    normal = " ".join(text.split()).casefold()
    return None if not normal or _PLACEHOLDER.search(normal) else normal


def _shingle_list(normal: str) -> list[int]:
    """The hashes of the text's shingles, in order: each word hashed once, then each run of
    :data:`NGRAM` word hashes (in memory only: the byte order of the machine does not matter)."""
    words = _WORD.findall(normal)
    if len(words) < NGRAM:
        return []
    packed = memoryview(array("Q", map(xxh3_64_intdigest, map(str.encode, words)))).cast("B")
    return [xxh3_64_intdigest(packed[i : i + 8 * NGRAM]) for i in range(0, 8 * (len(words) - NGRAM + 1), 8)]


@dataclass(slots=True)
class EvalPrompts:
    """The evaluation tasks' prompts, indexed once: exact keys, shingles, and each task's own words.

    >>> prompts = EvalPrompts.load(["eval.jsonl"])  # doctest: +SKIP
    """

    tasks: list[str] = field(default_factory=list)
    exact: dict[bytes, int] = field(default_factory=dict)
    #: shingle -> ``task << 32 | position`` of its first place (:data:`_TEMPLATE`: two tasks have it)
    shingles: dict[int, int] = field(default_factory=dict)
    #: per task, the running count of its own words (not in any template shingle): ``own[t][k]``
    #: is how many of its first ``k`` words are its own
    own: list[array[int]] = field(default_factory=list)

    @classmethod
    def load(cls, paths: Sequence[str]) -> EvalPrompts:
        """Read the evaluation files (rollcraft reads them as it reads any rollouts; quarantined
        lines are skipped); a file with no rollout is a :class:`ConfigError`."""
        from rollcraft.read._reader import ReadReport, read_rollouts

        prompts: dict[str, str] = {}
        for path in paths:
            report = ReadReport()
            for item in read_rollouts([path], report=report):
                if isinstance(item, Rollout) and item.task_key not in prompts:
                    prompts[item.task_key] = prompt_text(item)
            if not report.rollouts:
                raise ConfigError(f"{path}: no rollouts to decontaminate against", key="decontaminate")
        return cls.of(prompts.items())

    @classmethod
    def of(cls, prompts: Iterable[tuple[str, str]]) -> EvalPrompts:
        """The index of ``(task, prompt text)`` pairs, one per evaluation task.

        >>> EvalPrompts.of([("t1", "What is 2 + 2?")]).match("what is 2 +  2?")
        'exact prompt of eval task t1'
        """
        result = cls()
        shingled: list[list[int]] = []
        for index, (task, text) in enumerate(prompts):
            result.tasks.append(task)
            normal = _normal(text)
            shingled.append(_shingle_list(normal) if normal is not None else [])
            if normal is not None:
                result.exact.setdefault(_exact_key(normal), index)
            for position, shingle in enumerate(shingled[-1]):
                if result.shingles.setdefault(shingle, index << 32 | position) >> 32 != index:
                    result.shingles[shingle] = _TEMPLATE
        result.own = [result._own_words(shingles) for shingles in shingled]
        return result

    def _own_words(self, shingles: list[int]) -> array[int]:
        template = bytearray(len(shingles) + NGRAM - 1 if shingles else 0)
        for position, shingle in enumerate(shingles):
            if self.shingles[shingle] == _TEMPLATE:
                template[position : position + NGRAM] = b"\x01" * NGRAM
        running = array("I", [0])
        for flag in template:
            running.append(running[-1] + (not flag))
        return running

    def match(self, text: str) -> str | None:
        """Why ``text`` matches an evaluation task (None: it matches none)."""
        normal = _normal(text)
        if normal is None:
            return None
        if (index := self.exact.get(_exact_key(normal))) is not None:
            return f"exact prompt of eval task {self.tasks[index]}"
        get = self.shingles.get
        places: dict[int, list[int]] = {}
        for place in [p for s in set(_shingle_list(normal)) if (p := get(s, _TEMPLATE)) != _TEMPLATE]:
            places.setdefault(place >> 32, []).append(place & 0xFFFFFFFF)
        shares = {task: self._covered(task, positions) for task, positions in places.items()}
        best = max(shares, key=lambda task: (shares[task], -task), default=None)
        if best is None or shares[best] < MIN_OVERLAP:
            return None
        return f"{NGRAM}-gram overlap {shares[best]:.0%} with eval task {self.tasks[best]}"

    def _covered(self, task: int, positions: list[int]) -> float:
        """The share of ``task``'s own words inside the shingles at ``positions``."""
        own = self.own[task]
        covered = end = 0
        for position in sorted(positions):
            start, end = max(position, end), position + NGRAM
            covered += own[end] - own[start] if end > start else 0
        return covered / own[-1] if own[-1] else 0.0


@dataclass(frozen=True, slots=True)
class Decontaminate:
    """Drop rollouts whose prompt matches an evaluation task's prompt (see the module docstring).

    The last prompt's answer is kept: a task's rollouts, one after another, are matched once.
    """

    prompts: EvalPrompts
    _last: list[tuple[str, str | None]] = field(default_factory=list, compare=False, repr=False)
    name: ClassVar[str] = "decontaminate"

    def check(self, rollout: Rollout) -> str | None:
        text = prompt_text(rollout)
        if self._last and self._last[0][0] == text:
            return self._last[0][1]
        reason = self.prompts.match(text)
        self._last[:] = [(text, reason)]
        return reason


@functools.lru_cache(maxsize=4)
def _loaded(paths: tuple[str, ...], stamps: tuple[tuple[int, int], ...]) -> EvalPrompts:
    return EvalPrompts.load(paths)


def load_eval_prompts(paths: Sequence[str]) -> EvalPrompts:
    """The index of ``paths``, loaded once per process while the files are unchanged (every
    shard and worker of a run builds its steps again)."""
    from rollcraft._io import expand_inputs

    if "-" in paths:
        raise ConfigError("evaluation files are read from files, not stdin (-)", key="decontaminate")
    files = tuple(expand_inputs(paths))
    stamps = tuple((s.st_mtime_ns, s.st_size) for s in map(os.stat, files))
    return _loaded(files, stamps)


def decontaminate_step(paths: list[str], config: object, stats: object) -> Decontaminate:
    """The step of the ``decontaminate`` key: its evaluation files, loaded (once per process)."""
    return Decontaminate(load_eval_prompts(paths))


def eval_paths(value: object) -> object:
    """``decontaminate``'s value: a list of paths, or one string of comma-separated paths (the
    flag); an empty string or ``none`` is no file."""
    if isinstance(value, str):
        return [p.strip() for p in value.split(",") if p.strip() and p.strip().lower() != "none"]
    return value


def relative_to_config(data: dict[str, object], source: str | None) -> dict[str, object]:
    """``data`` with the relative paths of its ``decontaminate`` key made relative to the folder
    of the config file ``source`` (as every path of a pipeline config is)."""
    paths = eval_paths(data.get("decontaminate"))
    if source is None or not isinstance(paths, list) or not all(isinstance(p, str) for p in paths):
        return data
    base = os.path.dirname(os.path.abspath(source))
    return data | {
        "decontaminate": [p if os.path.isabs(p) else os.path.normpath(os.path.join(base, p)) for p in paths]
    }
