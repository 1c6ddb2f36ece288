"""CUCM's OPTIONS ping of a trunk's destinations (8.5+), as an explicit state table. Sans-IO: the
runtime sends the OPTIONS, reports the result here, and schedules the next ping after the delay this
returns.

CUCM [doc]: off by default; every active node pings every destination; interval 60 s while in
service, 120 s while out of service; retry timer 500 ms, retry count 6. A destination is **down** on
no answer, 408, 503 or a failed TCP/TLS connect; **any other response is up** (404, 405, 501 too).
Alarm reasons: Remote=503, Remote=408, Local=1 (request timed out), Local=2 (socket/TLS failure),
Local=3 (DNS failure).

Over TLS nothing is retransmitted, so "no answer" means no response within the time the retry
schedule would take: 500 ms doubling up to T2 = 4 s, 6 retries → 0.5+1+2+4+4+4+4 = 19.5 s.
"""

from __future__ import annotations

from dataclasses import dataclass, field

UNKNOWN, IN_SERVICE, OUT_OF_SERVICE = "unknown", "in_service", "out_of_service"
UP, DOWN = "up", "down"

#: (state, verdict) -> new state
TRANSITIONS = {
    (UNKNOWN, UP): IN_SERVICE,
    (UNKNOWN, DOWN): OUT_OF_SERVICE,
    (IN_SERVICE, UP): IN_SERVICE,
    (IN_SERVICE, DOWN): OUT_OF_SERVICE,
    (OUT_OF_SERVICE, UP): IN_SERVICE,
    (OUT_OF_SERVICE, DOWN): OUT_OF_SERVICE,
}

CAUSE_CODES = {
    "timeout": "Local=1",
    "connect_refused": "Local=2",
    "connect_failed": "Local=2",
    "dns_failure": "Local=3",
}


@dataclass(frozen=True)
class PingSettings:
    enabled: bool = False
    interval_in_service: float = 60.0
    interval_out_of_service: float = 120.0
    retry_timer: float = 0.5
    retry_count: int = 6
    t2: float = 4.0

    @property
    def no_answer_after(self) -> float:
        return sum(min(self.retry_timer * 2**i, self.t2) for i in range(self.retry_count + 1))


def verdict(status: int | None, reason: str | None) -> tuple[str, str | None]:
    """(UP or DOWN, CUCM's alarm reason) for one ping's outcome."""
    if status is None:
        if reason and reason.startswith(("tls_", "subject_not_allowed")):
            return DOWN, "Local=2"
        return DOWN, CAUSE_CODES.get(reason or "timeout", "Local=2")
    if status in (408, 503):
        return DOWN, f"Remote={status}"
    return UP, None


@dataclass
class Change:
    destination: str
    old: str
    new: str
    cause: str | None  # the alarm reason when it went down
    at: float


@dataclass
class DestinationMonitor:
    """One (node, destination) pair's ping state."""

    destination: str
    settings: PingSettings
    state: str = UNKNOWN
    cause: str | None = None
    last_status: int | None = None
    history: list[Change] = field(default_factory=list)

    def result(self, status: int | None, reason: str | None, now: float) -> float:
        """Record one ping's outcome; return the delay until the next ping."""
        v, cause = verdict(status, reason)
        new = TRANSITIONS[(self.state, v)]
        if new != self.state:
            self.history.append(Change(self.destination, self.state, new, cause, now))
        self.state, self.cause, self.last_status = new, cause, status
        return self.settings.interval_in_service if new == IN_SERVICE else self.settings.interval_out_of_service

    @property
    def in_service(self) -> bool:
        return self.state == IN_SERVICE


def trunk_status(monitors: list[DestinationMonitor], enabled: bool) -> str:
    """CUCM's "SIP Trunk Status" for one node's view of a trunk."""
    if not enabled:
        return "Unknown - OPTIONS Ping not enabled"
    up = sum(1 for m in monitors if m.in_service)
    if up == len(monitors) and monitors:
        return "Full Service"
    return "Partial Service" if up else "No Service"
