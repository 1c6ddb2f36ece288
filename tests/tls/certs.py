"""Test certificates made with `cryptography` (no dependency on sipsim.pki)."""

from __future__ import annotations

import datetime
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

NOW = datetime.datetime.now(datetime.timezone.utc)


@dataclass
class Ident:
    cn: str
    cert: Path
    key: Path
    chain: tuple = ()
    trust: Path | None = None     # what a peer uploads to trust this identity


def _name(cn: str, org: bool = True) -> x509.Name:
    attrs = [x509.NameAttribute(NameOID.COUNTRY_NAME, "IN")]
    if org:
        attrs += [
            x509.NameAttribute(NameOID.STATE_OR_PROVINCE_NAME, "cisco"),
            x509.NameAttribute(NameOID.LOCALITY_NAME, "cisco"),
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, "cisco"),
            x509.NameAttribute(NameOID.ORGANIZATIONAL_UNIT_NAME, "cisco"),
        ]
    attrs.append(x509.NameAttribute(NameOID.COMMON_NAME, cn))
    return x509.Name(attrs)


def _key(kind: str):
    if kind == "ec":
        return ec.generate_private_key(ec.SECP256R1())
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


def _write(directory: Path, stem: str, cert: x509.Certificate, key, extra=()) -> tuple[Path, Path]:
    cp = directory / f"{stem}.pem"
    kp = directory / f"{stem}.key"
    cp.write_bytes(b"".join(c.public_bytes(serialization.Encoding.PEM) for c in (cert, *extra)))
    kp.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                     serialization.NoEncryption()))
    kp.chmod(0o600)
    return cp, kp


def build(cn: str, key, issuer_name: x509.Name, issuer_key, *, ca=False, days=(-1, 365),
          eku=(ExtendedKeyUsageOID.SERVER_AUTH, ExtendedKeyUsageOID.CLIENT_AUTH), sans=None,
          subject: x509.Name | None = None) -> x509.Certificate:
    subject = subject or _name(cn)
    b = (x509.CertificateBuilder()
         .subject_name(subject)
         .issuer_name(issuer_name or subject)
         .public_key(key.public_key())
         .serial_number(x509.random_serial_number())
         .not_valid_before(NOW + datetime.timedelta(days=days[0]))
         .not_valid_after(NOW + datetime.timedelta(days=days[1]))
         .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True))
    if ca:
        b = b.add_extension(x509.KeyUsage(False, False, False, False, False, True, True, False, False), True)
    else:
        b = b.add_extension(x509.SubjectAlternativeName([x509.DNSName(n) for n in (sans or [cn])]), False)
        if eku:
            b = b.add_extension(x509.ExtendedKeyUsage(list(eku)), False)
    return b.sign(issuer_key or key, hashes.SHA256())


def self_signed(directory: Path, cn: str, *, key_kind="rsa", days=(-1, 365), eku=None,
                stem: str | None = None) -> Ident:
    key = _key(key_kind)
    kwargs = {} if eku is None else {"eku": eku}
    cert = build(cn, key, None, None, days=days, **kwargs)
    cp, kp = _write(directory, stem or cn, cert, key)
    return Ident(cn, cp, kp, (), cp)


class CA:
    def __init__(self, directory: Path, cn: str = "Lab Root CA"):
        self.dir = directory
        self.key = _key("rsa")
        self.name = x509.Name([x509.NameAttribute(NameOID.DOMAIN_COMPONENT, "lab"),
                               x509.NameAttribute(NameOID.COMMON_NAME, cn)])
        self.cert = build(cn, self.key, self.name, self.key, ca=True, subject=self.name, days=(-1, 3650))
        self.path = directory / f"{cn.replace(' ', '_')}.pem"
        self.path.write_bytes(self.cert.public_bytes(serialization.Encoding.PEM))

    def intermediate(self, cn: str = "Lab Issuing CA") -> "CA":
        sub = CA.__new__(CA)
        sub.dir = self.dir
        sub.key = _key("rsa")
        sub.name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)])
        sub.cert = build(cn, sub.key, self.name, self.key, ca=True, subject=sub.name, days=(-1, 3650))
        sub.path = self.dir / f"{cn.replace(' ', '_')}.pem"
        sub.path.write_bytes(sub.cert.public_bytes(serialization.Encoding.PEM))
        sub.root = self
        return sub

    def issue(self, cn: str, *, key_kind="rsa", days=(-1, 365), eku=None) -> Ident:
        key = _key(key_kind)
        kwargs = {} if eku is None else {"eku": eku}
        cert = build(cn, key, self.name, self.key, days=days, **kwargs)
        cp, kp = _write(self.dir, cn, cert, key)
        chain = (self.path,) if getattr(self, "root", None) is not None else ()
        trust = self.root.path if getattr(self, "root", None) is not None else self.path
        return Ident(cn, cp, kp, chain, trust)
