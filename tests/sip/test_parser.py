"""Parser (RFC 3261 §7) and serialiser: framing, forms, limits and errors."""

from __future__ import annotations

import pytest

from sipsim.sip.message import Headers, Request, Response, serialise
from sipsim.sip.parser import (
    LineTooLong,
    Limits,
    MessageReader,
    MessageTooLarge,
    SipParseError,
    TooManyHeaders,
    parse_message,
)


def crlf(text: str) -> bytes:
    """Test vectors are written with "\\n"; SIP wants CRLF."""
    return text.replace("\n", "\r\n").encode()


INVITE = crlf(
    "INVITE sip:8511001@127.0.0.3:5061 SIP/2.0\n"
    "Via: SIP/2.0/TLS 127.0.0.1:5061;branch=z9hG4bK776asdhds\n"
    "Max-Forwards: 70\n"
    "To: <sip:8511001@127.0.0.3>\n"
    "From: <sip:7131001@127.0.0.1>;tag=1928301774\n"
    "Call-ID: a84b4c76e66710@127.0.0.1\n"
    "CSeq: 314159 INVITE\n"
    "Contact: <sip:7131001@127.0.0.1:5061;transport=tls>\n"
    "Content-Type: application/sdp\n"
    "Content-Length: 4\n"
    "\n"
) + b"v=0\n"

RESPONSE = crlf(
    "SIP/2.0 180 Ringing\n"
    "Via: SIP/2.0/TLS 127.0.0.1:5061;branch=z9hG4bK776asdhds\n"
    "To: <sip:8511001@127.0.0.3>;tag=a6c85cf\n"
    "From: <sip:7131001@127.0.0.1>;tag=1928301774\n"
    "Call-ID: a84b4c76e66710@127.0.0.1\n"
    "CSeq: 314159 INVITE\n"
    "Content-Length: 0\n"
    "\n"
)


def read_all(data: bytes, limits: Limits | None = None) -> list:
    reader = MessageReader(limits)
    reader.feed(data)
    out = []
    while (msg := reader.next_message()) is not None:
        out.append(msg)
    return out


def test_request_fields():
    [msg] = read_all(INVITE)
    assert isinstance(msg, Request)
    assert msg.method == "INVITE" and msg.uri == "sip:8511001@127.0.0.3:5061"
    assert msg.call_id == "a84b4c76e66710@127.0.0.1"
    assert msg.cseq == (314159, "INVITE")
    assert msg.from_tag == "1928301774" and msg.to_tag is None
    assert msg.top_via_branch == "z9hG4bK776asdhds"
    assert msg.body == b"v=0\n"


def test_response_fields():
    [msg] = read_all(RESPONSE)
    assert isinstance(msg, Response)
    assert (msg.status, msg.reason) == (180, "Ringing")
    assert msg.to_tag == "a6c85cf"


def test_reason_phrase_may_contain_spaces_or_be_empty():
    msg = parse_message(RESPONSE.replace(b"180 Ringing", b"481 Call/Transaction Does Not Exist"))
    assert msg.reason == "Call/Transaction Does Not Exist"
    assert parse_message(RESPONSE.replace(b"180 Ringing", b"100 ")).reason == ""


def test_compact_forms_are_expanded():
    data = crlf(
        "OPTIONS sip:b@h SIP/2.0\n"
        "v: SIP/2.0/TLS h;branch=z9hG4bK1\n"
        "f: <sip:a@h>;tag=1\n"
        "t: <sip:b@h>\n"
        "i: cid\n"
        "m: <sip:a@h>\n"
        "k: timer\n"
        "s: hello\n"
        "c: application/sdp\n"
        "e: gzip\n"
        "o: presence\n"
        "r: <sip:c@h>\n"
        "b: <sip:d@h>\n"
        "x: 1800\n"
        "u: talk\n"
        "CSeq: 1 OPTIONS\n"
        "l: 0\n\n"
    )
    msg = parse_message(data)
    names = [n for n, _ in msg.headers.items()]
    assert names == [
        "Via", "From", "To", "Call-ID", "Contact", "Supported", "Subject", "Content-Type",
        "Content-Encoding", "Event", "Refer-To", "Referred-By", "Session-Expires", "Allow-Events",
        "CSeq", "Content-Length",
    ]
    assert msg.call_id == "cid"
    assert msg.headers.get("Session-Expires") == "1800"


def test_header_names_are_case_insensitive():
    msg = parse_message(INVITE.replace(b"Call-ID", b"cALL-iD").replace(b"CSeq", b"cseq"))
    assert msg.headers.get("call-id") == msg.headers.get("CALL-ID") == "a84b4c76e66710@127.0.0.1"
    assert "CSEQ" in msg.headers
    assert msg.cseq == (314159, "INVITE")
    # Stored under the canonical full name, so serialising normalises the case.
    assert b"\r\nCall-ID: a84b" in serialise(msg)


def test_line_folding():
    data = INVITE.replace(b"Subject", b"X").replace(
        b"Max-Forwards: 70\r\n", b"Subject: I know you're there,\r\n   pick up the phone\r\n\tand talk to me!\r\nMax-Forwards: 70\r\n"
    )
    msg = parse_message(data)
    assert msg.headers.get("Subject") == "I know you're there, pick up the phone and talk to me!"


def test_multiple_via_lines_and_comma_separated():
    data = INVITE.replace(
        b"Max-Forwards",
        b"Via: SIP/2.0/TLS proxy1:5061;branch=z9hG4bKp1, SIP/2.0/TCP proxy2;branch=z9hG4bKp2\r\n"
        b"v: SIP/2.0/TLS proxy3;branch=z9hG4bKp3\r\nMax-Forwards",
    )
    msg = parse_message(data)
    vias = msg.headers.get_all("Via")
    assert len(vias) == 4
    assert vias[0].endswith("z9hG4bK776asdhds")
    assert vias[2] == "SIP/2.0/TCP proxy2;branch=z9hG4bKp2"
    assert msg.top_via_branch == "z9hG4bK776asdhds"


def test_several_messages_in_one_feed_with_keepalives():
    reader = MessageReader()
    reader.feed(b"\r\n\r\n" + INVITE + b"\r\n" + RESPONSE + INVITE[:40])
    first, second = reader.next_message(), reader.next_message()
    assert isinstance(first, Request) and isinstance(second, Response)
    assert reader.next_message() is None
    assert reader.keepalives == 3
    reader.feed(INVITE[40:])
    assert reader.next_message() == first


def test_byte_by_byte():
    reader = MessageReader()
    got = []
    for i in range(len(INVITE + RESPONSE)):
        reader.feed((INVITE + RESPONSE)[i : i + 1])
        while (m := reader.next_message()) is not None:
            got.append(m)
    assert [type(m) for m in got] == [Request, Response]
    assert got[0].body == b"v=0\n"


def test_body_framed_by_content_length_not_by_blank_lines():
    body = b"line1\r\n\r\nline3\r\n"
    data = INVITE.replace(b"Content-Length: 4", b"Content-Length: %d" % len(body)).replace(b"v=0\n", body)
    [msg] = read_all(data + RESPONSE)[:1]
    assert msg.body == body


def test_missing_content_length_on_stream():
    data = INVITE.replace(b"Content-Length: 4\r\n", b"")
    with pytest.raises(SipParseError) as exc:
        read_all(data)
    e = exc.value
    assert e.reason == "missing_content_length" and e.status == 400 and e.fatal
    assert e.partial_headers.get("Call-ID") == "a84b4c76e66710@127.0.0.1"
    assert e.can_respond
    # parse_message (a whole datagram) does not need it
    assert parse_message(data).body == b"v=0\n"


def test_fatal_error_sticks_until_reset():
    reader = MessageReader()
    reader.feed(INVITE.replace(b"Content-Length: 4", b"Content-Length: x"))
    for _ in range(2):
        with pytest.raises(SipParseError, match="bad_content_length"):
            reader.next_message()
    reader.reset()
    reader.feed(RESPONSE)
    assert isinstance(reader.next_message(), Response)


def test_non_fatal_error_consumes_the_message_and_continues():
    reader = MessageReader()
    reader.feed(INVITE.replace(b"CSeq: 314159 INVITE", b"CSeq: abc INVITE") + RESPONSE)
    with pytest.raises(SipParseError) as exc:
        reader.next_message()
    assert exc.value.reason == "bad_cseq" and not exc.value.fatal
    assert isinstance(reader.next_message(), Response)


@pytest.mark.parametrize(
    ("start_line", "reason", "status"),
    [
        (b"INVITE sip:b@h SIP/2.0 extra", "bad_start_line", 400),
        (b"INVITE  sip:b@h SIP/2.0", "bad_start_line", 400),
        (b"INVITE sip:b@h", "bad_start_line", 400),
        (b"INVITE <sip:b@h> SIP/2.0", "bad_request_uri", 400),
        (b"INVITE sip:b@h SIP/3.0", "bad_version", 505),
        (b"INVITE sip:b@h HTTP/1.1", "bad_start_line", 400),
        (b"SIP/2.0 99 Odd", "bad_start_line", 400),
        (b"SIP/2.0 OK", "bad_start_line", 400),
        (b"SIP/1.0 200 OK", "bad_version", 505),
    ],
)
def test_bad_start_lines(start_line, reason, status):
    data = start_line + INVITE[INVITE.index(b"\r\n") :]
    with pytest.raises(SipParseError) as exc:
        parse_message(data)
    assert exc.value.reason == reason and exc.value.status == status
    text = str(exc.value)
    assert text.endswith(".") and "\n" not in text and reason in text


@pytest.mark.parametrize("name", ["Via", "From", "To", "Call-ID", "CSeq"])
def test_missing_mandatory_header(name):
    lines = [line for line in INVITE.split(b"\r\n") if not line.startswith(name.encode() + b":")]
    with pytest.raises(SipParseError) as exc:
        parse_message(b"\r\n".join(lines))
    assert exc.value.reason == "missing_header"
    assert str(exc.value) == f"Malformed SIP message (missing_header): the message has no {name} header."
    assert not exc.value.can_respond


def test_max_forwards_is_optional():
    data = INVITE.replace(b"Max-Forwards: 70\r\n", b"")
    assert "Max-Forwards" not in parse_message(data).headers


@pytest.mark.parametrize(
    "cseq", [b"CSeq: INVITE", b"CSeq: 1", b"CSeq: -1 INVITE", b"CSeq: 1 BYE", b"CSeq: 2147483648 INVITE"]
)
def test_bad_cseq(cseq):
    with pytest.raises(SipParseError) as exc:
        parse_message(INVITE.replace(b"CSeq: 314159 INVITE", cseq))
    assert exc.value.reason == "bad_cseq"
    assert exc.value.can_respond  # all five headers are there, so a 400 can be built


def test_header_line_without_colon():
    with pytest.raises(SipParseError) as exc:
        parse_message(INVITE.replace(b"Max-Forwards: 70", b"Max-Forwards 70"))
    assert exc.value.reason == "bad_header"


def test_message_too_large_by_content_length():
    data = INVITE.replace(b"Content-Length: 4", b"Content-Length: 70000")
    with pytest.raises(MessageTooLarge) as exc:
        read_all(data)
    assert exc.value.status == 413 and exc.value.reason == "message_too_large"
    assert isinstance(exc.value, SipParseError)


def test_message_too_large_without_end_of_headers():
    limits = Limits(max_message_bytes=1000, max_line_bytes=100)
    reader = MessageReader(limits)
    with pytest.raises(MessageTooLarge):
        for _ in range(100):
            reader.feed(b"X-Filler: 0123456789\r\n")
            assert reader.next_message() is None


def test_line_too_long_while_waiting_and_when_complete():
    limits = Limits(max_line_bytes=64)
    reader = MessageReader(limits)
    reader.feed(b"INVITE sip:" + b"a" * 100)
    with pytest.raises(LineTooLong) as exc:
        reader.next_message()
    assert exc.value.reason == "line_too_long" and exc.value.status == 400
    long_header = INVITE.replace(b"Max-Forwards: 70", b"X-Long: " + b"b" * 80)
    with pytest.raises(LineTooLong, match="header line 2"):
        read_all(long_header, limits)


def test_too_many_headers():
    extra = b"".join(b"X-H%d: v\r\n" % i for i in range(20))
    data = INVITE.replace(b"Max-Forwards: 70\r\n", extra)
    with pytest.raises(TooManyHeaders) as exc:
        read_all(data, Limits(max_headers=16))
    assert exc.value.reason == "too_many_headers"
    assert len(read_all(data, Limits(max_headers=40))) == 1


def test_headers_multimap_api():
    h = Headers([("Via", "a"), ("v", "b, c"), ("X-Custom", "1")])
    assert h.get("VIA") == "a" and h.get_all("via") == ["a", "b", "c"]
    assert h.get("missing", "dflt") == "dflt"
    h.set("via", "z")
    assert h.items() == [("Via", "z"), ("X-Custom", "1")]
    h.add("x-custom", "2")
    assert h.get_all("X-CUSTOM") == ["1", "2"]
    h.remove("X-Custom")
    assert "x-custom" not in h and len(h) == 1
    # Commas inside quotes or <> do not split list values.
    h.add("Contact", '"Smith, J" <sip:j@h;x=a,b>, <sip:k@h>')
    assert h.get_all("Contact") == ['"Smith, J" <sip:j@h;x=a,b>', "<sip:k@h>"]


def test_serialise_writes_content_length_from_body_and_keeps_order():
    h = Headers([("Via", "SIP/2.0/TLS h;branch=z9hG4bK1"), ("f", "<sip:a@h>;tag=1"), ("Content-Length", "999")])
    h.add("To", "<sip:b@h>")
    data = serialise(Request("INFO", "sip:b@h", h, b"hello"))
    assert data == (
        b"INFO sip:b@h SIP/2.0\r\nVia: SIP/2.0/TLS h;branch=z9hG4bK1\r\nFrom: <sip:a@h>;tag=1\r\n"
        b"Content-Length: 5\r\nTo: <sip:b@h>\r\n\r\nhello"
    )
    h.remove("Content-Length")
    assert serialise(Request("INFO", "sip:b@h", h)).endswith(b"To: <sip:b@h>\r\nContent-Length: 0\r\n\r\n")


def test_round_trip_of_a_parsed_message():
    msg = parse_message(INVITE)
    assert parse_message(serialise(msg)) == msg
