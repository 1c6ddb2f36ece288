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


@pytest.mark.parametrize("hi", ["1.2", "1.3"])
def test_a_client_hello_not_wholly_received_asks_for_more(hi):
    hello = client_hello("1.2", hi)
    assert {offers_tls13(hello[:n]) for n in range(len(hello))} == {None}
    assert offers_tls13(hello) is (hi == "1.3")
    assert offers_tls13(hello + b"\x17\x03\x03\x00\x01x") is (hi == "1.3")   # more after it


def test_a_client_hello_split_across_records_is_not_read():
    hello = client_hello("1.2", "1.3")
    body = hello[5:]
    split = b"\x16\x03\x01" + (100).to_bytes(2, "big") + body[:100] + \
        b"\x16\x03\x01" + (len(body) - 100).to_bytes(2, "big") + body[100:]
    assert offers_tls13(split) is False


def test_anything_but_a_client_hello_is_not_tls13():
    assert offers_tls13(b"OPTIONS sip:x SIP/2.0\r\n\r\n") is False
    assert offers_tls13(b"\x15\x03\x03\x00\x02\x02\x28") is False      # an alert record
    assert offers_tls13(b"\x16\x03\x03\x00\x04\x02") is False           # a Server Hello
    assert offers_tls13(b"") is None


@given(st.binary(max_size=600))
def test_arbitrary_bytes_never_raise(data):
    assert offers_tls13(data) in (True, False, None)


_HELLO = client_hello("1.2", "1.3")


@given(st.lists(st.tuples(st.integers(0, len(_HELLO) - 1), st.integers(0, 255)), max_size=8))
def test_a_damaged_client_hello_never_raises(edits):
    data = bytearray(_HELLO)
    for at, value in edits:
        data[at] = value
    assert offers_tls13(bytes(data)) in (True, False, None)


async def test_a_client_hello_in_pieces_still_gets_stateful_tickets(lab):
    # A ClientHello larger than a TCP segment (an ML-KEM key share is 1.2 kB) arrives in pieces:
    # the server reads it whole before choosing, or a resuming client could not be found again
    import trio
    import trio.testing

    from sipsim.tls import TLSStream, build_context

    from .helpers import cfg_for

    sctx = build_context(cfg_for(lab.b, trust=[lab.a.trust]), server_side=True)
    cctx = build_context(cfg_for(lab.a, trust=[lab.b.trust], groups="X25519MLKEM768:X25519"),
                         server_side=False)
    c_raw, s_raw = trio.testing.memory_stream_pair()
    c_end, mid_c = trio.testing.memory_stream_pair()
    server = TLSStream(s_raw, sctx, server_side=True)
    client = TLSStream(c_end, cctx, server_side=False)

    async def relay_in_pieces():             # client → server, the first flight in 3 pieces
        first = await mid_c.receive_some(65536)
        assert len(first) > 1200
        for i in range(0, len(first), len(first) // 3 + 1):
            await c_raw.send_all(first[i:i + len(first) // 3 + 1])
            await trio.sleep(0.01)
        async with trio.open_nursery() as n:
            async def up():
                while data := await mid_c.receive_some(65536):
                    await c_raw.send_all(data)
            async def down():
                while data := await c_raw.receive_some(65536):
                    await mid_c.send_all(data)
            n.start_soon(up)
            n.start_soon(down)

    async with trio.open_nursery() as n:
        n.start_soon(relay_in_pieces)
        n.start_soon(server.do_handshake)
        await client.do_handshake()
        await client.wait_peer_verdict()
        n.cancel_scope.cancel()
    tickets = [f for f in server.record.transcript if "New Session Ticket" in f.messages]
    assert tickets and tickets[0].nbytes < 400, server.record.transcript     # stateless: ~2.2 kB
