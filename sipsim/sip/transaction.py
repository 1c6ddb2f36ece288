"""SIP transactions (RFC 3261 §17) for a reliable transport, as explicit state tables.

Each table maps ``(state, event) -> (new state, actions)``; a pair that is not in the table is
ignored (e.g. a late 1xx in Completed). The four kinds:

* ``ict``  INVITE client:      Calling → Proceeding → Completed / Terminated
* ``nict`` non-INVITE client:  Trying → Proceeding → Completed → Terminated
* ``ist``  INVITE server:      Proceeding → Completed → Confirmed → Terminated
* ``nist`` non-INVITE server:  Trying → Proceeding → Completed → Terminated

Reliable transport only (TLS/TCP, RFC 3261 §17.1.1.2, 17.1.2.2, 17.2.1, 17.2.2): the
retransmission timers A, E and G are never started, because the transport retransmits for us.
Timers B, F and H are 64·T1; D, I, J and K are zero, so "start_d" & co. feed their expiry event
straight back into the table instead of asking the runtime for a timer.

Matching (§17.1.3, §17.2.3): a response matches a client transaction by top-Via branch and CSeq
method; a request matches a server transaction by branch, sent-by and method, where ACK matches
the INVITE transaction. CANCEL has its own server transaction (same branch as the INVITE, method
CANCEL); the UA core finds the INVITE to cancel with :func:`server_key` and method INVITE (§9.2).
"""

from __future__ import annotations

from collections.abc import Hashable
from dataclasses import dataclass
from typing import Any

from .events import CancelTimer, StartTimer, _quick_init
from .message import Headers, Request, Response
from .timers import TimerConfig

__all__ = [
    "ICT_TABLE",
    "NICT_TABLE",
    "IST_TABLE",
    "NIST_TABLE",
    "Transaction",
    "Send",
    "ToTU",
    "client_key",
    "server_key",
    "response_event",
    "build_non2xx_ack",
]

Table = dict[tuple[str, str], tuple[str, tuple[str, ...]]]

#: INVITE client transaction (RFC 3261 Figure 5).
ICT_TABLE: Table = {
    ("calling", "1xx"): ("proceeding", ("cancel_b", "to_tu")),
    ("calling", "2xx"): ("terminated", ("to_tu",)),
    ("calling", "final"): ("completed", ("send_ack", "to_tu", "start_d")),
    ("calling", "timer_b"): ("terminated", ("timeout",)),
    ("calling", "transport_error"): ("terminated", ("transport_error",)),
    ("proceeding", "1xx"): ("proceeding", ("to_tu",)),
    ("proceeding", "2xx"): ("terminated", ("to_tu",)),
    ("proceeding", "final"): ("completed", ("send_ack", "to_tu", "start_d")),
    ("proceeding", "transport_error"): ("terminated", ("transport_error",)),
    ("completed", "final"): ("completed", ("send_ack",)),
    ("completed", "timer_d"): ("terminated", ()),
    ("completed", "transport_error"): ("terminated", ()),
}

#: Non-INVITE client transaction (RFC 3261 Figure 6). "final" covers 2xx-6xx.
NICT_TABLE: Table = {
    ("trying", "1xx"): ("proceeding", ("to_tu",)),
    ("trying", "final"): ("completed", ("to_tu", "start_k")),
    ("trying", "timer_f"): ("terminated", ("timeout",)),
    ("trying", "transport_error"): ("terminated", ("transport_error",)),
    ("proceeding", "1xx"): ("proceeding", ("to_tu",)),
    ("proceeding", "final"): ("completed", ("to_tu", "start_k")),
    ("proceeding", "timer_f"): ("terminated", ("timeout",)),
    ("proceeding", "transport_error"): ("terminated", ("transport_error",)),
    ("completed", "timer_k"): ("terminated", ()),
    ("completed", "transport_error"): ("terminated", ()),
}

#: INVITE server transaction (RFC 3261 Figure 7). "send_*" events come from the TU.
IST_TABLE: Table = {
    ("proceeding", "request"): ("proceeding", ("resend",)),
    ("proceeding", "send_1xx"): ("proceeding", ("send",)),
    ("proceeding", "send_2xx"): ("terminated", ("send",)),
    ("proceeding", "send_final"): ("completed", ("send", "start_h")),
    ("proceeding", "transport_error"): ("terminated", ("transport_error",)),
    ("completed", "request"): ("completed", ("resend",)),
    ("completed", "ack"): ("confirmed", ("cancel_h", "start_i")),
    ("completed", "timer_h"): ("terminated", ("timeout",)),
    ("completed", "transport_error"): ("terminated", ("transport_error",)),
    ("confirmed", "timer_i"): ("terminated", ()),
}

#: Non-INVITE server transaction (RFC 3261 Figure 8). "send_final" covers 2xx-6xx.
NIST_TABLE: Table = {
    ("trying", "send_1xx"): ("proceeding", ("send",)),
    ("trying", "send_final"): ("completed", ("send", "start_j")),
    ("trying", "transport_error"): ("terminated", ("transport_error",)),
    ("proceeding", "request"): ("proceeding", ("resend",)),
    ("proceeding", "send_1xx"): ("proceeding", ("send",)),
    ("proceeding", "send_final"): ("completed", ("send", "start_j")),
    ("proceeding", "transport_error"): ("terminated", ("transport_error",)),
    ("completed", "request"): ("completed", ("resend",)),
    ("completed", "timer_j"): ("terminated", ()),
    ("completed", "transport_error"): ("terminated", ()),
}

TABLES = {"ict": ICT_TABLE, "nict": NICT_TABLE, "ist": IST_TABLE, "nist": NIST_TABLE}
INITIAL = {"ict": "calling", "nict": "trying", "ist": "proceeding", "nist": "trying"}


@_quick_init
@dataclass(frozen=True, slots=True)
class Send:
    """Transaction output: put ``message`` on the transaction's connection."""

    conn: Hashable
    message: Request | Response


@_quick_init
@dataclass(frozen=True, slots=True)
class ToTU:
    """Transaction output for the UA core: ``what`` is "response", "timeout" or "transport_error"."""

    txn: Transaction
    what: str
    response: Response | None = None


def client_key(branch: str, method: str) -> tuple[str, str, str]:
    """Client transaction id (RFC 3261 §17.1.3); CANCEL and ACK keep their own method."""
    return ("client", branch, method)


def server_key(branch: str, sent_by: str, method: str) -> tuple[str, str, str, str]:
    """Server transaction id (RFC 3261 §17.2.3); ACK maps to its INVITE."""
    return ("server", branch, sent_by, "INVITE" if method == "ACK" else method)


def response_event(kind: str, status: int) -> str:
    """Table event for a received response."""
    if status < 200:
        return "1xx"
    if kind == "ict" and status < 300:
        return "2xx"
    return "final"


class Transaction:
    """One transaction. ``handle(event, message)`` returns outputs: Send, StartTimer, CancelTimer, ToTU.

    ``tu`` is free for the UA core (it records what the transaction is for).
    """

    __slots__ = ("kind", "key", "conn", "request", "timers", "state", "last_response", "tu", "running", "_table")

    def __init__(
        self, kind: str, key: Hashable, conn: Hashable, request: Request, timers: TimerConfig, tu: Any = None
    ):
        self.kind = kind
        self.key = key
        self.conn = conn
        self.request = request
        self.timers = timers
        self.state = INITIAL[kind]
        self.last_response: Response | None = None
        self.tu = tu
        self.running: set[str] = set()
        self._table = TABLES[kind]  # the kind's state table (the kind never changes)

    @property
    def terminated(self) -> bool:
        return self.state == "terminated"

    def timer_key(self, letter: str) -> tuple[str, Hashable, str]:
        """The runtime timer key of timer ``letter`` (hashable, unique per transaction)."""
        return ("txn", self.key, letter)

    def start(self) -> list[Any]:
        """Outputs on creation: a client sends its request and starts B or F."""
        if self.kind == "ict":
            return [Send(self.conn, self.request), *self._start("b", self.timers.b)]
        if self.kind == "nict":
            return [Send(self.conn, self.request), *self._start("f", self.timers.f)]
        return []

    def handle(self, event: str, message: Request | Response | None = None) -> list[Any]:
        """Apply one event; unknown (state, event) pairs are ignored."""
        entry = self._table.get((self.state, event))
        if entry is None:
            return []
        self.state, actions = entry
        if len(actions) == 1:
            out = self._do(actions[0], message)
        else:
            out = []
            for action in actions:
                out += self._do(action, message)
        if self.state == "terminated" and self.running:
            for letter in sorted(self.running):
                out.append(CancelTimer(self.timer_key(letter)))
            self.running.clear()
        return out

    def _start(self, letter: str, delay: float) -> list[Any]:
        if delay <= 0:
            return self.handle(f"timer_{letter}")
        self.running.add(letter)
        return [StartTimer(self.timer_key(letter), delay)]

    def _cancel(self, letter: str) -> list[Any]:
        if letter in self.running:
            self.running.discard(letter)
            return [CancelTimer(self.timer_key(letter))]
        return []

    def timer_fired(self, letter: str) -> list[Any]:
        """The runtime fired timer ``letter``; stale timers are ignored."""
        if letter not in self.running:
            return []
        self.running.discard(letter)
        return self.handle(f"timer_{letter}")

    def _do(self, action: str, message: Request | Response | None) -> list[Any]:
        t = self.timers
        if action == "to_tu":
            return [ToTU(self, "response", message)]  # type: ignore[arg-type]
        if action == "timeout":
            return [ToTU(self, "timeout")]
        if action == "transport_error":
            return [ToTU(self, "transport_error")]
        if action == "send":
            assert isinstance(message, Response)
            self.last_response = message
            return [Send(self.conn, message)]
        if action == "resend":
            return [Send(self.conn, self.last_response)] if self.last_response is not None else []
        if action == "send_ack":
            assert isinstance(message, Response)
            return [Send(self.conn, build_non2xx_ack(self.request, message))]
        if action == "cancel_b":
            return self._cancel("b")
        if action == "cancel_h":
            return self._cancel("h")
        if action.startswith("start_"):
            letter = action[-1]
            return self._start(letter, getattr(t, letter))
        raise AssertionError(f"unknown transaction action {action}")

    def __repr__(self) -> str:
        return f"<Transaction {self.kind} {self.request.method} {self.state}>"


def build_non2xx_ack(invite: Request, response: Response) -> Request:
    """The ACK a client transaction sends for a 3xx-6xx (RFC 3261 §17.1.1.3): same branch."""
    h = Headers()
    vias = invite.headers.get_all("Via")
    h.add("Via", vias[0])
    for route in invite.headers.get_all("Route"):
        h.add("Route", route)
    h.add("From", invite.headers.get("From") or "")
    h.add("To", response.headers.get("To") or "")
    h.add("Call-ID", invite.call_id or "")
    h.add("CSeq", f"{invite.cseq[0]} ACK")
    h.add("Max-Forwards", "70")
    return Request("ACK", invite.uri, h)


def top_via_sent_by(msg: Request | Response) -> str:
    """sent-by of the top Via ('' if unparseable)."""
    try:
        via = msg.parsed_header("Via")
    except ValueError:
        return ""
    return via.sent_by.lower() if via is not None else ""
