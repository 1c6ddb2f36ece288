"""A peer that closes TCP without close_notify after a completed handshake (common for SIP peers).

OpenSSL 3 treats such an EOF as fatal: SSL_read's SSLfatal(decode_error, "unexpected eof while
reading") writes a fatal decode_error alert and leaves the connection in its error state, which
counts as "in the handshake", so SSL_shutdown then fails. sipsim used to send that alert and its
aclose turned the successful connection's record into tls_handshake_failed ("closed the connection
during the TLS handshake"). Now: end of stream, at most a close_notify from us, a clean record.
"""

import signal

import pytest
import trio
import trio.testing

import sipsim.tls.stream as tls_stream
from sipsim.tls import TLSStream, build_context

from .helpers import _transport_pair, cfg_for, handshake, transcript
from .test_peers import OPENSSL, run_s_server, tls_client

VERSIONS = ["1.2", "1.3"]
INVITE = b"INVITE sip:8511001@cucm-b.lab.example:5061 SIP/2.0\r\nContent-Length: 0\r\n\r\n"
OK = b"SIP/2.0 200 OK\r\nContent-Length: 0\r\n\r\n"


def _records(data: bytes) -> list[tuple[int, int]]:
    """(content type, length) of each TLS record in ``data``."""
    out = []
    while len(data) >= 5:
        n = int.from_bytes(data[3:5], "big")
        out.append((data[0], n))
        data = data[5 + n:]
    return out


def _assert_clean(record, *, close_notify_received: bool):
    assert record.ok, (record.reason, record.detail)
    assert record.reason is None and record.detail is None
    assert record.alert_sent is None and record.alert_received is None
    assert record.close_notify_received is close_notify_received
    messages = [m for _, ms in transcript(record) for m in ms]
    assert not any("Fatal" in m or "Decode Error" in m for m in messages), messages
    assert record.to_dict()["reason"] is None


async def _exchange(p):
    await p.client.stream.send_all(INVITE)
    assert await p.server.stream.receive_some() == INVITE
    await p.server.stream.send_all(OK)
    assert await p.client.stream.receive_some() == OK


@pytest.mark.parametrize("version", VERSIONS)
@pytest.mark.parametrize("how", ["fin", "half_close", "close_notify"])
async def test_peer_closes_after_sip_exchange(lab, version, how):
    kw = dict(min_version=version, max_version=version)
    p = await handshake(cfg_for(lab.a, trust=[lab.b.trust], **kw), cfg_for(lab.b, trust=[lab.a.trust], **kw), tcp=True)
    await _exchange(p)
    client, server = p.client.stream, p.server.stream
    if how == "fin":
        await server.transport_stream.aclose()              # TCP FIN, no close_notify
    elif how == "half_close":
        await server.transport_stream.send_eof()            # TCP FIN, no close_notify; still reading
    else:
        await server.aclose()                               # close_notify, then FIN
    mark = len(p.client.tap)
    with trio.fail_after(5):
        assert await client.receive_some() == b""
        await client.aclose()
    r = p.client.record
    _assert_clean(r, close_notify_received=(how == "close_notify"))
    assert r.version == f"TLSv{version}"
    assert r.close_notify_sent
    # on the wire, after the peer's close: one alert record (TLS 1.2: type 21; TLS 1.3: encrypted, 23),
    # the close_notify — no second alert
    sent = b"".join(d for direction, d, _ in p.client.tap[mark:] if direction == "sent")
    assert len(_records(sent)) == 1
    assert _records(sent)[0][0] == (21 if version == "1.2" else 23)
    assert transcript(r)[-1] == ("sent", ["Alert (Level: Warning, Description: Close Notify)"])
    if how == "half_close":
        # the peer decrypts what we sent: a close_notify, not a fatal decode_error alert
        with trio.fail_after(5):
            assert await server.receive_some() == b""
        assert server.record.close_notify_received
        assert server.record.alert_received is None and server.record.reason is None
        await server.aclose()


class _CutOnSend(trio.abc.Stream):
    """The ``n``-th send passes only its first half, then the TCP connection closes (0: no cut)."""

    def __init__(self, inner, n: int):
        self.inner, self.n, self.sends = inner, n, 0

    async def send_all(self, data):
        self.sends += 1
        if self.sends == self.n:
            await self.inner.send_all(data[: len(data) // 2])
            await self.inner.aclose()
            return
        await self.inner.send_all(data)

    async def receive_some(self, max_bytes=None):
        return await self.inner.receive_some(max_bytes)

    async def wait_send_all_might_not_block(self):
        await self.inner.wait_send_all_might_not_block()

    async def aclose(self):
        await self.inner.aclose()


@pytest.mark.parametrize("cut", [pytest.param(0, id="after-tickets"), pytest.param(2, id="mid-tickets")])
async def test_tls13_peer_closes_while_new_session_tickets_are_unread(lab, cut):
    """The server's post-handshake NewSessionTickets are still unread (or cut short) when the EOF
    comes: the client's record stays a success."""
    ct, st, caddr, saddr = await _transport_pair(True)
    client = TLSStream(ct, build_context(cfg_for(lab.a, trust=[lab.b.trust]), False), server_side=False,
                       local=caddr, remote=saddr)
    server = TLSStream(_CutOnSend(st, cut) if cut else st, build_context(cfg_for(lab.b, trust=[lab.a.trust]), True),
                       server_side=True, local=saddr, remote=caddr)

    async def serve():
        try:
            await server.do_handshake()
        finally:
            if not cut:
                await st.aclose()                    # FIN right after the tickets

    with trio.fail_after(5):
        async with trio.open_nursery() as n:
            n.start_soon(serve)
            await client.do_handshake()
        assert client.record.version == "TLSv1.3"
        assert await client.receive_some() == b""
        await client.aclose()
    _assert_clean(client.record, close_notify_received=False)
    received = [m for d, ms in transcript(client.record) if d == "received" for m in ms]
    assert received.count("New Session Ticket") == (2 if not cut else 1)
    assert client.record.close_notify_sent


async def test_failed_shutdown_does_not_rewrite_a_successful_record(lab, monkeypatch):
    """Whatever SSL_shutdown says in aclose (here: OpenSSL's old EOF handling, which leaves the
    connection in its error state), a completed handshake is never reported as a handshake failure."""
    monkeypatch.setattr(tls_stream, "_OP_IGNORE_UNEXPECTED_EOF", 0)
    p = await handshake(cfg_for(lab.a, trust=[lab.b.trust]), cfg_for(lab.b, trust=[lab.a.trust]), tcp=True)
    await _exchange(p)
    await p.server.stream.transport_stream.aclose()
    with trio.fail_after(5):
        assert await p.client.stream.receive_some() == b""
        await p.client.stream.aclose()
    r = p.client.record
    assert r.ok and r.reason is None and r.detail is None, (r.reason, r.detail)
    assert r.version == "TLSv1.3"


@pytest.mark.peer
@pytest.mark.skipif(OPENSSL is None, reason="openssl CLI not on PATH")
@pytest.mark.parametrize("flag,version", [("-tls1_2", "TLSv1.2"), ("-tls1_3", "TLSv1.3")])
async def test_s_server_killed_after_exchange(lab, flag, version):
    """openssl s_server dies (SIGKILL: the kernel sends FIN, no close_notify) after a SIP exchange."""
    result = {}

    async def body(p, port):
        s = await tls_client(lab.a, [lab.b.trust], port)
        await s.do_handshake()
        await s.send_all(INVITE)
        await p.wait_for(b"INVITE sip:8511001")
        await p.write(b"SIP/2.0 200 OK\n")
        got = b""
        while b"200 OK" not in got:
            got += await s.receive_some()
        p.proc.send_signal(signal.SIGKILL)
        await p.proc.wait()
        result["eof"] = await s.receive_some()
        await s.aclose()
        result["record"] = s.record

    await run_s_server(["-cert", str(lab.b.cert), "-key", str(lab.b.key), "-CAfile", str(lab.a.trust),
                        "-Verify", "1", "-verify_return_error", flag], body)
    assert result["eof"] == b""
    r = result["record"]
    assert r.version == version
    _assert_clean(r, close_notify_received=False)
    assert transcript(r)[-1] == ("sent", ["Alert (Level: Warning, Description: Close Notify)"])


@pytest.mark.parametrize("version", VERSIONS)
async def test_closing_while_a_receive_waits_leaves_the_stream_closed_not_broken(lab, version):
    """A caller hangs up and closes its connection while the connection's reader waits for bytes:
    close_notify leaves, the waiting receive ends, and the stream is *closed* (a later use says
    so: ClosedResourceError), not broken — and a second close is a no-op."""
    kw = dict(min_version=version, max_version=version)
    p = await handshake(cfg_for(lab.a, trust=[lab.b.trust], **kw), cfg_for(lab.b, trust=[lab.a.trust], **kw), tcp=True)
    await _exchange(p)
    client = p.client.stream
    ended = []

    async def reader():
        try:
            await client.receive_some()
        except (trio.ClosedResourceError, trio.BrokenResourceError) as e:
            ended.append(type(e))

    async with trio.open_nursery() as nursery:
        nursery.start_soon(reader)
        await trio.testing.wait_all_tasks_blocked()
        await client.aclose_bounded(1.0)
    assert ended == [trio.ClosedResourceError]
    assert client.record.close_notify_sent
    with pytest.raises(trio.ClosedResourceError):
        await client.receive_some()
    await client.aclose_bounded(1.0)            # a second close: nothing to do
    assert await p.server.stream.receive_some() == b""   # the server read our close_notify
    await p.server.stream.aclose()
