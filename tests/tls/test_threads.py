"""TLSStreams in several threads at once (each its own trio run): OpenSSL calls release the GIL, so
what streams share across connections (the read buffer is per thread, the C callbacks look streams
up by SSL pointer) must not mix their bytes. A smoke test: a race window this small is not forced."""

import threading

import trio

from .helpers import cfg_for, handshake


def test_two_threads_transfer_their_own_bytes(lab):
    payloads = {i: bytes([65 + i]) * 300_000 for i in range(2)}
    results: dict[int, tuple[bytes, bytes]] = {}
    errors: list[BaseException] = []

    async def one(i: int) -> None:
        p = await handshake(cfg_for(lab.a, trust=[lab.b.trust]), cfg_for(lab.b, trust=[lab.a.trust]))
        assert p.client.error is None and p.server.error is None
        got = {"client": bytearray(), "server": bytearray()}

        async def pump(sender, receiver, key):
            async with trio.open_nursery() as n:
                n.start_soon(sender.send_all, payloads[i])
                while len(got[key]) < len(payloads[i]):
                    got[key] += await receiver.receive_some(65536)

        with trio.fail_after(30):
            async with trio.open_nursery() as n:
                n.start_soon(pump, p.client.stream, p.server.stream, "server")
                n.start_soon(pump, p.server.stream, p.client.stream, "client")
        results[i] = (bytes(got["client"]), bytes(got["server"]))

    def run(i: int) -> None:
        try:
            trio.run(one, i)
        except BaseException as exc:  # reported below
            errors.append(exc)

    threads = [threading.Thread(target=run, args=(i,)) for i in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert not errors, errors
    for i in range(2):
        assert results[i] == (payloads[i], payloads[i])
