"""The OPTIONS ping loop follows CUCM's intervals, driven by trio's MockClock (no real 60 s waits)."""

import trio
import trio.testing

from sipsim.lab.ping import DestinationMonitor, PingSettings
from sipsim.runtime.pinger import Pinger


def test_ping_loop_uses_60_s_in_service_and_120_s_out_of_service():
    results = iter([(200, None), (200, None), (None, "timeout"), (503, None), (404, None), (200, None)])
    times: list[float] = []
    mon = DestinationMonitor("127.0.0.2:5061", PingSettings(enabled=True))

    async def fake_ping_once(node, trunk, dest, monitor):
        times.append(trio.current_time())
        status, reason = next(results)
        monitor.result(status, reason, trio.current_time())

    pinger = Pinger(runner=None)
    pinger.ping_once = fake_ping_once

    async def main():
        await fake_ping_once(None, None, None, mon)  # the first round, before any call
        with trio.move_on_after(60 + 60 + 120 + 120 + 60 + 1):
            await pinger.loop(None, None, None, mon)

    clock = trio.testing.MockClock(autojump_threshold=0)
    trio.run(main, clock=clock)
    gaps = [round(b - a) for a, b in zip(times, times[1:])]
    # up → 60 s; up → 60 s; no answer (Local=1) → 120 s; 503 (Remote=503) → 120 s; 404 is up → 60 s
    assert gaps == [60, 60, 120, 120, 60]
    assert [(c.new, c.cause) for c in mon.history] == [
        ("in_service", None), ("out_of_service", "Local=1"), ("in_service", None)]
