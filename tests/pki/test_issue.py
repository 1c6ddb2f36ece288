import datetime as dt

import pytest
from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from sipsim.errors import UserError
from sipsim.pki import der, files, issue, keys

from .conftest import openssl

SEED_SUBJECT = {"OU": "cisco", "O": "cisco", "L": "cisco", "ST": "cisco", "C": "IN"}


@pytest.mark.parametrize("spec, kind, size", [
    ("rsa1024", rsa.RSAPrivateKey, 1024), ("rsa2048", rsa.RSAPrivateKey, 2048),
    ("rsa3072", rsa.RSAPrivateKey, 3072), ("ec-p256", ec.EllipticCurvePrivateKey, 256),
    ("ec-p384", ec.EllipticCurvePrivateKey, 384),
])
def test_key_specs(spec, kind, size):
    k = keys.new_private_key(spec)
    assert isinstance(k, kind) and k.key_size == size
    assert keys.key_spec_of(k) == spec


def test_default_key_is_rsa2048():
    assert keys.key_spec_of(keys.new_private_key()) == "rsa2048"


def test_unknown_key_spec_lists_valid_ones():
    with pytest.raises(UserError) as ei:
        keys.new_private_key("dsa1024")
    for s in keys.KEY_SPECS:
        assert s in str(ei.value)
    with pytest.raises(UserError, match="sha1, sha256, sha384"):
        keys.hash_algorithm("md5")
    assert keys.normalise_hash("SHA-256") == "sha256"


@pytest.fixture(scope="module")
def rsa_key():
    return keys.new_private_key("rsa2048")


def test_self_signed_identity_like_cucm(tmp_path, rsa_key):
    c = issue.self_signed_identity(rsa_key, "CUCM10", ["CUCM10.lab", "cucm10"], SEED_SUBJECT, days=30)
    assert c.subject == c.issuer
    # Java/CUCM order when printed (RFC 4514 reverses the stored order)
    assert c.subject.rfc4514_string() == "CN=CUCM10,OU=cisco,O=cisco,L=cisco,ST=cisco,C=IN"
    eku = c.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
    assert list(eku) == [ExtendedKeyUsageOID.SERVER_AUTH, ExtendedKeyUsageOID.CLIENT_AUTH,
                         x509.ObjectIdentifier("1.3.6.1.5.5.7.3.5")]
    ku = c.extensions.get_extension_for_class(x509.KeyUsage).value
    assert ku.digital_signature and ku.key_encipherment and not ku.key_cert_sign
    bc = c.extensions.get_extension_for_class(x509.BasicConstraints)
    assert bc.value.ca is False and bc.critical
    ski = c.extensions.get_extension_for_class(x509.SubjectKeyIdentifier).value
    aki = c.extensions.get_extension_for_class(x509.AuthorityKeyIdentifier).value
    assert aki.key_identifier == ski.digest
    assert c.not_valid_before_utc.microsecond == 0
    assert c.not_valid_after_utc - c.not_valid_before_utc == dt.timedelta(days=30)
    assert len(format(c.serial_number, "x")) > 24 and c.serial_number > 0
    # what openssl shows
    p = files.write_certificates(tmp_path / "CUCM10.pem", [c])
    text = openssl("x509", "-in", str(p), "-noout", "-text").stdout.decode()
    assert "TLS Web Server Authentication, TLS Web Client Authentication, IPSec End System" in text
    assert "DNS:CUCM10.lab, DNS:cucm10" in text
    assert "CA:FALSE" in text
    subj = openssl("x509", "-in", str(p), "-noout", "-subject", "-nameopt", "compat").stdout.decode()
    assert subj.strip() == "subject=/C=IN/ST=cisco/L=cisco/O=cisco/OU=cisco/CN=CUCM10"
    # GMT times without fractions: UTCTime YYMMDDHHMMSSZ in DER (13 bytes, tag 0x17)
    asn1 = openssl("asn1parse", "-in", str(p)).stdout.decode()
    utc_lines = [ln for ln in asn1.splitlines() if "UTCTIME" in ln]
    assert len(utc_lines) == 2 and all(ln.rstrip().endswith("Z") and "." not in ln.split(":")[-1] for ln in utc_lines)


def test_ec_identity_uses_key_agreement():
    k = keys.new_private_key("ec-p256")
    c = issue.self_signed_identity(k, "CUCM-EC")
    ku = c.extensions.get_extension_for_class(x509.KeyUsage).value
    assert ku.key_agreement and not ku.key_encipherment and ku.digital_signature


def test_explicit_times_honoured_even_in_the_past(rsa_key):
    c = issue.self_signed_identity(rsa_key, "old", not_after="2025-01-01", days=365)
    assert c.not_valid_after_utc == dt.datetime(2025, 1, 1, tzinfo=dt.timezone.utc)
    assert c.not_valid_before_utc == dt.datetime(2024, 1, 2, tzinfo=dt.timezone.utc)
    c = issue.self_signed_identity(rsa_key, "future", not_before=dt.datetime(2040, 5, 6, 7, 8, 9, 123456))
    assert c.not_valid_before_utc == dt.datetime(2040, 5, 6, 7, 8, 9, tzinfo=dt.timezone.utc)
    with pytest.raises(UserError, match="not after"):
        issue.self_signed_identity(rsa_key, "x", not_before="2030-01-01", not_after="2029-01-01")


def test_ca_and_intermediate(tmp_path, rsa_key):
    root_key = keys.new_private_key("ec-p256")
    root = issue.make_ca(root_key, "Root", {"O": "Lab"}, path_length=1)
    inter_key = keys.new_private_key("ec-p256")
    inter = issue.make_ca(inter_key, "Inter", path_length=0, issuer_cert=root, issuer_key=root_key)
    leaf = issue.ca_signed_identity(rsa_key, "node", inter, inter_key, ["node.lab"])
    for c in (root, inter):
        bc = c.extensions.get_extension_for_class(x509.BasicConstraints).value
        ku = c.extensions.get_extension_for_class(x509.KeyUsage).value
        assert bc.ca and ku.key_cert_sign and ku.crl_sign
    assert root.extensions.get_extension_for_class(x509.BasicConstraints).value.path_length == 1
    assert inter.extensions.get_extension_for_class(x509.BasicConstraints).value.path_length == 0
    leaf.verify_directly_issued_by(inter)
    inter.verify_directly_issued_by(root)
    aki = leaf.extensions.get_extension_for_class(x509.AuthorityKeyIdentifier).value
    assert aki.key_identifier == inter.extensions.get_extension_for_class(x509.SubjectKeyIdentifier).value.digest
    r = files.write_certificates(tmp_path / "root.pem", [root])
    i = files.write_certificates(tmp_path / "inter.pem", [inter])
    lf = files.write_certificates(tmp_path / "leaf.pem", [leaf])
    assert openssl("verify", "-CAfile", str(r), "-untrusted", str(i), str(lf)).returncode == 0
    assert openssl("verify", "-CAfile", str(r), str(lf), check=False).returncode != 0


def test_csr_and_sign_copy_sans_seed_003_style(tmp_path):
    # seed 003: CUCM 10.5 CSR with a 1024-bit key and SHA1, signed by a CA
    k = keys.new_private_key("rsa1024")
    csr = issue.make_csr(k, "CUCM10", ["CUCM10.lab"], "OU=cisco, O=cisco, L=cisco, ST=cisco, C=IN", "sha1")
    assert der.verify_signature(csr, k.public_key())
    assert csr.subject.rfc4514_string() == "CN=CUCM10,OU=cisco,O=cisco,L=cisco,ST=cisco,C=IN"
    csr_path = files.write_csr(tmp_path / "CUCM10.csr", csr)
    assert "CUCM10" in openssl("req", "-in", str(csr_path), "-noout", "-subject").stdout.decode()
    openssl("req", "-in", str(csr_path), "-noout", "-verify")
    ca_key = keys.new_private_key("rsa2048")
    ca = issue.make_ca(ca_key, "CA", {"DC": "CA"})
    cert = issue.sign_csr(files.load_csr(csr_path), ca, ca_key, days=365, hash="sha1")
    assert issue.dns_sans(cert) == ["CUCM10.lab"]
    assert cert.subject == csr.subject and cert.issuer == ca.subject
    assert cert.signature_hash_algorithm.name == "sha1"
    assert ca.subject.rfc4514_string() == "CN=CA,DC=CA"
    cp = files.write_certificates(tmp_path / "CUCM10.pem", [cert])
    text = openssl("x509", "-in", str(cp), "-noout", "-text").stdout.decode()
    assert "sha1WithRSAEncryption" in text and "DNS:CUCM10.lab" in text and "IPSec End System" in text
    # custom EKUs
    c2 = issue.sign_csr(csr, ca, ca_key, ekus=["serverAuth"])
    assert list(c2.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value) == [ExtendedKeyUsageOID.SERVER_AUTH]


def test_sign_csr_refuses_non_ca_and_wrong_key(rsa_key):
    csr = issue.make_csr(rsa_key, "n")
    leaf = issue.self_signed_identity(rsa_key, "leaf")
    with pytest.raises(UserError, match="not a CA"):
        issue.sign_csr(csr, leaf, rsa_key)
    other = keys.new_private_key("ec-p256")
    ca = issue.make_ca(other, "CA")
    with pytest.raises(UserError, match="does not belong"):
        issue.sign_csr(csr, ca, rsa_key)


@pytest.mark.parametrize("text, expected", [
    ("OU=cisco,O=cisco,L=cisco,ST=cisco,C=IN", SEED_SUBJECT),
    ("ou = a b ; o=c", {"OU": "a b", "O": "c"}),
    ("O=Acme\\, Inc", {"O": "Acme, Inc"}),
    ("", {}),
])
def test_parse_subject(text, expected):
    assert issue.parse_subject(text) == expected


@pytest.mark.parametrize("text, match", [
    ("X=1", "unknown subject attribute"), ("C=India", "two-letter"), ("CN=a", "--cn"), ("OU", "no '='"),
])
def test_parse_subject_errors(text, match):
    with pytest.raises(UserError, match=match):
        issue.parse_subject(text)


def test_ip_sans(rsa_key):
    c = issue.self_signed_identity(rsa_key, "n", ["127.0.0.3", "DNS:n.lab"])
    assert issue.all_sans(c) == ["n.lab", "127.0.0.3"]
