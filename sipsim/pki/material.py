"""Lab PKI material: every node's identity certificate and key, made once and kept.

Layout of ``directory`` (files named by CN, as seed 000 advises)::

    <CN>.pem            identity certificate (what CUCM calls CallManager.pem)
    <CN>.key            its private key, mode 0600
    <CN>-chain.pem      CA mode with an intermediate: the intermediate certificate(s) to send
    ca/<ca_cn>.pem      CA mode: the lab root (what peers upload as CallManager-trust)
    ca/<ca_cn>.key
    ca/<int_cn>.pem     CA mode with an intermediate
    ca/<int_cn>.key

``ensure_lab_pki`` is idempotent: material that matches the spec is kept untouched (same bytes,
same mtime); missing, mismatching or expired material is (re)made, and every decision is reported
in ``LabPKI.events``. Specs that ask for an expired certificate (``not_after`` in the past) get one.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import fcntl
import os
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterable, Mapping, Sequence

from cryptography import x509

from sipsim.errors import UserError
from sipsim.pki import files as pfiles
from sipsim.pki import issue
from sipsim.pki.keys import (describe_hash, describe_key, hash_name_of, key_spec_of, new_private_key,
                             normalise_hash, normalise_key_spec, public_keys_equal)

MODES = ("self-signed", "ca")
DEFAULT_CA_CN = "sipsim Lab Root CA"


@dataclass(frozen=True)
class IdentitySpec:
    """What one node's CallManager identity must look like.

    ``not_before`` / ``not_after`` (datetime, date or ISO string, UTC) are honoured as given, even in
    the past, to make expired or not-yet-valid certificates on purpose. ``ekus`` (an extension)
    overrides the CallManager EKUs (serverAuth, clientAuth, IPsec end system); names or OIDs.
    """

    cn: str
    sans: tuple[str, ...] = ()
    key: str = "rsa2048"
    hash: str = "sha256"
    days: int = 3650
    not_before: dt.datetime | dt.date | str | None = None
    not_after: dt.datetime | dt.date | str | None = None
    subject: Mapping[str, str] = field(default_factory=dict)
    ekus: tuple[str, ...] | None = None

    def __post_init__(self):
        if isinstance(self.sans, str):
            object.__setattr__(self, "sans", (self.sans,))
        else:
            object.__setattr__(self, "sans", tuple(self.sans))
        if self.ekus is not None:
            object.__setattr__(self, "ekus", tuple(self.ekus))

    def __hash__(self):  # subject is a dict: hash what identifies the node
        return hash((self.cn, self.sans, self.key, self.hash))


@dataclass(frozen=True)
class NodeFiles:
    cert: Path
    key: Path
    chain: tuple[Path, ...] = ()


@dataclass
class LabPKI:
    directory: Path
    mode: str
    identities: dict[str, NodeFiles]
    ca_file: Path | None = None
    ca_key_file: Path | None = None
    intermediate_file: Path | None = None
    intermediate_key_file: Path | None = None
    events: list[str] = field(default_factory=list)

    def files(self, cn: str) -> NodeFiles:
        try:
            return self.identities[cn]
        except KeyError:
            pass
        for k, v in self.identities.items():  # CNs compare without case, like CUCM
            if k.lower() == cn.lower():
                return v
        raise UserError(f"no certificate for {cn!r} in {self.directory}: known are "
                        f"{', '.join(sorted(self.identities)) or 'none'}")

    def trust_file(self, cn: str) -> Path:
        """What a peer uploads as CallManager-trust to trust ``cn``: its own certificate when
        self-signed, the root CA when CA-signed."""
        nf = self.files(cn)
        if self.mode == "ca":
            assert self.ca_file is not None
            return self.ca_file
        return nf.cert

    def trust_files(self, cns: Iterable[str] | None = None) -> list[Path]:
        """Distinct trust files for several identities (all when ``cns`` is None), in order."""
        out: list[Path] = []
        for cn in (self.identities if cns is None else cns):
            p = self.trust_file(cn)
            if p not in out:
                out.append(p)
        return out

    def describe(self) -> str:
        return "\n".join(self.events)


# --- helpers ------------------------------------------------------------------------------------

def normalise_mode(mode: str) -> str:
    m = str(mode).strip().lower().replace("_", "-").replace(" ", "-")
    m = {"selfsigned": "self-signed", "self": "self-signed", "ca-signed": "ca", "casigned": "ca"}.get(m, m)
    if m not in MODES:
        raise UserError(f"unknown certificate mode {mode!r}: use self-signed or ca")
    return m


def intermediate_cn_for(ca_cn: str) -> str:
    if "Root" in ca_cn:
        return ca_cn.replace("Root", "Intermediate", 1)
    return ca_cn + " Intermediate"


def _day(t: dt.datetime) -> str:
    return t.strftime("%Y-%m-%d")


def _rel(path: Path, directory: Path) -> str:
    try:
        return str(path.relative_to(directory))
    except ValueError:
        return str(path)


def _san_set(values: Iterable[str]) -> frozenset[str]:
    out = set()
    for v in values:
        v = str(v).strip()
        low = v.lower()
        if low.startswith("dns:"):
            v = v[4:].strip()
        elif low.startswith("ip:"):
            v = v[3:].strip()
        if v:
            out.add(v.lower())
    return frozenset(out)


def _cert_ekus(cert: x509.Certificate) -> tuple:
    try:
        return tuple(cert.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value)
    except x509.ExtensionNotFound:
        return ()


def _describe(cert: x509.Certificate, how: str, now: dt.datetime) -> str:
    na = cert.not_valid_after_utc
    nb = cert.not_valid_before_utc
    now = max(now, issue.utc_now())  # a certificate made during this call starts "now", not before it
    when = f"valid to {_day(na)}"
    if na <= now:
        when = f"expired {_day(na)}"
    elif nb > now:
        when = f"not valid before {_day(nb)}, valid to {_day(na)}"
    return f"{how} {describe_key(cert.public_key())}, {describe_hash(cert.signature_hash_algorithm)}, {when}"


@contextlib.contextmanager
def _locked(directory: Path):
    """Serialise two sipsim processes preparing the same directory."""
    lock_path = directory / ".sipsim-pki.lock"
    fd = os.open(lock_path, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        try:
            fcntl.flock(fd, fcntl.LOCK_UN)
        finally:
            os.close(fd)


def _try_load(cert_path: Path, key_path: Path):
    """(cert, key, problem): problem is a short reason when the pair cannot be used."""
    if not cert_path.exists() and not key_path.exists():
        return None, None, None
    if not cert_path.exists():
        return None, None, "certificate missing"
    if not key_path.exists():
        return None, None, "key missing"
    try:
        cert = pfiles.load_certificates(cert_path)[0]
    except UserError:
        return None, None, "certificate unreadable"
    # A key readable by others is refused (UserError with the chmod fix), never silently used.
    try:
        key = pfiles.load_private_key(key_path, validate=False)
    except UserError as e:
        if "chmod" in str(e):
            raise
        return cert, None, "key unreadable"
    if not public_keys_equal(cert.public_key(), key):
        return cert, key, "key does not match the certificate"
    return cert, key, None


_issued_by = issue.issued_by


# --- CA material --------------------------------------------------------------------------------

def _ensure_ca(directory: Path, cn: str, *, key_spec: str, hash_name: str, days: int, subject,
               force: bool, now: dt.datetime, events: list[str], path_length: int | None,
               min_path_length: int | None, issuer: tuple[x509.Certificate, object] | None):
    cert_path = directory / "ca" / f"{pfiles.filename_for_cn(cn)}.pem"
    key_path = directory / "ca" / f"{pfiles.filename_for_cn(cn)}.key"
    what = "lab root CA" if issuer is None else f"intermediate CA signed by {issue.common_name(issuer[0])}"
    cert, key, problem = _try_load(cert_path, key_path)
    reason = None
    if cert is None and problem is None:
        reason = ""  # plain "made"
    elif force:
        reason = "forced"
    elif problem:
        reason = problem
    else:
        bc = None
        try:
            bc = cert.extensions.get_extension_for_class(x509.BasicConstraints).value
        except x509.ExtensionNotFound:
            pass
        if issue.common_name(cert) != cn:
            reason = f"CN is {issue.common_name(cert)!r}, not {cn!r}"
        elif bc is None or not bc.ca:
            reason = "not a CA certificate"
        elif min_path_length is not None and bc.path_length is not None and bc.path_length < min_path_length:
            reason = f"pathlen {bc.path_length} leaves no room for an intermediate"
        elif cert.not_valid_after_utc <= now:
            reason = f"expired {_day(cert.not_valid_after_utc)}"
        elif cert.not_valid_before_utc > now:
            reason = f"not valid before {_day(cert.not_valid_before_utc)}"
        elif key_spec_of(key) != key_spec:
            reason = f"key is {describe_key(key)}, spec says {key_spec}"
        elif issuer is None and not issue.is_self_signed(cert):
            reason = "not self-signed"
        elif issuer is not None and not _issued_by(cert, issuer[0]):
            reason = f"not signed by {issue.common_name(issuer[0])}"
    rel = _rel(cert_path, directory)
    if reason is None:
        events.append(f"kept {rel} ({_describe(cert, what, now)})")
        return cert, key, cert_path, key_path, False
    if key is not None and not force and key_spec_of(key) == key_spec and problem is None:
        new_key = key
    else:
        new_key = new_private_key(key_spec)
    if issuer is None:
        new_cert = issue.make_ca(new_key, cn, subject, hash=hash_name, days=days, path_length=path_length)
    else:
        new_cert = issue.make_ca(new_key, cn, subject, hash=hash_name, days=days, path_length=path_length,
                                 issuer_cert=issuer[0], issuer_key=issuer[1])
    if new_key is not key:
        pfiles.write_private_key(key_path, new_key)
    pfiles.write_certificates(cert_path, [new_cert])
    verb = "made" if reason == "" else "remade"
    why = "" if reason == "" else f"{reason}; now "
    events.append(f"{verb} {rel} ({why}{_describe(new_cert, what, now)})")
    return new_cert, new_key, cert_path, key_path, True


# --- identities ---------------------------------------------------------------------------------

def _spec_problem(spec: IdentitySpec, cert: x509.Certificate, key, mode: str,
                  signer: x509.Certificate | None, now: dt.datetime) -> str | None:
    """Why the existing certificate does not match the spec, or None when it does."""
    cn = issue.common_name(cert)
    if cn != spec.cn:
        return f"CN is {cn!r}, not {spec.cn!r}"
    want_sans = _san_set(spec.sans)
    have_sans = _san_set(issue.all_sans(cert))
    if want_sans != have_sans:
        return (f"SANs are {', '.join(sorted(have_sans)) or 'none'}, spec says "
                f"{', '.join(sorted(want_sans)) or 'none'}")
    if key_spec_of(key) != normalise_key_spec(spec.key):
        return f"key is {describe_key(key)}, spec says {normalise_key_spec(spec.key)}"
    if hash_name_of(cert.signature_hash_algorithm) != normalise_hash(spec.hash):
        return (f"signed with {describe_hash(cert.signature_hash_algorithm)}, spec says "
                f"{describe_hash(normalise_hash(spec.hash))}")
    if issue.subject_attrs(cert) != issue.parse_subject(spec.subject):
        return "subject attributes differ"
    if set(_cert_ekus(cert)) != set(issue.resolve_ekus(spec.ekus)):
        return "extended key usages differ"
    if mode == "self-signed":
        if not issue.is_self_signed(cert):
            return f"issued by {cert.issuer.rfc4514_string()}, spec says self-signed"
    else:
        assert signer is not None
        if not _issued_by(cert, signer):
            if issue.is_self_signed(cert):
                return f"self-signed, spec says signed by {issue.common_name(signer)}"
            return f"not signed by the current {issue.common_name(signer)}"
    na, nb = cert.not_valid_after_utc, cert.not_valid_before_utc
    if spec.not_after is not None or spec.not_before is not None:
        want_nb = issue.whole_seconds_utc(spec.not_before) if spec.not_before is not None else None
        want_na = issue.whole_seconds_utc(spec.not_after) if spec.not_after is not None else None
        if want_na is None and want_nb is not None:
            want_na = want_nb + dt.timedelta(days=int(spec.days))
        if want_na is not None and na != want_na:
            return f"valid to {na:%Y-%m-%d %H:%M:%S}Z, spec says {want_na:%Y-%m-%d %H:%M:%S}Z"
        if want_nb is not None and nb != want_nb:
            return f"valid from {nb:%Y-%m-%d %H:%M:%S}Z, spec says {want_nb:%Y-%m-%d %H:%M:%S}Z"
        return None
    if na <= now:
        return f"expired {_day(na)}"
    if nb > now:
        return f"not valid before {_day(nb)}"
    return None


def _check_specs(specs: Sequence[IdentitySpec]) -> list[IdentitySpec]:
    out: list[IdentitySpec] = []
    by_file: dict[str, IdentitySpec] = {}
    for s in specs:
        if not isinstance(s, IdentitySpec):
            raise TypeError(f"expected IdentitySpec, got {type(s).__name__}")
        if not s.cn or not s.cn.strip():
            raise UserError("an identity has an empty CN")
        normalise_key_spec(s.key)
        normalise_hash(s.hash)
        issue.parse_subject(s.subject)
        issue.resolve_ekus(s.ekus)
        issue.validity(s.days, s.not_before, s.not_after)  # raises on nonsense
        fname = pfiles.filename_for_cn(s.cn).lower()
        prev = by_file.get(fname)
        if prev is not None:
            if prev == s:
                continue
            raise UserError(f"two different certificate specs for CN {s.cn!r} (files are named by CN): "
                            "give each node one identity")
        by_file[fname] = s
        out.append(s)
    return out


def ensure_lab_pki(directory, mode: str, specs: Iterable[IdentitySpec], *, force: bool = False,
                   intermediate: bool = False, ca_cn: str = DEFAULT_CA_CN,
                   intermediate_cn: str | None = None, ca_key: str = "rsa2048", ca_hash: str = "sha256",
                   ca_days: int = 3650, ca_subject: Mapping[str, str] | None = None,
                   now: dt.datetime | None = None) -> LabPKI:
    """Make (or keep) every identity's certificate and key in ``directory``; see the module doc."""
    directory = Path(directory)
    mode = normalise_mode(mode)
    specs = _check_specs(list(specs))
    ca_key = normalise_key_spec(ca_key)
    ca_hash = normalise_hash(ca_hash)
    now = issue.whole_seconds_utc(now) if now is not None else issue.utc_now()
    try:
        directory.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise UserError(f"cannot create the certificate directory {directory}: {e.strerror or e}") from None
    events: list[str] = []
    pki = LabPKI(directory=directory, mode=mode, identities={}, events=events)

    with _locked(directory):
        signer_cert = signer_key = None
        chain_certs: list[x509.Certificate] = []
        if mode == "ca":
            root, root_key, root_path, root_key_path, _ = _ensure_ca(
                directory, ca_cn, key_spec=ca_key, hash_name=ca_hash, days=ca_days, subject=ca_subject,
                force=force, now=now, events=events, path_length=1,
                min_path_length=1 if intermediate else None, issuer=None)
            pki.ca_file, pki.ca_key_file = root_path, root_key_path
            signer_cert, signer_key = root, root_key
            if intermediate:
                icn = intermediate_cn or intermediate_cn_for(ca_cn)
                if pfiles.filename_for_cn(icn).lower() == pfiles.filename_for_cn(ca_cn).lower():
                    raise UserError(f"the intermediate CA needs a CN different from the root's ({ca_cn!r})")
                inter, inter_key, ipath, ikpath, _ = _ensure_ca(
                    directory, icn, key_spec=ca_key, hash_name=ca_hash, days=ca_days, subject=ca_subject,
                    force=force, now=now, events=events, path_length=0, min_path_length=None,
                    issuer=(root, root_key))
                pki.intermediate_file, pki.intermediate_key_file = ipath, ikpath
                signer_cert, signer_key = inter, inter_key
                chain_certs = [inter]

        # Decide per identity, then generate the needed keys in parallel (the slow part).
        plans = []
        for spec in specs:
            stem = pfiles.filename_for_cn(spec.cn)
            cert_path, key_path = directory / f"{stem}.pem", directory / f"{stem}.key"
            cert, key, problem = _try_load(cert_path, key_path)
            if cert is None and problem is None:
                reason = ""
            elif force:
                reason = "forced"
            elif problem:
                reason = problem
            else:
                reason = _spec_problem(spec, cert, key, mode, signer_cert, now)
            reuse_key = (key is not None and not force and problem is None
                         and key_spec_of(key) == normalise_key_spec(spec.key))
            plans.append((spec, cert_path, key_path, cert, key, reason, reuse_key))

        need = [p for p in plans if p[5] is not None and not p[6]]
        new_keys: dict[str, object] = {}
        if need:
            workers = max(1, min(len(need), os.cpu_count() or 1))
            if workers == 1:
                keys = [new_private_key(p[0].key) for p in need]
            else:
                with ThreadPoolExecutor(max_workers=workers) as ex:
                    keys = list(ex.map(lambda p: new_private_key(p[0].key), need))
            new_keys = {p[0].cn: k for p, k in zip(need, keys)}

        how = "self-signed" if mode == "self-signed" else f"signed by {issue.common_name(signer_cert)},"
        for spec, cert_path, key_path, cert, key, reason, reuse_key in plans:
            rel = _rel(cert_path, directory)
            if reason is None:
                events.append(f"kept {rel} ({_describe(cert, how, now)})")
            else:
                k = key if reuse_key else new_keys[spec.cn]
                if mode == "self-signed":
                    new_cert = issue.self_signed_identity(
                        k, spec.cn, spec.sans, spec.subject, hash=spec.hash, days=spec.days,
                        not_before=spec.not_before, not_after=spec.not_after, ekus=spec.ekus)
                else:
                    new_cert = issue.ca_signed_identity(
                        k, spec.cn, signer_cert, signer_key, spec.sans, spec.subject, hash=spec.hash,
                        days=spec.days, not_before=spec.not_before, not_after=spec.not_after, ekus=spec.ekus)
                if not reuse_key:
                    pfiles.write_private_key(key_path, k)
                pfiles.write_certificates(cert_path, [new_cert])
                desc = _describe(new_cert, how, now)
                if new_cert.not_valid_after_utc <= now:
                    desc += ", as the spec asks"
                if reason == "":
                    events.append(f"made {rel} ({desc})")
                else:
                    events.append(f"remade {rel} ({reason}; now {desc})")
            chain_path = directory / f"{pfiles.filename_for_cn(spec.cn)}-chain.pem"
            chain: tuple[Path, ...] = ()
            if chain_certs:
                data = pfiles.certificates_pem(chain_certs)
                try:
                    same = chain_path.read_bytes() == data
                except OSError:
                    same = False
                if not same:
                    pfiles.write_certificates(chain_path, chain_certs)
                    events.append(f"wrote {_rel(chain_path, directory)} (intermediate "
                                  f"{issue.common_name(chain_certs[0])})")
                chain = (chain_path,)
            elif chain_path.exists():
                chain_path.unlink()
                events.append(f"removed {_rel(chain_path, directory)} (no intermediate any more)")
            pki.identities[spec.cn] = NodeFiles(cert=cert_path, key=key_path, chain=chain)
    return pki


# --- for `sipsim certs init SCENARIO` ------------------------------------------------------------

def upload_guide(pki: LabPKI) -> list[str]:
    """Lines telling how each file maps to CUCM's certificate store (CallManager / -trust)."""
    lines = []
    for cn, nf in pki.identities.items():
        lines.append(f"{cn}: upload {_rel(nf.cert, pki.directory)} as CallManager on {cn}"
                     + (" (with its chain)" if nf.chain else "")
                     + f"; peers upload {_rel(pki.trust_file(cn), pki.directory)} as CallManager-trust")
    return lines


def certs_init(directory, mode: str, specs: Iterable[IdentitySpec], *, force: bool = False,
               intermediate: bool = False, ca_cn: str = DEFAULT_CA_CN,
               out: Callable[[str], None] | None = print, **kwargs) -> LabPKI:
    """Entry point for ``sipsim certs init SCENARIO``: the caller turns the scenario into specs
    (one IdentitySpec per node, mode from the scenario), this makes the material and prints one
    line per file decision plus where each file goes on a real CUCM. Returns the LabPKI."""
    pki = ensure_lab_pki(directory, mode, specs, force=force, intermediate=intermediate, ca_cn=ca_cn, **kwargs)
    if out is not None:
        for line in pki.events:
            out(line)
        for line in upload_guide(pki):
            out(line)
    return pki
