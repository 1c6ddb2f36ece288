"""Importing certificates from whatever a CA or a CUCM hands out, detected by content.

Seed 000: "Open the certificate file with notepad.exe. If you can read the begin certificate and end
certificate lines you have a base64 PEM file. If the file is just binary special characters then you
probably have a DER encoded file. If you have a pkcs7 or pkcs12 file then you need to ... extract
the individual certs from the file and save them as base64 PEM files." This module does that:

- PEM certificate(s)           ``-----BEGIN CERTIFICATE-----`` (any number; keys in the same file too)
- DER certificate              binary X.509
- PKCS#7 (.p7b/.p7c)           PEM ``-----BEGIN PKCS7-----`` or DER (SignedData with certificates)
- PKCS#12 (.p12/.pfx)          with a password; the key inside is written 0600 as ``<CN>.key``
- base64 without PEM headers   decoded, then detected again

Every certificate is written as ``<CN>.pem`` (PEM) in the output directory.
"""

from __future__ import annotations

import base64
import binascii
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable

from cryptography import x509
from cryptography.hazmat.primitives.serialization import pkcs7, pkcs12

from sipsim.errors import UserError
from sipsim.pki import der
from sipsim.pki import files as pfiles
from sipsim.pki import issue
from sipsim.pki.keys import public_keys_equal

FORMAT_DESCRIPTIONS = {
    "pem": "PEM certificate(s)",
    "der": "DER certificate",
    "pkcs7-pem": "PKCS#7 (PEM)",
    "pkcs7-der": "PKCS#7 (DER)",
    "pkcs12": "PKCS#12",
}

_OID_PKCS7_SIGNED_DATA = bytes.fromhex("06092a864886f70d010702")  # 1.2.840.113549.1.7.2
_OID_PKCS7_DATA = bytes.fromhex("06092a864886f70d010701")         # 1.2.840.113549.1.7.1


@dataclass
class ImportResult:
    source: Path
    format: str                      # pem, der, pkcs7-pem, pkcs7-der, pkcs12
    written: list[Path] = field(default_factory=list)
    subjects: list[str] = field(default_factory=list)   # CNs (or subjects) of the certificates found

    @property
    def description(self) -> str:
        return FORMAT_DESCRIPTIONS.get(self.format, self.format)


def _der_header(data: bytes, pos: int) -> tuple[int, int, int] | None:
    """(tag, value_start, value_end) or None when not DER-looking."""
    if pos + 2 > len(data):
        return None
    tag, ln = data[pos], data[pos + 1]
    p = pos + 2
    if ln & 0x80:
        n = ln & 0x7F
        if n == 0 or n > 4 or p + n > len(data):
            return None
        ln = int.from_bytes(data[p:p + n], "big")
        p += n
    if p + ln > len(data):
        return None
    return tag, p, p + ln


def sniff_der(data: bytes) -> str | None:
    """'der' (certificate), 'pkcs7-der', 'pkcs12' or None, by the ASN.1 structure."""
    outer = _der_header(data, 0)
    if outer is None or outer[0] != 0x30:
        return None
    _, s, e = outer
    if data[s:s + len(_OID_PKCS7_SIGNED_DATA)] == _OID_PKCS7_SIGNED_DATA:
        return "pkcs7-der"
    first = _der_header(data, s)
    if first is None:
        return None
    tag, fs, fe = first
    if tag == 0x02 and data[fs:fe] == b"\x03":  # PFX version 3
        return "pkcs12"
    if tag == 0x30:  # TBSCertificate
        return "der"
    return None


def _is_base64_text(data: bytes) -> bool:
    text = data.strip()
    return bool(text) and re.fullmatch(rb"[A-Za-z0-9+/=\s]+", text) is not None and len(text) >= 64


def _cn_or_fallback(cert: x509.Certificate) -> str:
    cn = issue.common_name(cert)
    if cn:
        return cn
    if len(cert.subject):
        return cert.subject.rfc4514_string()
    return f"serial-{cert.serial_number:X}"


class _Namer:
    """<CN>.pem, unique within one import run (a second certificate with the same CN gets -2, ...)."""

    def __init__(self):
        self.used: dict[str, x509.Certificate] = {}

    def name(self, out_dir: Path, cert: x509.Certificate, suffix: str = ".pem") -> Path:
        stem = pfiles.filename_for_cn(_cn_or_fallback(cert))
        candidate, n = stem, 1
        while candidate.lower() + suffix in self.used and self.used[candidate.lower() + suffix] != cert:
            n += 1
            candidate = f"{stem}-{n}"
        self.used[candidate.lower() + suffix] = cert
        return out_dir / f"{candidate}{suffix}"


def _pkcs7_certificates(der_data: bytes) -> list[x509.Certificate]:
    """Certificates of a PKCS#7 SignedData (degenerate "certs-only" .p7b), read with a small DER
    walker: OpenSSL's crl2pkcs7 writes the certificate SET unsorted, which cryptography only reads
    through a deprecated BER fallback. Falls back to cryptography for BER (indefinite lengths)."""
    try:
        _, s, e = der.read_tlv(der_data, 0)
        oid_span, content_span = der.children(der_data, s, e)[:2]
        if der_data[oid_span[0]:oid_span[1]] != _OID_PKCS7_SIGNED_DATA or der_data[content_span[0]] != 0xA0:
            raise ValueError("not SignedData")
        _, cs, ce = der.read_tlv(der_data, content_span[0])
        _, sds, sde = der.read_tlv(der_data, cs)          # SignedData SEQUENCE
        certs = []
        for a, b in der.children(der_data, sds, sde):
            if der_data[a] == 0xA0:                        # [0] IMPLICIT certificates
                _, vs, ve = der.read_tlv(der_data, a)
                for ca, cb in der.children(der_data, vs, ve):
                    if der_data[ca] == 0x30:
                        certs.append(x509.load_der_x509_certificate(der_data[ca:cb]))
        return certs
    except (ValueError, IndexError):
        import warnings

        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return pkcs7.load_der_pkcs7_certificates(der_data)


def _pem_body(data: bytes, label: bytes) -> bytes:
    m = re.search(rb"-----BEGIN " + label + rb"-----(.*?)-----END " + label + rb"-----", data, re.S)
    if not m:
        raise ValueError("no PEM block")
    return base64.b64decode(b"".join(m.group(1).split()), validate=False)


def _load_pkcs12(data: bytes, source: str, password):
    passwords = [password.encode() if isinstance(password, str) else password] if password is not None \
        else [None, b""]
    last: Exception | None = None
    for pw in passwords:
        try:
            return pkcs12.load_key_and_certificates(data, pw)
        except ValueError as e:
            last = e
        except Exception as e:  # noqa: BLE001 - unsupported (legacy) encryption
            last = e
    msg = str(last) if last else ""
    if "unsupported" in msg.lower() or "algorithm" in msg.lower():
        raise UserError(f"{source}: PKCS#12 file uses an encryption cryptography cannot read: re-export it "
                        "with `openssl pkcs12 -export` (OpenSSL 3 defaults)")
    if password is None:
        raise UserError(f"{source}: PKCS#12 file is password protected: give the password with --password")
    raise UserError(f"{source}: wrong password for the PKCS#12 file (or the file is damaged)")


def _parse(data: bytes, source: str, password, depth: int = 0):
    """(format, certificates, private keys)."""
    if b"-----BEGIN" in data:
        if b"-----BEGIN PKCS7-----" in data or b"-----BEGIN CERTIFICATE CHAIN-----" in data:
            label = b"PKCS7" if b"-----BEGIN PKCS7-----" in data else b"CERTIFICATE CHAIN"
            try:
                return "pkcs7-pem", _pkcs7_certificates(_pem_body(data, label)), []
            except (ValueError, binascii.Error):
                raise UserError(f"{source}: damaged PKCS#7 file") from None
        if pfiles.PEM_CERT_RE.search(data):
            certs = pfiles.parse_certificates(data, source)
            keys = []
            for m in re.finditer(rb"-----BEGIN ((?:RSA |EC |ENCRYPTED )?PRIVATE KEY)-----.*?-----END \1-----",
                                 data, re.S):
                keys.append(pfiles.parse_private_key(m.group(0), source, password))
            return "pem", certs, keys
        if re.search(rb"-----BEGIN (?:NEW )?CERTIFICATE REQUEST-----", data):
            raise UserError(f"{source} is a certificate signing request, not a certificate: have a CA sign "
                            "it (`sipsim certs sign`)")
        if b"PRIVATE KEY-----" in data:
            raise UserError(f"{source} holds only a private key, no certificate")
        kinds = ", ".join(sorted({m.decode(errors='replace') for m in
                                  re.findall(rb"-----BEGIN ([A-Z0-9 ]+)-----", data)}))
        raise UserError(f"{source} holds no certificate (found PEM blocks: {kinds})")
    kind = sniff_der(data)
    if kind == "der":
        try:
            return "der", [x509.load_der_x509_certificate(data)], []
        except ValueError:
            raise UserError(f"{source}: damaged DER certificate") from None
    if kind == "pkcs7-der":
        try:
            return "pkcs7-der", _pkcs7_certificates(data), []
        except ValueError:
            raise UserError(f"{source}: damaged PKCS#7 file (or it holds no certificates)") from None
    if kind == "pkcs12":
        key, cert, extra = _load_pkcs12(data, source, password)
        certs = ([cert] if cert is not None else []) + list(extra)
        return "pkcs12", certs, [key] if key is not None else []
    if depth == 0 and _is_base64_text(data):
        try:
            raw = base64.b64decode(b"".join(data.split()), validate=True)
        except (binascii.Error, ValueError):
            raw = b""
        if raw and sniff_der(raw):
            return _parse(raw, source, password, depth + 1)
    what = "empty" if not data.strip() else "not a certificate"
    raise UserError(f"{source} is {what}: expected a PEM or DER certificate, PKCS#7 (.p7b) or PKCS#12 "
                    "(.pfx/.p12) file")


def detect(path, password=None) -> tuple[str, list[x509.Certificate], list]:
    """(format, certificates, private keys) of one file, by content. UserError on garbage."""
    path = Path(path)
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise UserError(f"{path} does not exist") from None
    except IsADirectoryError:
        raise UserError(f"{path} is a directory, not a certificate file") from None
    except OSError as e:
        raise UserError(f"cannot read {path}: {e.strerror or e}") from None
    if data.startswith(b"\xef\xbb\xbf"):
        data = data[3:]
    if data[:2] in (b"\xff\xfe", b"\xfe\xff"):  # UTF-16 text saved by Windows tools
        try:
            data = data.decode("utf-16").encode("ascii")
        except (UnicodeError, ValueError):
            pass
    fmt, certs, keys = _parse(data, str(path), password)
    if not certs:
        raise UserError(f"{path}: the {FORMAT_DESCRIPTIONS[fmt]} file holds no certificate")
    return fmt, certs, keys


def import_files(paths: Iterable, out_dir, password: str | bytes | None = None) -> list[ImportResult]:
    """Split every input into ``<CN>.pem`` files (and ``<CN>.key``, 0600, for keys found).

    All inputs are read and checked before anything is written, so one bad file writes nothing.
    """
    out_dir = Path(out_dir)
    parsed = []
    for p in paths:
        fmt, certs, keys = detect(p, password)
        owners = []
        for key in keys:
            owner = next((c for c in certs if public_keys_equal(c.public_key(), key)), None)
            if owner is None:
                raise UserError(f"{p}: the private key inside matches none of its certificates")
            owners.append((key, owner))
        parsed.append((Path(p), fmt, certs, owners))
    namer = _Namer()
    results: list[ImportResult] = []
    for source, fmt, certs, owners in parsed:
        res = ImportResult(source=source, format=fmt)
        where: dict[int, Path] = {}
        for cert in certs:
            target = namer.name(out_dir, cert)
            pfiles.write_certificates(target, [cert])
            where[id(cert)] = target
            res.written.append(target)
            res.subjects.append(_cn_or_fallback(cert))
        for key, owner in owners:
            target = where[id(owner)].with_suffix(".key")
            pfiles.write_private_key(target, key)
            res.written.append(target)
        results.append(res)
    return results
