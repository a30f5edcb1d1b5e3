"""Compact collections with one entry per rollout, for the passes that must remember every
rollout: 8-16 bytes an entry, where Python sets and lists of strings and tuples take 100-150
(on 1 GB of 2 KB rollouts, 475,000 entries: 4-8 MB against 50-70 MB).

Measured over 475,000 entries made as a pass makes them (``python benchmarks/shortcuts.py
--only compact``): an :class:`IdSet` takes 8 bytes an id where a ``set`` of the id strings takes
100, and :class:`FirstSeen` 36 bytes a key where a ``dict`` of key bytes to id strings takes 158.
Each answers as the ``set`` or ``dict`` it replaces (``tests/test_compact.py``)."""

from __future__ import annotations

from array import array
from bisect import bisect_left
from collections.abc import Callable, Iterable, Iterator, Sequence

__all__ = ["CategoryLog", "FirstSeen", "IdSet", "LocatorSet", "Numbering", "id_bits"]


def id_bits(rollout_id: str) -> int | None:
    """The 64 bits of an id of 16 lowercase hex digits (what :func:`rollcraft.read._reader.rollout_id_of`
    makes), else None."""
    raw = id_bytes(rollout_id)
    return None if raw is None else int.from_bytes(raw, "big")


def id_bytes(rollout_id: str) -> bytes | None:
    """The 8 bytes of an id of 16 lowercase hex digits (big-endian: ``.hex()`` gives it back),
    else None."""
    if len(rollout_id) != 16:
        return None
    try:
        raw = bytes.fromhex(rollout_id)
    except ValueError:
        return None
    return raw if raw.hex() == rollout_id else None  # fromhex also takes uppercase and spaces


class Numbering:
    """Numbers for the few distinct values (files, categories) that many entries share: an
    entry stores the number, and :attr:`values` gives the value back."""

    __slots__ = ("_numbers", "values")

    def __init__(self) -> None:
        self.values: list[str] = []
        self._numbers: dict[str, int] = {}

    def number(self, value: str) -> int:
        number = self._numbers.get(value)
        if number is None:
            number = self._numbers[value] = len(self.values)
            self.values.append(value)
        return number


class IdSet:
    """A set of rollout ids: their 64 bits in a sorted ``array`` (ids of another shape in a set
    beside). :meth:`add` appends; the array is sorted once, by the first lookup or by
    :meth:`settled` (call that before forking, so workers do not each sort it)."""

    __slots__ = ("_bits", "_odd", "_sorted")

    def __init__(self, ids: Iterable[str] = ()) -> None:
        self._bits = array("Q")
        self._odd: set[str] = set()
        self._sorted = True
        for rollout_id in ids:
            self.add(rollout_id)

    def add(self, rollout_id: str) -> None:
        bits = id_bits(rollout_id)
        if bits is None:
            self._odd.add(rollout_id)
            return
        if self._sorted and self._bits and bits < self._bits[-1]:
            self._sorted = False
        self._bits.append(bits)

    def settled(self) -> IdSet:
        """This set, its array sorted (returns itself)."""
        if not self._sorted:
            self._bits = array("Q", sorted(self._bits))
            self._sorted = True
        return self

    def __contains__(self, rollout_id: object) -> bool:
        if not isinstance(rollout_id, str):
            return False
        bits = id_bits(rollout_id)
        if bits is None:
            return rollout_id in self._odd
        found = self.settled()._bits
        at = bisect_left(found, bits)
        return at < len(found) and found[at] == bits

    def __or__(self, other: IdSet) -> IdSet:
        union = IdSet()
        union._bits = self._bits + other._bits
        union._odd = self._odd | other._odd
        union._sorted = not union._bits
        return union

    def __len__(self) -> int:
        """Entries, an id added twice counted twice."""
        return len(self._bits) + len(self._odd)

    def __iter__(self) -> Iterator[str]:
        for bits in self.settled()._bits:
            yield f"{bits:016x}"
        yield from sorted(self._odd)


class LocatorSet:
    """A set of ``(file, offset)`` locators: per file, the offsets in a sorted ``array`` (and,
    when given, each one's line number beside it: :meth:`lines`)."""

    __slots__ = ("_lines", "_offsets")

    def __init__(self, locators: Iterable[tuple[str, int]] = (), lines: Iterable[int] | None = None) -> None:
        by_file: dict[str, list[tuple[int, int]]] = {}
        numbers = iter(lines) if lines is not None else None
        for source, offset in locators:
            by_file.setdefault(source, []).append((offset, next(numbers) if numbers is not None else 0))
        for entries in by_file.values():
            entries.sort()
        self._offsets = {source: array("q", [o for o, _ in entries]) for source, entries in by_file.items()}
        self._lines: dict[str, array[int]] | None = None
        if numbers is not None:
            self._lines = {source: array("I", [n for _, n in entries]) for source, entries in by_file.items()}

    def __contains__(self, locator: object) -> bool:
        if not isinstance(locator, tuple) or len(locator) != 2:
            return False
        offsets = self._offsets.get(locator[0])
        if offsets is None:
            return False
        at = bisect_left(offsets, locator[1])
        return at < len(offsets) and offsets[at] == locator[1]

    def __len__(self) -> int:
        return sum(len(offsets) for offsets in self._offsets.values())

    def offsets(self, source: str) -> Sequence[int]:
        """The offsets in ``source``, sorted (empty for a file it has none in)."""
        return self._offsets.get(source, array("q"))

    def lines(self, source: str) -> Sequence[int] | None:
        """The line numbers of :meth:`offsets` (None: not given)."""
        return None if self._lines is None else self._lines.get(source, array("I"))


class CategoryLog:
    """Balance's ``(category, (file, offset))`` of each rollout, and its line number, in input
    order: 20 bytes each (the category's and the file's numbers, the offset, the line), where a
    list of such tuples took 155."""

    __slots__ = ("_categories", "_category", "_file", "_files", "_line", "_offset")

    def __init__(self) -> None:
        self._categories = Numbering()
        self._files = Numbering()
        self._category = array("I")
        self._file = array("I")
        self._offset = array("q")
        self._line = array("I")

    def append(self, category: str, locator: tuple[str, int], line: int = 0) -> None:
        file, offset = locator
        self._category.append(self._categories.number(category))
        self._file.append(self._files.number(file))
        self._offset.append(offset)
        self._line.append(line)

    def extend(self, other: CategoryLog, keep: Callable[[tuple[str, int]], bool] | None = None) -> None:
        """Append ``other``'s entries (only those whose locator ``keep`` accepts, when given)."""
        for index, (category, locator) in enumerate(other):
            if keep is None or keep(locator):
                self.append(category, locator, other._line[index])

    def __add__(self, other: CategoryLog) -> CategoryLog:
        joined = CategoryLog()
        joined.extend(self)
        joined.extend(other)
        return joined

    def __len__(self) -> int:
        return len(self._offset)

    def __iter__(self) -> Iterator[tuple[str, tuple[str, int]]]:
        categories, files = self._categories.values, self._files.values
        for category, file, offset in zip(self._category, self._file, self._offset, strict=True):
            yield categories[category], (files[file], offset)

    def groups(self) -> dict[str, array[int]]:
        """The entries' numbers by category (each in input order)."""
        names = self._categories.values
        numbers: list[array[int]] = [array("I") for _ in names]
        for index, category in enumerate(self._category):
            numbers[category].append(index)
        return {name: numbers[number] for number, name in enumerate(names)}

    def locator(self, index: int) -> tuple[str, int]:
        return self._files.values[self._file[index]], self._offset[index]

    def line(self, index: int) -> int:
        return self._line[index]


#: A :class:`FirstSeen` record: the 16-byte key, a state byte, the id's 64 bits.
_KEY, _RECORD = 16, 25
_NONE, _BITS, _ODD = 0, 1, 2  # the value: None, the id's bits, an id of another shape (in a dict)
_BITS_BYTE, _NONE_RECORD = bytes((_BITS,)), bytes((_NONE,)) + bytes(8)


class FirstSeen:
    """Dedupe's memory: per 16-byte conversation key, the id of the first rollout with it (or
    None). 25 bytes an entry, appended to one of 65,536 ``bytearray`` buckets chosen by the key's
    first two bytes and found with ``bytearray.find``: about 50 bytes an entry at 200,000 and 35
    at 500,000 with the buckets' own cost, where a dict of ``bytes`` to ``str`` takes about 170.
    Ids that are not 16 lowercase hex digits are kept, as they are, in a dict beside.
    """

    __slots__ = ("_buckets", "_count", "_odd")

    def __init__(self) -> None:
        self._buckets: list[bytearray | None] = []  # made on the first entry (512 KB)
        self._odd: dict[bytes, str] = {}
        self._count = 0

    @staticmethod
    def _checked(key: bytes) -> bytes:
        if len(key) != _KEY:
            raise ValueError(f"a FirstSeen key is {_KEY} bytes, not {len(key)}")
        return key

    def _find(self, key: bytes) -> tuple[bytearray | None, int]:
        """The key's bucket (None when it has none yet) and its record's offset there (-1: none)."""
        bucket = self._buckets[key[0] << 8 | key[1]] if self._buckets else None
        if bucket is None:
            return None, -1
        at = bucket.find(key)
        while at > 0 and at % _RECORD:  # the key's bytes across two records: look further
            at = bucket.find(key, at + 1)
        return bucket, at

    def __contains__(self, key: object) -> bool:
        return isinstance(key, bytes) and len(key) == _KEY and self._find(key)[1] >= 0

    def get(self, key: bytes) -> str | None:
        """The first id of ``key``; None when it has none (or is not here: see :meth:`lookup`)."""
        return self.lookup(key)[1]

    def lookup(self, key: bytes) -> tuple[bool, str | None]:
        """Whether ``key`` is here, and its first id (one search for both)."""
        bucket, at = self._find(self._checked(key))
        if bucket is None or at < 0:
            return False, None
        state = bucket[at + _KEY]
        if state == _BITS:
            return True, bucket[at + _KEY + 1 : at + _RECORD].hex()  # the bits are big-endian
        return True, (self._odd[key] if state == _ODD else None)

    def claim(self, key: bytes, rollout_id: str | None) -> tuple[bool, str | None]:
        """Whether ``key`` was here, and its first id, after giving it ``rollout_id`` where it had
        none (a key not here is added): what :meth:`lookup` and :meth:`add` do, with one search
        (dedupe calls it once a rollout)."""
        bucket, at = self._find(self._checked(key))
        if bucket is None or at < 0:
            self.add(key, rollout_id)
            return False, None
        state = bucket[at + _KEY]
        if state == _BITS:
            return True, bucket[at + _KEY + 1 : at + _RECORD].hex()
        if state == _ODD:
            return True, self._odd[key]
        if rollout_id is not None:
            self[key] = rollout_id
        return True, None

    def __setitem__(self, key: bytes, rollout_id: str | None) -> None:
        bucket, at = self._find(self._checked(key))
        raw = id_bytes(rollout_id) if rollout_id is not None else None
        state = _NONE if rollout_id is None else (_BITS if raw is not None else _ODD)
        record = bytes((state,)) + (raw or bytes(8))
        if state == _ODD:
            assert rollout_id is not None
            self._odd[key] = rollout_id
        else:
            self._odd.pop(key, None)
        if at >= 0:
            assert bucket is not None
            bucket[at + _KEY : at + _RECORD] = record
        else:
            self._append(key, record)

    def add(self, key: bytes, rollout_id: str | None) -> None:
        """Give a key that is not here (the caller looked it up) its first id, without a search."""
        self._checked(key)
        raw = id_bytes(rollout_id) if rollout_id is not None else None
        if raw is not None:
            record = _BITS_BYTE + raw
        elif rollout_id is None:
            record = _NONE_RECORD
        else:
            self[key] = rollout_id
            return
        self._append(key, record)

    def _append(self, key: bytes, record: bytes) -> None:
        if not self._buckets:
            self._buckets = [None] * (1 << 16)
        index = key[0] << 8 | key[1]
        bucket = self._buckets[index]
        if bucket is None:
            bucket = self._buckets[index] = bytearray()
        bucket += key
        bucket += record
        self._count += 1

    def setdefault(self, key: bytes, rollout_id: str | None = None) -> str | None:
        """``key``'s first id, after giving it ``rollout_id`` when it had no entry."""
        present, first = self.lookup(key)
        if present:
            return first
        self[key] = rollout_id
        return rollout_id

    def __len__(self) -> int:
        return self._count
