"""A selection of RFC 4475 torture messages (bytes written out here, CRLF line ends)."""

from __future__ import annotations

import pytest

from sipsim.sip.headers import parse_name_addr, parse_via
from sipsim.sip.message import Request, Response, serialise
from sipsim.sip.parser import MessageReader, SipParseError, parse_message


def crlf(text: str) -> bytes:
    return text.replace("\n", "\r\n").encode("utf-8", "surrogateescape")


SDP_150 = (
    "v=0\n"
    "o=mhandley 29739 7272939 IN IP4 {ip}\n"
    "s=-\n"
    "c=IN IP4 {ip2}\n"
    "t=0 0\n"
    "m=audio 49217 RTP/AVP 0 12\n"
    "m=video 3227 RTP/AVP 31\n"
    "a=rtpmap:31 LPC\n"
)

# 3.1.1.1 A Short Tortuous INVITE
WSINV = crlf(
    "INVITE sip:vivekg@chair-dnrc.example.com;unknownparam SIP/2.0\n"
    "TO :\n"
    " sip:vivekg@chair-dnrc.example.com ;   tag    = 1918181833n\n"
    'from   : "J Rosenberg \\\\\\""       <sip:jdrosen@example.com>\n'
    "  ;\n"
    "  tag = 98asjd8\n"
    "MaX-fOrWaRdS: 0068\n"
    "Call-ID: wsinv.ndaksdj@192.0.2.1\n"
    "Content-Length   : 150\n"
    "cseq: 0009\n"
    "  INVITE\n"
    "Via  : SIP  /   2.0\n"
    " /UDP\n"
    "    192.0.2.2;branch=390skdjuw\n"
    "s :\n"
    "NewFangledHeader:   newfangled value\n"
    " continued newfangled value\n"
    "UnknownHeaderWithUnusualValue: ;;,,;;,;\n"
    "Content-Type: application/sdp\n"
    "Route:\n"
    " <sip:services.example.com;lr;unknownwith=value;unknown-no-value>\n"
    "v:  SIP  / 2.0  / TCP     spindle.example.com   ;\n"
    "  branch  =   z9hG4bK9ikj8  ,\n"
    " SIP  /    2.0   / UDP  192.168.255.111   ; branch=\n"
    " z9hG4bK30239\n"
    'm:"Quoted string \\"\\"" <sip:jdrosen@example.com> ; newparam =\n'
    "      newvalue ;\n"
    "  secondparam ; q = 0.33\n"
    "\n" + SDP_150.format(ip="192.0.2.3", ip2="192.0.2.4")
)

# 3.1.1.2 Wide Range of Valid Characters
INTMETH = (
    b"!interesting-Method0123456789_*+`.%indeed'~ sip:1_unusual.URI~(to-be!sure)&isn't+it$/crazy?,/;;*"
    b":&it+has=1,weird!*pas$wo~d_too.(doesn't-it)@example.com SIP/2.0\r\n"
    b"Via: SIP/2.0/TCP host1.example.com;branch=z9hG4bK-.!%66*_+`'~\r\n"
    b'To: "BEL:\\\x07 NUL:\\\x00 DEL:\\\x7f" <sip:1_unusual.URI~(to-be!sure)&isn\'t+it$/crazy?,/;;*@example.com>\r\n'
    b"From: token1~` token2'+_ token3*%!.- <sip:mundane@example.com> ;fromParam''~+*_!.-%="
    b'"\xd1\x80\xd0\xb0\xd0\xb1\xd0\xbe\xd1\x82\xd0\xb0\xd1\x8e\xd1\x89\xd0\xb8\xd0\xb9"'
    b";tag=_token~1'+`*%!-.\r\n"
    b"Call-ID: intmeth.word%ZK-!.*_+'@word`~)(><:\\/\"][?}{\r\n"
    b"CSeq: 139122385 !interesting-Method0123456789_*+`.%indeed'~\r\n"
    b"Max-Forwards: 255\r\n"
    b"extensionHeader-!.%*+_`'~:\xef\xbb\xbf\xe5\xa4\xa7\xe5\x81\x9c\xe9\x9b\xbb\r\n"
    b"Content-Length: 0\r\n"
    b"\r\n"
)

# 3.1.1.3 Valid Use of the % Escaping Mechanism
ESC01 = crlf(
    "INVITE sip:sips%3Auser%40example.com@example.net SIP/2.0\n"
    "To: sip:%75se%72@example.com\n"
    "From: <sip:I%20have%20spaces@example.net>;tag=938\n"
    "Max-Forwards: 87\n"
    "i: esc01.239409asdfakjkn23onasd0-3234\n"
    "CSeq: 234234 INVITE\n"
    "Via: SIP/2.0/UDP host5.example.net;branch=z9hG4bKkdjuw\n"
    "C: application/sdp\n"
    "Contact:\n"
    "  <sip:cal%6Cer@host5.example.net;%6C%72;n%61me=v%61lue%25%34%31>\n"
    "Content-Length: 150\n"
    "\n" + SDP_150.format(ip="192.0.2.1", ip2="192.0.2.1")
)

# 3.1.1.5 Use of % When It Is Not an Escape
ESC02 = crlf(
    "RE%47IST%45R sip:registrar.example.com SIP/2.0\n"
    'To: "%Z%45" <sip:resource@example.com>\n'
    'From: "%Z%45" <sip:resource@example.com>;tag=f232jadfj23\n'
    "Call-ID: esc02.asdfnqwo34rq23i34jrjasdcnl23nrlknsdf\n"
    "Via: SIP/2.0/TCP host.example.com;branch=z9hG4bK209%fzsnel234\n"
    "CSeq: 29344 RE%47IST%45R\n"
    "Max-Forwards: 70\n"
    "Contact: <sip:alias1@host1.example.com>\n"
    "C%6Fntact: <sip:alias2@host2.example.com>\n"
    "Contact: <sip:alias3@host3.example.com>\n"
    "l: 0\n"
    "\n"
)

# 3.1.2.1 Extraneous Header Field Separators
BADINV01 = crlf(
    "INVITE sip:user@example.com SIP/2.0\n"
    "To: sip:j.user@example.com\n"
    "From: sip:caller@example.net;tag=134161461246\n"
    "Max-Forwards: 7\n"
    "Call-ID: badinv01.0ha0isndaksdjasdf3234nas\n"
    "CSeq: 8 INVITE\n"
    "Via: SIP/2.0/UDP 192.0.2.15;;,;,,\n"
    'Contact: "Joe" <sip:joe@example.org>;;;;\n'
    "Content-Length: 152\n"
    "Content-Type: application/sdp\n"
    "\n" + SDP_150.format(ip="192.0.2.15", ip2="192.0.2.15")
)

# 3.1.2.2 Content Length Larger Than Message
CLERR = crlf(
    "INVITE sip:user@example.com SIP/2.0\n"
    "Max-Forwards: 80\n"
    "To: sip:j.user@example.com\n"
    "From: sip:caller@example.net;tag=93942939o2\n"
    "Contact: <sip:caller@hungry.example.net>\n"
    "Call-ID: clerr.0ha0isndaksdjweiafasdk3\n"
    "CSeq: 8 INVITE\n"
    "Via: SIP/2.0/UDP host5.example.com;branch=z9hG4bK-39234-23523\n"
    "Content-Type: application/sdp\n"
    "Content-Length: 9999\n"
    "\n" + SDP_150.format(ip="192.0.2.155", ip2="192.0.2.155")
)

# 3.1.2.3 Negative Content-Length
NCL = crlf(
    "INVITE sip:user@example.com SIP/2.0\n"
    "Max-Forwards: 254\n"
    "To: sip:j.user@example.com\n"
    "From: sip:caller@example.net;tag=32394234\n"
    "Call-ID: ncl.0ha0isndaksdj2193423r542w35\n"
    "CSeq: 0 INVITE\n"
    "Via: SIP/2.0/UDP 192.0.2.53;branch=z9hG4bKkdjuw\n"
    "Contact: <sip:caller@example53.example.net>\n"
    "Content-Type: application/sdp\n"
    "Content-Length: -999\n"
    "\n" + SDP_150.format(ip="192.0.2.53", ip2="192.0.2.53")
)

# 3.1.2.4 Request Scalar Fields with Overlarge Values
SCALAR02 = crlf(
    "REGISTER sip:example.com SIP/2.0\n"
    "Via: SIP/2.0/TCP host129.example.com;branch=z9hG4bK342sdfoi3\n"
    "To: <sip:user@example.com>\n"
    "From: <sip:user@example.com>;tag=239232jh3\n"
    "CSeq: 36893488147419103232 REGISTER\n"
    "Call-ID: scalar02.23o0pd9vanlq3wnrlnewofjas9ui32\n"
    "Max-Forwards: 300\n"
    "Expires: 1" + "0" * 100 + "\n"
    "Contact: <sip:user@host129.example.com>\n"
    "  ;expires=280297596632815\n"
    "Content-Length: 0\n"
    "\n"
)

# 3.1.2.5 Response Scalar Fields with Overlarge Values
SCALARLG = crlf(
    "SIP/2.0 503 Service Unavailable\n"
    "Via: SIP/2.0/TCP host129.example.com;branch=z9hG4bKzzxdiwo34sw;received=192.0.2.129\n"
    "To: <sip:user@example.com>\n"
    "From: <sip:other@example.net>;tag=2easdjfejw\n"
    "CSeq: 9292394834772304023312 OPTIONS\n"
    "Call-ID: scalarlg.noase0of0234hn2qofoaf0232aewf2394r\n"
    "Retry-After: 949302838503028349304023988\n"
    'Warning: 1812 overture "In Progress"\n'
    "Content-Length: 0\n"
    "\n"
)

# 3.1.2.6 Unterminated Quoted String in Display Name
QUOTBAL = crlf(
    "INVITE sip:user@example.com SIP/2.0\n"
    'To: "Mr. J. User <sip:j.user@example.com>\n'
    "From: sip:caller@example.net;tag=93334\n"
    "Max-Forwards: 10\n"
    "Call-ID: quotbal.aksdj\n"
    "Contact: <sip:caller@host59.example.net>\n"
    "CSeq: 8 INVITE\n"
    "Via: SIP/2.0/UDP 192.0.2.59:5050;branch=z9hG4bKkdjuw39234\n"
    "Content-Type: application/sdp\n"
    "Content-Length: 0\n"
    "\n"
)

# 3.1.2.15 Unknown Protocol Version
BADVERS = crlf(
    "OPTIONS sip:t.watson@example.org SIP/7.0\n"
    "Via:     SIP/7.0/UDP c.example.com;branch=z9hG4bKkdjuw\n"
    "Max-Forwards:     70\n"
    "From:    A. Bell <sip:a.g.bell@example.com>;tag=qweoiqpe\n"
    "To:      T. Watson <sip:t.watson@example.org>\n"
    "Call-ID: badvers.31417@c.example.com\n"
    "CSeq:    1 OPTIONS\n"
    "l: 0\n"
    "\n"
)

# 3.1.2.16 Start Line and CSeq Method Mismatch
MISMATCH01 = crlf(
    "OPTIONS sip:user@example.com SIP/2.0\n"
    "To: sip:j.user@example.com\n"
    "From: sip:caller@example.net;tag=34525\n"
    "Max-Forwards: 6\n"
    "Call-ID: mismatch01.dj0234sxdfl3\n"
    "CSeq: 8 INVITE\n"
    "Via: SIP/2.0/UDP host.example.com;branch=z9hG4bKkdjuw\n"
    "l: 0\n"
    "\n"
)

# 3.1.2.19 Missing Required Header Fields
INSUF = crlf(
    "INVITE sip:user@example.com SIP/2.0\n"
    "CSeq: 193942 INVITE\n"
    "Via: SIP/2.0/UDP 192.0.2.95;branch=z9hG4bKkdj.insuf\n"
    "Content-Type: application/sdp\n"
    "l: 150\n"
    "\n" + SDP_150.format(ip="192.0.2.95", ip2="192.0.2.95")
)


def stream(data: bytes):
    reader = MessageReader()
    reader.feed(data)
    return reader.next_message()


def test_wsinv_short_tortuous_invite():
    msg = stream(WSINV)
    assert isinstance(msg, Request) and msg.method == "INVITE"
    assert msg.cseq == (9, "INVITE")
    assert msg.headers.get("Max-Forwards") == "0068"
    assert msg.to_tag == "1918181833n" and msg.from_tag == "98asjd8"
    assert parse_name_addr(msg.headers.get("From")).display == '"J Rosenberg \\\\\\""'
    assert msg.headers.get("Subject") == ""
    assert msg.headers.get("NewFangledHeader") == "newfangled value continued newfangled value"
    assert msg.headers.get("UnknownHeaderWithUnusualValue") == ";;,,;;,;"
    vias = [parse_via(v) for v in msg.headers.get_all("Via")]
    assert [(v.transport, v.host, v.branch) for v in vias] == [
        ("UDP", "192.0.2.2", "390skdjuw"),
        ("TCP", "spindle.example.com", "z9hG4bK9ikj8"),
        ("UDP", "192.168.255.111", "z9hG4bK30239"),
    ]
    contact = parse_name_addr(msg.headers.get("Contact"))
    assert contact.uri == "sip:jdrosen@example.com"
    assert contact.params == {"newparam": "newvalue", "secondparam": None, "q": "0.33"}
    assert len(msg.body) == 150 and msg.body.startswith(b"v=0\r\n")
    # And it survives a round trip through the serialiser.
    assert parse_message(serialise(msg)) == msg


def test_intmeth_wide_range_of_valid_characters():
    msg = stream(INTMETH)
    assert msg.method == "!interesting-Method0123456789_*+`.%indeed'~"
    assert msg.cseq == (139122385, msg.method)
    assert msg.from_tag == "_token~1'+`*%!-."
    assert msg.call_id == "intmeth.word%ZK-!.*_+'@word`~)(><:\\/\"][?}{"
    assert msg.headers.get("extensionHeader-!.%*+_`'~") == "\ufeff大停電"
    assert parse_message(serialise(msg)) == msg


def test_esc01_escapes_are_kept_verbatim():
    msg = stream(ESC01)
    assert msg.uri == "sip:sips%3Auser%40example.com@example.net"
    assert msg.call_id == "esc01.239409asdfakjkn23onasd0-3234"
    assert msg.headers.get("Content-Type") == "application/sdp"
    assert parse_name_addr(msg.headers.get("Contact")).uri.startswith("sip:cal%6Cer@host5.example.net;")


def test_esc02_percent_in_method_and_header_name():
    msg = stream(ESC02)
    assert msg.method == "RE%47IST%45R"
    assert len(msg.headers.get_all("Contact")) == 2  # C%6Fntact is a different (unknown) header
    assert msg.headers.get("C%6Fntact") == "<sip:alias2@host2.example.com>"


def test_badinv01_extraneous_separators_in_via():
    with pytest.raises(SipParseError) as exc:
        stream(BADINV01 + b"\r\n")  # Content-Length says 152: two more octets
    assert exc.value.reason == "bad_via"


def test_clerr_content_length_larger_than_message():
    assert stream(CLERR) is None  # on a stream: wait for the rest
    with pytest.raises(SipParseError) as exc:
        parse_message(CLERR)  # as a whole datagram: an error
    assert exc.value.reason == "bad_content_length"


def test_ncl_negative_content_length():
    with pytest.raises(SipParseError) as exc:
        stream(NCL)
    assert exc.value.reason == "bad_content_length" and exc.value.fatal
    assert "-999" in str(exc.value)


def test_scalar02_overlarge_cseq_can_still_be_answered():
    with pytest.raises(SipParseError) as exc:
        stream(SCALAR02)
    assert exc.value.reason == "bad_cseq" and exc.value.can_respond


def test_scalarlg_overlarge_cseq_in_a_response():
    with pytest.raises(SipParseError) as exc:
        stream(SCALARLG)
    assert exc.value.reason == "bad_cseq" and not exc.value.can_respond  # never answer a response


def test_quotbal_unterminated_quote():
    with pytest.raises(SipParseError) as exc:
        stream(QUOTBAL)
    assert exc.value.reason == "bad_header" and "To" in str(exc.value)


def test_badvers_is_505():
    with pytest.raises(SipParseError) as exc:
        stream(BADVERS)
    assert exc.value.reason == "bad_version" and exc.value.status == 505


def test_mismatch01_cseq_method():
    with pytest.raises(SipParseError) as exc:
        stream(MISMATCH01)
    assert exc.value.reason == "bad_cseq"


def test_insuf_missing_required_headers():
    with pytest.raises(SipParseError) as exc:
        stream(INSUF)
    assert exc.value.reason == "missing_header"
    assert not exc.value.can_respond
    assert exc.value.partial_headers.get("CSeq") == "193942 INVITE"


def test_response_variant_of_wsinv_not_needed_for_responses():
    # A sanity check that responses with odd whitespace parse too.
    data = crlf(
        "SIP/2.0 200 OK\n"
        "Via  : SIP / 2.0 / TLS  h:5061 ; branch = z9hG4bKx\n"
        "t: <sip:b@h> ; tag = 2\n"
        "f: <sip:a@h>;tag=1\n"
        "i: x\n"
        "cseq:   7\n   BYE\n"
        "l: 0\n\n"
    )
    msg = stream(data)
    assert isinstance(msg, Response) and msg.cseq == (7, "BYE") and msg.to_tag == "2"
    assert msg.top_via_branch == "z9hG4bKx"
