"""Run two TLSStreams against each other (memory streams or loopback TCP)."""

from __future__ import annotations

from dataclasses import dataclass, field

import trio
import trio.testing

import pytest

from sipsim.tls import TLSConfig, TLSFailure, TLSStream, build_context


def cfg_for(ident, *, trust=(), **kw) -> TLSConfig:
    if ident is None:
        return TLSConfig(None, None, trust_files=tuple(trust), **kw)
    return TLSConfig(ident.cert, ident.key, chain_files=ident.chain, trust_files=tuple(trust), **kw)


@dataclass
class Side:
    stream: TLSStream
    error: TLSFailure | None = None
    keylog: list = field(default_factory=list)
    tap: list = field(default_factory=list)

    @property
    def record(self):
        return self.stream.record

    @property
    def reason(self):
        return self.error.reason if self.error else None


@dataclass
class Pair:
    client: Side
    server: Side


async def _transport_pair(tcp: bool):
    if not tcp:
        c, s = trio.testing.memory_stream_pair()
        return c, s, ("127.0.0.1", 40000), ("127.0.0.2", 5061)
    listeners = await trio.open_tcp_listeners(0, host="127.0.0.1")
    listener = listeners[0]
    port = listener.socket.getsockname()[1]
    client = await trio.open_tcp_stream("127.0.0.1", port)
    server = await listener.accept()
    await listener.aclose()
    cport = client.socket.getsockname()[1]
    return client, server, ("127.0.0.1", cport), ("127.0.0.1", port)


async def handshake(client_cfg: TLSConfig, server_cfg: TLSConfig, *, tcp=False, client_kw=None,
                    server_kw=None, close_on_failure=True, timeout=10) -> Pair:
    cctx = build_context(client_cfg, server_side=False)
    sctx = build_context(server_cfg, server_side=True)
    ct, st, caddr, saddr = await _transport_pair(tcp)
    sides = {}
    ckw = dict(client_kw or {})
    skw = dict(server_kw or {})
    for name, kw, ctx, t, server_side, local, remote in (
        ("client", ckw, cctx, ct, False, caddr, saddr),
        ("server", skw, sctx, st, True, saddr, caddr),
    ):
        side = Side(stream=None)
        kw.setdefault("keylog", side.keylog.append)
        kw.setdefault("wire_tap", lambda d, data, t, side=side: side.tap.append((d, data, t)))
        side.stream = TLSStream(t, ctx, server_side=server_side, local=local, remote=remote, **kw)
        sides[name] = side

    async def run(side: Side):
        try:
            await side.stream.do_handshake()
        except TLSFailure as exc:
            side.error = exc
            if close_on_failure:
                await side.stream.aclose()

    with trio.fail_after(timeout):
        async with trio.open_nursery() as n:
            n.start_soon(run, sides["client"])
            n.start_soon(run, sides["server"])
    return Pair(sides["client"], sides["server"])


def transcript(record) -> list[tuple[str, list[str]]]:
    return [(f.direction, list(f.messages)) for f in record.transcript]


async def server_against_raw_peer(lab, peer_bytes: bytes | None, *, close=True, timeout=None, **kw):
    """lab.b's server stream handshaking with a peer that sends ``peer_bytes`` (then closes, unless
    told not to): the stream and the TLSFailure it raised."""
    ctx = build_context(cfg_for(lab.b, trust=[lab.a.trust]), server_side=True)
    client_t, server_t = trio.testing.memory_stream_pair()
    s = TLSStream(server_t, ctx, server_side=True, remote=("10.0.0.9", 33135), handshake_timeout=timeout, **kw)
    if peer_bytes is not None:
        await client_t.send_all(peer_bytes)
    if close:
        await client_t.aclose()
    with pytest.raises(TLSFailure) as info:
        await s.do_handshake()
    return s, info.value
