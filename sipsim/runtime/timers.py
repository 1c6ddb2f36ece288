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

    def start(self, key: Hashable, delay: float, now: float | None = None) -> None:
        """Fire ``key`` ``delay`` seconds after ``now`` (the trio clock's time when not given)."""
        seq = self._seq = self._seq + 1
        deadline = (trio.current_time() if now is None else now) + (delay if delay > 0.0 else 0.0)
        live = self._live
        live[key] = seq
        heap = self._heap
        if len(heap) > 64 and len(heap) > 4 * len(live):
            # most entries are cancelled timers (e.g. waits that ended long before their deadline):
            # drop them here too, as the task may sleep for a long time
            self._heap = heap = [e for e in heap if live.get(e[2]) == e[1]]
            heapq.heapify(heap)
        earliest = heap[0][0] if heap else math.inf
        heapq.heappush(heap, (deadline, seq, key))
        if deadline < earliest:
            self._wake.set()

    def cancel(self, key: Hashable) -> None:
        self._live.pop(key, None)

    async def run(self, fire: Callable[[Hashable, float], None]) -> None:
        """Call ``fire(key, now)`` for every timer that expires; runs until cancelled."""
        while True:
            now = trio.current_time()
            live = self._live
            heap = self._heap
            while heap and heap[0][0] <= now:
                _, seq, key = heapq.heappop(heap)
                if live.get(key) == seq:
                    del live[key]
                    fire(key, now)
                    heap = self._heap  # fire() may start timers, and start() may replace the heap
            if heap and len(heap) > 64 and len(heap) > 4 * len(live):
                # drop cancelled entries so a long run does not grow the heap
                self._heap = heap = [e for e in heap if live.get(e[2]) == e[1]]
                heapq.heapify(heap)
            while heap and live.get(heap[0][2]) != heap[0][1]:  # cancelled: not worth waking for
                heapq.heappop(heap)
            self._wake = trio.Event()
            with trio.move_on_at(heap[0][0] if heap else math.inf):
                await self._wake.wait()
