"""What follows from a scenario: where names resolve, who trusts whom, which trunks run where.

Trust follows seed 000's upload steps: every node that can open a TLS connection to another node (a
trunk running on it has a destination that resolves to that node) and that node must trust each
other's CallManager certificate (self-signed) — or, with a CA-signed lab, the CA root (seed 003).
"""

from __future__ import annotations

import ipaddress
import random
from dataclasses import dataclass

from sipsim.lab import model as m


@dataclass(frozen=True)
class Resolved:
    address: str
    port: int
    node: m.Node | None  # None: the address belongs to no node of the lab


class DnsFailure(LookupError):
    """A destination host name that the lab's own host table cannot resolve (CUCM: Local=3)."""


class Topology:
    def __init__(self, scenario: m.Scenario):
        self.scenario = scenario
        self._by_name: dict[str, m.Node] = {}
        self._by_address: dict[str, m.Node] = {}
        self._node: dict[str, m.Node] = {}  # exact node names (the scenario's references)
        self._trunk_nodes: dict[tuple[str, str], list[m.Node]] = {}  # once per trunk: asked per call
        self._trunks_on: dict[str, list[m.Trunk]] = {}
        self._inbound: dict[tuple[str, int], list[tuple[m.Trunk, m.SecurityProfile]]] = {}
        for node in scenario.nodes():
            self._node.setdefault(node.name, node)
            self._by_name[node.fqdn.casefold()] = node
            self._by_name[node.name.casefold()] = node
            self._by_address[node.address] = node

    # names ----------------------------------------------------------------------------------
    def resolve(self, dest: m.Destination) -> Resolved:
        host = dest.host
        try:
            ipaddress.ip_address(host)
        except ValueError:
            node = self._by_name.get(host.casefold())
            if node is None:
                raise DnsFailure(host) from None
            return Resolved(node.address, dest.port, node)
        return Resolved(host, dest.port, self._by_address.get(host))

    def destinations(self, trunk: m.Trunk) -> list[m.Destination]:
        """The trunk's destinations: as configured, or its SRV name's targets (by priority)."""
        if not trunk.srv:
            return list(trunk.destinations)
        records = sorted(self.scenario.srv.get(trunk.srv, []), key=lambda r: r.priority)
        return [m.Destination(r.target, r.port, r.priority, r.weight) for r in records]

    def node_at(self, address: str) -> m.Node | None:
        return self._by_address.get(address)

    # trunks -------------------------------------------------------------------------------------
    def trunk_nodes(self, trunk: m.Trunk) -> list[m.Node]:
        """The nodes a trunk runs on: its device pool's CallManager group, or every node of the
        cluster with "Run on all active Unified CM nodes"."""
        key = (trunk.cluster, trunk.name)
        nodes = self._trunk_nodes.get(key)
        if nodes is None:
            cluster = self.scenario.cluster(trunk.cluster)
            if trunk.run_on_all_active_nodes:
                nodes = list(cluster.nodes)
            else:
                nodes = [self.scenario.node(n) for n in trunk.callmanager_group]
            self._trunk_nodes[key] = nodes
        return list(nodes)

    def trunks_on(self, node: m.Node) -> list[m.Trunk]:
        found = self._trunks_on.get(node.name)
        if found is None:  # once per node: asked for every inbound connection
            cluster = self.scenario.cluster(node.cluster)
            found = self._trunks_on[node.name] = [t for t in cluster.trunks if node in self.trunk_nodes(t)]
        return list(found)

    def profile_of(self, trunk: m.Trunk) -> m.SecurityProfile:
        return self.scenario.profile(trunk.cluster, trunk.security_profile)

    def listen_ports(self, node: m.Node) -> list[int]:
        ports = {self.profile_of(t).incoming_port for t in self.trunks_on(node)}
        return sorted(ports) or [5061]

    def inbound_trunks(self, node: m.Node, port: int) -> list[tuple[m.Trunk, m.SecurityProfile]]:
        key = (node.name, port)
        found = self._inbound.get(key)
        if found is None:  # once per (node, port): asked for every inbound connection
            found = self._inbound[key] = [(t, p) for t in self.trunks_on(node)
                                          if (p := self.profile_of(t)).incoming_port == port]
        return list(found)

    def origin_node(self, trunk: m.Trunk, phone: m.Phone, rng: random.Random) -> tuple[m.Node, str]:
        """Which node sends a call from ``phone`` over ``trunk``, and why (for the trace)."""
        nodes = self.trunk_nodes(trunk)
        home = self._node.get(phone.node) or self.scenario.node(phone.node)
        if home in nodes:
            rule = "run on all active nodes: the calling phone's node" if trunk.run_on_all_active_nodes else \
                "the calling phone's node is in the trunk's CallManager group"
            return home, rule
        choice = rng.choice(nodes)
        return choice, "the calling phone's node is not in the trunk's CallManager group: a node of the group at random"

    # trust --------------------------------------------------------------------------------------
    def peers(self) -> set[frozenset[str]]:
        """Pairs of node names that may open TLS connections to each other."""
        pairs: set[frozenset[str]] = set()
        for cluster in self.scenario.clusters:
            for trunk in cluster.trunks:
                for origin in self.trunk_nodes(trunk):
                    for dest in self.destinations(trunk):
                        try:
                            target = self.resolve(dest).node
                        except DnsFailure:
                            continue
                        if target is not None and target.name != origin.name:
                            pairs.add(frozenset((origin.name, target.name)))
        return pairs

    def trusted_names(self, node: m.Node) -> list[str]:
        """The CNs whose certificates (or CAs) this node holds as CallManager-trust."""
        if node.trust is not None:
            names = list(node.trust)
        else:
            names = []
            for pair in sorted(self.peers(), key=sorted):
                if node.name in pair:
                    (other,) = pair - {node.name}
                    peer = self.scenario.node(other)
                    names.append(peer.cn)
                    if peer.ec_cn:  # its CallManager-ECDSA certificate is uploaded too
                        names.append(peer.ec_cn)
        excluded = {e.casefold() for e in node.trust_exclude}
        return [n for n in names if n.casefold() not in excluded]
