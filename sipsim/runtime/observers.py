"""What the runtime tells observers (capture files, CUCM-style traces, key logs). Each observer is
optional; the runtime calls these methods and never depends on what they do.

- `Observer.connection_opened(key, client, server, t)`: a TCP connection exists (key: the 4-tuple
  ``(client_ip, client_port, server_ip, server_port)``). Called once per side that sipsim runs; an
  observer that records wire bytes keeps the first side that claims a key (see `claim`).
- `Observer.claim(key, side) -> bool`: whether this side ("client" or "server") should report the
  wire bytes of that connection (so a lab where sipsim runs both ends records each byte once).
- `Observer.wire(key, side, direction, data, t)`: bytes that side "sent" or "received" on the wire.
- `Observer.connection_closed(key, side, t)`.
- `Observer.keylog(line)`: one NSS key log line (bytes, no newline).
- `Observer.digit_analysis(node, t, calling, called, pattern, partition)`.
- `Observer.connection_created(node, t, conn_idx, remote, tls_security)`.
- `Observer.certificate_ind(node, t, conn_idx, remote, record)`: the TLS layer hands the peer's
  identity to SIP (CUCM's SIPCertificateInd); ``record`` is the TLS ConnectionRecord.
- `Observer.sip_message(node, t, direction, conn_idx, remote, data)`: one SIP message in or out.
"""

from __future__ import annotations

import time
from typing import Any

import trio


class Observer:
    """Does nothing; subclasses override what they need."""

    def claim(self, key: tuple, side: str) -> bool:
        return False

    def connection_opened(self, key: tuple, client: tuple, server: tuple, t: float) -> None: ...

    def wire(self, key: tuple, side: str, direction: str, data: bytes, t: float) -> None: ...

    def connection_closed(self, key: tuple, side: str, t: float) -> None: ...

    def keylog(self, line: bytes) -> None: ...

    def digit_analysis(self, node: str, t: float, calling: str, called: str, pattern: str | None,
                       partition: str | None) -> None: ...

    def connection_created(self, node: str, t: float, conn_idx: int, remote: tuple, tls_security: int) -> None: ...

    def certificate_ind(self, node: str, t: float, conn_idx: int, remote: tuple, record: Any) -> None: ...

    def sip_message(self, node: str, t: float, direction: str, conn_idx: int, remote: tuple, data: bytes) -> None: ...

    def close(self) -> None: ...


class Observers(Observer):
    """Fans every call out to several observers."""

    def __init__(self, observers: list[Observer] | None = None):
        self.observers = list(observers or [])

    def add(self, observer: Observer) -> None:
        self.observers.append(observer)

    def __bool__(self) -> bool:
        return bool(self.observers)

    def claim(self, key, side):
        return any([o.claim(key, side) for o in self.observers])

    def connection_opened(self, *a):
        for o in self.observers:
            o.connection_opened(*a)

    def wire(self, *a):
        for o in self.observers:
            o.wire(*a)

    def connection_closed(self, *a):
        for o in self.observers:
            o.connection_closed(*a)

    def keylog(self, line):
        for o in self.observers:
            o.keylog(line)

    def digit_analysis(self, *a):
        for o in self.observers:
            o.digit_analysis(*a)

    def connection_created(self, *a):
        for o in self.observers:
            o.connection_created(*a)

    def certificate_ind(self, *a):
        for o in self.observers:
            o.certificate_ind(*a)

    def sip_message(self, *a):
        for o in self.observers:
            o.sip_message(*a)

    def close(self):
        for o in self.observers:
            o.close()


class KeyLogFile(Observer):
    """`--keylog FILE`: NSS key log lines, flushed as they come (Wireshark can follow a live file)."""

    def __init__(self, path):
        import os

        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)  # secrets: owner only
        self._f = os.fdopen(fd, "wb")

    def keylog(self, line: bytes) -> None:
        self._f.write(line.rstrip(b"\n") + b"\n")
        self._f.flush()

    def close(self) -> None:
        self._f.close()


class TappedStream(trio.abc.Stream):
    """A plain TCP stream (Non Secure trunks) that shows its bytes to a wire tap, as TLSStream does."""

    def __init__(self, stream: trio.abc.Stream, tap):
        self.stream, self.tap = stream, tap
        self.socket = getattr(stream, "socket", None)

    async def send_all(self, data) -> None:
        self.tap("sent", bytes(data), time.time())  # before sending: the answer cannot be tapped first
        await self.stream.send_all(data)

    async def receive_some(self, max_bytes: int | None = None) -> bytes:
        data = await self.stream.receive_some(max_bytes)
        if data:
            self.tap("received", bytes(data), time.time())
        return data

    async def wait_send_all_might_not_block(self) -> None:
        await self.stream.wait_send_all_might_not_block()

    async def aclose(self) -> None:
        await self.stream.aclose()
