"""Hypothesis: the parser only ever raises SipParseError; serialise → parse round-trips."""

from __future__ import annotations

import string

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from sipsim.sip import events
from sipsim.sip.endpoint import Endpoint, EndpointConfig
from sipsim.sip.message import Headers, Request, Response, serialise
from sipsim.sip.parser import Limits, MessageReader, SipParseError, parse_message

TOKEN = st.text(alphabet=string.ascii_letters + string.digits + "-.!%*_+`'~", min_size=1, max_size=12)
HOST = st.from_regex(r"[a-z][a-z0-9]{0,8}(\.[a-z][a-z0-9]{0,8}){0,2}", fullmatch=True)
VALUE = st.text(
    alphabet=st.characters(blacklist_characters="\r\n", blacklist_categories=("Cs",)), max_size=40
).map(lambda s: s.strip(" \t"))
EXT_NAME = TOKEN.map(lambda t: "X-" + t)

VALID_INVITE = (
    b"INVITE sip:8511001@127.0.0.3:5061 SIP/2.0\r\n"
    b"Via: SIP/2.0/TLS 127.0.0.1:5061;branch=z9hG4bK776asdhds\r\n"
    b"From: <sip:7131001@127.0.0.1>;tag=1928301774\r\n"
    b"To: <sip:8511001@127.0.0.3>\r\n"
    b"Call-ID: a84b4c76e66710@127.0.0.1\r\n"
    b"CSeq: 1 INVITE\r\n"
    b"Contact: <sip:7131001@127.0.0.1:5061>\r\n"
    b"Content-Type: application/sdp\r\n"
    b"Content-Length: 49\r\n\r\n"
    b"v=0\r\nc=IN IP4 127.0.0.1\r\nm=audio 4000 RTP/AVP 0\r\n"
)


@st.composite
def messages(draw) -> Request | Response:
    h = Headers()
    host = draw(HOST)
    method = draw(TOKEN)
    h.add("Via", f"SIP/2.0/{draw(st.sampled_from(['TLS', 'TCP']))} {host}:{draw(st.integers(1, 65535))};branch=z9hG4bK{draw(TOKEN)}")
    h.add("From", f"<sip:{draw(TOKEN)}@{host}>;tag={draw(TOKEN)}")
    h.add("To", f"<sip:{draw(TOKEN)}@{draw(HOST)}>")
    h.add("Call-ID", f"{draw(TOKEN)}@{host}")
    h.add("CSeq", f"{draw(st.integers(0, 2**31 - 1))} {method}")
    for name, value in draw(st.lists(st.tuples(EXT_NAME, VALUE), max_size=6)):
        h.add(name, value)
    body = draw(st.binary(max_size=200))
    if draw(st.booleans()):
        return Request(method, f"sip:{draw(TOKEN)}@{draw(HOST)}", h, body)
    reason = draw(st.text(alphabet=string.ascii_letters + " /-", max_size=20))
    return Response(draw(st.integers(100, 699)), reason, h, body)


def drain_reader(reader: MessageReader) -> list:
    out = []
    while True:
        try:
            msg = reader.next_message()
        except SipParseError as e:
            out.append(e)
            if e.fatal:
                return out
            continue
        if msg is None:
            return out
        out.append(msg)


@settings(max_examples=300, suppress_health_check=[HealthCheck.too_slow])
@given(st.binary(max_size=2000))
def test_arbitrary_bytes_only_raise_sip_parse_error(data):
    reader = MessageReader(Limits(max_message_bytes=1024, max_line_bytes=256, max_headers=16))
    reader.feed(data)
    for item in drain_reader(reader):
        assert isinstance(item, (Request, Response, SipParseError))
        if isinstance(item, SipParseError):
            assert str(item).endswith(".") and "\n" not in str(item)
    try:
        parse_message(data)
    except SipParseError:
        pass


@settings(max_examples=300)
@given(st.lists(st.tuples(st.integers(0, len(VALID_INVITE) - 1), st.binary(min_size=1, max_size=4)), max_size=5))
def test_mutated_invite_never_breaks_the_endpoint(mutations):
    data = bytearray(VALID_INVITE)
    for pos, chunk in mutations:
        data[pos : pos + len(chunk)] = chunk
    ep = Endpoint(EndpointConfig(seed=0))
    ep.receive_data("c", bytes(data), 0.0)
    ep.receive_data("c", b"\r\n" + VALID_INVITE, 0.1)
    actions = ep.drain()
    for act in actions:
        assert isinstance(act, events.Action.__args__)  # type: ignore[attr-defined]
        if isinstance(act, events.Transmit):
            # Everything we send is a correctly framed response. (An error response echoes the peer's own
            # Via/From/To/Call-ID/CSeq, so its content may be as broken as what it answers.)
            assert act.data.startswith(b"SIP/2.0 ")
            reader = MessageReader()
            reader.feed(act.data)
            try:
                assert isinstance(reader.next_message(), Response)
            except SipParseError as e:
                assert not e.fatal and act.message.status >= 400
            assert reader.buffered == 0


@settings(max_examples=200)
@given(messages())
def test_serialise_parse_round_trip(msg):
    assert parse_message(serialise(msg)) == with_length(msg)


def with_length(msg: Request | Response) -> Request | Response:
    """What serialise() adds: a Content-Length matching the body."""
    h = msg.headers.copy()
    h.set("Content-Length", str(len(msg.body)))
    if isinstance(msg, Request):
        return Request(msg.method, msg.uri, h, msg.body)
    return Response(msg.status, msg.reason, h, msg.body)


@settings(max_examples=100)
@given(st.lists(messages(), min_size=1, max_size=4), st.data())
def test_stream_of_messages_split_anywhere(msgs, data):
    wire = b"".join(serialise(m) for m in msgs)
    cuts = sorted(data.draw(st.lists(st.integers(0, len(wire)), max_size=8)))
    reader = MessageReader()
    got = []
    prev = 0
    for cut in [*cuts, len(wire)]:
        reader.feed(wire[prev:cut])
        prev = cut
        while (m := reader.next_message()) is not None:
            got.append(m)
    assert got == [with_length(m) for m in msgs]
