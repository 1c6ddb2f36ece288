"""The TLS flags of the single-endpoint commands (serve, call, ping)."""

from __future__ import annotations

from pathlib import Path

from sipsim.errors import UserError
from sipsim.lab import model as m
from sipsim.runtime.single import EndpointSettings, endpoint_pki, subjects_from_flag
from sipsim.tls.config import DEFAULT_GROUPS
from sipsim.tls.context import groups_problem


def add_tls_flags(p, *, server: bool) -> None:
    g = p.add_argument_group("TLS (mutual: the peer must present a certificate that --trust verifies)")
    g.add_argument("--cert", type=Path, metavar="PEM", help="this endpoint's certificate (CallManager)")
    g.add_argument("--key", type=Path, metavar="PEM", help="its private key (mode 0600)")
    g.add_argument("--chain", type=Path, action="append", default=[], metavar="PEM",
                   help="intermediate CA certificates to send with ours (repeatable)")
    g.add_argument("--trust", type=Path, action="append", default=[], metavar="PEM",
                   help="a peer certificate or CA to trust (CallManager-trust); repeatable, at least one")
    g.add_argument("--subjects", metavar='"A,B"',
                   help="the peer names accepted (X.509 Subject Name: separated by space, comma, semicolon or "
                        "colon; matched with the CN and SANs); 'any' or absent: any peer whose chain verifies")
    g.add_argument("--tls-min", default="1.2", choices=m.TLS_VERSIONS, help="lowest TLS version (default 1.2)")
    g.add_argument("--tls-max", default="1.3", choices=m.TLS_VERSIONS, help="highest TLS version (default 1.3)")
    g.add_argument("--ciphers", metavar="LIST", help="OpenSSL cipher list or a CUCM preset name")
    g.add_argument("--tls-groups", metavar="LIST",
                   help=f"key exchange groups offered/accepted, OpenSSL names separated by ':' (default "
                        f"{DEFAULT_GROUPS}; e.g. X25519MLKEM768:X25519 to offer post-quantum ML-KEM)")
    g.add_argument("--mode", default="encrypted", choices=("encrypted", "authenticated"),
                   help="Device Security Mode (authenticated = NULL-SHA ciphers, integrity only)")
    g.add_argument("--handshake-timeout", type=float, default=10.0, metavar="S", help="seconds (default 10)")
    if server:
        g.add_argument("--subject-mismatch", default="tls_alert", choices=m.SUBJECT_MISMATCH_ACTIONS,
                       help="what a trusted peer whose name is not listed gets (default tls_alert)")


def endpoint_from(args, address: str, port: int, console=None):
    """(EndpointPKI, EndpointSettings) from the flags; warns on legacy TLS."""
    if args.cert is None or args.key is None:
        raise UserError("give --cert PEM and --key PEM: this endpoint's CallManager certificate and key "
                        "(make them with `sipsim certs self-signed --cn NAME --out DIR`)")
    groups = args.tls_groups
    if groups is not None:
        problem = groups_problem(groups.strip()) if groups.strip() else \
            f"give key exchange groups separated by ':' (default {DEFAULT_GROUPS})"
        if problem:
            raise UserError(f"--tls-groups {groups!r}: {problem}")
        groups = groups.strip()
    pki, cn = endpoint_pki(args.cert, args.key, args.trust, args.chain)
    if m.TLS_VERSIONS.index(args.tls_min) > m.TLS_VERSIONS.index(args.tls_max):
        raise UserError(f"--tls-min {args.tls_min} is above --tls-max {args.tls_max}")
    subjects = subjects_from_flag(args.subjects)
    if console is not None:
        if args.tls_min in ("1.0", "1.1"):
            console.print(f"[yellow]warning: TLS {args.tls_min} allowed: legacy and insecure — use it only to "
                          "reproduce old CUCM (7.x–9.x)[/]")
        if subjects is None:
            console.print("[yellow]note: no --subjects: any peer whose chain verifies is accepted "
                          "(CUCM would check the X.509 Subject Name)[/]")
    settings = EndpointSettings(address=address, port=port, cert_cn=cn, subjects=subjects, tls_min=args.tls_min,
                                tls_max=args.tls_max, ciphers=args.ciphers, mode=args.mode,
                                handshake_timeout=args.handshake_timeout, groups=groups,
                                subject_mismatch=getattr(args, "subject_mismatch", "tls_alert"))
    return pki, settings
