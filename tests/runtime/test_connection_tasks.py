"""SipConnection's tasks: the reader runs in run()'s own task; the writer, when one is needed, in the
nursery run() is given (the node's) — and run() still returns only after the writer has ended, as
when each connection had a nursery of its own."""

import trio
import trio.testing

from sipsim.runtime.connection import SipConnection


class SlowStream(trio.abc.Stream):
    """Sends take ``delay`` seconds; receives wait until closed."""

    def __init__(self, delay: float = 0.0):
        self.delay = delay
        self.sent: list[bytes] = []
        self.closed = trio.Event()

    async def send_all(self, data):
        await trio.lowlevel.checkpoint_if_cancelled()   # as TLSStream: a cancelled sender sends nothing
        self.sent.append(bytes(data))
        await trio.sleep(self.delay)

    async def wait_send_all_might_not_block(self):
        pass

    async def receive_some(self, max_bytes=None):
        await self.closed.wait()
        return b""

    async def aclose(self):
        self.closed.set()


async def test_the_writer_runs_in_the_given_nursery_and_run_waits_for_it(autojump_clock):
    stream = SlowStream(delay=1.0)
    conn = SipConnection(stream, "inbound", ("127.0.0.21", 5061), ("127.0.0.11", 40000))
    ended = []
    async with trio.open_nursery() as node_nursery:
        async def run():
            await conn.run(lambda c, data: ended.append(data), node_nursery)
            ended.append(("run returned", list(stream.sent)))

        node_nursery.start_soon(run)
        await trio.testing.wait_all_tasks_blocked()
        assert len(node_nursery.child_tasks) == 1          # the reader only: no writer yet, no nursery
        conn.transmit(b"SIP/2.0 400 Bad Request\r\n\r\n")
        conn.close_after_flush()                              # a 400, then close
        await trio.testing.wait_all_tasks_blocked()
        assert len(node_nursery.child_tasks) == 2          # the writer, in the node's nursery
    # run() returned after the writer's send of the 400 had ended (1 s later), not when the reader stopped
    assert ended == [b"", ("run returned", [b"SIP/2.0 400 Bad Request\r\n\r\n"])]
    assert conn.closed


async def test_abort_before_the_writer_runs_sends_nothing(autojump_clock):
    stream = SlowStream()
    conn = SipConnection(stream, "outbound", ("127.0.0.11", 40000), ("127.0.0.21", 5061))
    async with trio.open_nursery() as node_nursery:
        node_nursery.start_soon(conn.run, lambda c, data: None, node_nursery)
        await trio.testing.wait_all_tasks_blocked()
        conn.transmit(b"INVITE sip:8511001@127.0.0.21 SIP/2.0\r\n\r\n")   # starts the writer task …
        conn.abort()                                                         # … which must not send
    assert stream.sent == []
    assert conn.closed


async def test_without_a_nursery_run_opens_its_own(autojump_clock):
    stream = SlowStream(delay=0.5)
    conn = SipConnection(stream, "inbound", ("127.0.0.21", 5061), ("127.0.0.11", 40000))
    async with trio.open_nursery() as n:
        n.start_soon(conn.run, lambda c, data: None)
        await trio.testing.wait_all_tasks_blocked()
        conn.transmit(b"OPTIONS sip:127.0.0.11 SIP/2.0\r\n\r\n")
        await trio.sleep(1)
        assert stream.sent == [b"OPTIONS sip:127.0.0.11 SIP/2.0\r\n\r\n"]
        await conn.aclose()
    assert conn.closed


async def test_closing_an_idle_connection_starts_no_writer(autojump_clock):
    """A call over a connection of its own: the caller closes it once the call is over, with nothing
    queued. The close cancels the reader and returns; no writer task is started only to be cancelled."""
    stream = SlowStream()
    conn = SipConnection(stream, "outbound", ("127.0.0.11", 40000), ("127.0.0.21", 5061))
    tasks_seen = []
    async with trio.open_nursery() as node_nursery:
        async def run():
            await conn.run(lambda c, data: None, node_nursery)
            tasks_seen.append(len(node_nursery.child_tasks))

        node_nursery.start_soon(run)
        await trio.testing.wait_all_tasks_blocked()
        await conn.aclose()
        assert len(node_nursery.child_tasks) == 1   # run() only: the close started no writer
    assert tasks_seen == [1]
    assert stream.closed.is_set() and conn.closed


async def test_abort_before_run_starts_no_writer_and_run_ends_at_once(autojump_clock):
    stream = SlowStream()
    conn = SipConnection(stream, "outbound", ("127.0.0.11", 40000), ("127.0.0.21", 5061))
    conn.transmit(b"INVITE sip:8511001@127.0.0.21 SIP/2.0\r\n\r\n")   # queued: run() has not started
    conn.abort()
    ended = []
    async with trio.open_nursery() as node_nursery:
        node_nursery.start_soon(conn.run, lambda c, data: ended.append(data), node_nursery)
        await trio.testing.wait_all_tasks_blocked()
        assert len(node_nursery.child_tasks) == 0   # run() returned; no writer was started
    assert ended == [b""] and stream.sent == []
