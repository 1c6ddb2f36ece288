"""One transport connection of a node: a TLS (or TCP) stream, a writer task that batches what the
SIP core transmits, and a reader task that feeds received bytes to the node's endpoint."""

from __future__ import annotations

import itertools
import logging
import math
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import trio

_ids = itertools.count(1)
log = logging.getLogger("sipsim.connection")


@dataclass(eq=False)
class SipConnection:
    stream: trio.abc.Stream
    role: str  # "outbound" (we connected) or "inbound" (we accepted)
    local: tuple[str, int]
    remote: tuple[str, int]
    record: Any = None  # sipsim.tls ConnectionRecord, or None for TCP
    trunk: str | None = None  # the trunk this connection belongs to
    peer_node: str | None = None
    mute: bool = False  # subject_mismatch = "drop": read and ignore everything
    reject_status: int | None = None  # subject_mismatch = "sip_403"/"sip_503": refuse every call
    tap: Any = None  # the observers' wire tap, closed with the connection
    failure: Any = None  # the TLSFailure that ended it after the handshake (TLS 1.3: the peer's verdict)
    id: int = field(default_factory=lambda: next(_ids))
    closed: bool = False

    def __post_init__(self) -> None:
        self._send, self._queue = trio.open_memory_channel[bytes](math.inf)

    def transmit(self, data: bytes) -> None:
        if not self.closed:
            self._send.send_nowait(data)

    async def writer(self) -> None:
        """Write everything queued, joining what is already waiting into one send."""
        try:
            async for data in self._queue:
                batch = [data]
                while True:
                    try:
                        batch.append(self._queue.receive_nowait())
                    except (trio.WouldBlock, trio.EndOfChannel):
                        break
                await self.stream.send_all(b"".join(batch) if len(batch) > 1 else data)
        except (trio.BrokenResourceError, trio.ClosedResourceError, OSError) as e:
            log.info("connection %s %s:%s: cannot send: %s", self.id, self.remote[0], self.remote[1], e)
        except Exception as e:  # a TLS failure while sending: close this connection only
            log.info("connection %s %s:%s: closed on %s: %s", self.id, self.remote[0], self.remote[1],
                     type(e).__name__, e, exc_info=not type(e).__module__.startswith(("OpenSSL", "sipsim.tls")))
        finally:
            self.closed = True

    async def reader(self, deliver: Callable[["SipConnection", bytes], None]) -> None:
        """Feed received bytes to ``deliver`` until EOF or error; b"" marks the end."""
        try:
            while True:
                data = await self.stream.receive_some(65536)
                if not data:
                    log.debug("connection %s %s:%s: closed by the peer", self.id, self.remote[0], self.remote[1])
                    break
                if not self.mute:
                    deliver(self, data)
        except (trio.BrokenResourceError, trio.ClosedResourceError, OSError) as e:
            if hasattr(e, "reason") and hasattr(e, "record"):
                self.failure = e  # TLSFailure: e.g. TLS 1.3, the server rejected our certificate
            log.debug("connection %s %s:%s: %s", self.id, self.remote[0], self.remote[1], e or type(e).__name__)
        except Exception as e:  # a TLS error after the handshake, or a bug: never take the node down
            if hasattr(e, "reason") and hasattr(e, "record"):
                self.failure = e  # TLSFailure: e.g. TLS 1.3, the server rejected our certificate
            log.info("connection %s %s:%s: closed on %s: %s", self.id, self.remote[0], self.remote[1],
                     type(e).__name__, e, exc_info=not type(e).__module__.startswith(("OpenSSL", "sipsim.tls")))
        finally:
            self.closed = True
            deliver(self, b"")

    async def aclose(self) -> None:
        self.closed = True
        self._send.close()
        with trio.move_on_after(1):
            try:
                await self.stream.aclose()
            except Exception:
                pass
