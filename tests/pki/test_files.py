import os
import stat

import pytest
from cryptography import x509

from sipsim.errors import UserError
from sipsim.pki import files, issue, keys

from .conftest import openssl


@pytest.fixture(scope="module")
def key():
    return keys.new_private_key("ec-p256")


def test_private_key_written_0600_and_parents_created(tmp_path, key):
    p = tmp_path / "a" / "b" / "node.key"
    old = os.umask(0)  # even with a permissive umask the key must not be readable by others
    try:
        files.write_private_key(p, key)
    finally:
        os.umask(old)
    assert stat.S_IMODE(p.stat().st_mode) == 0o600
    # no temporary files left behind
    assert sorted(x.name for x in p.parent.iterdir()) == ["node.key"]
    loaded = files.load_private_key(p)
    assert keys.public_keys_equal(loaded, key)
    # openssl reads it too
    assert b"BEGIN PRIVATE KEY" in p.read_bytes()
    openssl("pkey", "-in", str(p), "-noout")


def test_overwriting_a_0644_key_file_yields_0600(tmp_path, key):
    p = tmp_path / "node.key"
    p.write_text("old")
    p.chmod(0o644)
    files.write_private_key(p, key)
    assert stat.S_IMODE(p.stat().st_mode) == 0o600


def test_group_readable_key_refused_with_chmod_hint(tmp_path, key):
    p = tmp_path / "node.key"
    files.write_private_key(p, key)
    p.chmod(0o644)
    with pytest.raises(UserError) as ei:
        files.load_private_key(p)
    msg = str(ei.value)
    assert str(p) in msg and f"chmod 600 {p}" in msg and "0644" in msg
    assert "\n" not in msg
    p.chmod(0o640)
    with pytest.raises(UserError):
        files.load_private_key(p)
    p.chmod(0o600)
    files.load_private_key(p)


def test_key_made_by_openssl_traditional_format(tmp_path):
    p = tmp_path / "rsa.key"
    openssl("genrsa", "-traditional", "-out", str(p), "1024")
    p.chmod(0o600)
    k = files.load_private_key(p)
    assert keys.key_spec_of(k) == "rsa1024"


def test_encrypted_key_needs_password(tmp_path, key):
    p = tmp_path / "enc.key"
    files.write_private_key(p, key, password="s3cret")
    with pytest.raises(UserError, match="encrypted"):
        files.load_private_key(p)
    with pytest.raises(UserError, match="wrong password"):
        files.load_private_key(p, password="nope")
    assert keys.public_keys_equal(files.load_private_key(p, password="s3cret"), key)


def test_garbage_key(tmp_path):
    p = tmp_path / "junk.key"
    p.write_bytes(b"not a key at all")
    p.chmod(0o600)
    with pytest.raises(UserError, match=str(p)):
        files.load_private_key(p)
    with pytest.raises(UserError, match="does not exist"):
        files.load_private_key(tmp_path / "missing.key")


def _cert(key, cn):
    return issue.self_signed_identity(key, cn, days=10)


def test_certificates_pem_several_and_der(tmp_path, key):
    a, b = _cert(key, "A"), _cert(key, "B")
    p = tmp_path / "two.pem"
    files.write_certificates(p, [a, b])
    assert stat.S_IMODE(p.stat().st_mode) == 0o644
    assert [issue.common_name(c) for c in files.load_certificates(p)] == ["A", "B"]
    der = tmp_path / "a.cer"
    openssl("x509", "-in", str(p), "-outform", "der", "-out", str(der))
    got = files.load_certificates(der)
    assert got == [a]
    # DER written by us equals openssl's
    ours = tmp_path / "ours.der"
    files.write_certificates(ours, [a], der=True)
    assert ours.read_bytes() == der.read_bytes()


def test_pem_with_text_around_and_crlf(tmp_path, key):
    a = _cert(key, "A")
    p = tmp_path / "win.cer"
    text = b"Bag Attributes\r\nsubject=CN=A\r\n" + files.certificates_pem([a]).replace(b"\n", b"\r\n")
    p.write_bytes(text)
    assert files.load_certificates(p) == [a]


@pytest.mark.parametrize("content, match", [
    (b"hello world, not a certificate", "neither a PEM nor a DER"),
    (b"", "empty"),
    (b"-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n", "damaged"),
    (b"-----BEGIN PKCS7-----\nAAAA\n-----END PKCS7-----\n", "certs import"),
    (b"-----BEGIN CERTIFICATE REQUEST-----\nAAAA\n-----END CERTIFICATE REQUEST-----\n", "CSR"),
])
def test_garbage_certificates(tmp_path, content, match):
    p = tmp_path / "bad.pem"
    p.write_bytes(content)
    with pytest.raises(UserError, match=match) as ei:
        files.load_certificates(p)
    assert str(p) in str(ei.value)
    assert "\n" not in str(ei.value)


def test_missing_certificate_file(tmp_path):
    with pytest.raises(UserError, match="does not exist"):
        files.load_certificates(tmp_path / "nope.pem")
    with pytest.raises(UserError, match="directory"):
        files.load_certificates(tmp_path)


def test_filename_for_cn():
    assert files.filename_for_cn("CUCM7-PUB.bbbburns.lab") == "CUCM7-PUB.bbbburns.lab"
    assert files.filename_for_cn("sipsim Lab Root CA") == "sipsim Lab Root CA"
    assert files.filename_for_cn("*.example.com") == "_.example.com"
    assert files.filename_for_cn("a/../b") == "a_.._b"
    assert files.filename_for_cn("..") == "_.."
    assert "/" not in files.filename_for_cn("../../etc/passwd")
