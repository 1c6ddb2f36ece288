"""Just enough DER to do what cryptography no longer does: SHA-1 signatures.

cryptography ≥ 45 refuses to *create* or *verify* X.509 signatures with SHA-1, yet old CUCM releases
(seed 003: CUCM 10.5 "Key Length 1024, Hash Algorithm SHA1") produce them and sipsim must emulate
and check them. The builders sign with SHA-256, then ``resign`` swaps the signature algorithm in
the TBS part and signs it again with the low-level key API (which still supports SHA-1).
``verify_signature`` checks any certificate or CSR signature with an issuer public key, SHA-1 included.
"""

from __future__ import annotations

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed448, ed25519, padding, rsa

# AlgorithmIdentifier DER for the SHA-1 signature algorithms.
_ALGID_SHA1_RSA = bytes.fromhex("300d06092a864886f70d0101050500")   # 1.2.840.113549.1.1.5, NULL
_ALGID_SHA1_ECDSA = bytes.fromhex("300906072a8648ce3d0401")          # 1.2.840.10045.4.1


def read_tlv(data: bytes, pos: int) -> tuple[int, int, int]:
    """(tag, value_start, value_end) of the TLV at ``pos`` (single-byte tags, definite lengths)."""
    tag = data[pos]
    ln = data[pos + 1]
    pos += 2
    if ln & 0x80:
        n = ln & 0x7F
        if n == 0 or n > 4:
            raise ValueError("unsupported DER length")
        ln = int.from_bytes(data[pos:pos + n], "big")
        pos += n
    end = pos + ln
    if end > len(data):
        raise ValueError("truncated DER")
    return tag, pos, end


def children(data: bytes, start: int, end: int) -> list[tuple[int, int]]:
    """(start, end) spans of the TLVs between start and end."""
    out = []
    pos = start
    while pos < end:
        _, _, vend = read_tlv(data, pos)
        out.append((pos, vend))
        pos = vend
    return out


def _encode_len(n: int) -> bytes:
    if n < 0x80:
        return bytes([n])
    b = n.to_bytes((n.bit_length() + 7) // 8, "big")
    return bytes([0x80 | len(b)]) + b


def _tlv(tag: int, value: bytes) -> bytes:
    return bytes([tag]) + _encode_len(len(value)) + value


def _sha1_algid(key) -> bytes:
    if isinstance(key, rsa.RSAPrivateKey):
        return _ALGID_SHA1_RSA
    if isinstance(key, ec.EllipticCurvePrivateKey):
        return _ALGID_SHA1_ECDSA
    raise ValueError("SHA-1 signatures need an RSA or EC key")


def _sign_bytes(key, data: bytes, hash_alg: hashes.HashAlgorithm) -> bytes:
    if isinstance(key, rsa.RSAPrivateKey):
        return key.sign(data, padding.PKCS1v15(), hash_alg)
    if isinstance(key, ec.EllipticCurvePrivateKey):
        return key.sign(data, ec.ECDSA(hash_alg))
    raise ValueError(f"cannot sign with {type(key).__name__}")


def resign_certificate_sha1(cert: x509.Certificate, key) -> x509.Certificate:
    """The same certificate signed with SHA-1 (sha1WithRSAEncryption / ecdsa-with-SHA1) by ``key``."""
    der = cert.public_bytes(serialization.Encoding.DER)
    _, s, e = read_tlv(der, 0)
    tbs_span, _, _ = children(der, s, e)
    _, ts, te = read_tlv(der, tbs_span[0])
    parts = children(der, ts, te)
    idx = 0
    if der[parts[0][0]] == 0xA0:  # [0] EXPLICIT version
        idx = 1
    idx += 1  # serialNumber
    algid = _sha1_algid(key)
    new_tbs_value = b"".join(
        algid if i == idx else der[a:b] for i, (a, b) in enumerate(parts))
    new_tbs = _tlv(0x30, new_tbs_value)
    sig = _sign_bytes(key, new_tbs, hashes.SHA1())
    out = _tlv(0x30, new_tbs + algid + _tlv(0x03, b"\x00" + sig))
    return x509.load_der_x509_certificate(out)


def resign_csr_sha1(csr: x509.CertificateSigningRequest, key) -> x509.CertificateSigningRequest:
    der = csr.public_bytes(serialization.Encoding.DER)
    _, s, e = read_tlv(der, 0)
    cri_span = children(der, s, e)[0]
    cri = der[cri_span[0]:cri_span[1]]
    algid = _sha1_algid(key)
    sig = _sign_bytes(key, cri, hashes.SHA1())
    return x509.load_der_x509_csr(_tlv(0x30, cri + algid + _tlv(0x03, b"\x00" + sig)))


def verify_signature(obj, public_key) -> bool:
    """True when ``obj`` (Certificate or CSR) carries a valid signature by ``public_key``.

    Handles RSA PKCS#1 v1.5, RSA-PSS, ECDSA (any hash, SHA-1 included), Ed25519/Ed448.
    """
    if isinstance(obj, x509.Certificate):
        tbs = obj.tbs_certificate_bytes
    else:
        tbs = obj.tbs_certrequest_bytes
    sig = obj.signature
    try:
        h = obj.signature_hash_algorithm
    except Exception:  # noqa: BLE001 - unknown algorithm
        return False
    try:
        if isinstance(public_key, rsa.RSAPublicKey):
            params = getattr(obj, "signature_algorithm_parameters", None)
            if isinstance(params, padding.PSS):
                public_key.verify(sig, tbs, params, h)
            else:
                public_key.verify(sig, tbs, padding.PKCS1v15(), h)
        elif isinstance(public_key, ec.EllipticCurvePublicKey):
            public_key.verify(sig, tbs, ec.ECDSA(h))
        elif isinstance(public_key, (ed25519.Ed25519PublicKey, ed448.Ed448PublicKey)):
            public_key.verify(sig, tbs)
        else:
            return False
    except (InvalidSignature, TypeError, ValueError):
        return False
    return True
