"""The transcript must not depend on how TCP cuts the bytes. OpenSSL reports a received message's
state when it reads the next message's header, so a record that ends where the bytes received so
far end is consumed before it is reported: it waits for its name (under load, TCP segments cut TLS
1.3 flights anywhere; this made the names of a loaded run differ from an idle one)."""

import pytest
import trio
import trio.testing

from sipsim.tls import TLSStream, build_context

from .helpers import cfg_for


class _Chunked(trio.abc.Stream):
    """A stream whose receive_some returns at most ``k`` bytes."""

    def __init__(self, inner, k: int):
        self.inner, self.k = inner, k

    async def send_all(self, data):
        await self.inner.send_all(data)

    async def wait_send_all_might_not_block(self):
        await self.inner.wait_send_all_might_not_block()

    async def receive_some(self, max_bytes=None):
        return await self.inner.receive_some(self.k)

    async def aclose(self):
        await self.inner.aclose()


async def _flights(lab, version: str, client_k: int, server_k: int):
    kw = dict(min_version=version, max_version=version)
    cctx = build_context(cfg_for(lab.a, trust=[lab.b.trust], **kw), server_side=False)
    sctx = build_context(cfg_for(lab.b, trust=[lab.a.trust], **kw), server_side=True)
    c, s = trio.testing.memory_stream_pair()
    client = TLSStream(_Chunked(c, client_k), cctx, server_side=False)
    server = TLSStream(_Chunked(s, server_k), sctx, server_side=True)
    async with trio.open_nursery() as n:
        n.start_soon(client.do_handshake)
        n.start_soon(server.do_handshake)
    return [[(f.direction, _size(f), list(f.messages)) for f in side.record.transcript] for side in (client, server)]


def _size(flight):
    # a session ticket is the encrypted session, whose length varies by a cipher block from one
    # handshake to the next (its DER encoding): flights carrying one are compared by name only
    return None if "New Session Ticket" in flight.messages else flight.nbytes


@pytest.mark.parametrize("version", ["1.2", "1.3"])
@pytest.mark.parametrize("k", [1, 5, 50, 300, 1000, 1500])
async def test_flights_are_the_same_however_the_bytes_are_cut(lab, version, k):
    whole = await _flights(lab, version, 65536, 65536)
    assert whole[0][1][2][:2] == ["Server Hello", "Change Cipher Spec"] or version == "1.2"
    for client_k, server_k in ((k, 65536), (65536, k), (k, k)):
        assert await _flights(lab, version, client_k, server_k) == whole, (client_k, server_k)
