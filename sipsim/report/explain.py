"""Why calls failed, in plain sentences: `explain(report) -> list[Group]`.

Failed attempts are grouped by (reason, destination node, presented certificate or name); each group
says what happened, gives the evidence from the report (the destination, the node, the certificate it
presented, the security profile's X.509 Subject Name list, the trust stores) and the fix, naming the
certificate files of the lab (`lab.nodes[*].cert_file`). One explanation per reason of
docs/reasons.md. Attempts that failed but whose call was carried elsewhere (trunk failover) are
grouped too, and counted apart.

Works on the JSON report's dictionary (`RunResult.to_dict()` or a report file).
"""

from __future__ import annotations

import difflib
import json
from dataclasses import dataclass, field
from pathlib import Path
from sipsim.errors import UserError


def load_report(path: Path) -> dict:
    """A report file, or a UserError naming what is wrong with it."""
    try:
        text = Path(path).read_text(encoding="utf-8")
    except FileNotFoundError:
        raise UserError(f"{path}: no such report file (write one with `sipsim run SCENARIO --report {path}`)") from None
    except OSError as e:
        raise UserError(f"{path}: cannot read it: {e.strerror}") from None
    try:
        report = json.loads(text)
    except json.JSONDecodeError as e:
        raise UserError(f"{path}: not a JSON report (line {e.lineno}: {e.msg})") from None
    if not isinstance(report, dict) or not isinstance(report.get("calls"), list):
        raise UserError(f"{path}: not a sipsim report (no \"calls\" list); write one with `sipsim run --report`")
    return report


@dataclass
class Group:
    reason: str
    destination: str | None          # as configured on the trunk, e.g. "cucm-b4.branch.lab:5061"
    node: str | None                 # the destination node
    presented: str | None            # the certificate's subject (or the name) involved
    calls: list[int] = field(default_factory=list)       # calls that failed so
    recovered: list[int] = field(default_factory=list)   # calls carried elsewhere after failing so
    origins: list[str] = field(default_factory=list)
    trunk: str | None = None
    summary: str = ""                # one sentence: what happened
    evidence: list[str] = field(default_factory=list)
    fixes: list[str] = field(default_factory=list)
    injected: str | None = None

    @property
    def count(self) -> int:
        return len(self.calls) + len(self.recovered)

    def headline(self) -> str:
        where = self.node or self.destination or "before the call left the cluster"
        if self.node and self.destination:
            where = f"{self.node} ({self.destination})"
        parts = []
        if self.calls:
            parts.append(f"call{'s' if len(self.calls) > 1 else ''} {', '.join(map(str, self.calls))}")
        if self.recovered:
            parts.append(f"attempt{'s' if len(self.recovered) > 1 else ''} of call{'s' if len(self.recovered) > 1 else ''} "
                         f"{', '.join(map(str, self.recovered))}, carried elsewhere")
        frm = f" from {', '.join(self.origins)}" if self.origins else ""
        over = f" over trunk {self.trunk}" if self.trunk else ""
        return f"{self.reason} ×{self.count} at {where}{frm}{over} ({'; '.join(parts)})"

    def lines(self) -> list[str]:
        out = [self.headline()]
        if self.summary:
            out.append(f"  {self.summary}")
        if self.injected:
            out.append(f"  (fault injected by the scenario: {self.injected})")
        if self.evidence:
            out.append("  Evidence:")
            out.extend(f"    - {e}" for e in self.evidence)
        if self.fixes:
            out.append("  Fix:")
            out.extend(f"    - {f}" for f in self.fixes)
        return out


# --- the lab, from the report ------------------------------------------------------------------
class Lab:
    def __init__(self, report: dict):
        lab = report.get("lab") or {}
        self.pki = lab.get("pki")
        self.certs_dir = lab.get("certs_dir")
        self.nodes = {n["name"]: n for n in lab.get("nodes") or []}
        self.profiles = lab.get("profiles") or []
        self.trunks = lab.get("trunks") or []

    def node(self, name: str | None) -> dict:
        return self.nodes.get(name or "", {})

    def trunk(self, cluster: str | None, name: str | None) -> dict:
        return next((t for t in self.trunks if t.get("name") == name and (cluster is None or t.get("cluster") == cluster)),
                    next((t for t in self.trunks if t.get("name") == name), {}))

    def profile(self, cluster: str | None, name: str | None) -> dict:
        return next((p for p in self.profiles if p.get("name") == name and p.get("cluster") == cluster),
                    next((p for p in self.profiles if p.get("name") == name), {}))

    def inbound_profiles(self, node: str | None) -> list[tuple[dict, dict]]:
        """(trunk, profile) of the trunks running on that node (they decide whom it accepts)."""
        n = self.node(node)
        out = []
        for t in self.trunks:
            if t.get("cluster") == n.get("cluster") and node in (t.get("nodes") or []):
                out.append((t, self.profile(t.get("cluster"), t.get("security_profile"))))
        return out

    def trusts(self, receiver: str | None, cn: str | None) -> bool | None:
        n = self.node(receiver)
        if not n or "trust" not in n or not cn:
            return None
        return cn.lower() in {t.lower() for t in n.get("trust") or []}

    def ca_file(self) -> str | None:
        for n in self.nodes.values():
            for f in n.get("trust_files") or []:
                if "/ca/" in f:
                    return f
        return f"{self.certs_dir}/ca/CA.pem" if self.certs_dir else None

    def file_of(self, node: str | None, cert: dict | None = None) -> str:
        """What to upload so that others trust `node`: its certificate (self-signed) or its CA root."""
        self_signed = cert.get("self_signed") if cert else self.pki != "ca"
        if not self_signed:
            ca = self.ca_file()
            issuer = cert.get("issuer") if cert else "the lab CA"
            return f"the root CA that issued it ({issuer}{', ' + ca if ca else ''})"
        n = self.node(node)
        return Path(n["cert_file"]).name if n.get("cert_file") else f"{node}'s CallManager.pem"


def _names(cert: dict | None, fallback: str | None) -> list[str]:
    if cert:
        return [x for x in [cert.get("cn"), *(cert.get("sans") or [])] if x]
    return [fallback] if fallback else []


def _listed(names: list[str], allowed: list[str]) -> bool:
    low = {a.lower() for a in allowed}
    for n in names:
        if n.lower() in low:
            return True
        for a in low:  # *.example.com, when the profile allows wildcards (harmless otherwise)
            if a.startswith("*.") and n.lower().partition(".")[2] == a[2:]:
                return True
    return False


def _port(destination: str | None) -> int | None:
    if destination and ":" in destination:
        tail = destination.rsplit(":", 1)[1]
        return int(tail) if tail.isdigit() else None
    return None


def _host(destination: str | None) -> str:
    return destination.rsplit(":", 1)[0] if destination and ":" in destination else (destination or "?")


def _ver(tls: dict | None, key: str, default: str) -> str:
    return str((tls or {}).get(key) or default)


def _subject(cert: dict | None) -> str | None:
    return (cert.get("slash_subject") or cert.get("subject")) if cert else None


def _cert_line(who: str, cert: dict, file: str | None) -> str:
    sans = ", ".join(cert.get("sans") or []) or "none"
    kind = "self-signed" if cert.get("self_signed") else f"issued by {cert.get('issuer')}"
    f = f", file {file}" if file else ""
    return (f"{who} presented {_subject(cert)} (serial {cert.get('serial')}, {kind}, SANs: {sans}, "
            f"valid {cert.get('not_before')} → {cert.get('not_after')}{f})")


# --- one failed attempt ------------------------------------------------------------------------
@dataclass
class Case:
    report: dict
    lab: Lab
    call: dict
    attempt: dict
    conn: dict | None

    @property
    def origin(self) -> str | None:
        return self.call.get("origin_node")

    @property
    def dest(self) -> str | None:
        """The destination's node name, or its host:port when it is no node of the lab (sipsim call)."""
        return self.attempt.get("destination_node") or self.attempt.get("destination") \
            or self.call.get("destination")

    @property
    def reason(self) -> str:
        return self.attempt.get("reason") or self.call.get("reason") or "failed"

    @property
    def detail(self) -> str:
        return self.attempt.get("detail") or self.call.get("detail") or ""

    def chains(self) -> tuple[dict | None, dict | None]:
        """(the destination's leaf certificate, the origin's leaf certificate) as seen on the wire."""
        c = self.conn or {}
        peer = (c.get("peer_chain") or [None])[0]
        local = (c.get("local_chain") or [None])[0]
        if c.get("role") == "server":
            peer, local = local, peer
        if c.get("client_node") and c.get("client_node") != self.origin:
            peer, local = local, peer
        return peer, local

    def trunk(self) -> dict:
        return self.lab.trunk(self.lab.node(self.origin).get("cluster"), self.call.get("trunk"))

    def profile(self) -> dict:
        t = self.trunk()
        return self.lab.profile(t.get("cluster"), t.get("security_profile"))


def _key(case: Case) -> tuple:
    dest_cert, _ = case.chains()
    final = case.attempt is case.call["attempts"][-1]
    presented = _subject(dest_cert) or (case.call.get("peer_subject") if final else None)
    return (case.reason, case.dest or case.attempt.get("destination"), presented)


def explain(report: dict) -> list[Group]:
    lab = Lab(report)
    conns = report.get("connections") or []
    groups: dict[tuple, Group] = {}
    for call in report.get("calls") or []:
        attempts = call.get("attempts") or []
        failed_call = call.get("outcome") != "answered"
        cases = []
        for i, a in enumerate(attempts):
            if a.get("reason") is None:
                continue
            ci = a.get("connection")
            conn = conns[ci] if ci is not None and 0 <= ci < len(conns) else None
            cases.append((i == len(attempts) - 1, Case(report, lab, call, a, conn)))
        if failed_call and not attempts:  # failed before any destination was tried
            pseudo = {"destination": None, "destination_node": None, "reason": call.get("reason"),
                      "detail": call.get("detail")}
            call = dict(call, attempts=[pseudo])
            cases.append((True, Case(report, lab, call, pseudo, None)))
        for final, case in cases:
            key = _key(case)
            g = groups.get(key)
            if g is None:
                g = groups[key] = Group(case.reason, case.attempt.get("destination"), case.dest, key[2],
                                        trunk=call.get("trunk"))
                _fill(g, case)
            (g.calls if failed_call and final else g.recovered).append(call["id"])
            if case.origin and case.origin not in g.origins:
                g.origins.append(case.origin)
    return sorted(groups.values(), key=lambda g: (-len(g.calls), -g.count, g.reason))


def render_explain(report: dict) -> str:
    groups = explain(report)
    failed = sum(1 for c in report.get("calls") or [] if c.get("outcome") != "answered")
    if not groups:
        return "no failed calls\n"
    head = (f"{failed} of {len(report.get('calls') or [])} calls failed" if failed else
            "no failed calls; some attempts failed and the calls were carried elsewhere")
    blocks = [head + ":"] + ["\n".join(g.lines()) for g in groups]
    return "\n\n".join(blocks) + "\n"


# --- the explanations, one per reason ----------------------------------------------------------
def _fill(g: Group, c: Case) -> None:
    g.injected = c.attempt.get("injected")
    fn = _EXPLAIN.get(c.reason)
    if fn is None and c.reason.startswith("sip_"):
        fn = _sip_other
    (fn or _other)(g, c)
    if c.detail and not any(c.detail in e for e in g.evidence):
        g.evidence.append(f"the run's own words: {c.detail}")


def _where(c: Case) -> str:
    n = c.lab.node(c.dest)
    if n:
        return f"{c.dest} ({n.get('address')}, destination {c.attempt.get('destination')})"
    return str(c.attempt.get("destination"))


def _subject_not_allowed(g: Group, c: Case) -> None:
    dest_cert, origin_cert = c.chains()
    dest_node, origin_node = c.lab.node(c.dest), c.lab.node(c.origin)
    dest_names = _names(dest_cert, dest_node.get("cert_cn"))
    profile = c.profile()
    allowed = profile.get("x509_subject_name") or []
    pname, pcluster = profile.get("name"), profile.get("cluster") or origin_node.get("cluster")
    outbound = bool(profile) and not _listed(dest_names, allowed)
    if outbound or not profile:
        cn = dest_names[0] if dest_names else "?"
        g.summary = (f"{c.origin} reached {c.dest} and trusts its certificate, but the certificate's name {cn} "
                     f"is not in the X.509 Subject Name of security profile \"{pname}\" (cluster {pcluster}), "
                     f"so {c.origin} refused the connection (TLS alert bad_certificate).")
        if dest_cert:
            g.evidence.append(_cert_line(_where(c), dest_cert, dest_node.get("cert_file")))
        g.evidence.append(f"security profile \"{pname}\" of trunk {c.call.get('trunk')} on cluster {pcluster} lists: "
                          f"{', '.join(allowed) or '(nothing)'}")
        t = c.lab.trusts(c.origin, cn)
        if t:
            g.evidence.append(f"{c.origin}'s CallManager-trust holds {cn}: the chain verified; only the name check failed")
        g.fixes.append(f"add {cn} to the X.509 Subject Name of security profile \"{pname}\" on cluster {pcluster}")
        fqdn = dest_node.get("fqdn")
        if fqdn and fqdn.lower() != cn.lower():
            again = (f", then upload the new {Path(dest_node.get('cert_file', fqdn + '.pem')).with_name(fqdn + '.pem').name} "
                     f"to {c.origin} as CallManager-trust") if c.lab.pki != "ca" else ""
            g.fixes.append(f"or reissue {c.dest}'s certificate with CN {fqdn} (the name the profile expects){again}")
    else:
        names = _names(origin_cert, origin_node.get("cert_cn"))
        cn = names[0] if names else "?"
        inbound = c.lab.inbound_profiles(c.dest)
        g.summary = (f"{c.dest} trusts {c.origin}'s certificate but none of the security profiles of the trunks it "
                     f"runs lists {cn}, so {c.dest} refused the call from {c.origin}.")
        if origin_cert:
            g.evidence.append(_cert_line(c.origin, origin_cert, origin_node.get("cert_file")))
        for t, p in inbound:
            g.evidence.append(f"on {c.dest}, trunk {t.get('name')} uses profile \"{p.get('name')}\" which lists: "
                              f"{', '.join(p.get('x509_subject_name') or []) or '(nothing)'}")
        p = inbound[0][1] if inbound else {}
        g.fixes.append(f"add {cn} to the X.509 Subject Name of security profile \"{p.get('name', '?')}\" on cluster "
                       f"{dest_node.get('cluster', '?')}")
    g.presented = g.presented or (dest_names[0] if dest_names else None)


def _unknown_ca(g: Group, c: Case) -> None:
    dest_cert, origin_cert = c.chains()
    dest_node, origin_node = c.lab.node(c.dest), c.lab.node(c.origin)
    dest_cn = (dest_cert or {}).get("cn") or dest_node.get("cert_cn")
    origin_cn = (origin_cert or {}).get("cn") or origin_node.get("cert_cn")
    missing = []
    if c.lab.trusts(c.origin, dest_cn) is False:
        missing.append((c.origin, c.dest, dest_cn, dest_cert))
    if c.lab.trusts(c.dest, origin_cn) is False:
        missing.append((c.dest, c.origin, origin_cn, origin_cert))
    if not missing:
        g.summary = "the certificate chain was not trusted (see the detail for who refused whom)."
    for receiver, presenter, cn, cert in missing:
        rn = c.lab.node(receiver)
        g.evidence.append(f"{receiver}'s CallManager-trust holds: {', '.join(rn.get('trust') or []) or '(nothing)'} — "
                          f"not {cn}" + ("" if (cert or {}).get("self_signed", c.lab.pki != "ca") else " nor its CA"))
        what = c.lab.file_of(presenter, cert)
        peers = [n for n, node in c.lab.nodes.items() if node.get("cluster") == rn.get("cluster") and n != receiver
                 and c.lab.trusts(n, cn) is False and _runs_trunk_with(c.lab, n, presenter)]
        also = f" (and to {', '.join(peers)}: every node that can place or receive the call)" if peers else ""
        g.fixes.append(f"upload {what} to {receiver} as CallManager-trust{also}")
        if not g.summary:
            g.summary = (f"{receiver} does not trust {presenter}'s certificate (CN={cn}): neither it nor its CA is in "
                         f"{receiver}'s CallManager-trust, so the TLS handshake failed before any SIP.")
    if dest_cert:
        g.evidence.insert(0, _cert_line(c.dest, dest_cert, dest_node.get("cert_file")))
    if not g.fixes:
        g.fixes.append("upload the peer's CallManager.pem (self-signed) or its root CA as CallManager-trust on the "
                       "node that refused it, on every node that can receive or place the call")


def _runs_trunk_with(lab: Lab, node: str, peer: str | None) -> bool:
    """Whether `node` runs a trunk that reaches `peer` (so it needs to trust peer too)."""
    pn = lab.node(peer)
    names = {x.lower() for x in (peer or "", pn.get("fqdn") or "", pn.get("address") or "") if x}
    for t in lab.trunks:
        if node in (t.get("nodes") or []) and any(_host(d).lower() in names for d in t.get("destinations") or []):
            return True
    for t in lab.trunks:  # peer's trunks that reach node
        nn = lab.node(node)
        mine = {x.lower() for x in (node, nn.get("fqdn") or "", nn.get("address") or "") if x}
        if peer in (t.get("nodes") or []) and any(_host(d).lower() in mine for d in t.get("destinations") or []):
            return True
    return False


def _no_peer_cert(g: Group, c: Case) -> None:
    g.summary = (f"{c.dest} asked {c.origin} for a certificate (Certificate Request) and {c.origin} sent none; "
                 "a CUCM TLS trunk always requires one.")
    g.fixes.append(f"configure {c.origin}'s CallManager identity certificate "
                   f"({Path(c.lab.node(c.origin).get('cert_file', 'CallManager.pem')).name}) so it presents it as client")


def _validity(g: Group, c: Case) -> None:
    dest_cert, origin_cert = c.chains()
    when = (c.conn or {}).get("started_at", "")[:19]
    expired = c.reason == "tls_cert_expired"
    bad = []
    for node, cert in ((c.dest, dest_cert), (c.origin, origin_cert)):
        if not cert:
            continue
        nb, na = (cert.get("not_before") or "")[:19], (cert.get("not_after") or "")[:19]
        if when and ((expired and na and na < when) or (not expired and nb and nb > when)):
            bad.append((node, cert))
    if not bad:
        bad = [(c.dest, dest_cert)] if dest_cert else []
    for node, cert in bad:
        n = c.lab.node(node)
        state = "expired" if expired else "not valid yet"
        g.summary = (f"{node}'s certificate {_subject(cert)} is {state} (valid {cert.get('not_before')} → "
                     f"{cert.get('not_after')}; the connection was made {when or '?'}), so its peer refused it.")
        g.evidence.append(_cert_line(node, cert, n.get("cert_file")))
        peer = c.origin if node == c.dest else c.dest
        g.fixes.append(f"regenerate {node}'s CallManager certificate (`sipsim certs init --force`; on CUCM: OS Admin → "
                       f"Certificate Management → Regenerate) and upload the new "
                       f"{Path(n.get('cert_file', 'CallManager.pem')).name} to {peer} as CallManager-trust")
    if not bad:
        g.fixes.append("regenerate the certificate outside its validity and upload it again to the peers' trust stores")


def _bad_eku(g: Group, c: Case) -> None:
    dest_cert, origin_cert = c.chains()
    for node, cert, need in ((c.dest, dest_cert, "serverAuth"), (c.origin, origin_cert, "clientAuth")):
        if cert is not None and need not in (cert.get("eku") or []):
            g.summary = (f"{node}'s certificate lacks the {need} extended key usage it needs as TLS "
                         f"{'server' if need == 'serverAuth' else 'client'} (it has: {', '.join(cert.get('eku') or []) or 'none'}).")
            g.evidence.append(_cert_line(node, cert, c.lab.node(node).get("cert_file")))
            g.fixes.append(f"reissue {node}'s CallManager certificate with both serverAuth and clientAuth, as CUCM's "
                           "CallManager certificates have, and upload it again to its peers' trust stores")
    if not g.fixes:
        g.fixes.append("reissue the certificate with both EKUs serverAuth and clientAuth")


def _protocol_version(g: Group, c: Case) -> None:
    o, d = c.lab.node(c.origin).get("tls"), c.lab.node(c.dest).get("tls")
    omin, omax = _ver(o, "min_version", "1.2"), _ver(o, "max_version", "1.3")
    dmin, dmax = _ver(d, "min_version", "1.2"), _ver(d, "max_version", "1.3")
    g.summary = f"{c.origin} and {c.dest} have no TLS version in common, so the handshake failed (alert protocol_version)."
    g.evidence.append(f"{c.origin} speaks TLS {omin} to {omax}; {c.dest} speaks TLS {dmin} to {dmax}")
    old, new = (c.origin, c.dest) if float(omax) < float(dmin) else (c.dest, c.origin)
    old_max = omax if old == c.origin else dmax
    new_min = dmin if old == c.origin else omin
    g.fixes.append(f"raise {old}'s maximum TLS version to at least {new_min} ([cluster.node.tls] max_version; on CUCM: "
                   f"upgrade, 9.x has no TLS 1.2), or lower {new}'s minimum to {old_max} (min_version)")


def _no_shared_cipher(g: Group, c: Case) -> None:
    p = c.profile()
    g.summary = f"{c.origin} and {c.dest} have no cipher suite in common, so the handshake failed."
    g.evidence.append(f"{c.origin}: trunk profile \"{p.get('name')}\" mode {p.get('mode')}, ciphers "
                      f"{(c.lab.node(c.origin).get('tls') or {}).get('ciphers') or 'the mode default'}")
    for t, ip in c.lab.inbound_profiles(c.dest):
        g.evidence.append(f"{c.dest}: trunk {t.get('name')} profile \"{ip.get('name')}\" mode {ip.get('mode')}, "
                          f"ciphers {(c.lab.node(c.dest).get('tls') or {}).get('ciphers') or 'the mode default'}")
    g.fixes.append("use the same Device Security Mode on both trunks' security profiles (Authenticated = NULL-SHA "
                   "only matches Authenticated), or a common cipher preset")


def _no_shared_group(g: Group, c: Case) -> None:
    from sipsim.tls.config import DEFAULT_GROUPS

    g.summary = (f"{c.origin} and {c.dest} have no key exchange group in common, so the TLS 1.3 handshake failed "
                 f"({c.dest} found none of its groups in {c.origin}'s Client Hello and sent alert handshake_failure).")
    for node, role in ((c.origin, "offers"), (c.dest, "accepts")):
        groups = (c.lab.node(node).get("tls") or {}).get("groups")
        g.evidence.append(f"{node} {role} key exchange groups {groups or DEFAULT_GROUPS + ' (the default)'}")
    g.fixes.append(f"give both nodes a group in common ([cluster.node.tls] groups, or --tls-groups): the default "
                   f"{DEFAULT_GROUPS} is what CUCM, CUBE and Kamailio offer; X25519MLKEM768 only between peers "
                   "that both support it")


def _handshake_failed(g: Group, c: Case) -> None:
    faults = c.lab.node(c.dest).get("fault") or []
    g.summary = f"the TLS handshake between {c.origin} and {c.dest} failed for another reason (see the detail)."
    if c.conn and c.conn.get("alert_received"):
        from sipsim.report.transcript import alert_meaning
        a = c.conn["alert_received"]
        g.evidence.append(f"{c.dest} sent alert {a}: {alert_meaning(a)}")
    if faults:
        g.evidence.append(f"{c.dest} has injected faults: {', '.join(faults)}")
    g.fixes.append(f"check that {_where(c)} speaks TLS on that port (not plain SIP on 5061) and stays up during the "
                   "handshake; the detail names what OpenSSL said")


def _connect_refused(g: Group, c: Case) -> None:
    node = c.lab.node(c.dest)
    faults = node.get("fault") or []
    port = _port(c.attempt.get("destination"))
    incoming = sorted({p.get("incoming_port") for _, p in c.lab.inbound_profiles(c.dest) if p.get("incoming_port")})
    addr = f"{node.get('address', _host(c.attempt.get('destination')))}:{port}"
    if "refuse_connections" in faults:
        g.summary = (f"{c.dest} is down: nothing listens at {addr}, so the TCP connection from {c.origin} was refused "
                     "(CUCM: Local=2). It never got as far as TLS.")
        g.fixes.append(f"start {c.dest} (or take {c.attempt.get('destination')} out of trunk {c.call.get('trunk')}'s "
                       "destinations until it is back; with OPTIONS ping on, CUCM stops sending calls there)")
    elif port is not None and incoming and port not in incoming:
        g.summary = (f"nothing listens at {addr}: {c.dest} listens on {', '.join(map(str, incoming))} (its trunks' "
                     f"incoming port), not {port}.")
        g.fixes.append(f"set the destination port of {c.attempt.get('destination')} on trunk {c.call.get('trunk')} to "
                       f"{incoming[0]} (the peer's incoming port)")
    else:
        g.summary = f"nothing listens at {addr}: the TCP connection from {c.origin} was refused (CUCM: Local=2)."
        g.fixes.append(f"start {c.dest or 'the peer'}; check the destination port against the peer profile's incoming "
                       "port (5061 for TLS)")
    if incoming:
        g.evidence.append(f"{c.dest}'s trunks listen on port {', '.join(map(str, incoming))}; the trunk sends to "
                          f"{c.attempt.get('destination')}")
    if faults:
        g.evidence.append(f"{c.dest} has injected faults: {', '.join(faults)}")


def _connect_failed(g: Group, c: Case) -> None:
    g.summary = f"{c.origin} could not open TCP to {_where(c)} (a socket error other than refused)."
    g.fixes.append("check the destination's address and that it is reachable; the detail gives the socket error")


def _timeout(g: Group, c: Case) -> None:
    faults = c.lab.node(c.dest).get("fault") or []
    if "stall" in faults:
        g.summary = (f"{c.dest} accepts the TCP connection and never answers the TLS handshake, so {c.origin} gave up "
                     "after its handshake_timeout (CUCM: Local=1).")
        g.fixes.append(f"repair or restart {c.dest}; meanwhile take it out of the trunk's destinations or turn on "
                       "OPTIONS ping so calls avoid it")
    else:
        g.summary = (f"{_where(c)} did not complete the TCP connection, the TLS handshake or the INVITE in time "
                     "(CUCM: Local=1).")
        g.fixes.append("check the destination address and that the peer answers; the detail says which step timed out")
    if faults:
        g.evidence.append(f"{c.dest} has injected faults: {', '.join(faults)}")


def _dns_failure(g: Group, c: Case) -> None:
    host = _host(c.attempt.get("destination"))
    known = [n.get("fqdn") for n in c.lab.nodes.values() if n.get("fqdn")] + list(c.lab.nodes)
    near = difflib.get_close_matches(host, known, n=1, cutoff=0.6)
    g.summary = f"{host} is neither a node of the lab nor an address, so {c.origin} could not resolve it (CUCM: Local=3)."
    g.fixes.append(f"correct destination {c.attempt.get('destination')} of trunk {c.call.get('trunk')}"
                   + (f" (did you mean {near[0]}?)" if near else "") + ", or the node's fqdn")


def _unallocated(g: Group, c: Case) -> None:
    called = c.call.get("called") or ""
    origin = c.lab.node(c.origin) or c.lab.node(_caller_node(c))
    cluster = origin.get("cluster") or "the calling phone's cluster"
    if not c.call.get("pattern"):
        example = called[:1] + "X" * (len(called) - 1) if called else "XXXX"
        g.summary = f"no route pattern of cluster {cluster} matches the dialled digits {called}."
        g.fixes.append(f"add a route pattern (e.g. {example}) on cluster {cluster} pointing to the trunk towards the "
                       f"cluster of {called}")
    else:
        dn = c.lab.node(c.dest)
        g.summary = f"{c.dest} answered 404: its cluster has no directory number {called}."
        g.fixes.append(f"add phone {called} on cluster {dn.get('cluster', '?')}, or correct the dialled number")


def _caller_node(c: Case) -> str | None:
    return c.call.get("origin_node")


def _out_of_service(g: Group, c: Case) -> None:
    g.summary = (f"OPTIONS ping shows every destination of trunk {c.call.get('trunk')} out of service from "
                 f"{c.origin}, so CUCM did not even try (No Service).")
    for ch in (c.report.get("ping_changes") or [])[:6]:
        g.evidence.append(", ".join(f"{k}={v}" for k, v in ch.items()))
    g.fixes.append("fix why the destinations are down (the ping causes: Local=1 timeout, Local=2 TCP/TLS failure, "
                   "Local=3 DNS, Remote=408/503) — run `sipsim explain` on a run without OPTIONS ping to see the TLS cause")


def _phone(g: Group, c: Case) -> None:
    words = {"user_busy": "is busy (486)", "call_rejected": "declined the call (603)",
             "cancelled": "did not answer before the caller gave up (487)"}
    g.summary = (f"the called phone {c.call.get('called')} {words.get(c.reason, c.reason)}: the trunk and TLS worked; "
                 "this is the phone's doing, not a trunk problem.")
    g.fixes.append("nothing to fix on the trunk (the scenario sets the phone's behaviour)")


def _refused_by_peer(g: Group, c: Case) -> None:
    faults = c.lab.node(c.dest).get("fault") or []
    status = {"forbidden": 403, "service_unavailable": 503}.get(c.reason)
    if "answer_503" in faults or any(f.startswith("reject_every_nth") for f in faults):
        g.summary = f"{c.dest} answers INVITEs with 503 Service Unavailable (it is overloaded or out of service)."
        g.fixes.append(f"bring {c.dest} back to service; with failover on 503 (or OPTIONS ping) calls go elsewhere")
    else:
        g.summary = f"{c.dest} refused the call with {status} after the TLS connection was up."
        g.fixes.append(f"check {c.dest}'s trunk: a security profile whose subject_mismatch is sip_{status}, digest "
                       "authentication, or a peer that is out of service")
    if faults:
        g.evidence.append(f"{c.dest} has injected faults: {', '.join(faults)}")


def _connection_lost(g: Group, c: Case) -> None:
    faults = c.lab.node(c.dest).get("fault") or []
    if "close_after_handshake" in faults:
        g.summary = f"{c.dest} completes the TLS handshake and closes the connection at once, before answering the INVITE."
    else:
        g.summary = (f"the TLS connection to {c.dest} closed while the call was being set up (under TLS 1.3, a server "
                     "that rejects the client certificate after the handshake looks like this).")
    g.fixes.append(f"see why {c.dest} closes connections: its trust store and profile list for {c.origin}, or its logs")
    if faults:
        g.evidence.append(f"{c.dest} has injected faults: {', '.join(faults)}")


def _sip_other(g: Group, c: Case) -> None:
    g.summary = f"{c.dest} answered the INVITE with {c.reason.removeprefix('sip_')}."
    g.fixes.append("look at the peer's reason phrase in the ladder (`sipsim ladder REPORT --call N`)")


def _other(g: Group, c: Case) -> None:
    g.summary = c.detail or f"the call failed ({c.reason})."
    g.fixes.append("see the detail")


_EXPLAIN = {
    "subject_not_allowed": _subject_not_allowed,
    "tls_unknown_ca": _unknown_ca,
    "tls_no_peer_cert": _no_peer_cert,
    "tls_cert_expired": _validity,
    "tls_cert_not_yet_valid": _validity,
    "tls_bad_eku": _bad_eku,
    "tls_protocol_version": _protocol_version,
    "tls_no_shared_cipher": _no_shared_cipher,
    "tls_no_shared_group": _no_shared_group,
    "tls_handshake_failed": _handshake_failed,
    "connect_refused": _connect_refused,
    "connect_failed": _connect_failed,
    "timeout": _timeout,
    "dns_failure": _dns_failure,
    "unallocated_number": _unallocated,
    "trunk_out_of_service": _out_of_service,
    "user_busy": _phone,
    "call_rejected": _phone,
    "cancelled": _phone,
    "forbidden": _refused_by_peer,
    "service_unavailable": _refused_by_peer,
    "connection_lost": _connection_lost,
}


def group_sentences(groups: list[Group]) -> list[str]:
    out: list[str] = []
    for g in groups:
        out.extend(g.lines())
    return out


__all__ = ["Group", "explain", "render_explain", "load_report", "group_sentences"]
