"""SIP timers scheduled by trio: one task per node sleeps until the earliest deadline.

The SIP core asks for timers with StartTimer(key, delay) values; this queue keeps them in a heap, so
trio's MockClock drives every SIP timer in tests and a node holding 10,000 calls needs one task.
"""

from __future__ import annotations

import heapq
import math
from collections.abc import Callable, Hashable

import trio


class TimerQueue:
    def __init__(self) -> None:
        self._heap: list[tuple[float, int, Hashable]] = []
        self._live: dict[Hashable, int] = {}
        self._seq = 0
        self._wake = trio.Event()

    def __len__(self) -> int:
        return len(self._live)

    def start(self, key: Hashable, delay: float) -> None:
        self._seq += 1
        deadline = trio.current_time() + max(0.0, delay)
        self._live[key] = self._seq
        earliest = self._heap[0][0] if self._heap else math.inf
        heapq.heappush(self._heap, (deadline, self._seq, key))
        if deadline < earliest:
            self._wake.set()

    def cancel(self, key: Hashable) -> None:
        self._live.pop(key, None)

    async def run(self, fire: Callable[[Hashable, float], None]) -> None:
        """Call ``fire(key, now)`` for every timer that expires; runs until cancelled."""
        heap = self._heap
        while True:
            now = trio.current_time()
            while heap and heap[0][0] <= now:
                _, seq, key = heapq.heappop(heap)
                if self._live.get(key) == seq:
                    del self._live[key]
                    fire(key, now)
            if heap and len(heap) > 64 and len(heap) > 4 * len(self._live):
                # drop cancelled entries so a long run does not grow the heap
                self._heap = heap = [e for e in heap if self._live.get(e[2]) == e[1]]
                heapq.heapify(heap)
            self._wake = trio.Event()
            with trio.move_on_at(heap[0][0] if heap else math.inf):
                await self._wake.wait()
