"""SIP message parser (RFC 3261 §7) for stream transports, h11 style: feed bytes, pull messages.

Framing: the header block ends at the first empty line; the body is exactly Content-Length
octets. On a stream (TLS/TCP) Content-Length is mandatory (RFC 3261 §18.3), so a missing one is
the error ``missing_content_length``.

Errors come in two kinds, both :class:`SipParseError`:

* *framing* errors (``fatal=True``): limits exceeded, missing/bad Content-Length. The reader no
  longer knows where the next message starts; it keeps raising until :meth:`MessageReader.reset`
  (the runtime normally closes the connection).
* *message* errors (``fatal=False``): bad start line, bad header, missing mandatory header, bad
  CSeq or Via. The bad message has been consumed and the reader carries on with the next one.

Every error carries what could be parsed (``start_line``, ``partial_headers``) so that a 400 can
be answered with the right Via/From/To/Call-ID/CSeq (see :attr:`SipParseError.can_respond`).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from .headers import _NAME_ADDR_MEMO, _VIA_MEMO, parsed_name_addr, parsed_via
from .message import Headers, Message, Request, Response, _name_key

__all__ = [
    "Limits",
    "SipParseError",
    "MessageTooLarge",
    "LineTooLong",
    "TooManyHeaders",
    "MessageReader",
    "parse_message",
    "MANDATORY_HEADERS",
]

MANDATORY_HEADERS = ("Via", "From", "To", "Call-ID", "CSeq")
_MANDATORY_KEYS = tuple((name, name.lower()) for name in MANDATORY_HEADERS)
#: the usual start lines and CSeq, matched at once (anything else takes the checks one by one)
_REQUEST_LINE = re.compile(r"([A-Z]+) (sip:[^ ]*) SIP/2\.0")
_STATUS_LINE = re.compile(r"SIP/2\.0 ([1-6][0-9][0-9])(?: (.*))?", re.DOTALL)
_CSEQ = re.compile(r"([0-9]+) ([A-Za-z]+)")
#: CSeq value → (number, method) for values ``_CSEQ`` accepted (bounded: cleared when full)
_CSEQS: dict[str, tuple[int, str]] = {}
#: methods known to be tokens (others are checked character by character)
_METHODS = frozenset({"INVITE", "ACK", "BYE", "CANCEL", "OPTIONS", "INFO", "REGISTER", "PRACK", "UPDATE",
                      "SUBSCRIBE", "NOTIFY", "REFER", "MESSAGE", "PUBLISH"})
_TOKEN_SEPARATORS = frozenset('()<>@,;:\\"/[]?={} \t\r\n')
_MAX_CSEQ = 2**31  # RFC 3261 §8.1.1.5: the sequence number MUST be less than 2**31


@dataclass(frozen=True, slots=True)
class Limits:
    """Bounds on what the parser accepts from a peer."""

    max_message_bytes: int = 65536
    max_line_bytes: int = 8192
    max_headers: int = 256


class SipParseError(Exception):
    """A message that cannot be accepted. ``reason`` is a stable code, ``status`` the SIP answer."""

    def __init__(
        self,
        reason: str,
        detail: str,
        status: int = 400,
        *,
        start_line: str | None = None,
        partial_headers: Headers | None = None,
        fatal: bool = False,
    ):
        super().__init__(reason, detail, status)
        self.reason = reason
        self.detail = detail
        self.status = status
        self.start_line = start_line
        self.partial_headers = partial_headers
        self.fatal = fatal

    def __str__(self) -> str:
        return f"Malformed SIP message ({self.reason}): {self.detail}."

    @property
    def is_request(self) -> bool:
        """True when the start line looks like a request (not ``SIP/...``)."""
        return bool(self.start_line) and not self.start_line.upper().startswith("SIP/")

    @property
    def can_respond(self) -> bool:
        """A request whose Via, From, To, Call-ID and CSeq were all read: a 4xx can be built."""
        h = self.partial_headers
        return self.is_request and h is not None and all(n in h for n in MANDATORY_HEADERS)


class MessageTooLarge(SipParseError):
    def __init__(self, detail: str, **kw):
        super().__init__("message_too_large", detail, 413, **kw)


class LineTooLong(SipParseError):
    def __init__(self, detail: str, **kw):
        super().__init__("line_too_long", detail, 400, **kw)


class TooManyHeaders(SipParseError):
    def __init__(self, detail: str, **kw):
        super().__init__("too_many_headers", detail, 400, **kw)


def _parse_head(block: bytes | bytearray, limits: Limits) -> tuple[str, Headers, SipParseError | None]:
    """Start line and header fields of a header block (without the final empty line).

    Limit violations raise at once (fatal). Syntax problems are returned as the third element so
    the caller can still frame the message with Content-Length and consume it.
    """
    if len(block) > limits.max_line_bytes:
        for n, raw in enumerate(block.split(b"\r\n")):
            if len(raw) > limits.max_line_bytes:
                what = "the start line" if n == 0 else f"header line {n}"
                raise LineTooLong(
                    f"{what} is {len(raw)} bytes, over the limit of {limits.max_line_bytes}",
                    fatal=True,
                )
    text = block.decode("utf-8", "surrogateescape")
    lines = text.split("\r\n")
    if len(lines) <= limits.max_headers + 1:
        # Fast path: no more fields than allowed. Whole header lines repeat from message to message
        # (Max-Forwards, Supported, CSeq, Contact...), so each line maps to its parsed field through
        # one dict; a line not seen before is split here, and anything unusual goes to the general
        # loop below, which produces the errors. A folded line (starting with SP or HTAB) is never
        # in the caches (cached lines start with a valid field name) and _new_line refuses it, so
        # folding always takes the general loop.
        fields_in = lines[1:]
        keys = list(map(_LINE_KEYS.get, fields_in))
        fields = list(map(_LINES.get, fields_in))  # both caches are filled and cleared together
        if None in keys:  # a line not seen before
            for i, key in enumerate(keys):
                if key is None:
                    hit = _new_line(fields_in[i])
                    if hit is None:
                        return _parse_head_slow(lines, limits)
                    keys[i], fields[i] = hit
        headers = Headers.__new__(Headers)
        headers._keys = keys
        headers._fields = fields
        return lines[0], headers, None
    return _parse_head_slow(lines, limits)


#: raw field name (as received, before the colon) → (key, canonical name), for valid names only
_FIELD_NAMES: dict[str, tuple[str, str]] = {}
#: whole header line → (canonical name, value), for well-formed lines (bounded: cleared when full), and
#: the same line → its key; both are filled and cleared together
_LINES: dict[str, tuple[str, str]] = {}
_LINE_KEYS: dict[str, str] = {}
_LINES_MAX = 2048
_CACHED_LINE_MAX = 256


def _new_line(line: str) -> tuple[str, tuple[str, str]] | None:
    """Split and validate one unfolded header line; None when it is not ``Name: value``."""
    raw, colon, value = line.partition(":")
    if not colon:
        return None
    hit = _FIELD_NAMES.get(raw) or _field_name(raw)
    if hit is None:
        return None
    field = (hit[1], value.strip(" \t"))
    if len(line) <= _CACHED_LINE_MAX:  # long lines are not kept (a peer could fill memory with them)
        if len(_LINES) >= _LINES_MAX:
            _LINES.clear()
            _LINE_KEYS.clear()
        _LINES[line] = field
        _LINE_KEYS[line] = hit[0]
    return hit[0], field


def _field_name(raw: str) -> tuple[str, str] | None:
    """Validate and normalise a raw field name; None when it is not a token (the slow path says why)."""
    cand = raw.rstrip(" \t")
    if not cand or not _TOKEN_SEPARATORS.isdisjoint(cand):
        return None
    hit = _name_key(cand)
    if len(_FIELD_NAMES) < 4096 and len(raw) <= 64:
        _FIELD_NAMES[raw] = hit
    return hit


def _parse_head_slow(lines: list[str], limits: Limits) -> tuple[str, Headers, SipParseError | None]:
    """The general loop: folded lines, bad field names (reported), too many fields (raised)."""
    start = lines[0]
    headers = Headers()
    error: SipParseError | None = None
    name: str | None = None
    parts: list[str] = []
    count = 0
    for line in lines[1:]:
        if line[:1] in (" ", "\t"):
            if name is None:
                if error is None:
                    error = SipParseError("bad_header", "the first header line starts with whitespace")
                continue
            parts.append(line.strip(" \t"))
            continue
        if name is not None:
            headers.add(name, " ".join(p for p in parts if p))
            name = None
        colon = line.find(":")
        cand = line[:colon].rstrip(" \t") if colon > 0 else ""
        if not cand or not _TOKEN_SEPARATORS.isdisjoint(cand):
            if error is None:
                error = SipParseError("bad_header", f"header line {line[:60]!r} is not 'Name: value'")
            continue
        count += 1
        if count > limits.max_headers:
            raise TooManyHeaders(
                f"the message has more than {limits.max_headers} header fields",
                start_line=start,
                partial_headers=headers,
                fatal=True,
            )
        name = cand
        parts = [line[colon + 1 :].strip(" \t")]
    if name is not None:
        headers.add(name, " ".join(p for p in parts if p))
    return start, headers, error


def _content_length(headers: Headers, start: str) -> int | None:
    keys = headers._keys
    n = keys.count("content-length")
    if n == 0:
        return None
    if n == 1:
        text = headers._fields[keys.index("content-length")][1].strip()
        if text.isdigit() and text.isascii():
            return int(text)
        texts = {text}
    else:
        texts = {v.strip() for v in headers.get_all("Content-Length")}
    if len(texts) > 1:
        raise SipParseError(
            "bad_content_length",
            f"the message has conflicting Content-Length values {sorted(texts)}",
            start_line=start, partial_headers=headers, fatal=True,
        )
    text = texts.pop()
    if not text.isdigit() or not text.isascii():
        raise SipParseError(
            "bad_content_length",
            f"Content-Length {text!r} is not a non-negative integer",
            start_line=start, partial_headers=headers, fatal=True,
        )
    return int(text)


def _fail(start: str, headers: Headers, reason: str, detail: str, status: int = 400) -> SipParseError:
    return SipParseError(reason, detail, status, start_line=start, partial_headers=headers)


#: start line → (is a request, method | status, Request-URI | reason) for lines the regexes accepted
_STARTS: dict[str, tuple[bool, object, str]] = {}


def _remember_start(start: str, entry: tuple[bool, object, str]) -> None:
    if len(start) <= 256:  # bounded memory whatever a peer sends
        if len(_STARTS) >= 1024:
            _STARTS.clear()
        _STARTS[start] = entry


def _build(start: str, headers: Headers, body: bytes) -> Message:
    """Validate start line and mandatory headers; return the message or raise (non-fatal)."""

    hit = _STARTS.get(start)  # start lines repeat (the same Request-URI, the same statuses)
    if hit is not None:
        request = hit[0]
        msg: Message = Request(hit[1], hit[2], headers, body) if request else Response(hit[1], hit[2], headers, body)
    elif (m := _REQUEST_LINE.fullmatch(start)) is not None and m[1] in _METHODS:  # every check below holds
        request = True
        msg = Request(m[1], m[2], headers, body)
        _remember_start(start, (True, m[1], m[2]))
    elif (m := _STATUS_LINE.fullmatch(start)) is not None:  # the usual status line
        request = False
        msg = Response(int(m[1]), m[2] or "", headers, body)
        _remember_start(start, (False, msg.status, msg.reason))
    elif request := start[:4].upper() != "SIP/":
        bits = start.split(" ")
        if len(bits) != 3 or not all(bits):
            raise _fail(start, headers, "bad_start_line", f"request line {start[:80]!r} is not 'METHOD URI SIP/2.0'")
        method, uri, version = bits
        if method not in _METHODS and (not _TOKEN_SEPARATORS.isdisjoint(method) or not method.isascii()):
            raise _fail(start, headers, "bad_start_line", f"method {method[:40]!r} is not a token")
        if not uri.startswith("sip:"):
            scheme, colon, _ = uri.partition(":")
            if not colon or not scheme.isalpha() or not scheme.isascii():
                raise _fail(start, headers, "bad_request_uri", f"Request-URI {uri[:80]!r} has no scheme")
        if version != "SIP/2.0" and version.upper() != "SIP/2.0":
            if version.upper().startswith("SIP/"):
                raise _fail(start, headers, "bad_version", f"SIP version {version[:20]!r} is not supported", 505)
            raise _fail(start, headers, "bad_start_line", f"request line {start[:80]!r} does not end in SIP/2.0")
        msg = Request(method, uri, headers, body)
    else:
        bits = start.split(" ", 2)
        if bits[0] != "SIP/2.0" and bits[0].upper() != "SIP/2.0":
            raise _fail(start, headers, "bad_version", f"status line version {bits[0][:20]!r} is not SIP/2.0", 505)
        code = bits[1] if len(bits) > 1 else ""
        if len(code) != 3 or not code.isdigit() or not code.isascii() or not 100 <= int(code) <= 699:
            raise _fail(start, headers, "bad_start_line", f"status line {start[:80]!r} has no 3-digit status code")
        msg = Response(int(code), bits[2] if len(bits) > 2 else "", headers, body)
    keys = headers._keys
    fields = headers._fields
    if not ("via" in keys and "from" in keys and "to" in keys and "call-id" in keys and "cseq" in keys):
        for name, key in _MANDATORY_KEYS:
            if key not in keys:
                raise _fail(start, headers, "missing_header", f"the message has no {name} header")
    cseq = fields[keys.index("cseq")][1]
    if (cseq_hit := _CSEQS.get(cseq)) is not None:  # CSeq values repeat call after call
        number, cmethod = cseq_hit
    elif (m := _CSEQ.fullmatch(cseq)) is not None and len(m[1]) < 10:  # "101 INVITE": below 2**31, a token
        number, cmethod = int(m[1]), m[2]
        if len(cseq) <= 64:  # bounded memory whatever a peer sends
            if len(_CSEQS) >= 1024:
                _CSEQS.clear()
            _CSEQS[cseq] = (number, cmethod)
    else:
        cbits = cseq.split()
        if (
            len(cbits) != 2
            or not cbits[0].isdigit()
            or not cbits[0].isascii()
            or int(cbits[0]) >= _MAX_CSEQ
            or not _TOKEN_SEPARATORS.isdisjoint(cbits[1])
        ):
            raise _fail(start, headers, "bad_cseq", f"CSeq {cseq[:60]!r} is not 'number METHOD' with number < 2**31")
        number, cmethod = int(cbits[0]), cbits[1]
    if request and cmethod != msg.method:
        raise _fail(start, headers, "bad_cseq", f"CSeq method {cmethod!r} does not match request method {msg.method!r}")
    # What was validated is kept on the message (Message.parsed_header, .cseq).
    parsed: dict[str, tuple] = {"CSeq": (cseq, cseq_hit or (number, cmethod))}
    try:
        if keys.count("via") == 1 and "," not in (via := fields[keys.index("via")][1]):
            parsed["Via"] = (via, _VIA_MEMO.get(via) or parsed_via(via))  # one Via field, one value
        else:
            first = True
            for via in headers.get_all("Via"):
                top = parsed_via(via)
                if first:
                    parsed["Via"] = (via, top)
                    first = False
    except ValueError as e:
        raise _fail(start, headers, "bad_via", f"a Via header is malformed ({e})") from None
    name = "From"
    try:
        value = fields[keys.index("from")][1]
        parsed["From"] = (value, _NAME_ADDR_MEMO.get(value) or parsed_name_addr(value))
        name = "To"
        value = fields[keys.index("to")][1]
        parsed["To"] = (value, _NAME_ADDR_MEMO.get(value) or parsed_name_addr(value))
    except ValueError as e:
        raise _fail(start, headers, "bad_header", f"the {name} header is malformed ({e})") from None
    msg._parsed = parsed
    return msg


class MessageReader:
    """Incremental SIP parser for one stream connection (``.feed`` bytes, ``.next_message()``)."""

    __slots__ = ("limits", "keepalives", "_buf", "_scan", "_pending", "_error")

    def __init__(self, limits: Limits | None = None):
        self.limits = limits or Limits()
        self.keepalives = 0  #: number of CRLFs skipped between messages (RFC 5626 ping = 2)
        self._buf = bytearray()
        self._scan = 0
        self._pending: tuple[str, Headers, SipParseError | None, int, int] | None = None
        self._error: SipParseError | None = None

    def feed(self, data: bytes) -> None:
        """Append received bytes."""
        self._buf += data

    def reset(self) -> None:
        """Drop buffered bytes and any framing error; start afresh."""
        self._buf.clear()
        self._scan = 0
        self._pending = None
        self._error = None

    @property
    def buffered(self) -> int:
        """Bytes received but not yet returned as a message."""
        return len(self._buf)

    def next_message(self) -> Message | None:
        """The next complete message, or None if more bytes are needed. Raises SipParseError."""
        if self._error is not None:
            raise self._error
        buf = self._buf
        if not buf:  # e.g. the usual second call after a message: nothing buffered
            return None
        try:
            limits = self.limits
            if self._pending is None:
                if buf.startswith(b"\r\n"):
                    i = 2
                    while buf.startswith(b"\r\n", i):
                        i += 2
                    self.keepalives += i // 2
                    del buf[:i]
                    self._scan = 0
                end = buf.find(b"\r\n\r\n", self._scan)
                if end < 0:
                    self._check_incomplete()
                    self._scan = max(0, len(buf) - 3)
                    return None
                self._scan = 0
                head_len = end + 4
                if head_len > limits.max_message_bytes:
                    raise MessageTooLarge(
                        f"the header block is {head_len} bytes, over the limit of {limits.max_message_bytes}",
                        fatal=True,
                    )
                start, headers, error = _parse_head(buf[:end], limits)
                keys = headers._keys
                if keys.count("content-length") == 1 and (
                    text := headers._fields[keys.index("content-length")][1]
                ).isdigit() and text.isascii():
                    length = int(text)  # the usual case; _content_length has the general rules
                else:
                    length = _content_length(headers, start)
                if length is None:
                    raise SipParseError(
                        "missing_content_length",
                        "a message on a stream transport must carry Content-Length (RFC 3261 18.3)",
                        start_line=start, partial_headers=headers, fatal=True,
                    )
                if head_len + length > limits.max_message_bytes:
                    raise MessageTooLarge(
                        f"Content-Length {length} makes the message larger than {limits.max_message_bytes} bytes",
                        start_line=start, partial_headers=headers, fatal=True,
                    )
                total = head_len + length
                if len(buf) < total:  # the body is still on its way
                    self._pending = (start, headers, error, head_len, length)
                    return None
            else:
                start, headers, error, head_len, length = self._pending
                total = head_len + length
                if len(buf) < total:
                    return None
                self._pending = None
            body = bytes(buf[head_len:total]) if length else b""
            del buf[:total]
            if error is not None:
                error.start_line = start
                error.partial_headers = headers
                raise error
            return _build(start, headers, body)
        except SipParseError as e:
            if e.fatal:
                self._error = e
            raise

    def _check_incomplete(self) -> None:
        buf, limits = self._buf, self.limits
        if len(buf) > limits.max_message_bytes:
            raise MessageTooLarge(
                f"no end of headers within {limits.max_message_bytes} bytes", fatal=True
            )
        if len(buf) > limits.max_line_bytes:
            last = buf.rfind(b"\r\n")
            if len(buf) - (last + 2 if last >= 0 else 0) > limits.max_line_bytes:
                raise LineTooLong(
                    f"a line is longer than the limit of {limits.max_line_bytes} bytes", fatal=True
                )


def parse_message(data: bytes, limits: Limits | None = None) -> Message:
    """Parse one complete message (e.g. a datagram or a test vector).

    Content-Length is optional here (the body is the rest); if present it must not exceed the
    bytes available, and octets beyond it are ignored (RFC 3261 §18.3).
    """
    limits = limits or Limits()
    if len(data) > limits.max_message_bytes:
        raise MessageTooLarge(f"the message is {len(data)} bytes, over the limit of {limits.max_message_bytes}")
    data = data.lstrip(b"\r\n")
    end = data.find(b"\r\n\r\n")
    if end < 0:
        block, rest = (data[:-2] if data.endswith(b"\r\n") else data), b""
    else:
        block, rest = data[:end], data[end + 4 :]
    start, headers, error = _parse_head(block, limits)
    if error is not None:
        error.start_line, error.partial_headers = start, headers
        raise error
    length = _content_length(headers, start)
    if length is not None:
        if length > len(rest):
            raise SipParseError(
                "bad_content_length",
                f"Content-Length {length} is larger than the {len(rest)} body bytes present",
                start_line=start, partial_headers=headers,
            )
        rest = rest[:length]
    return _build(start, headers, rest)
