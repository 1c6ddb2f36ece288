"""Mutual TLS between two TLSStreams, over memory streams and loopback TCP."""

import re

import pytest
import trio
import trio.testing

from sipsim.tls import TLSFailure

from .certs import self_signed
from .helpers import cfg_for, handshake, transcript

TRANSPORTS = [pytest.param(False, id="memory"), pytest.param(True, id="tcp")]


@pytest.mark.parametrize("tcp", TRANSPORTS)
@pytest.mark.parametrize("version", ["1.2", "1.3"])
async def test_mutual_tls_succeeds(lab, tcp, version):
    kw = dict(min_version=version, max_version=version)
    p = await handshake(cfg_for(lab.a, trust=[lab.b.trust], **kw),
                        cfg_for(lab.b, trust=[lab.a.trust], **kw), tcp=tcp)
    assert p.client.error is None and p.server.error is None
    for side, peer_cn, own_cn in ((p.client, lab.b.cn, lab.a.cn), (p.server, lab.a.cn, lab.b.cn)):
        r = side.record
        assert r.ok and r.reason is None
        assert r.version == f"TLSv{version}"
        assert r.cipher == ("ECDHE-RSA-AES256-GCM-SHA384" if version == "1.2" else "TLS_AES_256_GCM_SHA384")
        assert [c.cn for c in r.peer_chain] == [peer_cn]
        assert r.peer_chain[0].sans == (peer_cn,)
        assert [c.cn for c in r.local_chain] == [own_cn]
        assert r.handshake_ms is not None and r.handshake_ms >= 0
        assert r.transcript[0].messages == ["Client Hello"]
        assert r.alert_sent is None and r.alert_received is None
    # the client saw the CertificateRequest CA list: the server's trust subjects
    assert p.client.record.ca_names == [f"CN={lab.a.cn},OU=cisco,O=cisco,L=cisco,ST=cisco,C=IN"]
    assert p.server.record.ca_names == p.client.record.ca_names
    if tcp:
        assert p.client.record.remote == p.server.record.local
    # both sides see the same flights, mirrored (in TLS 1.3 the server's tickets are not read yet)
    flip = {"sent": "received", "received": "sent"}
    mirrored = [(flip[d], m) for d, m in transcript(p.client.record)]
    assert mirrored == transcript(p.server.record)[:len(mirrored)]
    assert len(mirrored) == (4 if version == "1.2" else 3)
    # and the same bytes
    c_sent = b"".join(d for direction, d, _ in p.client.tap if direction == "sent")
    s_recv = b"".join(d for direction, d, _ in p.server.tap if direction == "received")
    assert c_sent == s_recv and len(c_sent) == sum(f.nbytes for f in p.client.record.transcript if f.direction == "sent")
    for s in (p.client, p.server):
        await s.stream.aclose()


async def test_tls12_transcript(lab):
    kw = dict(max_version="1.2")
    p = await handshake(cfg_for(lab.a, trust=[lab.b.trust], **kw), cfg_for(lab.b, trust=[lab.a.trust], **kw))
    assert transcript(p.client.record) == [
        ("sent", ["Client Hello"]),
        ("received", ["Server Hello", "Certificate", "Server Key Exchange", "Certificate Request",
                      "Server Hello Done"]),
        ("sent", ["Certificate", "Client Key Exchange", "Certificate Verify", "Change Cipher Spec", "Finished"]),
        ("received", ["New Session Ticket", "Change Cipher Spec", "Finished"]),
    ]
    # only the Finished messages are encrypted in TLS 1.2
    assert [f.encrypted_messages for f in p.client.record.transcript] == [
        [False], [False] * 5, [False, False, False, False, True], [False, False, True]]


async def test_tls13_transcript_marks_encrypted_messages(lab):
    kw = dict(min_version="1.3")
    p = await handshake(cfg_for(lab.a, trust=[lab.b.trust], **kw), cfg_for(lab.b, trust=[lab.a.trust], **kw))
    async with trio.open_nursery() as n:
        n.start_soon(p.server.stream.send_all, b"SIP/2.0 200 OK\r\n\r\n")
        assert await p.client.stream.receive_some() == b"SIP/2.0 200 OK\r\n\r\n"
    flights = p.client.record.transcript
    assert transcript(p.client.record) == [
        ("sent", ["Client Hello"]),
        ("received", ["Server Hello", "Change Cipher Spec", "Encrypted Extensions", "Certificate Request",
                      "Certificate", "Certificate Verify", "Finished"]),
        ("sent", ["Change Cipher Spec", "Certificate", "Certificate Verify", "Finished"]),
        ("received", ["New Session Ticket", "New Session Ticket", "Application Data"]),
    ]
    assert flights[1].encrypted_messages == [False, False, True, True, True, True, True]
    assert flights[2].encrypted_messages == [False, True, True, True]
    assert flights[0].encrypted is False and flights[1].encrypted is True
    d = flights[1].to_dict()
    assert d["direction"] == "received" and d["nbytes"] > 1000 and d["encrypted"] is True


async def test_ca_signed_chain_is_sent_and_verified(ca_lab):
    inter = ca_lab["inter"]
    server = inter.issue("cucm-ca.lab.example")
    client = inter.issue("cucm-ca-client.lab.example")
    # trust the root only: the intermediate must travel in the Certificate message
    p = await handshake(cfg_for(client, trust=[server.trust]), cfg_for(server, trust=[client.trust]))
    assert p.client.error is None and p.server.error is None
    assert [c.cn for c in p.client.record.peer_chain] == ["cucm-ca.lab.example", "Lab Issuing CA"]
    assert [c.cn for c in p.server.record.peer_chain] == ["cucm-ca-client.lab.example", "Lab Issuing CA"]
    assert p.client.record.ca_names == ["CN=Lab Root CA,DC=lab"]


async def test_missing_intermediate_is_unknown_ca(ca_lab):
    inter = ca_lab["inter"]
    server = inter.issue("cucm-nochain.lab.example")
    client = inter.issue("cucm-nochain-client.lab.example")
    server.chain = ()          # forget to send the intermediate
    p = await handshake(cfg_for(client, trust=[server.trust]), cfg_for(server, trust=[client.trust]))
    assert p.client.reason == "tls_unknown_ca"
    assert p.client.record.verify_errors[0]["errnum"] == 20
    assert "unable to get local issuer certificate" in p.client.error.detail


@pytest.mark.parametrize("tcp", TRANSPORTS)
async def test_concurrent_send_and_receive_one_megabyte_each_way(lab, tcp):
    p = await handshake(cfg_for(lab.a, trust=[lab.b.trust]), cfg_for(lab.b, trust=[lab.a.trust]), tcp=tcp)
    size = 1 << 20
    payload = {"client": bytes(range(256)) * (size // 256), "server": bytes(reversed(range(256))) * (size // 256)}
    got = {"client": bytearray(), "server": bytearray()}

    async def writer(name, stream):
        data = payload[name]
        for i in range(0, size, 50_000):         # many writes, interleaved with the reader task
            await stream.send_all(data[i:i + 50_000])

    async def reader(name, stream):
        while len(got[name]) < size:
            chunk = await stream.receive_some()
            assert chunk
            got[name] += chunk

    with trio.fail_after(30):
        async with trio.open_nursery() as n:
            n.start_soon(writer, "client", p.client.stream)
            n.start_soon(writer, "server", p.server.stream)
            n.start_soon(reader, "client", p.client.stream)
            n.start_soon(reader, "server", p.server.stream)
    assert bytes(got["server"]) == payload["client"]
    assert bytes(got["client"]) == payload["server"]
    # the transcript stays short
    assert len(p.client.record.transcript) <= 64
    await p.client.stream.aclose()
    assert await p.server.stream.receive_some() == b""
    assert p.server.record.close_notify_received and p.client.record.close_notify_sent


async def test_two_senders_conflict(lab):
    p = await handshake(cfg_for(lab.a, trust=[lab.b.trust]), cfg_for(lab.b, trust=[lab.a.trust]))
    errors = []

    async def recv():
        try:
            await p.client.stream.receive_some()
        except trio.BusyResourceError as exc:
            errors.append(exc)
            n.cancel_scope.cancel()

    async with trio.open_nursery() as n:
        n.start_soon(recv)
        n.start_soon(recv)
    assert len(errors) == 1


async def test_peer_closing_without_close_notify_is_eof(lab):
    p = await handshake(cfg_for(lab.a, trust=[lab.b.trust]), cfg_for(lab.b, trust=[lab.a.trust]))
    await p.server.stream.send_all(b"hello")
    await p.server.stream.transport_stream.aclose()     # TCP FIN, no close_notify
    assert await p.client.stream.receive_some() == b"hello"
    assert await p.client.stream.receive_some() == b""
    assert await p.client.stream.receive_some() == b""


async def test_keylog_tls12(lab):
    kw = dict(max_version="1.2")
    p = await handshake(cfg_for(lab.a, trust=[lab.b.trust], **kw), cfg_for(lab.b, trust=[lab.a.trust], **kw))
    for side in (p.client, p.server):
        assert side.keylog, "no key log line"
        for line in side.keylog:
            assert re.fullmatch(rb"CLIENT_RANDOM [0-9a-f]{64} [0-9a-f]{96}", line), line
    assert p.client.keylog == p.server.keylog
    client_random = p.client.stream._conn.client_random().hex().encode()
    assert p.client.keylog[0].split()[1] == client_random


async def test_keylog_tls13(lab):
    p = await handshake(cfg_for(lab.a, trust=[lab.b.trust]), cfg_for(lab.b, trust=[lab.a.trust]))
    labels = {line.split()[0] for line in p.client.keylog}
    assert {b"CLIENT_HANDSHAKE_TRAFFIC_SECRET", b"SERVER_HANDSHAKE_TRAFFIC_SECRET",
            b"CLIENT_TRAFFIC_SECRET_0", b"SERVER_TRAFFIC_SECRET_0"} <= labels
    for line in p.client.keylog + p.server.keylog:
        assert re.fullmatch(rb"[A-Z_0-9]+ [0-9a-f]{64} [0-9a-f]{64,96}", line), line
    assert sorted(p.client.keylog) == sorted(p.server.keylog)


async def test_keylog_only_for_streams_that_ask(lab):
    """Key lines reach only a stream created with a keylog; a context first used without one still
    logs for a later stream that asks (the callback is installed on first use)."""
    from sipsim.tls import TLSStream, build_context
    from .helpers import _transport_pair

    cctx = build_context(cfg_for(lab.a, trust=[lab.b.trust]), server_side=False)
    sctx = build_context(cfg_for(lab.b, trust=[lab.a.trust]), server_side=True)

    async def pair(client_log, server_log):
        ct, st, caddr, saddr = await _transport_pair(False)
        c = TLSStream(ct, cctx, server_side=False, local=caddr, remote=saddr, keylog=client_log)
        s = TLSStream(st, sctx, server_side=True, local=saddr, remote=caddr, keylog=server_log)
        async with trio.open_nursery() as n:
            n.start_soon(c.do_handshake)
            n.start_soon(s.do_handshake)
        assert c.record.ok and s.record.ok

    await pair(None, None)                 # nobody asked: nothing to collect, the handshake works
    lines: list[bytes] = []
    await pair(None, lines.append)         # only the server asked
    assert {line.split()[0] for line in lines} >= {b"CLIENT_TRAFFIC_SECRET_0", b"SERVER_TRAFFIC_SECRET_0"}
    server_lines = len(lines)
    await pair(None, None)                 # the callback is installed now, but these streams did not ask
    assert len(lines) == server_lines


async def test_ecdsa_identity(tmp_path):
    a = self_signed(tmp_path, "ec-a.lab", key_kind="ec")
    b = self_signed(tmp_path, "ec-b.lab", key_kind="ec")
    kw = dict(max_version="1.2", ciphers="all_ciphers_ecdsa_preferred")
    p = await handshake(cfg_for(a, trust=[b.trust], **kw), cfg_for(b, trust=[a.trust], **kw))
    assert p.client.record.cipher == "ECDHE-ECDSA-AES256-GCM-SHA384"
    assert p.client.record.peer_chain[0].key == "EC P-256"


async def test_wait_send_all_might_not_block_and_aclose_twice(lab):
    p = await handshake(cfg_for(lab.a, trust=[lab.b.trust]), cfg_for(lab.b, trust=[lab.a.trust]))
    with trio.fail_after(5):
        await p.client.stream.wait_send_all_might_not_block()
    await p.client.stream.aclose()
    await p.client.stream.aclose()
    with pytest.raises(trio.ClosedResourceError):
        await p.client.stream.send_all(b"x")


async def test_implicit_handshake_on_first_send_and_receive(lab):
    from sipsim.tls import TLSStream, build_context
    c_t, s_t = trio.testing.memory_stream_pair()
    c = TLSStream(c_t, build_context(cfg_for(lab.a, trust=[lab.b.trust]), False), server_side=False)
    s = TLSStream(s_t, build_context(cfg_for(lab.b, trust=[lab.a.trust]), True), server_side=True)
    with trio.fail_after(10):
        async with trio.open_nursery() as n:
            n.start_soon(c.send_all, b"REGISTER")
            assert await s.receive_some() == b"REGISTER"
    assert c.handshake_done and s.handshake_done and c.record.ok
    d = c.record.to_dict()
    assert d["version"] == "TLSv1.3" and d["peer_chain"][0]["cn"] == lab.b.cn
    assert d["transcript"][0]["messages"] == ["Client Hello"]


@pytest.mark.parametrize("preset,key", [("all_ciphers_ecdsa_preferred", "EC P-256"),
                                        ("all_ciphers_rsa_preferred", "RSA 2048")])
async def test_server_with_rsa_and_ecdsa_identities_presents_the_one_the_suite_needs(tmp_path, lab, preset, key):
    from sipsim.tls import TLSConfig
    ec = self_signed(tmp_path, "cucm-b-ecdsa.lab.example", key_kind="ec")
    server = TLSConfig(lab.b.cert, lab.b.key, ecdsa_cert_file=ec.cert, ecdsa_key_file=ec.key,
                       trust_files=(lab.a.trust,), ciphers=preset, max_version="1.2")
    p = await handshake(cfg_for(lab.a, trust=[lab.b.trust, ec.trust]), server)
    assert p.client.error is None, p.client.error
    assert p.client.record.peer_chain[0].key == key
    assert p.server.record.local_chain[0].key == key
    assert p.client.record.cipher.startswith("ECDHE-ECDSA" if key.startswith("EC") else "ECDHE-RSA")
