"""What went over the wire, named the way Wireshark names it.

A `Flight` is a run of TLS records pumped in one direction without the other direction talking in
between (Wireshark's rows, merged per direction change): e.g. a TLS 1.0 mutual handshake reads

    sent      Client Hello
    received  Server Hello, Certificate, Certificate Request, Server Hello Done
    sent      Certificate, Client Key Exchange, Certificate Verify, Change Cipher Spec, Finished
    received  New Session Ticket, Change Cipher Spec, Finished
    sent      Application Data

Two sources name the messages:
- the TLS record headers of the bytes pumped each way (content type 20/21/22/23) and, for cleartext
  handshake and alert records, the handshake type / alert bytes themselves;
- OpenSSL's info callback (``SSL_CB_LOOP`` state strings such as "SSLv3/TLS write finished" or
  "TLSv1.3 read encrypted extensions", and ``SSL_CB_ALERT``) for the records that are encrypted
  (Finished in TLS ≤ 1.2, everything after the Server Hello in TLS 1.3, encrypted alerts).
Names from the callback queue up per direction; each encrypted record takes the next one. Received
records are named only once OpenSSL has consumed them (so the callback for them has fired).
Encrypted records left unnamed (a failed handshake) get Wireshark's "Encrypted Handshake Message" /
"Encrypted Alert"; encrypted records after the handshake with no queued name are "Application Data".
"""

from __future__ import annotations

import re
from collections import deque
from dataclasses import dataclass, field
from typing import Callable

SENT = "sent"
RECEIVED = "received"

HANDSHAKE_TYPES = {
    0: "Hello Request",
    1: "Client Hello",
    2: "Server Hello",
    3: "Hello Verify Request",
    4: "New Session Ticket",
    5: "End of Early Data",
    8: "Encrypted Extensions",
    11: "Certificate",
    12: "Server Key Exchange",
    13: "Certificate Request",
    14: "Server Hello Done",
    15: "Certificate Verify",
    16: "Client Key Exchange",
    20: "Finished",
    21: "Certificate URL",
    22: "Certificate Status",
    24: "Key Update",
    25: "Compressed Certificate",
    254: "Message Hash",
}

# code → (snake_case name used in records/reasons, Wireshark's description)
ALERTS = {
    0: ("close_notify", "Close Notify"),
    10: ("unexpected_message", "Unexpected Message"),
    20: ("bad_record_mac", "Bad Record MAC"),
    21: ("decryption_failed", "Decryption Failed"),
    22: ("record_overflow", "Record Overflow"),
    30: ("decompression_failure", "Decompression Failure"),
    40: ("handshake_failure", "Handshake Failure"),
    41: ("no_certificate", "No Certificate"),
    42: ("bad_certificate", "Bad Certificate"),
    43: ("unsupported_certificate", "Unsupported Certificate"),
    44: ("certificate_revoked", "Certificate Revoked"),
    45: ("certificate_expired", "Certificate Expired"),
    46: ("certificate_unknown", "Certificate Unknown"),
    47: ("illegal_parameter", "Illegal Parameter"),
    48: ("unknown_ca", "Unknown CA"),
    49: ("access_denied", "Access Denied"),
    50: ("decode_error", "Decode Error"),
    51: ("decrypt_error", "Decrypt Error"),
    60: ("export_restriction", "Export Restriction"),
    70: ("protocol_version", "Protocol Version"),
    71: ("insufficient_security", "Insufficient Security"),
    80: ("internal_error", "Internal Error"),
    86: ("inappropriate_fallback", "Inappropriate Fallback"),
    90: ("user_canceled", "User Canceled"),
    100: ("no_renegotiation", "No Renegotiation"),
    109: ("missing_extension", "Missing Extension"),
    110: ("unsupported_extension", "Unsupported Extension"),
    111: ("certificate_unobtainable", "Certificate Unobtainable"),
    112: ("unrecognized_name", "Unrecognized Name"),
    113: ("bad_certificate_status_response", "Bad Certificate Status Response"),
    114: ("bad_certificate_hash_value", "Bad Certificate Hash Value"),
    115: ("unknown_psk_identity", "Unknown PSK Identity"),
    116: ("certificate_required", "Certificate Required"),
    120: ("no_application_protocol", "No Application Protocol"),
}

# SHA-256("HelloRetryRequest"): a Server Hello with this random is a Hello Retry Request.
_HRR_RANDOM = bytes.fromhex("cf21ad74e59a6111be1d8c021e65b891c2a211167abb8c5e079e09e2c8a8339c")

_CONTENT_TYPES = {20: "Change Cipher Spec", 21: "Alert", 22: "Handshake", 23: "Application Data",
                  24: "Heartbeat"}
_MAX_RECORD = 16384 + 2048 + 256


def alert_snake(desc: int) -> str:
    return ALERTS.get(desc, (f"alert_{desc}", ""))[0]


def alert_title(desc: int) -> str:
    return ALERTS.get(desc, ("", f"Unknown ({desc})"))[1]


def alert_message(level: int, desc: int) -> str:
    """``Alert (Level: Fatal, Description: Unknown CA)``."""
    lvl = {1: "Warning", 2: "Fatal"}.get(level, f"Unknown ({level})")
    return f"Alert (Level: {lvl}, Description: {alert_title(desc)})"


_STATE_RE = re.compile(r"^(?:SSLv3/TLS|TLSv1\.3|DTLS1) (read|write) (.+)$")
_STATE_NAMES = {
    "client hello": "Client Hello",
    "server hello": "Server Hello",
    "hello request": "Hello Request",
    "hello verify request": "Hello Verify Request",
    "certificate": "Certificate",
    "server certificate": "Certificate",
    "client certificate": "Certificate",
    "compressed certificate": "Compressed Certificate",
    "server compressed certificate": "Compressed Certificate",
    "client compressed certificate": "Compressed Certificate",
    "key exchange": "Server Key Exchange",
    "server key exchange": "Server Key Exchange",
    "client key exchange": "Client Key Exchange",
    "certificate request": "Certificate Request",
    "server certificate request": "Certificate Request",
    "server done": "Server Hello Done",
    "certificate verify": "Certificate Verify",
    "server certificate verify": "Certificate Verify",
    "client certificate verify": "Certificate Verify",
    "change cipher spec": "Change Cipher Spec",
    "finished": "Finished",
    "session ticket": "New Session Ticket",
    "server session ticket": "New Session Ticket",
    "encrypted extensions": "Encrypted Extensions",
    "certificate status": "Certificate Status",
    "server certificate status": "Certificate Status",
    "key update": "Key Update",
    "end of early data": "End of Early Data",
    "next proto": "Next Protocol",
    "hello retry request": "Hello Retry Request",
}


def state_message(state: str) -> tuple[str, str] | None:
    """OpenSSL's long state string → (direction, Wireshark message name), or None if the state is
    not a message ("before SSL initialization", "TLSv1.3 early data", "SSL negotiation …")."""
    m = _STATE_RE.match(state.strip())
    if not m:
        return None
    op, what = m.groups()
    name = _STATE_NAMES.get(what)
    if name is None:
        name = what.title()
    return (SENT if op == "write" else RECEIVED, name)


@dataclass
class Flight:
    direction: str               # "sent" | "received"
    t_ms: float                  # since the connection started
    nbytes: int                  # bytes on the wire (TLS records) in this flight
    messages: list[str] = field(default_factory=list)
    encrypted: bool = False      # True if any message of the flight was protected by record keys
    encrypted_messages: list[bool] = field(default_factory=list)   # per message

    def describe(self, mark_encrypted: bool = False) -> str:
        if not mark_encrypted:
            return ", ".join(self.messages)
        return ", ".join(f"{m} (encrypted)" if e else m
                         for m, e in zip(self.messages, self.encrypted_messages))

    def to_dict(self) -> dict:
        return {
            "direction": self.direction,
            "t_ms": round(self.t_ms, 3),
            "nbytes": self.nbytes,
            "messages": list(self.messages),
            "encrypted": self.encrypted,
            "encrypted_messages": list(self.encrypted_messages),
        }


def format_transcript(flights: list[Flight], mark_encrypted: bool = True) -> list[str]:
    """One line per flight: ``→ Client Hello`` / ``← Server Hello, …``."""
    return [f"{'→' if f.direction == SENT else '←'} {f.describe(mark_encrypted)}" for f in flights]


def looks_like_tls(data: bytes) -> bool:
    """Do these first bytes of a connection start a TLS record?"""
    if not data:
        return True
    if data[0] not in (20, 21, 22, 23, 24):
        return False
    return len(data) < 2 or data[1] == 3


@dataclass
class _Rec:
    ctype: int
    end: int                          # absolute offset of the record's end in its direction
    encrypted: bool
    names: list[str] | None           # cleartext: parsed names; None: to be named
    flight: Flight | None


class _Dir:
    def __init__(self, direction: str):
        self.direction = direction
        self.buf = bytearray()         # bytes not yet split into records
        self.offset = 0                # absolute offset of buf[0]
        self.total = 0                 # bytes seen
        self.hs_buf = bytearray()      # cleartext handshake bytes not yet a whole message
        self.ccs = False               # Change Cipher Spec seen → later 21/22 records are encrypted
        self.broken = False            # not TLS (or garbage): stop parsing
        self.first_bytes = b""
        self.queue: deque[str] = deque()   # names from OpenSSL's info callback
        self.pending: deque[_Rec] = deque()
        self.seen: list[str] = []          # every message named so far, in order


class TranscriptBuilder:
    """Accumulates `Flight`s for one connection (see the module docstring)."""

    def __init__(self, clock: Callable[[], float], max_flights: int = 64):
        self._clock = clock           # → milliseconds since the connection started
        self.max_flights = max_flights
        self.flights: list[Flight] = []
        self.truncated = False
        self.handshake_done = False
        self._dirs = {SENT: _Dir(SENT), RECEIVED: _Dir(RECEIVED)}
        self._fresh_call = False
        self._last_state: str | None = None

    # ---- information from OpenSSL -------------------------------------------------------------
    def begin_call(self) -> None:
        """Called before each OpenSSL call: OpenSSL repeats the current state on re-entry."""
        self._fresh_call = True

    def on_state(self, state: str) -> None:
        fresh, self._fresh_call = self._fresh_call, False
        if fresh and state == self._last_state:
            return
        self._last_state = state
        msg = state_message(state)
        if msg is None:
            return
        direction, name = msg
        if name == "Change Cipher Spec":       # always a cleartext record of its own
            return
        self._dirs[direction].queue.append(name)

    def on_alert(self, direction: str, level: int, desc: int) -> None:
        self._dirs[direction].queue.append(alert_message(level, desc))

    # ---- bytes on the wire --------------------------------------------------------------------
    def on_wire(self, direction: str, data: bytes) -> None:
        d = self._dirs[direction]
        if not data:
            return
        if d.total == 0:
            d.first_bytes = bytes(data[:64])
            if not looks_like_tls(data):
                d.broken = True
        elif len(d.first_bytes) < 64:
            d.first_bytes = (d.first_bytes + bytes(data))[:64]
        flight = self._flight_for(direction, len(data))
        d.total += len(data)
        if d.broken:
            if flight is not None and not flight.messages:
                flight.messages.append("Not TLS: " + describe_bytes(d.first_bytes))
                flight.encrypted_messages.append(False)
            return
        d.buf += data
        self._split(d, flight)
        if direction == SENT:
            self._resolve(d, d.total)

    def resolve_received(self, consumed: int) -> None:
        """OpenSSL has consumed this many received bytes: name those records."""
        self._resolve(self._dirs[RECEIVED], consumed)

    def finish(self) -> None:
        """Name whatever is left (end of handshake failure / close)."""
        for d in self._dirs.values():
            self._resolve(d, d.total, final=True)

    # ---- queries ------------------------------------------------------------------------------
    def not_tls(self, direction: str = RECEIVED) -> bool:
        return self._dirs[direction].broken and self._dirs[direction].total > 0 and \
            not looks_like_tls(self._dirs[direction].first_bytes)

    def first_bytes(self, direction: str = RECEIVED) -> bytes:
        return self._dirs[direction].first_bytes

    def bytes_seen(self, direction: str) -> int:
        return self._dirs[direction].total

    def seen(self, direction: str, name: str) -> bool:
        return name in self._dirs[direction].seen

    # ---- internals ----------------------------------------------------------------------------
    def _flight_for(self, direction: str, nbytes: int) -> Flight | None:
        if self.flights and self.flights[-1].direction == direction:
            f = self.flights[-1]
            f.nbytes += nbytes
            return f
        if len(self.flights) >= self.max_flights:
            self.truncated = True
            return None
        f = Flight(direction=direction, t_ms=self._clock(), nbytes=nbytes)
        self.flights.append(f)
        return f

    def _split(self, d: _Dir, flight: Flight | None) -> None:
        while len(d.buf) >= 5:
            ctype, major, length = d.buf[0], d.buf[1], int.from_bytes(d.buf[3:5], "big")
            if ctype not in _CONTENT_TYPES or major != 3 or length > _MAX_RECORD:
                d.broken = True
                if flight is not None:
                    flight.messages.append("Malformed TLS record")
                    flight.encrypted_messages.append(False)
                return
            if len(d.buf) < 5 + length:
                return
            payload = bytes(d.buf[5:5 + length])
            del d.buf[:5 + length]
            d.offset += 5 + length
            d.pending.append(self._record(d, ctype, payload, d.offset, flight))

    def _record(self, d: _Dir, ctype: int, payload: bytes, end: int, flight) -> _Rec:
        if ctype == 20:
            d.ccs = True
            return _Rec(ctype, end, False, ["Change Cipher Spec"], flight)
        if ctype == 23:
            return _Rec(ctype, end, True, None, flight)
        if ctype == 24:
            return _Rec(ctype, end, d.ccs, ["Heartbeat"], flight)
        if d.ccs:
            return _Rec(ctype, end, True, None, flight)
        if ctype == 21:
            if len(payload) >= 2:
                return _Rec(ctype, end, False, [alert_message(payload[0], payload[1])], flight)
            return _Rec(ctype, end, False, ["Alert"], flight)
        # cleartext handshake: whole messages completed by this record
        d.hs_buf += payload
        names = []
        while len(d.hs_buf) >= 4:
            mlen = int.from_bytes(d.hs_buf[1:4], "big")
            if len(d.hs_buf) < 4 + mlen:
                break
            mtype = d.hs_buf[0]
            name = HANDSHAKE_TYPES.get(mtype, f"Handshake Type {mtype}")
            if mtype == 2 and bytes(d.hs_buf[6:38]) == _HRR_RANDOM:
                name = "Hello Retry Request"
            names.append(name)
            del d.hs_buf[:4 + mlen]
        return _Rec(ctype, end, False, names, flight)

    def _align(self, d: _Dir, name: str) -> None:
        # A cleartext message was parsed from the wire: drop its callback name (and anything stale
        # before it) from the queue.
        for i, queued in enumerate(d.queue):
            if queued == name or (name == "Hello Retry Request" and queued == "Server Hello"):
                for _ in range(i + 1):
                    d.queue.popleft()
                return

    def _resolve(self, d: _Dir, upto: int, final: bool = False) -> None:
        batch: list[_Rec] = []
        while d.pending and d.pending[0].end <= upto:
            batch.append(d.pending.popleft())
        if final:
            batch.extend(d.pending)
            d.pending.clear()
        if not batch:
            return
        last_named: _Rec | None = None
        for rec in batch:
            if rec.names is not None:
                for n in rec.names:
                    self._align(d, n)
                self._emit(d, rec, rec.names, rec.encrypted)
                continue
            if d.queue:
                names = [d.queue.popleft()]
                last_named = rec
            elif rec.ctype == 23 and self.handshake_done:
                names = ["Application Data"]
            elif rec.ctype == 21:
                names = ["Encrypted Alert"]
            else:
                names = ["Encrypted Handshake Message"]
            self._emit(d, rec, names, True)
        # Every callback name now belongs to a record of this batch (or before): names left over
        # mean several messages shared the last encrypted record.
        if last_named is not None and d.queue:
            self._emit(d, last_named, list(d.queue), True)
        d.queue.clear()

    def _emit(self, d: _Dir, rec: _Rec, names: list[str], encrypted: bool) -> None:
        d.seen.extend(names)
        f = rec.flight
        if f is None:
            return
        for n in names:
            if n == "Application Data" and f.messages and f.messages[-1] == n:
                continue          # Wireshark would list one per record; keep the transcript short
            f.messages.append(n)
            f.encrypted_messages.append(encrypted)
            if encrypted:
                f.encrypted = True


def describe_bytes(data: bytes, limit: int = 40) -> str:
    """First bytes of a non-TLS stream, for a sentence: text if printable, else hex."""
    head = data[:limit]
    try:
        text = head.decode("ascii")
        if all(ch.isprintable() or ch in "\r\n\t" for ch in text):
            text = text.replace("\r", "\\r").replace("\n", "\\n")
            return f'"{text}{"…" if len(data) > limit else ""}"'
    except UnicodeDecodeError:
        pass
    return head[:16].hex(" ") + (" …" if len(data) > 16 else "")
