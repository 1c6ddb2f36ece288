"""`--capture FILE.pcapng`: every TCP connection sipsim made or accepted, as Wireshark would have
captured it on loopback, with the TLS secrets inside.

The runtime hands over the TLS bytes of each connection (see `sipsim.runtime.observers`); this module
rebuilds the TCP around them: SYN / SYN-ACK / ACK, data segments with real sequence and
acknowledgement numbers (each answered by an ACK from the peer), FIN / FIN-ACK / ACK, framed as
Ethernet + IPv4 (or IPv6) + TCP with correct checksums, real addresses, ports and timestamps.
The NSS key log lines go into Decryption Secrets Blocks (pcapng block type 0x0000000A, secrets type
"TLSK") written before the packets they decrypt, so ``tshark -r FILE -Y sip`` shows the SIP with no
key log file or option. The file holds secrets: it is created with mode 0600.

File layout: Section Header Block, one Interface Description Block (Ethernet, µs timestamps), then
Decryption Secrets Blocks and Enhanced Packet Blocks in the order they were produced, except that
packets are held back for up to `HOLD_S` seconds so a key line that OpenSSL reports just after the
bytes it decrypts (a TLS 1.3 client learns its handshake keys from the Server Hello it just read)
still lands in a DSB before them. Everything is little-endian.
"""

from __future__ import annotations

import ipaddress
import os
import random
import struct
import time
from collections import deque
from dataclasses import dataclass, field

from sipsim.runtime.observers import Observer

# pcapng block types and constants
SHB, IDB, EPB, DSB = 0x0A0D0D0A, 0x00000001, 0x00000006, 0x0000000A
BYTE_ORDER_MAGIC = 0x1A2B3C4D
SECRETS_TLS_KEYLOG = 0x544C534B  # "TLSK": NSS key log
LINKTYPE_ETHERNET = 1
SNAPLEN = 65535
TSRESOL_US = 6

# framing
MAC_CLIENT = bytes.fromhex("020000000001")  # locally administered, fixed: no real interface behind them
MAC_SERVER = bytes.fromhex("020000000002")
MSS = 16384          # largest segment payload (advertised in the SYN options)
WINDOW = 65535       # no window scaling: the window field is the window
ACK_EVERY = 32768    # the receiver acknowledges at least this often (and after each burst)
TCP_FIN, TCP_SYN, TCP_RST, TCP_PSH, TCP_ACK = 0x01, 0x02, 0x04, 0x08, 0x10
HOLD_S = 1.0         # how long packets wait for a key line that describes them


def _pad4(data: bytes) -> bytes:
    return data + b"\0" * (-len(data) % 4)


def _block(block_type: int, body: bytes) -> bytes:
    body = _pad4(body)
    total = 12 + len(body)
    return struct.pack("<II", block_type, total) + body + struct.pack("<I", total)


def _option(code: int, value: bytes) -> bytes:
    return struct.pack("<HH", code, len(value)) + _pad4(value)


def section_header(application: str = "sipsim") -> bytes:
    opts = _option(4, application.encode()) + _option(0, b"")  # shb_userappl, opt_endofopt
    return _block(SHB, struct.pack("<IHHq", BYTE_ORDER_MAGIC, 1, 0, -1) + opts)


def interface_description(name: str = "lo") -> bytes:
    opts = _option(2, name.encode()) + _option(9, bytes([TSRESOL_US])) + _option(0, b"")  # if_name, if_tsresol
    return _block(IDB, struct.pack("<HHI", LINKTYPE_ETHERNET, 0, SNAPLEN) + opts)


def enhanced_packet(frame: bytes, t: float, interface: int = 0) -> bytes:
    ts = int(round(t * 10 ** TSRESOL_US))
    head = struct.pack("<IIIII", interface, ts >> 32, ts & 0xFFFFFFFF, len(frame), len(frame))
    return _block(EPB, head + _pad4(frame))


def decryption_secrets(keylog: bytes) -> bytes:
    return _block(DSB, struct.pack("<II", SECRETS_TLS_KEYLOG, len(keylog)) + _pad4(keylog))


def _checksum(data: bytes) -> int:
    if len(data) % 2:
        data += b"\0"
    s = sum(struct.unpack(f"!{len(data) // 2}H", data))
    while s >> 16:
        s = (s & 0xFFFF) + (s >> 16)
    return ~s & 0xFFFF


def tcp_frame(src: tuple[str, int], dst: tuple[str, int], seq: int, ack: int, flags: int,
              payload: bytes = b"", *, src_mac: bytes = MAC_CLIENT, dst_mac: bytes = MAC_SERVER,
              ip_id: int = 0, mss: int | None = None) -> bytes:
    """One Ethernet frame: IPv4 or IPv6 (from the addresses) + TCP, checksums computed."""
    s_ip, d_ip = ipaddress.ip_address(src[0]), ipaddress.ip_address(dst[0])
    opts = struct.pack("!BBH", 2, 4, mss) if mss else b""
    off = (20 + len(opts)) // 4
    tcp = struct.pack("!HHIIBBHHH", src[1], dst[1], seq & 0xFFFFFFFF, ack & 0xFFFFFFFF if flags & TCP_ACK else 0,
                      off << 4, flags, WINDOW, 0, 0) + opts + payload
    if s_ip.version == 4:
        pseudo = s_ip.packed + d_ip.packed + struct.pack("!BBH", 0, 6, len(tcp))
        tcp = tcp[:16] + struct.pack("!H", _checksum(pseudo + tcp)) + tcp[18:]
        ip = struct.pack("!BBHHHBBH4s4s", 0x45, 0, 20 + len(tcp), ip_id & 0xFFFF, 0x4000, 64, 6, 0,
                         s_ip.packed, d_ip.packed)
        ip = ip[:10] + struct.pack("!H", _checksum(ip)) + ip[12:]
        ethertype = 0x0800
    else:
        pseudo = s_ip.packed + d_ip.packed + struct.pack("!I3xB", len(tcp), 6)
        tcp = tcp[:16] + struct.pack("!H", _checksum(pseudo + tcp)) + tcp[18:]
        ip = struct.pack("!IHBB16s16s", 0x60000000, len(tcp), 6, 64, s_ip.packed, d_ip.packed)
        ethertype = 0x86DD
    return dst_mac + src_mac + struct.pack("!H", ethertype) + ip + tcp


@dataclass
class _End:
    addr: tuple[str, int]
    mac: bytes
    seq: int                 # next sequence number this end sends
    ip_id: int = 0
    unacked: int = 0         # bytes sent that the other end has not acknowledged yet


@dataclass
class _Conn:
    owner: str                              # the side that reports its bytes ("client" | "server")
    claims: set = field(default_factory=set)
    client: _End | None = None
    server: _End | None = None
    opened: bool = False
    closed: bool = False


class PcapngCapture(Observer):
    """Writes the pcapng file; one instance per run. Not thread-safe (the runtime is one trio loop)."""

    def __init__(self, path, *, hold_s: float = HOLD_S):
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)  # secrets inside: owner only
        os.fchmod(fd, 0o600)  # an existing file keeps its mode on O_TRUNC
        self._f = os.fdopen(fd, "wb")
        self._f.write(section_header() + interface_description())
        self._f.flush()
        self._conns: dict[tuple, _Conn] = {}
        self._held: deque[tuple[float, bytes]] = deque()
        self._hold_s = hold_s
        self._keys_seen: set[bytes] = set()
        self._last_t = 0.0
        self._rng = random.Random()

    # what the runtime calls ---------------------------------------------------------------------
    def claim(self, key: tuple, side: str) -> bool:
        if self._f is None:
            return False
        key = tuple(key)
        conn = self._conns.get(key)
        if conn is not None:
            if side not in conn.claims:      # the other end of the same connection
                conn.claims.add(side)
                return False
            if not conn.closed:              # the same end again, still open: keep the one record
                return False
            # closed: a new connection on the same 4-tuple
        self._conns[key] = _Conn(owner=side, claims={side})
        return True

    def connection_opened(self, key: tuple, client: tuple, server: tuple, t: float) -> None:
        conn = self._conns.get(tuple(key))
        if conn is None or conn.opened or self._f is None:
            return
        conn.opened = True
        c = conn.client = _End((str(client[0]), int(client[1])), MAC_CLIENT, self._rng.getrandbits(32),
                               self._rng.getrandbits(16))
        s = conn.server = _End((str(server[0]), int(server[1])), MAC_SERVER, self._rng.getrandbits(32),
                               self._rng.getrandbits(16))
        self._segment(c, s, TCP_SYN, t=t, mss=MSS)
        c.seq += 1
        self._segment(s, c, TCP_SYN | TCP_ACK, t=t, mss=MSS)
        s.seq += 1
        self._segment(c, s, TCP_ACK, t=t)

    def wire(self, key: tuple, side: str, direction: str, data: bytes, t: float) -> None:
        conn = self._conns.get(tuple(key))
        if conn is None or not conn.opened or conn.closed or side != conn.owner or not data or self._f is None:
            return
        src, dst = self._ends(conn, side, direction == "sent")
        data = bytes(data)
        for i in range(0, len(data), MSS):
            chunk = data[i:i + MSS]
            self._segment(src, dst, TCP_PSH | TCP_ACK, chunk, t=t)
            src.seq += len(chunk)
            src.unacked += len(chunk)
            dst.unacked = 0  # every segment acknowledges all the other end sent
            if src.unacked >= ACK_EVERY:
                self._ack(dst, src, t)
        if src.unacked:
            self._ack(dst, src, t)

    def connection_closed(self, key: tuple, side: str, t: float) -> None:
        conn = self._conns.get(tuple(key))
        if conn is None or not conn.opened or conn.closed or side != conn.owner or self._f is None:
            return
        self._close(conn, side, t)

    def keylog(self, line: bytes) -> None:
        line = bytes(line).rstrip(b"\r\n")
        if self._f is None or not line or line in self._keys_seen:
            return
        self._keys_seen.add(line)
        self._f.write(decryption_secrets(line + b"\n"))  # ahead of every packet still held back
        self._flush_held(time.time())

    def close(self) -> None:
        if self._f is None:
            return
        t = time.time()
        for conn in self._conns.values():
            if conn.opened and not conn.closed:
                self._close(conn, conn.owner, t)
        self._flush_held(None)
        self._f.close()
        self._f = None

    # framing ------------------------------------------------------------------------------------
    @staticmethod
    def _ends(conn: _Conn, side: str, sent: bool) -> tuple[_End, _End]:
        me, peer = (conn.client, conn.server) if side == "client" else (conn.server, conn.client)
        return (me, peer) if sent else (peer, me)

    def _close(self, conn: _Conn, side: str, t: float) -> None:
        conn.closed = True
        if not conn.opened:
            return
        a, b = self._ends(conn, side, True)
        self._segment(a, b, TCP_FIN | TCP_ACK, t=t)
        a.seq += 1
        self._segment(b, a, TCP_FIN | TCP_ACK, t=t)
        b.seq += 1
        self._segment(a, b, TCP_ACK, t=t)

    def _ack(self, src: _End, dst: _End, t: float) -> None:
        self._segment(src, dst, TCP_ACK, t=t)
        dst.unacked = 0

    def _segment(self, src: _End, dst: _End, flags: int, payload: bytes = b"", *, t: float,
                 mss: int | None = None) -> None:
        frame = tcp_frame(src.addr, dst.addr, src.seq, dst.seq, flags,
                          payload, src_mac=src.mac, dst_mac=dst.mac, ip_id=src.ip_id, mss=mss)
        src.ip_id += 1
        t = max(t, self._last_t)  # timestamps never go back
        self._last_t = t
        self._held.append((t, enhanced_packet(frame, t)))
        self._flush_held(t - self._hold_s)

    def _flush_held(self, before: float | None) -> None:
        """Write the held packets older than ``before`` (all of them for None)."""
        held = self._held
        wrote = False
        while held and (before is None or held[0][0] <= before):
            self._f.write(held.popleft()[1])
            wrote = True
        if wrote or before is None:
            self._f.flush()
