import multiprocessing
import string

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from hypothesis import given, settings
from hypothesis import strategies as st

from sipsim.errors import UserError
from sipsim.pki import der, files, issue, keys
from sipsim.pki.material import IdentitySpec, ensure_lab_pki

from .conftest import openssl


@given(st.text(min_size=1, max_size=64))
def test_filename_for_cn_is_always_a_plain_name(cn):
    name = files.filename_for_cn(cn)
    assert name and "/" not in name and "\x00" not in name and not name.startswith(".")
    assert name not in (".", "..")


@given(st.dictionaries(st.sampled_from(["OU", "O", "L", "ST"]),
                       st.text(alphabet=string.ascii_letters + string.digits + " -_.,", min_size=1, max_size=20)
                       .filter(lambda s: s.strip()), max_size=4))
@settings(max_examples=50, deadline=None)
def test_subject_text_round_trip(attrs):
    text = ", ".join(f"{k}={v.replace(',', chr(92) + ',')}" for k, v in attrs.items())
    parsed = issue.parse_subject(text)
    assert parsed == {k: v.strip() for k, v in attrs.items()}
    name = issue.build_name("cn", parsed)
    assert issue.subject_attrs(name) == parsed


@pytest.mark.parametrize("spec", ["rsa2048", "ec-p256", "ec-p384"])
def test_sha1_resign_accepted_by_openssl(tmp_path, spec):
    ca_key = keys.new_private_key(spec)
    ca = issue.make_ca(ca_key, "CA", hash="sha1")
    leaf = issue.ca_signed_identity(keys.new_private_key("ec-p256"), "leaf", ca, ca_key, hash="sha1")
    assert leaf.signature_hash_algorithm.name == "sha1"
    assert issue.issued_by(leaf, ca) and issue.is_self_signed(ca)
    c = files.write_certificates(tmp_path / "c.pem", [ca])
    lf = files.write_certificates(tmp_path / "l.pem", [leaf])
    openssl("verify", "-CAfile", str(c), str(lf))
    text = openssl("x509", "-in", str(lf), "-noout", "-text").stdout.decode()
    assert "sha1" in text.lower()
    # the inner (TBS) and outer algorithm identifiers agree, as RFC 5280 requires
    assert text.count("Signature Algorithm: " + ("sha1WithRSAEncryption" if spec.startswith("rsa") else "ecdsa-with-SHA1")) == 2


def test_sign_csr_refuses_tampered_csr():
    k = keys.new_private_key("rsa2048")
    csr = issue.make_csr(k, "node")
    raw = bytearray(csr.public_bytes(serialization.Encoding.DER))
    raw[-5] ^= 0xFF
    bad = x509.load_der_x509_csr(bytes(raw))
    ca_key = keys.new_private_key("ec-p256")
    ca = issue.make_ca(ca_key, "CA")
    with pytest.raises(UserError, match="bad signature"):
        issue.sign_csr(bad, ca, ca_key)
    assert not der.verify_signature(bad, k.public_key())


def _worker(directory, q):
    try:
        specs = [IdentitySpec(f"n{i}.lab") for i in range(4)]
        pki = ensure_lab_pki(directory, "ca", specs)
        q.put(sorted(p.read_bytes().hex()[:64] for p in (pki.files(s.cn).cert for s in specs)))
    except Exception as e:  # pragma: no cover - reported to the parent
        q.put(repr(e))


def test_two_processes_same_directory(tmp_path):
    ctx = multiprocessing.get_context("spawn")
    q = ctx.Queue()
    procs = [ctx.Process(target=_worker, args=(tmp_path, q)) for _ in range(2)]
    for p in procs:
        p.start()
    results = [q.get(timeout=60) for _ in procs]
    for p in procs:
        p.join(timeout=60)
    assert results[0] == results[1], results  # the second process kept what the first made
    root = tmp_path / "ca" / "sipsim Lab Root CA.pem"
    for i in range(4):
        openssl("verify", "-CAfile", str(root), str(tmp_path / f"n{i}.lab.pem"))
