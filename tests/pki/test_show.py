import datetime as dt
import re

from cryptography.hazmat.primitives import hashes

from sipsim.pki import files, issue, keys
from sipsim.pki.show import cucm_name, java_date, show_cert, slash_name

from .conftest import openssl

SEED = {"OU": "cisco", "O": "cisco", "L": "cisco", "ST": "cisco", "C": "IN"}


def test_show_cert_seed_003_fields(tmp_path):
    ca_key = keys.new_private_key("rsa2048")
    ca = issue.make_ca(ca_key, "CA", {"DC": "CA"})
    k = keys.new_private_key("rsa1024")
    csr = issue.make_csr(k, "CUCM10", ["CUCM10.lab"], SEED, "sha1")
    c = issue.sign_csr(csr, ca, ca_key, days=366, hash="sha1",
                       not_before=dt.datetime(2015, 5, 23, 17, 50, 42), not_after=dt.datetime(2016, 5, 23, 18, 0, 42))
    text = show_cert(c)
    lines = text.splitlines()
    assert lines[0] == "[" and lines[-1] == "]"
    assert lines[1] == "Version: V3"
    assert lines[2] == f"Serial Number: {c.serial_number:X}"
    assert re.fullmatch(r"Serial Number: [0-9A-F]+", lines[2])
    assert lines[3] == "SignatureAlgorithm: SHA1withRSA (1.2.840.113549.1.1.5)"
    assert lines[4] == "Issuer Name: CN=CA, DC=CA"
    assert lines[5] == "Validity From: Sat May 23 17:50:42 GMT 2015"
    assert lines[6] == "           To:  Mon May 23 18:00:42 GMT 2016"
    assert lines[7] == "Subject Name: CN=CUCM10, OU=cisco, O=cisco, L=cisco, ST=cisco, C=IN"
    assert lines[8] == "Key: RSA (1.2.840.113549.1.1.1)"
    assert lines[9] == "Key value:"
    # 1024-bit key: RSAPublicKey DER starts like the seed's "30818902818100..." and ends with e=65537
    key_hex = "".join(lines[10:lines.index("Extensions: 6 present")])
    assert key_hex.startswith("30818902818100") and key_hex.endswith("0203010001")
    # the same bytes openssl shows as the modulus
    p = files.write_certificates(tmp_path / "c.pem", [c])
    modulus = openssl("x509", "-in", str(p), "-noout", "-modulus").stdout.decode().strip().split("=")[1]
    assert modulus.lower() in key_hex
    assert "Extensions: 6 present" in lines
    i = lines.index("Extension: ExtKeyUsageSyntax (OID.2.5.29.37)")
    assert lines[i - 1] == "[" and lines[i + 1] == "Critical: false"
    assert lines[i + 2] == "Usage oids: 1.3.6.1.5.5.7.3.1, 1.3.6.1.5.5.7.3.2, 1.3.6.1.5.5.7.3.5,"
    assert "Extension: BasicConstraints (OID.2.5.29.19)" in lines and "isCA: false" in lines
    assert "Usages: digitalSignature, keyEncipherment," in lines
    assert "Subject Alternative Names: DNS:CUCM10.lab" in lines
    fp = ":".join(f"{b:02X}" for b in c.fingerprint(hashes.SHA256()))
    assert f"SHA-256 Fingerprint: {fp}" in lines
    ossl_fp = openssl("x509", "-in", str(p), "-noout", "-fingerprint", "-sha256").stdout.decode().strip()
    assert ossl_fp.endswith(fp)


def test_show_cert_ec_sha256_no_sans():
    k = keys.new_private_key("ec-p256")
    c = issue.self_signed_identity(k, "CUCM-EC")
    text = show_cert(c)
    assert "SignatureAlgorithm: SHA256withECDSA (1.2.840.10045.4.3.2)" in text
    assert "Key: EC (1.2.840.10045.2.1)" in text
    # uncompressed point: 04 || X || Y = 65 bytes = 130 hex
    key_line = text.splitlines()[text.splitlines().index("Key value:") + 1]
    assert key_line.startswith("04") and len(key_line) == 88
    assert "Subject Alternative Names: (none)" in text
    assert "Extensions: 5 present" in text
    assert "Usages: digitalSignature, keyAgreement," in text


def test_show_rsa2048_sha256_and_ca():
    k = keys.new_private_key("rsa2048")
    ca = issue.make_ca(k, "sipsim Lab Root CA", path_length=1)
    text = show_cert(ca)
    assert "SignatureAlgorithm: SHA256withRSA (1.2.840.113549.1.1.11)" in text
    assert "isCA: true" in text and "pathLen: 1" in text
    assert "Usages: digitalSignature, keyCertSign, cRLSign," in text


def test_names():
    k = keys.new_private_key("ec-p256")
    c = issue.self_signed_identity(k, "CUCM10", subject=SEED)
    assert cucm_name(c.subject) == "CN=CUCM10, OU=cisco, O=cisco, L=cisco, ST=cisco, C=IN"
    assert slash_name(c.subject) == "/C=IN/ST=cisco/L=cisco/O=cisco/OU=cisco/CN=CUCM10"
    assert cucm_name(issue.build_name("a,b", {"O": "x+y"})) == "CN=a\\,b, O=x\\+y"
    assert java_date(dt.datetime(2011, 9, 28, 13, 57, 3, tzinfo=dt.timezone.utc)) == "Wed Sep 28 13:57:03 GMT 2011"
