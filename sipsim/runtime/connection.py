"""One transport connection of a node: a TLS (or TCP) stream, a writer task that batches what the
SIP core transmits, and a reader task that feeds received bytes to the node's endpoint."""

from __future__ import annotations

import itertools
import math
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import trio

_ids = itertools.count(1)


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
        except (trio.BrokenResourceError, trio.ClosedResourceError, OSError):
            pass
        finally:
            self.closed = True

    async def reader(self, deliver: Callable[["SipConnection", bytes], None]) -> None:
        """Feed received bytes to ``deliver`` until EOF or error; b"" marks the end."""
        try:
            while True:
                data = await self.stream.receive_some(65536)
                if not data:
                    break
                if not self.mute:
                    deliver(self, data)
        except (trio.BrokenResourceError, trio.ClosedResourceError, OSError):
            pass
        except Exception as e:  # a TLS error after the handshake
            if type(e).__name__ not in ("Error", "SysCallError", "ZeroReturnError"):
                raise
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
