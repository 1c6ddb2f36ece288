"""The scenario model: what a lab is made of, in CUCM's words. Pure data, no I/O."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

SECURITY_MODES = ("non_secure", "authenticated", "encrypted")
SUBJECT_MISMATCH_ACTIONS = ("tls_alert", "close", "drop", "sip_403", "sip_503")
DISTRIBUTIONS = ("round_robin", "random", "ordered", "weighted", "call_id_hash")
TLS_VERSIONS = ("1.0", "1.1", "1.2", "1.3")
PHONE_BEHAVIOURS = ("answer", "busy", "reject", "no_answer")
#: causes that move a call to the next destination when failover is on ("tls" = any tls_* reason)
FAILOVER_CAUSES = ("connect_refused", "connect_failed", "timeout", "tls", "subject_not_allowed", "503")


@dataclass(frozen=True)
class CertSpec:
    """A node's CallManager identity certificate."""

    key: str = "rsa2048"
    hash: str = "sha256"
    days: int = 3650
    sans: tuple[str, ...] = ()
    cn: str | None = None  # default: the node's FQDN
    not_before: str | None = None  # ISO date, for mismatch labs (e.g. an expired certificate)
    not_after: str | None = None
    subject: tuple[tuple[str, str], ...] = ()  # extra attributes: OU, O, L, ST, C
    ecdsa: bool = False  # also a CallManager-ECDSA identity (CUCM 11.0+), CN "<host>-EC[.domain]"
    ecdsa_key: str = "ec-p256"


@dataclass(frozen=True)
class NodeTLS:
    min_version: str = "1.2"
    max_version: str = "1.3"
    ciphers: str | None = None  # OpenSSL list or a CUCM preset name; None = the mode's default
    handshake_timeout: float = 10.0
    groups: str | None = None  # OpenSSL key exchange group list; None = sipsim.tls.config.DEFAULT_GROUPS


@dataclass(frozen=True)
class NodeLimits:
    """What one node accepts from its peers at once (docs/robustness.md)."""

    max_connections: int = 1000  # open connections (inbound and outbound); beyond: accepted and closed
    max_handshakes: int = 100  # TLS handshakes in progress; beyond: wait (within handshake_timeout), then close
    max_message_bytes: int = 65536  # one SIP message; beyond: 413 (when it can be answered) and close
    max_queued_bytes: int = 4 * 1024 * 1024  # outbound bytes queued on one connection; beyond: close


@dataclass(frozen=True)
class Fault:
    """Misbehaviour injected into a node (reported as injected)."""

    refuse_connections: bool = False  # nothing listens: connect_refused
    stall: bool = False  # accept TCP, never answer the handshake: timeout
    close_after_handshake: bool = False  # finish TLS, then close
    answer_503: bool = False  # every INVITE and OPTIONS gets 503 Service Unavailable
    reject_every_nth: int = 0  # every Nth INVITE gets 503

    @property
    def active(self) -> list[str]:
        names = [n for n in ("refuse_connections", "stall", "close_after_handshake", "answer_503") if getattr(self, n)]
        if self.reject_every_nth:
            names.append(f"reject_every_nth={self.reject_every_nth}")
        return names


@dataclass(frozen=True)
class Node:
    name: str
    cluster: str
    fqdn: str
    address: str
    cert: CertSpec = CertSpec()
    tls: NodeTLS = NodeTLS()
    trust: tuple[str, ...] | None = None  # None = automatic (the seed's upload steps)
    trust_exclude: tuple[str, ...] = ()
    fault: Fault = Fault()
    limits: NodeLimits = NodeLimits()

    @property
    def cn(self) -> str:
        return self.cert.cn or self.fqdn

    @property
    def ec_cn(self) -> str | None:
        """CN of the node's CallManager-ECDSA certificate (CUCM appends -EC to the host name)."""
        if not self.cert.ecdsa:
            return None
        host, dot, domain = self.fqdn.partition(".")
        return f"{host}-EC{dot}{domain}"


@dataclass(frozen=True)
class SecurityProfile:
    name: str
    device_security_mode: str = "encrypted"
    incoming_transport: str = "TLS"
    outgoing_transport: str = "TLS"
    x509_subject_name: tuple[str, ...] = ()
    incoming_port: int = 5061
    transmit_security_status: bool = False
    subject_mismatch: str = "tls_alert"
    wildcards: bool = False
    any_subject: bool = False  # single endpoint without --subjects: any peer whose chain verifies


@dataclass(frozen=True)
class Destination:
    host: str
    port: int = 5060
    sort_order: int = 1
    weight: int = 1

    @property
    def label(self) -> str:
        return f"{self.host}:{self.port}"


@dataclass(frozen=True)
class SrvRecord:
    """One target of a DNS SRV name in the lab's own SRV table."""

    name: str  # e.g. _sips._tcp.cluster1.lab
    target: str
    port: int = 5061
    priority: int = 10
    weight: int = 10


@dataclass(frozen=True)
class Trunk:
    name: str
    cluster: str
    security_profile: str
    callmanager_group: tuple[str, ...]
    destinations: tuple[Destination, ...]
    run_on_all_active_nodes: bool = False
    distribution: str = "round_robin"
    srtp_allowed: bool = False
    failover: bool = False  # [unknown in CUCM] try the next destination when an attempt fails
    failover_on: tuple[str, ...] = FAILOVER_CAUSES
    max_attempts: int = 16
    srv: str | None = None  # "Destination Address is an SRV": one name from the lab's [[srv]] table
    options_ping: bool = False
    ping_interval: float = 60.0
    ping_interval_out_of_service: float = 120.0
    ping_retry_timer: float = 0.5
    ping_retry_count: int = 6


@dataclass(frozen=True)
class RoutePatternSpec:
    pattern: str
    trunk: str
    partition: str = ""


@dataclass(frozen=True)
class Phone:
    dn: str
    node: str
    cluster: str
    behaviour: str = "answer"
    answer_delay: float = 0.0


@dataclass
class Cluster:
    name: str
    version: str = ""
    domain: str = ""
    nodes: list[Node] = field(default_factory=list)
    profiles: list[SecurityProfile] = field(default_factory=list)
    trunks: list[Trunk] = field(default_factory=list)
    route_patterns: list[RoutePatternSpec] = field(default_factory=list)
    phones: list[Phone] = field(default_factory=list)


@dataclass(frozen=True)
class CallSpec:
    caller: str
    called: str
    hold: float | None = None  # None = the run's hold time
    repeat: int = 1


@dataclass(frozen=True)
class CASpec:
    """The lab CA of a CA-signed lab (seed 003)."""

    cn: str = "sipsim Lab Root CA"
    subject: tuple[tuple[str, str], ...] = ()
    key: str = "rsa2048"
    hash: str = "sha256"
    days: int = 3650
    intermediate: bool = False


@dataclass(frozen=True)
class TrafficBlock:
    """Calls placed together: the explicit [[call]] list, or one generated [[load]]."""

    calls: tuple[CallSpec, ...]
    concurrency: int = 1
    interval: float = 0.0  # seconds between call starts (1/rate)
    name: str = "calls"


@dataclass(frozen=True)
class RunSettings:
    hold: float = 0.0  # seconds a call stays up before the caller hangs up
    interval: float = 0.0  # seconds between call starts
    concurrency: int = 1  # calls in progress at once
    call_timeout: float = 32.0  # Timer B (64·T1)
    no_answer_timeout: float = 180.0  # the caller gives up (CANCEL) after this; CUCM's INVITE Expires
    seed: int = 1


@dataclass
class Scenario:
    name: str
    path: Path
    description: str = ""
    pki: str = "self-signed"
    certs_dir: Path = Path("certs")
    ca: "CASpec | None" = None
    clusters: list[Cluster] = field(default_factory=list)
    calls: list[CallSpec] = field(default_factory=list)
    loads: list[TrafficBlock] = field(default_factory=list)
    run: RunSettings = RunSettings()
    expect: dict = field(default_factory=dict)
    srv: dict[str, list[SrvRecord]] = field(default_factory=dict)  # the lab's DNS SRV table

    def traffic(self) -> list[TrafficBlock]:
        """Everything to place, in order: the [[call]] list first, then each [[load]]."""
        blocks = []
        if self.calls:
            calls = tuple(c for c in self.calls for _ in range(max(1, c.repeat)))
            blocks.append(TrafficBlock(calls, self.run.concurrency, self.run.interval, "calls"))
        return blocks + list(self.loads)

    # lookups -----------------------------------------------------------------------------------
    def nodes(self) -> list[Node]:
        return [n for c in self.clusters for n in c.nodes]

    def node(self, name: str) -> Node:
        for n in self.nodes():
            if n.name == name:
                return n
        raise KeyError(name)

    def cluster(self, name: str) -> Cluster:
        for c in self.clusters:
            if c.name == name:
                return c
        raise KeyError(name)

    def phone(self, dn: str) -> Phone | None:
        for c in self.clusters:
            for p in c.phones:
                if p.dn == dn:
                    return p
        return None

    def profile(self, cluster: str, name: str) -> SecurityProfile:
        for p in self.cluster(cluster).profiles:
            if p.name == name:
                return p
        raise KeyError(name)
