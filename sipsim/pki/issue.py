"""Issuing certificates the way CUCM's CallManager certificates look.

- Identity (CallManager) certificates: CN = the node's FQDN, optional OU/O/L/ST/C, SAN dNSNames,
  EKU serverAuth + clientAuth + IPsec end system (1.3.6.1.5.5.7.3.5, seed 003), KeyUsage
  digitalSignature + keyEncipherment (RSA) / keyAgreement (EC), BasicConstraints CA:FALSE, SKI/AKI.
- Times are whole seconds in UTC; RFC 5280 encodes them as UTCTime / GeneralizedTime with a ``Z``
  and no fractions, which is what CUCM requires (GMT ``YYYYMMDDHHMMSSZ``).
- Serial numbers: 16 random bytes, positive (top bit cleared), never zero.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
import os
from typing import Iterable, Mapping

from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID, ObjectIdentifier

from sipsim.errors import UserError
from sipsim.pki import der
from sipsim.pki.keys import hash_algorithm, normalise_hash

UTC = dt.timezone.utc

IPSEC_END_SYSTEM = ObjectIdentifier("1.3.6.1.5.5.7.3.5")
# The EKUs of a CUCM CallManager certificate (seed 003: 1.3.6.1.5.5.7.3.1, .3.2, .3.5).
DEFAULT_EKUS: tuple[ObjectIdentifier, ...] = (
    ExtendedKeyUsageOID.SERVER_AUTH, ExtendedKeyUsageOID.CLIENT_AUTH, IPSEC_END_SYSTEM)

EKU_NAMES = {
    "serverauth": ExtendedKeyUsageOID.SERVER_AUTH,
    "server": ExtendedKeyUsageOID.SERVER_AUTH,
    "clientauth": ExtendedKeyUsageOID.CLIENT_AUTH,
    "client": ExtendedKeyUsageOID.CLIENT_AUTH,
    "ipsec": IPSEC_END_SYSTEM,
    "ipsecendsystem": IPSEC_END_SYSTEM,
    "codesigning": ExtendedKeyUsageOID.CODE_SIGNING,
    "emailprotection": ExtendedKeyUsageOID.EMAIL_PROTECTION,
    "timestamping": ExtendedKeyUsageOID.TIME_STAMPING,
    "ocspsigning": ExtendedKeyUsageOID.OCSP_SIGNING,
}

# Subject attributes users may give, by the short names CUCM shows. Stored in the certificate in
# the order C, ST, L, O, OU, DC, CN so that RFC 4514 / Java (CUCM ``show cert``) prints
# "CN=..., OU=..., O=..., L=..., ST=..., C=..." and the OpenSSL one-line form is "/C=../CN=..".
SUBJECT_ATTRS = {
    "C": NameOID.COUNTRY_NAME,
    "ST": NameOID.STATE_OR_PROVINCE_NAME,
    "L": NameOID.LOCALITY_NAME,
    "O": NameOID.ORGANIZATION_NAME,
    "OU": NameOID.ORGANIZATIONAL_UNIT_NAME,
    "DC": NameOID.DOMAIN_COMPONENT,
    "EMAIL": NameOID.EMAIL_ADDRESS,
}
_SUBJECT_ALIASES = {"S": "ST", "COUNTRY": "C", "STATE": "ST", "LOCALITY": "L", "ORG": "O",
                    "ORGANIZATION": "O", "ORGANISATION": "O", "EMAILADDRESS": "EMAIL", "E": "EMAIL",
                    "ORGANIZATIONALUNIT": "OU", "UNIT": "OU"}
_SUBJECT_ORDER = ("C", "ST", "L", "O", "OU", "DC", "EMAIL")


# --- small helpers ------------------------------------------------------------------------------

def utc_now() -> dt.datetime:
    return dt.datetime.now(UTC).replace(microsecond=0)


def whole_seconds_utc(t: dt.datetime | dt.date | str) -> dt.datetime:
    """A timezone-aware UTC datetime with no fractions (naive values are taken as UTC)."""
    if isinstance(t, str):
        t = parse_time(t)
    if isinstance(t, dt.date) and not isinstance(t, dt.datetime):
        t = dt.datetime(t.year, t.month, t.day)
    if t.tzinfo is None:
        t = t.replace(tzinfo=UTC)
    return t.astimezone(UTC).replace(microsecond=0)


def parse_time(text: str) -> dt.datetime:
    """'2025-01-01', '2025-01-01T12:00:00', '2025-01-01 12:00:00Z', '20250101120000Z' → UTC."""
    s = str(text).strip()
    if len(s) == 15 and s.endswith("Z") and s[:14].isdigit():
        return dt.datetime.strptime(s, "%Y%m%d%H%M%SZ").replace(tzinfo=UTC)
    try:
        t = dt.datetime.fromisoformat(s.replace("Z", "+00:00").replace("z", "+00:00"))
    except ValueError:
        raise UserError(f"cannot read the time {text!r}: write it as YYYY-MM-DD or "
                        "YYYY-MM-DDTHH:MM:SS (UTC)") from None
    return whole_seconds_utc(t)


def random_serial() -> int:
    """16 random bytes, positive and non-zero (RFC 5280 allows up to 20 octets)."""
    while True:
        n = int.from_bytes(os.urandom(16), "big") >> 1
        if n:
            return n


def parse_subject(text: str | Mapping[str, str] | None) -> dict[str, str]:
    """'OU=cisco, O=cisco, L=cisco, ST=cisco, C=IN' (or a dict) → {'OU': 'cisco', ...}.

    A backslash escapes a comma in a value. CN is not accepted here (it is given separately).
    """
    if text is None:
        return {}
    if isinstance(text, Mapping):
        items = list(text.items())
    else:
        parts, cur, esc = [], "", False
        for ch in str(text):
            if esc:
                cur += ch
                esc = False
            elif ch == "\\":
                esc = True
            elif ch in ",;/":
                parts.append(cur)
                cur = ""
            else:
                cur += ch
        parts.append(cur)
        items = []
        for part in parts:
            if not part.strip():
                continue
            if "=" not in part:
                raise UserError(f"subject part {part.strip()!r} has no '=': write it as "
                                "\"OU=cisco, O=cisco, L=cisco, ST=cisco, C=IN\"")
            k, v = part.split("=", 1)
            items.append((k, v))
    out: dict[str, str] = {}
    for k, v in items:
        key = str(k).strip().upper()
        key = _SUBJECT_ALIASES.get(key, key)
        if key == "CN":
            raise UserError("give the common name with --cn / the cn field, not in the subject attributes")
        if key not in SUBJECT_ATTRS:
            raise UserError(f"unknown subject attribute {str(k).strip()!r}: use "
                            f"{', '.join(a for a in SUBJECT_ATTRS if a != 'EMAIL')} or emailAddress")
        value = str(v).strip()
        if not value:
            raise UserError(f"subject attribute {key} is empty")
        if key == "C" and (len(value) != 2 or not value.isalpha()):
            raise UserError(f"subject C={value!r}: the country must be a two-letter code such as IN or US")
        out[key] = value
    return out


def build_name(cn: str | None, subject: Mapping[str, str] | None = None) -> x509.Name:
    """An X.509 name stored as C, ST, L, O, OU, DC, emailAddress, CN (shown CN-first by CUCM)."""
    attrs = parse_subject(subject or {})
    rdns = [x509.NameAttribute(SUBJECT_ATTRS[k], attrs[k]) for k in _SUBJECT_ORDER if k in attrs]
    if cn is not None:
        cn = cn.strip()
        if not cn:
            raise UserError("the common name (CN) is empty")
        if len(cn) > 64:
            raise UserError(f"common name {cn[:40]!r}... is {len(cn)} characters long: X.509 allows 64")
        rdns.append(x509.NameAttribute(NameOID.COMMON_NAME, cn))
    return x509.Name(rdns)


def _general_names(sans: Iterable[str]) -> list[x509.GeneralName]:
    out: list[x509.GeneralName] = []
    seen = set()
    for s in sans:
        s = str(s).strip()
        if not s or s.lower() in seen:
            continue
        seen.add(s.lower())
        low = s.lower()
        if low.startswith("ip:"):
            out.append(x509.IPAddress(ipaddress.ip_address(s[3:].strip())))
            continue
        if low.startswith("dns:"):
            s = s[4:].strip()
        else:
            try:
                out.append(x509.IPAddress(ipaddress.ip_address(s)))
                continue
            except ValueError:
                pass
        try:
            out.append(x509.DNSName(s))
        except ValueError as e:
            raise UserError(f"subject alternative name {s!r} is not a DNS name: {e}") from None
    return out


def resolve_ekus(ekus) -> tuple[ObjectIdentifier, ...]:
    """EKUs from OIDs or names ('serverAuth', 'clientAuth', 'ipsec', '1.3.6.1.5.5.7.3.5')."""
    if ekus is None:
        return DEFAULT_EKUS
    out = []
    for e in ekus:
        if isinstance(e, ObjectIdentifier):
            out.append(e)
            continue
        s = str(e).strip()
        if s and s[0].isdigit():
            out.append(ObjectIdentifier(s))
            continue
        key = s.lower().replace("-", "").replace("_", "").replace(" ", "")
        if key not in EKU_NAMES:
            raise UserError(f"unknown extended key usage {s!r}: use serverAuth, clientAuth, ipsec or a dotted OID")
        out.append(EKU_NAMES[key])
    return tuple(dict.fromkeys(out))


def validity(days: int | None, not_before=None, not_after=None) -> tuple[dt.datetime, dt.datetime]:
    """(not_before, not_after) honouring explicit values, even in the past (expired on purpose)."""
    days = 3650 if days is None else int(days)
    if days <= 0 and (not_before is None or not_after is None):
        raise UserError(f"validity of {days} days: give a positive number of days")
    nb = whole_seconds_utc(not_before) if not_before is not None else None
    na = whole_seconds_utc(not_after) if not_after is not None else None
    if nb is None and na is None:
        nb = utc_now()
        na = nb + dt.timedelta(days=days)
    elif nb is None:
        nb = min(utc_now(), na - dt.timedelta(days=days))
        if nb >= na:
            nb = na - dt.timedelta(days=days)
    elif na is None:
        na = nb + dt.timedelta(days=days)
    if na <= nb:
        raise UserError(f"not_after {na:%Y-%m-%d %H:%M:%S}Z is not after not_before {nb:%Y-%m-%d %H:%M:%S}Z")
    return nb, na


def _key_usage_leaf(public_key) -> x509.KeyUsage:
    is_ec = isinstance(public_key, ec.EllipticCurvePublicKey)
    return x509.KeyUsage(digital_signature=True, content_commitment=False,
                         key_encipherment=not is_ec, data_encipherment=False,
                         key_agreement=is_ec, key_cert_sign=False, crl_sign=False,
                         encipher_only=False, decipher_only=False)


def _key_usage_ca() -> x509.KeyUsage:
    return x509.KeyUsage(digital_signature=True, content_commitment=False, key_encipherment=False,
                         data_encipherment=False, key_agreement=False, key_cert_sign=True,
                         crl_sign=True, encipher_only=False, decipher_only=False)


def _sign(builder, signing_key, hash_name: str):
    """Sign a certificate or CSR builder; SHA-1 goes through der.resign_* (cryptography refuses it)."""
    sha1 = normalise_hash(hash_name) == "sha1"
    try:
        signed = builder.sign(signing_key, hash_algorithm("sha256" if sha1 else hash_name))
        if sha1:
            if isinstance(signed, x509.Certificate):
                return der.resign_certificate_sha1(signed, signing_key)
            return der.resign_csr_sha1(signed, signing_key)
        return signed
    except (ValueError, TypeError) as e:
        raise UserError(f"cannot sign with {hash_name}: {e}") from None


def _aki(issuer_cert: x509.Certificate | None, issuer_public_key) -> x509.AuthorityKeyIdentifier:
    if issuer_cert is not None:
        try:
            ski = issuer_cert.extensions.get_extension_for_class(x509.SubjectKeyIdentifier).value
            return x509.AuthorityKeyIdentifier.from_issuer_subject_key_identifier(ski)
        except x509.ExtensionNotFound:
            pass
    return x509.AuthorityKeyIdentifier.from_issuer_public_key(issuer_public_key)


# --- identity certificates ----------------------------------------------------------------------

def issue_identity(public_key, subject: x509.Name, *, sans: Iterable[str] = (), issuer_cert=None,
                   issuer_key, hash: str = "sha256", days: int | None = 3650, not_before=None,
                   not_after=None, ekus=None, serial: int | None = None,
                   san_names: list[x509.GeneralName] | None = None) -> x509.Certificate:
    """A CallManager-style end-entity certificate for ``public_key``.

    Self-signed when ``issuer_cert`` is None (``issuer_key`` is then the subject's own key).
    """
    hash = normalise_hash(hash)
    nb, na = validity(days, not_before, not_after)
    issuer_name = subject if issuer_cert is None else issuer_cert.subject
    b = (x509.CertificateBuilder()
         .subject_name(subject).issuer_name(issuer_name).public_key(public_key)
         .serial_number(serial or random_serial())
         .not_valid_before(nb).not_valid_after(na)
         .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
         .add_extension(_key_usage_leaf(public_key), critical=True))
    ekus = resolve_ekus(ekus)
    if ekus:
        b = b.add_extension(x509.ExtendedKeyUsage(list(ekus)), critical=False)
    names = san_names if san_names is not None else _general_names(sans)
    if names:
        b = b.add_extension(x509.SubjectAlternativeName(names), critical=False)
    b = b.add_extension(x509.SubjectKeyIdentifier.from_public_key(public_key), critical=False)
    b = b.add_extension(_aki(issuer_cert, issuer_key.public_key()), critical=False)
    return _sign(b, issuer_key, hash)


def self_signed_identity(key, cn: str, sans: Iterable[str] = (), subject: Mapping[str, str] | None = None,
                         *, hash: str = "sha256", days: int | None = 3650, not_before=None,
                         not_after=None, ekus=None) -> x509.Certificate:
    """A self-signed CallManager certificate (CUCM's default), e.g. CN=CUCM10, OU=cisco, O=cisco,
    L=cisco, ST=cisco, C=IN."""
    return issue_identity(key.public_key(), build_name(cn, subject), sans=sans, issuer_cert=None,
                          issuer_key=key, hash=hash, days=days, not_before=not_before,
                          not_after=not_after, ekus=ekus)


def ca_signed_identity(key_or_public, cn: str, ca_cert: x509.Certificate, ca_key, sans: Iterable[str] = (),
                       subject: Mapping[str, str] | None = None, *, hash: str = "sha256",
                       days: int | None = 3650, not_before=None, not_after=None,
                       ekus=None) -> x509.Certificate:
    pub = key_or_public.public_key() if hasattr(key_or_public, "private_bytes") else key_or_public
    return issue_identity(pub, build_name(cn, subject), sans=sans, issuer_cert=ca_cert, issuer_key=ca_key,
                          hash=hash, days=days, not_before=not_before, not_after=not_after, ekus=ekus)


# --- CAs ----------------------------------------------------------------------------------------

def make_ca(key, cn: str, subject: Mapping[str, str] | None = None, *, hash: str = "sha256",
            days: int | None = 3650, not_before=None, not_after=None, path_length: int | None = None,
            issuer_cert: x509.Certificate | None = None, issuer_key=None) -> x509.Certificate:
    """A lab CA: a self-signed root when ``issuer_cert`` is None, else an intermediate signed by it.

    CA:TRUE (critical), keyCertSign + cRLSign (critical), optional pathlen, SKI/AKI.
    """
    hash = normalise_hash(hash)
    nb, na = validity(days, not_before, not_after)
    name = build_name(cn, subject)
    if issuer_cert is None:
        issuer_name, signer = name, key
    else:
        if issuer_key is None:
            raise UserError("an intermediate CA needs the issuing CA's key")
        issuer_name, signer = issuer_cert.subject, issuer_key
    b = (x509.CertificateBuilder()
         .subject_name(name).issuer_name(issuer_name).public_key(key.public_key())
         .serial_number(random_serial()).not_valid_before(nb).not_valid_after(na)
         .add_extension(x509.BasicConstraints(ca=True, path_length=path_length), critical=True)
         .add_extension(_key_usage_ca(), critical=True)
         .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
         .add_extension(_aki(issuer_cert, signer.public_key()), critical=False))
    return _sign(b, signer, hash)


# --- CSRs ---------------------------------------------------------------------------------------

def make_csr(key, cn: str, sans: Iterable[str] = (), subject: Mapping[str, str] | str | None = None,
             hash: str = "sha256", *, ekus=None) -> x509.CertificateSigningRequest:
    """A CSR like CUCM's "Generate CSR" (CallManager purpose): subject, SANs, requested EKUs."""
    hash = normalise_hash(hash)
    b = x509.CertificateSigningRequestBuilder().subject_name(build_name(cn, parse_subject(subject)))
    names = _general_names(sans)
    if names:
        b = b.add_extension(x509.SubjectAlternativeName(names), critical=False)
    ekus = resolve_ekus(ekus)
    if ekus:
        b = b.add_extension(x509.ExtendedKeyUsage(list(ekus)), critical=False)
    b = b.add_extension(_key_usage_leaf(key.public_key()), critical=True)
    return _sign(b, key, hash)


def sign_csr(csr: x509.CertificateSigningRequest, ca_cert: x509.Certificate, ca_key, days: int | None = 3650,
             hash: str = "sha256", ekus=None, not_before=None, not_after=None) -> x509.Certificate:
    """The CA signs a CSR: subject and SANs come from the CSR, EKUs from ``ekus`` (CallManager's
    serverAuth, clientAuth, IPsec end system by default); BasicConstraints CA:FALSE."""
    if not der.verify_signature(csr, csr.public_key()):
        raise UserError(f"the CSR for {csr.subject.rfc4514_string() or 'an empty subject'} has a bad "
                        "signature: generate it again")
    try:
        ca_bc = ca_cert.extensions.get_extension_for_class(x509.BasicConstraints).value
        is_ca = ca_bc.ca
    except x509.ExtensionNotFound:
        is_ca = False
    if not is_ca:
        raise UserError(f"{ca_cert.subject.rfc4514_string()} is not a CA certificate (no CA:TRUE): "
                        "sign with a CA made by `sipsim certs ca`")
    from sipsim.pki.keys import public_keys_equal

    if not public_keys_equal(ca_cert.public_key(), ca_key):
        raise UserError(f"the CA key does not belong to the CA certificate {ca_cert.subject.rfc4514_string()}")
    try:
        san = csr.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
        san_names = list(san)
    except x509.ExtensionNotFound:
        san_names = []
    return issue_identity(csr.public_key(), csr.subject, issuer_cert=ca_cert, issuer_key=ca_key, hash=hash,
                          days=days, not_before=not_before, not_after=not_after, ekus=ekus,
                          san_names=san_names)


# --- reading back -------------------------------------------------------------------------------

def common_name(name_or_cert) -> str | None:
    name = name_or_cert.subject if hasattr(name_or_cert, "subject") else name_or_cert
    attrs = name.get_attributes_for_oid(NameOID.COMMON_NAME)
    return str(attrs[-1].value) if attrs else None


def dns_sans(cert) -> list[str]:
    try:
        ext = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except x509.ExtensionNotFound:
        return []
    return [str(n) for n in ext.get_values_for_type(x509.DNSName)]


def all_sans(cert) -> list[str]:
    """SANs as strings: DNS names as they are, IP addresses as text."""
    try:
        ext = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except x509.ExtensionNotFound:
        return []
    out = [str(n) for n in ext.get_values_for_type(x509.DNSName)]
    out += [str(n) for n in ext.get_values_for_type(x509.IPAddress)]
    return out


def subject_attrs(name_or_cert) -> dict[str, str]:
    """The non-CN attributes we manage, as {'OU': 'cisco', ...}."""
    name = name_or_cert.subject if hasattr(name_or_cert, "subject") else name_or_cert
    out = {}
    for short, oid in SUBJECT_ATTRS.items():
        vals = name.get_attributes_for_oid(oid)
        if vals:
            out[short] = str(vals[-1].value)
    return out


def issued_by(cert: x509.Certificate, issuer: x509.Certificate) -> bool:
    """True when ``issuer``'s name is cert's issuer and its key verifies cert's signature (SHA-1 too)."""
    return cert.issuer == issuer.subject and der.verify_signature(cert, issuer.public_key())


def is_self_signed(cert: x509.Certificate) -> bool:
    return issued_by(cert, cert)


def is_ca(cert: x509.Certificate) -> bool:
    try:
        return cert.extensions.get_extension_for_class(x509.BasicConstraints).value.ca
    except x509.ExtensionNotFound:
        return False


def not_before(cert) -> dt.datetime:
    return cert.not_valid_before_utc


def not_after(cert) -> dt.datetime:
    return cert.not_valid_after_utc


__all__ = [
    "DEFAULT_EKUS", "IPSEC_END_SYSTEM", "self_signed_identity", "ca_signed_identity", "issue_identity",
    "make_ca", "make_csr", "sign_csr", "build_name", "parse_subject", "parse_time", "validity",
    "random_serial", "issued_by", "common_name", "dns_sans", "all_sans", "subject_attrs", "is_self_signed", "is_ca",
    "resolve_ekus", "whole_seconds_utc", "utc_now",
]
