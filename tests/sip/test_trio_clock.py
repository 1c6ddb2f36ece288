"""The SIP timers are plain values: trio's MockClock can drive them with a tiny scheduler loop.

trio is imported here only (tests); sipsim.sip itself never imports it.
"""

from __future__ import annotations

import ast
import pathlib

import trio
import trio.testing

from sipsim.sip.endpoint import Endpoint, EndpointConfig
from sipsim.sip.events import CallAnswered, CallFailed, CancelTimer, IncomingCall, StartTimer, Transmit


class TinyRuntime:
    """Two endpoints, an in-memory wire, and a timer table serviced with trio.sleep_until."""

    def __init__(self, drop_from: str | None = None):
        self.eps = {"a": Endpoint(EndpointConfig(host="127.0.0.1", seed=1)),
                    "b": Endpoint(EndpointConfig(host="127.0.0.3", seed=2))}
        self.timers: dict[tuple[str, object], float] = {}
        self.events: list[tuple[float, str, object]] = []
        self.drop_from = drop_from
        self.answer_delay = 2.0

    def pump(self) -> None:
        moved = True
        while moved:
            moved = False
            for side, other in (("a", "b"), ("b", "a")):
                for act in self.eps[side].drain():
                    moved = True
                    now = trio.current_time()
                    if isinstance(act, Transmit):
                        if side != self.drop_from:
                            self.eps[other].receive_data("link", act.data, now)
                    elif isinstance(act, StartTimer):
                        self.timers[(side, act.key)] = now + act.delay
                    elif isinstance(act, CancelTimer):
                        self.timers.pop((side, act.key), None)
                    else:
                        self.events.append((now, side, act))
                        if isinstance(act, IncomingCall):
                            self.eps[side].answer(act.call_id, now, delay=self.answer_delay)

    async def run(self, until: float) -> None:
        self.pump()
        while self.timers:
            (side, key), deadline = min(self.timers.items(), key=lambda kv: kv[1])
            if deadline > until:
                break
            await trio.sleep_until(deadline)
            del self.timers[(side, key)]
            self.eps[side].timer_fired(key, trio.current_time())
            self.pump()


def test_answer_delay_and_timer_b_follow_the_mock_clock():
    results = {}

    async def main():
        rt = TinyRuntime()
        start = trio.current_time()
        rt.eps["a"].place_call("link", start, caller="7131001", called="8511001",
                               request_uri="sip:8511001@127.0.0.3:5061")
        await rt.run(until=start + 10)
        results["answered"] = [(t - start, e) for t, s, e in rt.events if isinstance(e, CallAnswered)]

        dead = TinyRuntime(drop_from="a")  # the INVITE never arrives
        start = trio.current_time()
        call_id = dead.eps["a"].place_call("link", start, caller="7131001", called="8511001",
                                           request_uri="sip:8511001@127.0.0.3:5061")
        await dead.run(until=start + 100)
        results["failed"] = [(t - start, e) for t, s, e in dead.events if isinstance(e, CallFailed)]
        results["call_id"] = call_id

    trio.run(main, clock=trio.testing.MockClock(autojump_threshold=0))
    [(t_answer, answered)] = results["answered"]
    assert abs(t_answer - 2.0) < 1e-9 and answered.status == 200
    [(t_fail, failed)] = results["failed"]
    assert abs(t_fail - 32.0) < 1e-9  # Timer B = 64 * T1
    assert failed == CallFailed(results["call_id"], 408, "timeout")


def test_sip_core_imports_no_io_libraries():
    root = pathlib.Path(__file__).resolve().parents[2] / "sipsim" / "sip"
    forbidden = {"trio", "socket", "OpenSSL", "asyncio", "threading", "ssl", "selectors"}
    files = sorted(root.glob("*.py"))
    assert len(files) >= 10
    for path in files:
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom):
                names = [("." * node.level) + (node.module or "")]
            else:
                continue
            for name in names:
                top = name.split(".")[0]
                assert top not in forbidden, f"{path.name} imports {name}"
                assert not name.startswith(("sipsim.runtime", "sipsim.tls")), f"{path.name} imports {name}"
