import datetime as dt
import os
import stat

import pytest
from cryptography import x509

from sipsim.errors import UserError
from sipsim.pki import files, issue, keys
from sipsim.pki.material import IdentitySpec, LabPKI, NodeFiles, certs_init, ensure_lab_pki

from .conftest import openssl

UTC = dt.timezone.utc
SEED = {"OU": "cisco", "O": "cisco", "L": "cisco", "ST": "cisco", "C": "IN"}


def specs():
    return [
        IdentitySpec("CUCM7-PUB.bbbburns.lab", sans=("CUCM7-PUB.bbbburns.lab",), subject=SEED),
        IdentitySpec("CUCM7-SUB1.bbbburns.lab", sans=("CUCM7-SUB1.bbbburns.lab",), key="ec-p256"),
        IdentitySpec("CUCM8-Publisher.bbbburns.lab"),
    ]


def snapshot(directory):
    return {p.name: (p.stat().st_mtime_ns, p.read_bytes()) for p in directory.rglob("*") if p.is_file()}


def test_self_signed_layout_and_files(tmp_path):
    pki = ensure_lab_pki(tmp_path, "self-signed", specs())
    assert isinstance(pki, LabPKI)
    nf = pki.files("CUCM7-PUB.bbbburns.lab")
    assert nf == NodeFiles(tmp_path / "CUCM7-PUB.bbbburns.lab.pem", tmp_path / "CUCM7-PUB.bbbburns.lab.key", ())
    assert pki.files("cucm7-pub.bbbburns.lab") == nf  # CN compare without case
    assert pki.trust_file("CUCM7-PUB.bbbburns.lab") == nf.cert
    assert pki.ca_file is None
    for s in specs():
        f = pki.files(s.cn)
        assert stat.S_IMODE(f.key.stat().st_mode) == 0o600
        cert = files.load_certificate(f.cert)
        assert issue.common_name(cert) == s.cn and issue.is_self_signed(cert)
        assert keys.key_spec_of(files.load_private_key(f.key)) == s.key
        assert keys.public_keys_equal(cert.public_key(), files.load_private_key(f.key))
        # self-signed identity trusted by itself, as CUCM does with CallManager-trust
        openssl("verify", "-CAfile", str(f.cert), "-purpose", "sslserver", str(f.cert))
        openssl("verify", "-CAfile", str(f.cert), "-purpose", "sslclient", str(f.cert))
    pub = files.load_certificate(nf.cert)
    assert pub.subject.rfc4514_string() == "CN=CUCM7-PUB.bbbburns.lab,OU=cisco,O=cisco,L=cisco,ST=cisco,C=IN"
    assert len(pki.events) == 3
    assert pki.events[0].startswith("made CUCM7-PUB.bbbburns.lab.pem (self-signed RSA 2048, SHA-256, valid to ")
    assert "EC P-256" in pki.events[1]
    with pytest.raises(UserError, match="no certificate for 'nope'"):
        pki.files("nope")


def test_idempotent_second_call_keeps_files(tmp_path):
    ensure_lab_pki(tmp_path, "self-signed", specs())
    before = snapshot(tmp_path)
    pki = ensure_lab_pki(tmp_path, "self-signed", specs())
    assert snapshot(tmp_path) == before
    assert all(e.startswith("kept ") for e in pki.events), pki.events


def test_force_remakes_everything_with_new_keys(tmp_path):
    p1 = ensure_lab_pki(tmp_path, "self-signed", specs())
    old_keys = {cn: p1.files(cn).key.read_bytes() for cn in p1.identities}
    old_certs = {cn: p1.files(cn).cert.read_bytes() for cn in p1.identities}
    p2 = ensure_lab_pki(tmp_path, "self-signed", specs(), force=True)
    assert all(e.startswith("remade ") and "(forced;" in e for e in p2.events), p2.events
    for cn in p2.identities:
        assert p2.files(cn).key.read_bytes() != old_keys[cn]
        assert p2.files(cn).cert.read_bytes() != old_certs[cn]


def test_mismatch_is_remade_and_reported(tmp_path):
    ensure_lab_pki(tmp_path, "self-signed", specs())
    key_before = (tmp_path / "CUCM8-Publisher.bbbburns.lab.key").read_bytes()
    changed = specs()
    changed[2] = IdentitySpec("CUCM8-Publisher.bbbburns.lab", sans=("cucm8-pub.bbbburns.lab",))
    changed[1] = IdentitySpec("CUCM7-SUB1.bbbburns.lab", sans=("CUCM7-SUB1.bbbburns.lab",), key="rsa2048")
    pki = ensure_lab_pki(tmp_path, "self-signed", changed)
    ev = {e.split()[1]: e for e in pki.events}
    assert ev["CUCM7-PUB.bbbburns.lab.pem"].startswith("kept ")
    assert ev["CUCM7-SUB1.bbbburns.lab.pem"].startswith("remade ") and "key is EC P-256" in ev["CUCM7-SUB1.bbbburns.lab.pem"]
    assert "SANs are none" in ev["CUCM8-Publisher.bbbburns.lab.pem"]
    cert = files.load_certificate(tmp_path / "CUCM8-Publisher.bbbburns.lab.pem")
    assert issue.dns_sans(cert) == ["cucm8-pub.bbbburns.lab"]
    # the key was fine (same type): reused, only the certificate changed
    assert (tmp_path / "CUCM8-Publisher.bbbburns.lab.key").read_bytes() == key_before


def test_expired_material_is_remade(tmp_path):
    s = IdentitySpec("node.lab")
    k = keys.new_private_key()
    files.write_private_key(tmp_path / "node.lab.key", k)
    old = issue.self_signed_identity(k, "node.lab", not_after=dt.datetime(2025, 1, 1, tzinfo=UTC))
    files.write_certificates(tmp_path / "node.lab.pem", [old])
    pki = ensure_lab_pki(tmp_path, "self-signed", [s])
    assert pki.events[0].startswith("remade node.lab.pem (expired 2025-01-01; now self-signed RSA 2048")
    assert files.load_certificate(tmp_path / "node.lab.pem").not_valid_after_utc > dt.datetime.now(UTC)


def test_expired_spec_is_honoured_and_not_repaired(tmp_path):
    s = IdentitySpec("expired.lab", not_after="2025-01-01")
    pki = ensure_lab_pki(tmp_path, "self-signed", [s])
    assert "expired 2025-01-01, as the spec asks" in pki.events[0]
    c = files.load_certificate(pki.files("expired.lab").cert)
    assert c.not_valid_after_utc == dt.datetime(2025, 1, 1, tzinfo=UTC)
    before = snapshot(tmp_path)
    pki = ensure_lab_pki(tmp_path, "self-signed", [s])
    assert pki.events[0].startswith("kept expired.lab.pem") and snapshot(tmp_path) == before
    # openssl agrees it is expired
    r = openssl("verify", "-CAfile", str(pki.files("expired.lab").cert), str(pki.files("expired.lab").cert), check=False)
    assert r.returncode != 0 and b"expired" in r.stdout + r.stderr
    # a different explicit date is a mismatch
    pki = ensure_lab_pki(tmp_path, "self-signed", [IdentitySpec("expired.lab", not_after="2024-06-01")])
    assert pki.events[0].startswith("remade expired.lab.pem (valid to 2025-01-01 00:00:00Z, spec says 2024-06-01")


def test_not_yet_valid_spec(tmp_path):
    s = IdentitySpec("future.lab", not_before="2040-01-01", days=30)
    pki = ensure_lab_pki(tmp_path, "self-signed", [s])
    c = files.load_certificate(pki.files("future.lab").cert)
    assert c.not_valid_before_utc == dt.datetime(2040, 1, 1, tzinfo=UTC)
    assert c.not_valid_after_utc == dt.datetime(2040, 1, 31, tzinfo=UTC)
    assert ensure_lab_pki(tmp_path, "self-signed", [s]).events[0].startswith("kept ")


def test_ca_mode_without_intermediate(tmp_path):
    pki = ensure_lab_pki(tmp_path, "ca", specs())
    root = tmp_path / "ca" / "sipsim Lab Root CA.pem"
    assert pki.ca_file == root and root.exists()
    assert stat.S_IMODE((tmp_path / "ca" / "sipsim Lab Root CA.key").stat().st_mode) == 0o600
    for s in specs():
        nf = pki.files(s.cn)
        assert nf.chain == ()
        assert not (tmp_path / f"{s.cn}-chain.pem").exists()
        assert pki.trust_file(s.cn) == root
        openssl("verify", "-CAfile", str(root), "-purpose", "sslserver", str(nf.cert))
        openssl("verify", "-CAfile", str(root), "-purpose", "sslclient", str(nf.cert))
    assert pki.trust_files() == [root]
    assert pki.events[0].startswith("made ca/sipsim Lab Root CA.pem (lab root CA RSA 2048")
    assert "signed by sipsim Lab Root CA, RSA 2048" in pki.events[1]
    before = snapshot(tmp_path)
    again = ensure_lab_pki(tmp_path, "ca", specs())
    assert snapshot(tmp_path) == before and all(e.startswith("kept") for e in again.events)


def test_ca_mode_with_intermediate_then_switch_back(tmp_path):
    pki = ensure_lab_pki(tmp_path, "ca", specs(), intermediate=True, ca_cn="Bbbburns Root")
    root = tmp_path / "ca" / "Bbbburns Root.pem"
    inter = tmp_path / "ca" / "Bbbburns Intermediate.pem"
    assert pki.ca_file == root and pki.intermediate_file == inter
    for s in specs():
        nf = pki.files(s.cn)
        chain = tmp_path / f"{s.cn}-chain.pem"
        assert nf.chain == (chain,) and chain.exists()
        assert files.load_certificates(chain) == files.load_certificates(inter)
        assert issue.issued_by(files.load_certificate(nf.cert), files.load_certificate(inter))
        openssl("verify", "-CAfile", str(root), "-untrusted", str(chain), "-purpose", "sslserver", str(nf.cert))
        r = openssl("verify", "-CAfile", str(root), str(nf.cert), check=False)
        assert r.returncode != 0  # without the chain it cannot be verified
    before = snapshot(tmp_path)
    assert all(e.startswith("kept") for e in ensure_lab_pki(tmp_path, "ca", specs(), intermediate=True,
                                                            ca_cn="Bbbburns Root").events)
    assert snapshot(tmp_path) == before
    # back to root-signed: identities are re-signed, chain files go away, the root is kept
    pki = ensure_lab_pki(tmp_path, "ca", specs(), ca_cn="Bbbburns Root")
    assert pki.events[0].startswith("kept ca/Bbbburns Root.pem")
    assert any("removed CUCM8-Publisher.bbbburns.lab-chain.pem" in e for e in pki.events)
    for s in specs():
        assert pki.files(s.cn).chain == ()
        openssl("verify", "-CAfile", str(root), str(pki.files(s.cn).cert))


def test_switching_mode_remakes_and_new_root_resigns(tmp_path):
    ensure_lab_pki(tmp_path, "self-signed", specs())
    pki = ensure_lab_pki(tmp_path, "ca", specs())
    assert all("self-signed, spec says signed by sipsim Lab Root CA" in e for e in pki.events[1:])
    pki = ensure_lab_pki(tmp_path, "ca", specs(), force=False, ca_key="ec-p256")
    assert pki.events[0].startswith("remade ca/sipsim Lab Root CA.pem (key is RSA 2048, spec says ec-p256")
    assert all("not signed by the current sipsim Lab Root CA" in e for e in pki.events[1:]), pki.events
    pki = ensure_lab_pki(tmp_path, "self-signed", specs())
    assert all("spec says self-signed" in e for e in pki.events), pki.events


def test_world_readable_key_in_lab_dir_refused(tmp_path):
    pki = ensure_lab_pki(tmp_path, "self-signed", specs()[:1])
    key = pki.files(specs()[0].cn).key
    key.chmod(0o644)
    with pytest.raises(UserError, match="chmod 600"):
        ensure_lab_pki(tmp_path, "self-signed", specs()[:1])


def test_broken_files_remade(tmp_path):
    pki = ensure_lab_pki(tmp_path, "self-signed", specs()[:1])
    nf = pki.files(specs()[0].cn)
    nf.cert.write_bytes(b"garbage")
    pki = ensure_lab_pki(tmp_path, "self-signed", specs()[:1])
    assert pki.events[0].startswith("remade CUCM7-PUB.bbbburns.lab.pem (certificate unreadable;")
    nf.key.unlink()
    pki = ensure_lab_pki(tmp_path, "self-signed", specs()[:1])
    assert "(key missing;" in pki.events[0]
    # someone else's key next to our certificate
    files.write_private_key(nf.key, keys.new_private_key())
    pki = ensure_lab_pki(tmp_path, "self-signed", specs()[:1])
    assert "key does not match the certificate" in pki.events[0]
    assert keys.public_keys_equal(files.load_certificate(nf.cert).public_key(), files.load_private_key(nf.key))


@pytest.mark.parametrize("kwargs, match", [
    ({"mode": "weird"}, "self-signed or ca"),
    ({"specs": [IdentitySpec("a", key="dsa")]}, "unknown key type"),
    ({"specs": [IdentitySpec("a", hash="md5")]}, "unknown hash"),
    ({"specs": [IdentitySpec("a"), IdentitySpec("a", key="ec-p256")]}, "two different"),
    ({"specs": [IdentitySpec("a", subject={"C": "India"})]}, "two-letter"),
])
def test_bad_specs(tmp_path, kwargs, match):
    args = {"mode": "self-signed", "specs": [IdentitySpec("a")]} | kwargs
    with pytest.raises(UserError, match=match):
        ensure_lab_pki(tmp_path, args["mode"], args["specs"])


def test_sixteen_identities_fast_enough(tmp_path):
    import time

    many = [IdentitySpec(f"node{i:02d}.lab", sans=(f"node{i:02d}.lab",)) for i in range(16)]
    t = time.monotonic()
    pki = ensure_lab_pki(tmp_path, "ca", many)
    made = time.monotonic() - t
    t = time.monotonic()
    ensure_lab_pki(tmp_path, "ca", many)
    kept = time.monotonic() - t
    assert len(pki.identities) == 16
    assert made < 20 and kept < 1.0, (made, kept)


def test_certs_init_entry_point_prints_events_and_upload_guide(tmp_path):
    lines = []
    pki = certs_init(tmp_path, "ca", specs()[:2], out=lines.append)
    assert lines[: len(pki.events)] == pki.events
    guide = lines[len(pki.events):]
    assert guide[0] == ("CUCM7-PUB.bbbburns.lab: upload CUCM7-PUB.bbbburns.lab.pem as CallManager on "
                        "CUCM7-PUB.bbbburns.lab; peers upload ca/sipsim Lab Root CA.pem as CallManager-trust")


def test_identity_spec_accepts_lists_and_single_san():
    assert IdentitySpec("a", sans=["x", "y"]).sans == ("x", "y")
    assert IdentitySpec("a", sans="x").sans == ("x",)
