"""SIP timer values (RFC 3261 §17, Table 4) for a reliable transport.

Only the timers that matter on TLS/TCP exist as durations here: B, F and H (64·T1). The
retransmission timers A, E and G never run on a reliable transport, and D, I, J and K are zero
(the transaction goes straight from Completed/Confirmed to Terminated).
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["TimerConfig"]


@dataclass(frozen=True, slots=True)
class TimerConfig:
    """T1/T2/T4 in seconds, plus CUCM's SIP profile retry counters (informational on TLS/TCP)."""

    t1: float = 0.5
    t2: float = 4.0
    t4: float = 5.0
    retry_invite: int = 6
    retry_non_invite: int = 10

    @property
    def b(self) -> float:
        """INVITE client transaction timeout (Calling state)."""
        return 64 * self.t1

    @property
    def f(self) -> float:
        """Non-INVITE client transaction timeout."""
        return 64 * self.t1

    @property
    def h(self) -> float:
        """INVITE server transaction: wait for the ACK of a non-2xx final response."""
        return 64 * self.t1

    # Reliable transport: no wait for retransmissions.
    d: float = 0.0
    i: float = 0.0
    j: float = 0.0
    k: float = 0.0
