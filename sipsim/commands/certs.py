"""`sipsim certs ...`: make, sign, import, show and verify certificates the way CUCM uses them.

    sipsim certs self-signed --cn CUCM10 --subject "OU=cisco,O=cisco,L=cisco,ST=cisco,C=IN" --out certs/
    sipsim certs ca --cn "Lab Root CA" --out ca/
    sipsim certs csr --cn CUCM10 --san cucm10.lab --key rsa1024 --hash sha1 --out csr/
    sipsim certs sign csr/CUCM10.csr --ca-cert "ca/Lab Root CA.pem" --ca-key "ca/Lab Root CA.key" --out CUCM10.pem
    sipsim certs import certnew.p7b cucm.pfx --password secret --out trust/
    sipsim certs show CUCM10.pem
    sipsim certs verify CUCM10.pem --trust "ca/Lab Root CA.pem" --purpose server
"""

from __future__ import annotations

import argparse
from pathlib import Path

from sipsim.errors import UserError
from sipsim.pki import files as pfiles
from sipsim.pki import issue
from sipsim.pki.keys import (HASH_NAMES, KEY_SPECS, describe_hash, describe_key, new_private_key,
                             normalise_hash, normalise_key_spec)


def _days(text: str) -> int:
    try:
        n = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number of days") from None
    if n <= 0:
        raise argparse.ArgumentTypeError("the number of days must be positive")
    return n


def _key_common(p: argparse.ArgumentParser, *, days: bool = True) -> None:
    p.add_argument("--key", default="rsa2048", metavar="TYPE",
                   help=f"key type: {', '.join(KEY_SPECS)} (default rsa2048)")
    p.add_argument("--hash", default="sha256", metavar="HASH",
                   help=f"signature hash: {', '.join(HASH_NAMES)} (default sha256)")
    if days:
        p.add_argument("--days", type=_days, default=3650, metavar="N", help="validity in days (default 3650)")


def _subject_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--subject", default="", metavar="ATTRS",
                   help='other subject attributes, e.g. "OU=cisco,O=cisco,L=cisco,ST=cisco,C=IN"')


def _force(p: argparse.ArgumentParser) -> None:
    p.add_argument("--force", action="store_true", help="overwrite an existing key (never done otherwise)")


def add_parser(subparsers) -> None:
    p = subparsers.add_parser(
        "certs", help="make, sign, import, show and verify certificates",
        description="Certificates and keys the way CUCM uses them: the CallManager identity "
                    "(serverAuth, clientAuth, IPsec end system) and the CAs peers upload as "
                    "CallManager-trust. Keys are written with mode 0600.")
    p.set_defaults(func=_no_subcommand, certs_parser=p)
    sub = p.add_subparsers(dest="certs_command", metavar="SUBCOMMAND")

    s = sub.add_parser("self-signed", help="a self-signed CallManager identity (CUCM's default)",
                       description="Write DIR/<CN>.pem and DIR/<CN>.key (0600): a self-signed certificate "
                                   "like CUCM's own CallManager.pem.")
    s.add_argument("--cn", required=True, help="common name: the node's FQDN or host name")
    s.add_argument("--san", action="append", default=[], metavar="NAME",
                   help="subject alternative name (DNS name or IP); repeat for several")
    _subject_args(s)
    _key_common(s)
    s.add_argument("--not-before", metavar="DATE", help="start of validity (UTC), e.g. 2024-01-01")
    s.add_argument("--not-after", metavar="DATE",
                   help="end of validity (UTC); a past date makes an expired certificate on purpose")
    s.add_argument("--eku", action="append", metavar="USAGE",
                   help="extended key usage (serverAuth, clientAuth, ipsec or an OID); repeat; "
                        "default: the CallManager set serverAuth, clientAuth, ipsec")
    s.add_argument("--out", required=True, type=Path, metavar="DIR", help="output directory")
    _force(s)
    s.set_defaults(func=run, action=_self_signed)

    c = sub.add_parser("ca", help="a lab CA (root, or intermediate with --parent-cert)",
                       description="Write DIR/<NAME>.pem and DIR/<NAME>.key (0600): a CA certificate "
                                   "(CA:TRUE, keyCertSign, cRLSign). Peers upload the root as CallManager-trust.")
    c.add_argument("--cn", required=True, metavar="NAME", help="the CA's common name")
    _subject_args(c)
    _key_common(c)
    c.add_argument("--pathlen", type=int, default=None, metavar="N",
                   help="how many intermediate CAs may follow (default: unlimited for a root, 0 for an intermediate)")
    c.add_argument("--parent-cert", type=Path, metavar="PEM", help="make an intermediate signed by this CA")
    c.add_argument("--parent-key", type=Path, metavar="KEY", help="the parent CA's key")
    c.add_argument("--out", required=True, type=Path, metavar="DIR", help="output directory")
    _force(c)
    c.set_defaults(func=run, action=_ca)

    r = sub.add_parser("csr", help="a key and a certificate signing request (CUCM: Generate CSR)",
                       description="Write DIR/<CN>.key (0600) and DIR/<CN>.csr, as CUCM's Generate CSR "
                                   "for the CallManager purpose does.")
    r.add_argument("--cn", required=True, help="common name: the node's FQDN or host name")
    r.add_argument("--san", action="append", default=[], metavar="NAME",
                   help="subject alternative name; repeat for several")
    _subject_args(r)
    _key_common(r, days=False)
    r.add_argument("--out", required=True, type=Path, metavar="DIR", help="output directory")
    _force(r)
    r.set_defaults(func=run, action=_csr)

    g = sub.add_parser("sign", help="sign a CSR with a CA (subject and SANs come from the CSR)",
                       description="The CA signs the CSR; the certificate gets the CallManager EKUs "
                                   "unless --eku says otherwise. Upload the result as CallManager.")
    g.add_argument("csr", type=Path, metavar="CSR", help="the certificate signing request (PEM or DER)")
    g.add_argument("--ca-cert", required=True, type=Path, metavar="PEM", help="the CA certificate")
    g.add_argument("--ca-key", required=True, type=Path, metavar="KEY", help="the CA's private key")
    g.add_argument("--days", type=_days, default=3650, metavar="N", help="validity in days (default 3650)")
    g.add_argument("--hash", default="sha256", metavar="HASH",
                   help=f"signature hash: {', '.join(HASH_NAMES)} (default sha256)")
    g.add_argument("--eku", action="append", metavar="USAGE",
                   help="extended key usage; repeat; default serverAuth, clientAuth, ipsec")
    g.add_argument("--chain", action="store_true",
                   help="also write the CA certificate after the new one (a certificate chain file)")
    g.add_argument("--out", required=True, type=Path, metavar="FILE", help="where to write the certificate (PEM)")
    g.set_defaults(func=run, action=_sign)

    i = sub.add_parser("import", help="split PEM, DER, PKCS#7 (.p7b) and PKCS#12 (.pfx) files into <CN>.pem",
                       description="Detect each file's format by its content and write every certificate "
                                   "as DIR/<CN>.pem (and a key found in it as DIR/<CN>.key, 0600).")
    i.add_argument("files", nargs="+", type=Path, metavar="FILE")
    i.add_argument("--password", metavar="P", help="password of PKCS#12 files (or of an encrypted PEM key)")
    i.add_argument("--out", type=Path, default=Path("."), metavar="DIR", help="output directory (default .)")
    i.set_defaults(func=run, action=_import)

    w = sub.add_parser("show", help="print certificates like CUCM's `show cert`",
                       description="Print every certificate of FILE (PEM, DER, PKCS#7 or PKCS#12) in "
                                   "CUCM's `show cert` format, with SANs and the SHA-256 fingerprint.")
    w.add_argument("file", type=Path, metavar="FILE")
    w.add_argument("--password", metavar="P", help="password of a PKCS#12 file")
    w.set_defaults(func=run, action=_show)

    v = sub.add_parser("verify", help="would a peer trusting these files accept this certificate?",
                       description="Verify CERT against trust files (what the peer has as CallManager-trust). "
                                   "Exit 0 when trusted, 1 when not; one sentence says why and what to do.")
    v.add_argument("cert", type=Path, metavar="CERT", help="the certificate (a PEM may carry its chain after it)")
    v.add_argument("--trust", required=True, action="append", type=Path, metavar="FILE",
                   help="a trusted certificate file (CallManager-trust); repeat for several")
    v.add_argument("--chain", action="append", default=[], type=Path, metavar="FILE",
                   help="intermediate certificates the peer sends; repeat for several")
    v.add_argument("--purpose", choices=("server", "client"), help="check the EKU for this TLS role")
    v.add_argument("--at", metavar="DATE", help="check validity at this time (UTC), e.g. 2030-01-01")
    v.add_argument("--partial-chain", action="store_true",
                   help="accept a trusted intermediate as the anchor (OpenSSL -partial_chain)")
    v.set_defaults(func=run, action=_verify)

    n = sub.add_parser("init", help="make every node's identity and trust store for a scenario",
                       description="Make (or keep) the CallManager identity of every node of a scenario, "
                                   "self-signed or signed by the lab CA as the scenario's [lab] pki says, "
                                   "and print what each node uploads as CallManager and CallManager-trust.")
    n.add_argument("scenario", type=Path, help="scenario file (TOML)")
    n.add_argument("--force", action="store_true", help="remake every certificate and key")
    n.set_defaults(func=run, action=_init)


def _init(args) -> int:
    from sipsim.lab.loader import load_scenario
    from sipsim.lab.topology import Topology
    from sipsim.runtime.context import prepare_pki

    scenario = load_scenario(args.scenario)
    pki = prepare_pki(scenario, force=args.force)
    for line in pki.events:
        print(line)
    topo = Topology(scenario)
    print(f"\nWhat each node uploads (OS Administration > Security > Certificate Management), in {pki.directory}:")
    for node in scenario.nodes():
        files = pki.files(node.cn)
        trust = []
        for cn in topo.trusted_names(node):
            path = pki.trust_file(cn)
            if path not in trust:
                trust.append(path)
        print(f"  {node.name} ({node.fqdn}, {node.address})")
        chain = f" with chain {', '.join(p.name for p in files.chain)}" if files.chain else ""
        print(f"    CallManager:        {files.cert.name} + {files.key.name}{chain}")
        print(f"    CallManager-trust:  {', '.join(p.name for p in trust) or '(nothing: no peer connects to it)'}")
    return 0


def _no_subcommand(args) -> int:
    args.certs_parser.print_help()
    return 2


def run(args) -> int:
    return int(args.action(args) or 0)


# --- helpers ------------------------------------------------------------------------------------

def _refuse_overwrite(path: Path, force: bool) -> None:
    if path.exists() and not force:
        raise UserError(f"{path} already exists: pass --force to replace it (the old key is lost)")


def _wrote_key(path: Path, key) -> str:
    return f"wrote {path} ({describe_key(key)} private key, mode 0600)"


def _cert_line(path: Path, cert) -> str:
    from sipsim.pki.show import cucm_name

    sans = issue.all_sans(cert)
    return (f"wrote {path} ({cucm_name(cert.subject)}; issuer {cucm_name(cert.issuer)}; "
            f"{describe_key(cert.public_key())}, {describe_hash(cert.signature_hash_algorithm)}; "
            f"valid {cert.not_valid_before_utc:%Y-%m-%d} to {cert.not_valid_after_utc:%Y-%m-%d}"
            + (f"; SANs {', '.join(sans)}" if sans else "") + ")")


def _stem(cn: str) -> str:
    return pfiles.filename_for_cn(cn)


# --- sub-commands -------------------------------------------------------------------------------

def _self_signed(args) -> int:
    spec = normalise_key_spec(args.key)
    h = normalise_hash(args.hash)
    subject = issue.parse_subject(args.subject)
    cert_path = args.out / f"{_stem(args.cn)}.pem"
    key_path = args.out / f"{_stem(args.cn)}.key"
    _refuse_overwrite(key_path, args.force)
    issue.validity(args.days, args.not_before, args.not_after)  # check before making a key
    key = new_private_key(spec)
    cert = issue.self_signed_identity(key, args.cn, args.san, subject, hash=h, days=args.days,
                                      not_before=args.not_before, not_after=args.not_after, ekus=args.eku)
    pfiles.write_private_key(key_path, key)
    pfiles.write_certificates(cert_path, [cert])
    print(_wrote_key(key_path, key))
    print(_cert_line(cert_path, cert))
    print(f"upload {cert_path.name} as CallManager on {args.cn}, and as CallManager-trust on every peer")
    return 0


def _ca(args) -> int:
    spec = normalise_key_spec(args.key)
    h = normalise_hash(args.hash)
    subject = issue.parse_subject(args.subject)
    if (args.parent_cert is None) != (args.parent_key is None):
        raise UserError("an intermediate CA needs both --parent-cert and --parent-key")
    cert_path = args.out / f"{_stem(args.cn)}.pem"
    key_path = args.out / f"{_stem(args.cn)}.key"
    _refuse_overwrite(key_path, args.force)
    parent = parent_key = None
    if args.parent_cert is not None:
        parent = pfiles.load_certificates(args.parent_cert)[0]
        parent_key = pfiles.load_private_key(args.parent_key)
        if not issue.is_ca(parent):
            raise UserError(f"{args.parent_cert} is not a CA certificate (no CA:TRUE)")
    pathlen = args.pathlen if args.pathlen is not None else (0 if parent is not None else None)
    if pathlen is not None and pathlen < 0:
        raise UserError("--pathlen must be 0 or more")
    key = new_private_key(spec)
    cert = issue.make_ca(key, args.cn, subject, hash=h, days=args.days, path_length=pathlen,
                         issuer_cert=parent, issuer_key=parent_key)
    pfiles.write_private_key(key_path, key)
    pfiles.write_certificates(cert_path, [cert])
    print(_wrote_key(key_path, key))
    print(_cert_line(cert_path, cert))
    if parent is None:
        print(f"upload {cert_path.name} as CallManager-trust on every node that must trust certificates it signs")
    else:
        print(f"send {cert_path.name} in the chain; peers upload the root as CallManager-trust")
    return 0


def _csr(args) -> int:
    spec = normalise_key_spec(args.key)
    h = normalise_hash(args.hash)
    subject = issue.parse_subject(args.subject)
    key_path = args.out / f"{_stem(args.cn)}.key"
    csr_path = args.out / f"{_stem(args.cn)}.csr"
    _refuse_overwrite(key_path, args.force)
    issue.build_name(args.cn, subject)  # validate before the (slow) key
    key = new_private_key(spec)
    csr = issue.make_csr(key, args.cn, args.san, subject, h)
    pfiles.write_private_key(key_path, key)
    pfiles.write_csr(csr_path, csr)
    from sipsim.pki.show import cucm_name

    sans = issue.all_sans(csr)
    print(_wrote_key(key_path, key))
    print(f"wrote {csr_path} ({cucm_name(csr.subject)}; {describe_key(key)}, {describe_hash(h)}"
          + (f"; SANs {', '.join(sans)}" if sans else "") + ")")
    print(f"next: have the CA sign {csr_path.name}, upload its root as CallManager-trust and the signed "
          "certificate as CallManager")
    return 0


def _sign(args) -> int:
    csr = pfiles.load_csr(args.csr)
    ca_certs = pfiles.load_certificates(args.ca_cert)
    ca_key = pfiles.load_private_key(args.ca_key)
    cert = issue.sign_csr(csr, ca_certs[0], ca_key, days=args.days, hash=normalise_hash(args.hash), ekus=args.eku)
    out = [cert] + (ca_certs if args.chain else [])
    pfiles.write_certificates(args.out, out)
    print(_cert_line(args.out, cert))
    print(f"upload {args.out.name} as CallManager on {issue.common_name(cert) or 'the node'}; peers upload "
          f"{args.ca_cert.name} (the root) as CallManager-trust")
    return 0


def _import(args) -> int:
    from sipsim.pki.importer import import_files

    results = import_files(args.files, args.out, password=args.password)
    for r in results:
        names = ", ".join(str(p) for p in r.written)
        print(f"{r.source}: {r.description}, {len(r.subjects)} certificate(s): wrote {names}")
    return 0


def _show(args) -> int:
    from sipsim.pki.importer import detect
    from sipsim.pki.show import show_cert

    fmt, certs, _keys = detect(args.file, args.password)
    for n, cert in enumerate(certs):
        if len(certs) > 1:
            print(f"# {args.file} certificate {n + 1} of {len(certs)}")
        print(show_cert(cert))
    return 0


def _verify(args) -> int:
    from sipsim.pki.verify import verify_chain

    at = issue.parse_time(args.at) if args.at else None
    result = verify_chain(args.cert, chain=args.chain, trust=args.trust, purpose=args.purpose, at=at,
                          partial_chain=args.partial_chain)
    print(("OK: " if result.ok else f"FAIL ({result.reason}): ") + result.sentence)
    for w in result.warnings:
        print(f"warning: {w}")
    return 0 if result.ok else 1
