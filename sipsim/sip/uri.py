"""SIP URIs (RFC 3261 §19.1): ``sip:user:password@host:port;params?headers``.

Parsing is lenient about the user part (RFC 4475 "intmeth" puts almost every character there)
and strict about what we rely on: a scheme, a host and a numeric port.
"""

from __future__ import annotations

from dataclasses import dataclass, field

__all__ = ["SipUri", "parse_uri", "split_hostport"]


@dataclass(slots=True)
class SipUri:
    """A parsed ``sip:``/``sips:``/``tel:`` URI; ``str()`` gives it back in canonical form."""

    scheme: str
    user: str | None
    host: str
    port: int | None = None
    params: dict[str, str | None] = field(default_factory=dict)
    headers: str = ""
    password: str | None = None

    @property
    def hostport(self) -> str:
        """``host`` or ``host:port`` (IPv6 hosts keep their brackets)."""
        return self.host if self.port is None else f"{self.host}:{self.port}"

    def __str__(self) -> str:
        out = [self.scheme, ":"]
        if self.user is not None:
            out.append(self.user)
            if self.password is not None:
                out += [":", self.password]
            out.append("@")
        out.append(self.hostport)
        for name, value in self.params.items():
            out.append(f";{name}" if value is None else f";{name}={value}")
        if self.headers:
            out += ["?", self.headers]
        return "".join(out)


_BAD_HOST = frozenset(" \t<>\"@;,")


def split_hostport(text: str) -> tuple[str, int | None]:
    """``"host:5061"`` → ``("host", 5061)``; ``"[::1]:5061"`` keeps the brackets. Raises ValueError."""
    text = text.strip()
    if text.startswith("["):
        end = text.find("]")
        if end < 0:
            raise ValueError(f"unterminated IPv6 reference in {text!r}")
        host, rest = text[: end + 1], text[end + 1 :]
        if not rest:
            return host, None
        if not rest.startswith(":"):
            raise ValueError(f"unexpected text after IPv6 host in {text!r}")
        port_text = rest[1:]
    else:
        host, sep, port_text = text.partition(":")
        if not sep:
            port_text = ""
        elif not port_text:
            raise ValueError(f"empty port in {text!r}")
    if not host or not _BAD_HOST.isdisjoint(host):
        raise ValueError(f"bad host in {text!r}")
    if not port_text:
        return host, None
    if not port_text.isdigit() or len(port_text) > 5 or int(port_text) > 65535:
        raise ValueError(f"bad port in {text!r}")
    return host, int(port_text)


def parse_uri(text: str) -> SipUri:
    """Parse a SIP/SIPS/TEL URI. Raises ValueError with a short description."""
    text = text.strip()
    scheme, sep, rest = text.partition(":")
    if not sep or not scheme or not scheme.isalpha():
        raise ValueError(f"URI {text!r} has no scheme")
    scheme = scheme.lower()
    if scheme == "tel":
        number, _, ptext = rest.partition(";")
        return SipUri(scheme, number, "", None, _uri_params(ptext))
    user = password = None
    at = rest.rfind("@")
    if at >= 0:
        userinfo, rest = rest[:at], rest[at + 1 :]
        user, psep, pw = userinfo.partition(":")
        password = pw if psep else None
    rest, _, headers = rest.partition("?")
    hostport, _, ptext = rest.partition(";")
    host, port = split_hostport(hostport)
    return SipUri(scheme, user, host, port, _uri_params(ptext), headers, password)


def _uri_params(text: str) -> dict[str, str | None]:
    params: dict[str, str | None] = {}
    if not text:
        return params
    for part in text.split(";"):
        name, eq, value = part.partition("=")
        name = name.strip()
        if not name:
            raise ValueError("empty URI parameter")
        params[name.lower()] = value.strip() if eq else None
    return params
