"""TLSStream.wait_peer_verdict: in TLS 1.3 a client's handshake is over before the server has judged
its certificate; the verdict is the server's NewSessionTickets (accepted) or an alert (rejected)."""

import pytest
import trio

from sipsim.tls import TLSFailure

from .helpers import cfg_for, handshake, transcript
from .test_peers import run_s_server, tls_client

OK = b"SIP/2.0 200 OK\r\nContent-Length: 0\r\n\r\n"


@pytest.mark.parametrize("tcp", [False, True], ids=["memory", "tcp"])
@pytest.mark.parametrize("version", ["1.2", "1.3"])
async def test_accepted_and_application_data_is_not_lost(lab, version, tcp):
    kw = dict(min_version=version, max_version=version)
    p = await handshake(cfg_for(lab.a, trust=[lab.b.trust], **kw), cfg_for(lab.b, trust=[lab.a.trust], **kw), tcp=tcp)
    client, server = p.client.stream, p.server.stream
    await server.send_all(OK)            # data may arrive with (or before) the verdict: it stays buffered
    with trio.fail_after(5):
        assert await client.wait_peer_verdict() is True
        assert await client.receive_some() == OK
    if version == "1.3":
        received = [m for d, ms in transcript(client.record) if d == "received" for m in ms]
        assert received.count("New Session Ticket") == 2
    assert client.record.ok and client.record.reason is None
    await client.aclose()
    await server.aclose()


async def test_tls13_accepted_before_any_data(lab):
    p = await handshake(cfg_for(lab.a, trust=[lab.b.trust]), cfg_for(lab.b, trust=[lab.a.trust]), tcp=True)
    with trio.fail_after(5):
        assert await p.client.stream.wait_peer_verdict() is True
    # the server sent nothing but its tickets: a further read would wait
    with trio.move_on_after(0.05) as scope:
        await p.client.stream.receive_some()
    assert scope.cancelled_caught
    await p.client.stream.aclose()
    await p.server.stream.aclose()


async def test_tls13_rejection_is_raised_by_the_wait(lab):
    # CUCM-B's CallManager-trust does not hold CUCM-A's certificate
    p = await handshake(cfg_for(lab.a, trust=[lab.b.trust]), cfg_for(lab.b, trust=[lab.c.trust]))
    assert p.client.error is None and p.client.record.version == "TLSv1.3"
    with trio.fail_after(5), pytest.raises(TLSFailure) as info:
        await p.client.stream.wait_peer_verdict()
    assert info.value.reason == "tls_unknown_ca"
    assert p.client.record.alert_received == "unknown_ca"


async def test_tls13_against_openssl_s_server(lab):
    """A real server: its two tickets are the verdict; with -num_tickets 0 it says nothing."""
    for tickets, expect_verdict in (("2", True), ("0", False)):
        result = {}

        async def body(p, port):
            s = await tls_client(lab.a, [lab.b.trust], port, min_version="1.3")
            await s.do_handshake()
            with trio.move_on_after(1):
                result["verdict"] = await s.wait_peer_verdict()
            await s.aclose()

        await run_s_server(["-cert", str(lab.b.cert), "-key", str(lab.b.key), "-CAfile", str(lab.a.trust),
                            "-Verify", "1", "-verify_return_error", "-tls1_3", "-num_tickets", tickets], body)
        assert result.get("verdict", False) is expect_verdict, (tickets, result)
