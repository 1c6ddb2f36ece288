"""`--capture`: the pcapng file, read back by tshark (the real peer), for three labs run in-process.

tshark is run with a timeout and an empty configuration directory, on files only (no capture)."""

from __future__ import annotations

import os
import shutil
import socket
import stat
import struct
import subprocess
from collections import Counter, defaultdict

import pytest
import trio

from sipsim.lab.loader import load_scenario
from sipsim.report import pcapng
from sipsim.report.pcapng import PcapngCapture
from sipsim.runtime.observers import Observers
from sipsim.runtime.runner import LabRunner
from sipsim.tls.transcript import HANDSHAKE_TYPES
from tests.conftest import SCENARIOS, _offsets

TSHARK = shutil.which("tshark")
needs_tshark = pytest.mark.skipif(TSHARK is None, reason="tshark is not installed (apt-get install tshark)")
HANDSHAKE_CODES = {name: code for code, name in HANDSHAKE_TYPES.items()}


# running a lab with a capture ---------------------------------------------------------------------
class Lab:
    def __init__(self, result, path):
        self.result, self.path = result, path


def run_lab(name: str, tmp_path_factory, base) -> Lab:
    path = tmp_path_factory.mktemp("capture") / f"{name}.pcapng"
    observers = Observers([PcapngCapture(path)])
    runner = LabRunner(load_scenario(SCENARIOS / f"{name}.toml"), port_offset=next(_offsets), base=base,
                       observers=observers)
    try:
        result = trio.run(runner.run)
    finally:
        observers.close()
    return Lab(result, path)


@pytest.fixture(scope="module")
def seed000(tmp_path_factory, certs_base):
    return run_lab("seed-000-self-signed", tmp_path_factory, certs_base)


@pytest.fixture(scope="module")
def seed003(tmp_path_factory, certs_base):
    return run_lab("seed-003-ca-signed", tmp_path_factory, certs_base)


@pytest.fixture(scope="module")
def one_in_four(tmp_path_factory, certs_base):
    return run_lab("one-in-four", tmp_path_factory, certs_base)


# reading it back with tshark ----------------------------------------------------------------------
def tshark(path, *args: str, decode: bool = True) -> str:
    """tshark on ``path`` with no personal preferences. ``decode``: the lab's ports are 5061 + offset,
    not 5061, so tell tshark those ports carry TLS and SIP over TLS (what Decode As does)."""
    env = {**os.environ, "WIRESHARK_CONFIG_DIR": str(path.parent / "wireshark-config")}
    os.makedirs(env["WIRESHARK_CONFIG_DIR"], exist_ok=True)
    opts: list[str] = []
    if decode:
        for port in server_ports(path):
            if port != 5061:
                opts += ["-d", f"tcp.port=={port},tls", "-d", f"tls.port=={port},sip"]
    p = subprocess.run([TSHARK, "-n", "-r", str(path), *opts, *args], capture_output=True, text=True,
                       timeout=120, env=env)
    assert p.returncode == 0, p.stderr
    return p.stdout


def fields(path, filter_: str, *names: str, decode: bool = True) -> list[list[str]]:
    opts = ["-Y", filter_, "-T", "fields", "-E", "separator=|"]
    for n in names:
        opts += ["-e", n]
    out = tshark(path, *opts, decode=decode)
    return [line.split("|") for line in out.splitlines() if line.strip()]


def syns(path) -> list[list[str]]:
    """(tcp.stream, ip, port → server ip, port) of every SYN."""
    return fields(path, "tcp.flags.syn == 1 && tcp.flags.ack == 0", "tcp.stream", "ip.src", "tcp.srcport",
                  "ip.dst", "tcp.dstport", decode=False)


def server_ports(path) -> set[int]:
    return {int(row[4]) for row in syns(path)}


def sip_rows(path) -> list[tuple[str, str, str]]:
    """(method, status codes, Call-ID) per frame holding SIP (a frame may hold several responses)."""
    return [tuple(r) for r in fields(path, "sip", "sip.Method", "sip.Status-Code", "sip.Call-ID")]


def handshake_types_by_client(path) -> dict[tuple[str, int], list[int]]:
    streams = {row[0]: (row[1], int(row[2])) for row in syns(path)}
    types: dict[tuple[str, int], list[int]] = defaultdict(list)
    for stream, hs in fields(path, "tls.handshake", "tcp.stream", "tls.handshake.type"):
        types[streams[stream]] += [int(x) for x in hs.split(",") if x]
    return types


def transcript_types(connection: dict) -> list[int]:
    return [HANDSHAKE_CODES[m] for f in connection["transcript"] for m in f["messages"] if m in HANDSHAKE_CODES]


def client_end(connection: dict) -> tuple[str, int]:
    end = connection["local"] if connection["role"] == "client" else connection["remote"]
    return end[0], int(end[1])


CHECK_CHECKSUMS = ("-o", "ip.check_checksum:TRUE", "-o", "tcp.check_checksum:TRUE")


def assert_clean_tcp(path) -> None:
    report = tshark(path, *CHECK_CHECKSUMS, "-q", "-z", "expert")
    for bad in ("previous segment not captured", "ACKed unseen segment", "Bad checksum", "checksum is incorrect",
                "Malformed", "out-of-order", "Retransmission", "Dup ACK", "Window Full", "Zero Window",
                "Warnings", "Errors"):
        assert bad.lower() not in report.lower(), report
    # tshark verifies every IPv4 and TCP checksum (status 1: good)
    out = tshark(path, *CHECK_CHECKSUMS, "-Y", "tcp", "-T", "fields", "-e", "ip.checksum.status",
                 "-e", "tcp.checksum.status", decode=False)
    rows = [line.split("\t") for line in out.splitlines()]
    assert rows and all(r == ["1", "1"] for r in rows), Counter(map(tuple, rows))


# the tests ----------------------------------------------------------------------------------------
@needs_tshark
def test_seed000_every_sip_message_is_decrypted_without_a_key_log_file(seed000):
    calls = seed000.result.calls
    assert len(calls) == 6 and all(c.outcome == "answered" for c in calls)
    rows = sip_rows(seed000.path)
    methods = Counter(m for m, _, _ in rows if m)
    assert methods["INVITE"] == 6 and methods["ACK"] == 6 and methods["BYE"] == 6, methods
    statuses = Counter(s for _, codes, _ in rows for s in codes.split(",") if s)
    assert statuses["200"] >= 12, statuses  # each INVITE and each BYE answered
    invite_ids = {cid for m, _, cid in rows if m == "INVITE"}
    assert invite_ids == {c.call_id for c in calls}


@needs_tshark
def test_seed000_tcp_is_clean_and_each_connection_has_one_handshake(seed000):
    path = seed000.path
    assert_clean_tcp(path)
    connections = seed000.result.connections
    assert len(syns(path)) == len(connections) == 4
    assert len(fields(path, "tcp.flags.syn == 1 && tcp.flags.ack == 1", "tcp.stream", decode=False)) == 4
    assert len(fields(path, "tcp.flags.fin == 1", "tcp.stream", decode=False)) == 8  # both ends close
    # TLS 1.3: the encrypted handshake messages are decrypted too, in the transcript's order
    by_client = handshake_types_by_client(path)
    for conn in connections:
        assert by_client[client_end(conn)] == transcript_types(conn), conn["transcript"]
        assert 8 in by_client[client_end(conn)]  # Encrypted Extensions: only visible decrypted


@needs_tshark
def test_seed003_tls10_handshake_matches_the_transcript(seed003):
    path = seed003.path
    assert all(c.outcome == "answered" for c in seed003.result.calls)
    assert_clean_tcp(path)
    connections = seed003.result.connections
    assert len(syns(path)) == len(connections) >= 1
    by_client = handshake_types_by_client(path)
    for conn in connections:
        assert conn["version"] == "TLSv1.0" and conn["cipher"] == "AES128-SHA"
        got = by_client[client_end(conn)]
        assert got == transcript_types(conn), (got, conn["transcript"])
        # Client Hello; Server Hello, Certificate, Certificate Request, Server Hello Done; Certificate,
        # Client Key Exchange, Certificate Verify, Finished; New Session Ticket, Finished
        assert got == [1, 2, 11, 13, 14, 11, 16, 15, 20, 4, 20]
    methods = Counter(m for m, _, _ in sip_rows(path) if m)
    assert methods["INVITE"] == len(seed003.result.calls) and methods["BYE"] == methods["INVITE"]
    versions = {v for (v,) in fields(path, "tls.record", "tls.record.version") for v in v.split(",")}
    assert versions <= {"0x0301"}, versions  # TLS 1.0 records only (the Client Hello record too)


@needs_tshark
def test_one_in_four_rejected_handshakes_are_in_the_capture_with_their_alert(one_in_four):
    path = one_in_four.path
    result = one_in_four.result
    failed = [c for c in result.calls if c.outcome == "failed"]
    assert [c.reason for c in failed] == ["subject_not_allowed", "subject_not_allowed"]
    assert_clean_tcp(path)
    connections = result.connections
    assert len(syns(path)) == len(connections)
    streams = {(row[1], int(row[2])): row[0] for row in syns(path)}
    alerts = defaultdict(list)
    for stream, desc in fields(path, "tls.alert_message", "tcp.stream", "tls.alert_message.desc"):
        alerts[stream] += [int(d) for d in desc.split(",") if d]
    rejected = [c for c in connections if c["reason"] == "subject_not_allowed"]
    assert rejected
    for conn in connections:
        got = alerts.get(streams[client_end(conn)], [])
        if conn in rejected:
            assert got == [42], (conn["alert_sent"], got)  # bad_certificate, from HQ
            assert conn["alert_sent"] == "bad_certificate"
        else:
            assert got == [], (conn["remote"], got)
    # the answered calls' SIP is there, decrypted
    methods = Counter(m for m, _, _ in sip_rows(path) if m)
    assert methods["INVITE"] == result.answered


def test_capture_file_is_owner_only_even_if_it_existed(tmp_path):
    path = tmp_path / "old.pcapng"
    path.write_bytes(b"old")
    path.chmod(0o644)
    cap = PcapngCapture(path)
    cap.close()
    cap.close()  # idempotent
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    data = path.read_bytes()
    assert data[:4] == b"\x0a\x0d\x0d\x0a" and b"old" not in data


def test_lab_capture_has_mode_0600(seed000):
    assert stat.S_IMODE(seed000.path.stat().st_mode) == 0o600


# the file format, without tshark ------------------------------------------------------------------
def blocks(data: bytes) -> list[tuple[int, bytes]]:
    out, i = [], 0
    while i < len(data):
        btype, total = struct.unpack_from("<II", data, i)
        assert total % 4 == 0 and struct.unpack_from("<I", data, i + total - 4)[0] == total
        out.append((btype, data[i + 8:i + total - 4]))
        i += total
    assert i == len(data)
    return out


def fake_connection(cap, key, side="client", t=1000.0):
    assert cap.claim(key, side)
    cap.connection_opened(key, key[:2], key[2:], t)


def test_a_key_line_reported_after_the_bytes_it_decrypts_still_precedes_them(tmp_path):
    """A TLS 1.3 client learns its handshake keys from the Server Hello it has just read: the key
    line comes after those bytes were reported, yet its DSB must come first in the file."""
    path = tmp_path / "c.pcapng"
    cap = PcapngCapture(path)
    key = ("127.0.0.1", 40000, "127.0.0.2", 5061)
    fake_connection(cap, key)
    cap.wire(key, "client", "sent", b"\x16\x03\x01hello", 1000.001)
    cap.wire(key, "client", "received", b"\x16\x03\x03server-flight", 1000.002)
    cap.keylog(b"SERVER_HANDSHAKE_TRAFFIC_SECRET 00 11")
    cap.keylog(b"SERVER_HANDSHAKE_TRAFFIC_SECRET 00 11")  # the other end of a lab reports it too
    cap.wire(key, "client", "sent", b"\x17\x03\x03later", 1005.0)  # long after: the rest is written
    cap.close()
    kinds = [b[0] for b in blocks(path.read_bytes())]
    assert kinds[:2] == [pcapng.SHB, pcapng.IDB]
    assert kinds.count(pcapng.DSB) == 1
    assert kinds.index(pcapng.DSB) == 2  # before the SYN and every packet held back with it


def test_tcp_sequence_numbers_and_segmentation(tmp_path):
    path = tmp_path / "s.pcapng"
    cap = PcapngCapture(path)
    key = ("::1", 40001, "::1", 5061)
    # the server end claims first here: the bytes it "sent" go from the server port to the client port
    assert cap.claim(key, "server") and not cap.claim(key, "client")
    cap.connection_opened(key, key[:2], key[2:], 1000.0)
    big = bytes(range(256)) * 300  # 76800 bytes: several segments
    cap.wire(key, "client", "sent", b"ignored: not the claiming side", 1000.1)
    cap.wire(key, "server", "received", b"x" * 10, 1000.1)
    cap.wire(key, "server", "sent", big, 1000.2)
    cap.connection_closed(key, "server", 1000.3)
    cap.connection_closed(key, "server", 1000.4)  # idempotent
    cap.connection_closed(("1.2.3.4", 1, "5.6.7.8", 2), "client", 1000.4)  # never claimed
    cap.close()
    frames = [b for t, b in blocks(path.read_bytes()) if t == pcapng.EPB]
    segs = []
    for body in frames:
        frame = body[20:20 + struct.unpack_from("<I", body, 12)[0]]
        assert frame[12:14] == b"\x86\xdd"  # IPv6
        tcp = frame[14 + 40:]
        sport, dport, seq, ack, off, flags = struct.unpack_from("!HHIIBB", tcp)
        segs.append((sport, dport, seq, ack, flags, tcp[(off >> 4) * 4:]))
    syn, synack, ack3 = segs[:3]
    assert (syn[0], syn[1], syn[4]) == (40001, 5061, pcapng.TCP_SYN)
    assert synack[4] == pcapng.TCP_SYN | pcapng.TCP_ACK and synack[3] == syn[2] + 1
    client_isn, server_isn = syn[2], synack[2]
    data_c = b"".join(s[5] for s in segs if s[0] == 40001)
    data_s = b"".join(s[5] for s in segs if s[0] == 5061)
    assert data_c == b"x" * 10 and data_s == big
    assert max(len(s[5]) for s in segs) <= pcapng.MSS
    # every segment's seq follows the previous one's from the same end; acks never run ahead
    sent = {40001: client_isn, 5061: server_isn}
    for sport, dport, seq, ack, flags, payload in segs:
        assert seq == sent[sport] or (flags & pcapng.TCP_SYN), (sport, seq, sent[sport])
        if flags & pcapng.TCP_ACK:
            assert 0 < (ack - sent[dport]) % 2 ** 32 <= 1 or ack == sent[dport]
        sent[sport] = (seq + len(payload) + (1 if flags & (pcapng.TCP_SYN | pcapng.TCP_FIN) else 0)) % 2 ** 32
    fins = [s for s in segs if s[4] & pcapng.TCP_FIN]
    assert [f[0] for f in fins] == [5061, 40001]  # the server end (which closed) first
    assert segs[-1][4] == pcapng.TCP_ACK


def test_checksums(tmp_path):
    frame = pcapng.tcp_frame(("127.0.0.1", 1234), ("127.0.0.2", 5061), 1, 2, pcapng.TCP_ACK | pcapng.TCP_PSH,
                             b"abc")
    ip, tcp = frame[14:34], frame[34:]
    assert pcapng._checksum(ip) == 0
    pseudo = socket.inet_aton("127.0.0.1") + socket.inet_aton("127.0.0.2") + struct.pack("!BBH", 0, 6, len(tcp))
    assert pcapng._checksum(pseudo + tcp) == 0


@needs_tshark
def test_standard_port_needs_no_decode_as(tmp_path, certs_base):
    """At 5061 (port offset 0) ``tshark -r FILE -Y sip`` alone shows the SIP. The lab moves to
    loopback addresses of its own so port 5061 is free for it."""
    probe = socket.socket()
    try:
        probe.bind(("127.0.0.1", 5061))
    except OSError:
        pytest.skip("port 5061 on loopback is taken by another program")
    finally:
        probe.close()
    import random
    net = f"127.{random.randrange(100, 250)}.{random.randrange(1, 250)}."
    text = (SCENARIOS / "seed-003-ca-signed.toml").read_text().replace("127.0.0.", net)
    scenario_path = tmp_path / "seed-003-moved.toml"
    scenario_path.write_text(text)
    path = tmp_path / "std.pcapng"
    observers = Observers([PcapngCapture(path)])
    runner = LabRunner(load_scenario(scenario_path), port_offset=0, base=tmp_path, observers=observers)
    try:
        result = trio.run(runner.run)
    finally:
        observers.close()
    assert result.answered == len(result.calls) >= 1
    assert server_ports(path) == {5061}
    methods = Counter(m for m, _, _ in sip_rows(path) if m)  # decode=True adds nothing for 5061
    assert methods["INVITE"] == len(result.calls)
    out = tshark(path, "-Y", "sip", decode=False)
    assert out.count("Request: INVITE") == len(result.calls), out


def test_claims_one_end_per_connection_and_a_reused_four_tuple_is_a_new_connection(tmp_path):
    cap = PcapngCapture(tmp_path / "r.pcapng")
    key = ("127.0.0.1", 40002, "127.0.0.2", 5061)
    assert cap.claim(key, "client") and not cap.claim(key, "server") and not cap.claim(key, "client")
    cap.connection_opened(key, key[:2], key[2:], 1000.0)
    cap.connection_closed(key, "client", 1000.1)
    assert cap.claim(key, "server")  # the same ports again, later: another connection
    assert not cap.claim(key, "client")
    cap.close()
    assert not cap.claim(key, "client")  # closed: records nothing more
