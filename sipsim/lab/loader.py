"""Read a scenario TOML file into the model, with one clear line for every mistake.

Every error names the file, the place (cluster, node, trunk…), the field and what to do.
Unknown fields are errors (a typo must not silently fall back to a default).
"""

from __future__ import annotations

import difflib
import ipaddress
import tomllib
from pathlib import Path
from typing import Any

from sipsim.errors import UserError
from sipsim.lab import model as m
from sipsim.lab.expect import validate as validate_expect
from sipsim.lab.routing import PatternError, RoutePattern
from sipsim.lab.subjects import SubjectListError, parse_subject_list

MAX_DESTINATIONS = 16
KEYS = ("rsa1024", "rsa2048", "rsa3072", "rsa4096", "ec-p256", "ec-p384")
HASHES = ("sha1", "sha256", "sha384")


class _Section:
    """A TOML table being read; remembers where it is for error messages."""

    def __init__(self, path: Path, where: str, data: dict[str, Any]):
        self.path, self.where, self.data = path, where, data
        self.used: set[str] = set()

    def fail(self, field: str | None, problem: str) -> UserError:
        place = f"{self.where}: " if self.where else ""
        fld = f"field '{field}' " if field else ""
        return UserError(f"{self.path}: {place}{fld}{problem}")

    def get(self, key: str, kind: type | tuple[type, ...], default: Any = ..., *, choices=None) -> Any:
        self.used.add(key)
        if key not in self.data:
            if default is ...:
                typo = difflib.get_close_matches(key, [k for k in self.data if isinstance(k, str)], n=1)
                if typo:
                    raise self.fail(typo[0], f"is not a scenario field: did you mean '{key}'?")
                raise self.fail(key, "is missing: add it")
            return default
        value = self.data[key]
        kinds = kind if isinstance(kind, tuple) else (kind,)
        if float in kinds and isinstance(value, int) and not isinstance(value, bool):
            value = float(value)
        if bool not in kinds and isinstance(value, bool) or not isinstance(value, kinds):
            names = " or ".join(k.__name__.replace("str", "text").replace("dict", "table") for k in kinds)
            raise self.fail(key, f"must be {names}, not {value!r}")
        if choices is not None and value not in choices:
            raise self.fail(key, f"is {value!r}; use one of: {', '.join(choices)}")
        return value

    def tables(self, key: str) -> list[dict[str, Any]]:
        self.used.add(key)
        value = self.data.get(key, [])
        if isinstance(value, dict):
            value = [value]
        if not isinstance(value, list) or not all(isinstance(v, dict) for v in value):
            raise self.fail(key, f"must be a list of tables ([[{key}]])")
        return value

    def done(self) -> None:
        for key in self.data:
            if key not in self.used:
                hint = difflib.get_close_matches(key, sorted(self.used), n=1)
                tip = f"did you mean '{hint[0]}'?" if hint else "remove it (see docs/scenarios.md)"
                raise self.fail(key, f"is not a scenario field: {tip}")


def _checked_groups(section: _Section, groups: str) -> str:
    """A [tls] groups value OpenSSL can use (OpenSSL decides which names it knows), or a one-line error."""
    # the TLS engine (OpenSSL) is imported only for a scenario that sets groups
    from sipsim.tls.config import DEFAULT_GROUPS
    from sipsim.tls.context import groups_problem

    if not groups.strip():
        raise section.fail("groups", f"is empty: give key exchange groups separated by ':', or leave it out "
                                     f"(default {DEFAULT_GROUPS})")
    problem = groups_problem(groups.strip())
    if problem:
        raise section.fail("groups", f"is {groups!r}: {problem}")
    return groups.strip()


def _loopback(section: _Section, field: str, value: str) -> str:
    try:
        ip = ipaddress.ip_address(value)
    except ValueError:
        raise section.fail(field, f"{value!r} is not an IP address: use 127.0.0.x or ::1") from None
    if not ip.is_loopback:
        raise section.fail(field, f"{value} is not a loopback address: sipsim labs run on 127.0.0.0/8 or ::1 only")
    return value


def load_scenario(path: str | Path) -> m.Scenario:
    path = Path(path)
    try:
        raw = tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise UserError(f"{path}: no such scenario file (see scenarios/ for examples)") from None
    except tomllib.TOMLDecodeError as e:
        raise UserError(f"{path}: not valid TOML: {e}") from None
    except (OSError, UnicodeDecodeError) as e:
        raise UserError(f"{path}: cannot read it: {e}") from None
    return _scenario(path, raw)


def _scenario(path: Path, raw: dict[str, Any]) -> m.Scenario:
    top = _Section(path, "", raw)
    lab = _Section(path, "[lab]", top.get("lab", dict, {}))
    name = lab.get("name", str, path.stem)
    scenario = m.Scenario(
        name=name,
        path=path,
        description=lab.get("description", str, ""),
        pki=lab.get("pki", str, "self-signed", choices=("self-signed", "ca")),
        certs_dir=Path(lab.get("certs_dir", str, f"certs/{name}")),
    )
    ca = _Section(path, "[lab.ca]", lab.get("ca", dict, {}))
    scenario.ca = m.CASpec(
        cn=ca.get("cn", str, "sipsim Lab Root CA"),
        subject=tuple(sorted(ca.get("subject", dict, {}).items())),
        key=ca.get("key", str, "rsa2048", choices=KEYS),
        hash=ca.get("hash", str, "sha256", choices=HASHES),
        days=ca.get("days", int, 3650),
        intermediate=ca.get("intermediate", bool, False),
    )
    ca.done()
    lab.done()

    run = _Section(path, "[run]", top.get("run", dict, {}))
    scenario.run = m.RunSettings(
        hold=run.get("hold", float, 0.0),
        interval=run.get("interval", float, 0.0),
        concurrency=run.get("concurrency", int, 1),
        call_timeout=run.get("call_timeout", float, 32.0),
        no_answer_timeout=run.get("no_answer_timeout", float, 180.0),
        seed=run.get("seed", int, 1),
    )
    if scenario.run.concurrency < 1:
        raise run.fail("concurrency", "must be at least 1")
    run.done()

    for i, rec in enumerate(top.tables("srv")):
        sec = _Section(path, f"[[srv]] #{i + 1}", rec)
        r = m.SrvRecord(name=sec.get("name", str).lower().rstrip("."), target=sec.get("target", str),
                        port=sec.get("port", int, 5061), priority=sec.get("priority", int, 10),
                        weight=sec.get("weight", int, 10))
        sec.done()
        scenario.srv.setdefault(r.name, []).append(r)
    for i, craw in enumerate(top.tables("cluster")):
        scenario.clusters.append(_cluster(path, i, craw))
    if not scenario.clusters:
        raise top.fail(None, "has no [[cluster]]: a lab needs at least one cluster with a node")

    for i, call in enumerate(top.tables("call")):
        sec = _Section(path, f"[[call]] #{i + 1}", call)
        scenario.calls.append(
            m.CallSpec(
                caller=str(sec.get("from", (str, int))),
                called=str(sec.get("to", (str, int))),
                hold=sec.get("hold", float, None),
                repeat=sec.get("repeat", int, 1),
            )
        )
        sec.done()
    for i, load in enumerate(top.tables("load")):
        scenario.loads.append(_load(path, i, load, scenario.run))
    scenario.expect = top.get("expect", dict, {})
    validate_expect(scenario.expect, path)
    top.done()
    _check_references(scenario)
    return scenario


def _load(path: Path, index: int, raw: dict[str, Any], run: m.RunSettings) -> m.TrafficBlock:
    sec = _Section(path, f"[[load]] #{index + 1}", raw)
    callers = sec.get("from", (str, int, list))
    called = sec.get("to", (str, int, list))
    callers = [str(x) for x in callers] if isinstance(callers, list) else [str(callers)]
    called = [str(x) for x in called] if isinstance(called, list) else [str(called)]
    if not callers or not called:
        raise sec.fail("from" if not callers else "to", "must name at least one number")
    count = sec.get("count", int)
    if not 1 <= count <= 1_000_000:
        raise sec.fail("count", "must be 1 to 1,000,000")
    rate = sec.get("rate", float, 0.0)
    concurrency = sec.get("concurrency", int, 1)
    if concurrency < 1:
        raise sec.fail("concurrency", "must be at least 1")
    hold = sec.get("hold", float, None)
    sec.done()
    calls = tuple(m.CallSpec(callers[i % len(callers)], called[i % len(called)], hold) for i in range(count))
    return m.TrafficBlock(calls, concurrency, 1.0 / rate if rate > 0 else 0.0, f"load #{index + 1}")


def _cluster(path: Path, index: int, raw: dict[str, Any]) -> m.Cluster:
    sec = _Section(path, f"[[cluster]] #{index + 1}", raw)
    cluster = m.Cluster(name=sec.get("name", str))
    sec.where = f'cluster "{cluster.name}"'
    cluster.version = sec.get("version", str, "")
    cluster.domain = sec.get("domain", str, "")
    for nraw in sec.tables("node"):
        cluster.nodes.append(_node(path, cluster, nraw))
    for praw in sec.tables("security_profile"):
        cluster.profiles.append(_profile(path, cluster, praw))
    for traw in sec.tables("trunk"):
        cluster.trunks.append(_trunk(path, cluster, traw))
    for rraw in sec.tables("route_pattern"):
        rs = _Section(path, f'cluster "{cluster.name}" route pattern', rraw)
        spec = m.RoutePatternSpec(
            pattern=str(rs.get("pattern", (str, int))),
            trunk=rs.get("trunk", str),
            partition=rs.get("partition", str, ""),
        )
        rs.where = f'cluster "{cluster.name}" route pattern "{spec.pattern}"'
        try:
            RoutePattern(spec.pattern)
        except PatternError as e:
            raise rs.fail("pattern", f"{e}") from None
        rs.done()
        cluster.route_patterns.append(spec)
    for phraw in sec.tables("phone"):
        ps = _Section(path, f'cluster "{cluster.name}" phone', phraw)
        phone = m.Phone(
            dn=str(ps.get("dn", (str, int))),
            node=ps.get("node", str),
            cluster=cluster.name,
            behaviour=ps.get("behaviour", str, "answer", choices=m.PHONE_BEHAVIOURS),
            answer_delay=ps.get("answer_delay", float, 0.0),
        )
        ps.done()
        cluster.phones.append(phone)
    if not cluster.nodes:
        raise sec.fail("node", "is missing: add at least one [[cluster.node]]")
    sec.done()
    return cluster


def _node(path: Path, cluster: m.Cluster, raw: dict[str, Any]) -> m.Node:
    sec = _Section(path, f'cluster "{cluster.name}" node', raw)
    name = sec.get("name", str)
    sec.where = f'cluster "{cluster.name}" node "{name}"'
    fqdn = sec.get("fqdn", str, f"{name}.{cluster.domain}" if cluster.domain else name)
    address = _loopback(sec, "address", sec.get("address", str))
    cert = _Section(path, f"{sec.where} [cert]", sec.get("cert", dict, {}))
    cert_spec = m.CertSpec(
        key=cert.get("key", str, "rsa2048", choices=KEYS),
        hash=cert.get("hash", str, "sha256", choices=HASHES),
        days=cert.get("days", int, 3650),
        sans=tuple(cert.get("sans", list, [])),
        cn=cert.get("cn", str, None),
        not_before=cert.get("not_before", str, None),
        not_after=cert.get("not_after", str, None),
        subject=tuple(sorted(cert.get("subject", dict, {}).items())),
        ecdsa=cert.get("ecdsa", bool, False),
        ecdsa_key=cert.get("ecdsa_key", str, "ec-p256", choices=("ec-p256", "ec-p384")),
    )
    cert.done()
    tls = _Section(path, f"{sec.where} [tls]", sec.get("tls", dict, {}))
    groups = tls.get("groups", str, None)
    if groups is not None:
        groups = _checked_groups(tls, groups)
    tls_spec = m.NodeTLS(
        min_version=tls.get("min_version", str, "1.2", choices=m.TLS_VERSIONS),
        max_version=tls.get("max_version", str, "1.3", choices=m.TLS_VERSIONS),
        ciphers=tls.get("ciphers", str, None),
        handshake_timeout=tls.get("handshake_timeout", float, 10.0),
        groups=groups,
    )
    if m.TLS_VERSIONS.index(tls_spec.min_version) > m.TLS_VERSIONS.index(tls_spec.max_version):
        raise tls.fail("min_version", f"{tls_spec.min_version} is above max_version {tls_spec.max_version}")
    tls.done()
    fault = _Section(path, f"{sec.where} [fault]", sec.get("fault", dict, {}))
    fault_spec = m.Fault(
        refuse_connections=fault.get("refuse_connections", bool, False),
        stall=fault.get("stall", bool, False),
        close_after_handshake=fault.get("close_after_handshake", bool, False),
        answer_503=fault.get("answer_503", bool, False),
        reject_every_nth=fault.get("reject_every_nth", int, 0),
    )
    fault.done()
    lim = _Section(path, f"{sec.where} [limits]", sec.get("limits", dict, {}))
    defaults = m.NodeLimits()
    limits = m.NodeLimits(**{
        key: lim.get(key, int, getattr(defaults, key))
        for key in ("max_connections", "max_handshakes", "max_message_bytes", "max_queued_bytes")
    })
    for key in ("max_connections", "max_handshakes", "max_message_bytes", "max_queued_bytes"):
        if getattr(limits, key) < 1:
            raise lim.fail(key, "must be at least 1")
    if limits.max_message_bytes < 1024:
        raise lim.fail("max_message_bytes", "must be at least 1024 (an INVITE with SDP is about 1 KB)")
    lim.done()
    trust = sec.get("trust", (str, list), "auto")
    if trust == "auto":
        trust_names = None
    elif isinstance(trust, list):
        trust_names = tuple(str(t) for t in trust)
    else:
        raise sec.fail("trust", 'must be "auto" or a list of certificate CNs')
    node = m.Node(
        name=name,
        cluster=cluster.name,
        fqdn=fqdn,
        address=address,
        cert=cert_spec,
        tls=tls_spec,
        trust=trust_names,
        trust_exclude=tuple(sec.get("trust_exclude", list, [])),
        fault=fault_spec,
        limits=limits,
    )
    sec.done()
    return node


def _profile(path: Path, cluster: m.Cluster, raw: dict[str, Any]) -> m.SecurityProfile:
    sec = _Section(path, f'cluster "{cluster.name}" security profile', raw)
    name = sec.get("name", str)
    sec.where = f'cluster "{cluster.name}" security profile "{name}"'
    try:
        names = tuple(parse_subject_list(sec.get("x509_subject_name", str, "")))
    except SubjectListError as e:
        raise sec.fail("x509_subject_name", str(e)) from None
    mode = sec.get("device_security_mode", str, "encrypted", choices=m.SECURITY_MODES)
    plain = mode == "non_secure"  # CUCM's Non Secure profile: TCP+UDP in, TCP out, port 5060
    incoming = sec.get("incoming_transport", str, "TCP+UDP" if plain else "TLS",
                       choices=("TLS", "TCP", "TCP+UDP", "UDP"))
    outgoing = sec.get("outgoing_transport", str, "TCP" if plain else "TLS", choices=("TLS", "TCP", "UDP"))
    if mode != "non_secure":
        incoming = "TLS"  # CUCM: effectively TLS when Authenticated or Encrypted
    profile = m.SecurityProfile(
        name=name,
        device_security_mode=mode,
        incoming_transport=incoming,
        outgoing_transport=outgoing,
        x509_subject_name=names,
        incoming_port=sec.get("incoming_port", int, 5061 if incoming == "TLS" else 5060),
        transmit_security_status=sec.get("transmit_security_status", bool, False),
        subject_mismatch=sec.get("subject_mismatch", str, "tls_alert", choices=m.SUBJECT_MISMATCH_ACTIONS),
        wildcards=sec.get("wildcards", bool, False),
    )
    if profile.incoming_transport == "TLS" and not names:
        raise sec.fail("x509_subject_name", "is empty: a TLS profile must list the peer's node names (CN or SAN)")
    sec.done()
    return profile


def _destination(sec: _Section, index: int, raw: Any) -> m.Destination:
    if isinstance(raw, str):
        host, sep, port = raw.rpartition(":")
        if not sep or not port.isdigit():
            host, port = raw, "5060"
        return m.Destination(host=host.strip("[]"), port=int(port), sort_order=index + 1)
    if isinstance(raw, dict):
        d = _Section(sec.path, f"{sec.where} destination #{index + 1}", raw)
        dest = m.Destination(
            host=d.get("address", str),
            port=d.get("port", int, 5060),
            sort_order=d.get("sort_order", int, index + 1),
            weight=d.get("weight", int, 1),
        )
        d.done()
        return dest
    raise sec.fail("destinations", f'entry #{index + 1} must be "host:port" or a table, not {raw!r}')


def _trunk(path: Path, cluster: m.Cluster, raw: dict[str, Any]) -> m.Trunk:
    sec = _Section(path, f'cluster "{cluster.name}" trunk', raw)
    name = sec.get("name", str)
    sec.where = f'cluster "{cluster.name}" trunk "{name}"'
    srv = sec.get("srv", str, None)
    dest_raw = sec.get("destinations", list, [] if srv else ...)
    if srv and dest_raw:
        raise sec.fail("srv", "and destinations exclude each other (CUCM: up to 16 destinations, or one SRV name)")
    if not dest_raw and not srv:
        raise sec.fail("destinations", "is empty: a trunk needs at least one destination")
    if len(dest_raw) > MAX_DESTINATIONS:
        raise sec.fail("destinations", f"has {len(dest_raw)} entries; a SIP trunk takes at most {MAX_DESTINATIONS}")
    destinations = tuple(sorted((_destination(sec, i, d) for i, d in enumerate(dest_raw)), key=lambda d: d.sort_order))
    trunk = m.Trunk(
        name=name,
        cluster=cluster.name,
        security_profile=sec.get("security_profile", str),
        callmanager_group=tuple(sec.get("callmanager_group", list, [n.name for n in cluster.nodes])),
        destinations=destinations,
        run_on_all_active_nodes=sec.get("run_on_all_active_nodes", bool, False),
        distribution=sec.get("distribution", str, "round_robin", choices=m.DISTRIBUTIONS),
        srtp_allowed=sec.get("srtp_allowed", bool, False),
        srv=srv.lower().rstrip(".") if srv else None,
        failover=sec.get("failover", bool, False),
        failover_on=tuple(sec.get("failover_on", list, list(m.FAILOVER_CAUSES))),
        max_attempts=sec.get("max_attempts", int, len(destinations) or MAX_DESTINATIONS),
        options_ping=sec.get("options_ping", bool, False),
        ping_interval=sec.get("ping_interval", float, 60.0),
        ping_interval_out_of_service=sec.get("ping_interval_out_of_service", float, 120.0),
        ping_retry_timer=sec.get("ping_retry_timer", float, 0.5),
        ping_retry_count=sec.get("ping_retry_count", int, 6),
    )
    for cause in trunk.failover_on:
        if cause not in m.FAILOVER_CAUSES and not cause.isdigit():
            raise sec.fail("failover_on", f"{cause!r} is not a cause; use any of {', '.join(m.FAILOVER_CAUSES)} or a SIP status like \"486\"")
    if not 1 <= trunk.max_attempts <= MAX_DESTINATIONS:
        raise sec.fail("max_attempts", f"must be 1 to {MAX_DESTINATIONS}")
    if not 5 <= trunk.ping_interval <= 600:
        raise sec.fail("ping_interval", "must be 5 to 600 seconds (CUCM's range)")
    sec.done()
    return trunk


def _check_references(s: m.Scenario) -> None:
    """Names that point elsewhere must exist; addresses must be unique."""
    seen_addr: dict[tuple[str, str], str] = {}
    seen_nodes: set[str] = set()
    for c in s.clusters:
        names = {n.name for n in c.nodes}
        for n in c.nodes:
            if n.name in seen_nodes:
                raise UserError(f'{s.path}: node "{n.name}" is defined twice: node names must be unique in a lab')
            seen_nodes.add(n.name)
        profiles = {p.name for p in c.profiles}
        trunks = {t.name for t in c.trunks}
        for t in c.trunks:
            where = f'{s.path}: cluster "{c.name}" trunk "{t.name}"'
            if t.srv and t.srv not in s.srv:
                raise UserError(f"{where}: srv \"{t.srv}\" is not in the lab's [[srv]] table (have: {', '.join(sorted(s.srv)) or 'none'}): add [[srv]] records with name = \"{t.srv}\"")
            if t.security_profile not in profiles:
                raise UserError(f"{where}: security_profile \"{t.security_profile}\" is not a security profile of this cluster (have: {', '.join(sorted(profiles)) or 'none'})")
            for node in t.callmanager_group:
                if node not in names:
                    raise UserError(f"{where}: callmanager_group names \"{node}\", which is not a node of this cluster (have: {', '.join(sorted(names))})")
        for r in c.route_patterns:
            if r.trunk not in trunks:
                raise UserError(f'{s.path}: cluster "{c.name}" route pattern "{r.pattern}": trunk "{r.trunk}" is not a trunk of this cluster (have: {", ".join(sorted(trunks)) or "none"})')
        for p in c.phones:
            if p.node not in names:
                raise UserError(f'{s.path}: cluster "{c.name}" phone {p.dn}: node "{p.node}" is not a node of this cluster (have: {", ".join(sorted(names))})')
        for n in c.nodes:
            for port in {p.incoming_port for p in c.profiles}:
                key = (n.address, str(port))
                if key in seen_addr:
                    raise UserError(f'{s.path}: nodes "{seen_addr[key]}" and "{n.name}" both listen on {n.address}:{port}: give each node its own 127.0.0.x address')
                seen_addr[key] = n.name
    dns = {p.dn for c in s.clusters for p in c.phones}
    load_callers = {c.caller: c for block in s.loads for c in block.calls}
    for call in s.calls + list(load_callers.values()):
        if call.caller not in dns:
            raise UserError(f"{s.path}: [[call]] from {call.caller}: no phone has that directory number (add a [[cluster.phone]] with dn = \"{call.caller}\")")
