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

import marshal
import re
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


@dataclass(slots=True)
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


# ---- the builder ---------------------------------------------------------------------------------
# While the connection runs, the builder only logs compact facts, cheaply: message names from
# OpenSSL's state callback (already de-duplicated, as shared tuples), alerts, how many received bytes
# OpenSSL has consumed, and per chunk of wire bytes its direction, length, time (when it starts a
# flight) and the TLS records it completes, already split (content type, end offset, encrypted,
# cleartext message names) — wire bytes are not kept. Flights are named (the log replayed through
# `_Namer`) only when someone reads them, or when the log grows long.

_MALFORMED = "Malformed TLS record"
_HS_DONE = -1              # log entry: the handshake completed (consumed counts are >= 0)
_FINISH = -2               # log entry: name whatever is left
_CCS_NAMES = ("Change Cipher Spec",)
_HEARTBEAT_NAMES = ("Heartbeat",)
_ALERT_NAMES = ("Alert",)
_MAX_LOG = 256             # replay the log into flights past this many entries
_STATE_CACHE: dict[str, tuple[str, str] | None] = {}
#: state key (a state string, or the address of OpenSSL's static string for it) → what to queue
_KEY_CACHE: dict = {}
_UNKNOWN = object()


def _queued_name(state: str) -> tuple[str, str] | None:
    """(direction, name) to queue for an OpenSSL state string, or None (not a message, or CCS)."""
    try:
        return _STATE_CACHE[state]
    except KeyError:
        pass
    msg = state_message(state)
    if msg is not None and msg[1] == "Change Cipher Spec":     # always a cleartext record of its own
        msg = None
    if len(_STATE_CACHE) < 4096:
        _STATE_CACHE[state] = msg
    return msg


class _Splitter:
    """Record splitting state of one direction (runs as the bytes go by)."""

    __slots__ = ("buf", "offset", "total", "hs_buf", "ccs", "broken", "first_bytes")

    def __init__(self):
        self.buf = b""             # bytes not yet split into records
        self.offset = 0            # absolute offset of the end of the last whole record
        self.total = 0             # bytes seen
        self.hs_buf = b""          # cleartext handshake bytes not yet a whole message
        self.ccs = False           # Change Cipher Spec seen → later 21/22 records are encrypted
        self.broken = False        # not TLS (or garbage): stop parsing
        self.first_bytes = b""

    def count(self, data) -> None:
        """Count ``data`` and keep the first 64 bytes seen (what failure reasons quote)."""
        if self.total == 0:
            self.first_bytes = bytes(data[:64])
            if not looks_like_tls(data):
                self.broken = True
        elif len(self.first_bytes) < 64:
            self.first_bytes = (self.first_bytes + bytes(data))[:64]
        self.total += len(data)

    def split(self, data) -> list:
        """Record facts ``(ctype, end, encrypted, names | None)`` completed by ``data`` (and
        `_MALFORMED` last if the stream stops being TLS)."""
        buf = self.buf + data if self.buf else data
        n = len(buf)
        pos = 0
        out = []
        while n - pos >= 5:
            ctype = buf[pos]
            length = (buf[pos + 3] << 8) | buf[pos + 4]
            if ctype not in _CONTENT_TYPES or buf[pos + 1] != 3 or length > _MAX_RECORD:
                self.broken = True
                self.buf = b""
                out.append(_MALFORMED)
                return out
            end = pos + 5 + length
            if end > n:
                break
            self.offset += 5 + length
            out.append(self._fact(ctype, buf, pos + 5, end))
            pos = end
        self.buf = bytes(buf[pos:]) if pos < n else b""
        return out

    def _fact(self, ctype: int, buf, start: int, end: int) -> tuple:
        if ctype == 23:
            return (23, self.offset, True, None)
        if ctype == 20:
            self.ccs = True
            return (20, self.offset, False, _CCS_NAMES)
        if ctype == 24:
            return (24, self.offset, self.ccs, _HEARTBEAT_NAMES)
        if self.ccs:
            return (ctype, self.offset, True, None)
        if ctype == 21:
            if end - start >= 2:
                return (21, self.offset, False, (alert_message(buf[start], buf[start + 1]),))
            return (21, self.offset, False, _ALERT_NAMES)
        # cleartext handshake: whole messages completed by this record
        hs = self.hs_buf + buf[start:end] if self.hs_buf else bytes(buf[start:end])
        names = []
        p, n = 0, len(hs)
        while n - p >= 4:
            mlen = int.from_bytes(hs[p + 1:p + 4], "big")
            if n - p < 4 + mlen:
                break
            mtype = hs[p]
            name = HANDSHAKE_TYPES.get(mtype) or f"Handshake Type {mtype}"
            if mtype == 2 and hs[p + 6:p + 38] == _HRR_RANDOM:
                name = "Hello Retry Request"
            names.append(name)
            p += 4 + mlen
        self.hs_buf = hs[p:] if p < n else b""
        return (ctype, self.offset, False, tuple(names))


class TranscriptBuilder:
    """Accumulates `Flight`s for one connection (see the module docstring)."""

    __slots__ = ("_clock", "max_flights", "_log", "_packed", "_namer", "_sent", "_received", "_fresh_call",
                 "_last_state", "_last_dir", "_consumed", "_handshake_done")

    def __init__(self, clock: Callable[[], float], max_flights: int = 64):
        self._clock = clock           # → milliseconds since the connection started
        self.max_flights = max_flights
        self._log: list = []          # facts not yet replayed into flights
        self._packed: bytes | None = None   # older facts, packed (see `pack`)
        self._namer: _Namer | None = None
        self._sent = _Splitter()
        self._received = _Splitter()
        self._fresh_call = False
        self._last_state: str | None = None
        self._last_dir: str | None = None
        self._consumed = 0
        self._handshake_done = False

    # ---- information from OpenSSL -------------------------------------------------------------
    def begin_call(self) -> None:
        """Called before each OpenSSL call: OpenSSL repeats the current state on re-entry."""
        self._fresh_call = True

    def on_state(self, state: str) -> None:
        self.on_state_key(state, state)

    def on_state_key(self, key, state: str) -> None:
        """``state`` with a key that identifies it (the stream passes the static string's address)."""
        fresh, self._fresh_call = self._fresh_call, False
        if fresh and key == self._last_state:
            return
        self._last_state = key
        msg = _KEY_CACHE.get(key, _UNKNOWN)
        if msg is _UNKNOWN:
            msg = _queued_name(state)
            if len(_KEY_CACHE) < 4096:
                _KEY_CACHE[key] = msg
        if msg is not None:
            self._log.append(msg)

    def on_alert(self, direction: str, level: int, desc: int) -> None:
        self._log.append((direction, level, desc))

    @property
    def handshake_done(self) -> bool:
        return self._handshake_done

    @handshake_done.setter
    def handshake_done(self, value: bool) -> None:
        if value and not self._handshake_done:
            self._log.append(_HS_DONE)
        self._handshake_done = bool(value)

    # ---- bytes on the wire --------------------------------------------------------------------
    def on_wire(self, direction: str, data: bytes) -> None:
        if not data:
            return
        d = self._sent if direction == SENT else self._received
        n = len(data)
        d.count(data)
        if direction != self._last_dir:
            self._last_dir = direction
            t = self._clock()
        else:
            t = None
        log = self._log
        if d.broken:
            log.append((direction, n, t, "Not TLS: " + describe_bytes(d.first_bytes)))
        else:
            log.append((direction, n, t, d.split(data)))
        if len(log) > _MAX_LOG:
            self._replay()

    def resolve_received(self, consumed: int) -> None:
        """OpenSSL has consumed this many received bytes: name those records."""
        if consumed != self._consumed:
            self._consumed = consumed
            self._log.append(consumed)

    def finish(self) -> None:
        """Name whatever is left (end of handshake failure / close)."""
        self._log.append(_FINISH)

    def pack(self) -> None:
        """Store the facts logged so far as one bytes object (marshal: ~0.7 kB instead of ~2 kB of
        tuples on an idle connection); they are unpacked when the flights are read."""
        if self._packed is None and self._namer is None and self._log:
            self._packed = marshal.dumps(self._log)
            self._log = []

    # ---- results ------------------------------------------------------------------------------
    @property
    def flights(self) -> list[Flight]:
        return self._replay().flights

    @property
    def truncated(self) -> bool:
        return self._replay().truncated

    def not_tls(self, direction: str = RECEIVED) -> bool:
        d = self._sent if direction == SENT else self._received
        return d.broken and d.total > 0 and not looks_like_tls(d.first_bytes)

    def first_bytes(self, direction: str = RECEIVED) -> bytes:
        return (self._sent if direction == SENT else self._received).first_bytes

    def bytes_seen(self, direction: str) -> int:
        return (self._sent if direction == SENT else self._received).total

    def seen(self, direction: str, name: str) -> bool:
        return name in self._replay().sides[direction].seen

    def _replay(self) -> "_Namer":
        namer = self._namer
        if namer is None:
            namer = self._namer = _Namer(self.max_flights)
        if self._packed is not None:
            log = marshal.loads(self._packed) + self._log
            self._packed = None
            self._log = []
            namer.replay(log)
        elif self._log:
            log, self._log = self._log, []
            namer.replay(log)
        return namer


class CountsOnly(TranscriptBuilder):
    """A builder that keeps no transcript, for connections whose flights nobody will read
    (`sipsim serve`'s side of a connection: it writes no report). It keeps what failure reasons
    need — bytes seen each way and the first bytes received (not TLS? plaintext SIP?) — and
    none of the per-record and per-state work: flights are always empty."""

    __slots__ = ()

    def begin_call(self) -> None:
        pass

    def on_state_key(self, key, state: str) -> None:
        pass

    def on_alert(self, direction: str, level: int, desc: int) -> None:
        pass

    def on_wire(self, direction: str, data: bytes) -> None:
        if data:
            (self._sent if direction == SENT else self._received).count(data)

    def resolve_received(self, consumed: int) -> None:
        pass

    def finish(self) -> None:
        pass

    def pack(self) -> None:
        pass

    @property
    def flights(self) -> list[Flight]:
        return []

    @property
    def truncated(self) -> bool:
        return False

    def seen(self, direction: str, name: str) -> bool:
        return False


def _same_message(queued: str, parsed: str) -> bool:
    """A name from OpenSSL's callback and one parsed from the wire mean the same message."""
    return queued == parsed or (parsed == "Hello Retry Request" and queued == "Server Hello")


class _Side:
    __slots__ = ("direction", "total", "queue", "pending", "seen", "consumed", "late")

    def __init__(self, direction: str):
        self.direction = direction
        self.total = 0
        self.consumed = 0                   # received: bytes OpenSSL has consumed so far
        self.late: list[str] = []           # received cleartext messages named from the wire
                                            # before OpenSSL reported them (their name is dropped)
        self.queue: list[str] = []          # names from OpenSSL's info callback
        self.pending: list[tuple] = []      # (record fact, flight) not yet named
        self.seen: list[str] = []           # every message named so far, in order


class _Namer:
    """Names records and builds flights from the builder's log (Wireshark's names)."""

    __slots__ = ("max_flights", "flights", "truncated", "handshake_done", "sides")

    def __init__(self, max_flights: int):
        self.max_flights = max_flights
        self.flights: list[Flight] = []
        self.truncated = False
        self.handshake_done = False
        self.sides = {SENT: _Side(SENT), RECEIVED: _Side(RECEIVED)}

    def replay(self, log: list) -> None:
        sides = self.sides
        for ev in log:
            if ev.__class__ is int:
                if ev >= 0:
                    s = sides[RECEIVED]
                    s.consumed = ev
                    self._resolve(s, ev)
                elif ev == _HS_DONE:
                    s = sides[RECEIVED]      # records still waiting for a name are handshake records
                    self._resolve(s, s.consumed, drain=True)
                    self.handshake_done = True
                else:                                   # _FINISH
                    for s in sides.values():
                        self._resolve(s, s.total, final=True)
            elif ev.__class__ is tuple:
                k = len(ev)
                if k == 2:
                    s = sides[ev[0]]
                    if s.late and _same_message(ev[1], s.late[0]):
                        del s.late[0]        # its record was named from the wire already
                    else:
                        s.queue.append(ev[1])
                elif k == 4:
                    self._wire(*ev)
                else:
                    sides[ev[0]].queue.append(alert_message(ev[1], ev[2]))

    def _wire(self, direction: str, n: int, t, item) -> None:
        flight = self._flight_for(direction, n, t)
        s = self.sides[direction]
        s.total += n
        if item.__class__ is str:          # not TLS
            if flight is not None and not flight.messages:
                flight.messages.append(item)
                flight.encrypted_messages.append(False)
            return
        for fact in item:
            if fact.__class__ is str:      # _MALFORMED (a str after marshal: compare by class)
                if flight is not None:
                    flight.messages.append(_MALFORMED)
                    flight.encrypted_messages.append(False)
            else:
                s.pending.append((fact, flight))
        if direction == SENT:
            self._resolve(s, s.total)

    def _flight_for(self, direction: str, nbytes: int, t) -> Flight | None:
        flights = self.flights
        if flights and flights[-1].direction == direction:
            f = flights[-1]
            f.nbytes += nbytes
            return f
        if len(flights) >= self.max_flights:
            self.truncated = True
            return None
        f = Flight(direction=direction, t_ms=t, nbytes=nbytes)
        flights.append(f)
        return f

    @staticmethod
    def _align_in(queue: list, name: str) -> bool:
        # A cleartext message was parsed from the wire: drop its callback name (and anything stale
        # before it) from the queue; False when OpenSSL has not reported it yet.
        for i, queued in enumerate(queue):
            if _same_message(queued, name):
                del queue[:i + 1]
                return True
        return False

    def _resolve(self, s: _Side, upto: int, final: bool = False, drain: bool = False) -> None:
        pending = s.pending
        k = 0
        while k < len(pending) and pending[k][0][1] <= upto:
            k += 1
        if final:
            k = len(pending)
        elif not drain and not self.handshake_done and s.direction == RECEIVED:
            # OpenSSL reports the state of a message it has read when it reads the next message's
            # header (or turns to writing), so a record consumed at the end of what had arrived may
            # have no name yet: an encrypted record waits (with those after it) while none is queued
            queue = list(s.queue)          # what naming the batch would take from the queue
            for i in range(k):
                names = pending[i][0][3]
                if names is not None:
                    for n in names:
                        self._align_in(queue, n)
                elif queue:
                    del queue[0]
                else:
                    k = i
                    break
        if not k:
            return
        batch = pending[:k]
        del pending[:k]
        queue = s.queue
        last_named = None
        for fact, flight in batch:
            ctype, _end, encrypted, names = fact
            if names is not None:
                for n in names:
                    if not self._align_in(s.queue, n) and s.direction == RECEIVED and len(s.late) < 16:
                        s.late.append(n)     # OpenSSL reports it when it reads the next header
                self._emit(s, flight, names, encrypted)
                continue
            if queue:
                names = [queue.pop(0)]
                last_named = flight
            elif ctype == 23 and self.handshake_done:
                names = ["Application Data"]
            elif ctype == 21:
                names = ["Encrypted Alert"]
            else:
                names = ["Encrypted Handshake Message"]
            self._emit(s, flight, names, True)
        # Every callback name now belongs to a record of this batch (or before): names left over
        # mean several messages shared the last encrypted record.
        if last_named is not None and queue:
            self._emit(s, last_named, list(queue), True)
        queue.clear()

    @staticmethod
    def _emit(s: _Side, f: Flight | None, names, encrypted: bool) -> None:
        s.seen.extend(names)
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
