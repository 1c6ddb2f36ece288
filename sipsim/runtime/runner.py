"""Run a lab: start every node in one trio process, place the scenario's calls, stop the nodes.

Each call goes through CUCM's steps: digit analysis in the calling phone's cluster (closest route
pattern), the trunk's originating node, the trunk's destination (distribution policy), the TLS
connection (reused per trunk and destination, as CUCM keeps its SIP TLS connections), then the SIP
call. Every call placed ends with exactly one outcome in the result.
"""

from __future__ import annotations

import logging
import math
import random
import signal
import time
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
from sipsim.runtime.observers import Observers
from sipsim.runtime.pinger import Pinger
from sipsim.runtime.waits import Flag, Waits
from sipsim.tls.config import DEFAULT_GROUPS, shared_groups

log = logging.getLogger("sipsim.runner")
LOG_CALLS = 2000  # calls whose SIP messages are collected at the end of the run (with the last BYE's answer)
SECURITY_STATUS = {"encrypted": "Encrypted", "authenticated": "Authenticated", "non_secure": "NotAuthenticated"}


class LabRunner:
    def __init__(self, scenario: m.Scenario, *, port_offset: int = 0, observers: Observers | None = None,
                 base: Path | None = None, on_call_done: Callable[[CallRecord], None] | None = None,
                 pki=None):
        self.scenario = scenario
        self.port_offset = port_offset
        self.observers = observers
        self.reuse_connections = True  # False: a new TLS connection per call (closed after it)
        #: False: inbound connections keep no TLS transcript (`sipsim serve`, which writes no report)
        self.server_transcripts = True
        self.pki = pki  # given: a single endpoint's own files; None: the lab's (made as needed)
        self.base = base
        self.on_call_done = on_call_done
        self.rng = random.Random(scenario.run.seed)
        self.ctx: LabContext | None = None
        self.nodes: dict[str, NodeRuntime] = {}
        self._distributors: dict[tuple[str, str], Distributor] = {}
        self.pinger = Pinger(self)
        self._t_start = 0.0
        self._logs: list[tuple[CallRecord, NodeRuntime, str, float]] = []
        self.connections: list = []  # TLS ConnectionRecords, in the order calls first used them
        self._connection_index: dict[int, int] = {}
        #: Ctrl-C (or interrupt()): no new call starts, calls being set up are cancelled, answered
        #: calls get their BYE now; each call placed still gets exactly one record
        self.interrupted = False
        self._interrupt = trio.Event()
        self._starting: set[trio.CancelScope] = set()
        self._waits = Waits()  # calls waiting in _until (interrupt() wakes them all) and their deadlines
        # Per-run caches of what does not change during a run (the scenario is fixed once started):
        # digit analysis per (cluster, dialled number), trunks, headers, destinations, DNS answers.
        self._patterns: dict[str, list[RoutePattern]] = {}
        self._routes: dict[tuple[str, str], object] = {}
        self._trunks: dict[tuple[str, str], m.Trunk] = {}
        self._headers: dict[tuple[str, str], tuple] = {}
        self._dests: dict[tuple[str, str], list[m.Destination]] = {}
        self._resolved: dict[tuple[str, int], object] = {}

    def total_calls(self) -> int:
        return sum(len(b.calls) for b in self.scenario.traffic())

    async def start_nodes(self, nursery: trio.Nursery, only: list[str] | None = None, *,
                          listen: bool = True) -> None:
        """Make the lab's certificates and start its nodes (all, or those named) in ``nursery``.
        ``listen=False`` starts them without listeners (a caller that only places calls)."""
        pki = self.pki if self.pki is not None else prepare_pki(self.scenario, base=self.base)
        self.ctx = LabContext(self.scenario, pki, port_offset=self.port_offset, observers=self.observers)
        self.ctx.server_transcripts = self.server_transcripts
        for node in self.scenario.nodes():
            if only is None or node.name in only:
                rt = self.nodes[node.name] = NodeRuntime(node, self.ctx, listen=listen)
                await nursery.start(rt.serve)

    def interrupt(self) -> None:
        """Stop the run early and cleanly (what the first Ctrl-C does)."""
        if not self.interrupted:
            self.interrupted = True
            self._interrupt.set()
            for scope in self._starting:
                scope.cancel()
            self._waits.wake_all()

    async def _watch_sigint(self) -> None:
        """The first Ctrl-C interrupts the run cleanly; a second one stops it at once (trio's default)."""
        try:
            receiver = trio.open_signal_receiver(signal.SIGINT)
        except (RuntimeError, ValueError):  # not the main thread: nothing to watch
            return
        with receiver as signals:
            async for _ in signals:
                log.warning("interrupted: no new calls; calls in progress are hung up (BYE or CANCEL) and "
                            "the report is written — Ctrl-C again to stop at once")
                self.interrupt()
                break

    async def run(self) -> RunResult:
        started = self._t_start = trio.current_time()
        async with trio.open_nursery() as nursery:
            await self.start_nodes(nursery)
            nursery.start_soon(self._watch_sigint)
            pki = self.ctx.pki
            await self.pinger.start(nursery)
            records = await self.place_all()
            await trio.sleep(0.05)  # the last BYEs' answers
            for entry in self._logs:
                self._collect_log(*entry)
            nursery.cancel_scope.cancel()
        result = RunResult(self.scenario.name, records, trio.current_time() - started, pki_events=list(pki.events))
        result.connections = [self._connection_dict(i, r) for i, r in enumerate(self.connections)]
        result.lab = self.ctx.describe()
        result.trunk_status, result.ping_changes = self.pinger.statuses()
        result.interrupted = self.interrupted
        return result

    def _both_sides(self, reason: str, origin: m.Node, trunk: m.Trunk, dest: m.Node | None, port: int) -> str | None:
        """For a version, cipher or key exchange group mismatch, one sentence with both nodes' settings."""
        if dest is None:
            return None
        if reason == "tls_protocol_version":
            return (f"{origin.name} offers TLS {_range(origin.tls)}; {dest.name} requires TLS {_range(dest.tls)}: "
                    "give them a version in common (CUCM: the TLS minimum version enterprise parameter)")
        if reason == "tls_no_shared_cipher":
            ours = self.ctx.topology.profile_of(trunk)
            theirs = [p for _, p in self.ctx.topology.inbound_trunks(dest, port - self.port_offset)]
            mode = {"authenticated": "Authenticated (NULL-SHA: integrity, no encryption)", "encrypted": "Encrypted",
                    "non_secure": "Non Secure"}
            other = f'profile "{theirs[0].name}" is {mode[theirs[0].device_security_mode]}' if theirs else "no profile"
            return (f'{origin.name}\'s profile "{ours.name}" is {mode[ours.device_security_mode]}'
                    f"{f' with ciphers {origin.tls.ciphers}' if origin.tls.ciphers else ''}; {dest.name}'s {other}"
                    f"{f' with ciphers {dest.tls.ciphers}' if dest.tls.ciphers else ''}: use the same Device Security "
                    "Mode and a cipher both allow"
                    + (f" (and their key exchange groups, {_groups(origin.tls)} and {_groups(dest.tls)}, have none in "
                       "common: no ECDHE suite can be agreed)"
                       if shared_groups(origin.tls.groups, dest.tls.groups) == [] else ""))
        if reason == "tls_no_shared_group":
            return (f"{origin.name} offers key exchange groups {_groups(origin.tls)}; {dest.name} accepts "
                    f"{_groups(dest.tls)}: give them a group in common ([cluster.node.tls] groups)")
        return None

    @staticmethod
    def _collect_log(rec: CallRecord, node_rt: NodeRuntime, call_id: str, t0: float) -> None:
        rec.messages = [{"t_ms": round((t - t0) * 1000, 3), "dir": d, "line": line}
                        for t, d, line in node_rt.endpoint.call_log(call_id)]
        node_rt.endpoint.forget(call_id)

    def _note_connection(self, record, origin: str, destination_node: str | None) -> int | None:
        if record is None:
            return None
        key = id(record)
        if key not in self._connection_index:
            self._connection_index[key] = len(self.connections)
            self.connections.append((record, origin, destination_node))
        return self._connection_index[key]

    def _connection_dict(self, index: int, entry) -> dict:
        record, origin, destination_node = entry
        d = record.to_dict()
        d.update(id=index, client_node=origin, server_node=destination_node)
        return d

    async def place_all(self) -> list[CallRecord]:
        """Place every traffic block in turn; within a block, `concurrency` calls at once, one
        start every `interval` seconds. Every call placed gets exactly one record."""
        records: list[CallRecord] = []
        for block in self.scenario.traffic():
            if self.interrupted:
                break
            records += await self._place_block(block, first_id=len(records) + 1)
        return records

    async def _place_block(self, block: m.TrafficBlock, first_id: int) -> list[CallRecord]:
        records: list[CallRecord | None] = [None] * len(block.calls)

        async def one(i: int, spec: m.CallSpec) -> None:
            try:
                records[i] = await self.place_call(first_id + i, spec)
            except Exception as e:  # a bug must not lose the call from the report
                records[i] = CallRecord(id=first_id + i, caller=spec.caller, called=spec.called,
                                        reason="internal_error", detail=f"{type(e).__name__}: {e}")
            finally:
                if self.on_call_done and records[i] is not None:
                    self.on_call_done(records[i])

        if not block.interval:
            # As fast as allowed: `concurrency` worker tasks, each placing the next call as soon as
            # its previous one is done (no task, semaphore or scheduler round trip per call).
            calls = enumerate(block.calls)

            async def worker() -> None:
                for i, spec in calls:
                    if self.interrupted:  # interrupt(): no new call starts
                        return
                    await one(i, spec)
                    # Two scheduler passes before the next call, as a new task per call took: the
                    # writer sends this call's last request (BYE) on its own before the next INVITE.
                    # (With the pass of the wait after hang_up, an in-process peer also reads the
                    # BYE before the INVITE arrives: a capture shows one message per frame.)
                    await trio.lowlevel.checkpoint()
                    await trio.lowlevel.checkpoint()

            if not self.interrupted:
                async with trio.open_nursery() as nursery:
                    for k in range(min(block.concurrency, len(block.calls))):
                        if k:  # one start per scheduler pass, as the paced loop below
                            await trio.lowlevel.checkpoint()
                        nursery.start_soon(worker)
            return [r for r in records if r is not None]

        limiter = trio.Semaphore(block.concurrency)

        async def paced(i: int, spec: m.CallSpec) -> None:
            try:
                await one(i, spec)
            finally:
                limiter.release()

        async with trio.open_nursery() as nursery:
            next_start = trio.current_time()
            with trio.CancelScope() as starting:  # interrupt(): no new call starts
                self._starting.add(starting)
                if self.interrupted:
                    starting.cancel()
                for i, spec in enumerate(block.calls):
                    await limiter.acquire()
                    await trio.sleep_until(next_start)
                    next_start += block.interval
                    nursery.start_soon(paced, i, spec)
            self._starting.discard(starting)
        return [r for r in records if r is not None]

    def _distributor(self, trunk: m.Trunk) -> Distributor:
        key = (trunk.cluster, trunk.name)
        if key not in self._distributors:
            self._distributors[key] = Distributor(trunk, self.scenario.run.seed)
        return self._distributors[key]

    def _route(self, cluster: m.Cluster, called: str):
        """Digit analysis (closest match) of ``called`` in ``cluster``: once per dialled number."""
        key = (cluster.name, called)
        match = self._routes.get(key, _MISSING)
        if match is _MISSING:
            patterns = self._patterns.get(cluster.name)
            if patterns is None:
                patterns = self._patterns[cluster.name] = [RoutePattern(r.pattern, r.partition, r.trunk)
                                                           for r in cluster.route_patterns]
            match = closest_match(patterns, called) if patterns or not cluster.trunks else \
                _Direct(RoutePattern("!", "", cluster.trunks[0].name))  # a single endpoint: its one trunk
            self._routes[key] = match
        return match

    def _trunk_info(self, cluster: m.Cluster, target: str):
        """The trunk a route pattern points to, its headers (security status) and destinations."""
        key = (cluster.name, target)
        trunk = self._trunks.get(key)
        if trunk is None:
            trunk = next(t for t in cluster.trunks if t.name == target)
            topo = self.ctx.topology
            profile = topo.profile_of(trunk)
            headers = ()
            if profile.transmit_security_status:
                level = SECURITY_STATUS[profile.device_security_mode]
                headers = (("Call-Info", f"<urn:x-cisco-remotecc:callinfo>;security={level}"),)
            self._headers[key] = headers
            self._dests[key] = topo.destinations(trunk)
            self._trunks[key] = trunk
        return trunk, self._headers[key], self._dests[key]

    async def place_call(self, index: int, spec: m.CallSpec) -> CallRecord:
        s = self.scenario
        topo = self.ctx.topology
        rec = CallRecord(id=index, caller=spec.caller, called=spec.called)
        phone = s.phone(spec.caller)
        cluster = s.cluster(phone.cluster)
        match = self._route(cluster, spec.called)
        if match is None:
            rec.status, rec.reason = 404, "unallocated_number"
            rec.detail = f"no route pattern of cluster {cluster.name} matches {spec.called}"
            return rec
        if isinstance(match, _Direct):
            rec.pattern = rec.partition = None
        else:
            rec.pattern, rec.partition = match.pattern.pattern, match.pattern.partition
        if self.ctx.observers:
            self.ctx.observers.digit_analysis(phone.node, time.time(), spec.caller, spec.called,
                                              rec.pattern, rec.partition)
        trunk, headers, destinations = self._trunk_info(cluster, match.pattern.target)
        rec.trunk = trunk.name
        origin, rule = topo.origin_node(trunk, phone, self.rng)
        rec.origin_node, rec.origin_rule = origin.name, rule
        candidates = self.pinger.in_service(origin, trunk, destinations)
        if not candidates:
            rec.reason = "trunk_out_of_service"
            rec.detail = (f"OPTIONS ping shows every destination of trunk {trunk.name} out of service from "
                          f"{origin.name} (No Service): " + "; ".join(
                              f"{d} {m.cause}" for d, m in self.pinger.monitors[(origin.name, trunk.name)].items()))
            return rec
        order, why = self._distributor(trunk).order(candidates, f"{index}")
        rec.distribution = why
        node_rt = self.nodes[origin.name]
        t0 = trio.current_time()
        rec.started_at = round(t0 - self._t_start, 6)
        limit = trunk.max_attempts if trunk.failover else 1
        a0 = t0  # the first attempt starts with the call
        for dest in order[:limit]:
            done = await self._attempt(rec, node_rt, trunk, dest, spec, headers, t0, a0)
            if done or not _fails_over(trunk, rec.reason, rec.status):
                break
            a0 = None
        return rec

    def _resolve(self, dest: m.Destination):
        """The topology's answer for a destination (an address, or a node's name), once per run."""
        key = (dest.host, dest.port)
        resolved = self._resolved.get(key)
        if resolved is None:
            try:
                resolved = self.ctx.topology.resolve(dest)
            except DnsFailure:
                resolved = _DNS_FAILURE
            self._resolved[key] = resolved
        if resolved is _DNS_FAILURE:
            raise DnsFailure(dest.host)
        return resolved

    async def _attempt(self, rec: CallRecord, node_rt: NodeRuntime, trunk: m.Trunk, dest: m.Destination,
                       spec: m.CallSpec, headers: tuple, t0: float, a0: float | None = None) -> bool:
        """One try of the call at one destination, started at ``a0`` (now when not given). True when
        the call was carried (answered or a final answer that must not fail over); the record holds
        this attempt's outcome either way."""
        if a0 is None:
            a0 = trio.current_time()
        rec.destination, rec.destination_node = dest.label, None
        rec.status = rec.reason = rec.detail = None
        rec.tls_version = rec.cipher = rec.peer_subject = None
        rec.peer_san = []

        connection: list[int | None] = [None]

        def attempt_done(reason: str | None, detail: str | None) -> None:
            rec.reason, rec.detail = reason, detail
            now = trio.current_time()
            rec.setup_ms = round((now - t0) * 1000, 1)  # post-dial delay so far
            injected = None
            if reason is not None and rec.destination_node:
                active = self.scenario.node(rec.destination_node).fault.active
                injected = ", ".join(f"{rec.destination_node}: {f}" for f in active) or None
            rec.attempts.append(Attempt(dest.label, rec.destination_node, reason, detail,
                                        round((now - a0) * 1000, 1), injected, connection[0]))

        try:
            resolved = self._resolve(dest)
        except DnsFailure:
            attempt_done("dns_failure", f"{dest.host} is not a node of this lab nor an address "
                                        "(CUCM: Local=3): correct the destination or the node's fqdn")
            return False
        rec.destination_node = resolved.node.name if resolved.node else None
        port = self.ctx.port(resolved.port)
        try:
            conn = await node_rt.connect(trunk, resolved.address, port, resolved.node, reuse=self.reuse_connections)
        except ConnectFailure as f:
            reason, detail = f.reason, f.detail
            view = await self.ctx.server_view(f.local) if f.record is not None else None
            if view is not None and reason != "subject_not_allowed":
                reason, detail = view.reason, view.detail
            if f.record is not None:
                _tls_fields(rec, f.record)
                connection[0] = self._note_connection(f.record, node_rt.node.name, rec.destination_node)
            both = self._both_sides(reason, node_rt.node, trunk, resolved.node, port)
            attempt_done(reason, f"{detail} — {both}" if both else detail)
            return False
        if conn.record is not None:
            _tls_fields(rec, conn.record)
            connection[0] = self._note_connection(conn.record, node_rt.node.name, rec.destination_node)
        call_id, waiter = node_rt.place_call(conn, spec.caller, spec.called, resolved.address, port, headers)
        rec.call_id = call_id
        try:
            return await self._carry_call(rec, node_rt, conn, call_id, waiter, dest, spec, attempt_done)
        finally:
            if not self.reuse_connections:
                # let the BYE's answer arrive before closing (a timed wait without a cancel scope)
                await self._waits.wait(Flag(), 0.01)
                # close here, not in a task of its own: a TLS close hands close_notify to the socket
                # without waiting (a shielded wait of at most 1 s only if the socket does not take it)
                await conn.aclose()
            node_rt.waiters.pop(call_id, None)
            self._logs.append((rec, node_rt, call_id, t0))
            if len(self._logs) > LOG_CALLS:  # later calls of a long run: collected now, so the endpoint
                self._collect_log(*self._logs.pop())  # forgets them (their BYE's answer may be missing)

    async def _until(self, event, timeout: float = math.inf) -> None:
        """Wait for ``event`` (a waiter's Flag), at most ``timeout`` seconds, or until the run is
        interrupted (interrupt() wakes every such wait; no cancel scope, no task per wait)."""
        if event.is_set() or self.interrupted:
            return
        await self._waits.until(event, timeout)

    async def _refusal(self, conn, waiter, node: str, *, unanswered: bool = False) -> tuple[str, str] | None:
        """When the peer refused us after the handshake, the reason and detail to report instead of the
        SIP outcome: the server's own verdict (a lab runs both ends) or the TLS alert we read, with the
        sign it left on the wire (subject_mismatch drop/close/sip_403/sip_503, or TLS 1.3's late alert)."""
        failure = conn.failure
        lost = waiter.reason == "connection_lost"
        if not (unanswered or lost or waiter.status in (403, 503)):
            return None
        view = await self.ctx.server_view(conn.local, wait=0.3 if lost and failure is not None else 0)
        if unanswered:
            if view is not None and view.reason == "subject_not_allowed":
                return view.reason, (f"{view.detail} (the peer kept the connection and ignored our requests: "
                                     f"subject_mismatch = {view.action})")
            return None
        if lost:
            if view is None and failure is None:
                return None
            reason, detail = (view.reason, view.detail) if view is not None else (failure.reason, failure.detail)
            if failure is not None:  # TLS 1.3: our handshake completed before the server judged us
                how = (f"TLS 1.3: the handshake completed on {node}'s side; the peer's rejection arrived on "
                       "the first read, after the INVITE was sent")
            elif view.reason == "subject_not_allowed" and view.action != "tls_alert":
                how = f"the peer closed the connection after the handshake: subject_mismatch = {view.action}"
            else:
                how = (f"TLS 1.3: the handshake completed on {node}'s side; the peer's rejection arrived "
                       "after the INVITE was sent")
            return reason, f"{detail} ({how})"
        if view is not None and view.reason == "subject_not_allowed" and view.action != "tls_alert":
            return "subject_not_allowed", (f"{view.detail} (the peer answered {waiter.status}: "
                                           f"subject_mismatch = {view.action})")
        return None

    async def _carry_call(self, rec: CallRecord, node_rt: NodeRuntime, conn, call_id: str, waiter, dest: m.Destination,
                          spec: m.CallSpec, attempt_done) -> bool:
        await self._until(waiter.final, self.scenario.run.no_answer_timeout)
        if not waiter.final.is_set() and self.interrupted:  # Ctrl-C during set-up: CANCEL after the first 1xx
            node_rt.hang_up(call_id)
            await self._waits.wait(waiter.final, min(self.scenario.run.call_timeout, 5.0))
            if not waiter.answered:
                rec.status = waiter.status
                attempt_done("interrupted", "the run was interrupted (Ctrl-C) before the call was answered; "
                                            f"the caller cancelled it ({waiter.status or 'no final answer'})")
                return True
        if not waiter.final.is_set():  # ringing with no answer: the caller gives up (CANCEL)
            node_rt.hang_up(call_id)
            await self._waits.wait(waiter.final, self.scenario.run.call_timeout)
            rec.status = waiter.status
            refused = await self._refusal(conn, waiter, node_rt.node.name, unanswered=True)
            if refused is not None:
                rec.status = None
                attempt_done(*refused)
                return False
            who = rec.destination_node or dest.label
            attempt_done("no_answer", f"{rec.called} at {who} rang for {self.scenario.run.no_answer_timeout:g} s "
                                      f"without an answer; the caller cancelled ({waiter.status or 'no answer to CANCEL'})")
            return True
        rec.status = waiter.status
        if not waiter.answered:
            refused = await self._refusal(conn, waiter, node_rt.node.name)
            if refused is not None:
                if waiter.reason == "connection_lost":
                    rec.status = None  # the endpoint's 503 is local: nobody answered
                attempt_done(*refused)
                return False
            who = rec.destination_node or dest.label
            if waiter.reason == "connection_lost":
                rec.status = None
                attempt_done("connection_lost", f"the connection to {who} closed before any final answer "
                                                "to the INVITE")
            elif waiter.reason in ("timeout", "cancelled"):
                attempt_done(waiter.reason, f"no final answer from {who} "
                                            f"({'Timer B, 64·T1' if waiter.reason == 'timeout' else 'cancelled'})")
            else:
                attempt_done(_status_reason(waiter.status), f"{who} answered {waiter.status}")
            return False
        rec.outcome = "answered"
        attempt_done(None, None)
        hold = spec.hold if spec.hold is not None else self.scenario.run.hold
        held = trio.current_time() if hold else None
        if hold:
            await self._until(waiter.ended, hold)
        if self.interrupted and not waiter.ended.is_set():
            into = trio.current_time() - held if hold else 0.0
            rec.detail = (f"answered; the run was interrupted (Ctrl-C) {into:.1f} s into its "
                          f"{hold:g} s hold: {node_rt.node.name} hung up (BYE)")
        if not waiter.ended.is_set():
            node_rt.hang_up(call_id)
            await self._waits.wait(waiter.ended, self.scenario.run.call_timeout)
        return True


_MISSING = object()
_DNS_FAILURE = object()


class _Direct:
    """No digit analysis: a single endpoint sends every call over its one trunk."""

    def __init__(self, pattern: RoutePattern):
        self.pattern = pattern


def _groups(tls: m.NodeTLS) -> str:
    return tls.groups or f"{DEFAULT_GROUPS} (the default)"


def _range(tls: m.NodeTLS) -> str:
    if tls.min_version == tls.max_version:
        return f"{tls.min_version} only"
    if tls.max_version == "1.3":
        return f"≥ {tls.min_version}"
    return f"{tls.min_version}–{tls.max_version}"


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
            403: "forbidden", 408: "request_timeout", 487: "cancelled", 480: "temporarily_unavailable"}.get(status or 0, f"sip_{status}" if status else "failed")
