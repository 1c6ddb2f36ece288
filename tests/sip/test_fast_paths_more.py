"""More fast paths compared with the reference code: the UAS's response builder (request fields
reused as they are) against the general ``_response`` code, the CSeq cache against the regex and
the checks, and serialise's one-join path against the line-by-line form."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from sipsim.sip import parser
from sipsim.sip.endpoint import Endpoint, EndpointConfig
from sipsim.sip.message import Headers, Request, Response, serialise
from sipsim.sip.parser import SipParseError, parse_message

VIAS = ["SIP/2.0/TLS 127.0.0.1:5061;branch=z9hG4bK1", "SIP/2.0/TCP h;branch=z9hG4bK2",
        "SIP/2.0/TLS a:1;branch=z9hG4bK3, SIP/2.0/TLS b:2;branch=z9hG4bK4", "SIP/2.0/udp x;branch=z"]
FROMS = ["<sip:7131001@127.0.0.1>;tag=abc", '"Al" <sip:a@h>;tag=1', "<sip:a@h>", "<sip:a@h>;tag=1, <sip:b@h>"]
TOS = ["<sip:8511001@127.0.0.21>", "<sip:b@h>;tag=xyz", '"B, c" <sip:b@h>', ""]
EXTRA = [("Record-Route", "<sip:p1;lr>"), ("Via", "SIP/2.0/TLS p:5061;branch=z9hG4bKp"), ("Contact", "<sip:a@h>"),
         ("Require", "timer"), ("X-Other", "1"), ("f", "<sip:c@h>;tag=9")]


@st.composite
def requests(draw) -> Request:
    method = draw(st.sampled_from(["INVITE", "BYE", "OPTIONS", "INFO", "CANCEL", "REFER"]))
    uri = draw(st.sampled_from(["sip:8511001@127.0.0.21:5061", "sip:127.0.0.21", "sip:u@h;transport=tcp"]))
    fields = [("Via", draw(st.sampled_from(VIAS))), ("From", draw(st.sampled_from(FROMS))),
              ("To", draw(st.sampled_from(TOS))), ("Call-ID", "c1@h"), ("CSeq", f"101 {method}")]
    fields += draw(st.lists(st.sampled_from(EXTRA), max_size=3))
    order = draw(st.permutations(range(len(fields))))
    drop = draw(st.sampled_from([None, None, None, "From", "Call-ID", "CSeq"]))
    pairs = [fields[i] for i in order if fields[i][0] != drop]
    return Request(method, uri, Headers(pairs), b"")


@settings(max_examples=500, deadline=None)
@given(requests(), st.sampled_from([100, 180, 200, 405, 481, 486, 501]), st.sampled_from([None, "t1"]),
       st.booleans(), st.booleans(), st.sampled_from([None, "TCP"]))
def test_response_fast_path_matches_the_general_builder(req, status, to_tag, contact, body, transport):
    ep = Endpoint(EndpointConfig(host="127.0.0.21", seed=1))
    if transport:
        ep.set_transport("c", transport, 5070)
    data = b"v=0\r\n" if body else b""
    fast = ep._response(req, status, to_tag=to_tag, body=data, contact=contact)
    ep2 = Endpoint(EndpointConfig(host="127.0.0.21", seed=1))
    if transport:
        ep2.set_transport("c", transport, 5070)
    ep2._response_fast = lambda *a: None  # the general code only
    slow = ep2._response(req, status, to_tag=to_tag, body=data, contact=contact)
    assert fast == slow
    assert fast.headers._keys == slow.headers._keys
    assert serialise(fast) == serialise(slow)


CSEQS = st.one_of(
    st.sampled_from(["1 INVITE", "101 BYE", "2147483647 INVITE", "2147483648 INVITE", "999999999 ACK", "1  INVITE",
                     "x INVITE", "1 IN;VITE", "1", "01 INVITE", "0000000001 INVITE", "101 INFO"]),
    st.text(alphabet="0123456789 INVTEBY", max_size=16),
)


@settings(max_examples=400, deadline=None)
@given(CSEQS, st.sampled_from(["INVITE", "BYE", "ACK", "INFO"]))
def test_cseq_cache_gives_what_the_checks_give(cseq, method):
    data = (f"{method} sip:a@h SIP/2.0\r\nVia: SIP/2.0/TLS h;branch=z9hG4bK1\r\nFrom: <sip:a@h>;tag=1\r\n"
            f"To: <sip:b@h>\r\nCall-ID: c1\r\nCSeq: {cseq}\r\nContent-Length: 0\r\n\r\n").encode()

    def result():
        try:
            m = parse_message(data)
        except SipParseError as e:
            return ("error", e.reason, e.status, str(e))
        return ("ok", m.cseq, m)

    parser._CSEQS.clear()
    first = result()  # fills the cache
    cached = result()  # from the cache
    parser._CSEQS.clear()
    assert first == cached
    assert all(len(k) <= 64 for k in parser._CSEQS)


@settings(max_examples=300, deadline=None)
@given(st.lists(st.tuples(st.sampled_from(["Via", "To", "X-A", "Content-Length", "Call-ID"]),
                          st.text(alphabet="ab ;:=\u00e9", max_size=8)), max_size=6),
       st.sampled_from([b"", b"v=0\r\n"]), st.booleans())
def test_serialise_one_join_matches_the_line_by_line_form(pairs, body, request):
    msg = Request("INVITE", "sip:a@h", Headers(pairs), body) if request else Response(200, "OK", Headers(pairs), body)
    lines = []
    placed = False
    for name, value in msg.headers.items():
        if name != "Content-Length":
            lines.append(f"{name}: {value}")
        elif not placed:
            lines.append(f"Content-Length: {len(body)}")
            placed = True
    if not placed:
        lines.append(f"Content-Length: {len(body)}")
    expected = (f"{msg.first_line}\r\n" + "\r\n".join(lines) + "\r\n\r\n").encode("utf-8", "surrogateescape") + body
    assert serialise(msg) == expected


def test_serialise_formats_values_that_are_not_strings():
    msg = Request("OPTIONS", "sip:a@h", Headers([("Max-Forwards", 70), ("Expires", "180")]))  # type: ignore[list-item]
    assert serialise(msg) == b"OPTIONS sip:a@h SIP/2.0\r\nMax-Forwards: 70\r\nExpires: 180\r\nContent-Length: 0\r\n\r\n"


START_LINES = st.one_of(
    st.sampled_from([
        "INVITE sip:a@h SIP/2.0", "BYE sip:a@h SIP/2.0", "invite sip:a@h SIP/2.0", "INVITE sip:a@h sip/2.0",
        "INVITE sip: SIP/2.0", "INVITE  sip:a@h SIP/2.0", "FOO sip:a@h SIP/2.0", "INVITE tel:+1 SIP/2.0",
        "SIP/2.0 200 OK", "SIP/2.0 200", "SIP/2.0 200 ", "SIP/2.0 180 Ringing Now", "SIP/2.0 099 Low",
        "SIP/2.0 700 High", "sip/2.0 200 OK", "SIP/2.0 487 Request\\nTerminated",
    ]),
    st.text(alphabet="SIP/2.0 INVTEsip:a@h1", max_size=24),
)


@settings(max_examples=400, deadline=None)
@given(START_LINES)
def test_start_line_cache_gives_what_the_checks_give(start):
    import re

    start = start.replace("\\n", "\n")
    method = start.split(" ", 1)[0] if not start.startswith("SIP/") else "INVITE"
    data = (f"{start}\r\nVia: SIP/2.0/TLS h;branch=z9hG4bK1\r\nFrom: <sip:a@h>;tag=1\r\nTo: <sip:b@h>\r\n"
            f"Call-ID: c1\r\nCSeq: 1 {method}\r\nContent-Length: 0\r\n\r\n").encode("utf-8", "surrogateescape")

    def result():
        try:
            m = parse_message(data)
        except SipParseError as e:
            return ("error", e.reason, e.status, str(e))
        return ("ok", type(m).__name__, m.first_line, m)

    parser._STARTS.clear()
    first = result()  # regexes, then remembered
    cached = result()
    saved = parser._REQUEST_LINE, parser._STATUS_LINE
    parser._STARTS.clear()
    parser._REQUEST_LINE = parser._STATUS_LINE = re.compile(r"(?!)")
    try:
        checks = result()  # the checks one by one
    finally:
        parser._REQUEST_LINE, parser._STATUS_LINE = saved
    assert first == cached == checks


def test_in_dialog_requests_have_the_keys_the_normalising_constructor_gives():
    from sipsim.sip.dialog import Dialog

    for routes in ([], ["<sip:p1;lr>", "<sip:p2;lr>"], ["<sip:strict>"]):
        d = Dialog("uac", "c1", "t1", "<sip:a@h>;tag=t1", "<sip:b@h>;tag=t2", 1, remote_tag="t2",
                   remote_target="sip:b@h", route_set=list(routes))
        req = d.request("BYE", "SIP/2.0/TLS h:5061;branch=z9hG4bK1")
        assert req.headers._keys == Headers(req.headers.items())._keys


@settings(max_examples=60, deadline=None)
@given(st.sampled_from(["127.0.0.1", "h.example", "[::1]", "bad host", "h;x", ""]), st.sampled_from(["TLS", "TCP", "X Y"]))
def test_client_transaction_keys_are_the_branch_of_the_top_via(host, transport):
    ep = Endpoint(EndpointConfig(host=host, seed=2))
    ep.set_transport("c", transport, 5070)
    try:
        ep.place_call("c", 0.0, caller="1", called="2", request_uri="sip:2@127.0.0.2")
    except ValueError:
        return
    ep.send_options("c", 0.0, request_uri="sip:127.0.0.2")
    for key, txn in ep._client.items():
        assert key == ("client", txn.request.top_via_branch or "", txn.request.method)


O_LINES = st.sampled_from(["o=sipsim {n} 0 IN IP4 10.0.0.1", "o=- {n} {n} IN IP4 h", "o=bad {n}", "o=x {n} y IN IP4 h",
                           "o=CiscoSystemsCCM-SIP {n} 1 IN IP4 10.1.1.1", "o=a\x0b{n} 1 2 IN IP4 h", "o= a {n} 1 IN IP4 h "])
EXTRA_SDP = st.sampled_from(["a=sendonly", "a=ptime:30", "b=AS:64", "c=IN IP4 10.9.9.9", "m=video 0 RTP/AVP 31",
                             "a=rtpmap:101 telephone-event/8000", "a=fmtp:101 0-15", "o=second 1 1 IN IP4 h", "garbage",
                             "a=x:m=audio 1 RTP/AVP 0", "\u2028", "a=inactive", ""])


@settings(max_examples=500, deadline=None)
@given(O_LINES, st.lists(EXTRA_SDP, max_size=3), st.lists(EXTRA_SDP, max_size=3),
       st.sampled_from(["0 8 101", "0", "8 0", "", "x"]), st.lists(st.integers(0, 99999), min_size=2, max_size=4),
       st.sampled_from(["\r\n", "\n"]))
def test_sdp_template_path_matches_the_line_by_line_parser(o_line, before, after, pts, numbers, eol):
    from sipsim.sip import sdp

    def body(n: int) -> bytes:
        lines = ["v=0", o_line.format(n=n), "s=SIP Call", "c=IN IP4 10.0.0.1", "t=0 0", *before,
                 f"m=audio {n} RTP/AVP {pts}", "a=rtpmap:0 PCMU/8000", "a=rtpmap:8 PCMA/8000", *after, "a=sendrecv"]
        return (eol.join(lines) + eol).encode()

    sdp._TEMPLATES.clear()
    for n in numbers:  # the first fills the template, the others use it
        b = body(n)
        assert sdp_outcome(sdp.parse_sdp, b) == sdp_outcome(sdp._parse_sdp_slow, b)


def test_sdp_templates_of_real_offers_and_answers():
    from sipsim.sip import sdp

    sdp._TEMPLATES.clear()
    for i in range(5):
        offer = sdp.build_offer("127.0.0.1", 16384 + 2 * i, ("PCMU", "PCMA"), session_id=1000 + i)
        answer = sdp.build_answer(sdp.parse_sdp(offer.raw), "127.0.0.2", 20000 + 2 * i, ("PCMA",), session_id=7 * i)
        for raw in (offer.raw, answer.raw):
            assert sdp.parse_sdp(raw) == sdp._parse_sdp_slow(raw)
    assert 1 <= len(sdp._TEMPLATES) <= 2


def sdp_outcome(fn, body: bytes):
    from sipsim.sip.sdp import SdpError

    try:
        return ("ok", fn(body))
    except SdpError as e:
        return ("error", str(e))
