"""A server stream without a transcript (`sipsim serve`: no report reads its flights) fails with the
same reason, detail and alerts as one with it, and still completes a good handshake."""

import pytest
import trio

from .helpers import cfg_for, handshake, server_against_raw_peer

SAME = ("reason", "detail", "alert_sent", "alert_received", "verify_errors", "version", "cipher",
        "peer_subject_ok")


def _server_facts(pair):
    r = pair.server.record
    return {k: getattr(r, k) for k in SAME} | {"error": pair.server.reason}


def _cases(lab):
    return {
        "client not trusted, TLS 1.2": (cfg_for(lab.a, trust=[lab.b.trust], max_version="1.2"),
                                        cfg_for(lab.b, trust=[lab.c.trust], max_version="1.2")),
        "client not trusted, TLS 1.3": (cfg_for(lab.a, trust=[lab.b.trust]), cfg_for(lab.b, trust=[lab.c.trust])),
        "server not trusted, TLS 1.2": (cfg_for(lab.a, trust=[lab.c.trust], max_version="1.2"),
                                        cfg_for(lab.b, trust=[lab.a.trust], max_version="1.2")),
        "server not trusted, TLS 1.3": (cfg_for(lab.a, trust=[lab.c.trust]), cfg_for(lab.b, trust=[lab.a.trust])),
        "no client certificate": (cfg_for(None, trust=[lab.b.trust]), cfg_for(lab.b, trust=[lab.a.trust])),
        "no common version": (cfg_for(lab.a, trust=[lab.b.trust], min_version="1.3"),
                              cfg_for(lab.b, trust=[lab.a.trust], max_version="1.2")),
        "good, TLS 1.3": (cfg_for(lab.a, trust=[lab.b.trust]), cfg_for(lab.b, trust=[lab.a.trust])),
    }


@pytest.mark.parametrize("case", ["client not trusted, TLS 1.2", "client not trusted, TLS 1.3",
                                  "server not trusted, TLS 1.2", "server not trusted, TLS 1.3",
                                  "no client certificate", "no common version", "good, TLS 1.3"])
async def test_the_server_judges_the_same_without_its_transcript(lab, case):
    client_cfg, server_cfg = _cases(lab)[case]
    full = await handshake(client_cfg, server_cfg)
    bare = await handshake(client_cfg, server_cfg, server_kw=dict(transcript=False))
    assert _server_facts(bare) == _server_facts(full)
    assert full.server.record.transcript            # the control: it had flights
    assert bare.server.record.transcript == []
    assert bare.server.record.to_dict()["transcript"] == []


async def _raw(lab, data: bytes | None, *, transcript: bool, close=True, timeout=None):
    return (await server_against_raw_peer(lab, data, close=close, timeout=timeout, transcript=transcript))[1]


@pytest.mark.parametrize("data", [b"OPTIONS sip:10.0.0.1:5061 SIP/2.0\r\nVia: SIP/2.0/TCP 10.0.0.9:33135\r\n\r\n",
                                  bytes(range(200, 256)) * 3, None], ids=["plaintext SIP", "garbage", "closed"])
async def test_a_peer_that_is_not_tls_is_named_the_same(lab, data):
    full, bare = await _raw(lab, data, transcript=True), await _raw(lab, data, transcript=False)
    assert (bare.reason, bare.detail) == (full.reason, full.detail)


async def test_a_silent_peer_times_out_the_same(lab, autojump_clock):
    bare = await _raw(lab, None, transcript=False, close=False, timeout=2)
    assert bare.reason == "timeout" and "sent nothing" in bare.detail


async def test_a_server_without_transcript_carries_data(lab):
    p = await handshake(cfg_for(lab.a, trust=[lab.b.trust]), cfg_for(lab.b, trust=[lab.a.trust]), tcp=True,
                        server_kw=dict(transcript=False))
    async with trio.open_nursery() as n:
        n.start_soon(p.client.stream.send_all, b"OPTIONS sip:x SIP/2.0\r\n\r\n")
        got = await p.server.stream.receive_some()
    assert got.startswith(b"OPTIONS")
    await p.server.stream.send_all(b"SIP/2.0 200 OK\r\n\r\n")
    assert (await p.client.stream.receive_some()).startswith(b"SIP/2.0 200")
