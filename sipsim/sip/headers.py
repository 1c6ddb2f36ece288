"""Header-value grammar we need: comma lists, ``;params``, name-addr (From/To/Contact/Route) and Via.

All functions take the unfolded header value (a ``str``) and raise ``ValueError`` on bad syntax;
the parser turns that into a :class:`~sipsim.sip.parser.SipParseError`.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from .uri import split_hostport

__all__ = [
    "NameAddr",
    "Via",
    "parse_name_addr",
    "parse_params",
    "parse_via",
    "parsed_name_addr",
    "parsed_via",
    "split_commas",
    "split_params",
    "format_params",
    "MAGIC_COOKIE",
]

MAGIC_COOKIE = "z9hG4bK"  # RFC 3261 §8.1.1.7: branches of RFC 3261 compliant elements start with it


def _scan(text: str, sep: str, strict: bool = True) -> list[str]:
    """Split ``text`` on ``sep`` outside double quotes (with backslash escapes) and ``<...>``.

    An unterminated quoted string raises ValueError if ``strict``, else ends the last part.
    """
    if '"' not in text and "<" not in text:
        return text.split(sep)
    parts: list[str] = []
    start = 0
    quoted = angle = False
    i, n = 0, len(text)
    while i < n:
        c = text[i]
        if quoted:
            if c == "\\":
                i += 1
            elif c == '"':
                quoted = False
        elif c == '"':
            quoted = True
        elif c == "<":
            angle = True
        elif c == ">":
            angle = False
        elif c == sep and not angle:
            parts.append(text[start:i])
            start = i + 1
        i += 1
    if quoted and strict:
        raise ValueError("unterminated quoted string")
    parts.append(text[start:])
    return parts


def split_commas(value: str) -> list[str]:
    """Split a multi-value header (``Via: a, b``) into its values, stripped. Never raises."""
    return [p.strip() for p in _scan(value, ",", strict=False)]


def split_params(value: str) -> tuple[str, list[str]]:
    """``"head ; a=1 ; b"`` → ``("head", ["a=1", "b"])`` (split outside quotes and ``<>``)."""
    parts = _scan(value, ";")
    return parts[0].strip(), parts[1:]


_BAD_PARAM_NAME = frozenset(' \t"<>,')


def parse_params(parts: list[str]) -> dict[str, str | None]:
    """Generic params (RFC 3261 ``generic-param``): names lower-cased, ``name = value`` LWS allowed."""
    params: dict[str, str | None] = {}
    for part in parts:
        name, eq, val = part.partition("=")
        name = name.strip()
        if not name or not _BAD_PARAM_NAME.isdisjoint(name):
            raise ValueError(f"bad parameter {part.strip()!r}")
        if eq:
            val = val.strip()
            if not val:
                raise ValueError(f"parameter {name!r} has an empty value")
            params[name.lower()] = val
        else:
            params[name.lower()] = None
    return params


def format_params(params: dict[str, str | None]) -> str:
    """``{"tag": "x", "lr": None}`` → ``";tag=x;lr"``."""
    return "".join(f";{k}" if v is None else f";{k}={v}" for k, v in params.items())


@dataclass(slots=True)
class NameAddr:
    """``"Display" <uri>;params`` or ``uri;params`` (From, To, Contact, Route, Record-Route)."""

    uri: str
    display: str | None = None
    params: dict[str, str | None] = field(default_factory=dict)

    @property
    def tag(self) -> str | None:
        return self.params.get("tag")

    def __str__(self) -> str:
        disp = f"{self.display} " if self.display else ""
        return f"{disp}<{self.uri}>{format_params(self.params)}"


_TOKEN = r"[A-Za-z0-9\-.!%*_+`'~]+"
_PARAMS = rf"((?:;{_TOKEN}(?:={_TOKEN})?)*)"
#: the usual shape ``<uri>;tag=x`` (no display name, no quotes, token parameters): one match
_NAME_ADDR_FAST = re.compile(rf'<([^<>"\s]+)>{_PARAMS}')
#: the commonest of all: ``<uri>`` alone or with exactly ``;tag=x``
_NAME_ADDR_TAG = re.compile(rf'<([^<>"\s]+)>(?:;tag=({_TOKEN}))?')
#: the usual shape ``SIP/2.0/TLS host:port;branch=x`` (host name or IPv4, token parameters)
_VIA_FAST = re.compile(rf"SIP/2\.0/([A-Za-z]+) ([A-Za-z0-9.\-]+)(?::([0-9]{{1,5}}))?{_PARAMS}")
#: the commonest of all: exactly one parameter, ``;branch=x``
_VIA_BRANCH = re.compile(rf"SIP/2\.0/([A-Za-z]+) ([A-Za-z0-9.\-]+)(?::([0-9]{{1,5}}))?;branch=({_TOKEN})")


def _fast_params(text: str) -> dict[str, str | None]:
    """Parameters already matched by ``_PARAMS`` (``;a=1;b``): no whitespace, no empty values."""
    params: dict[str, str | None] = {}
    for part in text[1:].split(";"):
        name, eq, val = part.partition("=")
        params[name.lower()] = val if eq else None
    return params


def parse_name_addr(value: str) -> NameAddr:
    """Parse a From/To/Contact/Route value. Raises ValueError."""
    m = _NAME_ADDR_TAG.fullmatch(value)
    if m is not None and ":" in m[1]:
        tag = m[2]
        return NameAddr(m[1], None, {} if tag is None else {"tag": tag})
    m = _NAME_ADDR_FAST.fullmatch(value)
    if m is not None and ":" in m[1]:
        ptext = m[2]
        return NameAddr(m[1], None, _fast_params(ptext) if ptext else {})
    return _parse_name_addr_slow(value)


def _parse_name_addr_slow(value: str) -> NameAddr:
    """The general grammar (display names, quotes, bare URIs, LWS); the reference for the fast path."""
    value = value.strip()
    lt = _find_unquoted(value, "<")
    if lt >= 0:
        gt = value.find(">", lt)
        if gt < 0:
            raise ValueError("'<' without a closing '>'")
        display = value[:lt].strip() or None
        if display and display.startswith('"') and (len(display) < 2 or not display.endswith('"')):
            raise ValueError("unbalanced quotes in display name")
        uri = value[lt + 1 : gt].strip()
        rest = value[gt + 1 :].strip()
        if rest and not rest.startswith(";"):
            raise ValueError(f"unexpected text {rest!r} after '>'")
        params = parse_params(_scan(rest, ";")[1:]) if rest else {}
    else:
        if '"' in value:
            raise ValueError("a display name needs the URI in '<...>'")
        uri, _, ptext = value.partition(";")
        uri = uri.strip()
        if " " in uri or "\t" in uri:
            raise ValueError(f"URI {uri!r} contains whitespace and is not in '<...>'")
        display = None
        params = parse_params(ptext.split(";")) if ptext else {}
    if ":" not in uri:
        raise ValueError(f"{uri!r} is not a URI")
    return NameAddr(uri, display, params)


def _find_unquoted(text: str, ch: str) -> int:
    if '"' not in text:
        return text.find(ch)
    quoted = False
    i, n = 0, len(text)
    while i < n:
        c = text[i]
        if quoted:
            if c == "\\":
                i += 1
            elif c == '"':
                quoted = False
        elif c == '"':
            quoted = True
        elif c == ch:
            return i
        i += 1
    if quoted:
        raise ValueError("unterminated quoted string")
    return -1


@dataclass(slots=True)
class Via:
    """One Via value: ``SIP/2.0/TLS host:port;branch=z9hG4bK...``."""

    transport: str
    host: str
    port: int | None = None
    params: dict[str, str | None] = field(default_factory=dict)
    protocol: str = "SIP/2.0"

    @property
    def branch(self) -> str | None:
        return self.params.get("branch")

    @property
    def sent_by(self) -> str:
        return self.host if self.port is None else f"{self.host}:{self.port}"

    def __str__(self) -> str:
        return f"{self.protocol}/{self.transport} {self.sent_by}{format_params(self.params)}"


def parse_via(value: str) -> Via:
    """Parse one Via value (LWS around ``/`` and ``;`` and ``=`` allowed, RFC 4475 "wsinv")."""
    m = _VIA_BRANCH.fullmatch(value)
    if m is not None:
        port_text = m[3]
        port = int(port_text) if port_text is not None else None
        if port is None or port <= 65535:
            return Via(m[1].upper(), m[2], port, {"branch": m[4]}, "SIP/2.0")
    m = _VIA_FAST.fullmatch(value)
    if m is not None:
        port_text = m[3]
        port = int(port_text) if port_text is not None else None
        if port is None or port <= 65535:
            ptext = m[4]
            return Via(m[1].upper(), m[2], port, _fast_params(ptext) if ptext else {}, "SIP/2.0")
    return _parse_via_slow(value)


def _parse_via_slow(value: str) -> Via:
    """The general grammar (LWS, IPv6, quoted parameters); the reference for the fast path."""
    head, pparts = split_params(value)
    bits = head.split("/", 2)
    if len(bits) != 3:
        raise ValueError(f"Via {value.strip()!r} has no SIP/2.0/transport")
    name, version = bits[0].strip(), bits[1].strip()
    tail = bits[2].split(None, 1)
    if not name or not version or len(tail) != 2:
        raise ValueError(f"Via {value.strip()!r} has no sent-by host")
    host, port = split_hostport(tail[1])
    params = parse_params(pparts)
    return Via(tail[0].upper(), host, port, params, f"{name.upper()}/{version}")


#: Parsed values shared between messages (see :func:`parsed_via` / :func:`parsed_name_addr`).
_VIA_MEMO: dict[str, Via] = {}
_NAME_ADDR_MEMO: dict[str, NameAddr] = {}
_MEMO_MAX = 1024
_MEMO_VALUE_MAX = 256  # longer values are parsed every time (bounded memory whatever a peer sends)


def parsed_via(value: str) -> Via:
    """:func:`parse_via`, memoised by value: a response carries its request's Via, and a call's
    messages repeat it. The result is shared — read it, never change it. Errors are not kept."""
    hit = _VIA_MEMO.get(value)
    return _remember(_VIA_MEMO, value, parse_via(value)) if hit is None else hit


def parsed_name_addr(value: str) -> NameAddr:
    """:func:`parse_name_addr`, memoised by value (a call's From and To repeat in every message of
    the call). The result is shared — read it, never change it. Errors are not kept."""
    hit = _NAME_ADDR_MEMO.get(value)
    return _remember(_NAME_ADDR_MEMO, value, parse_name_addr(value)) if hit is None else hit


def _remember(memo: dict, value: str, parsed):
    """Keep ``parsed`` for ``value`` in a bounded memo (short values only; the memo is emptied when full)."""
    if len(value) <= _MEMO_VALUE_MAX:
        if len(memo) >= _MEMO_MAX:
            memo.clear()
        memo[value] = parsed
    return parsed
