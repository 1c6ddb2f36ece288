"""The node's TCP connect for a literal address (`_open_tcp`, on the socket itself) behaves as
trio.open_tcp_stream does: the same stream and socket options when it connects, the same errors
(which `connect_refused` and its detail are built from) when it does not."""

import socket
from contextlib import asynccontextmanager

import pytest
import trio

from sipsim.runtime.node import _open_tcp, _refused


def _free_port(host: str = "127.0.0.21") -> int:
    s = socket.socket()
    s.bind((host, 0))
    port = s.getsockname()[1]
    s.close()
    return port


@asynccontextmanager
async def _connected(host: str, local: str, family=socket.AF_INET):
    """A listener on ``host``, `_open_tcp` to it from ``local``: (our stream, the accepted socket, port)."""
    listener = socket.socket(family)
    try:
        listener.bind((host, 0))
    except OSError:
        listener.close()
        pytest.skip(f"no {host} on this machine")
    listener.listen(4)
    port = listener.getsockname()[1]
    try:
        stream = await _open_tcp(host, port, local)
        peer, _ = listener.accept()
        try:
            yield stream, peer, port
        finally:
            peer.close()
            await stream.aclose()
    finally:
        listener.close()


async def test_connects_from_the_local_address_with_trios_socket_options():
    async with _connected("127.0.0.21", "127.0.0.11") as (stream, peer, port):
        assert isinstance(stream, trio.SocketStream)
        assert stream.socket.getsockname()[0] == "127.0.0.11" == peer.getpeername()[0]
        assert stream.socket.getpeername() == ("127.0.0.21", port)
        assert stream.socket.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY)
        await stream.send_all(b"OPTIONS")
        assert peer.recv(16) == b"OPTIONS"


async def test_ipv6_loopback():
    async with _connected("::1", "::1", socket.AF_INET6) as (stream, peer, port):
        assert stream.socket.getpeername()[:2] == ("::1", port)
        assert peer.getpeername()[0] == "::1"


@pytest.mark.parametrize("local, refused", [("127.0.0.11", True), ("::1", False)],
                         ids=["refused", "local address of the other family"])
async def test_a_failed_connect_is_the_same_error_as_trios(local, refused):
    port = _free_port()
    with pytest.raises(OSError) as ours:
        await _open_tcp("127.0.0.21", port, local)
    with pytest.raises(OSError) as trios:
        await trio.open_tcp_stream("127.0.0.21", port, local_address=local)
    assert str(ours.value) == str(trios.value)
    assert _refused(ours.value) is _refused(trios.value) is refused
    if refused:
        assert str(ours.value) == f"all attempts to connect to 127.0.0.21:{port} failed"
