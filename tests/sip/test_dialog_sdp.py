"""Dialog table, in-dialog request construction, SDP offer/answer, URI and header helpers."""

from __future__ import annotations

import pytest

from sipsim.sip.dialog import DIALOG_TABLE, Dialog
from sipsim.sip.headers import parse_name_addr, parse_via
from sipsim.sip.message import Headers, Request, Response
from sipsim.sip.sdp import SdpError, build_answer, build_offer, parse_sdp
from sipsim.sip.uri import parse_uri


def invite() -> Request:
    h = Headers()
    h.add("Via", "SIP/2.0/TLS 10.0.0.1:5061;branch=z9hG4bKi")
    h.add("Record-Route", "<sip:p1.example.com;lr>")
    h.add("Record-Route", "<sip:p2.example.com;lr>")
    h.add("From", "<sip:1000@10.0.0.1>;tag=ua")
    h.add("To", "<sip:2000@10.0.0.2>")
    h.add("Call-ID", "c1")
    h.add("CSeq", "101 INVITE")
    h.add("Contact", "<sip:1000@10.0.0.1:5061;transport=tls>")
    return Request("INVITE", "sip:2000@10.0.0.2:5061", h)


def reply(status: int, tag: str = "ub") -> Response:
    inv = invite()
    h = Headers()
    h.add("Via", inv.headers.get("Via"))
    h.add("Record-Route", "<sip:p1.example.com;lr>, <sip:p2.example.com;lr>")
    h.add("From", inv.headers.get("From"))
    h.add("To", f"<sip:2000@10.0.0.2>;tag={tag}")
    h.add("Call-ID", "c1")
    h.add("CSeq", "101 INVITE")
    h.add("Contact", f"<sip:2000@10.0.0.2:5061;transport=tls;n={status}>")
    return Response(status, "X", h)


def test_uac_dialog_early_then_confirmed():
    d = Dialog.for_uac(invite())
    assert d.state == "init" and d.local_tag == "ua" and d.local_seq == 101
    assert d.on("1xx", reply(180)) == "early"
    assert d.remote_tag == "ub" and d.remote_target.endswith("n=180")
    assert d.on("2xx", reply(200)) == "confirmed"
    assert d.remote_target == "sip:2000@10.0.0.2:5061;transport=tls;n=200"
    # UAC route set is the Record-Route of the response, reversed (RFC 3261 12.1.2).
    assert d.route_set == ["<sip:p2.example.com;lr>", "<sip:p1.example.com;lr>"]
    assert d.on("bye", invite()) == "terminated"


def test_uac_dialog_failure():
    d = Dialog.for_uac(invite())
    d.on("1xx", reply(180))
    assert d.on("failure", reply(486)) == "terminated"


def test_uas_dialog_takes_route_set_in_order_and_contact_as_target():
    d = Dialog.for_uas(invite(), "ub")
    assert d.remote_tag == "ua" and d.remote_seq == 101
    assert d.local_party == "<sip:2000@10.0.0.2>;tag=ub"
    assert d.remote_target == "sip:1000@10.0.0.1:5061;transport=tls"
    assert d.route_set == ["<sip:p1.example.com;lr>", "<sip:p2.example.com;lr>"]
    # Our own 200 must not overwrite the remote target with our Contact.
    d.on("2xx", reply(200))
    assert d.remote_target == "sip:1000@10.0.0.1:5061;transport=tls"


def test_in_dialog_request_loose_routing_and_cseq():
    d = Dialog.for_uac(invite())
    d.on("2xx", reply(200))
    bye = d.request("BYE", "SIP/2.0/TLS 10.0.0.1:5061;branch=z9hG4bKb")
    assert bye.uri == d.remote_target
    assert bye.headers.get_all("Route") == ["<sip:p2.example.com;lr>", "<sip:p1.example.com;lr>"]
    assert bye.cseq == (102, "BYE")
    assert bye.from_tag == "ua" and bye.to_tag == "ub" and bye.call_id == "c1"
    ack = d.request("ACK", "SIP/2.0/TLS 10.0.0.1:5061;branch=z9hG4bKa", cseq=101)
    assert ack.cseq == (101, "ACK") and d.local_seq == 102


def test_in_dialog_request_strict_routing():
    d = Dialog.for_uac(invite())
    resp = reply(200)
    resp.headers.set("Record-Route", "<sip:strict.example.com>")
    d.on("2xx", resp)
    bye = d.request("BYE", "SIP/2.0/TLS h;branch=z9hG4bKs")
    assert bye.uri == "sip:strict.example.com"
    assert bye.headers.get_all("Route") == [f"<{d.remote_target}>"]


def test_dialog_matches_by_call_id_and_tags():
    d = Dialog.for_uas(invite(), "ub")
    bye = Request("BYE", "sip:x", Headers([("From", "<sip:1000@h>;tag=ua"), ("To", "<sip:2000@h>;tag=ub"), ("Call-ID", "c1")]))
    assert d.matches(bye)
    bye.headers.set("To", "<sip:2000@h>;tag=other")
    assert not d.matches(bye)


def test_dialog_table_has_the_three_states():
    states = {s for s, _ in DIALOG_TABLE} | {n for n, _ in DIALOG_TABLE.values()}
    assert {"early", "confirmed", "terminated"} <= states


# --- SDP -----------------------------------------------------------------------------------------

CUCM_OFFER = (
    b"v=0\r\no=CiscoSystemsCCM-SIP 2000 1 IN IP4 10.10.10.30\r\ns=SIP Call\r\n"
    b"c=IN IP4 10.10.10.50\r\nb=TIAS:64000\r\nt=0 0\r\nm=audio 24580 RTP/AVP 9 8 0 18 101\r\n"
    b"a=rtpmap:9 G722/8000\r\na=rtpmap:8 PCMA/8000\r\na=rtpmap:0 PCMU/8000\r\n"
    b"a=rtpmap:18 G729/8000\r\na=fmtp:18 annexb=no\r\na=rtpmap:101 telephone-event/8000\r\n"
    b"a=fmtp:101 0-15\r\na=ptime:20\r\na=sendrecv\r\n"
)


def test_parse_cucm_offer():
    sd = parse_sdp(CUCM_OFFER)
    assert sd.address == "10.10.10.50" and sd.port == 24580
    assert sd.codec_names == ["G722", "PCMA", "PCMU", "G729", "telephone-event"]
    assert sd.codecs[-1].fmtp == "0-15" and sd.ptime == 20 and sd.session_id == 2000


def test_answer_picks_first_common_codec_in_offer_order():
    ans = build_answer(parse_sdp(CUCM_OFFER), "10.0.0.2", 16384, ("PCMU", "PCMA"))
    assert ans.codec_names == ["PCMA", "telephone-event"]
    assert ans.codecs[1].payload_type == 101
    reparsed = parse_sdp(ans.raw)
    assert reparsed.codec.name == "PCMA" and reparsed.port == 16384 and reparsed.address == "10.0.0.2"


def test_offer_has_pcmu_pcma_and_telephone_event():
    offer = build_offer("10.0.0.1", 16384)
    assert b"m=audio 16384 RTP/AVP 0 8 101\r\n" in offer.raw
    assert b"a=rtpmap:101 telephone-event/8000\r\n" in offer.raw
    assert parse_sdp(offer.raw).codec_names == ["PCMU", "PCMA", "telephone-event"]


def test_no_common_codec_and_bad_sdp():
    offer = parse_sdp(CUCM_OFFER.replace(b" 9 8 0 18 101", b" 9 18"))
    with pytest.raises(SdpError, match="no common codec"):
        build_answer(offer, "h", 1, ("PCMU", "PCMA"))
    with pytest.raises(SdpError):
        parse_sdp(b"v=0\r\nthis is not sdp\r\n")
    with pytest.raises(SdpError, match="no audio"):
        parse_sdp(b"v=0\r\nm=video 1 RTP/AVP 31\r\n")


def test_sendonly_offer_gets_recvonly_answer():
    offer = parse_sdp(build_offer("h", 1).raw.replace(b"a=sendrecv", b"a=sendonly"))
    assert build_answer(offer, "h", 2).direction == "recvonly"


# --- URIs and header values ----------------------------------------------------------------------


def test_uri_parts():
    u = parse_uri("sip:8511001@127.0.0.3:5061;transport=tls;lr")
    assert (u.user, u.host, u.port) == ("8511001", "127.0.0.3", 5061)
    assert u.params == {"transport": "tls", "lr": None}
    assert str(u) == "sip:8511001@127.0.0.3:5061;transport=tls;lr"
    assert parse_uri("sip:[2001:db8::1]:5061").host == "[2001:db8::1]"
    assert parse_uri("sip:user;par=u%40example.net@example.com").user == "user;par=u%40example.net"
    for bad in ("8511001@host", "sip:user@host:99999", "sip:user@", "sip:user@host:"):
        with pytest.raises(ValueError):
            parse_uri(bad)


def test_name_addr_and_via():
    na = parse_name_addr('"Alice, A" <sip:a@h;transport=tls>;tag=x;expires=60')
    assert (na.display, na.uri, na.tag) == ('"Alice, A"', "sip:a@h;transport=tls", "x")
    assert parse_name_addr("sip:a@h;tag=y").uri == "sip:a@h"
    v = parse_via("SIP/2.0/TLS 127.0.0.1:5061;branch=z9hG4bK1;received=1.2.3.4;rport")
    assert (v.transport, v.host, v.port, v.branch, v.sent_by) == ("TLS", "127.0.0.1", 5061, "z9hG4bK1", "127.0.0.1:5061")
    assert v.params["rport"] is None
    for bad in ("SIP/2.0/UDP", "SIP/2.0 host", "SIP/2.0/UDP host;;"):
        with pytest.raises(ValueError):
            parse_via(bad)
