"""Run a lab: start every node in one trio process, place the scenario's calls, stop the nodes.

Each call goes through CUCM's steps: digit analysis in the calling phone's cluster (closest route
pattern), the trunk's originating node, the trunk's destination (distribution policy), the TLS
connection (reused per trunk and destination, as CUCM keeps its SIP TLS connections), then the SIP
call. Every call placed ends with exactly one outcome in the result.
"""

from __future__ import annotations

import random
from pathlib import Path
from typing import Callable

import trio

from sipsim.lab import model as m
from sipsim.lab.distribution import Distributor
from sipsim.lab.routing import RoutePattern, closest_match
from sipsim.lab.topology import DnsFailure
from sipsim.report.records import Attempt, CallRecord, RunResult
from sipsim.runtime.context import LabContext, prepare_pki
from sipsim.runtime.node import ConnectFailure, NodeRuntime

SECURITY_STATUS = {"encrypted": "Encrypted", "authenticated": "Authenticated", "non_secure": "NotAuthenticated"}


class LabRunner:
    def __init__(self, scenario: m.Scenario, *, port_offset: int = 0, keylog: Callable[[bytes], None] | None = None,
                 base: Path | None = None, on_call_done: Callable[[CallRecord], None] | None = None):
        self.scenario = scenario
        self.port_offset = port_offset
        self.keylog = keylog
        self.base = base
        self.on_call_done = on_call_done
        self.rng = random.Random(scenario.run.seed)
        self.ctx: LabContext | None = None
        self.nodes: dict[str, NodeRuntime] = {}
        self._distributors: dict[tuple[str, str], Distributor] = {}

    def expanded_calls(self) -> list[m.CallSpec]:
        return [c for c in self.scenario.calls for _ in range(max(1, c.repeat))]

    async def run(self) -> RunResult:
        pki = prepare_pki(self.scenario, base=self.base)
        self.ctx = LabContext(self.scenario, pki, port_offset=self.port_offset, keylog=self.keylog)
        started = trio.current_time()
        async with trio.open_nursery() as nursery:
            for node in self.scenario.nodes():
                rt = self.nodes[node.name] = NodeRuntime(node, self.ctx)
                await nursery.start(rt.serve)
            records = await self.place_all()
            nursery.cancel_scope.cancel()
        return RunResult(self.scenario.name, records, trio.current_time() - started, pki_events=list(pki.events))

    async def place_all(self) -> list[CallRecord]:
        specs = self.expanded_calls()
        records: list[CallRecord | None] = [None] * len(specs)
        limiter = trio.Semaphore(self.scenario.run.concurrency)
        interval = self.scenario.run.interval

        async def one(i: int, spec: m.CallSpec) -> None:
            try:
                records[i] = await self.place_call(i + 1, spec)
            finally:
                limiter.release()
                if records[i] is not None and self.on_call_done:
                    self.on_call_done(records[i])

        async with trio.open_nursery() as nursery:
            for i, spec in enumerate(specs):
                await limiter.acquire()
                nursery.start_soon(one, i, spec)
                if interval:
                    await trio.sleep(interval)
        return [r for r in records if r is not None]

    def _distributor(self, trunk: m.Trunk) -> Distributor:
        key = (trunk.cluster, trunk.name)
        if key not in self._distributors:
            self._distributors[key] = Distributor(trunk, self.scenario.run.seed)
        return self._distributors[key]

    async def place_call(self, index: int, spec: m.CallSpec) -> CallRecord:
        s = self.scenario
        topo = self.ctx.topology
        rec = CallRecord(id=index, caller=spec.caller, called=spec.called)
        phone = s.phone(spec.caller)
        cluster = s.cluster(phone.cluster)
        patterns = [RoutePattern(r.pattern, r.partition, r.trunk) for r in cluster.route_patterns]
        match = closest_match(patterns, spec.called)
        if match is None:
            rec.status, rec.reason = 404, "unallocated_number"
            rec.detail = f"no route pattern of cluster {cluster.name} matches {spec.called}"
            return rec
        rec.pattern, rec.partition = match.pattern.pattern, match.pattern.partition
        trunk = next(t for t in cluster.trunks if t.name == match.pattern.target)
        rec.trunk = trunk.name
        origin, rule = topo.origin_node(trunk, phone, self.rng)
        rec.origin_node, rec.origin_rule = origin.name, rule
        order, why = self._distributor(trunk).order(trunk.destinations, f"{index}")
        rec.distribution = why
        profile = topo.profile_of(trunk)
        headers = ()
        if profile.transmit_security_status:
            level = SECURITY_STATUS[profile.device_security_mode]
            headers = (("Call-Info", f"<urn:x-cisco-remotecc:callinfo>;security={level}"),)
        node_rt = self.nodes[origin.name]
        t0 = trio.current_time()
        limit = trunk.max_attempts if trunk.failover else 1
        for dest in order[:limit]:
            done = await self._attempt(rec, node_rt, trunk, dest, spec, headers, t0)
            if done or not _fails_over(trunk, rec.reason, rec.status):
                break
        return rec

    async def _attempt(self, rec: CallRecord, node_rt: NodeRuntime, trunk: m.Trunk, dest: m.Destination,
                       spec: m.CallSpec, headers: tuple, t0: float) -> bool:
        """One try of the call at one destination. True when the call was carried (answered or a
        final answer that must not fail over); the record holds this attempt's outcome either way."""
        topo = self.ctx.topology
        a0 = trio.current_time()
        rec.destination, rec.destination_node = dest.label, None
        rec.status = rec.reason = rec.detail = None
        rec.tls_version = rec.cipher = rec.peer_subject = None
        rec.peer_san = []

        def attempt_done(reason: str | None, detail: str | None) -> None:
            rec.reason, rec.detail = reason, detail
            rec.setup_ms = round((trio.current_time() - t0) * 1000, 1)  # post-dial delay so far
            rec.attempts.append(Attempt(dest.label, rec.destination_node, reason, detail,
                                        round((trio.current_time() - a0) * 1000, 1)))

        try:
            resolved = topo.resolve(dest)
        except DnsFailure:
            attempt_done("dns_failure", f"{dest.host} is not a node of this lab nor an address "
                                        "(CUCM: Local=3): correct the destination or the node's fqdn")
            return False
        rec.destination_node = resolved.node.name if resolved.node else None
        port = self.ctx.port(resolved.port)
        try:
            conn = await node_rt.connect(trunk, resolved.address, port, resolved.node)
        except ConnectFailure as f:
            reason, detail = f.reason, f.detail
            view = await self.ctx.server_view(f.local) if f.record is not None else None
            if view is not None and reason != "subject_not_allowed":
                reason, detail = view.reason, view.detail
            if f.record is not None:
                _tls_fields(rec, f.record)
            attempt_done(reason, detail)
            return False
        if conn.record is not None:
            _tls_fields(rec, conn.record)
        call_id, waiter = node_rt.place_call(conn, spec.caller, spec.called, resolved.address, port, headers)
        rec.call_id = call_id
        await waiter.final.wait()
        rec.status = waiter.status
        if not waiter.answered:
            view = await self.ctx.server_view(conn.local, wait=0) if waiter.status in (403, 503) else None
            if view is not None and view.reason == "subject_not_allowed":
                detail = f"{view.detail} (the peer answered {waiter.status}: subject_mismatch = {view.action})"
                attempt_done("subject_not_allowed", detail)
            else:
                who = rec.destination_node or dest.label
                detail = f"{who} answered {waiter.status}" if waiter.status else \
                    f"no final answer from {who}: {waiter.reason}"
                attempt_done(waiter.reason or _status_reason(waiter.status), detail)
            return False
        rec.outcome = "answered"
        attempt_done(None, None)
        hold = spec.hold if spec.hold is not None else self.scenario.run.hold
        if hold:
            with trio.move_on_after(hold):
                await waiter.ended.wait()
        if not waiter.ended.is_set():
            node_rt.hang_up(call_id)
            with trio.move_on_after(self.scenario.run.call_timeout):
                await waiter.ended.wait()
        return True


def _tls_fields(rec: CallRecord, record) -> None:
    rec.tls_version, rec.cipher = record.version, record.cipher
    if record.peer_chain:
        leaf = record.peer_chain[0]
        rec.peer_subject, rec.peer_san = leaf.slash_subject, list(leaf.sans)


def _fails_over(trunk: m.Trunk, reason: str | None, status: int | None) -> bool:
    """Whether this outcome moves the call to the next destination."""
    if not trunk.failover or reason is None:
        return False
    causes = set(trunk.failover_on)
    if status is not None and str(status) in causes:
        return True
    if reason.startswith("tls_") and "tls" in causes:
        return True
    return reason in causes


def _status_reason(status: int | None) -> str:
    return {404: "unallocated_number", 486: "user_busy", 603: "call_rejected", 503: "service_unavailable",
            403: "forbidden", 408: "timeout", 487: "cancelled"}.get(status or 0, f"sip_{status}" if status else "failed")
