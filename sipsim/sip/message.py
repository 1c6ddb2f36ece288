"""SIP messages: an ordered case-insensitive header multi-map, Request, Response and serialise()."""

from __future__ import annotations

from collections.abc import Iterable, Iterator

from .headers import parse_name_addr, parsed_name_addr, parsed_via, split_commas

__all__ = ["COMPACT_FORMS", "Headers", "Request", "Response", "Message", "serialise", "canonical_name"]

#: RFC 3261 §7.3.3 / IANA compact header forms → full names.
COMPACT_FORMS: dict[str, str] = {
    "i": "Call-ID",
    "m": "Contact",
    "f": "From",
    "t": "To",
    "v": "Via",
    "l": "Content-Length",
    "c": "Content-Type",
    "k": "Supported",
    "s": "Subject",
    "e": "Content-Encoding",
    "o": "Event",
    "r": "Refer-To",
    "b": "Referred-By",
    "x": "Session-Expires",
    "u": "Allow-Events",
}

_KNOWN = [
    "Accept", "Accept-Encoding", "Accept-Language", "Alert-Info", "Allow", "Allow-Events",
    "Authorization", "Call-ID", "Call-Info", "Contact", "Content-Disposition", "Content-Encoding",
    "Content-Language", "Content-Length", "Content-Type", "CSeq", "Date", "Error-Info", "Event",
    "Expires", "From", "In-Reply-To", "Max-Forwards", "Min-Expires", "Min-SE", "MIME-Version",
    "Organization", "P-Asserted-Identity", "P-Preferred-Identity", "Priority", "Privacy",
    "Proxy-Authenticate", "Proxy-Authorization", "Proxy-Require", "RAck", "Reason", "Record-Route",
    "Refer-To", "Referred-By", "Remote-Party-ID", "Replaces", "Reply-To", "Require", "Retry-After",
    "Route", "RSeq", "Server", "Session-Expires", "Subject", "Supported", "Timestamp", "To",
    "Unsupported", "User-Agent", "Via", "Warning", "WWW-Authenticate",
]
_CANONICAL: dict[str, str] = {n.lower(): n for n in _KNOWN}
for _short, _full in COMPACT_FORMS.items():
    _CANONICAL[_short] = _full

#: Headers whose values are comma-separated lists (RFC 3261 §7.3.1); ``get_all`` splits them.
MULTI_VALUE = frozenset(
    n.lower()
    for n in (
        "Via", "Route", "Record-Route", "Contact", "Supported", "Allow", "Require", "Proxy-Require",
        "Unsupported", "Accept", "Accept-Encoding", "Accept-Language", "Allow-Events",
        "Content-Encoding", "Content-Language", "In-Reply-To", "Warning", "Call-Info", "Alert-Info",
        "Error-Info", "Reason", "P-Asserted-Identity",
    )
)


def canonical_name(name: str) -> str:
    """Full, conventionally-cased name: ``"v"``/``"VIA"`` → ``"Via"``; unknown names are kept."""
    return _CANONICAL.get(name.lower(), name)


_NAME_CACHE: dict[str, tuple[str, str]] = {}


def _name_key(name: str) -> tuple[str, str]:
    """``(lower-case key, canonical name)``, memoised (header names repeat endlessly)."""
    hit = _NAME_CACHE.get(name)
    if hit is None:
        full = _CANONICAL.get(name.lower(), name)
        hit = (full.lower(), full)
        if len(_NAME_CACHE) < 4096:
            _NAME_CACHE[name] = hit
    return hit


for _n in (*_KNOWN, *COMPACT_FORMS):  # the usual spellings are never a miss
    _name_key(_n)
    _name_key(_n.lower())


#: canonical name → key, for names that are their own canonical form ("Via" → "via")
_CANON_KEY: dict[str, str] = {full: full.lower() for full in _CANONICAL.values()}


class Headers:
    """Ordered multi-map of header fields with case-insensitive names.

    Compact forms are expanded to full names when added. ``items()`` yields the fields as stored
    (one per header line); ``get_all`` additionally splits comma-separated values of list headers.

    Stored as two parallel lists: ``_keys`` (normalised lower-case names, e.g. ``"call-id"`` for
    ``i``/``CALL-ID``) and ``_fields`` (``(canonical name, value)``), so a lookup is one memoised
    name normalisation plus a C-level ``list.index``.
    """

    __slots__ = ("_keys", "_fields")

    def __init__(self, items: Iterable[tuple[str, str]] = ()):
        self._keys: list[str] = []
        self._fields: list[tuple[str, str]] = []
        if items:
            cache = _NAME_CACHE
            keys, fields = self._keys, self._fields
            for name, value in items:
                hit = cache.get(name) or _name_key(name)
                keys.append(hit[0])
                fields.append((hit[1], value))

    @classmethod
    def _adopt(cls, pairs: list[tuple[str, str]]) -> Headers:
        """From a fresh list of ``(name, value)`` tuples, which is kept (not copied): the SIP core's
        own builders, whose names are nearly always canonical already. Same result as ``Headers(pairs)``."""
        get = _CANON_KEY.get
        keys = [get(name) for name, _ in pairs]
        if None in keys:
            return cls(pairs)
        h = cls.__new__(cls)
        h._keys = keys
        h._fields = pairs
        return h

    @classmethod
    def _make(cls, keys: list[str], fields: list[tuple[str, str]]) -> Headers:
        """Adopt already-normalised lists (the parser's fast path; no copy)."""
        h = cls.__new__(cls)
        h._keys = keys
        h._fields = fields
        return h

    @property
    def _items(self) -> list[tuple[str, str, str]]:
        """``(lower name, name, value)`` per field (the former storage; read-only view)."""
        return [(k, n, v) for k, (n, v) in zip(self._keys, self._fields)]

    def add(self, name: str, value: str) -> None:
        """Append a field (after any existing ones of the same name)."""
        hit = _NAME_CACHE.get(name) or _name_key(name)
        self._keys.append(hit[0])
        self._fields.append((hit[1], value))

    def set(self, name: str, value: str) -> None:
        """Replace every field of that name by one, at the position of the first (or at the end)."""
        key, name = _NAME_CACHE.get(name) or _name_key(name)
        keys: list[str] = []
        fields: list[tuple[str, str]] = []
        placed = False
        for k, f in zip(self._keys, self._fields):
            if k == key:
                if not placed:
                    keys.append(key)
                    fields.append((name, value))
                    placed = True
            else:
                keys.append(k)
                fields.append(f)
        if not placed:
            keys.append(key)
            fields.append((name, value))
        self._keys, self._fields = keys, fields

    def remove(self, name: str) -> None:
        """Remove every field of that name (no error if absent)."""
        key = (_NAME_CACHE.get(name) or _name_key(name))[0]
        if key not in self._keys:
            return
        pairs = [(k, f) for k, f in zip(self._keys, self._fields) if k != key]
        self._keys = [k for k, _ in pairs]
        self._fields = [f for _, f in pairs]

    def get(self, name: str, default: str | None = None) -> str | None:
        """The first value (for list headers such as Via: the first comma-separated element)."""
        v = self._first((_NAME_CACHE.get(name) or _name_key(name))[0])
        return default if v is None else v

    def _first(self, key: str) -> str | None:
        """``get`` by an already-normalised key (``"call-id"``, ``"via"``...)."""
        try:
            v = self._fields[self._keys.index(key)][1]
        except ValueError:
            return None
        if "," in v and key in MULTI_VALUE:
            return split_commas(v)[0]
        return v

    def get_all(self, name: str) -> list[str]:
        """Every value, in order; comma-separated values of list headers are split."""
        key = (_NAME_CACHE.get(name) or _name_key(name))[0]
        keys = self._keys
        if key not in keys:
            return []
        fields = self._fields
        multi = key in MULTI_VALUE
        out: list[str] = []
        for i, k in enumerate(keys):
            if k == key:
                v = fields[i][1]
                if multi and "," in v:
                    out.extend(split_commas(v))
                else:
                    out.append(v)
        return out

    def items(self) -> list[tuple[str, str]]:
        """``(name, value)`` per stored field, in order."""
        return list(self._fields)

    def copy(self) -> Headers:
        return Headers._make(list(self._keys), list(self._fields))

    def __contains__(self, name: object) -> bool:
        if not isinstance(name, str):
            return False
        return (_NAME_CACHE.get(name) or _name_key(name))[0] in self._keys

    def __iter__(self) -> Iterator[tuple[str, str]]:
        return iter(self.items())

    def __len__(self) -> int:
        return len(self._keys)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Headers) and self._fields == other._fields

    def __repr__(self) -> str:
        return f"Headers({self.items()!r})"


class _Common:
    """Accessors shared by Request and Response."""

    __slots__ = ()
    headers: Headers
    body: bytes

    def parsed_header(self, name: str):
        """The first ``Via`` (a :class:`~sipsim.sip.headers.Via`), ``From`` or ``To``
        (:class:`~sipsim.sip.headers.NameAddr`) parsed, or None when absent; raises ValueError.

        Parsed once per value and kept on the message (the parser stores what it validated), so the
        endpoint, transactions and dialogs do not parse the same header again. The result is shared
        (also between messages carrying the same value): read it, do not change it. Changing the
        header's value is seen (the cache is keyed by it)."""
        return self._parsed_first(name, (_NAME_CACHE.get(name) or _name_key(name))[0])

    def _parsed_first(self, name: str, key: str):
        h = self.headers
        try:
            value = h._fields[h._keys.index(key)][1]
        except ValueError:
            return None
        if "," in value and key in MULTI_VALUE:
            value = split_commas(value)[0]
        cache = self._parsed
        if cache is None:
            cache = self._parsed = {}
        else:
            hit = cache.get(name)
            if hit is not None and hit[0] == value:
                return hit[1]
        parsed = parsed_via(value) if name == "Via" else parsed_name_addr(value)
        cache[name] = (value, parsed)
        return parsed

    @property
    def call_id(self) -> str | None:
        h = self.headers
        try:
            return h._fields[h._keys.index("call-id")][1]  # Call-ID is never a list: no split
        except ValueError:
            return None

    @property
    def cseq(self) -> tuple[int, str]:
        """``(number, METHOD)``; raises ValueError when CSeq is missing or malformed."""
        h = self.headers
        try:
            value = h._fields[h._keys.index("cseq")][1]  # CSeq is never a list: no split
        except ValueError:
            raise ValueError("no CSeq header") from None
        cache = self._parsed
        if cache is not None:
            hit = cache.get("CSeq")
            if hit is not None and hit[0] == value:
                return hit[1]
        parts = value.split()
        if len(parts) != 2 or not parts[0].isdigit():
            raise ValueError(f"bad CSeq {value!r}")
        result = (int(parts[0]), parts[1])
        if cache is None:
            cache = self._parsed = {}
        cache["CSeq"] = (value, result)
        return result

    @property
    def from_tag(self) -> str | None:
        try:
            addr = self._parsed_first("From", "from")
        except ValueError:
            return None
        return None if addr is None else addr.params.get("tag")

    @property
    def to_tag(self) -> str | None:
        try:
            addr = self._parsed_first("To", "to")
        except ValueError:
            return None
        return None if addr is None else addr.params.get("tag")

    @property
    def top_via_branch(self) -> str | None:
        try:
            via = self._parsed_first("Via", "via")
        except ValueError:
            return None
        return None if via is None else via.params.get("branch")

    @property
    def first_line(self) -> str:
        raise NotImplementedError


def _tag(value: str | None) -> str | None:
    if value is None:
        return None
    try:
        return parse_name_addr(value).tag
    except ValueError:
        return None


class Request(_Common):
    """A SIP request. ``uri`` is the Request-URI text."""

    __slots__ = ("method", "uri", "headers", "body", "_parsed")

    def __init__(self, method: str, uri: str, headers: Headers | None = None, body: bytes = b""):
        self.method = method
        self.uri = uri
        self.headers = headers if headers is not None else Headers()
        self.body = body
        self._parsed: dict[str, tuple] | None = None  # parsed_header's cache

    @property
    def first_line(self) -> str:
        return f"{self.method} {self.uri} SIP/2.0"

    def __eq__(self, other: object) -> bool:
        return (
            isinstance(other, Request)
            and (self.method, self.uri, self.headers, self.body)
            == (other.method, other.uri, other.headers, other.body)
        )

    def __repr__(self) -> str:
        return f"<Request {self.method} {self.uri} call_id={self.call_id!r}>"


class Response(_Common):
    """A SIP response."""

    __slots__ = ("status", "reason", "headers", "body", "_parsed")

    def __init__(self, status: int, reason: str, headers: Headers | None = None, body: bytes = b""):
        self.status = status
        self.reason = reason
        self.headers = headers if headers is not None else Headers()
        self.body = body
        self._parsed: dict[str, tuple] | None = None  # parsed_header's cache

    @property
    def first_line(self) -> str:
        return f"SIP/2.0 {self.status} {self.reason}"

    def __eq__(self, other: object) -> bool:
        return (
            isinstance(other, Response)
            and (self.status, self.reason, self.headers, self.body)
            == (other.status, other.reason, other.headers, other.body)
        )

    def __repr__(self) -> str:
        return f"<Response {self.status} {self.reason} call_id={self.call_id!r}>"


Message = Request | Response


def serialise(msg: Message, first_line: str | None = None) -> bytes:
    """Wire bytes: start line, headers in order (full names), Content-Length from the body, body.

    Content-Length keeps its position if the headers have one, else it is written last.
    ``first_line``: ``msg.first_line`` when the caller has it already.
    """
    if first_line is None:
        first_line = msg.first_line
    body = msg.body
    headers = msg.headers
    fields = headers._fields
    if fields and "content-length" not in headers._keys:  # the usual case: one C-level join
        try:
            head = "\r\n".join(map(": ".join, fields))
        except TypeError:  # a value that is not a str: formatted as below
            head = "\r\n".join([f"{name}: {value}" for name, value in fields])
        text = f"{first_line}\r\n{head}\r\nContent-Length: {len(body)}\r\n\r\n"
        data = text.encode("utf-8", "surrogateescape")
        return data + body if body else data
    length = f"Content-Length: {len(body)}"
    if "content-length" not in headers._keys:
        lines = [f"{name}: {value}" for name, value in headers._fields]
        lines.append(length)
    else:
        lines = []
        placed = False
        for key, (name, value) in zip(headers._keys, headers._fields):
            if key != "content-length":
                lines.append(f"{name}: {value}")
            elif not placed:  # keep its position; later duplicates are dropped
                lines.append(length)
                placed = True
    text = f"{first_line}\r\n" + "\r\n".join(lines) + "\r\n\r\n"
    data = text.encode("utf-8", "surrogateescape")
    return data + body if body else data
