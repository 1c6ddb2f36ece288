"""`build_context(cfg, server_side)`: an OpenSSL context configured like a CUCM node."""

from __future__ import annotations

import functools
import weakref
from dataclasses import dataclass, field
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import serialization
from OpenSSL import SSL, crypto
from OpenSSL._util import ffi as _ffi, lib as _lib

from sipsim.errors import UserError
from sipsim.pki.files import load_certificates

from .certinfo import CertInfo
from .config import GROUP_EXAMPLES, TLSConfig
from .presets import resolve_ciphers

VERSION_CONSTANTS = {
    "1.0": SSL.TLS1_VERSION,
    "1.1": SSL.TLS1_1_VERSION,
    "1.2": SSL.TLS1_2_VERSION,
    "1.3": SSL.TLS1_3_VERSION,
}


@dataclass
class ContextInfo:
    """Stored as the context's app data: what a `TLSStream` needs to know about its context."""

    cfg: TLSConfig
    server_side: bool
    local_chain: list[CertInfo] = field(default_factory=list)        # CallManager (RSA) identity
    ecdsa_chain: list[CertInfo] = field(default_factory=list)        # CallManager-ECDSA identity
    ca_names: list[str] = field(default_factory=list)        # CertificateRequest CA list
    trust: list[CertInfo] = field(default_factory=list)
    cipher_string: str = ""


#: parsed private keys by (path, mtime_ns, size): a node's server and client contexts (and every
#: node of a lab sharing a file) parse each key once per process
_KEY_CACHE: dict[tuple[str, int, int], object] = {}


def load_private_key(path: Path):
    """The private key in ``path`` (PEM or DER). RSA's slow key-consistency check (~0.1 s for
    RSA-2048) is skipped, as sipsim.pki does: OpenSSL's check_privatekey() then proves the key
    matches its certificate. Parsed keys are cached by file identity (path, mtime, size)."""
    path = Path(path)
    try:
        st = path.stat()
        cache_key = (str(path.resolve()), st.st_mtime_ns, st.st_size)
    except OSError:
        cache_key = None
    if cache_key is not None and cache_key in _KEY_CACHE:
        return _KEY_CACHE[cache_key]
    key = _parse_private_key(path)
    if cache_key is not None:
        if len(_KEY_CACHE) > 256:
            _KEY_CACHE.clear()
        _KEY_CACHE[cache_key] = key
    return key


def _parse_private_key(path: Path):
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise UserError(f"private key file {path} does not exist: check key_file (or generate the lab PKI)") from None
    except OSError as exc:
        raise UserError(f"private key file {path} cannot be read ({exc.strerror}): fix its permissions") from None
    try:
        if b"-----BEGIN" in data:
            return serialization.load_pem_private_key(data, password=None, unsafe_skip_rsa_key_validation=True)
        return serialization.load_der_private_key(data, password=None, unsafe_skip_rsa_key_validation=True)
    except TypeError:
        raise UserError(f"private key file {path} is encrypted: store it without a passphrase") from None
    except (ValueError, Exception):
        raise UserError(f"private key file {path} holds no readable private key: it must be PEM or DER (PKCS#8 or traditional)") from None


def _use_identity(ctx: SSL.Context, cert_file: Path, key_file: Path, chain_files) -> list[x509.Certificate]:
    certs = load_certificates(cert_file, "certificate file")
    key = load_private_key(key_file)
    chain = list(certs[1:])
    for p in chain_files:
        chain += load_certificates(p, "chain file")
    leaf = certs[0]
    try:
        ctx.use_certificate(leaf)
    except SSL.Error as exc:
        raise UserError(
            f"certificate file {cert_file} cannot be used by OpenSSL ({_err_text(exc)}): "
            "use a stronger key/hash or lower the TLS security_level"
        ) from None
    try:
        ctx.use_privatekey(key)
        ctx.check_privatekey()
    except (SSL.Error, TypeError) as exc:
        if "mismatch" not in _err_text(exc):
            raise UserError(f"private key file {key_file} cannot be used by OpenSSL ({_err_text(exc)})") from None
        raise UserError(
            f"private key file {key_file} does not match certificate file {cert_file}: "
            "use the key the certificate was issued for"
        ) from None
    for c in chain:
        try:
            ctx.add_extra_chain_cert(c)
        except SSL.Error as exc:
            raise UserError(f"chain certificate {c.subject.rfc4514_string()} cannot be used ({_err_text(exc)})") from None
    return [leaf] + chain


def _err_text(exc: Exception) -> str:
    args = getattr(exc, "args", ())
    if args and isinstance(args[0], list):
        parts = [e[2] for e in args[0] if isinstance(e, tuple) and len(e) >= 3 and e[2]]
        if parts:
            return "; ".join(parts)
    return str(exc) or type(exc).__name__


def _set_groups(ctx: SSL.Context, groups: str) -> bool:
    ok = _lib.SSL_CTX_set1_curves_list(ctx._context, groups.encode()) == 1   # = set1_groups_list
    _lib.ERR_clear_error()
    return ok


@functools.lru_cache(maxsize=64)
def groups_problem(groups: str) -> str | None:
    """Why OpenSSL refuses the key exchange group list ``groups`` (one sentence naming the unknown
    names and valid ones), or None when it accepts it."""
    if _set_groups(SSL.Context(SSL.TLS_METHOD), groups):
        return None
    parts = [p.strip() for p in groups.replace("/", ":").split(":")]
    bad = [p for p in parts if p and not _set_groups(SSL.Context(SSL.TLS_METHOD), p)]
    if bad:
        what = f"{', '.join(repr(b) for b in bad)} {'is not a' if len(bad) == 1 else 'are not'} key exchange " \
               f"group{'' if len(bad) == 1 else 's'} OpenSSL knows"
    else:
        what = "OpenSSL cannot read it as a group list"
    return f"{what}; use names separated by ':' such as {GROUP_EXAMPLES}"


def build_context(cfg: TLSConfig, server_side: bool) -> SSL.Context:
    """An OpenSSL context for one node: versions, ciphers (CUCM preset or OpenSSL list, NULL in
    Authenticated mode, ``@SECLEVEL=0`` for legacy), key exchange groups (``DEFAULT_GROUPS``: no
    ML-KEM unless asked for), identity and chain, CallManager-trust store,
    mutual TLS (the server requests a certificate, naming the trusted subjects as CA list), session
    tickets on. Raises `UserError` naming the file and the fix."""
    ctx = SSL.Context(SSL.TLS_METHOD)
    lo, hi = cfg.min_version, cfg.max_version
    if cfg.mode == "authenticated" and hi == "1.3":
        hi = "1.2"            # NULL-SHA cipher suites exist only up to TLS 1.2
        if lo == "1.3":
            raise UserError("TLS mode 'authenticated' (NULL-SHA) needs TLS 1.2 or lower: lower min_version")
    ctx.set_min_proto_version(VERSION_CONSTANTS[lo])
    ctx.set_max_proto_version(VERSION_CONSTANTS[hi])
    ctx.set_options(SSL.OP_NO_COMPRESSION)
    if server_side:
        ctx.set_options(SSL.OP_CIPHER_SERVER_PREFERENCE)
    cipher_string = resolve_ciphers(cfg.ciphers, cfg.mode, lo, cfg.security_level)
    try:
        ctx.set_cipher_list(cipher_string.encode())
    except SSL.Error:
        raise UserError(
            f"TLS ciphers {cfg.ciphers or cipher_string!r} match no cipher OpenSSL supports: use a CUCM "
            "preset (all_ciphers_rsa_preferred, strongest, medium, …) or OpenSSL names such as AES128-SHA"
        ) from None
    if cfg.tls13_ciphersuites:
        try:
            ctx.set_tls13_ciphersuites(cfg.tls13_ciphersuites.encode())
        except SSL.Error:
            raise UserError(
                f"TLS 1.3 ciphersuites {cfg.tls13_ciphersuites!r} are unknown: use names such as "
                "TLS_AES_256_GCM_SHA384:TLS_AES_128_GCM_SHA256"
            ) from None

    groups = cfg.group_list
    if not _set_groups(ctx, groups):
        raise UserError(f"TLS groups {groups!r} cannot be used: "
                        f"{groups_problem(groups) or 'OpenSSL refused the list'}")

    info = ContextInfo(cfg=cfg, server_side=server_side, cipher_string=cipher_string)
    if cfg.cert_file is not None:
        chain = _use_identity(ctx, cfg.cert_file, cfg.key_file, cfg.chain_files)
        info.local_chain = [CertInfo.from_certificate(c) for c in chain]
    elif cfg.chain_files:
        raise UserError("TLS chain_files given without cert_file: give the node's certificate and key too")
    if cfg.ecdsa_cert_file is not None:
        # A second identity (CallManager-ECDSA): OpenSSL picks it when an ECDSA suite is chosen.
        ecdsa = _use_identity(ctx, cfg.ecdsa_cert_file, cfg.ecdsa_key_file, ())
        info.ecdsa_chain = [CertInfo.from_certificate(c) for c in ecdsa]
        if not info.local_chain:
            info.local_chain = list(info.ecdsa_chain)

    store = ctx.get_cert_store()
    seen_subjects: set[str] = set()
    for path in cfg.trust_files:
        for cert in load_certificates(path, "trust file"):
            try:
                store.add_cert(crypto.X509.from_cryptography(cert))
            except crypto.Error:
                pass          # the same certificate twice
            ci = CertInfo.from_certificate(cert)
            info.trust.append(ci)
            if server_side and ci.subject not in seen_subjects:
                seen_subjects.add(ci.subject)
                ctx.add_client_ca(cert)
                info.ca_names.append(ci.subject)

    if server_side:
        mode = SSL.VERIFY_PEER
        if cfg.require_peer_cert:
            mode |= SSL.VERIFY_FAIL_IF_NO_PEER_CERT
        ctx.set_session_id(b"sipsim")
    else:
        mode = SSL.VERIFY_PEER
    ctx.set_verify(mode)
    ctx.set_verify_depth(10)
    # no keylog callback until a TLSStream with a keylog uses this context (`enable_keylog`): the
    # 5 key lines of every TLS 1.3 handshake cost nothing unless someone asked for them
    ctx.set_app_data(info)
    return ctx


def context_info(ctx: SSL.Context) -> ContextInfo | None:
    info = ctx.get_app_data()
    return info if isinstance(info, ContextInfo) else None


#: SSL pointer → weak reference to its TLSStream (weak: a stream and its OpenSSL callbacks form no
#: reference cycle, so a closed connection is freed at once rather than by the garbage collector).
#: A plain dict of `weakref.ref`s rather than a WeakValueDictionary: the callbacks look a stream up
#: ~25 times per handshake, and WeakValueDictionary's get and set are Python code.
STREAMS: dict = {}


def register_stream(ssl, stream) -> None:
    """``stream`` owns ``ssl`` until it is freed (then its entry goes, unless already replaced)."""
    def gone(ref, key=ssl, streams=STREAMS):
        if streams.get(key) is ref:
            del streams[key]
    STREAMS[ssl] = weakref.ref(stream, gone)


def stream_of(ssl):
    """The live TLSStream of an ``SSL *``, or None."""
    ref = STREAMS.get(ssl)
    return ref() if ref is not None else None


@_ffi.callback("void (*)(const SSL *, const char *)")
def _keylog_c(ssl, line) -> None:
    stream = stream_of(ssl)
    if stream is not None and getattr(stream, "keylog", None) is not None:
        stream._on_keylog(_ffi.string(line))


def enable_keylog(ctx: SSL.Context) -> None:
    """Install the key-line callback on ``ctx`` (at the C level: no pyOpenSSL wrapper per line; each
    line goes to the keylog of the connection's TLSStream, if it has one). Idempotent."""
    _lib.SSL_CTX_set_keylog_callback(ctx._context, _keylog_c)
