"""What a ClientHello on the wire offers, read before OpenSSL processes it.

A server decides one thing from it: whether this connection will be TLS 1.3, so that its
NewSessionTickets can be *stateful* (see `TLSStream.do_handshake`). OpenSSL chooses the highest
version both sides allow, and a TLS 1.3 client says so in its ``supported_versions`` extension
(RFC 8446 §4.2.1); the legacy version field says 1.2 for every TLS 1.3 client.
"""

from __future__ import annotations

__all__ = ["offers_tls13"]

_HANDSHAKE = 22
_CLIENT_HELLO = 1
_SUPPORTED_VERSIONS = 43
_TLS13 = b"\x03\x04"


def offers_tls13(data: bytes) -> bool | None:
    """Whether ``data``, the first bytes a client sent, is a ClientHello whose supported_versions
    extension lists TLS 1.3: True or False once the whole ClientHello is in ``data``; None while
    it is not yet (a ClientHello larger than a TCP segment arrives in pieces: read more). False as
    soon as the bytes cannot be one in a single record (another record type, a ClientHello split
    across records): the caller then keeps its default."""
    n = len(data)
    if n == 0:
        return None
    if data[0] != _HANDSHAKE or (n > 5 and data[5] != _CLIENT_HELLO):
        return False
    if n < 9:
        return None
    record_end = 5 + int.from_bytes(data[3:5], "big")
    body_end = 9 + int.from_bytes(data[6:9], "big")          # the ClientHello's end
    if body_end > record_end:
        return False
    if n < body_end:
        return None
    i = 9 + 2 + 32                                              # legacy_version, random
    if i >= body_end:
        return False
    i += 1 + data[i]                                            # legacy_session_id
    if i + 2 > body_end:
        return False
    i += 2 + int.from_bytes(data[i:i + 2], "big")               # cipher_suites
    if i >= body_end:
        return False
    i += 1 + data[i]                                            # legacy_compression_methods
    if i + 2 > body_end:
        return False
    ext_end = min(body_end, i + 2 + int.from_bytes(data[i:i + 2], "big"))
    i += 2
    while i + 4 <= ext_end:
        ext_type = int.from_bytes(data[i:i + 2], "big")
        ext_len = int.from_bytes(data[i + 2:i + 4], "big")
        i += 4
        if ext_type == _SUPPORTED_VERSIONS:
            if i >= ext_end:
                return False
            stop = min(i + 1 + data[i], i + ext_len, ext_end)
            for j in range(i + 1, stop - 1, 2):
                if data[j:j + 2] == _TLS13:
                    return True
            return False
        i += ext_len
    return False
