"""TLSStream.send_nowait / flush: a send without a checkpoint when nothing else is being sent; what
the socket cannot take at once waits in the stream and goes out first, before anything sent later
(send_all, flush, close_notify). And SipConnection's use of it: a connection's first sends need no
writer task when it has been quiet."""

import socket

import pytest
import trio

from sipsim.runtime.connection import DIRECT_GAP, SipConnection

from .helpers import cfg_for, handshake

pytestmark = pytest.mark.parametrize("version", ["1.2", "1.3"])


async def _pair(lab, version):
    kw = dict(min_version=version, max_version=version)
    p = await handshake(cfg_for(lab.a, trust=[lab.b.trust], **kw), cfg_for(lab.b, trust=[lab.a.trust], **kw), tcp=True)
    return p.client.stream, p.server.stream


async def _read_exactly(stream, n: int) -> bytes:
    got = b""
    with trio.fail_after(10):
        while len(got) < n:
            chunk = await stream.receive_some()
            assert chunk, "end of stream before all bytes arrived"
            got += chunk
    return got


async def test_sent_at_once_and_received(lab, version):
    client, server = await _pair(lab, version)
    assert client.send_nowait(b"INVITE 1\r\n") is True
    assert client.send_nowait(b"INVITE 2\r\n") is True
    assert await _read_exactly(server, 20) == b"INVITE 1\r\nINVITE 2\r\n"
    # the wire tap and transcript saw the records like any send
    assert client.record.ok
    await client.aclose()
    await server.aclose()


async def test_not_taken_while_another_send_is_in_progress(lab, version):
    client, server = await _pair(lab, version)
    big = b"x" * (1 << 20)
    received = []

    async def reader():
        received.append(await _read_exactly(server, len(big)))

    async with trio.open_nursery() as n:
        n.start_soon(client.send_all, big)   # blocks: the peer reads nothing yet
        await trio.testing.wait_all_tasks_blocked()
        assert client.send_nowait(b"after") is None     # a send_all holds the stream
        n.start_soon(reader)
    assert client.send_nowait(b"after") is True       # free again
    assert received == [big] and await _read_exactly(server, 5) == b"after"
    await client.aclose()
    await server.aclose()


async def test_what_the_socket_cannot_take_goes_first(lab, version):
    client, server = await _pair(lab, version)
    sock = client.transport_stream.socket
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 4096)
    # fill the socket (and the peer's receive window) until send_nowait leaves records behind
    sent = []
    result = True
    while result is True:
        chunk = bytes([65 + len(sent) % 26]) * 8192
        result = client.send_nowait(chunk)
        assert result in (True, False)
        sent.append(chunk)
    assert result is False
    assert client.send_nowait(b"more") is None          # records wait: not taken, use send_all
    total = b"".join(sent) + b"tail"
    got = []

    async def reader():
        got.append(await _read_exactly(server, len(total)))

    async with trio.open_nursery() as n:
        n.start_soon(reader)
        await client.flush()                           # what waited, in order
        await client.send_all(b"tail")                 # then what follows
    assert got == [total]
    await client.aclose()
    await server.aclose()


async def test_waiting_records_go_before_close_notify(lab, version):
    client, server = await _pair(lab, version)
    client.transport_stream.socket.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 4096)
    sent = []
    while True:
        chunk = b"y" * 8192
        sent.append(chunk)
        if client.send_nowait(chunk) is False:
            break
    got = []

    async def reader():
        data = b""
        while True:
            chunk = await server.receive_some()
            if not chunk:
                break
            data += chunk
        got.append(data)

    async with trio.open_nursery() as n:
        n.start_soon(reader)
        await client.aclose()
    assert got == [b"".join(sent)]                     # every byte, then a clean end of stream
    assert server.record.close_notify_received
    await server.aclose()


async def test_sip_connection_quiet_sends_need_no_writer_task(lab, version):
    client, server = await _pair(lab, version)
    conn = SipConnection(client, "outbound", ("127.0.0.1", 1), ("127.0.0.1", 2))
    payloads = [f"MESSAGE {i}\r\n".encode() for i in range(6)]
    async with trio.open_nursery() as n:
        n.start_soon(conn.run, lambda c, data: None)
        await trio.testing.wait_all_tasks_blocked()
        now = 100.0
        for i, data in enumerate(payloads[:4]):      # one pass each, DIRECT_GAP apart: sent at once
            assert conn.transmit_deferred(data) is True
            conn.flush_now(now + i * 2 * DIRECT_GAP)
            assert not conn._writer_started, f"send {i} needed the writer"
            assert conn.queued == 0
        # two passes in quick succession (a busy connection): the second is the writer's, which
        # joins what several passes transmit
        for data in payloads[4:]:
            if conn.transmit_deferred(data):      # (the second joins the first in the queue)
                conn.flush_now(now + 6 * DIRECT_GAP + DIRECT_GAP / 10)
        assert conn._writer_started
        assert await _read_exactly(server, sum(map(len, payloads))) == b"".join(payloads)
        await conn.aclose()
    await server.aclose()


async def test_not_taken_before_the_handshake_or_without_a_socket(lab, version):
    from sipsim.tls import TLSStream, build_context

    from .helpers import _transport_pair

    ct, st, caddr, saddr = await _transport_pair(True)
    ctx = build_context(cfg_for(lab.a, trust=[lab.b.trust]), server_side=False)
    fresh = TLSStream(ct, ctx, server_side=False, local=caddr, remote=saddr)
    assert fresh.send_nowait(b"OPTIONS") is None        # no handshake yet: send_all does it first
    await ct.aclose()
    await st.aclose()
    kw = dict(min_version=version, max_version=version)
    p = await handshake(cfg_for(lab.a, trust=[lab.b.trust], **kw), cfg_for(lab.b, trust=[lab.a.trust], **kw))
    assert p.client.stream.send_nowait(b"OPTIONS") is None   # over a memory stream: the general path


async def test_a_failing_direct_send_closes_that_connection_only(version, caplog):
    """A stream whose send_nowait fails (broken transport, or a bug) closes the connection with one
    log line; nothing reaches the node's pump."""

    class Stream:
        def __init__(self, exc):
            self.exc = exc

        def send_nowait(self, data):
            raise self.exc

    import logging

    caplog.set_level(logging.INFO, logger="sipsim.connection")
    for exc in (trio.BrokenResourceError("socket connection broken"), RuntimeError("bug")):
        conn = SipConnection(Stream(exc), "inbound", ("127.0.0.1", 5061), ("127.0.0.2", 40000))
        assert conn.transmit_deferred(b"SIP/2.0 200 OK\r\n\r\n")
        conn.flush_now(1.0)                        # does not raise
        assert conn.closed
        assert conn.transmit_deferred(b"more") is False     # a closed connection takes nothing
    assert "cannot send" in caplog.text and "closed on RuntimeError: bug" in caplog.text
