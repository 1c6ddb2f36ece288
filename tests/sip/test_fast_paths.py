"""The parser's fast paths give exactly what the general code gives (or defer to it).

Fast paths: the header block without folding (``_parse_head`` vs ``_parse_head_slow``), the usual
``<uri>;params`` name-addr and ``SIP/2.0/T host:port;params`` Via (regex vs the general grammar),
and the header store (parallel key/field lists)."""

from __future__ import annotations

import string

from hypothesis import given, settings
from hypothesis import strategies as st

from sipsim.sip import headers as hdr
from sipsim.sip.message import Headers
from sipsim.sip.parser import Limits, SipParseError, _parse_head, _parse_head_slow

# Characters that matter to the grammars, plus ordinary ones.
SPECIAL = ' \t;:=<>"@,/[]\\.-!%*_+`\'~?&'
PIECES = st.text(alphabet=string.ascii_letters[:6] + string.digits[:4] + SPECIAL, max_size=30)


def outcome(fn, value):
    try:
        return ("ok", fn(value))
    except ValueError as e:
        return ("error", str(e))


@st.composite
def name_addrs(draw) -> str:
    """Mostly near-valid name-addr values, some arbitrary."""
    if draw(st.booleans()):
        return draw(PIECES)
    uri = draw(st.sampled_from(["sip:a@h", "sip:7131001@127.0.0.1:5061", "sips:x@[::1]", "tel:+1", "sipa@h",
                                "sip:a b@h", "sip:a@h;transport=tls", ""]))
    params = draw(st.lists(st.sampled_from([";tag=1", ";lr", ";Tag=AbC", ";x=", "; tag = 2", ";=v", ";a=b=c",
                                           ';q="1"', ";x<y", ";tag=1;", ""]), max_size=3))
    display = draw(st.sampled_from(["", '"Al" ', "Al ", '"A', " "]))
    tail = draw(st.sampled_from(["", " ", "x", ">"]))
    return f"{display}<{uri}>{''.join(params)}{tail}"


@st.composite
def vias(draw) -> str:
    if draw(st.booleans()):
        return draw(PIECES)
    proto = draw(st.sampled_from(["SIP/2.0/TLS", "SIP/2.0/tcp", "SIP / 2.0 / UDP", "SIP/2.1/TLS", "SIP/2.0/", "SIP/2.0"]))
    host = draw(st.sampled_from(["h", "127.0.0.1", "[::1]", "a.b-c", "", "h@x", "h:", "h:5061", "h:65536",
                                 "h:123456", "h:0", "h:05061"]))
    params = draw(st.lists(st.sampled_from([";branch=z9hG4bK1", ";rport", ";received=1.2.3.4", ";x=", "; branch = z",
                                           ';a="q"', ";=1", ";a=b=c", ";"]), max_size=3))
    sep = draw(st.sampled_from([" ", "  ", "\t", ""]))
    return f"{proto}{sep}{host}{''.join(params)}"


@settings(max_examples=600, deadline=None)
@given(name_addrs())
def test_name_addr_fast_path_matches_the_general_grammar(value):
    assert outcome(hdr.parse_name_addr, value) == outcome(hdr._parse_name_addr_slow, value)


@settings(max_examples=600, deadline=None)
@given(vias())
def test_via_fast_path_matches_the_general_grammar(value):
    assert outcome(hdr.parse_via, value) == outcome(hdr._parse_via_slow, value)


LINE = st.one_of(
    st.sampled_from(["Via: SIP/2.0/TLS h;branch=z9hG4bK1", "v: x", "From:<sip:a@h>", "To : b", "CALL-ID:  c  ",
                     "X-Empty:", ":novalue", "no colon", "Bad Name: x", "Bad\"Name: x", " folded", "\tfolded",
                     "", "Content-Length: 0", "l: 12", "X-A:\tb\t"]),
    st.text(alphabet=string.ascii_letters[:5] + ' \t:;"', max_size=12),
)


def head(fn, block: bytes, limits: Limits):
    try:
        start, headers, error = fn(block, limits)
    except SipParseError as e:
        return ("raised", type(e).__name__, str(e), e.partial_headers and e.partial_headers.items())
    return (start, headers.items(), headers._keys, error and str(error))


def slow(block: bytes, limits: Limits):
    return _parse_head_slow(block.decode("utf-8", "surrogateescape").split("\r\n"), limits)


@settings(max_examples=600, deadline=None)
@given(st.lists(LINE, max_size=8), st.integers(1, 8))
def test_header_block_fast_path_matches_the_general_loop(lines, max_headers):
    block = "\r\n".join(["INVITE sip:a@h SIP/2.0", *lines]).encode()
    limits = Limits(max_headers=max_headers)
    assert head(_parse_head, block, limits) == head(slow, block, limits)


def test_header_store_keeps_keys_and_fields_in_step():
    h = Headers([("v", "a"), ("X-Custom", "1"), ("Via", "b"), ("i", "c1")])
    assert h._keys == ["via", "x-custom", "via", "call-id"]
    assert h.items() == [("Via", "a"), ("X-Custom", "1"), ("Via", "b"), ("Call-ID", "c1")]
    assert h._items == [("via", "Via", "a"), ("x-custom", "X-Custom", "1"), ("via", "Via", "b"),
                        ("call-id", "Call-ID", "c1")]
    h.set("VIA", "z")
    assert h._keys == ["via", "x-custom", "call-id"] and h.get_all("via") == ["z"]
    h.remove("x-custom")
    assert h._keys == ["via", "call-id"] and h.items() == [("Via", "z"), ("Call-ID", "c1")]
    h.remove("absent")
    c = h.copy()
    c.add("To", "t")
    assert len(h) == 2 and len(c) == 3 and c.get("t") == "t" and "To" not in h
    assert Headers(h) == h and Headers() == Headers([]) and not Headers()


SDP_LINE = st.one_of(
    st.sampled_from([
        "v=0", "o=sipsim 1 0 IN IP4 127.0.0.1", "o=bad", "o=a b c IN IP4 h", "s=SIP Call", "c=IN IP4 10.0.0.1",
        "c=IN IP4", "t=0 0", "m=audio 16384 RTP/AVP 0 8 101", "m=audio 4000/2 RTP/AVP 0", "m=video 5000 RTP/AVP 96",
        "m=audio x RTP/AVP 0", "m=audio 1", "a=rtpmap:0 PCMU/8000", "a=rtpmap:8 PCMA/8000/1", "a=rtpmap:x PCMU/8000",
        "a=rtpmap:101 telephone-event/8000", "a=rtpmap:96 opus/abc", "a=fmtp:101 0-16", "a=fmtp:x y", "a=ptime:20",
        "a=ptime: 30", "a=ptime:x", "a=sendonly", "a=recvonly", "a=inactive", "a= sendrecv ", "a=foo:bar", "",
        " ", "garbage", "b=AS:64",
    ]),
    st.text(alphabet="amcot=: 0189/PCMU", max_size=14),
)


def sdp_outcome(fn, body: bytes):
    from sipsim.sip.sdp import SdpError

    try:
        return ("ok", fn(body))
    except SdpError as e:
        return ("error", str(e))


@settings(max_examples=600, deadline=None)
@given(st.lists(SDP_LINE, max_size=12), st.sampled_from(["\r\n", "\n"]))
def test_sdp_line_cache_matches_the_line_by_line_parser(lines, eol):
    from sipsim.sip import sdp

    body = (eol.join(lines) + eol).encode()
    assert sdp_outcome(sdp.parse_sdp, body) == sdp_outcome(sdp._parse_sdp_slow, body)
    assert sdp_outcome(sdp.parse_sdp, body) == sdp_outcome(sdp.parse_sdp, body)  # cached lines: same again


def _to_bytes_reference(sd) -> bytes:
    """SessionDescription.to_bytes as it was written line by line (the cached form must equal it)."""
    lines = [
        "v=0",
        f"o={sd.username} {sd.session_id} {sd.version} IN IP4 {sd.address}",
        "s=SIP Call",
        f"c=IN IP4 {sd.address}",
        "t=0 0",
        f"m=audio {sd.port} RTP/AVP " + " ".join(str(c.payload_type) for c in sd.codecs),
    ]
    for c in sd.codecs:
        lines.append(f"a=rtpmap:{c.rtpmap}")
        if c.fmtp:
            lines.append(f"a=fmtp:{c.payload_type} {c.fmtp}")
    if sd.ptime:
        lines.append(f"a=ptime:{sd.ptime}")
    lines.append(f"a={sd.direction}")
    return ("\r\n".join(lines) + "\r\n").encode("ascii")


@settings(max_examples=300, deadline=None)
@given(
    st.lists(st.sampled_from(["PCMU", "PCMA", "telephone-event"]), max_size=3),
    st.sampled_from([None, 0, 20, 30]),
    st.sampled_from(["sendrecv", "sendonly", "recvonly", "inactive"]),
    st.integers(0, 65535),
    st.integers(0, 2**31),
)
def test_sdp_to_bytes_matches_the_line_by_line_form(names, ptime, direction, port, session_id):
    from sipsim.sip.sdp import STATIC_CODECS, SessionDescription

    sd = SessionDescription("10.0.0.1", port, [STATIC_CODECS[n] for n in names], session_id, 0, "sipsim",
                            direction, ptime)
    assert sd.to_bytes() == _to_bytes_reference(sd)
    assert sd.to_bytes() == _to_bytes_reference(sd)  # from the cache


def test_adopted_header_lists_equal_the_normalising_constructor():
    pairs = [("Via", "a"), ("v", "b"), ("CALL-ID", "c"), ("X-Custom", "d"), ("Content-Length", "0")]
    assert Headers._adopt(list(pairs)) == Headers(pairs)
    assert Headers._adopt(list(pairs))._keys == Headers(pairs)._keys
    canonical = [("Via", "a"), ("To", "t"), ("Call-ID", "c")]
    h = Headers._adopt(canonical)
    assert h._keys == ["via", "to", "call-id"] and h.items() == canonical


def test_actions_keep_their_dataclass_behaviour_with_the_quick_init():
    import dataclasses
    import inspect

    import pytest

    from sipsim.sip import events, transaction

    classes = [getattr(events, n) for n in events.__all__ if n != "Action"] + [transaction.Send, transaction.ToTU]
    for cls in classes:
        params = inspect.signature(cls.__init__).parameters
        assert [p for p in params if p != "self"] == [f.name for f in dataclasses.fields(cls)]
    e = events.CallEnded("c1", "local")
    assert (e.call_id, e.by, e.reason) == ("c1", "local", "bye")
    assert e == events.CallEnded(call_id="c1", by="local", reason="bye") and hash(e) == hash(events.CallEnded("c1", "local"))
    assert dataclasses.replace(e, reason="no_ack").reason == "no_ack"
    with pytest.raises(dataclasses.FrozenInstanceError):
        e.reason = "x"  # type: ignore[misc]
    with pytest.raises(TypeError):
        events.Transmit("conn", b"")  # type: ignore[call-arg]
    assert transaction.ToTU(None, "timeout").response is None


START_LINE = st.one_of(
    st.sampled_from([
        "INVITE sip:a@h SIP/2.0", "BYE sip:a@h SIP/2.0", "invite sip:a@h SIP/2.0", "INVITE sip:a@h sip/2.0",
        "INVITE sip: SIP/2.0", "INVITE  sip:a@h SIP/2.0", "INVITE sip:a@h SIP/2.0 ", "FOO sip:a@h SIP/2.0",
        "INVITE tel:+1 SIP/2.0", "INVITE sip:a@h SIP/3.0", "SIP/2.0 200 OK", "SIP/2.0 200", "SIP/2.0 200 ",
        "SIP/2.0 180 Ringing Now", "SIP/2.0 099 Low", "SIP/2.0 700 High", "SIP/2.0 2000 X", "sip/2.0 200 OK",
        "SIP/2.1 200 OK", "SIP/2.0 20a OK", "SIP/2.0  200 OK", "SIP/2.0 487 Request\\nTerminated",
    ]),
    st.text(alphabet="SIP/2.0 INVTEsip:a@h1", max_size=24),
)
CSEQ = st.one_of(
    st.sampled_from(["1 INVITE", "101 BYE", "2147483647 INVITE", "2147483648 INVITE", "999999999 ACK",
                     "1  INVITE", "1 invite", "x INVITE", "1 IN;VITE", "1", "01 INVITE", "1 INVITE extra"]),
    st.text(alphabet="0123456789 INVTEBY", max_size=16),
)


@settings(max_examples=600, deadline=None)
@given(START_LINE, CSEQ)
def test_start_line_and_cseq_fast_paths_match_the_checks(start, cseq):
    import re

    from sipsim.sip import parser
    from sipsim.sip.parser import parse_message

    start = start.replace("\\n", "\n")
    data = (f"{start}\r\nVia: SIP/2.0/TLS h;branch=z9hG4bK1\r\nFrom: <sip:a@h>;tag=1\r\nTo: <sip:b@h>\r\n"
            f"Call-ID: c1\r\nCSeq: {cseq}\r\nContent-Length: 0\r\n\r\n").encode()

    def result():
        try:
            m = parse_message(data)
        except SipParseError as e:
            return ("error", e.reason, e.status, str(e))
        return ("ok", type(m).__name__, m.first_line, m.cseq, m)

    fast = result()
    saved = parser._REQUEST_LINE, parser._STATUS_LINE, parser._CSEQ
    never = re.compile(r"(?!)")
    parser._REQUEST_LINE = parser._STATUS_LINE = parser._CSEQ = never
    try:
        slow = result()
    finally:
        parser._REQUEST_LINE, parser._STATUS_LINE, parser._CSEQ = saved
    assert fast == slow


def test_caches_stay_bounded_and_skip_long_values():
    from sipsim.sip import headers as h
    from sipsim.sip import parser
    from sipsim.sip.parser import parse_message

    long_value = "x" * 1000
    data = (b"INVITE sip:a@h SIP/2.0\r\nVia: SIP/2.0/TLS h;branch=z9hG4bK1\r\nFrom: <sip:a@h>;tag=1\r\n"
            b"To: <sip:b@h;" + long_value.encode() + b">\r\nCall-ID: c1\r\nCSeq: 1 INVITE\r\n"
            b"X-Long: " + long_value.encode() + b"\r\nContent-Length: 0\r\n\r\n")
    msg = parse_message(data)
    assert msg.headers.get("X-Long") == long_value and msg.to_tag is None
    assert all(len(line) <= parser._CACHED_LINE_MAX for line in parser._LINES)
    assert all(len(v) <= h._MEMO_VALUE_MAX for v in h._NAME_ADDR_MEMO)
    for i in range(parser._LINES_MAX + 10):
        parse_message(b"OPTIONS sip:a@h SIP/2.0\r\nVia: SIP/2.0/TLS h;branch=z9hG4bK%d\r\nFrom: <sip:a@h>;tag=1\r\n"
                      b"To: <sip:b@h>\r\nCall-ID: c%d\r\nCSeq: 1 OPTIONS\r\nContent-Length: 0\r\n\r\n" % (i, i))
    assert len(parser._LINES) <= parser._LINES_MAX
    assert len(h._VIA_MEMO) <= h._MEMO_MAX
