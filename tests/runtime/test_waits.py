"""Waits: a flag's waits end when it is set, at their deadline, on wake_all() or when cancelled."""

import math

import trio
import trio.testing

from sipsim.runtime.timers import TimerQueue
from sipsim.runtime.waits import Flag, Waits


def run(fn):
    return trio.run(fn, clock=trio.testing.MockClock(autojump_threshold=0))


def test_flag_as_event():
    async def main():
        flag = Flag()
        woke = []

        async def waiter(name):
            await flag.wait()
            woke.append((name, trio.current_time()))

        async with trio.open_nursery() as nursery:
            nursery.start_soon(waiter, "a")
            nursery.start_soon(waiter, "b")
            await trio.sleep(3)
            assert not flag.is_set() and woke == []
            flag.set()
            flag.set()  # twice: nothing more
        assert sorted(woke) == [("a", 3.0), ("b", 3.0)]
        await flag.wait()  # already set: a checkpoint
        with trio.move_on_after(1) as scope:
            await Flag().wait()
        assert scope.cancelled_caught and trio.current_time() == 4.0

    run(main)


def test_until_ends_at_the_flag_or_the_deadline():
    async def main():
        waits = Waits()
        flag = Flag()
        t0 = trio.current_time()
        await waits.until(flag, 2.5)
        assert trio.current_time() - t0 == 2.5 and not flag.is_set()

        async def set_later():
            await trio.sleep(1)
            flag.set()

        async with trio.open_nursery() as nursery:
            nursery.start_soon(set_later)
            t0 = trio.current_time()
            await waits.until(flag, 60)
            assert trio.current_time() - t0 == 1.0
        assert len(waits) == 0 and len(waits._queue) == 0  # nothing left behind
        t0 = trio.current_time()
        await waits.until(flag, 60)  # set: at once
        assert trio.current_time() == t0

    run(main)


def test_wake_all_ends_interruptible_waits_only():
    async def main():
        waits = Waits()
        ended = {}

        async def wait(name, interruptible, timeout):
            t0 = trio.current_time()
            await waits.until(Flag(), timeout, interruptible=interruptible)
            ended[name] = trio.current_time() - t0

        async with trio.open_nursery() as nursery:
            nursery.start_soon(wait, "forever", True, math.inf)
            nursery.start_soon(wait, "timed", True, 30)
            nursery.start_soon(wait, "kept", False, 5)
            await trio.sleep(2)
            assert len(waits) == 2
            waits.wake_all()
        assert ended == {"forever": 2.0, "timed": 2.0, "kept": 5.0}

    run(main)


def test_a_cancelled_wait_raises_and_leaves_nothing():
    async def main():
        waits = Waits()
        flag = Flag()
        with trio.move_on_after(1) as scope:
            await waits.until(flag, 10)
        assert scope.cancelled_caught and trio.current_time() == 1.0
        assert len(waits) == 0
        flag.set()  # the cancelled wait is not woken again
        await trio.sleep(20)  # nor is its deadline
        assert trio.current_time() == 21.0

    run(main)


def test_timer_queue_drops_cancelled_entries_when_starting():
    async def main():
        q = TimerQueue()
        for i in range(1000):
            q.start(i, 60.0)
            q.cancel(i)
        assert len(q) == 0 and len(q._heap) <= 4 * 64 + 1
        fired = []
        async with trio.open_nursery() as nursery:
            nursery.start_soon(q.run, lambda key, now: fired.append((key, now)))
            q.start("x", 2.0)
            q.start("y", 1.0, now=trio.current_time() + 0.5)
            await trio.sleep(3)
            nursery.cancel_scope.cancel()
        assert fired == [("y", 1.5), ("x", 2.0)]

    run(main)
