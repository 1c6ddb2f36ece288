"""The node's TCP connect for a literal address (`_open_tcp`, on the socket itself) behaves as
trio.open_tcp_stream does: the same stream and socket options when it connects, the same errors
(which `connect_refused` and its detail are built from) when it does not."""

import socket

import pytest
import trio

from sipsim.runtime.node import _open_tcp, _refused


def _free_port(host: str = "127.0.0.21") -> int:
    s = socket.socket()
    s.bind((host, 0))
    port = s.getsockname()[1]
    s.close()
    return port


async def test_connects_from_the_local_address_with_trios_socket_options():
    listener = socket.socket()
    listener.bind(("127.0.0.21", 0))
    listener.listen(4)
    port = listener.getsockname()[1]
    try:
        stream = await _open_tcp("127.0.0.21", port, "127.0.0.11")
        peer, addr = listener.accept()
        try:
            assert isinstance(stream, trio.SocketStream)
            assert stream.socket.getsockname()[0] == "127.0.0.11" == addr[0]
            assert stream.socket.getpeername() == ("127.0.0.21", port)
            assert stream.socket.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY)
            await stream.send_all(b"OPTIONS")
            assert peer.recv(16) == b"OPTIONS"
        finally:
            peer.close()
            await stream.aclose()
    finally:
        listener.close()


async def test_refused_is_the_same_error_as_trios():
    port = _free_port()
    with pytest.raises(OSError) as ours:
        await _open_tcp("127.0.0.21", port, "127.0.0.11")
    with pytest.raises(OSError) as trios:
        await trio.open_tcp_stream("127.0.0.21", port, local_address="127.0.0.11")
    assert str(ours.value) == str(trios.value) == f"all attempts to connect to 127.0.0.21:{port} failed"
    assert _refused(ours.value) and _refused(trios.value)


async def test_a_local_address_of_the_other_family_is_the_same_error_as_trios():
    port = _free_port()
    with pytest.raises(OSError) as ours:
        await _open_tcp("127.0.0.21", port, "::1")
    with pytest.raises(OSError) as trios:
        await trio.open_tcp_stream("127.0.0.21", port, local_address="::1")
    assert str(ours.value) == str(trios.value)
    assert not _refused(ours.value)


async def test_ipv6_loopback():
    listener = socket.socket(socket.AF_INET6)
    try:
        listener.bind(("::1", 0))
    except OSError:
        listener.close()
        pytest.skip("no IPv6 loopback on this machine")
    listener.listen(4)
    port = listener.getsockname()[1]
    try:
        stream = await _open_tcp("::1", port, "::1")
        peer, _ = listener.accept()
        try:
            assert stream.socket.getpeername()[:2] == ("::1", port)
        finally:
            peer.close()
            await stream.aclose()
    finally:
        listener.close()
