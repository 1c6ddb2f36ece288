"""Hostile input against one node of the seed lab (CUCM8-Publisher, 127.0.0.21): whatever arrives on
its TLS port, the node writes one clear log line, never a traceback, and keeps serving — every test
ends with a real call from CUCM7-PUB through it (docs/robustness.md)."""

from __future__ import annotations

import logging
import socket
import struct
from contextlib import asynccontextmanager

import pytest
import trio

from sipsim.lab import model as m
from sipsim.lab.loader import load_scenario
from sipsim.runtime import connection as connection_module
from sipsim.runtime.runner import LabRunner
from sipsim.tls import TLSStream
from tests.conftest import SCENARIOS

SEED = SCENARIOS / "seed-000-self-signed.toml"
TARGET = "CUCM8-Publisher"
CALLER = "CUCM7-PUB"
HOSTILE = "127.0.0.99"  # the attacker: no node of the lab


def variant(tmp_path, *, tls: str = "", limits: str = ""):
    """The seed with extra [cluster.node.tls] / [cluster.node.limits] lines for CUCM8-Publisher."""
    text = SEED.read_text().replace('name = "seed-000"', 'name = "seed-000"\ncerts_dir = "certs/seed-000"', 1)
    extra = ""
    if tls:
        extra += f"\n    [cluster.node.tls]\n    {tls}\n"
    if limits:
        extra += f"\n    [cluster.node.limits]\n    {limits}\n"
    text = text.replace('  name = "CUCM8-Publisher"\n  address = "127.0.0.21"\n',
                        f'  name = "CUCM8-Publisher"\n  address = "127.0.0.21"\n{extra}', 1)
    path = tmp_path / "seed-variant.toml"
    path.write_text(text)
    return path


class Lab:
    def __init__(self, runner: LabRunner, port_offset: int):
        self.runner = runner
        self.port = 5061 + port_offset
        self.node = runner.nodes[TARGET]

    async def call_succeeds(self) -> None:
        """A real call 7131001 (CUCM7-PUB) → 8511001 (CUCM8-Publisher) over a fresh TLS connection."""
        pub = self.runner.nodes[CALLER]
        for conn in list(pub.pool.values()):  # a new handshake, not a connection made before the abuse
            await conn.aclose()
        pub.pool.clear()
        rec = await self.runner.place_call(1, m.CallSpec("7131001", "8511001", hold=0.05))
        assert rec.outcome == "answered" and rec.destination_node == TARGET, (rec.reason, rec.detail)

    async def hostile_tcp(self) -> trio.SocketStream:
        return await trio.open_tcp_stream("127.0.0.21", self.port, local_address=HOSTILE)

    async def trusted_tls(self) -> TLSStream:
        """A TLS connection with CUCM7-PUB's own certificate: accepted by the node, so what follows is SIP."""
        ctx = self.runner.ctx
        pub = self.runner.scenario.node(CALLER)
        trunk = self.runner.scenario.cluster("Cluster1").trunks[0]
        tcp = await trio.open_tcp_stream("127.0.0.21", self.port, local_address="127.0.0.11")
        tls = TLSStream(tcp, ctx.client_context(pub, ctx.topology.profile_of(trunk)), server_side=False,
                        local=tcp.socket.getsockname()[:2], remote=("127.0.0.21", self.port))
        await tls.do_handshake()
        return tls


async def start(nursery, path, certs_base, port_offset) -> Lab:
    runner = LabRunner(load_scenario(path), port_offset=port_offset, base=certs_base)
    await runner.start_nodes(nursery, only=[TARGET, CALLER])
    return Lab(runner, port_offset)


@asynccontextmanager
async def hostile_lab(path, certs_base, port_offset, logs, *, timeout: float):
    """The target and the caller nodes running; after the body: a real call still succeeds through the
    target and no traceback was logged (what every hostile input must leave behind)."""
    with trio.fail_after(timeout):
        async with trio.open_nursery() as nursery:
            lab = await start(nursery, path, certs_base, port_offset)
            yield lab
            await lab.call_succeeds()
            no_traceback(logs)
            nursery.cancel_scope.cancel()


async def read_until_closed(stream, limit: float = 5.0) -> bytes:
    """Everything the node sends until it closes the connection."""
    got = b""
    with trio.fail_after(limit):
        while True:
            try:
                data = await stream.receive_some(65536)
            except (trio.BrokenResourceError, trio.ClosedResourceError):
                return got
            if not data:
                return got
            got += data


async def read_until(stream, needle: bytes, limit: float = 5.0) -> bytes:
    got = b""
    with trio.fail_after(limit):
        while needle not in got:
            data = await stream.receive_some(65536)
            if not data:
                break
            got += data
    return got


def node_lines(caplog, *words: str) -> list[str]:
    """Log lines of the node and its connections that mention every word."""
    return [r.getMessage() for r in caplog.records
            if r.name.startswith("sipsim") and all(w in r.getMessage() for w in words)]


def no_traceback(caplog) -> None:
    assert not [r for r in caplog.records if r.exc_info], [r.getMessage() for r in caplog.records if r.exc_info]


def request(method: str = "OPTIONS", *, n: int = 1, body: bytes = b"", content_length: int | None = None,
            extra: str = "", cseq: str | None = None) -> bytes:
    length = "" if content_length == -1 else f"Content-Length: {len(body) if content_length is None else content_length}\r\n"
    return (f"{method} sip:8511001@127.0.0.21:5061 SIP/2.0\r\n"
            f"Via: SIP/2.0/TLS 127.0.0.11:5061;branch=z9hG4bK-{n}\r\n"
            f"From: <sip:7131001@127.0.0.11>;tag=f{n}\r\n"
            f"To: <sip:8511001@127.0.0.21>\r\n"
            f"Call-ID: hostile-{n}@127.0.0.11\r\n"
            f"CSeq: {cseq or f'{n} {method}'}\r\n"
            f"Max-Forwards: 70\r\n{extra}{length}\r\n").encode() + body


@pytest.fixture
def logs(caplog):
    caplog.set_level(logging.INFO, logger="sipsim")
    return caplog


# --------------------------------------------------------------------------------------------- TLS port

async def test_garbage_bytes_on_the_tls_port(certs_base, port_offset, logs):
    async with hostile_lab(SEED, certs_base, port_offset, logs, timeout=20) as lab:
        s = await lab.hostile_tcp()
        await s.send_all(bytes(range(256)) * 8)
        await read_until_closed(s)
        lines = node_lines(logs, "TLS handshake from", HOSTILE, "failed")
        assert len(lines) == 1, lines


async def test_plaintext_sip_on_the_tls_port(certs_base, port_offset, logs):
    async with hostile_lab(SEED, certs_base, port_offset, logs, timeout=20) as lab:
        s = await lab.hostile_tcp()
        await s.send_all(request())
        answer = await read_until_closed(s)
        assert b"SIP/2.0" not in answer  # no SIP answer over a port that speaks TLS
        lines = node_lines(logs, "TLS handshake from", HOSTILE)
        assert len(lines) == 1, lines


@pytest.mark.parametrize("what", ["partial ClientHello", "nothing"])
async def test_a_stalled_handshake_is_cut_at_handshake_timeout(tmp_path, certs_base, port_offset, logs, what):
    path = variant(tmp_path, tls="handshake_timeout = 0.5")
    async with hostile_lab(path, certs_base, port_offset, logs, timeout=20) as lab:
        s = await lab.hostile_tcp()
        if what != "nothing":  # a TLS record header announcing 512 bytes, then 5 of them
            await s.send_all(b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03")
        t0 = trio.current_time()
        await read_until_closed(s)
        waited = trio.current_time() - t0
        assert 0.4 <= waited < 2.0, waited
        lines = node_lines(logs, "TLS handshake from", HOSTILE, "timeout")
        assert len(lines) == 1, [r.getMessage() for r in logs.records]


async def test_500_connections_that_never_finish_their_handshake(tmp_path, certs_base, port_offset, logs):
    path = variant(tmp_path, tls="handshake_timeout = 3.0", limits="max_handshakes = 20")
    with trio.fail_after(30):
        async with trio.open_nursery() as nursery:
            lab = await start(nursery, path, certs_base, port_offset)
            started = trio.current_time()
            streams = []
            for i in range(500):
                streams.append(await lab.hostile_tcp())
                if i % 2:  # half say nothing, half start a ClientHello
                    await streams[-1].send_all(b"\x16\x03\x01\x02\x00")
            assert lab.node.open_inbound <= 500
            closed = 0

            async def wait_closed(s):
                nonlocal closed
                await read_until_closed(s, limit=10)
                closed += 1

            async with trio.open_nursery() as waiting:
                for s in streams:
                    waiting.start_soon(wait_closed, s)
            assert closed == 500
            with trio.fail_after(2):  # the node counts a connection out just after its close reaches us
                while lab.node.open_inbound:
                    await trio.sleep(0.01)
            # max_handshakes (20) at once: the others waited for a slot within handshake_timeout, then closed
            assert node_lines(logs, "max_handshakes")
            # rate-limited: at most 20 lines of a kind per 5 s window and a count, not one line per
            # connection (500+); a slow machine may span a few windows, so bound by the windows elapsed
            windows = int((trio.current_time() - started) / 5.0) + 2
            assert len(logs.records) < min(300, 25 * 3 * windows), len(logs.records)
            for s in streams:
                await s.aclose()
            await lab.call_succeeds()
            no_traceback(logs)
            nursery.cancel_scope.cancel()


async def test_max_connections_closes_new_connections_at_once(tmp_path, certs_base, port_offset, logs):
    path = variant(tmp_path, limits="max_connections = 20")
    async with hostile_lab(path, certs_base, port_offset, logs, timeout=20) as lab:
        idle = [await lab.hostile_tcp() for _ in range(20)]
        await trio.sleep(0.1)
        assert lab.node.open_inbound == 20
        extra = await lab.hostile_tcp()
        with trio.fail_after(1):  # closed at once, not after handshake_timeout
            assert await read_until_closed(extra) == b""
        lines = node_lines(logs, "closed at once", "max_connections is 20")
        assert len(lines) == 1, lines
        for s in idle:
            await s.aclose()
        await extra.aclose()
        with trio.fail_after(2):
            while lab.node.open_inbound:
                await trio.sleep(0.01)


# --------------------------------------------------------------------------------------- SIP inside TLS

async def test_malformed_sip_inside_tls_gets_400_on_the_wire(certs_base, port_offset, logs):
    async with hostile_lab(SEED, certs_base, port_offset, logs, timeout=20) as lab:
        tls = await lab.trusted_tls()
        await tls.send_all(request(cseq="not-a-number OPTIONS"))
        answer = await read_until(tls, b"\r\n\r\n")
        assert answer.startswith(b"SIP/2.0 400 "), answer[:200]
        assert b"Call-ID: hostile-1@127.0.0.11" in answer
        # the connection still works: a good OPTIONS on it is answered 200
        await tls.send_all(request(n=2))
        answer = await read_until(tls, b"hostile-2")
        assert b"SIP/2.0 200 OK" in answer
        lines = node_lines(logs, "bad SIP from", "400 sent")
        assert len(lines) == 1, lines
        await tls.aclose()


async def test_a_message_over_the_size_limit_gets_413_then_close(tmp_path, certs_base, port_offset, logs):
    path = variant(tmp_path, limits="max_message_bytes = 4096")
    async with hostile_lab(path, certs_base, port_offset, logs, timeout=20) as lab:
        tls = await lab.trusted_tls()
        await tls.send_all(request("INVITE", body=b"v=0\r\n" * 2000, extra="Content-Type: application/sdp\r\n"))
        answer = await read_until_closed(tls)
        assert answer.startswith(b"SIP/2.0 413 "), answer[:200]
        lines = node_lines(logs, "bad SIP from", "message_too_large", "closing the connection")
        assert len(lines) == 1, lines


async def test_missing_content_length_gets_400_then_close(certs_base, port_offset, logs):
    async with hostile_lab(SEED, certs_base, port_offset, logs, timeout=20) as lab:
        tls = await lab.trusted_tls()
        await tls.send_all(request(content_length=-1))
        answer = await read_until_closed(tls)
        assert answer.startswith(b"SIP/2.0 400 "), answer[:200]
        assert len(node_lines(logs, "bad SIP from", "Content-Length")) == 1


async def test_wrong_content_length_does_not_take_the_node_down(certs_base, port_offset, logs):
    async with hostile_lab(SEED, certs_base, port_offset, logs, timeout=20) as lab:
        tls = await lab.trusted_tls()
        # says 5 bytes, sends 40: the rest is read as the next message, which is not SIP
        await tls.send_all(request(body=b"0123456789" * 4, content_length=5) + b"\r\n\r\n")
        answer = await read_until(tls, b"SIP/2.0 400", limit=3)
        assert b"SIP/2.0 200 OK" in answer or b"SIP/2.0 400" in answer
        assert node_lines(logs, "bad SIP from")
        # says 5000 bytes and sends 10: the node waits for the rest, nothing else happens
        tls2 = await lab.trusted_tls()
        await tls2.send_all(request(n=3, body=b"0123456789", content_length=5000))
        with trio.move_on_after(0.3):
            assert await tls2.receive_some(65536) == b""
        await tls.aclose()
        await tls2.aclose()


async def test_a_peer_that_resets_mid_message(certs_base, port_offset, logs):
    async with hostile_lab(SEED, certs_base, port_offset, logs, timeout=20) as lab:
        tls = await lab.trusted_tls()
        await tls.send_all(request("INVITE", body=b"v=0\r\n" * 50)[:300])  # half an INVITE
        await trio.sleep(0.1)
        sock = tls.transport_stream.socket
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        sock.close()  # RST
        with trio.fail_after(2):
            while not node_lines(logs, "reset by the peer"):
                await trio.sleep(0.02)
        assert len(node_lines(logs, "reset by the peer")) == 1


async def test_a_burst_of_10000_options_is_answered_with_bounded_memory(certs_base, port_offset, logs):
    count = 10_000
    with trio.fail_after(60):
        async with trio.open_nursery() as nursery:
            lab = await start(nursery, SEED, certs_base, port_offset)
            tls = await lab.trusted_tls()
            burst = b"".join(request(n=i) for i in range(count))
            highest = 0
            answered = {"200": 0, "503": 0}

            async def sender():
                await tls.send_all(burst)

            async def receiver():
                buf = b""
                while answered["200"] + answered["503"] < count:
                    buf += await tls.receive_some(65536)
                    answered["200"] += buf.count(b"SIP/2.0 200 OK\r\n")
                    answered["503"] += buf.count(b"SIP/2.0 503 ")
                    buf = buf[buf.rfind(b"\r\n") + 2:] if b"\r\n" in buf else buf
                    buf = buf[-40:]

            async def watch():
                nonlocal highest
                while True:
                    for conn in list(lab.node.conns.values()):
                        highest = max(highest, conn.queued)
                    await trio.sleep(0.005)

            nursery.start_soon(watch)
            async with trio.open_nursery() as io:
                io.start_soon(sender)
                io.start_soon(receiver)
                await trio.sleep(0.2)
                with trio.fail_after(10):  # the node stays responsive during the burst
                    await lab.call_succeeds()
            assert answered["200"] + answered["503"] == count, answered
            assert highest <= connection_module.HIGH_WATER + 64 * 1024, highest
            await tls.aclose()
            no_traceback(logs)
            nursery.cancel_scope.cancel()


async def test_a_peer_that_never_reads_is_closed_and_memory_stays_bounded(
        certs_base, port_offset, logs, monkeypatch):
    monkeypatch.setattr(connection_module, "SEND_STALL_TIMEOUT", 1.0)
    with trio.fail_after(60):
        async with trio.open_nursery() as nursery:
            lab = await start(nursery, SEED, certs_base, port_offset)
            tls = await lab.trusted_tls()
            tls.transport_stream.socket.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
            highest = 0

            async def watch():
                nonlocal highest
                while True:
                    for conn in list(lab.node.conns.values()):
                        highest = max(highest, conn.queued)
                    await trio.sleep(0.005)

            nursery.start_soon(watch)
            burst = b"".join(request(n=i) for i in range(10_000))
            with trio.move_on_after(8):  # the node stops reading: our sending blocks, then breaks
                try:
                    await tls.send_all(burst)
                except (trio.BrokenResourceError, trio.ClosedResourceError):
                    pass
            with trio.fail_after(5):
                while not node_lines(logs, "the peer took no bytes"):
                    await trio.sleep(0.05)
            assert highest <= connection_module.HIGH_WATER + 64 * 1024, highest
            await trio.aclose_forcefully(tls)
            await lab.call_succeeds()
            no_traceback(logs)
            nursery.cancel_scope.cancel()
