"""Config, presets, context loading errors, CertInfo, transcript naming."""

import datetime

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import NameOID
from OpenSSL import SSL

from sipsim.errors import UserError
from sipsim.tls import CertInfo, TLSConfig, build_context
from sipsim.tls.context import context_info
from sipsim.tls.presets import AUTHENTICATED, PRESETS, resolve_ciphers
from sipsim.tls.transcript import (Flight, TranscriptBuilder, alert_message, format_transcript,
                                   looks_like_tls, state_message)

from .certs import CA, self_signed


# ---------------------------------------------------------------------------- config
def test_config_normalises_versions_and_paths(lab):
    cfg = TLSConfig(str(lab.a.cert), str(lab.a.key), trust_files=str(lab.b.trust), min_version="TLSv1",
                    max_version=1.2)
    assert (cfg.min_version, cfg.max_version) == ("1.0", "1.2")
    assert cfg.trust_files == (lab.b.trust,) and cfg.legacy


@pytest.mark.parametrize("kwargs,needle", [
    (dict(min_version="1.4"), "not a TLS version"),
    (dict(min_version="1.3", max_version="1.2"), "above max_version"),
    (dict(mode="secure"), "mode"),
    (dict(handshake_timeout=0), "handshake_timeout"),
])
def test_config_errors_are_user_errors(lab, kwargs, needle):
    with pytest.raises(UserError, match=needle):
        TLSConfig(lab.a.cert, lab.a.key, **kwargs)


def test_cert_without_key_is_an_error(lab):
    with pytest.raises(UserError, match="go together"):
        TLSConfig(lab.a.cert, None)


# ---------------------------------------------------------------------------- presets
def test_presets():
    assert PRESETS["all_ciphers_rsa_preferred"] == (
        "ECDHE-RSA-AES256-GCM-SHA384:ECDHE-ECDSA-AES256-GCM-SHA384:ECDHE-RSA-AES128-GCM-SHA256:"
        "ECDHE-ECDSA-AES128-GCM-SHA256:AES128-SHA")
    assert resolve_ciphers(None) == PRESETS["all_ciphers_rsa_preferred"]
    assert resolve_ciphers("All Ciphers ECDSA Preferred").startswith("ECDHE-ECDSA-AES256-GCM-SHA384:ECDHE-RSA")
    assert "AES128" not in resolve_ciphers("strongest")
    assert resolve_ciphers(None, mode="authenticated") == AUTHENTICATED + ":@SECLEVEL=0"
    assert resolve_ciphers("AES128-SHA", min_version="1.0") == "AES128-SHA:@SECLEVEL=0"
    assert resolve_ciphers("AES128-SHA@SECLEVEL=1", min_version="1.0") == "AES128-SHA@SECLEVEL=1"
    assert resolve_ciphers("AES128-SHA", security_level=1) == "AES128-SHA:@SECLEVEL=1"
    with pytest.raises(UserError, match="preset"):
        resolve_ciphers("very strong please")


@pytest.mark.parametrize("name", sorted(PRESETS))
def test_every_preset_builds_a_context(lab, name):
    ctx = build_context(TLSConfig(lab.a.cert, lab.a.key, ciphers=name), server_side=True)
    conn = SSL.Connection(ctx, None)
    names = conn.get_cipher_list()
    assert names and set(n for n in names if not n.startswith("TLS_")) <= set(PRESETS[name].split(":"))


def test_authenticated_mode_caps_at_tls12(lab):
    ctx = build_context(TLSConfig(lab.a.cert, lab.a.key, mode="authenticated"), server_side=False)
    conn = SSL.Connection(ctx, None)
    assert {n for n in conn.get_cipher_list() if not n.startswith("TLS_")} <= set(AUTHENTICATED.split(":"))
    with pytest.raises(UserError, match="TLS 1.2 or lower"):
        build_context(TLSConfig(lab.a.cert, lab.a.key, mode="authenticated", min_version="1.3"), False)


# ---------------------------------------------------------------------------- context errors
def test_missing_files_name_the_file(tmp_path, lab):
    with pytest.raises(UserError, match=r"certificate file .*nope.pem does not exist"):
        build_context(TLSConfig(tmp_path / "nope.pem", lab.a.key), server_side=True)
    with pytest.raises(UserError, match=r"private key file .*nokey does not exist"):
        build_context(TLSConfig(lab.a.cert, tmp_path / "nokey"), server_side=True)
    with pytest.raises(UserError, match=r"trust file .*missing-trust.pem does not exist"):
        build_context(TLSConfig(lab.a.cert, lab.a.key, trust_files=(tmp_path / "missing-trust.pem",)), True)
    junk = tmp_path / "junk.pem"
    junk.write_text("-----BEGIN CERTIFICATE-----\nnot base64\n-----END CERTIFICATE-----\n")
    with pytest.raises(UserError, match="junk.pem holds no readable certificate"):
        build_context(TLSConfig(junk, lab.a.key), server_side=True)


def test_key_not_matching_certificate(lab):
    with pytest.raises(UserError, match="does not match certificate file"):
        build_context(TLSConfig(lab.a.cert, lab.b.key), server_side=True)


def test_unknown_cipher_list(lab):
    with pytest.raises(UserError, match="match no cipher"):
        build_context(TLSConfig(lab.a.cert, lab.a.key, ciphers="FOO-BAR:BAZ-QUX"), server_side=True)


def test_trust_file_with_several_certificates_and_ca_list(tmp_path, lab):
    bundle = tmp_path / "bundle.pem"
    bundle.write_bytes(lab.a.cert.read_bytes() + lab.c.cert.read_bytes())
    ctx = build_context(TLSConfig(lab.b.cert, lab.b.key, trust_files=(bundle, lab.a.cert)), server_side=True)
    info = context_info(ctx)
    assert [t.cn for t in info.trust] == [lab.a.cn, lab.c.cn, lab.a.cn]
    assert info.ca_names == [f"CN={lab.a.cn},OU=cisco,O=cisco,L=cisco,ST=cisco,C=IN",
                             f"CN={lab.c.cn},OU=cisco,O=cisco,L=cisco,ST=cisco,C=IN"]
    assert ctx.get_verify_mode() == SSL.VERIFY_PEER | SSL.VERIFY_FAIL_IF_NO_PEER_CERT


def test_der_trust_file(tmp_path, lab):
    from cryptography.hazmat.primitives.serialization import Encoding
    cert = x509.load_pem_x509_certificate(lab.a.cert.read_bytes())
    der = tmp_path / "a.der"
    der.write_bytes(cert.public_bytes(Encoding.DER))
    ctx = build_context(TLSConfig(lab.b.cert, lab.b.key, trust_files=(der,)), server_side=False)
    assert context_info(ctx).trust[0].cn == lab.a.cn


# ---------------------------------------------------------------------------- CertInfo
def _seed_cert():
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    subject = x509.Name([
        x509.NameAttribute(NameOID.COUNTRY_NAME, "IN"),
        x509.NameAttribute(NameOID.STATE_OR_PROVINCE_NAME, "cisco"),
        x509.NameAttribute(NameOID.LOCALITY_NAME, "cisco"),
        x509.NameAttribute(NameOID.ORGANIZATION_NAME, "cisco"),
        x509.NameAttribute(NameOID.ORGANIZATIONAL_UNIT_NAME, "cisco"),
        x509.NameAttribute(NameOID.COMMON_NAME, "CUCM10"),
    ])
    issuer = x509.Name([x509.NameAttribute(NameOID.DOMAIN_COMPONENT, "CA"), x509.NameAttribute(NameOID.COMMON_NAME, "CA")])
    t = datetime.datetime(2015, 5, 23, 12, 20, 42, tzinfo=datetime.timezone.utc)
    cert = (x509.CertificateBuilder().subject_name(subject).issuer_name(issuer).public_key(key.public_key())
            .serial_number(0x398B1DA600000000000E).not_valid_before(t)
            .not_valid_after(t + datetime.timedelta(days=366))
            .add_extension(x509.SubjectAlternativeName([x509.DNSName("cucm10.lab"),
                                                        x509.IPAddress(__import__("ipaddress").ip_address("10.106.95.200"))]), False)
            .sign(key, hashes.SHA256()))
    return cert


def test_certinfo_like_cucm_trace():
    cert = _seed_cert()
    ci = CertInfo.from_certificate(cert)
    assert ci.slash_subject == "/C=IN/ST=cisco/L=cisco/O=cisco/OU=cisco/CN=CUCM10"
    assert ci.subject == "CN=CUCM10,OU=cisco,O=cisco,L=cisco,ST=cisco,C=IN"
    assert ci.issuer == "CN=CA,DC=CA" and ci.slash_issuer == "/DC=CA/CN=CA"
    assert ci.cn == "CUCM10" and ci.sans == ("cucm10.lab",) and ci.ip_sans == ("10.106.95.200",)
    assert ci.serial == "398b1da600000000000e"
    assert ci.not_before == "2015-05-23T12:20:42Z"
    assert ci.key == "RSA 2048" and ci.signature_hash == "sha256"
    assert ci.sha256 == cert.fingerprint(hashes.SHA256()).hex()
    assert ci.names() == ["CUCM10", "cucm10.lab", "10.106.95.200"]
    d = ci.to_dict()
    assert d["sans"] == ["cucm10.lab"] and "der" not in d and d["self_signed"] is False
    # every field but the DER, tuples as lists (the report's certificate objects)
    import dataclasses
    fields = [f.name for f in dataclasses.fields(CertInfo) if f.name != "der"]
    assert list(d) == fields
    assert d == {k: list(v) if isinstance(v, tuple) else v for k, v in dataclasses.asdict(ci).items() if k != "der"}
    assert d is not ci.to_dict()
    assert ci.to_certificate() == cert


def test_certinfo_ec_and_eku(tmp_path):
    ident = self_signed(tmp_path, "ec.lab", key_kind="ec")
    ci = CertInfo.from_certificate(x509.load_pem_x509_certificate(ident.cert.read_bytes()))
    assert ci.key == "EC P-256" and ci.eku == ("serverAuth", "clientAuth") and ci.self_signed


# ---------------------------------------------------------------------------- transcript naming
def test_state_strings():
    assert state_message("SSLv3/TLS write finished") == ("sent", "Finished")
    assert state_message("TLSv1.3 read encrypted extensions") == ("received", "Encrypted Extensions")
    assert state_message("SSLv3/TLS read server done") == ("received", "Server Hello Done")
    assert state_message("SSLv3/TLS write key exchange") == ("sent", "Server Key Exchange")
    assert state_message("SSLv3/TLS write session ticket") == ("sent", "New Session Ticket")
    assert state_message("TLSv1.3 read server certificate verify") == ("received", "Certificate Verify")
    assert state_message("before SSL initialization") is None
    assert state_message("TLSv1.3 early data") is None


def test_alert_names():
    assert alert_message(2, 48) == "Alert (Level: Fatal, Description: Unknown CA)"
    assert alert_message(1, 0) == "Alert (Level: Warning, Description: Close Notify)"
    assert alert_message(2, 116) == "Alert (Level: Fatal, Description: Certificate Required)"


def test_records_split_across_chunks_and_coalesced():
    tb = TranscriptBuilder(lambda: 0.0)
    # Server Hello + Certificate + Server Hello Done in ONE handshake record, delivered in 3 chunks
    sh = b"\x02" + (38).to_bytes(3, "big") + b"\x03\x01" + b"\x11" * 32 + b"\x00" + b"\x00\x2f" + b"\x00"
    cert = b"\x0b" + (3).to_bytes(3, "big") + b"\x00\x00\x00"
    shd = b"\x0e\x00\x00\x00"
    body = sh + cert + shd
    rec = b"\x16\x03\x01" + len(body).to_bytes(2, "big") + body
    for part in (rec[:3], rec[3:20], rec[20:]):
        tb.on_wire("received", part)
    tb.resolve_received(len(rec))
    assert [(f.direction, f.messages, f.nbytes) for f in tb.flights] == [
        ("received", ["Server Hello", "Certificate", "Server Hello Done"], len(rec))]


def test_encrypted_records_take_callback_names_only_once_consumed():
    tb = TranscriptBuilder(lambda: 0.0)
    ccs = b"\x14\x03\x03\x00\x01\x01"
    fin = b"\x16\x03\x03\x00\x28" + b"\xaa" * 40
    tb.on_wire("received", ccs + fin)
    tb.resolve_received(len(ccs))            # OpenSSL has read the CCS only
    assert tb.flights[0].messages == ["Change Cipher Spec"]
    tb.begin_call()
    tb.on_state("SSLv3/TLS read finished")
    tb.resolve_received(len(ccs + fin))
    assert tb.flights[0].messages == ["Change Cipher Spec", "Finished"]
    assert tb.flights[0].encrypted_messages == [False, True]


def test_reentry_state_is_not_counted_twice():
    tb = TranscriptBuilder(lambda: 0.0)
    tb.begin_call()
    tb.on_state("SSLv3/TLS write finished")
    tb.begin_call()
    tb.on_state("SSLv3/TLS write finished")      # OpenSSL repeats the state on re-entry
    tb.on_wire("sent", b"\x14\x03\x03\x00\x01\x01" + b"\x16\x03\x03\x00\x10" + b"\x00" * 16)
    tb.handshake_done = True
    tb.on_wire("sent", b"\x17\x03\x03\x00\x10" + b"\x00" * 16)
    assert tb.flights[0].messages == ["Change Cipher Spec", "Finished", "Application Data"]


def test_not_tls_detection():
    assert looks_like_tls(b"\x16\x03\x01\x00")
    assert not looks_like_tls(b"OPTIONS sip:")
    assert not looks_like_tls(b"\x16\x02")
    tb = TranscriptBuilder(lambda: 0.0)
    tb.on_wire("received", b"SIP/2.0 200 OK\r\n")
    assert tb.not_tls() and tb.flights[0].messages == ['Not TLS: "SIP/2.0 200 OK\\r\\n"']


def test_format_transcript():
    f = [Flight("sent", 0.0, 66, ["Client Hello"], False, [False]),
         Flight("received", 1.0, 900, ["Server Hello", "Finished"], True, [False, True])]
    assert format_transcript(f) == ["→ Client Hello", "← Server Hello, Finished (encrypted)"]
    assert format_transcript(f, mark_encrypted=False)[1] == "← Server Hello, Finished"


def test_stream_registry_is_weak_and_keeps_a_replacement():
    """SSL pointer → TLSStream lookups for the OpenSSL callbacks: an entry goes when its stream is
    freed (no garbage collector needed), and a stale entry's removal never drops its replacement."""
    import gc

    from sipsim.tls.context import STREAMS, register_stream, stream_of

    class Owner:
        pass

    key_a, key_b = object(), object()
    a, b = Owner(), Owner()
    register_stream(key_a, a)
    assert stream_of(key_a) is a
    gc.disable()
    try:
        del a
        assert stream_of(key_a) is None and key_a not in STREAMS      # freed by reference counting
    finally:
        gc.enable()
    old, new = Owner(), Owner()
    register_stream(key_b, old)
    register_stream(key_b, new)          # the same SSL address used again before `old` is freed
    del old
    assert stream_of(key_b) is new
    del new
    assert key_b not in STREAMS
    assert stream_of(object()) is None
