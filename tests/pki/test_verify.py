import datetime as dt

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import serialization

from sipsim.errors import UserError
from sipsim.pki import files, issue, keys
from sipsim.pki.verify import REASONS, verify_chain

from .conftest import openssl

UTC = dt.timezone.utc
SEED = {"OU": "cisco", "O": "cisco", "L": "cisco", "ST": "cisco", "C": "IN"}


class World:
    """Keys are slow-ish: make them once per module."""

    def __init__(self):
        self.k = [keys.new_private_key("ec-p256") for _ in range(6)]
        # back-dated so that checks "at" 2024 find a valid root
        self.root = issue.make_ca(self.k[0], "CA", {"DC": "CA"}, path_length=1, not_before="2020-01-01",
                                  not_after="2040-01-01")
        self.inter = issue.make_ca(self.k[1], "Inter", path_length=0, issuer_cert=self.root, issuer_key=self.k[0])
        self.leaf = issue.ca_signed_identity(self.k[2], "CUCM10", self.root, self.k[0], ["CUCM10.lab"], SEED)
        self.leaf_via_inter = issue.ca_signed_identity(self.k[2], "CUCM11", self.inter, self.k[1])
        self.selfsigned = issue.self_signed_identity(self.k[3], "CUCMA", subject=SEED)
        self.other_root = issue.make_ca(self.k[4], "Other CA")
        self.fake_root = issue.make_ca(self.k[5], "CA", {"DC": "CA"})  # same name, other key


@pytest.fixture(scope="module")
def w():
    return World()


def test_self_signed_trusted_by_itself(w):
    r = verify_chain(w.selfsigned, trust=[w.selfsigned], purpose="server")
    assert r.ok and r.reason is None and r.warnings == []
    assert r.sentence.startswith("CN=CUCMA, OU=cisco, O=cisco, L=cisco, ST=cisco, C=IN is trusted as a TLS server: "
                                 "it is self-signed and in the trust files")
    assert bool(r) is True
    assert verify_chain(w.selfsigned, trust=[w.selfsigned], purpose="client").ok


def test_self_signed_untrusted(w):
    r = verify_chain(w.selfsigned, trust=[w.root])
    assert (r.ok, r.reason) == (False, "self_signed_untrusted")
    assert r.sentence.startswith("CN=CUCMA, OU=cisco") and "upload this certificate itself as CallManager-trust" in r.sentence
    assert not r


def test_regenerated_self_signed_mentions_the_old_one(w):
    newer = issue.self_signed_identity(keys.new_private_key("ec-p256"), "CUCMA", subject=SEED)
    r = verify_chain(newer, trust=[w.selfsigned])
    assert r.reason == "self_signed_untrusted" and "regenerated" in r.sentence


def test_ca_signed_ok_and_unknown_issuer(w):
    assert verify_chain(w.leaf, trust=[w.root], purpose="server").ok
    r = verify_chain(w.leaf, trust=[w.other_root, w.selfsigned])
    assert r.reason == "unknown_issuer"
    assert r.sentence == ("CN=CUCM10, OU=cisco, O=cisco, L=cisco, ST=cisco, C=IN was issued by CN=CA, DC=CA, which "
                          "is not in the trust files given: upload the CA's root certificate as CallManager-trust")


def test_intermediate_needs_chain(w):
    r = verify_chain(w.leaf_via_inter, chain=[w.inter], trust=[w.root])
    assert r.ok and [issue.common_name(c) for c in r.path] == ["CUCM11", "Inter", "CA"]
    assert "issued by CN=Inter → CN=CA, DC=CA" in r.sentence
    r = verify_chain(w.leaf_via_inter, trust=[w.root])
    assert r.reason == "unknown_issuer" and "CN=Inter" in r.sentence
    # root sent in the chain but not trusted
    r = verify_chain(w.leaf_via_inter, chain=[w.inter, w.root], trust=[w.other_root])
    assert r.reason == "unknown_issuer" and "chains up to the root CN=CA, DC=CA" in r.sentence
    # the intermediate alone in the trust files is not an anchor unless partial_chain
    r = verify_chain(w.leaf_via_inter, trust=[w.inter])
    assert r.reason == "unknown_issuer" and "is in the trust files but its issuer" in r.sentence
    assert verify_chain(w.leaf_via_inter, trust=[w.inter], partial_chain=True).ok


def test_expired_and_not_yet_valid(w):
    old = issue.ca_signed_identity(w.k[2], "OLD", w.root, w.k[0], not_after="2025-01-01")
    r = verify_chain(old, trust=[w.root])
    assert r.reason == "expired" and "CN=OLD expired on 2025-01-01 00:00:00 GMT" in r.sentence
    assert "new CSR" in r.sentence
    future = w.leaf.not_valid_after_utc + dt.timedelta(days=1)
    assert verify_chain(w.leaf, trust=[w.root], at=future).reason == "expired"
    past = w.leaf.not_valid_before_utc - dt.timedelta(days=1)
    r = verify_chain(w.leaf, trust=[w.root], at=past)
    assert r.reason == "not_yet_valid" and "NTP" in r.sentence
    assert verify_chain(old, trust=[w.root], at="2024-06-01").ok
    ss_old = issue.self_signed_identity(w.k[3], "SS", not_after="2025-01-01")
    assert "regenerate it" in verify_chain(ss_old, trust=[ss_old]).sentence


def test_expired_ca(w):
    old_root = issue.make_ca(w.k[0], "Old Root", not_after="2025-01-01")
    leaf = issue.ca_signed_identity(w.k[2], "n", old_root, w.k[0])
    r = verify_chain(leaf, trust=[old_root])
    assert r.reason == "expired" and "CN=Old Root (in its chain) expired" in r.sentence


@pytest.mark.parametrize("ekus, purpose, reason", [
    (["clientAuth"], "server", "missing_server_auth"),
    (["serverAuth"], "client", "missing_client_auth"),
    (["ipsec"], "server", "missing_server_auth"),
])
def test_purpose(w, ekus, purpose, reason):
    c = issue.ca_signed_identity(w.k[2], "n", w.root, w.k[0], ekus=ekus)
    r = verify_chain(c, trust=[w.root], purpose=purpose)
    assert r.reason == reason and "CallManager EKUs" in r.sentence
    assert verify_chain(c, trust=[w.root]).ok  # no purpose asked: fine


def test_no_eku_means_any_purpose(w):
    c = issue.ca_signed_identity(w.k[2], "n", w.root, w.k[0], ekus=[])
    assert verify_chain(c, trust=[w.root], purpose="server").ok


def test_bad_signature_same_name_other_key(w):
    r = verify_chain(w.leaf, trust=[w.fake_root])
    assert r.reason == "bad_signature" and "same name, different key" in r.sentence


def _tampered(cert):
    der = bytearray(cert.public_bytes(serialization.Encoding.DER))
    der[-3] ^= 0x01
    return x509.load_der_x509_certificate(bytes(der))


def test_bad_signature_tampered(w):
    leaf = issue.ca_signed_identity(keys.new_private_key("rsa2048"), "T", w.root, w.k[0])
    # RSA signatures sit at the end of the DER; flip one bit of it
    r = verify_chain(_tampered(leaf), trust=[w.root])
    assert r.reason == "bad_signature"


def test_issuer_not_a_ca(w):
    c = issue.issue_identity(w.k[2].public_key(), issue.build_name("n"), issuer_cert=w.selfsigned, issuer_key=w.k[3])
    r = verify_chain(c, trust=[w.selfsigned])
    assert r.reason == "invalid_ca" and "is not a CA" in r.sentence


def test_pathlen_exceeded(w):
    inter2 = issue.make_ca(w.k[4], "Inter2", issuer_cert=w.inter, issuer_key=w.k[1])
    leaf = issue.ca_signed_identity(w.k[2], "deep", inter2, w.k[4])
    r = verify_chain(leaf, chain=[inter2, w.inter], trust=[w.root])
    assert r.reason == "invalid_ca" and "pathlen" in r.sentence


def test_warnings_sha1_and_small_rsa():
    k = keys.new_private_key("rsa1024")
    c = issue.self_signed_identity(k, "CUCM10", hash="sha1")
    r = verify_chain(c, trust=[c])
    assert r.ok
    # self-signed leaf trusted directly: its signature is not used, the key size still matters
    assert len(r.warnings) == 1 and "1024-bit RSA key" in r.warnings[0]
    ca_key = keys.new_private_key("rsa2048")
    ca = issue.make_ca(ca_key, "CA")
    leaf = issue.ca_signed_identity(k, "CUCM10", ca, ca_key, hash="sha1")
    r = verify_chain(leaf, trust=[ca])
    assert r.ok and any("SHA-1 (SHA1withRSA)" in x for x in r.warnings) and any("1024-bit" in x for x in r.warnings)


def test_paths_and_errors(tmp_path, w):
    leaf = files.write_certificates(tmp_path / "leaf.pem", [w.leaf_via_inter, w.inter])
    root = files.write_certificates(tmp_path / "root.pem", [w.root])
    assert verify_chain(leaf, trust=[root]).ok  # leaf file carrying its chain
    with pytest.raises(UserError, match="purpose"):
        verify_chain(w.leaf, trust=[w.root], purpose="both")
    with pytest.raises(UserError, match="does not exist"):
        verify_chain(w.leaf, trust=[tmp_path / "missing.pem"])


# --- openssl verify agrees ----------------------------------------------------------------------

def _scenarios(w):
    old = issue.ca_signed_identity(w.k[2], "OLD", w.root, w.k[0], not_after="2025-01-01")
    client_only = issue.ca_signed_identity(w.k[2], "c", w.root, w.k[0], ekus=["clientAuth"])
    not_ca = issue.issue_identity(w.k[2].public_key(), issue.build_name("n"), issuer_cert=w.selfsigned,
                                  issuer_key=w.k[3])
    tampered = _tampered(issue.ca_signed_identity(keys.new_private_key("rsa2048"), "T", w.root, w.k[0]))
    sha1 = issue.ca_signed_identity(keys.new_private_key("rsa1024"), "SHA1", w.root, w.k[0], hash="sha1")
    inter2 = issue.make_ca(w.k[4], "Inter2", issuer_cert=w.inter, issuer_key=w.k[1])
    deep = issue.ca_signed_identity(w.k[2], "deep", inter2, w.k[4])
    return {
        "selfsigned-ok": (w.selfsigned, [], [w.selfsigned], None, None, None),
        "selfsigned-untrusted": (w.selfsigned, [], [w.root], None, None, "self_signed_untrusted"),
        "ca-ok": (w.leaf, [], [w.root], "server", None, None),
        "ca-unknown": (w.leaf, [], [w.other_root], None, None, "unknown_issuer"),
        "inter-ok": (w.leaf_via_inter, [w.inter], [w.root], "client", None, None),
        "inter-missing": (w.leaf_via_inter, [], [w.root], None, None, "unknown_issuer"),
        "expired": (old, [], [w.root], None, None, "expired"),
        "expired-ok-at": (old, [], [w.root], None, dt.datetime(2024, 6, 1, tzinfo=UTC), None),
        "not-yet-valid": (w.leaf, [], [w.root], None, w.leaf.not_valid_before_utc - dt.timedelta(days=2),
                          "not_yet_valid"),
        "eku-server": (client_only, [], [w.root], "server", None, "missing_server_auth"),
        "eku-client-ok": (client_only, [], [w.root], "client", None, None),
        "fake-root": (w.leaf, [], [w.fake_root], None, None, "bad_signature"),
        "tampered": (tampered, [], [w.root], None, None, "bad_signature"),
        "not-ca": (not_ca, [], [w.selfsigned], None, None, "invalid_ca"),
        "pathlen": (deep, [inter2, w.inter], [w.root], None, None, "invalid_ca"),
        "sha1-1024": (sha1, [], [w.root], "server", None, None),
    }


@pytest.mark.parametrize("name", [
    "selfsigned-ok", "selfsigned-untrusted", "ca-ok", "ca-unknown", "inter-ok", "inter-missing", "expired",
    "expired-ok-at", "not-yet-valid", "eku-server", "eku-client-ok", "fake-root", "tampered", "not-ca",
    "pathlen", "sha1-1024",
])
def test_openssl_verify_agrees(tmp_path, w, name):
    cert, chain, trust, purpose, at, reason = _scenarios(w)[name]
    r = verify_chain(cert, chain=chain, trust=trust, purpose=purpose, at=at)
    assert r.reason == reason, r.sentence
    assert r.ok == (reason is None)
    assert reason is None or reason in REASONS
    c = files.write_certificates(tmp_path / "cert.pem", [cert])
    t = files.write_certificates(tmp_path / "trust.pem", trust)
    args = ["verify", "-CAfile", str(t)]
    if chain:
        args += ["-untrusted", str(files.write_certificates(tmp_path / "chain.pem", chain))]
    if purpose:
        args += ["-purpose", {"server": "sslserver", "client": "sslclient"}[purpose]]
    if at:
        args += ["-attime", str(int(at.timestamp()))]
    proc = openssl(*args, str(c), check=False)
    assert (proc.returncode == 0) == r.ok, (name, proc.stdout, proc.stderr, r.sentence)
