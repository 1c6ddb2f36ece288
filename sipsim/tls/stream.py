"""`TLSStream`: pyOpenSSL over memory BIOs, driven over any `trio.abc.Stream`.

The pump follows trio's own `trio.SSLStream` (which does the same with the stdlib): each
operation calls OpenSSL, then does exactly one blocking thing – send what OpenSSL wants sent (all
of it, in one ``send_all``), or else receive more and feed it in – and loops. Two inner locks
(strict FIFO for sending, plus a receive counter so a task does not read when another task's read
already brought the bytes) make one reader task and one writer task on the same connection safe;
two tasks sending (or receiving) at once get `trio.BusyResourceError`.

Extras over `trio.SSLStream`: a `ConnectionRecord` with a Wireshark-like transcript; failures are
`TLSFailure(reason, detail, record)`; fatal alerts OpenSSL produces are sent before the error is
raised; the handshake is bounded by ``handshake_timeout``; `peer_check(leaf) -> str | None` runs
when the peer's chain has verified and rejects the handshake with a **bad_certificate** alert
(OpenSSL's X509_V_ERR_CERT_REJECTED mapping; a plain failing verify callback would send
internal_error); ``keylog(line)`` receives NSS key log lines; ``wire_tap(direction, data, t)``
receives the raw bytes each way (t = wall-clock seconds).

TLS 1.3 note: the client's handshake ends when it has sent its Finished, before the server has
judged its certificate; a rejection then reaches the client on its first read, where
`receive_some` raises the `TLSFailure` (this is also what CUCM users see).
"""

from __future__ import annotations

import datetime
import enum
import errno
import threading
import time
from typing import Callable

import trio
from OpenSSL import SSL, crypto
from OpenSSL._util import ffi as _ffi, lib as _lib

from .certinfo import CertInfo
from .context import STREAMS, context_info, enable_keylog, register_stream
from .errors import TLSFailure
from .hello import offers_tls13
from .record import ConnectionRecord
from .transcript import RECEIVED, SENT, CountsOnly, TranscriptBuilder, alert_snake, describe_bytes

RECEIVE_SIZE = 65536
WRITE_CHUNK = 256 * 1024

X509_V_ERR_CERT_REJECTED = 28
_MODE_RELEASE_BUFFERS = getattr(SSL, "MODE_RELEASE_BUFFERS", 0x10)
_CB_ALERT = SSL.SSL_CB_ALERT
_CB_WRITE = SSL.SSL_CB_WRITE
_CB_LOOP = SSL.SSL_CB_LOOP
_SSL_ERROR_WANT_READ = _lib.SSL_ERROR_WANT_READ
_NULL = _ffi.NULL
_wait_readable = trio.lowlevel.wait_readable
_wait_writable = trio.lowlevel.wait_writable
_EBADF = errno.EBADF
#: after the handshake, a TCP close without close_notify is the end of the stream (SSL_read returns
#: 0, SSL_ERROR_ZERO_RETURN). Without it OpenSSL 3 treats it as a fatal error: SSLfatal(decode_error,
#: "unexpected eof while reading") writes a fatal decode_error alert and leaves the connection in
#: its error state, which SSL_in_init() reports as "in the handshake" (so SSL_shutdown fails).
_OP_IGNORE_UNEXPECTED_EOF = getattr(_lib, "SSL_OP_IGNORE_UNEXPECTED_EOF", 0)
_OP_NO_TICKET = _lib.SSL_OP_NO_TICKET
#: OpenSSL's state while a client processes a NewSessionTicket
_READ_TICKET_STATE = "SSLv3/TLS read server session ticket"
_HAS_GROUP_NAME = bool(getattr(_lib, "Cryptography_HAS_SSL_GET0_GROUP_NAME", 0))
#: OpenSSL's state strings are static: decoded once per process, keyed by their address
_STATE_STRINGS: dict = {}
#: one read buffer per thread for every connection (a trio run is one thread and the bytes are
#: copied out at once; cffi releases the GIL during OpenSSL calls, so threads must not share it)
_BUFFERS = threading.local()


def _read_buffer():
    try:
        return _BUFFERS.buf
    except AttributeError:
        buf = _BUFFERS.buf = _ffi.new("char[]", RECEIVE_SIZE)
        return buf
# verify errors that mean "this chain does not lead to a certificate we trust"
_UNTRUSTED = {2, 7, 18, 19, 20, 21, 24, 27, 32}


_WANT_READ = object()     # what our own OpenSSL calls return instead of raising WantReadError


class _State(enum.Enum):
    OK = "ok"
    BROKEN = "broken"
    CLOSED = "closed"


class _Mutex:
    """A FIFO lock that costs nothing when nobody waits: no checkpoint on an uncontended acquire (the
    transport operation that follows is the checkpoint), and no ParkingLot until a task must wait.
    Ownership is handed to the next waiter on release, so the order is strict FIFO."""

    __slots__ = ("locked", "_lot")

    def __init__(self):
        self.locked = False
        self._lot: trio.lowlevel.ParkingLot | None = None

    async def acquire(self) -> None:
        if not self.locked:
            self.locked = True
            return
        if self._lot is None:
            self._lot = trio.lowlevel.ParkingLot()
        await self._lot.park()        # woken by release(), which leaves us the lock

    def release(self) -> None:
        lot = self._lot
        if lot:
            lot.unpark()
        else:
            self.locked = False


class _Conflict:
    """Raise BusyResourceError when two tasks use the same half of the stream at once."""

    __slots__ = ("_msg", "_held")

    def __init__(self, msg: str):
        self._msg = msg
        self._held = False

    def __enter__(self):
        if self._held:
            raise trio.BusyResourceError(self._msg)
        self._held = True

    def __exit__(self, *exc):
        self._held = False


def verify_error_text(errnum: int) -> str:
    try:
        return _ffi.string(_lib.X509_verify_cert_error_string(errnum)).decode()
    except Exception:
        return f"verify error {errnum}"


def _openssl_errors(exc: BaseException) -> list[str]:
    args = getattr(exc, "args", ())
    out = []
    if args and isinstance(args[0], list):
        for e in args[0]:
            if isinstance(e, tuple) and len(e) >= 3 and e[2]:
                out.append(str(e[2]))
    elif args and isinstance(args[0], tuple) and len(args) == 1:
        out.append(str(args[0]))
    elif isinstance(exc, SSL.SysCallError):
        out.append(" ".join(str(a) for a in args))
    return out


def _der(cert: crypto.X509) -> bytes:
    return crypto.dump_certificate(crypto.FILETYPE_ASN1, cert)


def _der_of(x509_ptr) -> bytes:
    """DER of an ``X509 *`` (no pyOpenSSL wrapper, no reference taken)."""
    bio = _lib.BIO_new(_lib.BIO_s_mem())
    try:
        if not _lib.i2d_X509_bio(bio, x509_ptr):
            return b""
        pp = _ffi.new("char **")
        n = _lib.BIO_get_mem_data(bio, pp)
        return _ffi.buffer(pp[0], n)[:]
    finally:
        _lib.BIO_free(bio)


#: the info callbacks `TLSStream._on_info` uses (state changes, alerts); OpenSSL also reports
#: handshake start/done and each exit from SSL_do_handshake/SSL_read (~7 of ~24 per handshake)
_INFO_USED = _CB_LOOP | _CB_ALERT


@_ffi.callback("void (*)(const SSL *, int, int)")
def _info_callback(ssl, where, ret):
    # one C callback for every connection: the stream is found by its SSL pointer
    if not where & _INFO_USED:
        return
    ref = STREAMS.get(ssl)
    if ref is not None:
        stream = ref()
        if stream is not None:
            stream._on_info(ssl, where, ret)


@_ffi.callback("void (*)(const SSL *, int, int)")
def _alert_callback(ssl, where, ret):
    # a server stream without a transcript: only alerts (failure reasons) reach Python
    if where & _CB_ALERT:
        ref = STREAMS.get(ssl)
        if ref is not None:
            stream = ref()
            if stream is not None:
                stream._on_info(ssl, where, ret)


@_ffi.callback("int (*)(int, X509_STORE_CTX *)")
def _verify_callback(ok, store_ctx):
    ssl = _lib.X509_STORE_CTX_get_ex_data(store_ctx, _lib.SSL_get_ex_data_X509_STORE_CTX_idx())
    ref = STREAMS.get(ssl)
    stream = ref() if ref is not None else None
    if stream is None:
        return 0
    return stream._on_verify(ok, store_ctx)


_CA_NAME_TEXT: dict[bytes, str] = {}


def _ca_name_text(name) -> str:
    """RFC 4514 text of an ``X509_NAME *`` (as pyOpenSSL's get_client_ca_list + cryptography)."""
    pp = _ffi.new("unsigned char **")
    n = _lib.i2d_X509_NAME(name, pp)
    if n < 0:
        raise ValueError("i2d_X509_NAME failed")
    der = _ffi.buffer(pp[0], n)[:]
    _lib.OPENSSL_free(pp[0])
    text = _CA_NAME_TEXT.get(der)
    if text is None:
        from cryptography import x509

        text = x509.Name.from_bytes(der).rfc4514_string()
        if len(_CA_NAME_TEXT) < 1024:
            _CA_NAME_TEXT[der] = text
    return text


def _raise_stream_error(exc: OSError):
    """What trio's SocketStream raises for a socket error (the same types and messages)."""
    if exc.errno == _EBADF:
        raise trio.ClosedResourceError("this socket was already closed") from None
    raise trio.BrokenResourceError(f"socket connection broken: {exc}") from exc


def _clock_since(t0: float) -> Callable[[], float]:
    # the run's clock object itself (trio.current_time is three calls deep); MockClock in tests
    now = trio.lowlevel.current_clock().current_time

    def clock() -> float:
        return (now() - t0) * 1000.0
    return clock


def _state_string(ptr) -> str:
    text = _STATE_STRINGS.get(ptr)
    if text is None:
        text = _ffi.string(ptr).decode("ascii", "replace")
        if len(_STATE_STRINGS) < 4096:
            _STATE_STRINGS[ptr] = text
    return text


def _group_name(ssl) -> str | None:
    """The negotiated key exchange group (None: RSA key transport, as AES128-SHA, or unknown)."""
    if not _HAS_GROUP_NAME:
        return None
    name = _lib.SSL_get0_group_name(ssl)
    return _ffi.string(name).decode("ascii", "replace") if name != _NULL else None


def _addr(addr) -> str:
    host, port = addr[0], addr[1]
    return f"[{host}]:{port}" if ":" in str(host) else f"{host}:{port}"


class TLSStream(trio.abc.Stream):
    """A TLS connection over ``transport_stream`` (see the module docstring). ``transcript=False``
    (server side only): keep no flights — ``record.transcript`` stays empty, failure reasons are
    the same (``sipsim serve``, which writes no report)."""

    # no per-instance __dict__: thousands of idle connections (docs/performance.md)
    __slots__ = ("transport_stream", "context", "server_side", "peer_check", "keylog", "wire_tap", "_info",
                 "handshake_timeout", "_t0", "record", "_tx", "_conn", "_ssl", "_state",
                 "_send_conflict", "_recv_conflict", "_inner_send_lock", "_inner_recv_lock", "_recv_count",
                 "_received_total", "_eof",
                 "_handshake_started", "_handshake_done", "_handshake_event", "_failure", "_hs_start",
                 "_verify_errors", "_chain_seen", "_peer_check_msg", "_peer_checked", "_callback_problem",
                 "_alert_sent_code", "_alert_received_code", "_timed_out", "_sock", "_tickets_received", "_backlog",
                 "__weakref__")

    def __init__(
        self,
        transport_stream: trio.abc.Stream,
        context: SSL.Context,
        *,
        server_side: bool,
        peer_check: Callable[[CertInfo], str | None] | None = None,
        keylog: Callable[[bytes], None] | None = None,
        local=("127.0.0.1", 5061),
        remote=("127.0.0.2", 40000),
        handshake_timeout: float | None = None,
        wire_tap: Callable[[str, bytes, float], None] | None = None,
        local_name: str | None = None,
        peer_name: str | None = None,
        server_name: str | None = None,
        transcript: bool = True,
    ):
        self.transport_stream = transport_stream
        # A trio SocketStream is driven through its socket directly (the same errors as trio's
        # SocketStream, without its context managers and a scheduler pass per send and receive)
        self._sock = None
        if type(transport_stream) is trio.SocketStream:
            self._sock = getattr(transport_stream.socket, "_sock", None)
        self.context = context
        self.server_side = server_side
        self.peer_check = peer_check
        self.keylog = keylog
        if keylog is not None:
            enable_keylog(context)
        self.wire_tap = wire_tap
        info = context_info(context)
        self._info = info
        if handshake_timeout is None:
            handshake_timeout = info.cfg.handshake_timeout if info is not None else 10.0
        self.handshake_timeout = handshake_timeout
        self._t0 = trio.current_time()
        self.record = ConnectionRecord(
            role="server" if server_side else "client",
            local=tuple(local) if local else ("", 0),
            remote=tuple(remote) if remote else ("", 0),
            started_at=datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="milliseconds"),
            local_name=local_name,
            peer_name=peer_name,
        )
        if info is not None:
            self.record.local_chain = list(info.local_chain)
            if server_side:
                self.record.ca_names = list(info.ca_names)
        if transcript or not server_side:
            self._tx = TranscriptBuilder(_clock_since(self._t0))
            self.record._tx = self._tx    # flights are named when the record's transcript is read
        else:
            # nobody will read this server connection's flights: keep only what failure reasons use
            self._tx = CountsOnly(_clock_since(self._t0))

        conn = SSL.Connection(context, None)
        ssl = self._ssl = conn._ssl
        # Free OpenSSL's read/write buffers while the connection is idle (tens of kB each).
        _lib.SSL_set_mode(ssl, _MODE_RELEASE_BUFFERS)
        register_stream(ssl, self)
        # Our info callback at the C level (no pyOpenSSL wrapper per call, no closure per connection).
        _lib.SSL_set_info_callback(ssl, _info_callback if transcript or not server_side else _alert_callback)
        if server_side:
            conn.set_accept_state()
        else:
            conn.set_connect_state()
            if server_name:
                conn.set_tlsext_host_name(server_name.encode("idna"))
        # Our own verify callback at the C level, so that a peer_check rejection can set
        # X509_V_ERR_CERT_REJECTED (→ bad_certificate alert) on the store context.
        _lib.SSL_set_verify(ssl, context.get_verify_mode(), _verify_callback)
        self._conn = conn

        self._state = _State.OK
        self._send_conflict = _Conflict("another task is sending on this TLSStream")
        self._recv_conflict = _Conflict("another task is receiving on this TLSStream")
        self._inner_send_lock = _Mutex()
        self._inner_recv_lock = _Mutex()
        self._recv_count = 0
        self._received_total = 0      # bytes fed into OpenSSL
        self._eof = False
        self._handshake_started = False
        self._handshake_done = False
        self._handshake_event: trio.Event | None = None   # made when a second task waits
        self._failure: TLSFailure | None = None
        self._hs_start: float | None = None
        # evidence for reasons
        self._verify_errors: list[tuple[int, int, CertInfo | None]] = []
        self._chain_seen: dict[int, CertInfo] = {}
        self._peer_check_msg: str | None = None
        self._peer_checked = False
        self._callback_problem: BaseException | None = None
        self._alert_sent_code: int | None = None
        self._alert_received_code: int | None = None
        self._timed_out = False
        self._tickets_received = 0    # TLS 1.3 NewSessionTickets processed (the server's verdict)
        self._backlog = b""           # records send_nowait made that the socket has not taken yet

    # ------------------------------------------------------------------ OpenSSL callbacks
    def _on_info(self, ssl, where: int, ret: int) -> None:
        try:
            if where & _CB_LOOP:
                # OpenSSL's state strings are static: their address names the state (no decoding,
                # no name lookup but the first time; see TranscriptBuilder.on_state_key)
                ptr = _lib.SSL_state_string_long(ssl)      # a cdata pointer: hashed by address
                state = _STATE_STRINGS.get(ptr)
                if state is None:
                    state = _state_string(ptr)
                self._tx.on_state_key(ptr, state)
                if state == _READ_TICKET_STATE and self._handshake_done:
                    self._tickets_received += 1
            elif where & _CB_ALERT:
                level, desc = (ret >> 8) & 0xFF, ret & 0xFF
                direction = SENT if where & _CB_WRITE else RECEIVED
                self._tx.on_alert(direction, level, desc)
                if desc == 0:
                    if direction == SENT:
                        self.record.close_notify_sent = True
                    else:
                        self.record.close_notify_received = True
                elif direction == SENT and self._alert_sent_code is None:
                    self._alert_sent_code = desc
                    self.record.alert_sent = alert_snake(desc)
                elif direction == RECEIVED and self._alert_received_code is None:
                    self._alert_received_code = desc
                    self.record.alert_received = alert_snake(desc)
        except Exception as exc:  # never let a callback raise into OpenSSL
            self._callback_problem = exc

    def _on_verify(self, ok: int, store_ctx) -> int:
        try:
            x = _lib.X509_STORE_CTX_get_current_cert(store_ctx)
            errnum = _lib.X509_STORE_CTX_get_error(store_ctx)
            depth = _lib.X509_STORE_CTX_get_error_depth(store_ctx)
            ci = None
            if x != _NULL:
                ci = CertInfo.from_der(_der_of(x))
                self._chain_seen.setdefault(depth, ci)
            if not ok:
                self._verify_errors.append((errnum, depth, ci))
                return 0
            if depth == 0 and self.peer_check is not None and not self._peer_checked and ci is not None:
                self._peer_checked = True
                try:
                    verdict = self.peer_check(ci)
                except Exception as exc:
                    verdict = f"the X.509 Subject Name check failed with {type(exc).__name__}: {exc}"
                if verdict:
                    self._peer_check_msg = str(verdict)
                    self.record.peer_subject_ok = False
                    _lib.X509_STORE_CTX_set_error(store_ctx, X509_V_ERR_CERT_REJECTED)
                    return 0
                self.record.peer_subject_ok = True
            return 1
        except Exception as exc:
            self._callback_problem = exc
            return 0

    def _on_keylog(self, line: bytes) -> None:
        if self.keylog is not None:
            try:
                self.keylog(bytes(line))
            except Exception as exc:
                self._callback_problem = exc

    # ------------------------------------------------------------------ the pump
    def _check_status(self) -> None:
        if self._state is _State.OK:
            return
        if self._state is _State.BROKEN:
            if self._failure is not None:
                raise self._failure
            raise trio.BrokenResourceError("the TLS connection is broken")
        raise trio.ClosedResourceError("the TLS connection is closed")

    def _drain_outgoing(self) -> bytes:
        """Everything OpenSSL wrote into its outgoing memory BIO, in one read."""
        bio = self._conn._from_ssl
        n = _lib.BIO_get_mem_data(bio, _NULL)
        if n <= 0:
            return b""
        buf = _read_buffer() if n <= RECEIVE_SIZE else _ffi.new("char[]", n)
        got = _lib.BIO_read(bio, buf, n)
        return _ffi.buffer(buf, got)[:] if got > 0 else b""

    def _after_call(self) -> None:
        # How much of what we fed in has OpenSSL consumed? (memory BIO length)
        left = _lib.BIO_get_mem_data(self._conn._into_ssl, _NULL)
        self._tx.resolve_received(self._received_total - (left if left > 0 else 0))

    def _ssl_do_handshake(self) -> None:
        ssl = self._ssl
        result = _lib.SSL_do_handshake(ssl)
        if result <= 0:
            if _lib.SSL_get_error(ssl, result) == _SSL_ERROR_WANT_READ:
                return _WANT_READ
            self._conn._raise_ssl_error(ssl, result)
        return None

    def _ssl_send(self, data: bytes) -> int:
        """pyOpenSSL's Connection.send without its wrapper (bytes, at most WRITE_CHUNK)."""
        ssl = self._ssl
        result = _lib.SSL_write(ssl, data, len(data))
        if result <= 0:
            if _lib.SSL_get_error(ssl, result) == _SSL_ERROR_WANT_READ:
                return _WANT_READ
            self._conn._raise_ssl_error(ssl, result)
        return result

    def _ssl_recv(self, max_bytes: int) -> bytes:
        ssl = self._ssl
        n = max_bytes if max_bytes < RECEIVE_SIZE else RECEIVE_SIZE
        buf = _read_buffer()
        result = _lib.SSL_read(ssl, buf, n)
        if result <= 0:
            if _lib.SSL_get_error(ssl, result) == _SSL_ERROR_WANT_READ:
                return _WANT_READ
            self._conn._raise_ssl_error(ssl, result)
        return _ffi.buffer(buf, result)[:]

    async def _transport_send(self, data: bytes) -> bool:
        """Send all of ``data``; True when the task waited (a scheduler pass)."""
        self._tx.on_wire(SENT, data)
        if self.wire_tap is not None:
            self.wire_tap(SENT, data, time.time())
        if self._backlog:             # send_nowait's records first (the caller holds the send lock)
            data = self._backlog + data
            self._backlog = b""
        if self._sock is None:
            await self.transport_stream.send_all(data)
            return True
        return await self._sock_send_all(data)

    async def _sock_send_all(self, data: bytes) -> bool:
        """trio's SocketStream.send_all on the socket itself: one send() when the socket takes it all
        (no checkpoint: the caller's operation has its own), a wait for writability otherwise."""
        sock = self._sock
        if self.transport_stream.socket.did_shutdown_SHUT_WR:
            raise trio.ClosedResourceError("can't send data after sending EOF")
        total = len(data)
        sent = 0
        view = None
        waited = False
        while True:
            try:
                sent += sock.send(data if view is None else view[sent:])
            except BlockingIOError:
                pass
            except OSError as exc:
                _raise_stream_error(exc)
            if sent >= total:
                return waited
            if view is None:
                view = memoryview(data)
            waited = True
            await _wait_writable(sock)

    async def _sock_receive_after_wait(self) -> bytes:
        """trio's SocketStream.receive_some on the socket itself, after the caller's recv() found
        nothing: a wait for readability, then recv() (again after a spurious wake-up)."""
        sock = self._sock
        await _wait_readable(sock)
        while True:
            try:
                return sock.recv(RECEIVE_SIZE)
            except BlockingIOError:
                pass
            except OSError as exc:
                _raise_stream_error(exc)
            await _wait_readable(sock)

    async def _retry(self, fn, *args, ignore_want_read: bool = False, is_read: bool = False):
        """Call OpenSSL until ``fn`` finishes: after each call send what it wrote (one send_all),
        and when it wants more input receive once and feed it in (the send and the receive of one
        round in the same pass: OpenSSL has nothing new to say before new input arrives)."""
        await trio.lowlevel.checkpoint_if_cancelled()
        yielded = False
        tx = self._tx
        ret = None
        while True:
            want_read = False
            finished = False
            error: BaseException | None = None
            tx.begin_call()
            try:
                ret = fn(*args)
                if ret is _WANT_READ:
                    ret = None
                    want_read = True
                else:
                    finished = True
            except SSL.WantReadError:
                want_read = True
            except SSL.ZeroReturnError:
                ret = b""
                finished = True
            except SSL.Error as exc:      # includes SysCallError (unexpected EOF)
                error = exc
            self._after_call()
            if ignore_want_read:
                want_read = False
                finished = True
            recv_count = self._recv_count
            to_send = self._drain_outgoing()
            if error is not None:
                if is_read and self._handshake_done and self._eof and self._alert_received_code is None:
                    # The peer closed TCP without close_notify (common for SIP peers): end of stream.
                    if to_send:
                        await self._send_best_effort(to_send)
                    return b""
                self._state = _State.BROKEN
                if ignore_want_read:
                    # aclose's SSL_shutdown after a completed handshake: the connection's outcome is
                    # already recorded (never rewritten as a handshake failure), nothing more is sent
                    raise trio.BrokenResourceError(f"TLS shutdown failed: {error!r}") from error
                if to_send:          # the fatal alert: the peer must see it
                    await self._send_best_effort(to_send)
                raise self._make_failure(error)
            if to_send:
                lock = self._inner_send_lock
                if lock.locked:
                    yielded = True
                await lock.acquire()
                try:
                    if await self._transport_send(to_send):
                        yielded = True
                except BaseException:
                    if self._state is _State.OK:   # (not a stream closed while we waited)
                        self._state = _State.BROKEN
                    raise
                finally:
                    lock.release()
            if finished:
                break
            if want_read and await self._receive_once(recv_count):
                yielded = True
        if not yielded:
            await trio.lowlevel.cancel_shielded_checkpoint()
        return ret

    async def _receive_once(self, recv_count: int) -> bool:
        """One receive into OpenSSL's input BIO — unless another task received since ``recv_count``
        (OpenSSL then has new input already). True when the task waited (a scheduler pass)."""
        yielded = False
        lock = self._inner_recv_lock
        if lock.locked:
            yielded = True
        await lock.acquire()
        try:
            if recv_count == self._recv_count:
                try:
                    sock = self._sock
                    if sock is not None:
                        try:            # the bytes may be there already: no wait, no pass
                            data = sock.recv(RECEIVE_SIZE)
                        except BlockingIOError:
                            yielded = True
                            data = await self._sock_receive_after_wait()
                        except OSError as exc:
                            _raise_stream_error(exc)
                    else:
                        yielded = True
                        data = await self.transport_stream.receive_some(RECEIVE_SIZE)
                except BaseException:
                    # (a stream closed while we waited stays closed: the reader of a
                    # connection being closed is cancelled here after aclose() sent close_notify)
                    if self._state is _State.OK:
                        self._state = _State.BROKEN
                    raise
                if not data:
                    self._eof = True
                    self._conn.bio_shutdown()
                else:
                    data = bytes(data)
                    if self.wire_tap is not None:
                        self.wire_tap(RECEIVED, data, time.time())
                    self._tx.on_wire(RECEIVED, data)
                    into = self._conn._into_ssl      # pyOpenSSL's bio_write, unwrapped
                    written = _lib.BIO_write(into, data, len(data))
                    if written <= 0:
                        self._conn._handle_bio_errors(into, written)
                    self._received_total += len(data)
                self._recv_count += 1
        finally:
            lock.release()
        return yielded

    async def _send_best_effort(self, data: bytes) -> None:
        with trio.move_on_after(2.0):
            try:
                await self._inner_send_lock.acquire()
                try:
                    await self._transport_send(data)
                finally:
                    self._inner_send_lock.release()
            except (trio.BrokenResourceError, trio.ClosedResourceError, trio.BusyResourceError, OSError):
                pass

    # ------------------------------------------------------------------ handshake
    async def do_handshake(self) -> None:
        """Run the TLS handshake (once; concurrent callers wait for the first). Raises
        `TLSFailure(reason, detail, record)`; ``self.record`` is filled in either way."""
        if self._handshake_done:
            self._check_status()
            await trio.lowlevel.checkpoint()
            return
        if self._handshake_started:
            if self._handshake_event is None:
                self._handshake_event = trio.Event()
            await self._handshake_event.wait()
            if self._failure is not None:
                raise self._failure
            self._check_status()
            return
        self._check_status()
        self._handshake_started = True
        self._hs_start = trio.current_time()
        try:
            try:
                # a bare CancelScope: trio.fail_after is a generator context manager (~3 % of a
                # handshake's Python time in bench/handshakes.py)
                scope = trio.CancelScope(deadline=self._hs_start + self.handshake_timeout)
                with scope:
                    if self.server_side and not self._recv_count:
                        # a server has nothing to say before the ClientHello: receive first
                        # (not an OpenSSL call that can only answer "want read")
                        await self._receive_once(0)
                        info = self._info
                        if info is not None and info.cfg.max_version == "1.3":
                            await self._choose_ticket_kind()
                    await self._retry(self._ssl_do_handshake)
                if scope.cancelled_caught:
                    self._state = _State.BROKEN
                    self._timed_out = True
                    raise self._make_failure(None)
            except TLSFailure:
                raise
            except (trio.BrokenResourceError, trio.ClosedResourceError, OSError) as exc:
                # the transport itself failed (peer reset the TCP connection, …)
                self._state = _State.BROKEN
                raise self._make_failure(exc) from exc
            self._handshake_done = True
            self._tx.handshake_done = True
            if _OP_IGNORE_UNEXPECTED_EOF:      # not during the handshake: there EOF is a failure
                _lib.SSL_set_options(self._ssl, _OP_IGNORE_UNEXPECTED_EOF)
            self._fill_success()
            if self.record.resumed and self.peer_check is not None and not self._peer_checked:
                self._check_resumed_peer()
            self._trim()
        except BaseException:
            self._state = _State.BROKEN
            raise
        finally:
            if self._handshake_event is not None:
                self._handshake_event.set()

    async def _choose_ticket_kind(self) -> None:
        """A server about to answer a TLS 1.3 ClientHello issues *stateful* NewSessionTickets: the
        session stays in this context's session cache and the ticket names it (OpenSSL's
        SSL_OP_NO_TICKET under TLS 1.3). A stateless ticket carries the whole session encrypted —
        with mutual TLS that includes the client's certificate, which OpenSSL decodes and encodes
        again for each of its two tickets (~90 µs of a ~1.1 ms handshake; 2 kB more on the wire).
        The peer sees the same messages and resumes the same way. Under TLS 1.2 the option would
        mean no ticket at all (seed 003's CUCM sends one), so it is set only when the ClientHello
        offers 1.3 — before OpenSSL reads it, which is also when OpenSSL decides how to look a
        presented ticket up; so a ClientHello that arrives in pieces is read whole first."""
        into = self._conn._into_ssl
        pp = _ffi.new("char **")
        for _ in range(32):        # a peer trickling its hello byte by byte gets stateless tickets
            n = _lib.BIO_get_mem_data(into, pp)
            verdict = offers_tls13(_ffi.buffer(pp[0], n)[:] if n > 0 else b"")
            if verdict is not None or self._eof:
                break
            await self._receive_once(self._recv_count)
        if verdict:
            _lib.SSL_set_options(self._ssl, _OP_NO_TICKET)

    async def _ensure_handshake(self) -> None:
        if not self._handshake_done:
            await self.do_handshake()

    def _fill_success(self) -> None:
        r = self.record
        r.handshake_ms = (trio.current_time() - self._hs_start) * 1000.0
        name = self._conn.get_protocol_version_name()
        r.version = "TLSv1.0" if name == "TLSv1" else name
        r.cipher = self._conn.get_cipher_name()
        r.group = _group_name(self._ssl)
        r.peer_chain = self._peer_chain()
        r.resumed = bool(_lib.SSL_session_reused(self._ssl))
        if self._info is not None and self._info.ecdsa_chain:
            # Two identities (CallManager + CallManager-ECDSA): record the one OpenSSL presented.
            try:
                used = self._conn.get_certificate()
                used_fp = CertInfo.from_der(_der(used)).sha256 if used is not None else None
            except Exception:
                used_fp = None
            if used_fp == self._info.ecdsa_chain[0].sha256:
                r.local_chain = list(self._info.ecdsa_chain)
        if not self.server_side:
            r.ca_names = self._received_ca_names()
        self._sync_record()

    def _check_resumed_peer(self) -> None:
        """A resumed session (the peer offered its ticket or session ID) verifies no certificate, so
        the verify callback never ran: the profile's check runs here, on the session's certificate.
        A rejection cannot be an alert in the handshake any more; the connection fails with
        subject_not_allowed and is closed."""
        chain = self.record.peer_chain
        if not chain:
            return
        self._peer_checked = True
        try:
            verdict = self.peer_check(chain[0])
        except Exception as exc:
            verdict = f"the X.509 Subject Name check failed with {type(exc).__name__}: {exc}"
        if verdict:
            self._peer_check_msg = str(verdict)
            self.record.peer_subject_ok = False
            self._state = _State.BROKEN
            raise self._make_failure(None)
        self.record.peer_subject_ok = True

    def _peer_chain(self) -> list[CertInfo]:
        # DER straight from OpenSSL: CertInfo.from_der parses a certificate once per process
        out = []
        try:
            ssl = self._ssl
            leaf = _lib.SSL_get_peer_certificate(ssl)      # a new reference
            if leaf != _NULL:
                try:
                    out.append(CertInfo.from_der(_der_of(leaf)))
                finally:
                    _lib.X509_free(leaf)
            chain = _lib.SSL_get_peer_cert_chain(ssl)      # borrowed
            if chain != _NULL:
                for i in range(_lib.sk_X509_num(chain)):
                    ci = CertInfo.from_der(_der_of(_lib.sk_X509_value(chain, i)))
                    if not out or ci.sha256 != out[0].sha256:
                        out.append(ci)
        except Exception:
            out = []
        if not out and self._chain_seen:
            out = [self._chain_seen[d] for d in sorted(self._chain_seen)]
        return out

    def _received_ca_names(self) -> list[str]:
        """The CA names the server asked for (RFC 4514), each name's text memoised by its DER (a
        client meets the same few lists again and again)."""
        try:
            ca_names = _lib.SSL_get_client_CA_list(self._ssl)
            if ca_names == _NULL:
                return []
            out = []
            for i in range(_lib.sk_X509_NAME_num(ca_names)):
                out.append(_ca_name_text(_lib.sk_X509_NAME_value(ca_names, i)))
            return out
        except Exception:
            return []

    def _sync_record(self) -> None:
        pass              # the record reads the live transcript (ConnectionRecord.transcript)

    def _trim(self) -> None:
        """After a successful handshake: let go of what only the handshake needed. OpenSSL's memory
        BIOs keep the capacity of the largest flight they held (a certificate flight: several kB
        each), so both are replaced by fresh ones (any received bytes not yet consumed move over)."""
        self.peer_check = None
        self._tx.pack()
        conn = self._conn
        try:
            old_in = conn._into_ssl
            pp = _ffi.new("char **")
            left = _lib.BIO_get_mem_data(old_in, pp)
            pending = _ffi.buffer(pp[0], left)[:] if left > 0 else b""
            new_in = _lib.BIO_new(_lib.BIO_s_mem())
            new_out = _lib.BIO_new(_lib.BIO_s_mem())
            if new_in == _NULL or new_out == _NULL:
                if new_in != _NULL:
                    _lib.BIO_free(new_in)
                if new_out != _NULL:
                    _lib.BIO_free(new_out)
                return
            if pending:
                _lib.BIO_write(new_in, pending, len(pending))
            _lib.SSL_set_bio(self._ssl, new_in, new_out)     # frees the old pair
            conn._into_ssl, conn._from_ssl = new_in, new_out
        except Exception as exc:  # keep the connection as it is
            self._callback_problem = exc

    # ------------------------------------------------------------------ failure reasons
    def _who(self) -> str:
        return self.record.local_name or f"this node ({_addr(self.record.local)})"

    def _peer(self, leaf: CertInfo | None = None) -> str:
        base = self.record.peer_name or _addr(self.record.remote)
        if self.record.peer_name:
            base = f"{base} ({_addr(self.record.remote)})"
        if leaf is not None:
            return f"{base} [{leaf.label}]"
        return base

    def _our_label(self) -> str:
        chain = self.record.local_chain
        return chain[0].label if chain else "(no certificate)"

    def _our_cert(self) -> str:
        """"CUCM7-SUB1's certificate CN=…" / "our certificate CN=… (this node 127.0.0.1:5061)"."""
        if self.record.local_name:
            return f"{self.record.local_name}'s certificate {self._our_label()}"
        return f"our certificate {self._our_label()} (this node {_addr(self.record.local)})"

    def _peer_short(self) -> str:
        return self.record.peer_name or _addr(self.record.remote)

    def _make_failure(self, error: BaseException | None) -> TLSFailure:
        self._tx.finish()
        r = self.record
        if error is not None:
            r.openssl_errors = _openssl_errors(error)
        r.verify_errors = [
            {"errnum": e, "depth": d, "text": verify_error_text(e), "subject": ci.subject if ci else None}
            for e, d, ci in self._verify_errors
        ]
        if not r.peer_chain:
            r.peer_chain = self._peer_chain()
        if not self.server_side and not r.ca_names:
            r.ca_names = self._received_ca_names()
        if self._hs_start is not None and r.handshake_ms is None:
            r.handshake_ms = (trio.current_time() - self._hs_start) * 1000.0
        reason, detail = self._classify(error)
        r.reason, r.detail = reason, detail
        self._sync_record()
        failure = TLSFailure(reason, detail, r)
        self._failure = failure
        return failure

    def _classify(self, error: BaseException | None) -> tuple[str, str]:
        who, peer = self._who(), self._peer()
        leaf = self._chain_seen.get(0)
        peer_c = self._peer(leaf)
        errs = " ".join(self.record.openssl_errors).lower()
        rcv = self._alert_received_code
        rcv_name = alert_snake(rcv) if rcv is not None else None

        if self._timed_out:
            if self._tx.bytes_seen(RECEIVED) == 0:
                what = "sent nothing"
            else:
                what = f"stopped after {self._tx.bytes_seen(RECEIVED)} bytes"
            return "timeout", (
                f"The TLS handshake with {peer} did not finish within {self.handshake_timeout:g} s "
                f"(the peer {what}): check that it listens for TLS on that port and is not overloaded."
            )
        if self._tx.not_tls(RECEIVED):
            first = describe_bytes(self._tx.first_bytes(RECEIVED))
            hint = " (plaintext SIP?)" if any(
                self._tx.first_bytes(RECEIVED).startswith(m) for m in
                (b"SIP/2.0", b"OPTIONS", b"INVITE", b"REGISTER", b"BYE", b"ACK", b"CANCEL", b"NOTIFY", b"SUBSCRIBE", b"INFO", b"UPDATE", b"PRACK", b"REFER", b"MESSAGE", b"PUBLISH", b"\r\n")
            ) else ""
            return "tls_handshake_failed", (
                f"The peer did not speak TLS: {peer} sent {first}{hint} instead of a TLS record; "
                "make its transport TLS (SIP Trunk Security Profile) or connect to its TCP port instead."
            )
        if self._peer_check_msg:
            return "subject_not_allowed", self._peer_check_msg
        for errnum, depth, ci in self._verify_errors:
            if errnum == 0:
                continue
            text = verify_error_text(errnum)
            subj = ci.label if ci else "a certificate"
            if errnum == 10:
                when = f" on {ci.not_after}" if ci else ""
                return "tls_cert_expired", (
                    f"{who} rejected {peer_c}: certificate {subj} expired{when} ({text}, depth {depth}); "
                    f"renew it on {self._peer_short()} and upload the new one (or its CA) to {who}."
                )
            if errnum == 9:
                when = f" before {ci.not_before}" if ci else ""
                return "tls_cert_not_yet_valid", (
                    f"{who} rejected {peer_c}: certificate {subj} is not valid{when} ({text}, depth {depth}); "
                    "check the clocks (NTP) or reissue the certificate."
                )
            if errnum == 26:
                return "tls_bad_eku", (
                    f"{who} rejected {peer_c}: certificate {subj} is not allowed for TLS "
                    f"{'client' if self.server_side else 'server'} use ({text}); reissue it with "
                    "extended key usage serverAuth and clientAuth (CallManager template)."
                )
            if errnum in _UNTRUSTED:
                return "tls_unknown_ca", (
                    f"{who} does not trust {peer_c} ({text}, depth {depth}): upload its certificate "
                    f"(or its CA) to {who} as CallManager-trust."
                )
            return "tls_handshake_failed", (
                f"{who} rejected the certificate of {peer_c} ({text}, depth {depth}); "
                "fix or reissue that certificate."
            )
        ours = self._our_label()
        if rcv_name in ("unknown_ca", "certificate_unknown"):
            return "tls_unknown_ca", (
                f"{peer} does not trust {self._our_cert()} (it sent alert {rcv_name}): upload "
                f"{ours} (or its CA) to {self._peer_short()} as CallManager-trust."
            )
        if rcv_name == "bad_certificate":
            return "tls_unknown_ca", (
                f"{peer} rejected {self._our_cert()} (alert bad_certificate): upload it (or its CA) "
                f"to {self._peer_short()} as CallManager-trust, or add {ours} to the X.509 Subject "
                f"Name list of {self._peer_short()}."
            )
        if rcv_name == "certificate_expired":
            return "tls_cert_expired", (
                f"{peer} rejected {self._our_cert()} as expired (alert certificate_expired); "
                f"renew {ours} and upload it to {self._peer_short()}."
            )
        if rcv_name == "unsupported_certificate":
            return "tls_bad_eku", (
                f"{peer} rejected {self._our_cert()} (alert unsupported_certificate: wrong key "
                "usage or extended key usage); reissue it with serverAuth and clientAuth."
            )
        # (both only matter to a client that received handshake_failure: naming the transcript
        # for every other failure, e.g. a shutdown after the peer left, would be wasted)
        if not self.server_side and rcv_name == "handshake_failure":
            no_cert_sent = self._conn.get_certificate() is None
            server_hello = self._tx.seen(RECEIVED, "Server Hello")
        else:
            no_cert_sent = server_hello = False
        if self.server_side and "peer did not return a certificate" in errs:
            return "tls_no_peer_cert", (
                f"{peer} sent no client certificate but {who} requires one (mutual TLS): give "
                f"{self._peer_short()} a CallManager certificate (or turn off require_peer_cert)."
            )
        if not self.server_side and (rcv_name == "certificate_required"
                                     or (rcv_name == "handshake_failure" and no_cert_sent and server_hello)):
            return "tls_no_peer_cert", (
                f"{peer} requires a client certificate and {who} has none (alert {rcv_name}): give "
                f"{who} a certificate (cert_file/key_file)."
            )
        if rcv_name == "protocol_version" or any(s in errs for s in (
                "unsupported protocol", "no protocols available", "version too low",
                "tlsv1 alert protocol version", "wrong ssl version")):
            return "tls_protocol_version", (
                f"{who} and {peer} have no TLS version in common ({self._versions_text()}"
                f"{', alert protocol_version' if rcv_name == 'protocol_version' or self.record.alert_sent == 'protocol_version' else ''}); "
                "align the minimum TLS version of both nodes."
            )
        if "no shared cipher" in errs or "no ciphers available" in errs or rcv_name == "insufficient_security" \
                or (rcv_name == "handshake_failure" and not self.server_side and not server_hello):
            return "tls_no_shared_cipher", (
                f"{who} and {peer} have no cipher suite in common ({self._cipher_text()}"
                f"{', alert ' + rcv_name if rcv_name else ''}); align the TLS cipher settings "
                "(Authenticated = NULL-SHA needs Authenticated on both sides)."
            )
        if rcv_name is not None and rcv_name != "close_notify":
            return "tls_handshake_failed", (
                f"{peer} aborted the TLS {'connection' if self._handshake_done else 'handshake'} with alert {rcv_name}"
                f"{' (' + '; '.join(self.record.openssl_errors) + ')' if self.record.openssl_errors else ''}; "
                "check its TLS settings and certificates."
            )
        if self._eof or isinstance(error, SSL.SysCallError) or "unexpected eof" in errs:
            return "tls_handshake_failed", (
                f"{peer} closed the connection during the TLS handshake without an alert "
                f"(after {self._tx.bytes_seen(RECEIVED)} bytes); check that it accepts TLS from "
                f"{who} (its logs say why)."
            )
        if isinstance(error, (trio.BrokenResourceError, trio.ClosedResourceError, OSError)):
            return "tls_handshake_failed", (
                f"The connection to {peer} broke during the TLS handshake ({type(error).__name__}: "
                f"{error}); check the peer and the network."
            )
        text = "; ".join(self.record.openssl_errors) or (str(error) if error else "unknown error")
        if self._callback_problem is not None:
            text += f"; internal callback error: {self._callback_problem!r}"
        what = "connection" if self._handshake_done else "handshake"
        return "tls_handshake_failed", (
            f"The TLS {what} between {who} and {peer} failed ({text}); check both nodes' TLS settings."
        )

    def _versions_text(self) -> str:
        if self._info is None:
            return "versions unknown"
        c = self._info.cfg
        return f"{self._who()} allows TLS {c.min_version}–{c.max_version}"

    def _cipher_text(self) -> str:
        if self._info is None:
            return "ciphers unknown"
        c = self._info.cfg
        return f"{self._who()} offers {c.mode} ciphers {self._info.cipher_string}"

    # ------------------------------------------------------------------ Stream API
    async def send_all(self, data: bytes | bytearray | memoryview) -> None:
        with self._send_conflict:
            self._check_status()
            await self._ensure_handshake()
            if not data:
                await trio.lowlevel.checkpoint()
                return
            view = bytes(data)
            while view:
                chunk = view[:WRITE_CHUNK]
                n = await self._retry(self._ssl_send, chunk)
                view = view[n:]

    async def receive_some(self, max_bytes: int | None = None) -> bytes:
        with self._recv_conflict:
            self._check_status()
            await self._ensure_handshake()
            if max_bytes is None:
                max_bytes = RECEIVE_SIZE
            elif max_bytes < 1:
                raise ValueError("max_bytes must be >= 1")
            data = await self._retry(self._ssl_recv, max_bytes, is_read=True)
            return data or b""

    def send_nowait(self, data: bytes) -> bool | None:
        """Send ``data`` now, without a checkpoint, when nothing else is being sent: encrypt it and
        hand the records to the socket with one send(). True: all on the wire. False: taken, but
        the socket took only part of the records — `flush` (or the next send) sends the rest first.
        None: not taken (a send in progress, records still waiting, no direct socket, handshake
        not done, or more than one write chunk): use `send_all`. A broken transport raises as
        `send_all` would."""
        if (self._state is not _State.OK or not self._handshake_done or self._sock is None
                or self._backlog or self._inner_send_lock.locked or self._send_conflict._held
                or len(data) > WRITE_CHUNK or self.transport_stream.socket.did_shutdown_SHUT_WR):
            return None
        view = data
        try:
            while view:
                self._tx.begin_call()
                n = self._ssl_send(view)
                if n is _WANT_READ:
                    # OpenSSL wants input first (a TLS 1.2 renegotiation): nothing of ``data`` was
                    # taken; what it wrote goes out first through the general path
                    if view is not data:
                        raise SSL.Error([("", "", "renegotiation in the middle of a send")])
                    out = self._drain_outgoing()
                    if out:
                        self._tx.on_wire(SENT, out)
                        if self.wire_tap is not None:
                            self.wire_tap(SENT, out, time.time())
                        self._backlog = out
                    return None
                view = view[n:]
        except SSL.Error as exc:
            self._state = _State.BROKEN
            raise self._make_failure(exc) from exc
        out = self._drain_outgoing()
        self._tx.on_wire(SENT, out)
        if self.wire_tap is not None:
            self.wire_tap(SENT, out, time.time())
        try:
            sent = self._sock.send(out)
        except BlockingIOError:
            sent = 0
        except OSError as exc:
            self._state = _State.BROKEN
            _raise_stream_error(exc)
        if sent < len(out):
            self._backlog = out[sent:]
            return False
        return True

    async def flush(self) -> None:
        """Send what `send_nowait` left waiting (a checkpoint either way)."""
        with self._send_conflict:
            self._check_status()
            if not self._backlog:
                await trio.lowlevel.checkpoint()
                return
            await self._inner_send_lock.acquire()
            try:
                data, self._backlog = self._backlog, b""
                await self._sock_send_all(data)
            except BaseException:
                self._state = _State.BROKEN
                raise
            finally:
                self._inner_send_lock.release()

    async def wait_peer_verdict(self) -> bool:
        """TLS 1.3, client side: wait for the server's verdict on our certificate, which it gives
        only after our Finished — its NewSessionTickets (accepted) or an alert (raised as the
        `TLSFailure` it means, as `receive_some` would). Application data that arrives first also
        means accepted and stays buffered for `receive_some`. Returns True once accepted, False at
        end of stream; at once (True) when the handshake already was the verdict (TLS ≤ 1.2, or
        the server side). Bound it with a timeout: a server that sends no ticket says nothing."""
        with self._recv_conflict:
            self._check_status()
            await self._ensure_handshake()
            if self.server_side or self.record.version != "TLSv1.3":
                await trio.lowlevel.checkpoint()
                return True
            return bool(await self._retry(self._ssl_peek_verdict, is_read=True))

    def _ssl_peek_verdict(self):
        if self._tickets_received:
            return True
        ssl = self._ssl
        result = _lib.SSL_peek(ssl, _read_buffer(), 1)
        if result > 0 or self._tickets_received:
            return True
        if _lib.SSL_get_error(ssl, result) == _SSL_ERROR_WANT_READ:
            return _WANT_READ
        self._conn._raise_ssl_error(ssl, result)

    async def wait_send_all_might_not_block(self) -> None:
        with self._send_conflict:
            self._check_status()
            await self._inner_send_lock.acquire()
            try:
                await self.transport_stream.wait_send_all_might_not_block()
            finally:
                self._inner_send_lock.release()

    async def aclose(self) -> None:
        """Send close_notify (best effort, when the handshake completed) and close the transport."""
        if self._state is _State.CLOSED:
            await trio.lowlevel.checkpoint()
            return
        if self._state is _State.BROKEN or not self._handshake_done:
            self._state = _State.CLOSED
            self._tx.finish()
            if self._sock is not None:
                # (e.g. a reader that saw the socket closed under it: closing it is all there is to do)
                self.transport_stream.socket.close()
                return
            await trio.aclose_forcefully(self.transport_stream)
            return
        if self._sock is not None and not self._inner_send_lock.locked:
            await self._aclose_socket(2.0)
            return
        try:
            with trio.move_on_after(2.0):
                try:
                    await self._retry(self._conn.shutdown, ignore_want_read=True)
                except (trio.BrokenResourceError, trio.BusyResourceError, trio.ClosedResourceError, OSError):
                    pass
        finally:
            self._state = _State.CLOSED
            self._tx.finish()
            self._sync_record()
            await trio.aclose_forcefully(self.transport_stream)

    async def aclose_bounded(self, limit: float) -> None:
        """aclose() shielded from cancellation, its waits bounded by ``limit`` seconds in all (a
        cancel scope only when the close must wait: SipConnection's close)."""
        if self._state is _State.CLOSED:     # closed already (a second close): nothing to do
            return
        if (self._state is _State.OK and self._handshake_done and self._sock is not None
                and not self._inner_send_lock.locked):
            await self._aclose_socket(limit, shield=True)
            return
        with trio.move_on_after(limit) as scope:
            scope.shield = True
            await self.aclose()

    async def _aclose_socket(self, limit: float, shield: bool = False) -> None:
        """aclose() over a socket: one SSL_shutdown, its close_notify handed to the socket with one
        send() (a wait, bounded by ``limit``, only when the socket does not take it), the socket
        closed — what the general path does, without its scheduler passes and cancel scopes."""
        ssl = self._ssl
        tx = self._tx
        try:
            tx.begin_call()
            result = _lib.SSL_shutdown(ssl)
            failed = False
            if result < 0:
                failed = _lib.SSL_get_error(ssl, result) != _SSL_ERROR_WANT_READ
                _lib.ERR_clear_error()
            self._after_call()
            to_send = self._drain_outgoing()
            if failed:      # (the general path sends nothing after a failed shutdown)
                self._state = _State.BROKEN
            elif to_send or self._backlog:
                if to_send:
                    tx.on_wire(SENT, to_send)
                    if self.wire_tap is not None:
                        self.wire_tap(SENT, to_send, time.time())
                if self._backlog:   # send_nowait's records go before close_notify
                    to_send = self._backlog + to_send
                    self._backlog = b""
                if not self.transport_stream.socket.did_shutdown_SHUT_WR:
                    try:
                        sent = self._sock.send(to_send)
                    except BlockingIOError:
                        sent = 0
                    except OSError:         # the peer has gone: nothing more to send
                        sent = len(to_send)
                    if sent < len(to_send):
                        with trio.move_on_after(limit) as scope:
                            scope.shield = shield
                            try:
                                await self._sock_send_all(to_send[sent:])
                            except (trio.BrokenResourceError, trio.ClosedResourceError, OSError):
                                pass
        finally:
            self._state = _State.CLOSED
            tx.finish()
            self.transport_stream.socket.close()

    # ------------------------------------------------------------------ convenience
    @property
    def handshake_done(self) -> bool:
        return self._handshake_done

    @property
    def version(self) -> str | None:
        return self.record.version

    @property
    def cipher(self) -> str | None:
        return self.record.cipher

    @property
    def peer_certificate(self) -> CertInfo | None:
        return self.record.peer_leaf
