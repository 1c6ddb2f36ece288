import stat

import pytest

from sipsim.errors import UserError
from sipsim.pki import files, issue, keys
from sipsim.pki.importer import import_files, sniff_der

from .conftest import openssl


@pytest.fixture(scope="module")
def material(tmp_path_factory):
    """A lab CA, a CUCM-like leaf signed by it, as PEM files made by us."""
    d = tmp_path_factory.mktemp("src")
    ca_key = keys.new_private_key("rsa2048")
    ca = issue.make_ca(ca_key, "CA", {"DC": "CA"})
    leaf_key = keys.new_private_key("rsa2048")
    leaf = issue.ca_signed_identity(leaf_key, "CUCM10", ca, ca_key, ["CUCM10.lab"],
                                    {"OU": "cisco", "O": "cisco", "L": "cisco", "ST": "cisco", "C": "IN"})
    files.write_certificates(d / "ca.pem", [ca])
    files.write_certificates(d / "leaf.pem", [leaf])
    files.write_private_key(d / "leaf.key", leaf_key)
    return {"dir": d, "ca": ca, "leaf": leaf, "leaf_key": leaf_key}


def _check_written(out, cns):
    for cn, cert in cns.items():
        p = out / f"{cn}.pem"
        assert p.exists(), sorted(x.name for x in out.iterdir())
        assert files.load_certificates(p) == [cert]
        assert p.read_bytes().startswith(b"-----BEGIN CERTIFICATE-----")


def test_pem_bundle(tmp_path, material):
    src = tmp_path / "bundle.txt"
    src.write_bytes((material["dir"] / "leaf.pem").read_bytes() + (material["dir"] / "ca.pem").read_bytes())
    [r] = import_files([src], tmp_path / "out")
    assert r.format == "pem" and r.description == "PEM certificate(s)"
    assert r.subjects == ["CUCM10", "CA"]
    assert r.written == [tmp_path / "out" / "CUCM10.pem", tmp_path / "out" / "CA.pem"]
    _check_written(tmp_path / "out", {"CUCM10": material["leaf"], "CA": material["ca"]})


def test_der_certificate_from_openssl(tmp_path, material):
    der = tmp_path / "CallManager.cer"   # a misleading name: detection is by content
    openssl("x509", "-in", str(material["dir"] / "leaf.pem"), "-outform", "der", "-out", str(der))
    assert sniff_der(der.read_bytes()) == "der"
    [r] = import_files([der], tmp_path / "out")
    assert r.format == "der"
    _check_written(tmp_path / "out", {"CUCM10": material["leaf"]})


@pytest.mark.parametrize("outform, fmt", [("PEM", "pkcs7-pem"), ("DER", "pkcs7-der")])
def test_pkcs7_from_openssl(tmp_path, material, outform, fmt):
    p7 = tmp_path / "certnew.p7b"
    openssl("crl2pkcs7", "-nocrl", "-certfile", str(material["dir"] / "leaf.pem"),
            "-certfile", str(material["dir"] / "ca.pem"), "-outform", outform, "-out", str(p7))
    if outform == "PEM":
        assert p7.read_bytes().startswith(b"-----BEGIN PKCS7-----")
    else:
        assert sniff_der(p7.read_bytes()) == "pkcs7-der"
    # name it .pem to prove the extension is ignored
    renamed = tmp_path / "looks-like.pem"
    p7.rename(renamed)
    [r] = import_files([renamed], tmp_path / "out")
    assert r.format == fmt
    _check_written(tmp_path / "out", {"CUCM10": material["leaf"], "CA": material["ca"]})


def test_pkcs12_from_openssl_with_password(tmp_path, material):
    d = material["dir"]
    pfx = tmp_path / "cucm.pfx"
    openssl("pkcs12", "-export", "-in", str(d / "leaf.pem"), "-inkey", str(d / "leaf.key"),
            "-certfile", str(d / "ca.pem"), "-passout", "pass:s3cret", "-out", str(pfx))
    out = tmp_path / "out"
    [r] = import_files([pfx], out, password="s3cret")
    assert r.format == "pkcs12" and r.description == "PKCS#12"
    _check_written(out, {"CUCM10": material["leaf"], "CA": material["ca"]})
    key_path = out / "CUCM10.key"
    assert key_path in r.written
    assert stat.S_IMODE(key_path.stat().st_mode) == 0o600
    assert keys.public_keys_equal(files.load_private_key(key_path), material["leaf_key"])
    # openssl agrees the key matches the certificate
    a = openssl("x509", "-in", str(out / "CUCM10.pem"), "-noout", "-pubkey").stdout
    b = openssl("pkey", "-in", str(key_path), "-pubout").stdout
    assert a == b


def test_pkcs12_wrong_and_missing_password(tmp_path, material):
    d = material["dir"]
    pfx = tmp_path / "cucm.p12"
    openssl("pkcs12", "-export", "-in", str(d / "leaf.pem"), "-inkey", str(d / "leaf.key"),
            "-passout", "pass:right", "-out", str(pfx))
    with pytest.raises(UserError) as ei:
        import_files([pfx], tmp_path / "out", password="wrong")
    assert str(ei.value).startswith(f"{pfx}: wrong password") and "\n" not in str(ei.value)
    with pytest.raises(UserError, match="--password"):
        import_files([pfx], tmp_path / "out")
    assert not (tmp_path / "out").exists()


def test_pkcs12_without_password_made_by_cryptography(tmp_path, material):
    from cryptography.hazmat.primitives.serialization import NoEncryption, pkcs12

    data = pkcs12.serialize_key_and_certificates(b"cucm", material["leaf_key"], material["leaf"],
                                                 [material["ca"]], NoEncryption())
    p = tmp_path / "plain.bin"
    p.write_bytes(data)
    [r] = import_files([p], tmp_path / "out")
    assert r.format == "pkcs12"
    assert (tmp_path / "out" / "CUCM10.key").exists()


def test_pem_with_key_inside(tmp_path, material):
    d = material["dir"]
    p = tmp_path / "combined.pem"
    p.write_bytes((d / "leaf.pem").read_bytes() + (d / "leaf.key").read_bytes())
    [r] = import_files([p], tmp_path / "out")
    assert [x.name for x in r.written] == ["CUCM10.pem", "CUCM10.key"]
    assert stat.S_IMODE((tmp_path / "out" / "CUCM10.key").stat().st_mode) == 0o600


def test_base64_without_headers(tmp_path, material):
    import base64

    der = material["leaf"].public_bytes(__import__("cryptography.hazmat.primitives.serialization",
                                                   fromlist=["Encoding"]).Encoding.DER)
    p = tmp_path / "naked.txt"
    p.write_bytes(base64.encodebytes(der))
    [r] = import_files([p], tmp_path / "out")
    assert r.format == "der"


def test_same_cn_twice_gets_suffix(tmp_path):
    k = keys.new_private_key("ec-p256")
    a = issue.self_signed_identity(k, "CUCM10", days=1)
    b = issue.self_signed_identity(k, "CUCM10", days=2)
    src = files.write_certificates(tmp_path / "two.pem", [a, b])
    [r] = import_files([src], tmp_path / "out")
    assert [x.name for x in r.written] == ["CUCM10.pem", "CUCM10-2.pem"]


@pytest.mark.parametrize("content, match", [
    (b"\x00\x01\x02garbage\xff" * 10, "not a certificate"),
    (b"", "empty"),
    (b"hello", "not a certificate"),
    (b"-----BEGIN PKCS7-----\nAAAA\n-----END PKCS7-----\n", "damaged PKCS#7"),
    (b"-----BEGIN CERTIFICATE REQUEST-----\nAAAA\n-----END CERTIFICATE REQUEST-----\n", "signing request"),
    (b"0\x03\x02\x01\x03", "PKCS#12"),
])
def test_garbage(tmp_path, content, match):
    p = tmp_path / "bad.p12"
    p.write_bytes(content)
    with pytest.raises(UserError, match=match) as ei:
        import_files([p], tmp_path / "out")
    assert str(p) in str(ei.value) and "\n" not in str(ei.value)


def test_one_bad_file_writes_nothing(tmp_path, material):
    bad = tmp_path / "bad.der"
    bad.write_bytes(b"junk")
    with pytest.raises(UserError, match="bad.der"):
        import_files([material["dir"] / "ca.pem", bad], tmp_path / "out")
    assert not (tmp_path / "out").exists()


def test_missing_file(tmp_path):
    with pytest.raises(UserError, match="does not exist"):
        import_files([tmp_path / "nope.p7b"], tmp_path / "out")
