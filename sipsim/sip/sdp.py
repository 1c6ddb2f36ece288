"""SDP offer/answer (RFC 4566 / RFC 3264) for one audio stream: PCMU, PCMA, telephone-event.

Only what a trunk call needs: parse an SDP body, build an offer, and build an answer that picks
the first codec of the offer we support (plus telephone-event when offered).
"""

from __future__ import annotations

from dataclasses import dataclass, field

__all__ = [
    "Codec",
    "SessionDescription",
    "SdpError",
    "STATIC_CODECS",
    "parse_sdp",
    "build_offer",
    "build_answer",
]


class SdpError(ValueError):
    """Unparseable SDP, or an offer with nothing we can answer (→ 488)."""


@dataclass(frozen=True, slots=True)
class Codec:
    payload_type: int
    name: str
    rate: int = 8000
    fmtp: str | None = None

    @property
    def rtpmap(self) -> str:
        return f"{self.payload_type} {self.name}/{self.rate}"


STATIC_CODECS: dict[str, Codec] = {
    "PCMU": Codec(0, "PCMU"),
    "PCMA": Codec(8, "PCMA"),
    "telephone-event": Codec(101, "telephone-event", 8000, "0-16"),
}
_STATIC_BY_PT = {0: "PCMU", 8: "PCMA"}
_DIRECTIONS = frozenset({"sendrecv", "sendonly", "recvonly", "inactive"})
_CODECS: dict[tuple[int, str, int, str | None], Codec] = {}


@dataclass(slots=True)
class SessionDescription:
    """One audio stream's worth of SDP."""

    address: str
    port: int
    codecs: list[Codec] = field(default_factory=list)
    session_id: int = 0
    version: int = 0
    username: str = "-"
    direction: str = "sendrecv"
    ptime: int | None = None
    raw: bytes = b""

    @property
    def codec(self) -> Codec | None:
        """The first voice codec (what the answer chose, for an answer)."""
        return next((c for c in self.codecs if c.name != "telephone-event"), None)

    @property
    def codec_names(self) -> list[str]:
        return [c.name for c in self.codecs]

    def to_bytes(self) -> bytes:
        key = (tuple(self.codecs), self.ptime, self.direction)
        media = _MEDIA_TAILS.get(key)
        if media is None:  # the payload types and a= lines depend on the codecs only: built once
            lines = [" ".join(str(c.payload_type) for c in self.codecs)]
            for c in self.codecs:
                lines.append(f"a=rtpmap:{c.rtpmap}")
                if c.fmtp:
                    lines.append(f"a=fmtp:{c.payload_type} {c.fmtp}")
            if self.ptime:
                lines.append(f"a=ptime:{self.ptime}")
            lines.append(f"a={self.direction}")
            media = "\r\n".join(lines) + "\r\n"
            if len(_MEDIA_TAILS) < 256:
                _MEDIA_TAILS[key] = media
        address = self.address
        return (
            f"v=0\r\no={self.username} {self.session_id} {self.version} IN IP4 {address}\r\ns=SIP Call\r\n"
            f"c=IN IP4 {address}\r\nt=0 0\r\nm=audio {self.port} RTP/AVP {media}"
        ).encode("ascii")


#: (codecs, ptime, direction) → the m= line's payload types and the a= lines after it
_MEDIA_TAILS: dict[tuple, str] = {}


def _line_op(line: str) -> tuple:
    """What one SDP line says, independent of where it is (``parse_sdp`` applies it in context)."""
    if line[1:2] != "=":
        if line.strip():
            return ("error", f"SDP line {line[:40]!r} is not 'x=value'")
        return ("skip",)
    kind = line[0]
    if kind == "a":
        name, _, arg = line[2:].strip().partition(":")
        if name == "rtpmap":
            pt_text, _, enc = arg.partition(" ")
            enc_name, _, rate = enc.strip().partition("/")
            if pt_text.isdigit():
                rate_text = rate.split("/")[0]
                return ("rtpmap", int(pt_text), (enc_name, int(rate_text) if rate_text.isdigit() else 8000))
        elif name in _DIRECTIONS:
            return ("direction", name)
        elif name == "ptime":
            if arg.strip().isdigit():
                return ("ptime", int(arg))
        elif name == "fmtp":
            pt_text, _, params = arg.partition(" ")
            if pt_text.isdigit():
                return ("fmtp", int(pt_text), params.strip())
        return ("a",)
    if kind == "o":
        value = line[2:].strip()
        bits = value.split()
        if len(bits) != 6:
            return ("error", f"bad o= line {value!r}")
        try:
            return ("o", bits[0], int(bits[1]), int(bits[2]))
        except ValueError:
            return ("error", f"bad o= line {value!r}")
    if kind == "c":
        value = line[2:].strip()
        bits = value.split()
        if len(bits) != 3:
            return ("error", f"bad c= line {value!r}")
        return ("c", bits[2])
    if kind == "m":
        value = line[2:].strip()
        bits = value.split()
        if len(bits) < 4:
            return ("m", f"bad m= line {value!r}")
        if bits[0] != "audio":
            return ("m", None)
        try:
            return ("m", None, int(bits[1].split("/")[0]), [int(p) for p in bits[3:]])
        except ValueError:
            return ("m", f"bad m= line {value!r}")
    return ("skip",)


#: SDP line → its _line_op (the lines of offers and answers repeat: rtpmaps, c=, s=, t=...); bounded
_LINE_OPS: dict[str, tuple] = {}


#: SDP text without its o= line and without the port of its m= line → what the rest of the body says
#: (address, codecs, direction, ptime); bodies of one peer differ only there from call to call. Bounded.
_TEMPLATES: dict[str, tuple[str, tuple[Codec, ...], str, int | None]] = {}


def _split_template(text: str) -> tuple[str, str, str] | None:
    """``(o= line, m= port digits, the rest)`` when the body has the shape where only those vary: it
    starts ``v=0\r\no=``, has exactly one ``o=`` and one ``m=`` (the ``m=audio <digits> `` line) and
    the o= line holds no line break of any kind; None otherwise (then every line is read)."""
    if not text.startswith("v=0\r\no=") or text.count("o=") != 1 or text.count("m=") != 1:
        return None
    o_end = text.find("\r\n", 5)
    m_at = text.find("\r\nm=audio ", o_end)
    if o_end < 0 or m_at < 0:
        return None
    o_line = text[5:o_end]
    p_start = m_at + 10
    p_end = text.find(" ", p_start)
    port = text[p_start:p_end]
    if p_end < 0 or not port.isdigit() or not port.isascii() or not o_line.isprintable():
        return None
    return o_line, port, f"{text[:5]}{text[o_end:p_start]}{text[p_end:]}"


def parse_sdp(body: bytes) -> SessionDescription:
    """Parse the first audio m-line of an SDP body. Raises SdpError."""
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError:
        raise SdpError("SDP is not UTF-8") from None
    parts = _split_template(text) if len(text) <= 2048 else None
    if parts is not None:
        o_line, port_text, rest = parts
        known = _TEMPLATES.get(rest)
        if known is not None:
            op = _line_op(o_line)  # the o= line alone: the other lines are the template's
            if op[0] == "error":
                raise SdpError(op[1])
            address, codecs, direction, ptime = known
            return SessionDescription(address, int(port_text), list(codecs), op[2], op[3], op[1], direction, ptime,
                                      body)
        sd = _parse_sdp_lines(text, body)
        if len(_TEMPLATES) >= 256:
            _TEMPLATES.clear()
        _TEMPLATES[rest] = (sd.address, tuple(sd.codecs), sd.direction, sd.ptime)
        return sd
    return _parse_sdp_lines(text, body)


def _parse_sdp_lines(text: str, body: bytes) -> SessionDescription:
    """``parse_sdp`` line by line through the line cache."""
    address = ""
    media_address = ""
    username, session_id, version = "-", 0, 0
    port: int | None = None
    pts: list[int] = []
    rtpmap: dict[int, tuple[str, int]] = {}
    fmtp: dict[int, str] = {}
    direction = "sendrecv"
    ptime = None
    in_audio = seen_media = False
    ops = _LINE_OPS
    for line in text.splitlines():
        op = ops.get(line)
        if op is None:
            op = _line_op(line)
            if len(line) <= 256:  # bounded memory whatever a peer sends
                if len(ops) >= 1024:
                    ops.clear()
                ops[line] = op
        tag = op[0]
        if tag == "rtpmap":
            if in_audio:
                rtpmap[op[1]] = op[2]
        elif tag == "skip" or tag == "a":
            continue
        elif tag == "direction":
            if in_audio or not seen_media:
                direction = op[1]
        elif tag == "ptime":
            if in_audio or not seen_media:
                ptime = op[1]
        elif tag == "fmtp":
            if in_audio:
                fmtp[op[1]] = op[2]
        elif tag == "c":
            if in_audio:
                media_address = op[1]
            elif not seen_media:
                address = op[1]
        elif tag == "o":
            _, username, session_id, version = op
        elif tag == "m":
            seen_media = True
            if in_audio or port is not None:
                in_audio = False
            elif op[1] is not None:
                raise SdpError(op[1])
            elif len(op) == 4:
                port, pts = op[2], list(op[3])
                in_audio = True
        else:  # "error"
            raise SdpError(op[1])
    return _session(body, address, media_address, username, session_id, version, port, pts, rtpmap, fmtp,
                    direction, ptime)


def _parse_sdp_slow(body: bytes) -> SessionDescription:
    """The line-by-line reference for :func:`parse_sdp` (same result, no line cache)."""
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError:
        raise SdpError("SDP is not UTF-8") from None
    address = ""
    media_address = ""
    username, session_id, version = "-", 0, 0
    port: int | None = None
    pts: list[int] = []
    rtpmap: dict[int, tuple[str, int]] = {}
    fmtp: dict[int, str] = {}
    direction = "sendrecv"
    ptime = None
    in_audio = seen_media = False
    for line in text.splitlines():
        if line[1:2] != "=":
            if line.strip():
                raise SdpError(f"SDP line {line[:40]!r} is not 'x=value'")
            continue
        kind = line[0]
        if kind == "a":  # the most frequent line first
            if not in_audio and seen_media:
                continue
            name, _, arg = line[2:].strip().partition(":")
            if name == "rtpmap":
                if in_audio:
                    pt_text, _, enc = arg.partition(" ")
                    enc_name, _, rate = enc.strip().partition("/")
                    if pt_text.isdigit():
                        rate_text = rate.split("/")[0]
                        rtpmap[int(pt_text)] = (enc_name, int(rate_text) if rate_text.isdigit() else 8000)
            elif name in _DIRECTIONS:
                direction = name
            elif name == "ptime":
                if arg.strip().isdigit():
                    ptime = int(arg)
            elif name == "fmtp" and in_audio:
                pt_text, _, params = arg.partition(" ")
                if pt_text.isdigit():
                    fmtp[int(pt_text)] = params.strip()
        elif kind == "o":
            value = line[2:].strip()
            bits = value.split()
            if len(bits) != 6:
                raise SdpError(f"bad o= line {value!r}")
            username = bits[0]
            try:
                session_id, version = int(bits[1]), int(bits[2])
            except ValueError:
                raise SdpError(f"bad o= line {value!r}") from None
        elif kind == "c":
            value = line[2:].strip()
            bits = value.split()
            if len(bits) != 3:
                raise SdpError(f"bad c= line {value!r}")
            if in_audio:
                media_address = bits[2]
            elif not seen_media:
                address = bits[2]
        elif kind == "m":
            seen_media = True
            if in_audio or port is not None:
                in_audio = False
                continue
            value = line[2:].strip()
            bits = value.split()
            if len(bits) < 4:
                raise SdpError(f"bad m= line {value!r}")
            if bits[0] != "audio":
                continue
            try:
                port = int(bits[1].split("/")[0])
                pts = [int(p) for p in bits[3:]]
            except ValueError:
                raise SdpError(f"bad m= line {value!r}") from None
            in_audio = True
    return _session(body, address, media_address, username, session_id, version, port, pts, rtpmap, fmtp,
                    direction, ptime)


def _session(body, address, media_address, username, session_id, version, port, pts, rtpmap, fmtp, direction,
             ptime) -> SessionDescription:
    if port is None:
        raise SdpError("SDP has no audio m= line")
    codecs = []
    for pt in pts:
        if pt in rtpmap:
            name, rate = rtpmap[pt]
        elif pt in _STATIC_BY_PT:
            name, rate = _STATIC_BY_PT[pt], 8000
        else:
            name, rate = f"pt{pt}", 8000
        key = (pt, name, rate, fmtp.get(pt))
        codec = _CODECS.get(key)
        if codec is None:  # Codec is frozen: equal ones are shared (offers repeat the same few)
            codec = Codec(*key)
            if len(_CODECS) < 256:
                _CODECS[key] = codec
        codecs.append(codec)
    return SessionDescription(
        media_address or address, port, codecs, session_id, version, username, direction, ptime, body
    )


def build_offer(
    address: str,
    port: int,
    codecs: tuple[str, ...] = ("PCMU", "PCMA"),
    *,
    session_id: int = 1,
    dtmf: bool = True,
    username: str = "sipsim",
) -> SessionDescription:
    """An offer with one audio m-line: the given static codecs then telephone-event/8000."""
    chosen = [STATIC_CODECS[c] for c in codecs]
    if dtmf:
        chosen.append(STATIC_CODECS["telephone-event"])
    sd = SessionDescription(address, port, chosen, session_id, 0, username, "sendrecv", 20)
    sd.raw = sd.to_bytes()
    return sd


def build_answer(
    offer: SessionDescription,
    address: str,
    port: int,
    supported: tuple[str, ...] = ("PCMU", "PCMA"),
    *,
    session_id: int = 1,
    username: str = "sipsim",
) -> SessionDescription:
    """Answer with the first codec of the offer that we support (+ telephone-event if offered)."""
    wanted = {n.upper() for n in supported}
    voice = next((c for c in offer.codecs if c.name.upper() in wanted), None)
    if voice is None:
        raise SdpError(f"no common codec: offer has {offer.codec_names}, we support {list(supported)}")
    chosen = [voice]
    dtmf = next((c for c in offer.codecs if c.name.lower() == "telephone-event"), None)
    if dtmf is not None:
        chosen.append(dtmf)
    direction = {"sendonly": "recvonly", "recvonly": "sendonly"}.get(offer.direction, offer.direction)
    sd = SessionDescription(address, port, chosen, session_id, 0, username, direction, offer.ptime)
    sd.raw = sd.to_bytes()
    return sd
