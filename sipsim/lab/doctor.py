"""`sipsim doctor`: check a lab statically, before any call — no socket is opened.

For every connection the lab can make (per trunk, per node the trunk runs on, per destination) the
doctor asks what the runtime would find on the wire, from the same inputs the runtime uses:

- **names**: the destination resolves to a node of the lab (CUCM: ``Local=3`` otherwise);
- **port**: the destination port is one the node listens on (the incoming port of a trunk's security
  profile running on it), or calls fail with ``connect_refused``;
- **trust, both ways** (mutual TLS): the receiver's actual CallManager-trust files accept the
  sender's actual certificate files (`verify_chain`, purpose client for the caller and server for
  the called node, at the run's date) — unknown CA, expired / not yet valid, missing EKU;
- **X.509 Subject Name, both ways**: the caller's certificate names (CN and dNSName SANs) are in a
  security profile the called node applies on that port, and the called node's names are in the
  calling trunk's profile (``subject_not_allowed``);
- **TLS versions, ciphers and key exchange groups**: an in-memory handshake between the two nodes'
  real OpenSSL contexts (`build_context` from `LabContext.tls_config`, memory BIOs, no socket), with
  certificate verification switched off so that it only tells version, cipher and group problems
  apart (a TLS 1.2 handshake that works only because a non-ECDHE suite needs no group: a warning);
- **Device Security Mode** (Authenticated = NULL-SHA against Encrypted);
- **SRTP Allowed** over a profile that is not Encrypted (warning: keys in clear SDP);
- **legacy settings** (TLS 1.0/1.1, RSA under 2048 bits, SHA-1 signatures): warnings;
- **injected faults** (``[cluster.node.fault]``): notes.

`diagnose` returns `Finding` objects; problems first come in the lab's order.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from pathlib import Path

from OpenSSL import SSL

from sipsim.errors import UserError
from sipsim.lab import model as m
from sipsim.lab.subjects import matching_name
from sipsim.lab.topology import DnsFailure, Topology
from sipsim.pki import files as pfiles
from sipsim.pki import issue
from sipsim.pki.material import LabPKI
from sipsim.pki.show import cucm_name
from sipsim.pki.verify import verify_chain
from sipsim.tls import build_context
from sipsim.tls.config import DEFAULT_GROUPS, VERSIONS, shared_groups

SEVERITIES = ("problem", "warning", "note")
MODE_WORDS = {"encrypted": "Encrypted", "authenticated": "Authenticated (NULL-SHA)", "non_secure": "Non Secure"}
#: verify_chain reasons → the runtime's failure reason (docs/reasons.md)
VERIFY_REASONS = {
    "unknown_issuer": "tls_unknown_ca", "self_signed_untrusted": "tls_unknown_ca",
    "bad_signature": "tls_unknown_ca", "invalid_ca": "tls_unknown_ca",
    "expired": "tls_cert_expired", "not_yet_valid": "tls_cert_not_yet_valid",
    "missing_server_auth": "tls_bad_eku", "missing_client_auth": "tls_bad_eku",
}


@dataclass(frozen=True)
class Finding:
    """One thing the doctor found. ``pair`` names both sides ("A → B (trunk T)") or, for a node-wide
    finding, the node; ``reason`` is the runtime reason calls would fail with (problems only)."""

    severity: str  # "problem" | "warning" | "note"
    pair: str
    text: str
    check: str = ""  # dns, port, trust, subject, tls_version, cipher, groups, mode, srtp, legacy, fault, config
    reason: str | None = None

    def __str__(self) -> str:
        return f"{self.pair}: {self.text}"


@dataclass
class _Cert:
    """A node's identity as the files on disk have it."""

    path: Path
    chain: tuple[Path, ...]
    cn: str | None
    sans: list[str]
    leaf: object

    @property
    def shown(self) -> str:
        text = f"CN={self.cn}" if self.cn else "no CN"
        if self.sans:
            text += " (SAN " + ", ".join(self.sans) + ")"
        return text


class _Doctor:
    def __init__(self, scenario: m.Scenario, pki: LabPKI, at: dt.datetime | None):
        from sipsim.runtime.context import LabContext  # the runtime's own TLS settings, no socket

        self.scenario = scenario
        self.pki = pki
        self.at = at
        self.topo = Topology(scenario)
        self.lab = LabContext(scenario, pki)
        self.findings: list[Finding] = []
        self._seen: set[tuple] = set()
        self._certs: dict[str, _Cert | None] = {}
        self._trust: dict[str, list[Path]] = {}
        self._handshakes: dict[tuple, tuple[str | None, str | None, str | None]] = {}
        self._contexts: dict[tuple, SSL.Context | None] = {}
        self.connections = 0

    # output ---------------------------------------------------------------------------------------
    def add(self, severity: str, pair: str, text: str, check: str, reason: str | None = None) -> None:
        key = (severity, pair, text)
        if key not in self._seen:
            self._seen.add(key)
            self.findings.append(Finding(severity, pair, text, check, reason))

    # inputs ---------------------------------------------------------------------------------------
    def cert(self, node: m.Node) -> _Cert | None:
        if node.name not in self._certs:
            try:
                files = self.pki.files(node.cn)
                certs = pfiles.load_certificates(files.cert)
            except UserError as e:
                self.add("problem", node.name, f"its certificate cannot be read: {e}", "config")
                self._certs[node.name] = None
            else:
                leaf = certs[0]
                self._certs[node.name] = _Cert(files.cert, tuple(files.chain), issue.common_name(leaf),
                                               issue.dns_sans(leaf), leaf)
        return self._certs[node.name]

    def trust_files(self, node: m.Node) -> list[Path]:
        """The node's CallManager-trust files, as `LabContext.tls_config` gives them to OpenSSL."""
        if node.name not in self._trust:
            try:
                paths = list(self.lab.tls_config(node, "encrypted").trust_files)
            except UserError:
                paths = []
                for cn in self.topo.trusted_names(node):
                    try:
                        p = self.pki.trust_file(cn)
                    except UserError:
                        self.add("problem", node.name,
                                 f'trust names "{cn}", which is no certificate of this lab: correct the '
                                 f"node's trust list (known: {', '.join(sorted(self.pki.identities))})", "config")
                        continue
                    if p not in paths:
                        paths.append(p)
            self._trust[node.name] = paths
        return self._trust[node.name]

    def context(self, node: m.Node, mode: str, server_side: bool) -> SSL.Context | None:
        key = (node.name, mode, server_side)
        if key not in self._contexts:
            try:
                ctx = build_context(self.lab.tls_config(node, mode), server_side)
            except UserError as e:
                self.add("problem", node.name, f"OpenSSL cannot set up its TLS side ({MODE_WORDS[mode]}): {e}",
                         "config")
                ctx = None
            else:
                # the handshake here only tells version and cipher problems apart: trust is checked
                # by verify_chain, names against the profiles
                ctx.set_verify(SSL.VERIFY_PEER, lambda *args: True)
            self._contexts[key] = ctx
        return self._contexts[key]

    # the checks -----------------------------------------------------------------------------------
    def run(self) -> list[Finding]:
        for node in self.scenario.nodes():
            self.node_checks(node)
        for cluster in self.scenario.clusters:
            for trunk in cluster.trunks:
                self.trunk_checks(trunk)
                destinations = destinations_of(self.topo, trunk)
                if getattr(trunk, "srv", None) and not destinations:
                    self.add("problem", f"trunk {trunk.name} (cluster {trunk.cluster})",
                             f"DNS SRV name {trunk.srv} has no record in the lab's SRV table (dns_failure): add "
                             "its targets", "dns", "dns_failure")
                for origin in self.topo.trunk_nodes(trunk):
                    for dest in destinations:
                        self.connection(trunk, origin, dest)
        order = {s: i for i, s in enumerate(SEVERITIES)}
        return sorted(self.findings, key=lambda f: order[f.severity])

    def node_checks(self, node: m.Node) -> None:
        if node.fault.active:
            targets = []
            for trunk in (t for c in self.scenario.clusters for t in c.trunks):
                for dest in destinations_of(self.topo, trunk):
                    try:
                        if self.topo.resolve(dest).node == node:
                            targets.append(f"{trunk.name} → {dest.label}")
                    except DnsFailure:
                        pass
            effects = {
                "refuse_connections": "connections to it are refused (connect_refused)",
                "stall": "it never answers a TLS handshake (timeout)",
                "close_after_handshake": "it closes every connection after the handshake (connection_lost)",
                "answer_503": "it answers every INVITE and OPTIONS with 503",
            }
            what = "; ".join(effects.get(f, f"every {f.split('=')[1]}th INVITE gets 503" if "=" in f else f)
                             for f in node.fault.active)
            where = f"; affects {', '.join(targets)}" if targets else ""
            self.add("note", node.name, f"fault injected ({', '.join(node.fault.active)}): {what}{where}", "fault")
        if node.tls.min_version in ("1.0", "1.1"):
            self.add("warning", node.name,
                     f"accepts TLS {node.tls.min_version} (min_version {node.tls.min_version}): legacy, "
                     "OpenSSL needs @SECLEVEL=0 for it; raise min_version to 1.2 once every peer speaks it",
                     "legacy")
        cert = self.cert(node)
        if cert is not None:
            anchor = [self.pki.trust_file(node.cn)] if self.pki.mode == "ca" else [cert.path]
            result = verify_chain(cert.path, chain=cert.chain, trust=anchor, at=self.at)
            for w in result.warnings:
                self.add("warning", node.name, w, "legacy")

    def trunk_checks(self, trunk: m.Trunk) -> None:
        profile = self.topo.profile_of(trunk)
        if trunk.srtp_allowed and profile.device_security_mode != "encrypted":
            self.add("warning", f"trunk {trunk.name} (cluster {trunk.cluster})",
                     f'SRTP Allowed over security profile "{profile.name}", which is '
                     f"{MODE_WORDS[profile.device_security_mode]}: keys would travel in clear SDP (a=crypto); "
                     "use an Encrypted profile or turn SRTP Allowed off", "srtp")

    def connection(self, trunk: m.Trunk, origin: m.Node, dest: m.Destination) -> None:
        try:
            resolved = self.topo.resolve(dest)
        except DnsFailure:
            self.add("problem", f"{origin.name} → {dest.label} (trunk {trunk.name})",
                     f"{dest.host} resolves to no node of the lab (CUCM: Local=3, dns_failure): correct the "
                     "destination, or the peer node's fqdn", "dns", "dns_failure")
            return
        target = resolved.node
        if target is None:
            self.add("problem", f"{origin.name} → {dest.label} (trunk {trunk.name})",
                     f"{resolved.address} is the address of no node of the lab: nothing listens there "
                     "(connect_refused or timeout); use a node's address, name or FQDN", "dns", "connect_refused")
            return
        self.connections += 1
        pair = f"{origin.name} → {target.name} (trunk {trunk.name})"
        out_profile = self.topo.profile_of(trunk)
        inbound = self.topo.inbound_trunks(target, dest.port)
        if not self.topo.trunks_on(target):
            self.add("problem", pair,
                     f"no trunk runs on {target.name}, so no security profile there accepts {origin.name}: "
                     f"give a trunk of cluster {target.cluster} a CallManager group with {target.name} and a "
                     f"security profile listing {self.names_hint(origin)}", "subject", "subject_not_allowed")
            return
        if not inbound:
            ports = self.topo.listen_ports(target)
            by = "; ".join(f'{p.incoming_port} (security profile "{p.name}" of trunk {t.name})'
                           for p, t in sorted({(self.topo.profile_of(t), t) for t in self.topo.trunks_on(target)},
                                              key=lambda pt: (pt[0].incoming_port, pt[1].name)))
            self.add("problem", pair,
                     f"destination {dest.label}: {target.name} listens on port {', '.join(map(str, ports))} "
                     f"({by}), nothing answers on {dest.port} (connect_refused): set the destination port to "
                     f"{ports[0]}", "port", "connect_refused")
            return
        in_profiles = [p for _, p in inbound]
        server_mode = in_profiles[0].device_security_mode  # what the runtime's listener uses
        client_mode = out_profile.device_security_mode
        if "non_secure" in (client_mode, server_mode):
            if client_mode == server_mode:
                self.add("note", pair, "Non Secure trunk (SIP over TCP): no certificate or name check; the "
                         "receiver accepts calls from the addresses of its trunk's destinations", "mode")
            else:
                tls_side, tcp_side = (target, origin) if client_mode == "non_secure" else (origin, target)
                self.add("problem", pair,
                         f'{tcp_side.name} is Non Secure (TCP) on this trunk, {tls_side.name} speaks TLS '
                         f'(security profiles "{out_profile.name}" and "{in_profiles[0].name}"): use the same '
                         "Device Security Mode on both ends", "mode", "tls_handshake_failed")
            return
        o_cert, t_cert = self.cert(origin), self.cert(target)
        # mutual TLS: the called node (server) verifies the caller as a client, and the caller verifies it
        if o_cert is not None:
            self.trust(pair, receiver=target, sender=origin, cert=o_cert, purpose="client")
        if t_cert is not None:
            self.trust(pair, receiver=origin, sender=target, cert=t_cert, purpose="server")
        # X.509 Subject Name: inbound (the called node's profiles on that port), outbound (the trunk's)
        if o_cert is not None and not any(
                matching_name(o_cert.cn, o_cert.sans, p.x509_subject_name, wildcards=p.wildcards) for p in in_profiles):
            names = " or ".join(f'"{p.name}"' for p in in_profiles)
            self.add("problem", pair,
                     f"{origin.name} presents {o_cert.shown}, not in security profile {names} (cluster "
                     f"{target.cluster}) that {target.name} applies on port {dest.port}: "
                     f"{self.name_fix(origin, o_cert, in_profiles)}", "subject", "subject_not_allowed")
        if t_cert is not None and not matching_name(t_cert.cn, t_cert.sans, out_profile.x509_subject_name,
                                                     wildcards=out_profile.wildcards):
            self.add("problem", pair,
                     f'{target.name} presents {t_cert.shown}, not in security profile "{out_profile.name}" '
                     f"(cluster {trunk.cluster}): {self.name_fix(target, t_cert, [out_profile])}",
                     "subject", "subject_not_allowed")
        self.tls(pair, origin, target, client_mode, server_mode, out_profile, in_profiles[0])

    # trust ----------------------------------------------------------------------------------------
    def trust(self, pair: str, *, receiver: m.Node, sender: m.Node, cert: _Cert, purpose: str) -> None:
        trust = self.trust_files(receiver)
        result = verify_chain(cert.path, chain=cert.chain, trust=trust, purpose=purpose, at=self.at)
        if result.ok:
            return
        reason = VERIFY_REASONS.get(result.reason or "", "tls_unknown_ca")
        role = "client" if purpose == "client" else "server"
        if result.reason in ("unknown_issuer", "self_signed_untrusted"):
            if result.reason == "self_signed_untrusted":
                how, upload = "self-signed", f"{sender.name}'s certificate ({cert.path.name})"
            else:
                top = result.path[-1] if result.path else cert.leaf
                root = top.subject if top.issuer == top.subject else top.issuer
                how = f"issued by {cucm_name(cert.leaf.issuer)}"
                upload = f"the root CA {cucm_name(root)}" + (
                    f" ({self.pki.ca_file.name})" if self.pki.mode == "ca" and self.pki.ca_file else "")
            text = (f"{receiver.name} does not trust {sender.name}'s certificate {cert.shown}, {how} "
                    f"({reason}): upload {upload} to {receiver.name} as CallManager-trust"
                    f"{self.trust_hint(receiver, sender)}")
        else:
            text = (f"{receiver.name} refuses {sender.name}'s certificate as a TLS {role} ({reason}): "
                    f"{result.sentence}{self.cert_hint(sender, result.reason)}")
        self.add("problem", pair, text, "trust", reason)

    def trust_hint(self, receiver: m.Node, sender: m.Node) -> str:
        excluded = {e.casefold() for e in receiver.trust_exclude}
        if sender.cn.casefold() in excluded:
            return f' (scenario: remove "{sender.cn}" from {receiver.name}\'s trust_exclude)'
        if receiver.trust is not None:
            listed = ", ".join(f'"{t}"' for t in receiver.trust) or "nothing"
            return f' (scenario: {receiver.name}\'s trust lists {listed}; add "{sender.cn}" or use "auto")'
        return ""

    @staticmethod
    def cert_hint(sender: m.Node, reason: str | None) -> str:
        c = sender.cert
        if reason in ("expired", "not_yet_valid") and (c.not_after or c.not_before):
            given = ", ".join(f'{k} = "{v}"' for k, v in (("not_before", c.not_before), ("not_after", c.not_after)) if v)
            return f" (scenario: {sender.name}'s cert has {given})"
        return ""

    # names ----------------------------------------------------------------------------------------
    @staticmethod
    def names_hint(node: m.Node) -> str:
        return node.cn

    @staticmethod
    def name_fix(node: m.Node, cert: _Cert, profiles: list[m.SecurityProfile]) -> str:
        fix = "add it to the X.509 Subject Name"
        for candidate in (node.fqdn, node.name):
            if candidate.casefold() != (cert.cn or "").casefold() and any(
                    matching_name(candidate, [], p.x509_subject_name, wildcards=p.wildcards) for p in profiles):
                return f"{fix}, or reissue {node.name}'s certificate as {candidate}"
        return fix

    # TLS versions, ciphers, mode -------------------------------------------------------------------
    @staticmethod
    def version_range(node: m.Node, mode: str) -> tuple[str, str]:
        lo, hi = node.tls.min_version, node.tls.max_version
        if mode == "authenticated" and hi == "1.3":
            hi = "1.2"  # NULL-SHA suites exist up to TLS 1.2 only (build_context does the same)
        return lo, hi

    @staticmethod
    def groups_words(origin: m.Node, target: m.Node) -> str:
        """"A offers groups X, B accepts Y" (each node's [tls] groups, or the default)."""
        def groups(node: m.Node) -> str:
            return node.tls.groups or f"{DEFAULT_GROUPS} (default)"
        return f"{origin.name} offers groups {groups(origin)}, {target.name} accepts {groups(target)}"

    def handshake(self, origin: m.Node, target: m.Node, client_mode: str, server_mode: str):
        """(version, cipher, error) of an in-memory handshake between the two real contexts."""
        key = (origin.name, target.name, client_mode, server_mode)
        if key not in self._handshakes:
            cctx = self.context(origin, client_mode, False)
            sctx = self.context(target, server_mode, True)
            self._handshakes[key] = (None, None, "no context") if cctx is None or sctx is None \
                else memory_handshake(cctx, sctx)
        return self._handshakes[key]

    def tls(self, pair: str, origin: m.Node, target: m.Node, client_mode: str, server_mode: str,
            out_profile: m.SecurityProfile, in_profile: m.SecurityProfile) -> None:
        version, cipher, error = self.handshake(origin, target, client_mode, server_mode)
        if error == "no context":
            return
        modes_differ = client_mode != server_mode
        mode_words = (f'{origin.name}\'s profile "{out_profile.name}" is {MODE_WORDS[client_mode]}, '
                      f'{target.name}\'s profile "{in_profile.name}" is {MODE_WORDS[server_mode]}')
        if error is None:
            if modes_differ:
                self.add("warning", pair, f"Device Security Mode differs ({mode_words}); the handshake works "
                         f"with {cipher} but the two ends disagree on the call's security: use the same mode",
                         "mode")
            if version in ("TLSv1", "TLSv1.1"):
                self.add("warning", pair, f"negotiates {version} with {cipher}: legacy; raise both nodes' "
                         "TLS versions to 1.2", "legacy")
            elif version != "TLSv1.3" and shared_groups(origin.tls.groups, target.tls.groups) == []:
                self.add("warning", pair, f"negotiates {version} with {cipher} because {self.groups_words(origin, target)}: "
                         "no ECDHE suite can be agreed; give them a group in common ([cluster.node.tls] groups)",
                         "groups")
            return
        (olo, ohi), (tlo, thi) = self.version_range(origin, client_mode), self.version_range(target, server_mode)
        if VERSIONS.index(max(olo, tlo)) > VERSIONS.index(min(ohi, thi)):
            low, high = ((origin, (olo, ohi)), (target, (tlo, thi)))
            if VERSIONS.index(ohi) > VERSIONS.index(thi):
                low, high = high, low
            self.add("problem", pair,
                     f"no TLS version in common (tls_protocol_version): {origin.name} allows TLS {olo}–{ohi}, "
                     f"{target.name} allows TLS {tlo}–{thi}: raise {low[0].name}'s max_version to {high[1][0]} "
                     f"or lower {high[0].name}'s min_version to {low[1][1]}", "tls_version", "tls_protocol_version")
        elif "no suitable key share" in error and not modes_differ:
            self.add("problem", pair, f"no key exchange group in common (tls_no_shared_group): "
                     f"{self.groups_words(origin, target)}: give both nodes a group in common ([cluster.node.tls] "
                     f"groups; the default {DEFAULT_GROUPS} is what CUCM-era peers offer)",
                     "groups", "tls_no_shared_group")
        elif modes_differ or "cipher" in error or "handshake failure" in error:
            c_list, s_list = cipher_names(self.context(origin, client_mode, False)), \
                cipher_names(self.context(target, server_mode, True))
            if modes_differ:
                fix = "use the same Device Security Mode on both trunks' profiles"
                lead = f"{mode_words}"
            else:
                fix = "give both nodes a common cipher (tls.ciphers, or the same CUCM preset)"
                lead = f"{origin.name} offers {short(c_list)}; {target.name} offers {short(s_list)}"
            if shared_groups(origin.tls.groups, target.tls.groups) == []:
                fix += f" (and {self.groups_words(origin, target)}: no ECDHE suite without a common group)"
            self.add("problem", pair, f"no cipher in common (tls_no_shared_cipher): {lead}: {fix}",
                     "cipher", "tls_no_shared_cipher")
        else:
            self.add("problem", pair, f"the TLS handshake between {origin.name} and {target.name} fails in "
                     f"memory ({error}): check both nodes' tls settings", "tls", "tls_handshake_failed")


def destinations_of(topo: Topology, trunk: m.Trunk) -> list[m.Destination]:
    """The trunk's destinations as the runtime sees them (its DNS SRV name's targets, when it has one)."""
    resolve = getattr(topo, "destinations", None)
    return list(resolve(trunk)) if resolve is not None else list(trunk.destinations)


def cipher_names(ctx: SSL.Context | None) -> list[str]:
    return [] if ctx is None else SSL.Connection(ctx, None).get_cipher_list()


def short(names: list[str], n: int = 4) -> str:
    names = [c for c in names if not c.startswith("TLS_")] or names  # TLS 1.3 suites are always there
    return ", ".join(names[:n]) + (f" (+{len(names) - n} more)" if len(names) > n else "")


def _error_text(exc: Exception) -> str:
    args = getattr(exc, "args", ())
    if args and isinstance(args[0], list):
        parts = [str(e[2]) for e in args[0] if isinstance(e, tuple) and len(e) >= 3 and e[2]]
        if parts:
            return "; ".join(parts)
    return str(exc) or type(exc).__name__


def memory_handshake(client_ctx: SSL.Context, server_ctx: SSL.Context, rounds: int = 20):
    """Run a TLS handshake between two contexts over memory BIOs (no socket, no trio).
    Returns (version, cipher, None) on success, (None, None, error text) on failure."""
    client, server = SSL.Connection(client_ctx, None), SSL.Connection(server_ctx, None)
    client.set_connect_state()
    server.set_accept_state()
    done = {id(client): False, id(server): False}
    errors: list[str] = []
    for _ in range(rounds):
        for conn in (client, server):
            if done[id(conn)]:
                continue
            try:
                conn.do_handshake()
                done[id(conn)] = True
            except SSL.WantReadError:
                pass
            except SSL.Error as e:
                errors.append(("client: " if conn is client else "server: ") + _error_text(e))
        moved = False
        for src, dst in ((client, server), (server, client)):
            while True:
                try:
                    data = src.bio_read(65536)
                except SSL.WantReadError:
                    break
                if not data:
                    break
                dst.bio_write(data)
                moved = True
        if errors:
            return None, None, "; ".join(errors)
        if all(done.values()) and not moved:
            return client.get_protocol_version_name(), client.get_cipher_name(), None
    return None, None, "the handshake did not complete"


def diagnose(scenario: m.Scenario, pki: LabPKI, *, at: dt.datetime | str | None = None) -> list[Finding]:
    """Every problem, warning and note the doctor finds in ``scenario`` with its certificates
    ``pki`` (from `sipsim.runtime.context.prepare_pki`); ``at``: when to check validity (default now)."""
    when = issue.whole_seconds_utc(at) if at is not None else None
    return _Doctor(scenario, pki, when).run()


def connections(scenario: m.Scenario) -> int:
    """How many (trunk, origin node, destination) connections the lab can open to a node."""
    topo, n = Topology(scenario), 0
    for cluster in scenario.clusters:
        for trunk in cluster.trunks:
            for _origin in topo.trunk_nodes(trunk):
                for dest in destinations_of(topo, trunk):
                    try:
                        n += topo.resolve(dest).node is not None
                    except DnsFailure:
                        pass
    return n
