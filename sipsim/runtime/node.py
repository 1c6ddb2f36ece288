"""A node (one CUCM server) at run time: its listener on 127.0.0.x:5061, its TLS connections, its
SIP endpoint and its timers. One trio task tree per node; a bad connection never takes it down."""

from __future__ import annotations

import errno
import logging
import math
import os
import socket as _stdlib_socket
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import trio

from sipsim.lab import model as m
from sipsim.lab.subjects import describe_rejection, matching_name
from sipsim.runtime.connection import SipConnection
from sipsim.runtime.observers import TappedStream
from sipsim.runtime.timers import TimerQueue
from sipsim.runtime.waits import Flag
from sipsim.sip import events as ev
from sipsim.sip.endpoint import Endpoint, EndpointConfig
from sipsim.sip.parser import Limits
from sipsim.lab.topology import DnsFailure
from sipsim.tls import TLSFailure, TLSStream

if TYPE_CHECKING:
    from sipsim.runtime.context import LabContext

log = logging.getLogger("sipsim.node")

#: what a phone does with a call, as a final status (None: answer with 200)
#: CUCM's tls_security in its SIP_PROCESS_ENQUEUE createConnMsg trace line (3 = TLS, as the seeds show)
TLS_SECURITY = {"encrypted": 3, "authenticated": 3, "non_secure": 0}
BEHAVIOUR_STATUS = {"answer": 200, "busy": 486, "reject": 603, "no_answer": None}


class _RateLog:
    """One log line per event, but at most ``burst`` lines of a kind per ``window`` seconds: a flood of
    hostile connections gives a few lines and a count, not a line per connection."""

    def __init__(self, burst: int = 20, window: float = 5.0):
        self.burst, self.window = burst, window
        self._seen: dict[str, list[float | int]] = {}  # kind -> [window start, lines, suppressed]

    def __call__(self, kind: str, level: int, fmt: str, *args: Any) -> None:
        now = time.monotonic()
        entry = self._seen.get(kind)
        if entry is None or now - entry[0] > self.window:
            if entry is not None and entry[2]:
                log.log(level, "(%d more %s lines were left out in %g s)", entry[2], kind, self.window)
            entry = self._seen[kind] = [now, 0, 0]
        if entry[1] < self.burst:
            entry[1] += 1
            log.log(level, fmt, *args)
        else:
            entry[2] += 1


class ConnectFailure(Exception):
    """An outbound connection could not be used for SIP: TCP refused, timeout, or TLS failed."""

    def __init__(self, reason: str, detail: str, record: Any = None, local: tuple[str, int] | None = None):
        super().__init__(detail)
        self.reason, self.detail, self.record, self.local = reason, detail, record, local


@dataclass(slots=True)
class CallWaiter:
    """What the lab runner waits on for one call it placed (``final`` and ``ended`` are one-shot
    events, as trio.Event, that the runner's Waits can also end at a deadline)."""

    final: Flag = field(default_factory=Flag)
    ended: Flag = field(default_factory=Flag)
    progress: list[int] = field(default_factory=list)
    status: int | None = None
    reason: str | None = None
    answered: bool = False
    ended_by: str | None = None


@dataclass
class InboundCall:
    call_id: str
    node: str
    conn: SipConnection
    caller: str
    called: str
    status: int | None = None


#: a connection whose handshake slot (max_handshakes) frees with less time than this left before
#: handshake_timeout is closed as waiting for a slot, not given a handshake that cannot finish
MIN_HANDSHAKE_S = 0.05


class NodeRuntime:
    def __init__(self, node: m.Node, lab: "LabContext", *, listen: bool = True):
        self.node = node
        self.listen = listen
        self.lab = lab
        self.cluster = lab.scenario.cluster(node.cluster)
        self.ports = [lab.port(p) for p in lab.topology.listen_ports(node)]
        self.limits = node.limits
        self.endpoint = Endpoint(
            EndpointConfig(
                host=node.address,
                port=self.ports[0],
                transport="TLS",
                user_agent=f"Cisco-CUCM{self.cluster.version or ''} (sipsim)",
                options_status=503 if node.fault.answer_503 else 200,
                report_received=bool(lab.observers),
                limits=Limits(max_message_bytes=node.limits.max_message_bytes),
            )
        )
        self.observers = lab.observers
        self.timers = TimerQueue()
        self.conns: dict[int, SipConnection] = {}
        self.pool: dict[tuple[str, str, int], SipConnection] = {}
        self._pool_locks: dict[tuple[str, str, int], trio.Lock] = {}
        self.waiters: dict[str, CallWaiter] = {}
        self.options_waiters: dict[Any, CallWaiter] = {}
        self.inbound_calls: dict[str, InboundCall] = {}
        self.inbound_failures: list[TLSFailure] = []
        self._nursery: trio.Nursery | None = None
        self.invites_received = 0
        self.answered_inbound = 0
        #: single endpoint (`serve`): how to answer a called number that is no phone of the lab
        self.answer_any: int | None = None
        self.hang_up_after: float | None = None  # `serve --hold S`: we send BYE after S seconds
        #: callable(text, kind) for a console: connections and calls, one line each; kind is
        #: "connection", "connection_failed", "call_answered" or "call_failed"
        self.on_event: Any = None
        self.open_inbound = 0  # inbound connections accepted and not yet closed (handshaking ones too)
        self._unsent: list[SipConnection] = []  # connections this pump transmitted on (sent at its end)
        self.refused_over_limit = 0  # connections closed at once: max_connections reached
        self._handshake_slots = trio.Semaphore(node.limits.max_handshakes)
        self._say = _RateLog()
        self._now = 0.0  # the time pump() was given: what StartTimer counts from
        self._handlers = {
            ev.Transmit: self._on_transmit, ev.StartTimer: self._on_start_timer,
            ev.CancelTimer: self._on_cancel_timer, ev.IncomingCall: self._incoming,
            ev.CallProgress: self._on_progress, ev.CallAnswered: self._on_answered,
            ev.CallFailed: self._on_failed, ev.CallEnded: self._on_ended,
            ev.OptionsResult: self._on_options_result, ev.Received: self._on_received,
            ev.ProtocolError: self._on_protocol_error,
        }

    # life cycle -----------------------------------------------------------------------------------
    async def serve(self, *, task_status=trio.TASK_STATUS_IGNORED) -> None:
        async with trio.open_nursery() as nursery:
            self._nursery = nursery
            if getattr(self, "stopped", False):  # stopped before it started
                nursery.cancel_scope.cancel()
            listeners = []
            self.lab.prepare_contexts(self.node)
            for port in (self.ports if self.listen and not self.node.fault.refuse_connections else []):
                try:
                    listeners += await trio.open_tcp_listeners(port, host=self.node.address)
                except OSError as e:
                    from sipsim.errors import UserError

                    hint = "another sipsim or SIP server is using it" if e.errno == errno.EADDRINUSE else e.strerror
                    raise UserError(
                        f"node {self.node.name}: cannot listen on {self.node.address}:{port} ({hint}); "
                        "stop it or change the node's address / the profile's incoming_port"
                    ) from None
            nursery.start_soon(self.timers.run, self._timer_fired)
            for listener in listeners:
                nursery.start_soon(self._accept_loop, listener)
            task_status.started()

    def stop(self) -> None:
        """Stop the node at once, as if its server died: listeners and connections close."""
        self.stopped = True
        if self._nursery is not None:
            self._nursery.cancel_scope.cancel()

    async def _accept_loop(self, listener: trio.SocketListener) -> None:
        port = listener.socket.getsockname()[1]
        raw = getattr(listener.socket, "_sock", None)
        if raw is None or not isinstance(listener, trio.SocketListener):
            accept = listener.accept
        else:
            accept = _Acceptor(raw).accept  # every connection waiting, one wait per burst
        async with listener:
            while True:
                try:
                    stream = await accept()
                except OSError as e:  # EMFILE and friends: wait, do not die
                    self._say("accept", logging.WARNING, "%s: accept failed on port %s: %s", self.node.name, port, e)
                    await trio.sleep(0.1)
                    continue
                if self.open_inbound >= self.limits.max_connections:
                    self.refused_over_limit += 1
                    try:
                        peer = "%s:%s" % tuple(stream.socket.getpeername()[:2])
                    except OSError:
                        peer = "?"
                    self._say("max_connections", logging.WARNING,
                              "%s: connection from %s closed at once: %d connections open, max_connections is %d",
                              self.node.name, peer, self.open_inbound, self.limits.max_connections)
                    await trio.aclose_forcefully(stream)
                    continue
                self.open_inbound += 1
                self._nursery.start_soon(self._inbound, stream, port)

    # inbound --------------------------------------------------------------------------------------
    async def _inbound(self, tcp: trio.SocketStream, port: int) -> None:
        try:
            await self._inbound_connection(tcp, port)
        finally:
            self.open_inbound -= 1

    async def _inbound_connection(self, tcp: trio.SocketStream, port: int) -> None:
        try:
            remote = tcp.socket.getpeername()[:2]
            local = tcp.socket.getsockname()[:2]
        except OSError:
            await trio.aclose_forcefully(tcp)
            return
        if self.node.fault.stall:  # injected: take the bytes, never answer, until the peer gives up
            try:
                while await tcp.receive_some(65536):
                    pass
            except (trio.BrokenResourceError, OSError):
                pass
            await _quiet_close(tcp)
            return
        candidates = self.lab.topology.inbound_trunks(self.node, port - self.lab.port_offset)
        verdict: dict[str, Any] = {}
        peer = self.lab.topology.node_at(remote[0])
        who = f"{peer.name} ({remote[0]}:{remote[1]})" if peer else f"{remote[0]}:{remote[1]}"
        if candidates and all(p.device_security_mode == "non_secure" for _, p in candidates):
            await self._inbound_tcp(tcp, local, remote, candidates, peer, who)
            return

        def peer_check(leaf) -> str | None:
            for trunk, profile in candidates:
                if profile.any_subject or matching_name(leaf.cn, leaf.sans, profile.x509_subject_name,
                                                        wildcards=profile.wildcards):
                    verdict["trunk"] = trunk
                    return None
            profile = candidates[0][1] if candidates else None
            sentence = describe_rejection(
                leaf.cn, leaf.sans,
                [n for _, p in candidates for n in p.x509_subject_name],
                profile.name if profile else "(none)",
                f"{who}, calling {self.node.name},",
            )
            verdict["rejection"] = sentence
            verdict["action"] = profile.subject_mismatch if profile else "tls_alert"
            return sentence if verdict["action"] == "tls_alert" else None

        # the handshake, including the wait for a slot (max_handshakes), ends by handshake_timeout
        timeout = self.node.tls.handshake_timeout
        deadline = trio.current_time() + timeout
        slots = self._handshake_slots
        if slots.value:  # a free slot: taken without a cancel scope (the handshake is the checkpoint)
            slots.acquire_nowait()
            timed_out = False
        else:
            with trio.move_on_at(deadline) as waiting:
                await slots.acquire()
            timed_out = waiting.cancelled_caught
        late = not timed_out and deadline - trio.current_time() < MIN_HANDSHAKE_S
        if late:  # the slot came too late for a handshake to finish: the wait for a slot is the cause
            slots.release()
        if timed_out or late:
            self._say("max_handshakes", logging.WARNING,
                      "%s: connection from %s closed: %d TLS handshakes in progress (max_handshakes) for "
                      "%g s (handshake_timeout)", self.node.name, who, self.limits.max_handshakes, timeout)
            await trio.aclose_forcefully(tcp)
            return
        try:
            ctx = self.lab.server_context(self.node, candidates)
            tap = self.lab.wire_tap((*remote, *local), "server")
            tls = TLSStream(tcp, ctx, server_side=True, peer_check=peer_check, keylog=self.lab.keylog,
                            local=local, remote=remote, wire_tap=tap, local_name=self.node.name,
                            peer_name=peer.name if peer else None, transcript=self.lab.server_transcripts,
                            handshake_timeout=max(0.01, round(deadline - trio.current_time(), 2)))
            try:
                await tls.do_handshake()
            except TLSFailure as failure:
                self.lab.tap_closed(tap)
                self.inbound_failures.append(failure)
                del self.inbound_failures[:-1000]  # a flood must not grow memory: keep the last ones
                self.lab.note_server_failure(remote, failure.reason, failure.detail, self.node.name)
                self._say(f"tls_{failure.reason}", logging.INFO, "%s: TLS handshake from %s failed (%s): %s",
                          self.node.name, who, failure.reason, failure.detail)
                self._event(f"[red]✗ TLS from {who}: {failure.reason}[/] — {failure.detail}", "connection_failed")
                await _quiet_close(tcp)
                return
            except Exception as e:  # never let one connection take the node down
                self.lab.tap_closed(tap)
                self.lab.note_server_failure(remote, "tls_handshake_failed", f"{who}: {e}", self.node.name)
                self._say("tls_error", logging.INFO, "%s: connection from %s failed: %s", self.node.name, who, e)
                await _quiet_close(tcp)
                return
        finally:
            self._handshake_slots.release()
        conn = SipConnection(tls, "inbound", local, remote, record=tls.record,
                             trunk=verdict.get("trunk").name if verdict.get("trunk") else None,
                             peer_node=peer.name if peer else None, tap=tap,
                             max_queued_bytes=self.limits.max_queued_bytes)
        self.endpoint.set_transport(conn.id, "TLS", local[1])
        self._certificate_ind(conn)
        leaf = tls.record.peer_chain[0] if tls.record.peer_chain else None
        group = f" {tls.record.group}" if tls.record.group else ""
        if tls.record.resumed:
            group += " (resumed session)"
        self._event(f"✓ TLS from {who}: {tls.record.version} {tls.record.cipher}{group}, "
                    f"peer CN={leaf.cn if leaf else '?'}"
                    + (f" — [red]{verdict['rejection']}[/]" if "rejection" in verdict else ""), "connection")
        if self.node.fault.close_after_handshake:  # injected
            await conn.aclose()
            return
        if "rejection" in verdict:
            action = verdict["action"]
            self.lab.note_server_failure(remote, "subject_not_allowed", verdict["rejection"], self.node.name, action)
            if action == "close":
                await conn.aclose()
                return
            if action == "drop":
                conn.mute = True
            else:
                conn.reject_status = 403 if action == "sip_403" else 503
        await self._run_connection(conn)

    async def _inbound_tcp(self, tcp: trio.SocketStream, local: tuple, remote: tuple,
                           candidates: list[tuple[m.Trunk, m.SecurityProfile]], peer: m.Node | None,
                           who: str) -> None:
        """Non Secure (SIP over TCP): no TLS; CUCM matches the call to a trunk by the source address,
        which must be one of the destinations of a trunk running on this node for this port."""
        trunk = None
        for t, _ in candidates:
            for dest in self.lab.topology.destinations(t):
                try:
                    if self.lab.topology.resolve(dest).address == remote[0]:
                        trunk = t
                        break
                except DnsFailure:
                    continue
            if trunk is not None:
                break
        tap = self.lab.wire_tap((*remote, *local), "server")
        conn = SipConnection(TappedStream(tcp, tap) if tap else tcp, "inbound", local, remote, record=None,
                             trunk=trunk.name if trunk else None, peer_node=peer.name if peer else None,
                             transport="TCP", max_queued_bytes=self.limits.max_queued_bytes, tap=tap)
        self.endpoint.set_transport(conn.id, "TCP", local[1])
        if trunk is None:
            conn.reject_status = 403
            conn.reject_why = (f"{remote[0]} is not a destination of any Non Secure trunk on "
                               f"{self.node.name} port {local[1]} "
                               f"({', '.join(t.name for t, _ in candidates)}): its INVITEs get 403")
        self._event(f"✓ TCP from {who}" + (f" — [red]{conn.reject_why}[/]" if conn.reject_why else
                                          f" (trunk {trunk.name})"))
        await self._run_connection(conn)

    # outbound -------------------------------------------------------------------------------------
    async def connect(self, trunk: m.Trunk, address: str, port: int, peer: m.Node | None,
                      reuse: bool = True) -> SipConnection:
        if not reuse:  # a new TLS connection for this call (closed when the call's work is done)
            conn = await self._open(trunk, address, port, peer)
            self.conns[conn.id] = conn
            self._nursery.start_soon(self._run_connection, conn)
            return conn
        key = (trunk.name, address, port)
        conn = self.pool.get(key)
        if conn is not None and not conn.closed:  # the pooled connection is up: no lock, no checkpoint
            return conn
        lock = self._pool_locks.get(key)
        if lock is None:
            lock = self._pool_locks[key] = trio.Lock()
        async with lock:
            conn = self.pool.get(key)
            if conn is not None and not conn.closed:
                return conn
            conn = await self._open(trunk, address, port, peer)
            self.pool[key] = conn
            self.conns[conn.id] = conn  # known before the first Transmit names it
            self._nursery.start_soon(self._run_connection, conn)
            return conn

    async def _open(self, trunk: m.Trunk, address: str, port: int, peer: m.Node | None) -> SipConnection:
        target = f"{peer.name} ({address}:{port})" if peer else f"{address}:{port}"
        try:
            # a bare CancelScope: trio.fail_after is a generator context manager
            scope = trio.CancelScope(deadline=trio.current_time() + self.lab.connect_timeout)
            with scope:
                tcp = await _open_tcp(address, port, self.node.address)
            if scope.cancelled_caught:
                raise trio.TooSlowError
        except trio.TooSlowError:
            raise ConnectFailure("timeout", f"{self.node.name} could not open TCP to {target} within "
                                 f"{self.lab.connect_timeout:g} s: is the destination address right?") from None
        except OSError as e:
            if _refused(e):
                raise ConnectFailure("connect_refused", f"{target} refused the TCP connection from "
                                     f"{self.node.name}: nothing listens there; check the destination port "
                                     "against the peer's incoming port and that the peer node is up") from None
            raise ConnectFailure("connect_failed", f"{self.node.name} could not connect to {target}: {e}") from None
        local = tcp.socket.getsockname()[:2]
        profile = self.lab.topology.profile_of(trunk)
        if profile.device_security_mode == "non_secure":  # SIP over TCP: no TLS, no record
            if self.observers:
                self.observers.connection_created(self.node.name, time.time(), self._conn_idx(local),
                                                  (address, port), TLS_SECURITY["non_secure"])
            tap = self.lab.wire_tap((*local, address, port), "client")
            conn = SipConnection(TappedStream(tcp, tap) if tap else tcp, "outbound", local, (address, port),
                                 record=None, trunk=trunk.name, peer_node=peer.name if peer else None,
                                 transport="TCP", max_queued_bytes=self.limits.max_queued_bytes, tap=tap)
            self.endpoint.set_transport(conn.id, "TCP", self.lab.port(profile.incoming_port))
            return conn
        verdict: dict[str, str] = {}

        def peer_check(leaf) -> str | None:
            if profile.any_subject or matching_name(leaf.cn, leaf.sans, profile.x509_subject_name,
                                                    wildcards=profile.wildcards):
                return None
            verdict["rejection"] = describe_rejection(
                leaf.cn, leaf.sans, profile.x509_subject_name, profile.name,
                f"{target}, called by {self.node.name} over trunk {trunk.name},",
            )
            return verdict["rejection"] if profile.subject_mismatch == "tls_alert" else None

        ctx = self.lab.client_context(self.node, profile)
        tap = self.lab.wire_tap((*local, address, port), "client")
        if self.observers:
            self.observers.connection_created(self.node.name, time.time(), self._conn_idx(local), (address, port),
                                              TLS_SECURITY[profile.device_security_mode])
        tls = TLSStream(tcp, ctx, server_side=False, peer_check=peer_check, keylog=self.lab.keylog,
                        local=local, remote=(address, port), wire_tap=tap, local_name=self.node.name,
                        peer_name=peer.name if peer else None)
        try:
            await tls.do_handshake()
        except TLSFailure as failure:
            await _quiet_close(tcp)
            self.lab.tap_closed(tap)
            raise ConnectFailure(failure.reason, failure.detail, failure.record, local) from None
        except Exception as e:
            await _quiet_close(tcp)
            self.lab.tap_closed(tap)
            raise ConnectFailure("tls_handshake_failed", f"TLS with {target} failed: {e}", None, local) from None
        if "rejection" in verdict:
            await _quiet_close(tls)
            self.lab.tap_closed(tap)
            raise ConnectFailure("subject_not_allowed", verdict["rejection"], tls.record, local)
        conn = SipConnection(tls, "outbound", local, (address, port), record=tls.record, trunk=trunk.name,
                             peer_node=peer.name if peer else None, tap=tap,
                             max_queued_bytes=self.limits.max_queued_bytes)
        self.endpoint.set_transport(conn.id, "TLS", self.lab.port(profile.incoming_port))
        self._certificate_ind(conn)
        return conn

    def _conn_idx(self, local: tuple) -> int:
        return local[1]  # CUCM's connIdx is an index; the local port identifies our side uniquely

    def _certificate_ind(self, conn: SipConnection) -> None:
        if self.observers:
            self.observers.certificate_ind(self.node.name, time.time(), conn.id, conn.remote, conn.record)

    # connections ----------------------------------------------------------------------------------
    async def _run_connection(self, conn: SipConnection) -> None:
        self.conns[conn.id] = conn
        try:
            await conn.run(self._deliver, self._nursery)
        finally:
            self.conns.pop(conn.id, None)
            await conn.aclose()
            self.lab.tap_closed(conn.tap)

    def _deliver(self, conn: SipConnection, data: bytes) -> None:
        now = trio.current_time()
        if data:
            self.endpoint.receive_data(conn.id, data, now)
        else:
            for key, c in list(self.pool.items()):
                if c is conn:
                    del self.pool[key]
            self.endpoint.connection_lost(conn.id, now)
        self.pump(now)

    def _timer_fired(self, key, now: float) -> None:
        self.endpoint.timer_fired(key, now)
        self.pump(now)

    def pump(self, now: float | None = None) -> None:
        """Carry out everything the SIP core asked for, including what handling it asks for next.
        ``now``: the time the SIP core was given (timers start from it)."""
        self._now = trio.current_time() if now is None else now
        drain = self.endpoint.drain
        handlers = self._handlers
        actions = drain()
        while actions:
            for action in actions:
                handler = handlers.get(type(action))
                if handler is not None:
                    handler(action)
            actions = drain()
        if self._unsent:
            self._flush_unsent()

    def _flush_unsent(self) -> None:
        """Send what this pass transmitted: one send per connection, now (see SipConnection.flush_now)."""
        conns, self._unsent = self._unsent, []
        now = trio.current_time()
        for conn in conns:
            conn.flush_now(now)

    def _carry_out(self, action) -> None:
        """One action of the SIP core: transmit, a timer, or an event for a waiter."""
        handler = self._handlers.get(type(action))
        if handler is not None:
            self._now = trio.current_time()
            handler(action)
            if self._unsent:
                self._flush_unsent()

    # what each action of the SIP core does (pump dispatches on the action's type) ------------------
    def _on_transmit(self, action: ev.Transmit) -> None:
        conn = self.conns.get(action.conn)
        if conn is not None:
            if conn.transmit_deferred(action.data):
                self._unsent.append(conn)
            if self.observers:
                self.observers.sip_message(self.node.name, time.time(), "out", conn.id, conn.remote,
                                           action.data)

    def _on_start_timer(self, action: ev.StartTimer) -> None:
        self.timers.start(action.key, action.delay, self._now)

    def _on_cancel_timer(self, action: ev.CancelTimer) -> None:
        self.timers.cancel(action.key)

    def _on_progress(self, action: ev.CallProgress) -> None:
        w = self.waiters.get(action.call_id)
        if w:
            w.progress.append(action.status)

    def _on_answered(self, action: ev.CallAnswered) -> None:
        w = self.waiters.get(action.call_id)
        if w:
            w.status, w.answered = action.status, True
            w.final.set()

    def _on_failed(self, action: ev.CallFailed) -> None:
        w = self.waiters.get(action.call_id)
        if w:
            w.status, w.reason = action.status, action.reason
            w.final.set()
            w.ended.set()

    def _on_ended(self, action: ev.CallEnded) -> None:
        inbound = self.inbound_calls.pop(action.call_id, None)
        if inbound is not None:  # an incoming call is over: nothing keeps it
            call = self.endpoint.calls.get(action.call_id)
            inbound.status = getattr(call, "status", None)
            self.answered_inbound += inbound.status == 200
            self.endpoint.forget(action.call_id)
        w = self.waiters.get(action.call_id)
        if w:
            w.ended_by = action.by
            w.final.set()
            w.ended.set()

    def _on_options_result(self, action: ev.OptionsResult) -> None:
        w = self.options_waiters.pop(action.key, None)
        if w:
            w.status, w.reason = action.status, action.reason
            w.final.set()

    def _on_received(self, action: ev.Received) -> None:
        conn = self.conns.get(action.conn)
        if conn is not None:
            from sipsim.sip.message import serialise

            self.observers.sip_message(self.node.name, time.time(), "in", conn.id, conn.remote,
                                       serialise(action.message))

    def _on_protocol_error(self, action: ev.ProtocolError) -> None:
        conn = self.conns.get(action.conn)
        who = f"{conn.peer_node or conn.remote[0]}:{conn.remote[1]}" if conn else f"connection {action.conn}"
        fatal = getattr(action.error, "fatal", False)
        status = getattr(action.error, "status", 400)
        self._say("bad_sip", logging.WARNING, "%s: bad SIP from %s: %s%s%s", self.node.name, who,
                  action.error, f" ({status} sent)" if action.response_sent else "",
                  "; closing the connection (framing lost)" if fatal else "")
        if fatal and conn is not None:  # the byte stream cannot be framed any more: close it
            conn.end_reason = "framing_lost"
            conn.close_after_flush()  # the 400/413 leaves first

    def _incoming(self, call: ev.IncomingCall) -> None:
        now = self._now
        conn = self.conns.get(call.conn)
        request = call.request
        called = _uri_user(request.uri)
        caller = _uri_user(_strip_name_addr(request.headers.get("From", "")))
        self.inbound_calls[call.call_id] = InboundCall(call.call_id, self.node.name, conn, caller, called)
        self.invites_received += 1
        fault = self.node.fault
        forced = getattr(conn, "reject_status", None)
        if fault.answer_503 or (fault.reject_every_nth and self.invites_received % fault.reject_every_nth == 0):
            forced = forced or 503
        if forced:
            if getattr(conn, "reject_why", None):
                self._say("tcp_unknown_source", logging.WARNING, "%s: INVITE %s → %s from %s refused (%d): %s",
                          self.node.name, caller, called, f"{conn.remote[0]}:{conn.remote[1]}", forced,
                          conn.reject_why)
            self.endpoint.reject(call.call_id, now, status=forced)
            return
        phone = self.lab.scenario.phone(called)
        if (phone is None or phone.cluster != self.node.cluster) and self.answer_any is not None:
            self._event(f"call {caller} → {called}: answering {self.answer_any}",
                        "call_answered" if self.answer_any < 300 else "call_failed")
            if self.answer_any < 300:
                self.endpoint.answer(call.call_id, now, status=self.answer_any)
                if self.hang_up_after is not None:
                    self._nursery.start_soon(self._hang_up_later, call.call_id, self.hang_up_after)
            else:
                self.endpoint.reject(call.call_id, now, status=self.answer_any)
            return
        if phone is None or phone.cluster != self.node.cluster:
            self.endpoint.reject(call.call_id, now, status=404)
            return
        status = BEHAVIOUR_STATUS[phone.behaviour]
        if status is None:  # rings until the caller gives up
            self.endpoint.answer(call.call_id, now, status=200, delay=math.inf)
        elif status == 200:
            self.endpoint.answer(call.call_id, now, status=200, delay=phone.answer_delay)
        else:
            self.endpoint.reject(call.call_id, now, status=status)

    def _event(self, text: str, kind: str = "connection") -> None:
        if self.on_event is not None:
            self.on_event(f"{self.node.name}: {text}", kind)

    async def _hang_up_later(self, call_id: str, delay: float) -> None:
        await trio.sleep(delay)
        call = self.endpoint.calls.get(call_id)
        if call is not None and not call.ended:
            self.hang_up(call_id)

    # calls the lab places -------------------------------------------------------------------------
    def place_call(self, conn: SipConnection, caller: str, called: str, address: str, port: int,
                   headers: tuple = (), now: float | None = None) -> tuple[str, CallWaiter]:
        if now is None:
            now = trio.current_time()
        call_id = self.endpoint.place_call(conn.id, now, caller=caller, called=called,
                                           request_uri=f"sip:{called}@{address}:{port}", sdp=True,
                                           headers=headers)
        waiter = self.waiters[call_id] = CallWaiter()
        self.pump(now)
        return call_id, waiter

    def send_options(self, conn: SipConnection, request_uri: str) -> CallWaiter:
        now = trio.current_time()
        key = self.endpoint.send_options(conn.id, now, request_uri=request_uri)
        waiter = self.options_waiters[key] = CallWaiter()
        self.pump(now)
        return waiter

    def hang_up(self, call_id: str, now: float | None = None) -> None:
        if now is None:
            now = trio.current_time()
        self.endpoint.hang_up(call_id, now)
        self.pump(now)


def _literal_family(address: str) -> int | None:
    """AF_INET / AF_INET6 for a literal IP address, None for a name."""
    try:
        _stdlib_socket.inet_pton(_stdlib_socket.AF_INET, address)
        return _stdlib_socket.AF_INET
    except (OSError, TypeError):
        pass
    try:
        _stdlib_socket.inet_pton(_stdlib_socket.AF_INET6, address)
        return _stdlib_socket.AF_INET6
    except (OSError, TypeError):
        return None


async def _open_tcp(address: str, port: int, local_address: str | None) -> trio.SocketStream:
    """trio.open_tcp_stream for a literal IP address, without its resolver, nursery and attempt task
    (one address: one attempt), on the socket itself (no address resolution or checkpoint in bind and
    connect: ~30 % of a connect's CPU); the same socket options and the same errors (a failed connect
    is ``OSError("all attempts to connect to H:P failed")`` from the connect's error, as trio words
    it). Names go through trio.open_tcp_stream."""
    family = _literal_family(address)
    if family is None:
        return await trio.open_tcp_stream(address, port, local_address=local_address)
    sockaddr = (address, port) if family == _stdlib_socket.AF_INET else (address, port, 0, 0)
    sock = _stdlib_socket.socket(family, _stdlib_socket.SOCK_STREAM)
    try:
        sock.setblocking(False)
        try:
            if local_address is not None:
                try:
                    sock.setsockopt(_stdlib_socket.IPPROTO_IP, _stdlib_socket.IP_BIND_ADDRESS_NO_PORT, 1)
                except (OSError, AttributeError):
                    pass
                try:
                    sock.bind((local_address, 0))
                except OSError:
                    raise OSError(f"local_address={local_address!r} is incompatible "
                                  f"with remote address {sockaddr!r}") from None
            err = sock.connect_ex(sockaddr)
            if err == errno.EINPROGRESS:        # started: writable when it completes (or fails)
                await trio.lowlevel.wait_writable(sock)
                err = sock.getsockopt(_stdlib_socket.SOL_SOCKET, _stdlib_socket.SO_ERROR)
            if err:
                raise OSError(err, f"Error connecting to {sockaddr!r}: {os.strerror(err)}")
        except OSError as exc:
            host = f"[{address}]" if ":" in address else address
            msg = f"all attempts to connect to {host}:{port} failed"
            raise OSError(msg) from ExceptionGroup(msg, [exc])
        return trio.SocketStream(trio.socket.from_stdlib_socket(sock))
    except BaseException:
        trio.lowlevel.notify_closing(sock)
        sock.close()
        raise


#: accept() errors that only concern the connection being accepted (trio's SocketListener list)
_IGNORABLE_ACCEPT = {getattr(errno, n) for n in ("ECONNABORTED", "EPERM", "EPROTO") if hasattr(errno, n)}
#: connections accepted in a row before the accept loop lets other tasks run
_ACCEPT_BURST = 16


class _Acceptor:
    """trio's SocketListener.accept on the listening socket itself: the connections already waiting
    are accepted without a wait or a scheduler pass each (one pass per ``_ACCEPT_BURST``); the same
    streams (SocketStream) and errors."""

    __slots__ = ("sock", "burst")

    def __init__(self, sock) -> None:
        self.sock = sock
        self.burst = 0

    async def accept(self) -> trio.SocketStream:
        sock = self.sock
        if self.burst >= _ACCEPT_BURST:
            self.burst = 0
            await trio.lowlevel.checkpoint()
        else:
            await trio.lowlevel.checkpoint_if_cancelled()
        while True:
            try:
                new, _ = sock.accept()
            except BlockingIOError:
                self.burst = 0
                await trio.lowlevel.wait_readable(sock)
                continue
            except OSError as exc:
                if exc.errno == errno.EBADF:
                    raise trio.ClosedResourceError from None
                if exc.errno in _IGNORABLE_ACCEPT:
                    continue
                raise
            self.burst += 1
            return trio.SocketStream(trio.socket.from_stdlib_socket(new))


def _refused(error: BaseException) -> bool:
    """trio's open_tcp_stream wraps each address's error: look inside for ECONNREFUSED."""
    seen, todo = set(), [error]
    while todo:
        e = todo.pop()
        if id(e) in seen:
            continue
        seen.add(id(e))
        if isinstance(e, ConnectionRefusedError) or getattr(e, "errno", None) == errno.ECONNREFUSED:
            return True
        todo += [x for x in (e.__cause__, e.__context__) if x is not None]
        todo += list(getattr(e, "exceptions", ()))
    return False


def _strip_name_addr(value: str) -> str:
    if "<" in value:
        return value[value.index("<") + 1 : value.index(">")] if ">" in value else value
    return value.split(";", 1)[0]


def _uri_user(uri: str) -> str:
    rest = uri.split(":", 1)[1] if ":" in uri else uri
    return rest.split("@", 1)[0] if "@" in rest else ""


async def _quiet_close(stream) -> None:
    with trio.move_on_after(0.5):
        try:
            await stream.aclose()
        except Exception:
            pass
