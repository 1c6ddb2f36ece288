"""Actions the sans-IO Endpoint hands to the runtime through ``Endpoint.drain()``.

Transport and timer actions tell the runtime what to do; the others report what happened.
Terminal events: every call ends with exactly one of ``CallFailed`` (a call we placed that was
never answered) or ``CallEnded`` (everything else: an answered call, or an incoming call that
was rejected, cancelled by the caller or lost before it was answered; see ``CallEnded.reason``).
"""

from __future__ import annotations

from collections.abc import Hashable
from dataclasses import dataclass
from typing import Any, Literal

from .message import Message, Request

__all__ = [
    "Action",
    "Transmit",
    "StartTimer",
    "CancelTimer",
    "IncomingCall",
    "CallProgress",
    "CallAnswered",
    "CallFailed",
    "CallEnded",
    "OptionsResult",
    "ProtocolError",
    "Received",
]


@dataclass(frozen=True, slots=True)
class Transmit:
    """Write ``data`` on connection ``conn``; ``message`` is the parsed form (for logs/ladders)."""

    conn: Hashable
    data: bytes
    message: Message


@dataclass(frozen=True, slots=True)
class StartTimer:
    """Schedule ``ep.timer_fired(key, now)`` in ``delay`` seconds (replacing a timer of that key)."""

    key: Hashable
    delay: float


@dataclass(frozen=True, slots=True)
class CancelTimer:
    """Forget the timer ``key`` (no-op if it already fired)."""

    key: Hashable


@dataclass(frozen=True, slots=True)
class IncomingCall:
    """An INVITE arrived (100 Trying already sent); call ``answer`` or ``reject``."""

    call_id: str
    conn: Hashable
    request: Request


@dataclass(frozen=True, slots=True)
class CallProgress:
    """A provisional (1xx) response to our INVITE."""

    call_id: str
    status: int


@dataclass(frozen=True, slots=True)
class CallAnswered:
    """A 2xx to our INVITE (ACK already sent). ``sdp_answer`` is the parsed body (or None)."""

    call_id: str
    status: int
    sdp_answer: Any


@dataclass(frozen=True, slots=True)
class CallFailed:
    """A call we placed ended without being answered.

    ``reason``: the response's reason phrase for a final non-2xx (e.g. ``"Busy Here"``),
    ``"cancelled"`` for the 487 after our CANCEL (status 408 if no final response came within
    64·T1 of the CANCEL, RFC 3261 §9.1), ``"timeout"`` (status 408) on Timer B or when the
    INVITE's Expires ran out, ``"connection_lost"`` (status 503) when the transport went away.
    """

    call_id: str
    status: int
    reason: str


@dataclass(frozen=True, slots=True)
class CallEnded:
    """A call ended. ``by`` says which side ended it.

    ``reason``: ``"bye"`` (normal BYE), ``"cancelled"`` (UAS: the caller sent CANCEL before the
    answer; 487 was sent), ``"rejected"`` (UAS: we answered with a final error), ``"no_ack"``
    (UAS: no ACK for our 2xx within 64·T1; we sent BYE), ``"connection_lost"``.
    """

    call_id: str
    by: Literal["local", "remote"]
    reason: str = "bye"


@dataclass(frozen=True, slots=True)
class OptionsResult:
    """Outcome of ``send_options``: a final status, or ``status=None`` with reason ``"timeout"`` /
    ``"connection_lost"``."""

    key: str
    status: int | None
    reason: str


@dataclass(frozen=True, slots=True)
class ProtocolError:
    """Malformed input on ``conn``; ``response_sent`` says whether a 4xx/5xx went back."""

    conn: Hashable
    error: Exception
    response_sent: bool


Action = (
    Transmit | StartTimer | CancelTimer | IncomingCall | CallProgress | CallAnswered | CallFailed
    | CallEnded | OptionsResult | ProtocolError
)


@dataclass(frozen=True, slots=True)
class Received:
    """A message arrived on ``conn`` (only with ``EndpointConfig.report_received``; for traces)."""

    conn: Hashable
    message: Message
