"""Certificates printed the way CUCM's ``show cert own CallManager`` prints them (seed 003)::

    [
    Version: V3
    Serial Number: 398B1DA600000000000E
    SignatureAlgorithm: SHA1withRSA (1.2.840.113549.1.1.5)
    Issuer Name: CN=CA, DC=CA
    Validity From: Sat May 23 17:50:42 GMT 2015
               To:  Mon May 23 18:00:42 GMT 2016
    Subject Name: CN=CUCM10, OU=cisco, O=cisco, L=cisco, ST=cisco, C=IN
    Key: RSA (1.2.840.113549.1.1.1)
    Key value:
    30818902818100bc...
    Extensions: 6 present
    [
    Extension: ExtKeyUsageSyntax (OID.2.5.29.37)
    Critical: false
    Usage oids: 1.3.6.1.5.5.7.3.1, 1.3.6.1.5.5.7.3.2, 1.3.6.1.5.5.7.3.5,
    ]
    ...
    ]

Times are shown in GMT (CUCM shows the server's zone). sipsim adds the subject alternative names
and the SHA-256 fingerprint at the end, which CUCM does not print but packet captures need.
"""

from __future__ import annotations

import datetime as dt

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed448, ed25519, rsa
from cryptography.x509.oid import NameOID

_SIG_NAMES = {
    "1.2.840.113549.1.1.4": "MD5withRSA",
    "1.2.840.113549.1.1.5": "SHA1withRSA",
    "1.2.840.113549.1.1.11": "SHA256withRSA",
    "1.2.840.113549.1.1.12": "SHA384withRSA",
    "1.2.840.113549.1.1.13": "SHA512withRSA",
    "1.2.840.113549.1.1.10": "RSASSA-PSS",
    "1.2.840.10045.4.1": "SHA1withECDSA",
    "1.2.840.10045.4.3.2": "SHA256withECDSA",
    "1.2.840.10045.4.3.3": "SHA384withECDSA",
    "1.2.840.10045.4.3.4": "SHA512withECDSA",
    "1.3.101.112": "Ed25519",
    "1.3.101.113": "Ed448",
}

# Java's names for the extensions, as CUCM prints them.
_EXT_NAMES = {
    "2.5.29.14": "SubjectKeyIdentifier",
    "2.5.29.15": "KeyUsage",
    "2.5.29.17": "SubjectAlternativeName",
    "2.5.29.19": "BasicConstraints",
    "2.5.29.31": "CRLDistributionPoints",
    "2.5.29.32": "CertificatePolicies",
    "2.5.29.35": "AuthorityKeyIdentifier",
    "2.5.29.37": "ExtKeyUsageSyntax",
    "1.3.6.1.5.5.7.1.1": "AuthorityInfoAccess",
}

_SHORT = {
    NameOID.COMMON_NAME: "CN", NameOID.ORGANIZATIONAL_UNIT_NAME: "OU", NameOID.ORGANIZATION_NAME: "O",
    NameOID.LOCALITY_NAME: "L", NameOID.STATE_OR_PROVINCE_NAME: "ST", NameOID.COUNTRY_NAME: "C",
    NameOID.DOMAIN_COMPONENT: "DC", NameOID.EMAIL_ADDRESS: "EMAILADDRESS", NameOID.SERIAL_NUMBER: "SERIALNUMBER",
    NameOID.STREET_ADDRESS: "STREET", NameOID.USER_ID: "UID",
}

KEY_VALUE_WIDTH = 88


def _attr_name(attr: x509.NameAttribute) -> str:
    return _SHORT.get(attr.oid) or f"OID.{attr.oid.dotted_string}"


def _escape(value: str) -> str:
    out = value.replace("\\", "\\\\")
    for ch in ',+"<>;':
        out = out.replace(ch, "\\" + ch)
    return out


def cucm_name(name: x509.Name) -> str:
    """'CN=CUCM10, OU=cisco, O=cisco, L=cisco, ST=cisco, C=IN' (Java/CUCM order: last RDN first)."""
    parts = []
    for rdn in reversed(list(name.rdns)):
        parts.append(" + ".join(f"{_attr_name(a)}={_escape(str(a.value))}" for a in rdn))
    return ", ".join(parts)


def slash_name(name: x509.Name) -> str:
    """'/C=IN/ST=cisco/L=cisco/O=cisco/OU=cisco/CN=CUCM10' (OpenSSL one-line / CUCM SDL trace form)."""
    return "".join(f"/{_attr_name(a)}={a.value}" for rdn in name.rdns for a in rdn)


def signature_algorithm(cert) -> str:
    """'SHA256withRSA (1.2.840.113549.1.1.11)'."""
    oid = cert.signature_algorithm_oid.dotted_string
    name = _SIG_NAMES.get(oid) or getattr(cert.signature_algorithm_oid, "_name", None) or "unknown"
    return f"{name} ({oid})"


def key_algorithm(public_key) -> str:
    if isinstance(public_key, rsa.RSAPublicKey):
        return "RSA (1.2.840.113549.1.1.1)"
    if isinstance(public_key, ec.EllipticCurvePublicKey):
        return "EC (1.2.840.10045.2.1)"
    if isinstance(public_key, ed25519.Ed25519PublicKey):
        return "Ed25519 (1.3.101.112)"
    if isinstance(public_key, ed448.Ed448PublicKey):
        return "Ed448 (1.3.101.113)"
    return type(public_key).__name__


def key_value_bytes(public_key) -> bytes:
    """The subjectPublicKey BIT STRING contents: RSAPublicKey DER for RSA, the point for EC."""
    if isinstance(public_key, rsa.RSAPublicKey):
        return public_key.public_bytes(serialization.Encoding.DER, serialization.PublicFormat.PKCS1)
    if isinstance(public_key, ec.EllipticCurvePublicKey):
        return public_key.public_bytes(serialization.Encoding.X962, serialization.PublicFormat.UncompressedPoint)
    return public_key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)


def java_date(t: dt.datetime) -> str:
    """'Sat May 23 17:50:42 GMT 2015' (java.util.Date.toString in GMT)."""
    t = t.astimezone(dt.timezone.utc)
    days = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")
    months = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")
    return f"{days[t.weekday()]} {months[t.month - 1]} {t.day:02d} {t:%H:%M:%S} GMT {t.year}"


def fingerprint(cert, algorithm: hashes.HashAlgorithm | None = None) -> str:
    """'AB:CD:...' upper-case colon-separated, SHA-256 by default."""
    return ":".join(f"{b:02X}" for b in cert.fingerprint(algorithm or hashes.SHA256()))


def _general_name(n: x509.GeneralName) -> str:
    if isinstance(n, x509.DNSName):
        return f"DNS:{n.value}"
    if isinstance(n, x509.IPAddress):
        return f"IP:{n.value}"
    if isinstance(n, x509.RFC822Name):
        return f"email:{n.value}"
    if isinstance(n, x509.UniformResourceIdentifier):
        return f"URI:{n.value}"
    if isinstance(n, x509.DirectoryName):
        return f"DirName:{cucm_name(n.value)}"
    return str(n.value)


def _extension_lines(ext: x509.Extension) -> list[str]:
    oid = ext.oid.dotted_string
    name = _EXT_NAMES.get(oid) or getattr(ext.oid, "_name", "Unknown")
    lines = ["[", f"Extension: {name} (OID.{oid})", f"Critical: {'true' if ext.critical else 'false'}"]
    v = ext.value
    if isinstance(v, x509.ExtendedKeyUsage):
        lines.append("Usage oids: " + "".join(f"{o.dotted_string}, " for o in v).rstrip())
    elif isinstance(v, x509.KeyUsage):
        names = ["digitalSignature", "nonRepudiation", "keyEncipherment", "dataEncipherment",
                 "keyAgreement", "keyCertSign", "cRLSign"]
        flags = [v.digital_signature, v.content_commitment, v.key_encipherment, v.data_encipherment,
                 v.key_agreement, v.key_cert_sign, v.crl_sign]
        used = [n for n, f in zip(names, flags) if f]
        if v.key_agreement:
            if v.encipher_only:
                used.append("encipherOnly")
            if v.decipher_only:
                used.append("decipherOnly")
        lines.append("Usages: " + "".join(f"{u}, " for u in used).rstrip())
    elif isinstance(v, x509.BasicConstraints):
        lines.append(f"isCA: {'true' if v.ca else 'false'}")
        if v.ca and v.path_length is not None:
            lines.append(f"pathLen: {v.path_length}")
    elif isinstance(v, x509.SubjectKeyIdentifier):
        lines.append(f"ski: {v.digest.hex()}")
    elif isinstance(v, x509.AuthorityKeyIdentifier):
        if v.key_identifier is not None:
            lines.append(f"aki: {v.key_identifier.hex()}")
        if v.authority_cert_serial_number is not None:
            lines.append(f"serial: {v.authority_cert_serial_number:X}")
    elif isinstance(v, x509.SubjectAlternativeName):
        lines.append("names: " + ", ".join(_general_name(n) for n in v))
    else:
        try:
            raw = v.public_bytes()
            lines.append(f"value: {raw.hex()}")
        except Exception:  # noqa: BLE001 - some extension types have no DER accessor
            pass
    lines.append("]")
    return lines


def show_cert(cert: x509.Certificate) -> str:
    """The certificate in CUCM ``show cert`` format, plus SANs and the SHA-256 fingerprint."""
    pub = cert.public_key()
    version = {x509.Version.v1: "V1", x509.Version.v3: "V3"}.get(cert.version, str(cert.version))
    key_hex = key_value_bytes(pub).hex()
    key_lines = [key_hex[i:i + KEY_VALUE_WIDTH] for i in range(0, len(key_hex), KEY_VALUE_WIDTH)]
    try:
        exts = list(cert.extensions)
    except Exception:  # noqa: BLE001 - duplicated / malformed extensions
        exts = []
    lines = [
        "[",
        f"Version: {version}",
        f"Serial Number: {cert.serial_number:X}",
        f"SignatureAlgorithm: {signature_algorithm(cert)}",
        f"Issuer Name: {cucm_name(cert.issuer)}",
        f"Validity From: {java_date(cert.not_valid_before_utc)}",
        f"           To:  {java_date(cert.not_valid_after_utc)}",
        f"Subject Name: {cucm_name(cert.subject)}",
        f"Key: {key_algorithm(pub)}",
        "Key value:",
        *key_lines,
        f"Extensions: {len(exts)} present",
    ]
    for ext in exts:
        lines += _extension_lines(ext)
    sans = []
    for ext in exts:
        if isinstance(ext.value, x509.SubjectAlternativeName):
            sans = [_general_name(n) for n in ext.value]
    lines.append(f"Subject Alternative Names: {', '.join(sans) if sans else '(none)'}")
    lines.append(f"SHA-256 Fingerprint: {fingerprint(cert)}")
    lines.append("]")
    return "\n".join(lines)
