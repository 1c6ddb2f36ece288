"""The sans-IO SIP user agent of one node (h11 style): bytes and timer expiries in, actions out.

The runtime feeds received bytes with ``receive_data``, reports a closed connection with
``connection_lost`` and fired timers with ``timer_fired``; it drives calls with ``place_call``,
``answer``, ``reject``, ``hang_up`` and ``send_options``; everything the endpoint wants done or
reports is collected in order and returned by ``drain()`` (see :mod:`sipsim.sip.events`).

Event semantics (see also the docstrings of CallFailed and CallEnded):

* A call we place (UAC) ends with ``CallFailed`` if it was never answered (final non-2xx,
  ``timeout`` on Timer B or Expires, ``cancelled`` after our CANCEL, ``connection_lost``), and
  with ``CallEnded`` once it was answered.
* An incoming call (UAS) always ends with ``CallEnded``: ``reason="cancelled", by="remote"``
  when the caller sent CANCEL before our final response (we answered 200 to the CANCEL and 487
  to the INVITE), ``"rejected"`` after ``reject``/``answer(status>=300)``, ``"bye"``,
  ``"no_ack"`` (no ACK for our 2xx within 64·T1: we send BYE), ``"connection_lost"``.
* ``CallEnded`` is emitted when the BYE is sent or received (not when the BYE is answered).

A malformed message produces ``ProtocolError``; if ``error.fatal`` (framing lost) the endpoint
ignores further bytes on that connection and the runtime should close it.
"""

from __future__ import annotations

import random
from collections.abc import Hashable, Iterable
from dataclasses import dataclass, field
from typing import Any

from .dialog import Dialog, DialogError
from .events import (
    CallAnswered,
    CallEnded,
    CallFailed,
    CallProgress,
    CancelTimer,
    IncomingCall,
    OptionsResult,
    ProtocolError,
    Received,
    StartTimer,
    Transmit,
)
from .headers import MAGIC_COOKIE, parse_name_addr, parse_via
from .message import Headers, Message, Request, Response, serialise
from .parser import Limits, MessageReader, SipParseError
from .sdp import SdpError, SessionDescription, build_answer, build_offer, parse_sdp
from .timers import TimerConfig
from .transaction import Send, ToTU, Transaction, client_key, response_event, server_key, top_via_sent_by
from .uri import SipUri, parse_uri

__all__ = ["Endpoint", "EndpointConfig", "Call", "REASON_PHRASES"]

REASON_PHRASES: dict[int, str] = {
    100: "Trying", 180: "Ringing", 181: "Call Is Being Forwarded", 182: "Queued",
    183: "Session Progress", 200: "OK", 202: "Accepted", 400: "Bad Request", 401: "Unauthorized",
    403: "Forbidden", 404: "Not Found", 405: "Method Not Allowed", 408: "Request Timeout",
    413: "Request Entity Too Large", 414: "Request-URI Too Long", 415: "Unsupported Media Type",
    420: "Bad Extension", 480: "Temporarily Unavailable", 481: "Call/Transaction Does Not Exist",
    482: "Loop Detected", 483: "Too Many Hops", 484: "Address Incomplete", 486: "Busy Here",
    487: "Request Terminated", 488: "Not Acceptable Here", 491: "Request Pending",
    500: "Server Internal Error", 501: "Not Implemented", 502: "Bad Gateway",
    503: "Service Unavailable", 504: "Server Time-out", 505: "Version Not Supported",
    513: "Message Too Large", 600: "Busy Everywhere", 603: "Decline", 604: "Does Not Exist Anywhere",
    606: "Not Acceptable",
}

#: "%0Nx" per width N: ``_HEX_FORMATS[n] % bits`` is f"{bits:0{n}x}" without building the spec
_HEX_FORMATS = {n: f"%0{n}x" for n in range(1, 33)}

#: Methods this UA implements (advertised in Allow).
ALLOW = "INVITE, OPTIONS, INFO, BYE, CANCEL, ACK"
#: What CUCM puts in Supported on its trunk INVITEs.
SUPPORTED = "timer,replaces,X-cisco-srtp-fallback"
#: Methods we know but do not allow (405 rather than 501).
KNOWN_NOT_ALLOWED = frozenset(
    {"REGISTER", "PRACK", "UPDATE", "SUBSCRIBE", "NOTIFY", "REFER", "MESSAGE", "PUBLISH"}
)


@dataclass(frozen=True)
class EndpointConfig:
    """Identity and behaviour of one node's SIP stack."""

    host: str = "127.0.0.1"
    port: int = 5061
    transport: str = "TLS"
    user_agent: str = "sipsim"
    timers: TimerConfig = TimerConfig()
    limits: Limits = Limits()
    codecs: tuple[str, ...] = ("PCMU", "PCMA")
    rtp_port_base: int = 16384
    invite_expires: int = 180
    supported: str = SUPPORTED
    allow: str = ALLOW
    seed: int | None = None  #: seed for tags/branches/Call-IDs (reproducible tests)
    options_status: int = 200  #: how OPTIONS is answered (a node injected with answer_503 says 503)
    report_received: bool = False  #: emit Received(conn, message) for every parsed message (traces)


@dataclass(eq=False, slots=True)
class Call:
    """What the endpoint knows about one call (``ep.calls[call_id]``).

    ``state``: UAC "calling" → "early" (a 1xx arrived) → "confirmed" → "ended";
    UAS "offered" (INVITE in, 100 sent) → "ringing" (180 sent) → "answered" (2xx sent, waiting
    for ACK) → "confirmed" → "ended".
    """

    call_id: str
    conn: Hashable
    role: str  #: "uac" (we placed it) or "uas"
    caller: str  #: From user (DN)
    called: str  #: Request-URI user (DN)
    request: Request  #: the initial INVITE
    state: str
    started_at: float
    dialog: Dialog | None = None
    local_sdp: SessionDescription | None = None
    remote_sdp: SessionDescription | None = None
    log: list[tuple[float, str, str]] = field(default_factory=list)
    answered_at: float | None = None
    ended_at: float | None = None
    status: int | None = None  #: final status of the INVITE
    ended_by: str | None = None
    end_reason: str | None = None
    invite_txn: Transaction | None = None
    cancel_pending: bool = False
    cancelling: bool = False
    expired: bool = False
    pending_status: int = 200
    bye_pending: bool = False
    ack: Request | None = None

    @property
    def ended(self) -> bool:
        return self.state == "ended"


class Endpoint:
    """The user agent (UAC + UAS) of one node. Not thread-safe; never blocks; never does I/O."""

    def __init__(self, config: EndpointConfig | None = None):
        self.config = config or EndpointConfig()
        self.calls: dict[str, Call] = {}
        #: connection → its calls not yet ended (connection_lost visits those, not every call kept)
        self._live: dict[Hashable, dict[str, Call]] = {}
        self._actions: list[Any] = []
        self._readers: dict[Hashable, MessageReader] = {}
        #: per-connection transport and port when they differ from the config's (a node with TLS and TCP trunks)
        self._transports: dict[Hashable, tuple[str, int]] = {}
        self._port_of: dict[str, int] = {}
        self._contacts: dict[tuple[str, str | None], str] = {}  # _response_contact's memo
        self._via_ok: dict[tuple[str, int], bool] = {}  # _via_parses's memo
        self._broken: set[Hashable] = set()
        self._client: dict[Hashable, Transaction] = {}
        self._server: dict[Hashable, Transaction] = {}
        self._ua_timers: set[tuple[str, str]] = set()
        self._rng = random.Random(self.config.seed)
        self._now = 0.0
        self._media_ports = 0

    # ------------------------------------------------------------------ runtime-facing API

    def drain(self) -> list[Any]:
        """All actions produced since the last drain, in order."""
        out, self._actions = self._actions, []
        return out

    def call_log(self, call_id: str) -> list[tuple[float, str, str]]:
        """``(t, "out"|"in", first line)`` of every message of that call, in order."""
        return list(self.calls[call_id].log)

    def forget(self, call_id: str) -> None:
        """Drop an ended call's record (long runs); unknown ids are ignored."""
        call = self.calls.get(call_id)
        if call is not None and call.ended:
            del self.calls[call_id]

    def set_transport(self, conn: Hashable, transport: str, port: int | None = None) -> None:
        """Requests on ``conn`` carry this transport (``"TLS"``/``"TCP"``) and port in Via and Contact;
        responses follow the request's top Via. Without it, the config's transport and port apply."""
        pair = (transport.upper(), port if port is not None else self.config.port)
        self._transports[conn] = pair
        if pair[0] not in self._port_of:  # response Contacts depend on the first port per transport
            self._port_of[pair[0]] = pair[1]
            self._contacts.clear()

    @property
    def pending_transactions(self) -> int:
        return len(self._client) + len(self._server)

    def receive_data(self, conn: Hashable, data: bytes, now: float) -> None:
        """Bytes arrived on ``conn``."""
        self._now = now
        if conn in self._broken:
            return
        reader = self._readers.get(conn)
        if reader is None:
            reader = self._readers[conn] = MessageReader(self.config.limits)
        reader.feed(data)
        report = self.config.report_received
        calls = self.calls
        while True:
            try:
                msg = reader.next_message()
            except SipParseError as e:
                self._protocol_error(conn, e)
                if e.fatal:
                    self._broken.add(conn)
                    reader.reset()
                    return
                continue
            if msg is None:
                return
            call = calls.get(msg.call_id or "")
            if call is not None:
                call.log.append((now, "in", msg.first_line))
            if report:
                self._emit(Received(conn, msg))
            if type(msg) is Request:
                self._on_request(conn, msg)
            else:
                self._on_response(conn, msg)

    def connection_lost(self, conn: Hashable, now: float) -> None:
        """The connection is gone: its transactions fail and its calls end."""
        self._now = now
        self._readers.pop(conn, None)
        self._transports.pop(conn, None)
        self._broken.discard(conn)
        for txn in [t for t in self._client.values() if t.conn == conn]:
            self._txn_event(txn, "transport_error")
        for txn in [t for t in self._server.values() if t.conn == conn]:
            self._txn_event(txn, "transport_error")
        live = self._live.pop(conn, None)     # its calls not yet ended, in the order they began
        for call in list(live.values()) if live else ():
            if not call.ended:
                if call.role == "uac" and call.state in ("calling", "early"):
                    self._fail(call, 503, "connection_lost")
                else:
                    self._end(call, "remote", "connection_lost")

    def timer_fired(self, key: Hashable, now: float) -> None:
        """A timer from StartTimer expired. Cancelled, stale or unknown keys are ignored."""
        self._now = now
        if not isinstance(key, tuple) or len(key) != 3 and len(key) != 2:
            return
        if key[0] == "txn" and len(key) == 3:
            txn = self._client.get(key[1]) or self._server.get(key[1])
            if txn is not None:
                self._run(txn, txn.timer_fired(key[2]))
            return
        if key not in self._ua_timers:
            return
        self._ua_timers.discard(key)  # type: ignore[arg-type]
        kind, call_id = key
        call = self.calls.get(call_id)
        if call is None or call.ended:
            return
        if kind == "answer" and call.state == "ringing":
            self._final(call, call.pending_status)
        elif kind == "ack_wait" and call.state == "answered":
            self._send_bye(call)
            self._end(call, "local", "no_ack")
        elif kind == "cancel_guard" and call.state in ("calling", "early"):
            txn = call.invite_txn
            if txn is not None and not txn.terminated:
                txn.state = "terminated"  # destroyed by the UA core, not by its table
                self._run(txn, [CancelTimer(txn.timer_key(t)) for t in sorted(txn.running)])
                txn.running.clear()
            self._fail(call, 408, "timeout" if call.expired else "cancelled")
        elif kind == "expires" and call.state in ("calling", "early"):
            call.expired = True
            if call.state == "early":
                self._send_cancel(call)
            else:
                call.cancel_pending = True

    def place_call(
        self,
        conn: Hashable,
        now: float,
        caller: str,
        called: str,
        request_uri: str,
        sdp: bool = True,
        headers: Iterable[tuple[str, str] | str] = (),
    ) -> str:
        """Send an INVITE (with an SDP offer unless ``sdp=False``); returns the Call-ID."""
        self._now = now
        cfg = self.config
        target = _uri(request_uri)
        call_id = f"{self._hex(8)}-{self._hex(8)}@{cfg.host}"
        branch = self._branch()
        fields = [
            ("Via", self._via(branch, conn)),
            ("From", f"<sip:{caller}@{cfg.host}>;tag={self._hex(10)}"),
            ("To", f"<sip:{called}@{target.host}>"),
            ("Call-ID", call_id),
            ("CSeq", "101 INVITE"),
            ("Max-Forwards", "70"),
            ("Contact", self._contact(caller, conn)),
            ("Supported", cfg.supported),
            ("Allow", cfg.allow),
            ("User-Agent", cfg.user_agent),
            ("Expires", str(cfg.invite_expires)),
        ]
        for extra in headers:
            fields.append(_header_pair(extra))
        offer = None
        body = b""
        if sdp:
            offer = build_offer(cfg.host, self._media_port(), cfg.codecs, session_id=self._session_id())
            body = offer.raw
            fields.append(("Content-Type", "application/sdp"))
        invite = Request("INVITE", request_uri, Headers._adopt(fields), body)
        call = Call(call_id, conn, "uac", caller, called, invite, "calling", now, local_sdp=offer)
        call.dialog = Dialog.for_uac(invite)
        self._add_call(call)
        txn = self._new_client("ict", conn, invite, ("invite", call_id), branch)
        call.invite_txn = txn
        if cfg.invite_expires > 0:
            self._start_ua_timer(("expires", call_id), float(cfg.invite_expires))
        return call_id

    def hang_up(self, call_id: str, now: float) -> None:
        """End a call: BYE if confirmed, CANCEL if early (deferred until the first 1xx)."""
        self._now = now
        call = self._call(call_id)
        if call.ended:
            return
        if call.role == "uac":
            if call.state == "calling":
                call.cancel_pending = True
            elif call.state == "early":
                if not call.cancelling:
                    self._send_cancel(call)
            elif call.state == "confirmed":
                self._send_bye(call)
                self._end(call, "local", "bye")
        elif call.state in ("offered", "ringing"):
            self._stop_ua_timer(("answer", call_id))
            self._final(call, 480)
        elif call.state == "answered":
            call.bye_pending = True  # RFC 3261 §15: no BYE before the ACK (or its timeout)
        elif call.state == "confirmed":
            self._send_bye(call)
            self._end(call, "local", "bye")

    def answer(self, call_id: str, now: float, status: int = 200, delay: float = 0.0) -> None:
        """UAS: send 180 Ringing, then after ``delay`` seconds the final ``status`` (200 + SDP).

        ``delay=float("inf")`` rings until the caller cancels (or ``reject``/``hang_up``).
        """
        self._now = now
        call = self._call(call_id)
        if call.ended:
            return
        if call.role != "uas" or call.state != "offered":
            raise ValueError(f"call {call_id} is {call.role}/{call.state}; answer needs an offered incoming call")
        if status < 200:
            raise ValueError(f"answer status must be a final status, not {status}")
        assert call.invite_txn is not None and call.dialog is not None
        ringing = self._response(call.request, 180, to_tag=call.dialog.local_tag, contact=True)
        call.dialog.on("1xx", ringing)
        self._txn_event(call.invite_txn, "send_1xx", ringing)
        call.state = "ringing"
        if delay == float("inf"):
            call.pending_status = status  # ring until the caller gives up (or hang_up/reject)
        elif delay > 0:
            call.pending_status = status
            self._start_ua_timer(("answer", call_id), delay)
        else:
            self._final(call, status)

    def reject(self, call_id: str, now: float, status: int = 486) -> None:
        """UAS: send a final error response at once."""
        self._now = now
        if status < 300:
            raise ValueError(f"reject needs a status >= 300, not {status}")
        call = self._call(call_id)
        if call.ended:
            return
        if call.role != "uas" or call.state not in ("offered", "ringing"):
            raise ValueError(f"call {call_id} is {call.role}/{call.state}; only an unanswered incoming call can be rejected")
        self._stop_ua_timer(("answer", call_id))
        self._final(call, status)

    def send_options(self, conn: Hashable, now: float, request_uri: str) -> str:
        """Send an out-of-dialog OPTIONS; the result comes as OptionsResult(key, ...)."""
        self._now = now
        cfg = self.config
        key = f"{self._hex(8)}-{self._hex(8)}@{cfg.host}"
        h = Headers()
        branch = self._branch()
        h.add("Via", self._via(branch, conn))
        h.add("From", f"<sip:{cfg.host}:{cfg.port}>;tag={self._hex(10)}")
        h.add("To", f"<{request_uri}>")
        h.add("Call-ID", key)
        h.add("CSeq", "101 OPTIONS")
        h.add("Max-Forwards", "70")
        h.add("Contact", self._contact(None, conn))
        h.add("User-Agent", cfg.user_agent)
        h.add("Accept", "application/sdp")
        h.add("Allow", cfg.allow)
        h.add("Supported", cfg.supported)
        self._new_client("nict", conn, Request("OPTIONS", request_uri, h), ("options", key), branch)
        return key

    # ------------------------------------------------------------------ helpers

    def _hex(self, n: int) -> str:
        return _HEX_FORMATS[n] % self._rng.getrandbits(4 * n)  # == f"{bits:0{n}x}"

    def _branch(self) -> str:
        return MAGIC_COOKIE + self._hex(16)

    def _transport(self, conn: Hashable | None) -> tuple[str, int]:
        return self._transports.get(conn, (self.config.transport.upper(), self.config.port))

    def _via(self, branch: str, conn: Hashable | None = None) -> str:
        transport, port = self._transport(conn)
        return f"SIP/2.0/{transport} {self.config.host}:{port};branch={branch}"

    def _contact(self, user: str | None, conn: Hashable | None = None, transport: str | None = None) -> str:
        cfg = self.config
        userpart = f"{user}@" if user else ""
        if transport is None:
            transport, port = self._transport(conn)
        else:
            port = self._port_of.get(transport, cfg.port) if transport != cfg.transport.upper() else cfg.port
        return f"<sip:{userpart}{cfg.host}:{port};transport={transport.lower()}>"

    def _media_port(self) -> int:
        port = self.config.rtp_port_base + 2 * (self._media_ports % 8000)
        self._media_ports += 1
        return port

    def _session_id(self) -> int:
        return self._rng.getrandbits(31)

    def _call(self, call_id: str) -> Call:
        try:
            return self.calls[call_id]
        except KeyError:
            raise KeyError(f"unknown call {call_id!r}") from None

    def _emit(self, action: Any) -> None:
        self._actions.append(action)

    def _log(self, msg: Message, direction: str) -> None:
        call = self.calls.get(msg.call_id or "")
        if call is not None:
            call.log.append((self._now, direction, msg.first_line))

    def _send(self, conn: Hashable, msg: Message) -> None:
        first_line = msg.first_line
        call = self.calls.get(msg.call_id or "")
        if call is not None:
            call.log.append((self._now, "out", first_line))
        self._actions.append(Transmit(conn, serialise(msg, first_line), msg))

    def _start_ua_timer(self, key: tuple[str, str], delay: float) -> None:
        self._ua_timers.add(key)
        self._emit(StartTimer(key, delay))

    def _stop_ua_timer(self, key: tuple[str, str]) -> None:
        if key in self._ua_timers:
            self._ua_timers.discard(key)
            self._emit(CancelTimer(key))

    def _fail(self, call: Call, status: int, reason: str) -> None:
        if call.ended:
            return
        call.status = status
        self._finish(call, None, reason)
        self._emit(CallFailed(call.call_id, status, reason))

    def _end(self, call: Call, by: str, reason: str) -> None:
        if call.ended:
            return
        self._finish(call, by, reason)
        self._emit(CallEnded(call.call_id, by, reason))  # type: ignore[arg-type]

    def _add_call(self, call: Call) -> None:
        self.calls[call.call_id] = call
        live = self._live.get(call.conn)
        if live is None:
            live = self._live[call.conn] = {}
        live[call.call_id] = call

    def _finish(self, call: Call, by: str | None, reason: str) -> None:
        call.state = "ended"
        live = self._live.get(call.conn)
        if live is not None:
            live.pop(call.call_id, None)
            if not live:
                del self._live[call.conn]
        call.ended_at = self._now
        call.ended_by = by
        call.end_reason = reason
        timers, call_id = self._ua_timers, call.call_id
        for kind in ("answer", "ack_wait", "expires", "cancel_guard"):
            key = (kind, call_id)
            if key in timers:
                timers.discard(key)
                self._actions.append(CancelTimer(key))

    # ------------------------------------------------------------------ transactions

    def _new_client(self, kind: str, conn: Hashable, req: Request, tu: Any, branch: str | None = None) -> Transaction:
        """``branch``: the one just put in the request's top Via by ``_via(branch, conn)``, used as is
        when such a Via parses (checked once per transport and port), instead of parsing it back."""
        if branch is None or not self._via_parses(conn):
            branch = req.top_via_branch or ""
        txn = Transaction(kind, client_key(branch, req.method), conn, req, self.config.timers, tu)
        self._client[txn.key] = txn
        self._run(txn, txn.start())
        return txn

    def _via_parses(self, conn: Hashable) -> bool:
        """Does ``_via(branch, conn)`` parse back to that branch? (Always, unless the configured host
        is not a valid sent-by.) Memoised per (transport, port)."""
        pair = self._transport(conn)
        ok = self._via_ok.get(pair)
        if ok is None:
            probe = MAGIC_COOKIE + "0123456789abcdef"
            try:
                ok = parse_via(self._via(probe, conn)).params.get("branch") == probe
            except ValueError:
                ok = False
            self._via_ok[pair] = ok
        return ok

    def _txn_event(self, txn: Transaction, event: str, msg: Message | None = None) -> None:
        self._run(txn, txn.handle(event, msg))

    def _run(self, txn: Transaction, outputs: list[Any]) -> None:
        for out in outputs:
            kind = type(out)
            if kind is Send:
                self._send(out.conn, out.message)
            elif kind is ToTU:
                self._tu(out)
            else:  # StartTimer / CancelTimer
                self._actions.append(out)
        if txn.state == "terminated":
            table = self._client if txn.key[0] == "client" else self._server
            if table.get(txn.key) is txn:
                del table[txn.key]

    def _tu(self, out: ToTU) -> None:
        if not out.txn.tu:
            return
        kind, ident = out.txn.tu
        if kind == "invite":
            self._invite_result(ident, out)
        elif kind == "options":
            if out.what == "timeout":
                self._emit(OptionsResult(ident, None, "timeout"))
            elif out.what == "transport_error":
                self._emit(OptionsResult(ident, None, "connection_lost"))
            elif out.response is not None and out.response.status >= 200:
                self._emit(OptionsResult(ident, out.response.status, out.response.reason))

    # ------------------------------------------------------------------ UAC side

    def _on_response(self, conn: Hashable, resp: Response) -> None:
        try:
            method = resp.cseq[1]
        except ValueError:
            return
        txn = self._client.get(("client", resp.top_via_branch or "", method))  # client_key
        if txn is None:
            self._stray_response(resp, method)
            return
        self._txn_event(txn, response_event(txn.kind, resp.status), resp)

    def _stray_response(self, resp: Response, method: str) -> None:
        """A 2xx to INVITE after the transaction ended (a retransmission): ACK it again."""
        call = self.calls.get(resp.call_id or "")
        if (
            method == "INVITE" and 200 <= resp.status < 300 and call is not None and call.ack is not None
            and call.dialog is not None and resp.to_tag == call.dialog.remote_tag
        ):
            self._send(call.conn, call.ack)

    def _invite_result(self, call_id: str, out: ToTU) -> None:
        call = self.calls.get(call_id)
        if call is None or call.ended:
            return
        if out.what == "timeout":
            self._fail(call, 408, "timeout")
            return
        if out.what == "transport_error":
            self._fail(call, 503, "connection_lost")
            return
        resp = out.response
        assert resp is not None and call.dialog is not None
        status = resp.status
        if status < 200:
            call.state = "early"
            if resp.to_tag and status > 100:
                try:
                    call.dialog.on("1xx", resp)
                except DialogError:
                    pass
            self._emit(CallProgress(call_id, status))
            if call.cancel_pending and not call.cancelling:
                self._send_cancel(call)
            return
        if status >= 300:
            call.dialog.on("failure", resp)
            if call.expired:
                self._fail(call, 408, "timeout")
            elif call.cancelling and status == 487:
                self._fail(call, status, "cancelled")
            else:
                self._fail(call, status, resp.reason)
            return
        self._on_invite_2xx(call, resp)

    def _on_invite_2xx(self, call: Call, resp: Response) -> None:
        assert call.dialog is not None
        try:
            call.dialog.on("2xx", resp)
        except DialogError:
            pass  # no usable Contact: keep the Request-URI as remote target
        ack_body = b""
        if resp.body:
            try:
                remote = parse_sdp(resp.body)
            except SdpError:
                remote = None
            call.remote_sdp = remote
            if call.local_sdp is None and remote is not None:  # delayed offer: answer in the ACK
                try:
                    call.local_sdp = build_answer(
                        remote, self.config.host, self._media_port(), self.config.codecs,
                        session_id=self._session_id(),
                    )
                    ack_body = call.local_sdp.raw
                except SdpError:
                    pass
        ack = call.dialog.request("ACK", self._via(self._branch(), call.conn), cseq=call.request.cseq[0], body=ack_body)
        if ack_body:
            ack.headers.add("Content-Type", "application/sdp")
        call.ack = ack
        self._send(call.conn, ack)
        call.state = "confirmed"
        call.status = resp.status
        call.answered_at = self._now
        self._stop_ua_timer(("expires", call.call_id))
        self._emit(CallAnswered(call.call_id, resp.status, call.remote_sdp))
        if call.cancel_pending or call.cancelling:  # the 2xx crossed our CANCEL: hang up now
            self._send_bye(call)
            self._end(call, "local", "bye")

    def _send_cancel(self, call: Call) -> None:
        """CANCEL the INVITE (RFC 3261 §9.1): same Request-URI, branch, From, To, Call-ID, CSeq number."""
        inv = call.request
        h = Headers()
        h.add("Via", inv.headers.get_all("Via")[0])
        for route in inv.headers.get_all("Route"):
            h.add("Route", route)
        h.add("From", inv.headers.get("From") or "")
        h.add("To", inv.headers.get("To") or "")
        h.add("Call-ID", call.call_id)
        h.add("CSeq", f"{inv.cseq[0]} CANCEL")
        h.add("Max-Forwards", "70")
        h.add("User-Agent", self.config.user_agent)
        call.cancelling = True
        self._new_client("nict", call.conn, Request("CANCEL", inv.uri, h), ("cancel", call.call_id))
        # RFC 3261 9.1: no final response to the INVITE within 64*T1 → consider it cancelled.
        self._start_ua_timer(("cancel_guard", call.call_id), 64 * self.config.timers.t1)

    def _send_bye(self, call: Call) -> None:
        assert call.dialog is not None
        branch = self._branch()
        bye = call.dialog.request("BYE", self._via(branch, call.conn))
        bye.headers.add("User-Agent", self.config.user_agent)
        bye.headers.add("Reason", "Q.850;cause=16")
        call.dialog.on("bye", bye)
        self._new_client("nict", call.conn, bye, ("bye", call.call_id), branch)

    # ------------------------------------------------------------------ UAS side

    def _on_request(self, conn: Hashable, req: Request) -> None:
        try:  # the top Via once (top_via_branch and top_via_sent_by read the same parsed value)
            via = req._parsed_first("Via", "via")
        except ValueError:
            via = None
        if via is None:
            branch, sent_by = "", ""
        else:
            branch = via.params.get("branch") or ""
            sent_by = via.sent_by.lower()
        if not branch.startswith(MAGIC_COOKIE):  # RFC 2543 peer: no usable branch
            branch = f"2543:{req.call_id}:{req.cseq[0]}:{req.from_tag}"
        key = server_key(branch, sent_by, req.method)
        txn = self._server.get(key)
        if txn is not None:
            if req.method == "ACK":
                self._txn_event(txn, "ack", req)
                return
            if req.method == txn.request.method:
                self._txn_event(txn, "request", req)
                return
        if req.method == "ACK":
            self._on_ack(req)
            return
        txn = Transaction("ist" if req.method == "INVITE" else "nist", key, conn, req, self.config.timers)
        self._server[key] = txn
        unsupported = self._unsupported(req)
        if unsupported:
            self._respond(txn, 420, extra=[("Unsupported", ", ".join(unsupported))])
        elif req.method == "INVITE":
            self._on_invite(conn, txn, req)
        elif req.method == "CANCEL":
            self._on_cancel(txn, req, server_key(branch, sent_by, "INVITE"))
        elif req.method == "BYE":
            self._on_bye(txn, req)
        elif req.method == "OPTIONS":
            self._respond(txn, self.config.options_status, extra=[("Accept", "application/sdp")], contact=True)
        elif req.method == "INFO":
            call = self._dialog_call(req)
            self._respond(txn, 200 if call is not None else 481)
        elif req.to_tag and self._dialog_call(req) is None:
            self._respond(txn, 481)
        elif req.method in KNOWN_NOT_ALLOWED:
            self._respond(txn, 405)
        else:
            self._respond(txn, 501)

    def _unsupported(self, req: Request) -> list[str]:
        """Option tags in Require that we do not support (RFC 3261 8.2.2.3 → 420)."""
        if req.method == "CANCEL" or "require" not in req.headers._keys:  # "Require" in req.headers
            return []
        ours = {t.strip().lower() for t in self.config.supported.split(",")}
        return [t for t in req.headers.get_all("Require") if t and t.lower() not in ours]

    def _response(
        self,
        req: Request,
        status: int,
        *,
        to_tag: str | None = None,
        body: bytes = b"",
        contact: bool = False,
        extra: Iterable[tuple[str, str]] = (),
        reason: str | None = None,
    ) -> Response:
        """A response to ``req`` (RFC 3261 §8.2.6.2): Via/From/To/Call-ID/CSeq copied, To tag added."""
        cfg = self.config
        rh = req.headers
        dialog_creating = req.method == "INVITE" and 100 < status < 300
        if not extra and reason is None:
            fast = self._response_fast(req, rh, status, to_tag, body, contact, dialog_creating)
            if fast is not None:
                return fast
        # Via (and Record-Route for a dialog-creating response) copied in order.
        if dialog_creating:
            fields = [f for k, f in zip(rh._keys, rh._fields) if k == "via" or k == "record-route"]
        else:
            fields = [f for k, f in zip(rh._keys, rh._fields) if k == "via"]
        fields.append(("From", rh._first("from") or ""))
        to = rh._first("to") or ""
        if status > 100 and to_tag and req.to_tag is None:
            to = f"{to};tag={to_tag}"
        fields.append(("To", to))
        fields.append(("Call-ID", rh._first("call-id") or ""))
        fields.append(("CSeq", rh._first("cseq") or ""))
        if contact:
            fields.append(("Contact", self._contact(_user_of(req.uri), transport=_via_transport(req))))
        fields.append(("Server", cfg.user_agent))
        if dialog_creating or status in (405, 501) or req.method == "OPTIONS":
            fields.append(("Allow", cfg.allow))
            fields.append(("Supported", cfg.supported))
        for name, value in extra:
            fields.append((name, value))
        if body:
            fields.append(("Content-Type", "application/sdp"))
        return Response(status, reason or REASON_PHRASES.get(status, "Unknown"), Headers._adopt(fields), body)

    def _response_fast(self, req: Request, rh: Headers, status: int, to_tag: str | None, body: bytes,
                       contact: bool, dialog_creating: bool) -> Response | None:
        """``_response`` for the usual request (one Via line, no Record-Route, no extra fields): the
        request's Via/From/Call-ID/CSeq fields reused as they are (same tuples), keys known; None
        otherwise (the general code then runs). A property test compares both."""
        keys_in = rh._keys
        if keys_in.count("via") != 1 or "record-route" in keys_in:
            return None
        fields_in = rh._fields
        try:
            from_f = fields_in[keys_in.index("from")]
            to_f = fields_in[keys_in.index("to")]
            call_id_f = fields_in[keys_in.index("call-id")]
            cseq_f = fields_in[keys_in.index("cseq")]
        except ValueError:
            return None
        if "," in from_f[1] or "," in to_f[1]:  # the general code takes the first of a list
            return None
        if status > 100 and to_tag and req.to_tag is None:
            to_f = ("To", f"{to_f[1]};tag={to_tag}")
        cfg = self.config
        keys = ["via", "from", "to", "call-id", "cseq"]
        fields = [fields_in[keys_in.index("via")], from_f, to_f, call_id_f, cseq_f]
        if contact:
            keys.append("contact")
            fields.append(("Contact", self._response_contact(req)))
        keys.append("server")
        fields.append(("Server", cfg.user_agent))
        if dialog_creating or status in (405, 501) or req.method == "OPTIONS":
            keys += ("allow", "supported")
            fields.append(("Allow", cfg.allow))
            fields.append(("Supported", cfg.supported))
        if body:
            keys.append("content-type")
            fields.append(("Content-Type", "application/sdp"))
        return Response(status, REASON_PHRASES.get(status, "Unknown"), Headers._make(keys, fields), body)

    def _response_contact(self, req: Request) -> str:
        """Our Contact in a response to ``req`` (memoised by Request-URI and top-Via transport)."""
        transport = _via_transport(req)
        memo_key = (req.uri, transport)
        memo = self._contacts
        hit = memo.get(memo_key)
        if hit is None:
            hit = self._contact(_user_of(req.uri), transport=transport)
            if len(req.uri) <= 256:  # bounded memory whatever a peer sends
                if len(memo) >= 256:
                    memo.clear()
                memo[memo_key] = hit
        return hit

    def _respond(self, txn: Transaction, status: int, **kw: Any) -> Response:
        if "to_tag" not in kw:
            call = self.calls.get(txn.request.call_id or "")
            kw["to_tag"] = call.dialog.local_tag if call and call.dialog and call.role == "uas" else self._hex(10)
        resp = self._response(txn.request, status, **kw)
        if status < 200:
            event = "send_1xx"
        elif status < 300 and txn.kind == "ist":
            event = "send_2xx"
        else:
            event = "send_final"
        self._txn_event(txn, event, resp)
        return resp

    def _protocol_error(self, conn: Hashable, e: SipParseError) -> None:
        sent = False
        if e.can_respond and e.partial_headers is not None:
            method = (e.start_line or "").split(" ", 1)[0]
            if method != "ACK":
                req = Request(method, "sip:invalid", e.partial_headers)
                text = f"{e.reason}: {e.detail}".replace('"', "'")
                resp = self._response(
                    req, e.status, to_tag=self._hex(10),
                    extra=[("Warning", f'399 {self.config.host} "{text}"')],
                )
                self._send(conn, resp)
                sent = True
        self._emit(ProtocolError(conn, e, sent))

    def _dialog_call(self, req: Request) -> Call | None:
        call = self.calls.get(req.call_id or "")
        if call is None or call.ended or call.dialog is None or not call.dialog.matches(req):
            return None
        return call

    def _check_cseq(self, call: Call, txn: Transaction, req: Request) -> bool:
        """RFC 3261 §12.2.2: a lower CSeq than the last one seen is answered 500."""
        assert call.dialog is not None
        seq = req.cseq[0]
        if call.dialog.remote_seq is not None and seq < call.dialog.remote_seq:
            self._respond(txn, 500, reason="Server Internal Error - CSeq out of order")
            return False
        call.dialog.remote_seq = seq
        return True

    def _on_invite(self, conn: Hashable, txn: Transaction, req: Request) -> None:
        if req.to_tag:
            self._on_reinvite(txn, req)
            return
        call_id = req.call_id or ""
        if call_id in self.calls:
            self._respond(txn, 482)
            return
        if "Contact" not in req.headers:
            self._respond(txn, 400, extra=[("Warning", f'399 {self.config.host} "INVITE has no Contact"')])
            return
        offer = None
        if req.body:
            try:
                offer = parse_sdp(req.body)
            except SdpError as e:
                text = str(e).replace('"', "'")
                self._respond(txn, 488, extra=[("Warning", f'399 {self.config.host} "{text}"')])
                return
        try:
            dialog = Dialog.for_uas(req, self._hex(10))
        except DialogError as e:
            text = str(e).replace('"', "'")
            self._respond(txn, 400, extra=[("Warning", f'399 {self.config.host} "{text}"')])
            return
        caller = ""
        try:
            addr = req.parsed_header("From")
            caller = _user_of(addr.uri) if addr is not None else ""
        except ValueError:
            pass
        call = Call(call_id, conn, "uas", caller, _user_of(req.uri), req, "offered", self._now,
                    dialog=dialog, remote_sdp=offer, invite_txn=txn)
        self._add_call(call)
        call.log.append((self._now, "in", req.first_line))
        txn.tu = ("uas", call_id)
        self._respond(txn, 100, to_tag=None)
        self._emit(IncomingCall(call_id, conn, req))

    def _on_reinvite(self, txn: Transaction, req: Request) -> None:
        call = self._dialog_call(req)
        if call is None:
            self._respond(txn, 481)
            return
        if not self._check_cseq(call, txn, req):
            return
        assert call.dialog is not None
        try:
            call.dialog.on("target_refresh", req)
        except DialogError:
            pass
        body = call.local_sdp.raw if call.local_sdp is not None else b""
        self._respond(txn, 200, body=body, contact=True)

    def _on_ack(self, req: Request) -> None:
        call = self._dialog_call(req)
        if call is None or call.state != "answered":
            return  # ACK for a re-INVITE 2xx, a duplicate, or a stray: nothing to do
        self._stop_ua_timer(("ack_wait", call.call_id))
        call.state = "confirmed"
        if call.remote_sdp is None and req.body:
            try:
                call.remote_sdp = parse_sdp(req.body)
            except SdpError:
                pass
        if call.bye_pending:
            self._send_bye(call)
            self._end(call, "local", "bye")

    def _on_cancel(self, txn: Transaction, req: Request, invite_key: Hashable) -> None:
        ist = self._server.get(invite_key)
        if ist is None or ist.kind != "ist":
            self._respond(txn, 481)
            return
        call = self.calls.get(ist.tu[1]) if ist.tu else None
        tag = call.dialog.local_tag if call and call.dialog else None
        self._respond(txn, 200, to_tag=tag)
        if ist.state != "proceeding":
            return  # final response already sent: CANCEL has no effect
        resp = self._respond(ist, 487, to_tag=tag)
        if call is not None:
            call.status = 487
            if call.dialog is not None:
                call.dialog.on("failure", resp)
            self._end(call, "remote", "cancelled")

    def _on_bye(self, txn: Transaction, req: Request) -> None:
        call = self._dialog_call(req)
        if call is None:
            self._respond(txn, 481)
            return
        if not self._check_cseq(call, txn, req):
            return
        assert call.dialog is not None
        self._respond(txn, 200)
        ist = call.invite_txn
        if call.role == "uas" and ist is not None and ist.state == "proceeding":
            self._respond(ist, 487)
        call.dialog.on("bye", req)
        self._end(call, "remote", "bye")

    def _final(self, call: Call, status: int) -> None:
        """UAS: the final response to the initial INVITE."""
        txn, dialog = call.invite_txn, call.dialog
        assert txn is not None and dialog is not None
        if status < 300:
            try:
                if call.remote_sdp is not None:
                    local = build_answer(call.remote_sdp, self.config.host, self._media_port(),
                                         self.config.codecs, session_id=self._session_id())
                else:
                    local = build_offer(self.config.host, self._media_port(), self.config.codecs,
                                        session_id=self._session_id())
            except SdpError as e:
                text = str(e).replace('"', "'")
                resp = self._respond(txn, 488, extra=[("Warning", f'399 {self.config.host} "{text}"')])
                dialog.on("failure", resp)
                call.status = 488
                self._end(call, "local", "rejected")
                return
            call.local_sdp = local
            resp = self._response(call.request, status, to_tag=dialog.local_tag, body=local.raw, contact=True)
            dialog.on("2xx", resp)
            self._txn_event(txn, "send_2xx", resp)
            call.state = "answered"
            call.status = status
            call.answered_at = self._now
            self._start_ua_timer(("ack_wait", call.call_id), 64 * self.config.timers.t1)
            return
        resp = self._respond(txn, status, to_tag=dialog.local_tag)
        dialog.on("failure", resp)
        call.status = status
        self._end(call, "local", "rejected")


def _header_pair(extra: tuple[str, str] | str) -> tuple[str, str]:
    if isinstance(extra, str):
        name, sep, value = extra.partition(":")
        if not sep:
            raise ValueError(f"extra header {extra!r} is not 'Name: value'")
        return name.strip(), value.strip()
    name, value = extra
    return name, value


_URIS: dict[str, SipUri] = {}


def _uri(text: str) -> SipUri:
    """``parse_uri``, memoised (Request-URIs and From URIs repeat call after call). Shared: read only."""
    hit = _URIS.get(text)
    if hit is None:
        hit = parse_uri(text)  # errors are not remembered
        if len(text) <= 256:  # bounded memory whatever a peer sends
            if len(_URIS) >= 1024:
                _URIS.clear()
            _URIS[text] = hit
    return hit


def _user_of(uri: str) -> str:
    try:
        return _uri(uri).user or ""
    except ValueError:
        return ""


def _via_transport(req: Request) -> str | None:
    """The transport of the request's top Via (``SIP/2.0/TCP host`` → ``"TCP"``), upper case."""
    top = req.headers._first("via")  # get_all("Via")[0]
    proto = top.split(None, 1)[0] if top and top.strip() else ""
    return proto.rsplit("/", 1)[-1].upper() or None
