"""Actions the sans-IO Endpoint hands to the runtime through ``Endpoint.drain()``.

Transport and timer actions tell the runtime what to do; the others report what happened.
Terminal events: every call ends with exactly one of ``CallFailed`` (a call we placed that was
never answered) or ``CallEnded`` (everything else: an answered call, or an incoming call that
was rejected, cancelled by the caller or lost before it was answered; see ``CallEnded.reason``).
"""

from __future__ import annotations

from collections.abc import Hashable
from dataclasses import MISSING, dataclass, fields
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


def _quick_init(cls: type) -> type:
    """Give a frozen ``slots`` dataclass an ``__init__`` that stores each field through its slot
    descriptor instead of ``object.__setattr__`` (same signature and defaults; the class stays frozen,
    hashable and comparable). Actions are created for every message, so this is on the hot path."""
    names, params, env = [], [], {}
    for f in fields(cls):
        if f.default_factory is not MISSING:  # not used by these classes
            raise TypeError(f"{cls.__name__}.{f.name}: default_factory is not supported")
        names.append(f.name)
        if f.default is not MISSING:
            env[f"_d_{f.name}"] = f.default
            params.append(f"{f.name}=_d_{f.name}")
        else:
            params.append(f.name)
        env[f"_s_{f.name}"] = cls.__dict__[f.name].__set__
    body = "".join(f"    _s_{n}(self, {n})\n" for n in names) or "    pass\n"
    exec(f"def __init__(self, {', '.join(params)}):\n{body}", env)
    init = env["__init__"]
    init.__qualname__ = f"{cls.__qualname__}.__init__"
    init.__doc__ = cls.__init__.__doc__
    cls.__init__ = init
    return cls


@_quick_init
@dataclass(frozen=True, slots=True)
class Transmit:
    """Write ``data`` on connection ``conn``; ``message`` is the parsed form (for logs/ladders)."""

    conn: Hashable
    data: bytes
    message: Message


@_quick_init
@dataclass(frozen=True, slots=True)
class StartTimer:
    """Schedule ``ep.timer_fired(key, now)`` in ``delay`` seconds (replacing a timer of that key)."""

    key: Hashable
    delay: float


@_quick_init
@dataclass(frozen=True, slots=True)
class CancelTimer:
    """Forget the timer ``key`` (no-op if it already fired)."""

    key: Hashable


@_quick_init
@dataclass(frozen=True, slots=True)
class IncomingCall:
    """An INVITE arrived (100 Trying already sent); call ``answer`` or ``reject``."""

    call_id: str
    conn: Hashable
    request: Request


@_quick_init
@dataclass(frozen=True, slots=True)
class CallProgress:
    """A provisional (1xx) response to our INVITE."""

    call_id: str
    status: int


@_quick_init
@dataclass(frozen=True, slots=True)
class CallAnswered:
    """A 2xx to our INVITE (ACK already sent). ``sdp_answer`` is the parsed body (or None)."""

    call_id: str
    status: int
    sdp_answer: Any


@_quick_init
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


@_quick_init
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


@_quick_init
@dataclass(frozen=True, slots=True)
class OptionsResult:
    """Outcome of ``send_options``: a final status, or ``status=None`` with reason ``"timeout"`` /
    ``"connection_lost"``."""

    key: str
    status: int | None
    reason: str


@_quick_init
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


@_quick_init
@dataclass(frozen=True, slots=True)
class Received:
    """A message arrived on ``conn`` (only with ``EndpointConfig.report_received``; for traces)."""

    conn: Hashable
    message: Message
