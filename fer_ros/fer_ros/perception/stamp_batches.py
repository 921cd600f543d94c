"""Gather one item per face id by stamp, so that the faces of one frame are classified in one
batch: a stamp is ready when every id its tracked list names has its item, or once it has
waited `max_wait` seconds for the rest. Bounded: at most `max_stamps` stamps wait. No ROS."""
from __future__ import annotations

from typing import Generic, Hashable, Sequence, TypeVar

T = TypeVar('T')
Stamp = Hashable


class StampBatches(Generic[T]):

    def __init__(self, max_wait: float = 0.2, max_stamps: int = 8):
        self.max_wait, self.max_stamps = max_wait, max_stamps
        self._expected: dict[Stamp, frozenset[str]] = {}
        self._items: dict[Stamp, dict[str, T]] = {}
        self._since: dict[Stamp, float] = {}  # when the stamp's first item arrived

    def expect(self, stamp: Stamp, ids: Sequence[str], now: float) -> list[tuple[Stamp, dict]]:
        """The ids of a stamp's frame (its tracked list); the batches this completes."""
        self._expected[stamp] = frozenset(ids)
        self._bound(self._expected)
        return self._ready(stamp, now)

    def add(self, stamp: Stamp, face_id: str, item: T, now: float) -> list[tuple[Stamp, dict]]:
        """One face's item; the batches this completes."""
        self._items.setdefault(stamp, {})[face_id] = item
        self._since.setdefault(stamp, now)
        self._bound(self._items)
        return self._ready(stamp, now)

    def flush(self, now: float) -> list[tuple[Stamp, dict]]:
        """The stamps that waited max_wait for the rest of their faces, with what came."""
        return [self._take(s) for s in [s for s, t in self._since.items()
                                        if now - t >= self.max_wait]]

    def _ready(self, stamp: Stamp, now: float) -> list[tuple[Stamp, dict]]:
        items, expected = self._items.get(stamp), self._expected.get(stamp)
        if items is None or expected is None or not expected <= items.keys():
            return self.flush(now)
        older = [s for s in self._items if s != stamp and self._since[s] <= self._since[stamp]]
        for s in older:  # a newer frame is complete: an older one is no longer worth the time
            self._take(s)
        return [self._take(stamp)] + self.flush(now)

    def _take(self, stamp: Stamp) -> tuple[Stamp, dict]:
        self._expected.pop(stamp, None)
        self._since.pop(stamp, None)
        return stamp, self._items.pop(stamp, {})

    def _bound(self, table: dict) -> None:
        while len(table) > self.max_stamps:
            oldest = next(iter(table))
            if table is self._items:
                self._take(oldest)
            else:
                del table[oldest]
