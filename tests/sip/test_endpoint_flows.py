"""Two Endpoints back-to-back in memory: whole call flows, driven by `now` and timer_fired."""

from __future__ import annotations

import pytest

from sipsim.sip.events import (
    CallAnswered,
    CallEnded,
    CallFailed,
    CallProgress,
    IncomingCall,
    OptionsResult,
    ProtocolError,
    StartTimer,
    Transmit,
)
from sipsim.sip.message import Headers, Request, serialise
from sipsim.sip.parser import parse_message

from .wire import CONN, Wire

URI = "sip:8511001@127.0.0.3:5061"


def place(w: Wire, **kw) -> str:
    call_id = w.a.place_call(CONN, w.now, caller="7131001", called="8511001", request_uri=URI, **kw)
    w.pump()
    return call_id


def test_full_call_ladder_and_events():
    w = Wire()
    call_id = place(w)
    [incoming] = w.of("b", IncomingCall)
    assert incoming.call_id == call_id
    assert incoming.request.method == "INVITE"
    assert w.b.calls[call_id].caller == "7131001"
    assert w.b.calls[call_id].called == "8511001"

    w.b.answer(call_id, w.now)
    w.pump()
    w.advance(5.0)
    w.a.hang_up(call_id, w.now)
    w.pump()

    assert w.methods() == ["a:INVITE", "b:100", "b:180", "b:200", "a:ACK", "a:BYE", "b:200"]
    assert [e.status for e in w.of("a", CallProgress)] == [100, 180]
    [answered] = w.of("a", CallAnswered)
    assert answered.status == 200
    assert answered.sdp_answer.codec.name == "PCMU"
    assert w.of("a", CallEnded) == [CallEnded(call_id, "local", "bye")]
    assert w.of("b", CallEnded) == [CallEnded(call_id, "remote", "bye")]
    assert not w.of("a", CallFailed)
    # No transaction left behind, and every timer started has been cancelled or is harmless.
    assert w.a.pending_transactions == 0 and w.b.pending_transactions == 0
    assert w.timers == {}


def test_call_log_has_time_direction_and_first_line():
    w = Wire()
    call_id = place(w)
    w.now = 1.5
    w.b.answer(call_id, w.now)
    w.pump()
    log = w.a.call_log(call_id)
    assert log[0] == (0.0, "out", f"INVITE {URI} SIP/2.0")
    assert (1.5, "in", "SIP/2.0 180 Ringing") in log
    assert log[-1][1:] == ("out", f"ACK sip:8511001@127.0.0.3:5061;transport=tls SIP/2.0")
    assert [d for _, d, _ in w.b.call_log(call_id)] == ["in", "out", "out", "out", "in"]


def test_invite_headers_look_like_cucm():
    w = Wire()
    place(w, headers=[("Call-Info", "<urn:x-cisco-remotecc:callinfo>;security=Encrypted")])
    invite = parse_message(next(a for s, a in _transmits(w) if s == "a"))
    h = invite.headers
    assert h.get("From").startswith("<sip:7131001@127.0.0.1>;tag=")
    assert h.get("To") == "<sip:8511001@127.0.0.3>"
    assert h.get("Via").startswith("SIP/2.0/TLS 127.0.0.1:5061;branch=z9hG4bK")
    assert h.get("Max-Forwards") == "70"
    assert h.get("Contact") == "<sip:7131001@127.0.0.1:5061;transport=tls>"
    assert h.get_all("Supported") == ["timer", "replaces", "X-cisco-srtp-fallback"]
    assert "INVITE" in h.get_all("Allow") and "BYE" in h.get_all("Allow")
    assert h.get("User-Agent") == "sipsim"
    assert h.get("Expires") == "180"
    assert h.get("Call-Info") == "<urn:x-cisco-remotecc:callinfo>;security=Encrypted"
    assert h.get("Content-Type") == "application/sdp"
    assert b"m=audio" in invite.body and b"RTP/AVP 0 8 101" in invite.body


def _transmits(w: Wire):
    # Re-run a fresh copy of the same scenario to get raw bytes (Wire keeps only first lines).
    w2 = Wire()
    w2.a.place_call(CONN, 0.0, caller="7131001", called="8511001", request_uri=URI,
                    headers=[("Call-Info", "<urn:x-cisco-remotecc:callinfo>;security=Encrypted")])
    return [("a", act.data) for act in w2.a.drain() if isinstance(act, Transmit)]


def test_answer_with_delay_uses_a_timer():
    w = Wire()
    call_id = place(w)
    w.b.answer(call_id, w.now, delay=3.0)
    w.pump()
    assert w.methods()[-1] == "b:180"
    assert any(isinstance(e, StartTimer) and e.delay == 3.0 for _, e in w.events)
    w.advance(2.9)
    assert not w.of("a", CallAnswered)
    w.advance(0.2)
    assert w.of("a", CallAnswered)[0].status == 200
    assert w.methods()[-2:] == ["b:200", "a:ACK"]


def test_cancel_before_answer():
    w = Wire()
    call_id = place(w)
    w.b.answer(call_id, w.now, delay=10.0)
    w.pump()
    w.advance(1.0)
    w.a.hang_up(call_id, w.now)
    w.pump()
    assert w.methods() == ["a:INVITE", "b:100", "b:180", "a:CANCEL", "b:200", "b:487", "a:ACK"]
    assert w.of("a", CallFailed) == [CallFailed(call_id, 487, "cancelled")]
    assert w.of("b", CallEnded) == [CallEnded(call_id, "remote", "cancelled")]
    # The UAS's answer timer was cancelled: nothing else happens later.
    w.advance(60.0)
    assert w.methods()[-1] == "a:ACK"
    assert w.b.calls[call_id].status == 487


def test_hang_up_before_any_provisional_defers_cancel():
    w = Wire()
    w.deliver["b"] = False  # B's 100 Trying does not reach A yet
    call_id = place(w)
    w.a.hang_up(call_id, w.now)
    w.pump()
    assert "a:CANCEL" not in w.methods()  # RFC 3261 9.1: wait for a provisional response
    w.deliver["b"] = True
    w.b.answer(call_id, w.now, delay=5.0)
    w.pump()
    assert "a:CANCEL" in w.methods()
    assert w.of("a", CallFailed) == [CallFailed(call_id, 487, "cancelled")]


def test_busy_486():
    w = Wire()
    call_id = place(w)
    w.b.reject(call_id, w.now, status=486)
    w.pump()
    assert w.methods() == ["a:INVITE", "b:100", "b:486", "a:ACK"]
    assert w.of("a", CallFailed) == [CallFailed(call_id, 486, "Busy Here")]
    assert w.of("b", CallEnded) == [CallEnded(call_id, "local", "rejected")]
    # The non-2xx ACK reuses the INVITE branch and is absorbed by B's server transaction.
    assert w.b.pending_transactions == 0


def test_answer_with_error_status_after_ringing():
    w = Wire()
    call_id = place(w)
    w.b.answer(call_id, w.now, status=603, delay=1.0)
    w.advance(2.0)
    assert w.methods() == ["a:INVITE", "b:100", "b:180", "b:603", "a:ACK"]
    assert w.of("a", CallFailed) == [CallFailed(call_id, 603, "Decline")]


def test_options_both_ways():
    w = Wire()
    key = w.a.send_options(CONN, w.now, request_uri="sip:127.0.0.3:5061")
    w.pump()
    assert w.methods() == ["a:OPTIONS", "b:200"]
    assert w.of("a", OptionsResult) == [OptionsResult(key, 200, "OK")]
    assert not w.of("b", IncomingCall)


def test_options_timeout_on_timer_f():
    w = Wire()
    w.deliver["a"] = False
    key = w.a.send_options(CONN, w.now, request_uri="sip:127.0.0.3:5061")
    w.advance(31.9)
    assert not w.of("a", OptionsResult)
    w.advance(0.2)
    assert w.of("a", OptionsResult) == [OptionsResult(key, None, "timeout")]


def test_invite_timeout_timer_b():
    w = Wire()
    w.deliver["a"] = False  # the peer never sees the INVITE
    call_id = place(w)
    w.advance(31.0)
    assert not w.of("a", CallFailed)
    w.advance(2.0)
    assert w.of("a", CallFailed) == [CallFailed(call_id, 408, "timeout")]
    assert w.a.calls[call_id].state == "ended"
    assert w.a.pending_transactions == 0


def test_invite_expires_cancels_a_ringing_call():
    w = Wire()
    call_id = place(w)
    w.b.answer(call_id, w.now, delay=1000.0)
    w.advance(181.0)
    assert "a:CANCEL" in w.methods()
    assert w.of("a", CallFailed) == [CallFailed(call_id, 408, "timeout")]


def test_bye_for_unknown_dialog_gets_481():
    w = Wire()
    h = Headers()
    h.add("Via", "SIP/2.0/TLS 127.0.0.1:5061;branch=z9hG4bKnope")
    h.add("From", "<sip:a@127.0.0.1>;tag=1")
    h.add("To", "<sip:b@127.0.0.3>;tag=2")
    h.add("Call-ID", "nope@127.0.0.1")
    h.add("CSeq", "5 BYE")
    w.b.receive_data(CONN, serialise(Request("BYE", "sip:b@127.0.0.3", h)), 0.0)
    [tx] = [a for a in w.b.drain() if isinstance(a, Transmit)]
    resp = parse_message(tx.data)
    assert resp.status == 481
    assert resp.call_id == "nope@127.0.0.1" and resp.cseq == (5, "BYE")
    assert resp.to_tag == "2"


def test_malformed_request_gets_400_and_protocol_error():
    w = Wire()
    data = (
        b"INVITE sip:b@127.0.0.3 SIP/2.0\r\n"
        b"Via: SIP/2.0/TLS 127.0.0.1:5061;branch=z9hG4bKbad\r\n"
        b"From: <sip:a@127.0.0.1>;tag=1\r\n"
        b"To: <sip:b@127.0.0.3>\r\n"
        b"Call-ID: bad@127.0.0.1\r\n"
        b"CSeq: 1 BYE\r\n"  # method mismatch
        b"Content-Length: 0\r\n\r\n"
    )
    w.b.receive_data(CONN, data, 0.0)
    acts = w.b.drain()
    [tx] = [a for a in acts if isinstance(a, Transmit)]
    [err] = [a for a in acts if isinstance(a, ProtocolError)]
    resp = parse_message(tx.data)
    assert resp.status == 400
    assert resp.call_id == "bad@127.0.0.1"
    assert "bad_cseq" in resp.headers.get("Warning")
    assert err.response_sent is True and err.error.reason == "bad_cseq" and err.conn == CONN
    # The reader carries on: a good OPTIONS after it is answered.
    key = w.a.send_options(CONN, 0.0, "sip:127.0.0.3:5061")
    w.pump()
    assert w.of("a", OptionsResult) == [OptionsResult(key, 200, "OK")]


def test_garbage_gives_protocol_error_without_response():
    w = Wire()
    w.b.receive_data(CONN, b"HELLO\r\n\r\n", 0.0)
    acts = w.b.drain()
    assert [type(a) for a in acts] == [ProtocolError]
    assert acts[0].response_sent is False


def test_missing_content_length_is_fatal_for_the_connection():
    w = Wire()
    data = (
        b"OPTIONS sip:b@127.0.0.3 SIP/2.0\r\nVia: SIP/2.0/TLS h;branch=z9hG4bK1\r\n"
        b"From: <sip:a@h>;tag=1\r\nTo: <sip:b@h>\r\nCall-ID: x\r\nCSeq: 1 OPTIONS\r\n\r\n"
    )
    w.b.receive_data(CONN, data, 0.0)
    acts = w.b.drain()
    err = next(a for a in acts if isinstance(a, ProtocolError))
    assert err.error.reason == "missing_content_length" and err.error.fatal
    assert err.response_sent  # headers were complete, so a 400 went back
    w.b.receive_data(CONN, data.replace(b"\r\n\r\n", b"\r\nContent-Length: 0\r\n\r\n"), 0.0)
    assert w.b.drain() == []  # the connection is considered broken until connection_lost


def test_uas_without_ack_sends_bye_after_64_t1():
    w = Wire()
    call_id = place(w)
    w.deliver["a"] = False  # A's ACK is lost
    w.b.answer(call_id, w.now)
    w.advance(31.9)
    assert not w.of("b", CallEnded)
    w.advance(0.2)
    assert w.of("b", CallEnded) == [CallEnded(call_id, "local", "no_ack")]
    assert w.lines("b")[-1].startswith("BYE ")


def test_connection_lost_fails_pending_and_ends_confirmed_calls():
    w = Wire()
    early = place(w)
    w.b.answer(early, w.now, delay=100.0)
    confirmed = place(w)
    w.b.answer(confirmed, w.now)
    w.pump()
    opt = w.a.send_options(CONN, w.now, "sip:127.0.0.3:5061")  # answered at once
    w.pump()
    w.deliver["a"] = False
    opt2 = w.a.send_options(CONN, w.now, "sip:127.0.0.3:5061")  # lost in flight
    w.pump()
    w.a.connection_lost(CONN, w.now)
    w.b.connection_lost(CONN, w.now)
    w.pump()
    assert CallFailed(early, 503, "connection_lost") in w.of("a", CallFailed)
    assert CallEnded(confirmed, "remote", "connection_lost") in w.of("a", CallEnded)
    assert CallEnded(early, "remote", "connection_lost") in w.of("b", CallEnded)
    assert OptionsResult(opt, 200, "OK") in w.of("a", OptionsResult)
    assert OptionsResult(opt2, None, "connection_lost") in w.of("a", OptionsResult)
    assert w.a.pending_transactions == 0 and w.b.pending_transactions == 0


def test_connection_lost_touches_only_that_connections_live_calls_in_order():
    """connection_lost visits the calls of that connection not yet ended (an index, not every call
    the endpoint keeps): ended calls stay as they were, calls on another connection go on."""
    w = Wire()
    done = place(w)
    w.b.answer(done, w.now)
    w.pump()
    w.a.hang_up(done, w.now)
    w.pump()
    first, second = place(w), place(w)
    w.b.answer(first, w.now)
    w.b.answer(second, w.now)
    w.pump()
    other = w.a.place_call("other-link", w.now, caller="7131001", called="8511001",
                           request_uri="sip:8511001@127.0.0.3:5061")
    before = w.of("a", CallEnded)
    w.a.connection_lost(CONN, w.now)
    w.pump()
    ended = w.of("a", CallEnded)[len(before):]
    assert ended == [CallEnded(first, "remote", "connection_lost"), CallEnded(second, "remote", "connection_lost")]
    assert w.a.calls[done].end_reason != "connection_lost"
    assert not w.a.calls[other].ended
    w.a.connection_lost("other-link", w.now)
    assert w.a.calls[other].ended and w.a.calls[other].end_reason == "connection_lost"
    w.a.connection_lost(CONN, w.now)      # twice: nothing more happens
    w.pump()
    assert w.of("a", CallEnded)[len(before):] == ended


def test_callee_hangs_up_with_bye():
    w = Wire()
    call_id = place(w)
    w.b.answer(call_id, w.now)
    w.pump()
    w.b.hang_up(call_id, 9.0)
    w.pump()
    assert w.methods()[-2:] == ["b:BYE", "a:200"]
    assert w.of("a", CallEnded) == [CallEnded(call_id, "remote", "bye")]
    assert w.of("b", CallEnded) == [CallEnded(call_id, "local", "bye")]


def test_delayed_offer_invite_without_sdp():
    w = Wire()
    call_id = place(w, sdp=False)
    assert w.b.calls[call_id].remote_sdp is None
    w.b.answer(call_id, w.now)
    w.pump()
    [answered] = w.of("a", CallAnswered)
    assert answered.sdp_answer is not None  # B's offer in the 200
    assert w.b.calls[call_id].remote_sdp.codec.name == "PCMU"  # A's answer came in the ACK


def test_no_common_codec_gives_488():
    from sipsim.sip.endpoint import Endpoint, EndpointConfig

    w = Wire(b=Endpoint(EndpointConfig(host="127.0.0.3", codecs=("PCMA",), seed=2)))
    w.a = Endpoint(EndpointConfig(host="127.0.0.1", codecs=("PCMU",), seed=1))
    call_id = place(w)
    w.b.answer(call_id, w.now)
    w.pump()
    assert w.of("a", CallFailed)[0].status == 488
    assert w.of("b", CallEnded) == [CallEnded(call_id, "local", "rejected")]


def test_answer_picks_first_common_codec_of_the_offer():
    from sipsim.sip.endpoint import Endpoint, EndpointConfig

    w = Wire()
    w.a = Endpoint(EndpointConfig(host="127.0.0.1", codecs=("PCMA", "PCMU"), seed=1))
    call_id = place(w)
    w.b.answer(call_id, w.now)
    w.pump()
    assert w.of("a", CallAnswered)[0].sdp_answer.codec_names == ["PCMA", "telephone-event"]


def test_reinvite_is_answered_with_the_same_sdp():
    w = Wire()
    call_id = place(w)
    w.b.answer(call_id, w.now)
    w.pump()
    call = w.a.calls[call_id]
    reinvite = call.dialog.request("INVITE", "SIP/2.0/TLS 127.0.0.1:5061;branch=z9hG4bKre1",
                                   body=call.local_sdp.raw)
    reinvite.headers.add("Contact", "<sip:7131001@127.0.0.1:5061;transport=tls>")
    reinvite.headers.add("Content-Type", "application/sdp")
    w.b.receive_data(CONN, serialise(reinvite), w.now)
    [tx] = [a for a in w.b.drain() if isinstance(a, Transmit)]
    resp = parse_message(tx.data)
    assert resp.status == 200 and resp.cseq == (102, "INVITE")
    assert resp.body == w.b.calls[call_id].local_sdp.raw


@pytest.mark.parametrize(("method", "status"), [("SUBSCRIBE", 405), ("FOO", 501)])
def test_unsupported_methods(method, status):
    w = Wire()
    h = Headers()
    h.add("Via", "SIP/2.0/TLS 127.0.0.1:5061;branch=z9hG4bKm")
    h.add("From", "<sip:a@127.0.0.1>;tag=1")
    h.add("To", "<sip:b@127.0.0.3>")
    h.add("Call-ID", "m@127.0.0.1")
    h.add("CSeq", f"1 {method}")
    w.b.receive_data(CONN, serialise(Request(method, "sip:b@127.0.0.3", h)), 0.0)
    [tx] = [a for a in w.b.drain() if isinstance(a, Transmit)]
    resp = parse_message(tx.data)
    assert resp.status == status
    assert "INVITE" in resp.headers.get_all("Allow")


def test_timer_fired_with_unknown_or_cancelled_key_is_harmless():
    w = Wire()
    call_id = place(w)
    w.b.answer(call_id, w.now)
    w.pump()
    cancelled = [e.key for s, e in w.events if s == "a" and isinstance(e, StartTimer)]
    for key in cancelled + ["nonsense", ("txn", "x", "b"), ("answer", "nope"), 42]:
        w.a.timer_fired(key, 100.0)
        w.b.timer_fired(key, 100.0)
    assert w.a.drain() == [] and w.b.drain() == []
    assert w.a.calls[call_id].state == "confirmed"


def test_cancel_without_final_response_gives_up_after_64_t1():
    w = Wire()
    call_id = place(w)  # B sent 100 Trying; A is early
    w.deliver["a"] = False  # the CANCEL is lost, B never sends 487
    w.a.hang_up(call_id, w.now)
    w.advance(31.0)
    assert not w.of("a", CallFailed)
    w.advance(2.0)
    assert w.of("a", CallFailed) == [CallFailed(call_id, 408, "cancelled")]
    assert w.a.pending_transactions == 0
    assert not [k for (side, k) in w.timers if side == "a"]


def test_require_of_an_unknown_extension_gets_420():
    w = Wire()
    w.a.place_call(CONN, 0.0, caller="7131001", called="8511001", request_uri=URI,
                   headers=["Require: 100rel, timer"])
    w.pump()
    assert w.methods() == ["a:INVITE", "b:420", "a:ACK"]
    assert not w.of("b", IncomingCall)
    [failed] = w.of("a", CallFailed)
    assert failed.status == 420 and failed.reason == "Bad Extension"
