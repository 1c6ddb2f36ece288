"""What the nodes of one lab share at run time: the scenario, its topology and PKI, TLS contexts,
the key log, and the register of handshakes each server refused (so a client's report can say *why*
the peer refused it — the server's own reason, not just the alert that reached the client)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import time

import trio

from sipsim.lab import model as m
from sipsim.lab.topology import Topology
from sipsim.runtime.observers import Observers
from sipsim.pki.material import IdentitySpec, LabPKI, ensure_lab_pki
from sipsim.tls import TLSConfig, build_context


@dataclass
class ServerView:
    reason: str
    detail: str
    node: str
    action: str = "tls_alert"


def identity_specs(scenario: m.Scenario) -> list[IdentitySpec]:
    specs = []
    for node in scenario.nodes():
        c = node.cert
        specs.append(
            IdentitySpec(cn=node.cn, sans=tuple(c.sans), key=c.key, hash=c.hash, days=c.days,
                         not_before=c.not_before, not_after=c.not_after, subject=dict(c.subject))
        )
        if node.ec_cn:
            specs.append(IdentitySpec(cn=node.ec_cn, key=c.ecdsa_key, hash="sha384" if c.ecdsa_key == "ec-p384"
                                      else "sha256", days=c.days, not_before=c.not_before, not_after=c.not_after,
                                      subject=dict(c.subject)))
    return specs


def prepare_pki(scenario: m.Scenario, *, force: bool = False, base: Path | None = None) -> LabPKI:
    directory = scenario.certs_dir if scenario.certs_dir.is_absolute() else (base or Path.cwd()) / scenario.certs_dir
    ca = scenario.ca
    if ca is None or scenario.pki != "ca":
        return ensure_lab_pki(directory, scenario.pki, identity_specs(scenario), force=force)
    return ensure_lab_pki(directory, scenario.pki, identity_specs(scenario), force=force,
                          intermediate=ca.intermediate, ca_cn=ca.cn, ca_key=ca.key, ca_hash=ca.hash,
                          ca_days=ca.days, ca_subject=dict(ca.subject))


class LabContext:
    def __init__(self, scenario: m.Scenario, pki: LabPKI, *, port_offset: int = 0,
                 observers: Observers | None = None, connect_timeout: float = 5.0):
        self.scenario = scenario
        self.topology = Topology(scenario)
        self.pki = pki
        self.port_offset = port_offset
        self.observers = observers if observers is not None else Observers()
        #: the TLS key log callback, only when someone asked for keys (--keylog, --capture)
        self.keylog = self.observers.keylog if self.observers else None
        self.connect_timeout = connect_timeout
        #: inbound TLS connections keep a transcript (flights for reports); `sipsim serve` turns it off
        self.server_transcripts = True
        self._contexts: dict[tuple, Any] = {}
        self._server_views: dict[tuple[str, int], ServerView] = {}
        self._server_events: dict[tuple[str, int], trio.Event] = {}

    def describe(self) -> dict[str, Any]:
        """The lab as configured, for reports: what explain and doctor name in their fixes."""
        s, topo = self.scenario, self.topology
        nodes = []
        for node in s.nodes():
            files = self.pki.files(node.cn)
            nodes.append({
                "name": node.name, "cluster": node.cluster, "fqdn": node.fqdn, "address": node.address,
                "port": self.port(topo.listen_ports(node)[0]), "cert_cn": node.cn, "cert_file": str(files.cert),
                "trust": topo.trusted_names(node),
                "trust_files": [str(self.pki.trust_file(cn)) for cn in topo.trusted_names(node)],
                "tls": {"min_version": node.tls.min_version, "max_version": node.tls.max_version,
                        "ciphers": node.tls.ciphers, "groups": node.tls.groups},
                "fault": node.fault.active,
            })
        profiles, trunks = [], []
        for c in s.clusters:
            for p in c.profiles:
                profiles.append({"cluster": c.name, "name": p.name, "mode": p.device_security_mode,
                                 "x509_subject_name": list(p.x509_subject_name), "incoming_port": p.incoming_port,
                                 "subject_mismatch": p.subject_mismatch})
            for t in c.trunks:
                trunks.append({"cluster": c.name, "name": t.name, "security_profile": t.security_profile,
                               "nodes": [n.name for n in topo.trunk_nodes(t)],
                               "destinations": [d.label for d in t.destinations], "distribution": t.distribution,
                               "failover": t.failover, "options_ping": t.options_ping})
        return {"name": s.name, "pki": s.pki, "certs_dir": str(self.pki.directory), "nodes": nodes,
                "profiles": profiles, "trunks": trunks}

    def port(self, port: int) -> int:
        return port + self.port_offset

    # TLS ----------------------------------------------------------------------------------------
    def tls_config(self, node: m.Node, mode: str) -> TLSConfig:
        files = self.pki.files(node.cn)
        trust = list(getattr(self.pki, "endpoint_trust", ()))  # a single endpoint's --trust files
        for cn in self.topology.trusted_names(node):
            path = self.pki.trust_file(cn)
            if path not in trust:
                trust.append(path)
        ec = self.pki.files(node.ec_cn) if node.ec_cn else None
        return TLSConfig(
            ecdsa_cert_file=ec.cert if ec else None, ecdsa_key_file=ec.key if ec else None,
            cert_file=files.cert, key_file=files.key, chain_files=tuple(files.chain),
            trust_files=tuple(trust), min_version=node.tls.min_version, max_version=node.tls.max_version,
            ciphers=node.tls.ciphers, mode=mode, require_peer_cert=True,
            handshake_timeout=node.tls.handshake_timeout, groups=node.tls.groups,
        )

    def _context(self, node: m.Node, mode: str, server_side: bool):
        key = (node.name, mode, server_side)
        ctx = self._contexts.get(key)
        if ctx is None:
            ctx = self._contexts[key] = build_context(self.tls_config(node, mode), server_side)
        return ctx

    def prepare_contexts(self, node: m.Node) -> None:
        """Build the node's TLS contexts now (loading keys costs tens of ms) rather than on the
        first call, so the first call's setup time is the handshake's."""
        modes = {self.topology.profile_of(t).device_security_mode for t in self.topology.trunks_on(node)}
        for mode in modes or {"encrypted"}:
            if mode != "non_secure":
                self._context(node, mode, True)
                self._context(node, mode, False)

    def server_context(self, node: m.Node, candidates: list[tuple[m.Trunk, m.SecurityProfile]]):
        mode = candidates[0][1].device_security_mode if candidates else "encrypted"
        return self._context(node, mode, True)

    def client_context(self, node: m.Node, profile: m.SecurityProfile):
        return self._context(node, profile.device_security_mode, False)

    # what servers refused -------------------------------------------------------------------------
    def note_server_failure(self, remote: tuple[str, int], reason: str, detail: str, node: str,
                            action: str = "tls_alert") -> None:
        key = (remote[0], remote[1])
        self._server_views[key] = ServerView(reason, detail, node, action)
        self._server_events.setdefault(key, trio.Event()).set()
        while len(self._server_views) > 10000:  # a flood of hostile connections: keep the newest verdicts
            old = next(iter(self._server_views))
            del self._server_views[old]
            self._server_events.pop(old, None)

    async def server_view(self, local: tuple[str, int] | None, wait: float = 0.3) -> ServerView | None:
        """The server's verdict on the connection we opened from ``local``, if it refused us."""
        if local is None:
            return None
        key = (local[0], local[1])
        if key not in self._server_views:
            with trio.move_on_after(wait):
                await self._server_events.setdefault(key, trio.Event()).wait()
        return self._server_views.get(key)

    def wire_tap(self, key: tuple, side: str):
        """A TLSStream wire_tap for this connection, or None when nobody records wire bytes (or the
        other side of the same connection already does)."""
        obs = self.observers
        if not obs or not obs.claim(key, side):
            return None
        client, server = key[:2], key[2:]
        obs.connection_opened(key, client, server, time.time())

        def tap(direction: str, data: bytes, t: float) -> None:
            obs.wire(key, side, direction, data, t)

        tap.key, tap.side = key, side  # type: ignore[attr-defined]
        return tap

    def tap_closed(self, tap) -> None:
        if tap is not None:
            self.observers.connection_closed(tap.key, tap.side, time.time())
