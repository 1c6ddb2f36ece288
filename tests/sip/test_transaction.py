"""Transaction tables (RFC 3261 §17, reliable transport), driven directly."""

from __future__ import annotations

import pytest

from sipsim.sip.events import CancelTimer, StartTimer
from sipsim.sip.message import Headers, Request, Response
from sipsim.sip.timers import TimerConfig
from sipsim.sip.transaction import (
    ICT_TABLE,
    IST_TABLE,
    NICT_TABLE,
    NIST_TABLE,
    Send,
    ToTU,
    Transaction,
    client_key,
    response_event,
    server_key,
)

T = TimerConfig()


def request(method: str = "INVITE") -> Request:
    h = Headers()
    h.add("Via", "SIP/2.0/TLS 127.0.0.1:5061;branch=z9hG4bKabc")
    h.add("Route", "<sip:proxy;lr>")
    h.add("From", "<sip:a@h>;tag=1")
    h.add("To", "<sip:b@h>")
    h.add("Call-ID", "cid")
    h.add("CSeq", f"7 {method}")
    return Request(method, "sip:b@h", h)


def response(status: int, method: str = "INVITE") -> Response:
    req = request(method)
    h = Headers()
    for name in ("Via", "From"):
        h.add(name, req.headers.get(name))
    h.add("To", "<sip:b@h>;tag=2")
    h.add("Call-ID", "cid")
    h.add("CSeq", f"7 {method}")
    return Response(status, "X", h)


def txn(kind: str, method: str = "INVITE") -> Transaction:
    req = request(method)
    key = client_key("z9hG4bKabc", method) if kind in ("ict", "nict") else server_key("z9hG4bKabc", "h", method)
    return Transaction(kind, key, "conn", req, T)


def kinds(outputs) -> list[str]:
    out = []
    for o in outputs:
        if isinstance(o, Send):
            m = o.message
            out.append(f"send {m.method if isinstance(m, Request) else m.status}")
        elif isinstance(o, StartTimer):
            out.append(f"start {o.key[-1]} {o.delay:g}")
        elif isinstance(o, CancelTimer):
            out.append(f"cancel {o.key[-1]}")
        elif isinstance(o, ToTU):
            out.append(f"tu {o.what}" + (f" {o.response.status}" if o.response else ""))
    return out


def test_timer_values_are_64_t1_and_zero_on_reliable_transport():
    assert (T.b, T.f, T.h) == (32.0, 32.0, 32.0)
    assert (T.d, T.i, T.j, T.k) == (0.0, 0.0, 0.0, 0.0)
    assert TimerConfig(t1=0.25).b == 16.0
    assert (T.retry_invite, T.retry_non_invite) == (6, 10)


# --- INVITE client -------------------------------------------------------------------------------


def test_ict_sends_invite_and_starts_only_timer_b():
    t = txn("ict")
    assert kinds(t.start()) == ["send INVITE", "start b 32"]  # no Timer A on TLS/TCP
    assert t.state == "calling"


def test_ict_provisional_then_2xx():
    t = txn("ict")
    t.start()
    assert kinds(t.handle("1xx", response(100))) == ["cancel b", "tu response 100"]
    assert t.state == "proceeding"
    assert kinds(t.handle("1xx", response(180))) == ["tu response 180"]
    assert kinds(t.handle("2xx", response(200))) == ["tu response 200"]
    assert t.terminated  # the UA core ACKs 2xx, not the transaction


def test_ict_non_2xx_acks_with_the_same_branch_and_terminates_at_once():
    t = txn("ict")
    t.start()
    out = t.handle(response_event("ict", 486), response(486))
    assert kinds(out) == ["send ACK", "tu response 486", "cancel b"]
    ack = out[0].message
    assert ack.top_via_branch == "z9hG4bKabc"
    assert ack.cseq == (7, "ACK") and ack.uri == "sip:b@h"
    assert ack.to_tag == "2" and ack.headers.get("Route") == "<sip:proxy;lr>"
    assert t.terminated  # Timer D = 0 on a reliable transport


def test_ict_timer_b_in_calling():
    t = txn("ict")
    t.start()
    assert kinds(t.timer_fired("b")) == ["tu timeout"]
    assert t.terminated


def test_ict_timer_b_is_stopped_by_a_provisional():
    t = txn("ict")
    t.start()
    t.handle("1xx", response(100))
    assert t.timer_fired("b") == []
    assert t.state == "proceeding"


def test_ict_transport_error():
    t = txn("ict")
    t.start()
    assert kinds(t.handle("transport_error")) == ["tu transport_error", "cancel b"]
    assert t.terminated


# --- non-INVITE client ---------------------------------------------------------------------------


def test_nict_flow_and_timer_f():
    t = txn("nict", "BYE")
    assert kinds(t.start()) == ["send BYE", "start f 32"]  # no Timer E
    assert kinds(t.handle("1xx", response(100, "BYE"))) == ["tu response 100"]
    assert t.state == "proceeding"
    assert kinds(t.handle("final", response(200, "BYE"))) == ["tu response 200", "cancel f"]
    assert t.terminated  # Timer K = 0

    t = txn("nict", "OPTIONS")
    t.start()
    assert kinds(t.timer_fired("f")) == ["tu timeout"]
    assert t.terminated
    assert t.timer_fired("f") == []  # a second expiry is stale


def test_nict_2xx_is_a_final_event():
    assert response_event("nict", 200) == "final"
    assert response_event("ict", 200) == "2xx"
    assert response_event("ict", 404) == "final"
    assert response_event("nict", 183) == "1xx"


# --- INVITE server -------------------------------------------------------------------------------


def test_ist_provisional_and_2xx():
    t = txn("ist")
    assert t.state == "proceeding" and t.start() == []
    assert kinds(t.handle("send_1xx", response(100))) == ["send 100"]
    assert kinds(t.handle("request", request())) == ["send 100"]  # retransmitted INVITE
    assert kinds(t.handle("send_2xx", response(200))) == ["send 200"]
    assert t.terminated


def test_ist_non_2xx_waits_for_ack_with_timer_h():
    t = txn("ist")
    assert kinds(t.handle("send_final", response(486))) == ["send 486", "start h 32"]  # no Timer G
    assert t.state == "completed"
    assert kinds(t.handle("request", request())) == ["send 486"]
    assert kinds(t.handle("ack", request("ACK"))) == ["cancel h"]
    assert t.terminated  # Timer I = 0


def test_ist_timer_h_without_ack():
    t = txn("ist")
    t.handle("send_final", response(603))
    assert kinds(t.timer_fired("h")) == ["tu timeout"]
    assert t.terminated


# --- non-INVITE server ---------------------------------------------------------------------------


def test_nist_final_terminates_at_once():
    t = txn("nist", "OPTIONS")
    assert t.state == "trying"
    assert t.handle("request", request("OPTIONS")) == []  # retransmission in Trying: absorbed
    assert kinds(t.handle("send_final", response(200, "OPTIONS"))) == ["send 200"]
    assert t.terminated  # Timer J = 0


def test_nist_provisional_is_resent_on_retransmission():
    t = txn("nist", "BYE")
    t.handle("send_1xx", response(100, "BYE"))
    assert kinds(t.handle("request", request("BYE"))) == ["send 100"]


# --- tables --------------------------------------------------------------------------------------


@pytest.mark.parametrize("table", [ICT_TABLE, NICT_TABLE, IST_TABLE, NIST_TABLE])
def test_tables_never_leave_terminated_and_reach_it(table):
    states = {s for s, _ in table} | {n for n, _ in table.values()}
    assert "terminated" in states
    assert not any(s == "terminated" for s, _ in table)
    assert not any("timer_a" in e or "timer_e" in e or "timer_g" in e for _, e in table)


def test_unknown_event_is_ignored():
    t = txn("nict", "BYE")
    t.start()
    assert t.handle("ack") == []
    assert t.state == "trying"


def test_keys_ack_matches_invite_cancel_does_not():
    assert server_key("z9hG4bK1", "h:5061", "ACK") == server_key("z9hG4bK1", "h:5061", "INVITE")
    assert server_key("z9hG4bK1", "h:5061", "CANCEL") != server_key("z9hG4bK1", "h:5061", "INVITE")
    assert client_key("z9hG4bK1", "CANCEL") != client_key("z9hG4bK1", "INVITE")


def test_timer_keys_are_unique_per_transaction_and_hashable():
    a, b = txn("ict"), txn("nict", "BYE")
    keys = {a.timer_key("b"), b.timer_key("f"), a.timer_key("d")}
    assert len(keys) == 3
