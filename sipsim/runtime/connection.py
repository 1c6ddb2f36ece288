"""One transport connection of a node: a TLS (or TCP) stream, a writer task that batches what the
SIP core transmits, and a reader task that feeds received bytes to the node's endpoint.

Memory is bounded per connection (docs/robustness.md): the reader stops reading while more than
``high_water`` bytes wait to be sent (the peer's own TCP window then pushes back), and a connection
whose queue would pass ``max_queued_bytes``, or whose peer takes no bytes for ``send_stall_timeout``
seconds, is closed with one log line."""

from __future__ import annotations

import errno
import itertools
import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import trio

_ids = itertools.count(1)
log = logging.getLogger("sipsim.connection")

#: outbound bytes queued on one connection before it is closed (a peer that never reads)
MAX_QUEUED_BYTES = 4 * 1024 * 1024
#: the reader waits while more than this is queued (a burst of requests whose answers are not read)
HIGH_WATER = 256 * 1024
#: a send that makes no progress for this long closes the connection
SEND_STALL_TIMEOUT = 30.0
#: what a graceful close waits for the last bytes (a 400/413 before closing) to leave
FLUSH_TIMEOUT = 2.0
#: a connection that has sent nothing for this long sends what a pass of the SIP core transmits
#: at once (`flush_now`), without waking its writer task: a connection that carries one call never
#: needs the writer. A busy connection (a trunk's persistent connection under load: sends less than
#: this apart) leaves its sends to the writer, which joins what several passes transmitted into one
#: TLS record and one send().
DIRECT_GAP = 0.001


@dataclass(eq=False, slots=True)
class SipConnection:
    stream: trio.abc.Stream
    role: str  # "outbound" (we connected) or "inbound" (we accepted)
    local: tuple[str, int]
    remote: tuple[str, int]
    record: Any = None  # sipsim.tls ConnectionRecord, or None for TCP
    trunk: str | None = None  # the trunk this connection belongs to
    peer_node: str | None = None
    mute: bool = False  # subject_mismatch = "drop": read and ignore everything
    reject_status: int | None = None  # subject_mismatch = "sip_403"/"sip_503", TCP from an unknown source
    reject_why: str | None = None  # the log line's reason for reject_status
    tap: Any = None  # the observers' wire tap, closed with the connection
    failure: Any = None  # the TLSFailure that ended it after the handshake (TLS 1.3: the peer's verdict)
    transport: str = "TLS"  # "TLS" or "TCP" (Non Secure)
    max_queued_bytes: int = MAX_QUEUED_BYTES
    id: int = field(default_factory=lambda: next(_ids))
    closed: bool = False
    #: why the connection ended, when sipsim ended it (overflow, stalled peer, framing lost)
    end_reason: str | None = None
    # set by __post_init__ (slots: no per-instance __dict__ for thousands of idle connections)
    _out: list = field(init=False, repr=False)
    _writer_task: Any = field(init=False, repr=False)
    _nursery: Any = field(init=False, repr=False)
    _writer_started: bool = field(init=False, repr=False)
    _writer_scope: Any = field(init=False, repr=False)
    _writer_done: Any = field(init=False, repr=False)
    _ended: bool = field(init=False, repr=False)
    queued: int = field(init=False)
    _drained: Any = field(init=False, repr=False)
    _scope: Any = field(init=False, repr=False)
    _closing: bool = field(init=False, repr=False)
    high_water: int = field(init=False, repr=False)
    _flush_deadline: float = field(init=False, repr=False)
    _backlogged: bool = field(init=False, repr=False)
    _last_flush: float = field(init=False, repr=False)

    def __post_init__(self) -> None:
        # What the SIP core transmitted and the writer has not taken yet: a plain list the writer
        # swaps out whole (one send per wake-up); the writer task, while it sleeps for the list to
        # fill (woken with trio.lowlevel.reschedule: no ParkingLot per connection).
        self._out: list[bytes] = []
        self._writer_task = None
        self._nursery = None  # where run() starts the writer task, while it runs
        self._writer_started = False  # the writer task starts with the first bytes to send
        self._writer_scope: trio.CancelScope | None = None  # the writer task's, made when it starts
        self._writer_done: trio.Event | None = None  # set when the writer task has ended
        self._ended = False  # no more transmits: the writer sends what is left, then ends
        self.queued = 0  # bytes waiting in the queue or being sent
        self._drained = None  # an Event while more than high_water bytes wait (back-pressure)
        self._scope: trio.CancelScope | None = None  # the reader's and writer's, set by run()
        self._closing = False
        self.high_water = min(HIGH_WATER, self.max_queued_bytes)
        self._backlogged = False  # the stream holds records send_nowait could not hand over yet
        self._last_flush = -DIRECT_GAP  # when flush_now last found bytes to send (see DIRECT_GAP)

    @property
    def who(self) -> str:
        """``127.0.0.21:5061 ← CUCM7-PUB 127.0.0.11:40132``: our end, the direction, the peer."""
        peer = f"{self.peer_node + ' ' if self.peer_node else ''}{self.remote[0]}:{self.remote[1]}"
        return f"{self.local[0]}:{self.local[1]} {'←' if self.role == 'inbound' else '→'} {peer}"

    def transmit(self, data: bytes) -> None:
        """Queue ``data`` for the writer task."""
        if self._queue(data):
            self._wake_writer()

    def transmit_deferred(self, data: bytes) -> bool:
        """Queue ``data``; True when it is the first in the queue: the caller then calls `flush_now`
        once it has queued everything of this pass (the node: at the end of a pump), so that what
        one pass of the SIP core transmits leaves in one send, as the writer would batch it."""
        return self._queue(data)

    def flush_now(self, now: float) -> None:
        """Send what is queued at once, without the writer task, when the connection has been
        quiet for `DIRECT_GAP` and the stream can (`TLSStream.send_nowait`: nothing else being
        sent); otherwise wake the writer. ``now``: trio's clock."""
        out = self._out
        if not out:
            return
        quiet = now - self._last_flush >= DIRECT_GAP
        self._last_flush = now
        send_nowait = getattr(self.stream, "send_nowait", None) if quiet else None
        if send_nowait is None or self.closed or self._closing:
            self._wake_writer()
            return
        payload = b"".join(out) if len(out) > 1 else out[0]
        try:
            done = send_nowait(payload)
        except (trio.BrokenResourceError, trio.ClosedResourceError, OSError) as e:
            log.info("connection %s %s: cannot send: %s", self.id, self.who, _say(e))
            self.abort()
            return
        except Exception as e:  # as in the writer: close this connection only, never the node
            log.info("connection %s %s: closed on %s: %s", self.id, self.who, type(e).__name__, e,
                     exc_info=not type(e).__module__.startswith(("OpenSSL", "sipsim.tls")))
            self.abort()
            return
        if done is None:  # the stream is busy sending: the writer joins this to what follows
            self._wake_writer()
            return
        self._out = []
        self.queued -= len(payload)
        if self._drained is not None and self.queued <= self.high_water // 2:
            self._drained.set()
            self._drained = None
        if done is False:  # the socket took part of it: the writer sends the rest
            self._backlogged = True
            self._wake_writer()

    def _queue(self, data: bytes) -> bool:
        if self.closed or self._closing:
            return False
        if self.queued + len(data) > self.max_queued_bytes:
            self.end_reason = "send_queue_full"
            log.warning("connection %s %s (%s): %d bytes wait to be sent, over max_queued_bytes %d: "
                        "the peer does not read; closing it", self.id, self.who, self.transport,
                        self.queued + len(data), self.max_queued_bytes)
            self.abort()
            return False
        self.queued += len(data)
        if self.queued > self.high_water and self._drained is None:
            self._drained = trio.Event()
        out = self._out
        out.append(data)
        return len(out) == 1  # the writer may be waiting for the first bytes

    def _wake_writer(self) -> None:
        task = self._writer_task
        if task is not None:
            self._writer_task = None
            trio.lowlevel.reschedule(task)
        elif not self._writer_started and self._nursery is not None:
            # no writer task until there is something to send (or the queue ends): an idle
            # connection costs one task, not two. Its cancel scope exists before the task runs,
            # so that abort() before its first step still stops it.
            self._writer_started = True
            scope = self._writer_scope = trio.CancelScope()
            done = self._writer_done = trio.Event()
            try:
                self._nursery.start_soon(self._write_then_cancel, scope)
            except RuntimeError:  # the nursery closed: the connection is ending anyway
                done.set()

    async def _sleep_until_woken(self) -> None:
        self._writer_task = trio.lowlevel.current_task()
        await trio.lowlevel.wait_task_rescheduled(self._abort_sleep)

    def _abort_sleep(self, _raise_cancel) -> Any:
        self._writer_task = None
        return trio.lowlevel.Abort.SUCCEEDED

    def abort(self) -> None:
        """Close now, without flushing (the runtime's finally closes the stream)."""
        self.closed = True
        self._end_queue(start_writer=False)
        self._cancel_tasks()

    def _cancel_tasks(self) -> None:
        """Stop the reader (while run() runs) and the writer task (if one was started)."""
        if self._scope is not None:
            self._scope.cancel()
        if self._writer_scope is not None:
            self._writer_scope.cancel()

    def close_after_flush(self) -> None:
        """Send what is queued (e.g. a 400 or 413), then close: the reader stops at once."""
        if self._closing or self.closed:
            return
        self._closing = True
        self._end_queue()  # the writer sends what is left, then ends the connection
        self._flush_deadline = trio.current_time() + FLUSH_TIMEOUT

    async def run(self, deliver: Callable[["SipConnection", bytes], None],
                  nursery: trio.Nursery | None = None) -> None:
        """Reader and writer until either ends; ``deliver(conn, b"")`` marks the end. The writer
        task, when one is needed, starts in ``nursery`` (the node's: no nursery per connection),
        or in a nursery of run()'s own when none is given."""
        if nursery is None:
            async with trio.open_nursery() as own:
                await self._run(deliver, own)
        else:
            await self._run(deliver, nursery)

    async def _run(self, deliver: Callable[["SipConnection", bytes], None], nursery: trio.Nursery) -> None:
        try:
            # the reader runs in this task, under a scope that abort(), aclose() and the writer's
            # end cancel; the writer task (if any) has its own scope
            with trio.CancelScope() as scope:
                self._scope = scope
                self._nursery = nursery
                if self.closed:
                    scope.cancel()
                elif self._out or self._backlogged or self._ended:
                    self._wake_writer()  # transmitted (or close_after_flush) before run() started
                await self.reader(deliver)
            self._scope = None
            done = self._writer_done
            if done is not None:
                if not self._closing:  # the reader ended (EOF, error, abort): so does the writer
                    self._writer_scope.cancel()
                # close_after_flush: the writer sends what is left, bounded by FLUSH_TIMEOUT;
                # otherwise it is cancelled. Either way run() returns after it, as a nursery would.
                with trio.CancelScope(shield=True):
                    await done.wait()
        finally:
            self._scope = None
            self._nursery = None
            self.closed = True

    async def _write_then_cancel(self, scope: trio.CancelScope) -> None:
        try:
            with scope:
                await self.writer()
        finally:
            if self._scope is not None:  # the reader stops too
                self._scope.cancel()
            self._writer_done.set()

    def _end_queue(self, start_writer: bool = True) -> None:
        """No more sends. The writer (if any) sends what is queued, then ends; ``start_writer``:
        start one for that when none runs yet (a graceful close; an abort or aclose drops the queue,
        so it starts no task only to cancel it)."""
        self._ended = True
        if start_writer or self._writer_task is not None:
            self._wake_writer()

    async def writer(self) -> None:
        """Write everything queued, joining what is already waiting into one send."""
        try:
            while True:
                batch = self._out
                if batch:
                    self._out = []
                    payload = b"".join(batch) if len(batch) > 1 else batch[0]
                elif self._backlogged:  # records send_nowait left in the stream
                    self._backlogged = False
                    payload = b""
                else:
                    if self._ended:
                        return
                    await self._sleep_until_woken()
                    continue
                timeout = SEND_STALL_TIMEOUT
                if self._closing:
                    timeout = max(0.0, self._flush_deadline - trio.current_time())
                with trio.move_on_after(timeout) as stalled:
                    if payload:
                        await self.stream.send_all(payload)
                    else:
                        await self.stream.flush()
                if stalled.cancelled_caught:
                    if not self._closing:
                        self.end_reason = "peer_not_reading"
                        log.warning("connection %s %s (%s): the peer took no bytes for %g s "
                                    "(%d bytes waiting): closing it", self.id, self.who, self.transport,
                                    SEND_STALL_TIMEOUT, self.queued)
                    return
                self.queued -= len(payload)
                if self.queued <= self.high_water // 2 and self._drained is not None:
                    self._drained.set()
                    self._drained = None
        except (trio.BrokenResourceError, trio.ClosedResourceError, OSError) as e:
            log.info("connection %s %s: cannot send: %s", self.id, self.who, _say(e))
        except Exception as e:  # a TLS failure while sending: close this connection only
            log.info("connection %s %s: closed on %s: %s", self.id, self.who,
                     type(e).__name__, e, exc_info=not type(e).__module__.startswith(("OpenSSL", "sipsim.tls")))
        finally:
            self.closed = True
            if self._drained is not None:
                self._drained.set()
                self._drained = None

    async def reader(self, deliver: Callable[["SipConnection", bytes], None]) -> None:
        """Feed received bytes to ``deliver`` until EOF or error; b"" marks the end."""
        try:
            while not self._closing:
                if self._drained is not None:  # back-pressure: answers are not being read
                    await self._drained.wait()
                    if self.closed or self._closing:
                        break
                data = await self.stream.receive_some(65536)
                if not data:
                    log.debug("connection %s %s: closed by the peer", self.id, self.who)
                    break
                if not self.mute and not self._closing:
                    deliver(self, data)
        except (trio.BrokenResourceError, trio.ClosedResourceError, OSError) as e:
            if hasattr(e, "reason") and hasattr(e, "record"):
                self.failure = e  # TLSFailure: e.g. TLS 1.3, the server rejected our certificate
            if _reset(e):
                log.info("connection %s %s (%s): reset by the peer", self.id, self.who, self.transport)
            elif not isinstance(e, trio.ClosedResourceError):
                log.debug("connection %s %s: %s", self.id, self.who, e or type(e).__name__)
        except Exception as e:  # a TLS error after the handshake, or a bug: never take the node down
            if hasattr(e, "reason") and hasattr(e, "record"):
                self.failure = e  # TLSFailure: e.g. TLS 1.3, the server rejected our certificate
            log.info("connection %s %s: closed on %s: %s", self.id, self.who,
                     type(e).__name__, e, exc_info=not type(e).__module__.startswith(("OpenSSL", "sipsim.tls")))
        finally:
            if not self._closing:
                self.closed = True
            deliver(self, b"")

    async def aclose(self) -> None:
        self.closed = True
        self._end_queue(start_writer=False)
        self._cancel_tasks()
        stream = self.stream
        bounded = getattr(stream, "aclose_bounded", None)  # TLSStream: a scope only if it must wait
        if bounded is not None:
            try:
                await bounded(1.0)
            except Exception:
                pass
            return
        with trio.move_on_after(1) as scope:
            scope.shield = True
            try:
                await self.stream.aclose()
            except Exception:
                pass


def _reset(error: BaseException) -> bool:
    """ECONNRESET anywhere in the chain (trio wraps the socket error; TLSStream wraps trio's)."""
    seen: set[int] = set()
    todo = [error]
    while todo:
        e = todo.pop()
        if id(e) in seen:
            continue
        seen.add(id(e))
        if isinstance(e, ConnectionResetError) or getattr(e, "errno", None) in (errno.ECONNRESET, errno.EPIPE):
            return True
        if "reset by peer" in str(e).lower():
            return True
        todo += [x for x in (e.__cause__, e.__context__) if x is not None]
    return False


def _say(e: BaseException) -> str:
    return "the peer reset the connection" if _reset(e) else (str(e) or type(e).__name__)
