"""Every failure gets the right reason code, on both sides, with a useful sentence."""

import pytest
import trio
import trio.testing
from cryptography.x509.oid import ExtendedKeyUsageOID

from sipsim.tls import TLSConfig, TLSFailure, TLSStream, build_context

from .certs import self_signed
from .helpers import cfg_for, handshake, server_against_raw_peer, transcript

TRANSPORTS = [pytest.param(False, id="memory"), pytest.param(True, id="tcp")]


@pytest.mark.parametrize("tcp", TRANSPORTS)
async def test_client_not_trusted_by_server_tls12(lab, tcp):
    kw = dict(max_version="1.2")
    p = await handshake(cfg_for(lab.a, trust=[lab.b.trust], **kw),
                        cfg_for(lab.b, trust=[lab.c.trust], **kw), tcp=tcp,
                        server_kw=dict(local_name="CUCM-B"), client_kw=dict(local_name="CUCM-A", peer_name="CUCM-B"))
    assert p.server.reason == "tls_unknown_ca"
    assert p.server.record.alert_sent == "unknown_ca"
    assert p.server.record.verify_errors[0]["errnum"] == 18        # self-signed, not in the store
    assert "CUCM-B does not trust" in p.server.error.detail
    assert f"CN={lab.a.cn}" in p.server.error.detail
    assert "CallManager-trust" in p.server.error.detail
    assert p.client.reason == "tls_unknown_ca"
    assert p.client.record.alert_received == "unknown_ca"
    assert p.client.error.detail.startswith("CUCM-B (")
    assert "does not trust CUCM-A's certificate" in p.client.error.detail
    assert transcript(p.client.record)[-1] == ("received", ["Alert (Level: Fatal, Description: Unknown CA)"])
    assert p.server.error.record is p.server.record and p.server.record.reason == "tls_unknown_ca"
    assert not p.server.record.ok


async def test_client_not_trusted_by_server_tls13_shows_on_first_read(lab):
    p = await handshake(cfg_for(lab.a, trust=[lab.b.trust]), cfg_for(lab.b, trust=[lab.c.trust]))
    assert p.server.reason == "tls_unknown_ca"
    # TLS 1.3: the client's handshake is over before the server judged its certificate
    assert p.client.error is None and p.client.record.version == "TLSv1.3"
    with pytest.raises(TLSFailure) as info:
        await p.client.stream.receive_some()
    assert info.value.reason == "tls_unknown_ca"
    assert p.client.record.reason == "tls_unknown_ca"
    assert p.client.record.alert_received == "unknown_ca"
    assert isinstance(info.value, trio.BrokenResourceError)
    # the failure sticks
    with pytest.raises(TLSFailure):
        await p.client.stream.receive_some()


@pytest.mark.parametrize("version", ["1.2", "1.3"])
@pytest.mark.parametrize("tcp", TRANSPORTS)
async def test_server_not_trusted(lab, version, tcp):
    kw = dict(max_version=version)
    p = await handshake(cfg_for(lab.a, trust=[lab.c.trust], **kw),
                        cfg_for(lab.b, trust=[lab.a.trust], **kw), tcp=tcp)
    assert p.client.reason == "tls_unknown_ca"
    assert p.client.record.alert_sent == "unknown_ca"
    assert f"does not trust {p.client.record.remote[0]}" in p.client.error.detail
    assert p.server.reason == "tls_unknown_ca"
    assert p.server.record.alert_received == "unknown_ca"


@pytest.mark.parametrize("version", ["1.2", "1.3"])
async def test_no_client_certificate(lab, version):
    kw = dict(max_version=version)
    p = await handshake(cfg_for(None, trust=[lab.b.trust], **kw), cfg_for(lab.b, trust=[lab.a.trust], **kw))
    assert p.server.reason == "tls_no_peer_cert"
    assert "sent no client certificate" in p.server.error.detail
    if version == "1.2":
        assert p.client.reason == "tls_no_peer_cert"
        assert p.client.record.alert_received == "handshake_failure"
    else:
        with pytest.raises(TLSFailure) as info:
            await p.client.stream.receive_some()
        assert info.value.reason == "tls_no_peer_cert"
        assert p.client.record.alert_received == "certificate_required"


async def test_no_client_certificate_allowed_when_not_required(lab):
    p = await handshake(cfg_for(None, trust=[lab.b.trust], max_version="1.2"),
                        cfg_for(lab.b, trust=[lab.a.trust], require_peer_cert=False))
    assert p.client.error is None and p.server.error is None
    assert p.server.record.peer_chain == []


@pytest.mark.parametrize("version", ["1.2", "1.3"])
async def test_peer_check_rejection_sends_bad_certificate(lab, version):
    seen = []

    def check(leaf):
        seen.append(leaf)
        return f"CUCM-B: {leaf.cn} is not in the X.509 Subject Name list of trunk TO-A"

    kw = dict(max_version=version)
    p = await handshake(cfg_for(lab.a, trust=[lab.b.trust], **kw), cfg_for(lab.b, trust=[lab.a.trust], **kw),
                        server_kw=dict(peer_check=check))
    assert [c.cn for c in seen] == [lab.a.cn]
    assert p.server.reason == "subject_not_allowed"
    assert p.server.error.detail == f"CUCM-B: {lab.a.cn} is not in the X.509 Subject Name list of trunk TO-A"
    assert p.server.record.alert_sent == "bad_certificate"
    assert p.server.record.peer_subject_ok is False
    if version == "1.3":
        with pytest.raises(TLSFailure):
            await p.client.stream.receive_some()
    assert p.client.reason in (None, "tls_unknown_ca") and p.client.record.reason == "tls_unknown_ca"
    assert p.client.record.alert_received == "bad_certificate"
    assert "X.509 Subject Name" in p.client.record.detail


async def test_peer_check_accepting_and_client_side_check(lab):
    calls = []
    p = await handshake(cfg_for(lab.a, trust=[lab.b.trust]), cfg_for(lab.b, trust=[lab.a.trust]),
                        client_kw=dict(peer_check=lambda leaf: calls.append(leaf.cn)),
                        server_kw=dict(peer_check=lambda leaf: None))
    assert p.client.error is None and calls == [lab.b.cn]
    assert p.client.record.peer_subject_ok is True
    # a client-side rejection: the server sees the bad_certificate alert
    p = await handshake(cfg_for(lab.a, trust=[lab.b.trust], max_version="1.2"), cfg_for(lab.b, trust=[lab.a.trust]),
                        client_kw=dict(peer_check=lambda leaf: "not listed"))
    assert p.client.reason == "subject_not_allowed" and p.client.error.detail == "not listed"
    assert p.server.reason == "tls_unknown_ca" and p.server.record.alert_received == "bad_certificate"


async def test_peer_check_not_called_when_chain_untrusted(lab):
    calls = []
    p = await handshake(cfg_for(lab.a, trust=[lab.c.trust]), cfg_for(lab.b, trust=[lab.a.trust]),
                        client_kw=dict(peer_check=lambda leaf: calls.append(leaf) or "no"))
    assert calls == [] and p.client.reason == "tls_unknown_ca"


@pytest.mark.parametrize("version", ["1.2", "1.3"])
async def test_expired_certificate(tmp_path, lab, version):
    old = self_signed(tmp_path, "expired.lab.example", days=(-400, -35))
    kw = dict(max_version=version)
    p = await handshake(cfg_for(lab.a, trust=[old.trust], **kw), cfg_for(old, trust=[lab.a.trust], **kw))
    assert p.client.reason == "tls_cert_expired"
    assert "expired" in p.client.error.detail and "CN=expired.lab.example" in p.client.error.detail
    assert p.client.record.alert_sent == "certificate_expired"
    assert p.server.reason == "tls_cert_expired"
    assert p.server.record.alert_received == "certificate_expired"


async def test_not_yet_valid_certificate(tmp_path, lab):
    future = self_signed(tmp_path, "future.lab.example", days=(3, 30))
    p = await handshake(cfg_for(lab.a, trust=[future.trust]), cfg_for(future, trust=[lab.a.trust]))
    assert p.client.reason == "tls_cert_not_yet_valid"
    assert p.client.record.verify_errors[0]["errnum"] == 9


async def test_bad_eku(tmp_path, lab):
    mail = self_signed(tmp_path, "mail.lab.example", eku=(ExtendedKeyUsageOID.EMAIL_PROTECTION,))
    p = await handshake(cfg_for(lab.a, trust=[mail.trust], max_version="1.2"), cfg_for(mail, trust=[lab.a.trust]))
    assert p.client.reason == "tls_bad_eku"
    assert p.client.record.alert_sent == "unsupported_certificate"
    assert p.server.reason == "tls_bad_eku"


@pytest.mark.parametrize("tcp", TRANSPORTS)
async def test_tls10_only_against_tls12_minimum(lab, tcp):
    legacy = dict(min_version="1.0", max_version="1.0", ciphers="AES128-SHA")
    p = await handshake(cfg_for(lab.a, trust=[lab.b.trust], **legacy), cfg_for(lab.b, trust=[lab.a.trust]), tcp=tcp)
    assert p.client.reason == "tls_protocol_version"
    assert p.server.reason == "tls_protocol_version"
    assert p.server.record.alert_sent == "protocol_version"
    assert p.client.record.alert_received == "protocol_version"
    assert "no TLS version in common" in p.client.error.detail
    # and the other way round
    p = await handshake(cfg_for(lab.a, trust=[lab.b.trust]), cfg_for(lab.b, trust=[lab.a.trust], **legacy), tcp=tcp)
    assert p.client.reason == "tls_protocol_version" and p.server.reason == "tls_protocol_version"


@pytest.mark.parametrize("authenticated_side", ["client", "server"])
async def test_authenticated_against_encrypted(lab, authenticated_side):
    auth = dict(mode="authenticated")
    ckw = auth if authenticated_side == "client" else {}
    skw = auth if authenticated_side == "server" else {}
    p = await handshake(cfg_for(lab.a, trust=[lab.b.trust], **ckw), cfg_for(lab.b, trust=[lab.a.trust], **skw))
    assert p.client.reason == "tls_no_shared_cipher"
    assert p.server.reason == "tls_no_shared_cipher"
    assert p.client.record.alert_received == "handshake_failure"
    assert "no cipher suite in common" in p.server.error.detail


async def test_authenticated_both_sides_negotiates_null_sha(lab):
    auth = dict(mode="authenticated")
    p = await handshake(cfg_for(lab.a, trust=[lab.b.trust], **auth), cfg_for(lab.b, trust=[lab.a.trust], **auth))
    assert p.client.error is None
    assert p.client.record.cipher.startswith(("NULL-SHA", "ECDHE-RSA-NULL-SHA"))
    assert p.client.record.version == "TLSv1.2"
    await p.client.stream.send_all(b"INVITE sip:8511001@cucm-b SIP/2.0\r\n")
    assert await p.server.stream.receive_some() == b"INVITE sip:8511001@cucm-b SIP/2.0\r\n"
    # integrity only: the plaintext is visible on the wire
    assert any(b"INVITE sip:8511001" in data for d, data, _ in p.client.tap if d == "sent")


# ---------------------------------------------------------------------------- legacy TLS 1.0
SEED_003 = [
    ("sent", ["Client Hello"]),
    ("received", ["Server Hello", "Certificate", "Certificate Request", "Server Hello Done"]),
    ("sent", ["Certificate", "Client Key Exchange", "Certificate Verify", "Change Cipher Spec", "Finished"]),
    ("received", ["New Session Ticket", "Change Cipher Spec", "Finished"]),
    ("sent", ["Application Data"]),
]


@pytest.mark.parametrize("tcp", TRANSPORTS)
async def test_tls10_aes128_sha_transcript_matches_seed_003(lab, tcp):
    legacy = dict(min_version="1.0", max_version="1.0", ciphers="AES128-SHA")
    p = await handshake(cfg_for(lab.a, trust=[lab.b.trust], **legacy),
                        cfg_for(lab.b, trust=[lab.a.trust], **legacy), tcp=tcp)
    assert p.client.error is None and p.server.error is None
    assert p.client.record.version == "TLSv1.0" and p.client.record.cipher == "AES128-SHA"
    await p.client.stream.send_all(b"INVITE sip:9898@10.106.95.200:5061 SIP/2.0\r\n\r\n")
    assert await p.server.stream.receive_some() == b"INVITE sip:9898@10.106.95.200:5061 SIP/2.0\r\n\r\n"
    assert transcript(p.client.record) == SEED_003
    # the SIPCertificateInd trace line CUCM would print
    line = p.client.record.certificate_ind()
    assert f"--X509SubjectName /C=IN/ST=cisco/L=cisco/O=cisco/OU=cisco/CN={lab.b.cn} --Cipher AES128-SHA" in line
    # every record of the handshake is TLS 1.0 on the wire (0x0301) after the Client Hello
    server_bytes = b"".join(data for d, data, _ in p.client.tap if d == "received")
    assert server_bytes[:3] == b"\x16\x03\x01"


# ---------------------------------------------------------------------------- broken peers
async def test_plaintext_sip_on_tls_port(lab):
    s, failure = await server_against_raw_peer(
        lab, b"OPTIONS sip:10.0.0.1:5061 SIP/2.0\r\nVia: SIP/2.0/TCP 10.0.0.9:33135\r\n\r\n")
    assert failure.reason == "tls_handshake_failed"
    assert failure.detail.startswith("The peer did not speak TLS: 10.0.0.9:33135 sent \"OPTIONS sip:")
    assert "plaintext SIP" in failure.detail
    assert s.record.transcript[0].messages[0].startswith("Not TLS:")


async def test_garbage_bytes(lab):
    s, failure = await server_against_raw_peer(lab, bytes(range(200, 256)) * 3)
    assert failure.reason == "tls_handshake_failed"
    assert "did not speak TLS" in failure.detail and "c8 c9 ca" in failure.detail


async def test_client_gets_plaintext_answer(lab):
    ctx = build_context(cfg_for(lab.a, trust=[lab.b.trust]), server_side=False)
    client_t, server_t = trio.testing.memory_stream_pair()
    c = TLSStream(client_t, ctx, server_side=False, remote=("10.0.0.1", 5061))

    async def fake_server():
        await server_t.receive_some()
        await server_t.send_all(b"SIP/2.0 400 Bad Request\r\n\r\n")
        await server_t.aclose()

    async with trio.open_nursery() as n:
        n.start_soon(fake_server)
        with pytest.raises(TLSFailure) as info:
            await c.do_handshake()
    assert info.value.reason == "tls_handshake_failed"
    assert "did not speak TLS" in info.value.detail and "SIP/2.0 400" in info.value.detail


async def test_peer_closes_during_handshake(lab):
    s, failure = await server_against_raw_peer(lab, None)
    assert failure.reason == "tls_handshake_failed"
    assert "closed the connection during the TLS handshake" in failure.detail


async def test_peer_closes_after_client_hello(lab):
    ctx = build_context(cfg_for(lab.a, trust=[lab.b.trust]), server_side=False)
    client_t, server_t = trio.testing.memory_stream_pair()
    c = TLSStream(client_t, ctx, server_side=False)

    async def rude_server():
        await server_t.receive_some()
        await server_t.aclose()

    async with trio.open_nursery() as n:
        n.start_soon(rude_server)
        with pytest.raises(TLSFailure) as info:
            await c.do_handshake()
    assert info.value.reason == "tls_handshake_failed"
    assert "closed the connection" in info.value.detail
    assert c.record.transcript[0].messages[0] == "Client Hello"


async def test_handshake_timeout_with_silent_peer(lab, autojump_clock):
    s, failure = await server_against_raw_peer(lab, None, close=False, timeout=7.5)
    assert failure.reason == "timeout"
    assert "did not finish within 7.5 s" in failure.detail and "sent nothing" in failure.detail
    assert s.record.reason == "timeout"
    assert s.record.handshake_ms == pytest.approx(7500, abs=1)


async def test_handshake_timeout_default_comes_from_config(lab, autojump_clock):
    cfg = TLSConfig(lab.a.cert, lab.a.key, trust_files=(lab.b.trust,), handshake_timeout=3)
    ctx = build_context(cfg, server_side=False)
    client_t, server_t = trio.testing.memory_stream_pair()
    c = TLSStream(client_t, ctx, server_side=False)
    start = trio.current_time()
    with pytest.raises(TLSFailure) as info:
        await c.do_handshake()     # the "server" reads nothing and answers nothing
    assert info.value.reason == "timeout"
    assert trio.current_time() - start == pytest.approx(3.0)
