"""Two Endpoints wired back-to-back in memory: every Transmit of one is fed to the other."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from sipsim.sip.endpoint import Endpoint, EndpointConfig
from sipsim.sip.events import CancelTimer, StartTimer, Transmit

CONN = "link"


@dataclass
class Wire:
    a: Endpoint = field(default_factory=lambda: Endpoint(EndpointConfig(host="127.0.0.1", seed=1)))
    b: Endpoint = field(default_factory=lambda: Endpoint(EndpointConfig(host="127.0.0.3", seed=2)))
    now: float = 0.0
    #: (side, action) for every non-Transmit action, in order
    events: list[tuple[str, Any]] = field(default_factory=list)
    #: (side, first line) of every message put on the wire
    wire: list[tuple[str, str]] = field(default_factory=list)
    #: pending timers: (side, key) -> deadline
    timers: dict[tuple[str, Any], float] = field(default_factory=dict)
    #: when False, messages from that side are dropped (a dead peer)
    deliver: dict[str, bool] = field(default_factory=lambda: {"a": True, "b": True})

    def ep(self, side: str) -> Endpoint:
        return self.a if side == "a" else self.b

    def pump(self) -> None:
        """Deliver until both sides are quiet."""
        moved = True
        while moved:
            moved = False
            for side, other in (("a", "b"), ("b", "a")):
                for act in self.ep(side).drain():
                    moved = True
                    if isinstance(act, Transmit):
                        self.wire.append((side, act.data.split(b"\r\n", 1)[0].decode()))
                        if self.deliver[side]:
                            self.ep(other).receive_data(CONN, act.data, self.now)
                    elif isinstance(act, StartTimer):
                        self.timers[(side, act.key)] = self.now + act.delay
                        self.events.append((side, act))
                    elif isinstance(act, CancelTimer):
                        self.timers.pop((side, act.key), None)
                        self.events.append((side, act))
                    else:
                        self.events.append((side, act))

    def advance(self, seconds: float) -> None:
        """Move time forward, firing due timers in deadline order."""
        end = self.now + seconds
        while True:
            self.pump()
            due = [(t, k) for k, t in self.timers.items() if t <= end]
            if not due:
                break
            t, (side, key) = min(due, key=lambda x: x[0])
            del self.timers[(side, key)]
            self.now = max(self.now, t)
            self.ep(side).timer_fired(key, self.now)
        self.now = end
        self.pump()

    def of(self, side: str, kind: type) -> list[Any]:
        return [e for s, e in self.events if s == side and isinstance(e, kind)]

    def lines(self, side: str | None = None) -> list[str]:
        return [line for s, line in self.wire if side is None or s == side]

    def methods(self) -> list[str]:
        """Short ladder: "a:INVITE", "b:100", ..."""
        out = []
        for s, line in self.wire:
            first = line.split(" ")
            out.append(f"{s}:{first[1] if line.startswith('SIP/2.0') else first[0]}")
        return out
