"""One sipsim endpoint from command-line flags (`serve`, `call`, `ping`) — against real equipment or
another sipsim — built as a one-node lab so it runs on the same runtime as the labs.

The node's identity and CallManager-trust come from the user's files (`--cert`, `--key`, `--trust`);
its security profile's X.509 Subject Name from `--subjects` (without it, any peer whose chain
verifies is accepted, and sipsim says so).
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass, field
from pathlib import Path

from sipsim.errors import UserError
from sipsim.lab import model as m
from sipsim.lab.subjects import parse_subject_list
from sipsim.pki.files import check_key_file_mode, load_certificates
from sipsim.pki.material import NodeFiles

NODE = "sipsim"
TRUNK = "endpoint"
PROFILE = "endpoint"


@dataclass
class EndpointPKI:
    """The user's own certificate, key and trust files, in the shape the runtime expects."""

    cert: Path
    key: Path
    chain: tuple[Path, ...] = ()
    endpoint_trust: tuple[Path, ...] = ()
    events: list[str] = field(default_factory=list)

    @property
    def directory(self) -> Path:
        return self.cert.parent

    def files(self, cn: str) -> NodeFiles:
        return NodeFiles(self.cert, self.key, self.chain)

    def trust_file(self, cn: str) -> Path:
        raise KeyError(cn)  # a single endpoint trusts exactly its --trust files


def endpoint_pki(cert: Path, key: Path, trust: list[Path], chain: list[Path] | None = None) -> tuple[EndpointPKI, str]:
    """Check the files a user gave and return them with the certificate's CN."""
    if not trust:
        raise UserError("give at least one --trust FILE: the peer's certificate or its CA (CallManager-trust); "
                        "sipsim always verifies the peer")
    check_key_file_mode(key)
    certs = load_certificates(cert)
    for path in list(trust) + list(chain or []):
        load_certificates(path)
    from cryptography.x509.oid import NameOID

    names = certs[0].subject.get_attributes_for_oid(NameOID.COMMON_NAME)
    cn = str(names[0].value) if names else cert.stem
    return EndpointPKI(cert, key, tuple(chain or ()), tuple(trust)), cn


def parse_hostport(text: str, default_port: int = 5061, what: str = "--listen") -> tuple[str, int]:
    host, sep, port = text.rpartition(":")
    if not sep:
        host, port = text, str(default_port)
    host = host.strip("[]")
    if not port.isdigit() or not 0 < int(port) < 65536:
        raise UserError(f"{what} {text!r}: the port must be a number from 1 to 65535")
    return host, int(port)


def parse_sip_uri(uri: str) -> tuple[str | None, str, int]:
    """``sip:DN@HOST:PORT`` (or ``sips:``) → (DN or None, host, port; 5061 by default)."""
    rest = uri
    for scheme in ("sips:", "sip:"):
        if rest.lower().startswith(scheme):
            rest = rest[len(scheme):]
            break
    else:
        raise UserError(f"{uri!r} is not a SIP URI: write sip:DN@HOST:PORT (e.g. sip:8511001@127.0.0.21:5061)")
    rest = rest.split(";", 1)[0]
    user, _, hostport = rest.rpartition("@")
    host, port = parse_hostport(hostport, 5061, "the URI's host")
    if not host:
        raise UserError(f"{uri!r} has no host: write sip:DN@HOST:PORT")
    return (user or None), host, port


@dataclass
class EndpointSettings:
    address: str
    port: int
    cert_cn: str
    subjects: list[str] | None  # None: any verified peer
    tls_min: str = "1.2"
    tls_max: str = "1.3"
    ciphers: str | None = None
    mode: str = "encrypted"
    handshake_timeout: float = 10.0
    subject_mismatch: str = "tls_alert"
    groups: str | None = None  # OpenSSL key exchange group list; None = the default
    limits: m.NodeLimits = m.NodeLimits()


def endpoint_scenario(s: EndpointSettings, *, target: tuple[str, int] | None = None, caller: str | None = None,
                      calls: list[m.CallSpec] | None = None, concurrency: int = 1, interval: float = 0.0,
                      hold: float = 0.0, seed: int = 1) -> m.Scenario:
    for version in (s.tls_min, s.tls_max):
        if version not in m.TLS_VERSIONS:
            raise UserError(f"TLS version {version!r}: use one of {', '.join(m.TLS_VERSIONS)}")
    try:
        ipaddress.ip_address(s.address)
    except ValueError:
        raise UserError(f"{s.address!r} is not an IP address to bind: give --listen/--local as an address") from None
    node = m.Node(name=NODE, cluster=NODE, fqdn=s.cert_cn, address=s.address, cert=m.CertSpec(cn=s.cert_cn),
                  tls=m.NodeTLS(s.tls_min, s.tls_max, s.ciphers, s.handshake_timeout, groups=s.groups), trust=(),
                  limits=s.limits)
    profile = m.SecurityProfile(
        name=PROFILE, device_security_mode=s.mode, x509_subject_name=tuple(s.subjects or ()),
        incoming_port=s.port, subject_mismatch=s.subject_mismatch, any_subject=s.subjects is None)
    dests = (m.Destination(target[0], target[1]),) if target else (m.Destination("0.0.0.0", 1),)
    trunk = m.Trunk(name=TRUNK, cluster=NODE, security_profile=PROFILE, callmanager_group=(NODE,),
                    destinations=dests)
    cluster = m.Cluster(name=NODE, nodes=[node], profiles=[profile], trunks=[trunk])
    if caller:
        cluster.phones.append(m.Phone(dn=caller, node=NODE, cluster=NODE))
    scenario = m.Scenario(name="sipsim", path=Path("<flags>"), clusters=[cluster],
                          run=m.RunSettings(hold=hold, concurrency=concurrency, interval=interval, seed=seed))
    if calls:
        scenario.loads.append(m.TrafficBlock(tuple(calls), concurrency, interval, "calls"))
    return scenario


def subjects_from_flag(text: str | None) -> list[str] | None:
    if text is None or text.strip().lower() == "any":
        return None
    names = parse_subject_list(text)
    if not names:
        raise UserError("--subjects is empty: list the peer's names (CN or SAN), or 'any'")
    return names


def limits_from_flags(base: m.NodeLimits, *, max_connections: int | None = None, max_handshakes: int | None = None,
                      max_message_bytes: int | None = None) -> m.NodeLimits:
    """A node's limits with the flags given (None: keep the node's)."""
    import dataclasses

    given = {k: v for k, v in (("max_connections", max_connections), ("max_handshakes", max_handshakes),
                               ("max_message_bytes", max_message_bytes)) if v is not None}
    for key, value in given.items():
        if value < (1024 if key == "max_message_bytes" else 1):
            flag = "--" + key.replace("_", "-")
            raise UserError(f"{flag} {value}: use at least {1024 if key == 'max_message_bytes' else 1}")
    return dataclasses.replace(base, **given)
