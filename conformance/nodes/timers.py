"""Deadlines keyed by what they are for: one live deadline per key, in a heap whose stale
entries (deadlines replaced by a later re-registration) are dropped when they outnumber the
live ones, so a node re-registered 100,000 times keeps one timer, not 100,000."""

from __future__ import annotations

import heapq
from typing import Hashable


class Deadlines:
    def __init__(self):
        self._live: dict[Hashable, float] = {}
        self._heap: list[tuple[float, int, Hashable]] = []
        self._order = 0  # ties in time pop in the order they were set

    def __len__(self) -> int:
        return len(self._live)

    def set(self, key: Hashable, when: float) -> None:
        """The deadline of `key` is now `when` (replacing any earlier one)."""
        self._live[key] = when
        self._order += 1
        heapq.heappush(self._heap, (when, self._order, key))
        if len(self._heap) > 2 * len(self._live) + 64:
            self._heap = [(w, i, k) for w, i, k in self._heap if self._live.get(k) == w]
            heapq.heapify(self._heap)

    def cancel(self, key: Hashable) -> None:
        self._live.pop(key, None)

    def next(self) -> float | None:
        while self._heap and self._live.get(self._heap[0][2]) != self._heap[0][0]:
            heapq.heappop(self._heap)  # replaced or cancelled
        return self._heap[0][0] if self._heap else None

    def due(self, now: float) -> list[Hashable]:
        """The keys whose deadline has come, earliest first; they are no longer live."""
        keys = []
        while (when := self.next()) is not None and when <= now:
            _, _, key = heapq.heappop(self._heap)
            del self._live[key]
            keys.append(key)
        return keys

    def heap_size(self) -> int:
        return len(self._heap)
