"""Waits for a call's events with a timeout, without a trio cancel scope per wait.

A call the lab runner places waits twice or so (the final answer within no_answer_timeout, the end
of the call); a ``trio.CancelScope`` with a deadline costs ~8 µs to enter and leave, more than the
rest of the wait. Here a wait is a token: the ``Flag`` it waits on, one heap of deadlines per runner
(a ``TimerQueue`` serviced by one system task, started with the first timed wait) and the set of
waits that ``interrupt()`` wakes all at once each hold it; whichever comes first wakes the task, the
others find the token done. Cancellation (the surrounding scope) works as for any trio wait.
"""

from __future__ import annotations

import math

import trio
from trio.lowlevel import Abort, current_task, reschedule, wait_task_rescheduled

from sipsim.runtime.timers import TimerQueue


class _Wait:
    """One task waiting on one flag: woken once, by the flag, its deadline, interrupt() or a cancel."""

    __slots__ = ("task", "done")

    def __init__(self, task) -> None:
        self.task = task
        self.done = False

    def wake(self) -> None:
        if not self.done:
            self.done = True
            reschedule(self.task)

    def abort(self, _raise_cancel) -> Abort:
        self.done = True  # the flag, the deadline or interrupt() coming later find it done
        return Abort.SUCCEEDED


class Flag:
    """A one-shot event, as ``trio.Event`` (``set``, ``is_set``, ``await wait()``), whose waits a
    ``Waits`` can also end at a deadline or all at once."""

    __slots__ = ("_set", "_waits")

    def __init__(self) -> None:
        self._set = False
        self._waits: list[_Wait] | None = None

    def is_set(self) -> bool:
        return self._set

    def set(self) -> None:
        if self._set:
            return
        self._set = True
        waits = self._waits
        if waits is not None:
            self._waits = None
            for w in waits:
                w.wake()

    def _add(self, w: _Wait) -> None:
        if self._waits is None:
            self._waits = [w]
        else:
            self._waits.append(w)

    async def wait(self) -> None:
        """Until set (a checkpoint when it already is), as ``trio.Event.wait``."""
        if self._set:
            await trio.lowlevel.checkpoint()
            return
        w = _Wait(current_task())
        self._add(w)
        await wait_task_rescheduled(w.abort)

    def __repr__(self) -> str:
        return f"<Flag {'set' if self._set else 'unset'}>"


def _expire(w: _Wait, _now: float) -> None:
    w.wake()


class Waits:
    """Timed waits on flags for one runner; ``wake_all()`` ends every interruptible wait in progress."""

    def __init__(self) -> None:
        self._queue: TimerQueue | None = None
        self._token = None  # the trio run whose system task services _queue
        self._waiting: set[_Wait] = set()

    def __len__(self) -> int:
        return len(self._waiting)

    def _deadlines(self) -> TimerQueue:
        token = trio.lowlevel.current_trio_token()
        if self._token is not token:  # first timed wait of this trio run: one task expires them all
            self._token = token
            self._queue = TimerQueue()
            trio.lowlevel.spawn_system_task(self._queue.run, _expire, name="sipsim.runtime.waits")
        return self._queue

    async def until(self, flag: Flag, timeout: float = math.inf, *, interruptible: bool = True) -> None:
        """Wait for ``flag``, at most ``timeout`` seconds; an interruptible wait also ends on
        ``wake_all()``. Returns at once, without a checkpoint, when the flag is set."""
        if flag._set:
            return
        w = _Wait(current_task())
        flag._add(w)
        queue = None
        if timeout < math.inf:
            queue = self._deadlines()
            queue.start(w, timeout)
        if interruptible:
            self._waiting.add(w)
        try:
            await wait_task_rescheduled(w.abort)
        finally:
            if queue is not None:
                queue.cancel(w)
            if interruptible:
                self._waiting.discard(w)

    async def wait(self, flag: Flag, timeout: float) -> None:
        """As ``with trio.move_on_after(timeout): await flag.wait()`` (a checkpoint when already set),
        not ended by ``wake_all()``."""
        if flag._set:
            await trio.lowlevel.checkpoint()
            return
        await self.until(flag, timeout, interruptible=False)

    def wake_all(self) -> None:
        for w in list(self._waiting):
            w.wake()
