"""A certificate as sipsim shows it (reports, traces, X.509 Subject Name checks)."""

from __future__ import annotations

from dataclasses import dataclass, field

from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import dsa, ec, ed448, ed25519, rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

# Short names the way OpenSSL's one-line / CUCM's SDL trace print them.
_SHORT = {
    NameOID.COUNTRY_NAME: "C",
    NameOID.STATE_OR_PROVINCE_NAME: "ST",
    NameOID.LOCALITY_NAME: "L",
    NameOID.ORGANIZATION_NAME: "O",
    NameOID.ORGANIZATIONAL_UNIT_NAME: "OU",
    NameOID.COMMON_NAME: "CN",
    NameOID.EMAIL_ADDRESS: "emailAddress",
    NameOID.DOMAIN_COMPONENT: "DC",
    NameOID.SERIAL_NUMBER: "serialNumber",
    NameOID.STREET_ADDRESS: "street",
    NameOID.USER_ID: "UID",
    NameOID.TITLE: "title",
    NameOID.GIVEN_NAME: "GN",
    NameOID.SURNAME: "SN",
}

_EKU_NAMES = {
    ExtendedKeyUsageOID.SERVER_AUTH: "serverAuth",
    ExtendedKeyUsageOID.CLIENT_AUTH: "clientAuth",
    ExtendedKeyUsageOID.CODE_SIGNING: "codeSigning",
    ExtendedKeyUsageOID.EMAIL_PROTECTION: "emailProtection",
    ExtendedKeyUsageOID.TIME_STAMPING: "timeStamping",
    ExtendedKeyUsageOID.OCSP_SIGNING: "OCSPSigning",
    x509.ObjectIdentifier("1.3.6.1.5.5.7.3.5"): "ipsecEndSystem",
}


def slash_name(name: x509.Name) -> str:
    """``/C=IN/ST=cisco/L=cisco/O=cisco/OU=cisco/CN=CUCM10``: the DN in ASN.1 order (CUCM trace form)."""
    parts = []
    for rdn in name.rdns:
        for attr in rdn:
            key = _SHORT.get(attr.oid, attr.oid.dotted_string)
            value = attr.value if isinstance(attr.value, str) else attr.value.hex()
            parts.append(f"/{key}={value}")
    return "".join(parts)


def common_name(name: x509.Name) -> str | None:
    attrs = name.get_attributes_for_oid(NameOID.COMMON_NAME)
    if not attrs:
        return None
    value = attrs[-1].value
    return value if isinstance(value, str) else value.decode("utf-8", "replace")


def key_description(cert: x509.Certificate) -> str:
    try:
        key = cert.public_key()
    except Exception:  # unsupported algorithm
        return "unknown"
    if isinstance(key, rsa.RSAPublicKey):
        return f"RSA {key.key_size}"
    if isinstance(key, ec.EllipticCurvePublicKey):
        curve = {"secp256r1": "P-256", "secp384r1": "P-384", "secp521r1": "P-521"}.get(
            key.curve.name, key.curve.name
        )
        return f"EC {curve}"
    if isinstance(key, ed25519.Ed25519PublicKey):
        return "Ed25519"
    if isinstance(key, ed448.Ed448PublicKey):
        return "Ed448"
    if isinstance(key, dsa.DSAPublicKey):
        return f"DSA {key.key_size}"
    return type(key).__name__


_DER = Encoding.DER


def _iso(dt) -> str:
    return dt.strftime("%Y-%m-%dT%H:%M:%SZ")


@dataclass(frozen=True)
class CertInfo:
    subject: str                 # RFC 4514 (most specific first: "CN=CUCM10,OU=cisco,…,C=IN")
    slash_subject: str           # "/C=IN/…/CN=CUCM10" (ASN.1 order, like CUCM's SIPCertificateInd)
    cn: str | None
    sans: tuple = ()             # dNSName entries
    ip_sans: tuple = ()          # iPAddress entries, as text
    issuer: str = ""             # RFC 4514
    slash_issuer: str = ""
    serial: str = ""             # lower-case hex, no 0x
    not_before: str = ""         # ISO 8601 UTC
    not_after: str = ""
    sha256: str = ""             # fingerprint of the DER, lower-case hex
    key: str = ""                # "RSA 2048", "EC P-256"
    signature_hash: str | None = None   # "sha256", "sha1", None (Ed25519)
    eku: tuple = ()              # "serverAuth", "clientAuth", … or dotted OIDs
    self_signed: bool = False
    der: bytes = field(default=b"", repr=False, compare=False)

    @classmethod
    def from_certificate(cls, cert: x509.Certificate) -> "CertInfo":
        """The certificate in words; memoised by DER (a peer presents the same certificate on
        every connection, and CertInfo is immutable)."""
        der = cert.public_bytes(_DER)
        hit = _BY_DER.get(der)
        if hit is None:
            hit = _remember(der, cls._build(cert, der))
        return hit

    @classmethod
    def from_der(cls, der: bytes) -> "CertInfo":
        """Like `from_certificate`, from DER bytes; parses only on a cache miss."""
        hit = _BY_DER.get(der)
        if hit is None:
            hit = _remember(der, cls._build(x509.load_der_x509_certificate(der), der))
        return hit

    @classmethod
    def _build(cls, cert: x509.Certificate, der: bytes) -> "CertInfo":
        sans: list[str] = []
        ip_sans: list[str] = []
        try:
            ext = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
            sans = list(ext.get_values_for_type(x509.DNSName))
            ip_sans = [str(ip) for ip in ext.get_values_for_type(x509.IPAddress)]
        except (x509.ExtensionNotFound, ValueError):
            pass
        eku: list[str] = []
        try:
            usages = cert.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
            eku = [_EKU_NAMES.get(oid, oid.dotted_string) for oid in usages]
        except (x509.ExtensionNotFound, ValueError):
            pass
        try:
            algo = cert.signature_hash_algorithm
            sig_hash = algo.name if algo is not None else None
        except Exception:
            sig_hash = None
        return cls(
            subject=cert.subject.rfc4514_string(),
            slash_subject=slash_name(cert.subject),
            cn=common_name(cert.subject),
            sans=tuple(sans),
            ip_sans=tuple(ip_sans),
            issuer=cert.issuer.rfc4514_string(),
            slash_issuer=slash_name(cert.issuer),
            serial=format(cert.serial_number, "x"),
            not_before=_iso(cert.not_valid_before_utc),
            not_after=_iso(cert.not_valid_after_utc),
            sha256=cert.fingerprint(hashes.SHA256()).hex(),
            key=key_description(cert),
            signature_hash=sig_hash,
            eku=tuple(eku),
            self_signed=cert.subject == cert.issuer,
            der=der,
        )

    @property
    def label(self) -> str:
        """Short name for sentences: "CN=CUCM10" (or the full subject when there is no CN)."""
        return f"CN={self.cn}" if self.cn else (self.subject or "(empty subject)")

    def names(self) -> list[str]:
        """Every name a Subject Name check may match: CN, dNSName and IP SANs."""
        out = [self.cn] if self.cn else []
        out += [n for n in self.sans if n not in out]
        out += [n for n in self.ip_sans if n not in out]
        return out

    def to_certificate(self) -> x509.Certificate:
        return x509.load_der_x509_certificate(self.der)

    def to_dict(self) -> dict:
        """Every field but the DER, tuples as lists (JSON); a new dict each time."""
        return {"subject": self.subject, "slash_subject": self.slash_subject, "cn": self.cn,
                "sans": list(self.sans), "ip_sans": list(self.ip_sans), "issuer": self.issuer,
                "slash_issuer": self.slash_issuer, "serial": self.serial, "not_before": self.not_before,
                "not_after": self.not_after, "sha256": self.sha256, "key": self.key,
                "signature_hash": self.signature_hash, "eku": list(self.eku), "self_signed": self.self_signed}


_BY_DER: dict[bytes, CertInfo] = {}
_CACHE_MAX = 1024


def _remember(der: bytes, info: CertInfo) -> CertInfo:
    if len(_BY_DER) >= _CACHE_MAX:
        _BY_DER.clear()  # bounded: labs have tens of certificates; a scan of many peers restarts it
    _BY_DER[der] = info
    return info


def cert_info(cert: x509.Certificate) -> CertInfo:
    return CertInfo.from_certificate(cert)
