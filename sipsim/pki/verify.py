"""Chain verification in pure Python (cryptography), with reasons and sentences a person can act on.

cryptography's ``x509.verification`` is not used: it refuses SHA-1 signatures and RSA keys under
2048 bits outright, while CUCM 9/10 made exactly those (seed 003) and sipsim must say "this works
but is weak" (a warning), not "this is broken". The chain is walked here: issuer by name, signature
with the issuer's public key, validity at ``at``, basicConstraints/keyUsage/pathlen of issuers,
extended key usage of the leaf and intermediates.

Reasons (``VerifyResult.reason``):

- ``unknown_issuer``        the issuer (or the root of the chain) is not in the trust files
- ``self_signed_untrusted`` the certificate is self-signed and not in the trust files
- ``expired`` / ``not_yet_valid``  a certificate of the chain is outside its validity at ``at``
- ``missing_server_auth`` / ``missing_client_auth``  EKU (or keyUsage) forbids the TLS role
- ``bad_signature``         a certificate names an issuer whose key did not sign it
- ``invalid_ca``            an issuer is not a CA (basicConstraints, keyCertSign, pathlen)
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable

from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import ExtendedKeyUsageOID

from sipsim.errors import UserError
from sipsim.pki import files as pfiles
from sipsim.pki import issue
from sipsim.pki.show import cucm_name, signature_algorithm

REASONS = ("unknown_issuer", "self_signed_untrusted", "expired", "not_yet_valid", "missing_server_auth",
           "missing_client_auth", "bad_signature", "invalid_ca")
MAX_DEPTH = 10


@dataclass
class VerifyResult:
    ok: bool
    reason: str | None
    sentence: str
    warnings: list[str] = field(default_factory=list)
    path: list[x509.Certificate] = field(default_factory=list)  # leaf first, anchor last when ok

    def __bool__(self) -> bool:
        return self.ok


def _gmt(t: dt.datetime) -> str:
    return t.astimezone(dt.timezone.utc).strftime("%Y-%m-%d %H:%M:%S GMT")


def _certs(items) -> list[x509.Certificate]:
    out: list[x509.Certificate] = []
    if items is None:
        return out
    if isinstance(items, (x509.Certificate, str, Path)):
        items = [items]
    for it in items:
        if isinstance(it, x509.Certificate):
            out.append(it)
        else:
            out.extend(pfiles.load_certificates(it))
    return out


def _same(a: x509.Certificate, b: x509.Certificate) -> bool:
    return a == b  # DER equality


def _bc(cert) -> x509.BasicConstraints | None:
    try:
        return cert.extensions.get_extension_for_class(x509.BasicConstraints).value
    except x509.ExtensionNotFound:
        return None


def _ku(cert) -> x509.KeyUsage | None:
    try:
        return cert.extensions.get_extension_for_class(x509.KeyUsage).value
    except x509.ExtensionNotFound:
        return None


def _eku(cert) -> list[x509.ObjectIdentifier] | None:
    try:
        return list(cert.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value)
    except x509.ExtensionNotFound:
        return None


class _Fail(Exception):
    def __init__(self, reason: str, sentence: str, path: list[x509.Certificate]):
        self.reason, self.sentence, self.path = reason, sentence, path


def _build(cert: x509.Certificate, pool: list[x509.Certificate], trust: list[x509.Certificate],
           partial_chain: bool) -> list[x509.Certificate]:
    """The path leaf → anchor, or raise _Fail with the first problem found."""
    leaf = cert
    path = [cert]
    trusted_below = False  # a non-self-signed trusted cert was passed on the way (partial chain off)
    while True:
        current = path[-1]
        in_trust = any(_same(current, t) for t in trust)
        self_signed = current.issuer == current.subject and issue.issued_by(current, current)
        if in_trust and (self_signed or partial_chain):
            return path
        if in_trust:
            trusted_below = True
        if self_signed:
            name = cucm_name(current.subject)
            if current is leaf:
                similar = [t for t in trust if t.subject == current.subject]
                note = ""
                if similar:
                    note = (" (the trust files hold a different certificate with the same name, serial "
                            f"{similar[0].serial_number:X}: it was regenerated since)")
                raise _Fail("self_signed_untrusted",
                            f"{name} is self-signed and not in the trust files given{note}: upload this "
                            "certificate itself as CallManager-trust on the peer", path)
            raise _Fail("unknown_issuer",
                        f"{cucm_name(leaf.subject)} chains up to the root {name}, which is not in the trust "
                        "files given: upload that root certificate as CallManager-trust", path)
        if len(path) > MAX_DEPTH:
            raise _Fail("unknown_issuer", f"the chain of {cucm_name(leaf.subject)} is longer than "
                        f"{MAX_DEPTH} certificates without reaching a trusted root", path)
        named = [c for c in trust + pool if c.subject == current.issuer and not any(_same(c, p) for p in path)]
        # trust anchors first, then the chain the peer sent
        good = [c for c in named if issue.issued_by(current, c)]
        if not named:
            issuer = cucm_name(current.issuer)
            if trusted_below:
                sentence = (f"{cucm_name(current.subject)} is in the trust files but its issuer {issuer} is "
                            "not: upload the root CA certificate as CallManager-trust")
            elif current is leaf:
                sentence = (f"{cucm_name(leaf.subject)} was issued by {issuer}, which is not in the trust "
                            "files given: upload the CA's root certificate as CallManager-trust")
            else:
                sentence = (f"{cucm_name(leaf.subject)} chains up to {issuer} (issuer of "
                            f"{cucm_name(current.subject)}), which is not in the trust files given: upload "
                            "the CA's root certificate as CallManager-trust")
            raise _Fail("unknown_issuer", sentence, path)
        if not good:
            issuer = cucm_name(current.issuer)
            raise _Fail("bad_signature",
                        f"{cucm_name(current.subject)} names {issuer} as its issuer but that certificate's "
                        "key did not sign it (same name, different key): upload the CA certificate that "
                        "really issued it, or have it signed again", path)
        path.append(good[0])


def _time_problem(path, at) -> tuple[str, str] | None:
    for c in path:
        nb, na = c.not_valid_before_utc, c.not_valid_after_utc
        role = "" if c is path[0] else " (in its chain)"
        if at < nb:
            return ("not_yet_valid",
                    f"{cucm_name(c.subject)}{role} is not valid before {_gmt(nb)} (checked at {_gmt(at)}): "
                    "check the clocks (NTP) on both sides or wait")
        if at > na:
            fix = ("regenerate it and upload the new certificate to the peers as CallManager-trust"
                   if issue.is_self_signed(c) and c is path[0] else
                   "have the CA issue a new one (new CSR) and upload it as CallManager"
                   if c is path[0] else "renew the CA certificate and upload it as CallManager-trust")
            return ("expired",
                    f"{cucm_name(c.subject)}{role} expired on {_gmt(na)} (checked at {_gmt(at)}): {fix}")
    return None


def _ca_problem(path) -> tuple[str, str] | None:
    # path[1:] are issuers; a self-signed leaf trusted directly is not an issuer.
    for i, c in enumerate(path[1:], start=1):
        name = cucm_name(c.subject)
        bc = _bc(c)
        if c.version == x509.Version.v1 and i == len(path) - 1:
            continue  # old v1 roots are accepted as trust anchors, as OpenSSL does
        if bc is None or not bc.ca:
            return ("invalid_ca", f"{name} signed {cucm_name(path[i - 1].subject)} but is not a CA "
                    "(basicConstraints CA:FALSE or missing): only a CA certificate may issue certificates")
        ku = _ku(c)
        if ku is not None and not ku.key_cert_sign:
            return ("invalid_ca", f"{name} is a CA without keyCertSign in its key usage: it may not sign "
                    "certificates; reissue the CA")
        below = i - 1  # intermediates between this issuer and the leaf
        if bc.path_length is not None and below > bc.path_length:
            return ("invalid_ca", f"{name} allows {bc.path_length} intermediate CA(s) below it (pathlen) but "
                    f"the chain has {below}: shorten the chain or reissue the CA")
    return None


def _purpose_problem(path, purpose) -> tuple[str, str] | None:
    if purpose is None:
        return None
    want = ExtendedKeyUsageOID.SERVER_AUTH if purpose == "server" else ExtendedKeyUsageOID.CLIENT_AUTH
    reason = "missing_server_auth" if purpose == "server" else "missing_client_auth"
    label = "serverAuth (1.3.6.1.5.5.7.3.1)" if purpose == "server" else "clientAuth (1.3.6.1.5.5.7.3.2)"
    role = "TLS server" if purpose == "server" else "TLS client"
    leaf = path[0]
    checked = [leaf] + [c for c in path[1:-1]]  # leaf and intermediates (not the trust anchor)
    for c in checked:
        eku = _eku(c)
        if eku is None or want in eku or ExtendedKeyUsageOID.ANY_EXTENDED_KEY_USAGE in eku:
            continue
        have = ", ".join(o.dotted_string for o in eku) or "none"
        who = cucm_name(c.subject) + ("" if c is leaf else f" (issuer of {cucm_name(leaf.subject)})")
        return (reason, f"{who} has Extended Key Usage {have} without {label}, so it cannot act as a "
                f"{role}: reissue it with the CallManager EKUs serverAuth, clientAuth and IPsec end system")
    ku = _ku(leaf)
    if ku is not None:
        ok = (ku.digital_signature or ku.key_encipherment or ku.key_agreement) if purpose == "server" \
            else (ku.digital_signature or ku.key_agreement)
        if not ok:
            return (reason, f"{cucm_name(leaf.subject)} has a key usage without digitalSignature/"
                    f"keyEncipherment, so it cannot act as a {role}: reissue it with digitalSignature and "
                    "keyEncipherment")
    return None


def _warnings(path: list[x509.Certificate], anchored: bool) -> list[str]:
    out = []
    for i, c in enumerate(path):
        is_anchor = anchored and i == len(path) - 1
        name = cucm_name(c.subject)
        # the self-signature of a trust anchor is never checked (OpenSSL neither): its hash does not matter
        if not (is_anchor and c.issuer == c.subject):
            h = None
            try:
                h = c.signature_hash_algorithm
            except Exception:  # noqa: BLE001
                pass
            if h is not None and h.name in ("sha1", "md5"):
                out.append(f"{name} is signed with {h.name.upper().replace('SHA1', 'SHA-1')} "
                           f"({signature_algorithm(c).split(' ')[0]}): OpenSSL 3 peers at security level 1 or "
                           "more (the default) refuse it in TLS; reissue it with SHA-256")
        pub = c.public_key()
        if isinstance(pub, rsa.RSAPublicKey) and pub.key_size < 2048:
            out.append(f"{name} has a {pub.key_size}-bit RSA key: CUCM's old default, refused by peers at "
                       "OpenSSL security level 2 (the default of many Linux distributions); regenerate it with 2048 bits or more")
    return out


def verify_chain(cert, *, chain: Iterable = (), trust: Iterable = (), purpose: str | None = None,
                 at: dt.datetime | str | None = None, partial_chain: bool = False) -> VerifyResult:
    """Would a peer holding ``trust`` (its CallManager-trust store) accept ``cert`` sent with ``chain``?

    ``cert``/``chain``/``trust`` may be certificates or file paths (PEM with several certificates or
    DER). ``purpose``: None, "server" or "client". ``at``: when to check (default now, UTC).
    ``partial_chain``: accept a trusted certificate that is not self-signed as the anchor (OpenSSL
    ``-partial_chain``); by default the path must end at a trusted self-signed certificate.
    """
    if purpose not in (None, "server", "client"):
        raise UserError(f"unknown purpose {purpose!r}: use server or client")
    leaf = _certs(cert)
    if not leaf:
        raise UserError("no certificate to verify")
    leaf_cert = leaf[0]
    pool = leaf[1:] + _certs(chain)  # a PEM with leaf + chain works too
    trust_certs = _certs(trust)
    at_t = issue.utc_now() if at is None else issue.whole_seconds_utc(at)
    name = cucm_name(leaf_cert.subject)
    try:
        path = _build(leaf_cert, pool, trust_certs, partial_chain)
    except _Fail as f:
        return VerifyResult(False, f.reason, f.sentence, _warnings(f.path, False), f.path)
    warnings = _warnings(path, True)
    for check in (lambda: _time_problem(path, at_t), lambda: _ca_problem(path),
                  lambda: _purpose_problem(path, purpose)):
        problem = check()
        if problem:
            return VerifyResult(False, problem[0], problem[1], warnings, path)
    as_ = {None: "", "server": " as a TLS server", "client": " as a TLS client"}[purpose]
    if len(path) == 1:
        how = "it is self-signed and in the trust files"
    else:
        names = " → ".join(cucm_name(c.subject) for c in path[1:])
        how = f"issued by {names} (in the trust files)"
    until = min(c.not_valid_after_utc for c in path)
    sentence = f"{name} is trusted{as_}: {how}; valid until {_gmt(until)}"
    return VerifyResult(True, None, sentence, warnings, path)
