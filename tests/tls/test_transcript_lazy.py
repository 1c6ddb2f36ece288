"""The transcript is logged as compact facts and named when read: packing the log at handshake end
(marshal) and replaying it must give exactly the flights the unpacked log gives."""

import pytest

from sipsim.tls import transcript as tr
from sipsim.tls.transcript import RECEIVED, SENT, TranscriptBuilder

from .helpers import cfg_for, handshake


class _NeverPacked(TranscriptBuilder):
    __slots__ = ()

    def pack(self) -> None:
        pass


def _flights(record):
    # a session ticket's length varies by a cipher block between handshakes: compared by name only
    return [(f.direction, None if "New Session Ticket" in f.messages else f.nbytes, list(f.messages),
             list(f.encrypted_messages), f.encrypted)
            for f in record.transcript]


@pytest.mark.parametrize("version", ["1.2", "1.3"])
async def test_packed_log_names_like_the_plain_log(lab, version, monkeypatch):
    kw = dict(min_version=version, max_version=version)
    args = (cfg_for(lab.a, trust=[lab.b.trust], **kw), cfg_for(lab.b, trust=[lab.a.trust], **kw))
    packed = await handshake(*args)
    assert isinstance(packed.server.stream._tx._packed, bytes)   # an idle connection keeps one bytes object
    monkeypatch.setattr(TranscriptBuilder, "pack", lambda self: None)
    plain = await handshake(*args)
    for a, b in ((packed.client, plain.client), (packed.server, plain.server)):
        # the OpenSSL callbacks swallow exceptions (they must not raise into C): none happened
        assert a.stream._callback_problem is None and b.stream._callback_problem is None
        assert _flights(a.record) == _flights(b.record)
        assert a.record.transcript_truncated is b.record.transcript_truncated is False


def _feed(tb: TranscriptBuilder, pack_at: int | None = None) -> None:
    ch = b"\x01" + (4).to_bytes(3, "big") + b"\x03\x03\x00\x00"
    sh = b"\x02" + (38).to_bytes(3, "big") + b"\x03\x03" + b"\x11" * 32 + b"\x00\x00\x2f\x00"
    steps = [
        lambda: tb.begin_call(),
        lambda: tb.on_state("SSLv3/TLS write client hello"),
        lambda: tb.on_wire(SENT, b"\x16\x03\x01" + len(ch).to_bytes(2, "big") + ch),
        lambda: tb.on_wire(RECEIVED, b"\x16\x03\x03" + len(sh).to_bytes(2, "big") + sh),
        lambda: tb.resolve_received(5 + len(sh)),
        lambda: tb.on_wire(RECEIVED, b"\x14\x03\x03\x00\x01\x01" + b"\x16\x03\x03\x00\x28" + b"\xaa" * 40),
        lambda: tb.begin_call(),
        lambda: tb.on_state("SSLv3/TLS read finished"),
        lambda: tb.resolve_received(5 + len(sh) + 6 + 45),
        lambda: setattr(tb, "handshake_done", True),
    ]
    for i, step in enumerate(steps):
        step()
        if pack_at == i:
            tb.pack()
    tb.pack()
    for i in range(3):                      # application data afterwards, both ways
        tb.on_wire(SENT, b"\x17\x03\x03\x00\x10" + b"\x00" * 16)
        tb.on_wire(RECEIVED, b"\x17\x03\x03\x00\x10" + b"\x00" * 16)
        tb.resolve_received(5 + len(sh) + 6 + 45 + 21 * (i + 1))
    tb.on_alert(RECEIVED, 1, 0)
    tb.on_wire(RECEIVED, b"\x15\x03\x03\x00\x1a" + b"\x00" * 26)
    tb.resolve_received(5 + len(sh) + 6 + 45 + 21 * 3 + 31)
    tb.finish()


def test_pack_then_more_facts():
    clock = iter(range(1000))
    ref = _NeverPacked(lambda: float(next(clock)))
    _feed(ref)
    want = [f.to_dict() for f in ref.flights]
    assert [f["messages"] for f in want] == [
        ["Client Hello"], ["Server Hello", "Change Cipher Spec", "Finished"], ["Application Data"],
        ["Application Data"], ["Application Data"], ["Application Data"], ["Application Data"],
        ["Application Data", "Alert (Level: Warning, Description: Close Notify)"]]
    for pack_at in range(10):
        clock = iter(range(1000))
        tb = TranscriptBuilder(lambda: float(next(clock)))
        _feed(tb, pack_at)
        assert [f.to_dict() for f in tb.flights] == want, pack_at


def test_long_log_is_named_as_it_goes():
    tb = TranscriptBuilder(lambda: 0.0)
    tb.handshake_done = True
    consumed = 0
    for _ in range(600):
        tb.on_wire(SENT, b"\x17\x03\x03\x00\x10" + b"\x00" * 16)
        tb.on_wire(RECEIVED, b"\x17\x03\x03\x00\x10" + b"\x00" * 16)
        consumed += 21
        tb.resolve_received(consumed)
        assert len(tb._log) <= tr._MAX_LOG + 1
    assert len(tb.flights) == 64 and tb.truncated
    assert tb.bytes_seen(SENT) == tb.bytes_seen(RECEIVED) == 600 * 21
