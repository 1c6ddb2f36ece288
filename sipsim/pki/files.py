"""Reading and writing keys, certificates and CSRs.

Private keys are created with mode 0600 from the first byte (never a window where they are readable
by others) and are refused when group/others can read them. Writes are atomic: a temporary file in
the same directory is renamed over the target, so a reader never sees half a file.
"""

from __future__ import annotations

import os
import re
import stat
import tempfile
from pathlib import Path
from typing import Iterable

from cryptography import x509
from cryptography.hazmat.primitives import serialization

from sipsim.errors import UserError

PEM_CERT_RE = re.compile(rb"-----BEGIN (?:X509 |TRUSTED )?CERTIFICATE-----")


def filename_for_cn(cn: str) -> str:
    """A safe file name stem for a common name (seed 000: name files by CN).

    Letters, digits, space and ``._-@+=,`` are kept; anything else (``/``, ``*``, control characters)
    becomes ``_``. A name starting with a dot gets a leading ``_`` so it is not hidden.
    """
    stem = re.sub(r"[^A-Za-z0-9 ._@+=,-]", "_", cn.strip()) or "unnamed"
    if stem.startswith("."):
        stem = "_" + stem
    return stem


def _atomic_write(path: Path, data: bytes, mode: int) -> None:
    path = Path(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    except OSError as e:
        raise UserError(f"cannot write {path}: {e.strerror or e}") from None
    # mkstemp creates the file 0600 already; fchmod makes the final mode explicit.
    try:
        try:
            os.fchmod(fd, mode)
            view = memoryview(data)
            while view:
                n = os.write(fd, view)
                view = view[n:]
            os.fsync(fd)
        finally:
            os.close(fd)
        os.replace(tmp, path)
    except OSError as e:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise UserError(f"cannot write {path}: {e.strerror or e}") from None


def _read(path: Path, what: str) -> bytes:
    path = Path(path)
    try:
        return path.read_bytes()
    except FileNotFoundError:
        raise UserError(f"{what} {path} does not exist: check the path (or generate the lab PKI)") from None
    except IsADirectoryError:
        raise UserError(f"{what} {path} is a directory, not a file") from None
    except OSError as e:
        raise UserError(f"cannot read {what} {path}: {e.strerror or e}") from None


# --- private keys -------------------------------------------------------------------------------

def private_key_pem(key, password: bytes | str | None = None) -> bytes:
    if password:
        if isinstance(password, str):
            password = password.encode()
        enc = serialization.BestAvailableEncryption(password)
    else:
        enc = serialization.NoEncryption()
    return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, enc)


def write_private_key(path, key, password: bytes | str | None = None) -> Path:
    """Write a private key as PKCS#8 PEM with mode 0600 (parent directories are created)."""
    path = Path(path)
    _atomic_write(path, private_key_pem(key, password), 0o600)
    return path


def check_key_file_mode(path) -> None:
    """Refuse a key file that group or others can access (like ssh does)."""
    path = Path(path)
    try:
        st = path.stat()
    except FileNotFoundError:
        raise UserError(f"private key {path} does not exist") from None
    except OSError as e:
        raise UserError(f"cannot read private key {path}: {e.strerror or e}") from None
    perms = stat.S_IMODE(st.st_mode)
    if perms & 0o077:
        raise UserError(
            f"private key {path} is accessible by group or others (mode {perms:04o}): "
            f"run chmod 600 {_shell_quote(str(path))}")


def _shell_quote(s: str) -> str:
    import shlex

    return shlex.quote(s)


def load_private_key(path, password: bytes | str | None = None, *, check_mode: bool = True,
                     validate: bool = True):
    """Load a PEM (PKCS#8 or traditional) or DER private key; refuses group/world readable files.

    ``validate=False`` skips OpenSSL's RSA consistency check (~40 ms per key); use it only when the
    key is then compared with its certificate's public key."""
    path = Path(path)
    if check_mode:
        check_key_file_mode(path)
    data = _read(path, "private key")
    return parse_private_key(data, str(path), password, validate=validate)


def parse_private_key(data: bytes, source: str, password: bytes | str | None = None, *,
                      validate: bool = True):
    if isinstance(password, str):
        password = password.encode()
    is_pem = b"-----BEGIN" in data
    if is_pem and b"PRIVATE KEY-----" not in data:
        raise UserError(f"{source} holds no private key (no '-----BEGIN ... PRIVATE KEY-----' block)")
    encrypted = is_pem and (b"ENCRYPTED" in data)
    loader = serialization.load_pem_private_key if is_pem else serialization.load_der_private_key
    try:
        return loader(data, password=password or None, unsafe_skip_rsa_key_validation=not validate)
    except TypeError:
        if password:
            raise UserError(f"{source}: the private key is not encrypted, drop the password") from None
        raise UserError(f"{source}: the private key is encrypted: give its password") from None
    except (ValueError, Exception) as e:  # noqa: BLE001 - cryptography raises several types
        if encrypted and password:
            raise UserError(f"{source}: wrong password for the private key") from None
        raise UserError(f"{source} is not a readable private key (PEM or DER): {_first_line(e)}") from None


def _first_line(e: BaseException) -> str:
    text = str(e).strip().splitlines()
    return text[0] if text else type(e).__name__


# --- certificates -------------------------------------------------------------------------------

def certificates_pem(certs: Iterable[x509.Certificate]) -> bytes:
    return b"".join(c.public_bytes(serialization.Encoding.PEM) for c in certs)


def write_certificates(path, certs, *, der: bool = False) -> Path:
    """Write one or more certificates as PEM (or a single one as DER), mode 0644."""
    path = Path(path)
    if isinstance(certs, x509.Certificate):
        certs = [certs]
    certs = list(certs)
    if der:
        if len(certs) != 1:
            raise UserError(f"cannot write {len(certs)} certificates as DER to {path}: DER holds one")
        data = certs[0].public_bytes(serialization.Encoding.DER)
    else:
        data = certificates_pem(certs)
    _atomic_write(path, data, 0o644)
    return path


def parse_certificates(data: bytes, source: str) -> list[x509.Certificate]:
    """Certificates from PEM (any number of CERTIFICATE blocks) or one DER certificate."""
    if b"-----BEGIN" in data:
        if not PEM_CERT_RE.search(data):
            kinds = sorted({m.decode(errors="replace") for m in re.findall(rb"-----BEGIN ([A-Z0-9 ]+)-----", data)})
            hint = ""
            if any("PKCS7" in k for k in kinds):
                hint = ": extract the certificates with `sipsim certs import`"
            elif any("REQUEST" in k for k in kinds):
                hint = ": this is a CSR, sign it with `sipsim certs sign`"
            raise UserError(f"{source} holds no certificate (found {', '.join(kinds)}){hint}")
        # normalise the X509/TRUSTED variants cryptography does not read
        norm = re.sub(rb"-----(BEGIN|END) (?:X509 |TRUSTED )CERTIFICATE-----", rb"-----\1 CERTIFICATE-----", data)
        try:
            return x509.load_pem_x509_certificates(norm)
        except ValueError as e:
            raise UserError(f"{source} holds no readable certificate: damaged PEM ({_first_line(e)})") from None
    try:
        return [x509.load_der_x509_certificate(data)]
    except ValueError:
        pass
    raise UserError(f"{source} is neither a PEM nor a DER certificate"
                    + (" (it is empty)" if not data.strip() else "")
                    + ": for PKCS#7 (.p7b) or PKCS#12 (.pfx/.p12) files use `sipsim certs import`")


def load_certificates(path, what: str = "certificate file") -> list[x509.Certificate]:
    """All certificates in a PEM file (possibly several) or a DER file. UserError naming the file
    as ``what`` ("certificate file", "trust file", "chain file")."""
    path = Path(path)
    return parse_certificates(_read(path, what), f"{what} {path}")


def load_certificate(path) -> x509.Certificate:
    """The first certificate of a file."""
    return load_certificates(path)[0]


# --- CSRs ---------------------------------------------------------------------------------------

def write_csr(path, csr: x509.CertificateSigningRequest) -> Path:
    path = Path(path)
    _atomic_write(path, csr.public_bytes(serialization.Encoding.PEM), 0o644)
    return path


def load_csr(path) -> x509.CertificateSigningRequest:
    path = Path(path)
    data = _read(path, "CSR")
    try:
        if b"-----BEGIN" in data:
            norm = data.replace(b"NEW CERTIFICATE REQUEST", b"CERTIFICATE REQUEST")
            return x509.load_pem_x509_csr(norm)
        return x509.load_der_x509_csr(data)
    except ValueError as e:
        raise UserError(f"{path} is not a certificate signing request (PEM or DER): {_first_line(e)}") from None
