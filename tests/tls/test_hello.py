"""offers_tls13: a ClientHello read off the wire, before OpenSSL sees it."""

import pytest
from hypothesis import given, strategies as st
from OpenSSL import SSL

from sipsim.tls.hello import offers_tls13

_VERSIONS = {"1.0": SSL.TLS1_VERSION, "1.2": SSL.TLS1_2_VERSION, "1.3": SSL.TLS1_3_VERSION}


def client_hello(min_version: str, max_version: str) -> bytes:
    """The first flight of a real OpenSSL client allowing min…max."""
    ctx = SSL.Context(SSL.TLS_METHOD)
    if min_version == "1.0":
        ctx.set_cipher_list(b"DEFAULT:@SECLEVEL=0")
    ctx.set_min_proto_version(_VERSIONS[min_version])
    ctx.set_max_proto_version(_VERSIONS[max_version])
    conn = SSL.Connection(ctx)
    conn.set_connect_state()
    with pytest.raises(SSL.WantReadError):
        conn.do_handshake()
    return conn.bio_read(65536)


@pytest.mark.parametrize("lo,hi,expected", [
    ("1.2", "1.3", True), ("1.3", "1.3", True), ("1.2", "1.2", False), ("1.0", "1.2", False),
])
def test_a_real_client_hello_says_whether_it_offers_tls13(lo, hi, expected):
    assert offers_tls13(client_hello(lo, hi)) is expected


def test_a_client_hello_not_wholly_received_is_not_read_as_tls13():
    hello = client_hello("1.2", "1.3")
    assert [n for n in range(len(hello)) if offers_tls13(hello[:n])] == []
    assert offers_tls13(hello + b"\x17\x03\x03\x00\x01x")        # more after it: still the hello


def test_anything_but_a_client_hello_is_not_tls13():
    assert not offers_tls13(b"OPTIONS sip:x SIP/2.0\r\n\r\n")
    assert not offers_tls13(b"\x15\x03\x03\x00\x02\x02\x28")      # an alert record


@given(st.binary(max_size=600))
def test_arbitrary_bytes_never_raise(data):
    assert offers_tls13(data) in (True, False)


_HELLO = client_hello("1.2", "1.3")


@given(st.lists(st.tuples(st.integers(0, len(_HELLO) - 1), st.integers(0, 255)), max_size=8))
def test_a_damaged_client_hello_never_raises(edits):
    data = bytearray(_HELLO)
    for at, value in edits:
        data[at] = value
    assert offers_tls13(bytes(data)) in (True, False)
