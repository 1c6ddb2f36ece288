"""`sipsim ping`, `call` and `serve` against OpenSSL's own TLS peers, `openssl s_server` and `s_client`,
with raw SIP typed at them (or by this test, playing the far end through s_server's stdin).

Written against OpenSSL 3.0 (Debian's openssl package; `openssl version` is in every failure message).
"""

from __future__ import annotations

import re
import subprocess
import threading
import time
import pytest

from tests.interop.helpers import (A_ADDR, B_ADDR, PY, find_program, is_listening, make_pki, out, port_for, serve,
                                   version_line)

OPENSSL = find_program("openssl")
OPENSSL_VERSION = version_line([OPENSSL, "version"]) if OPENSSL else None

pytestmark = [pytest.mark.peer,
              pytest.mark.skipif(OPENSSL is None, reason="the openssl command is not installed (apt-get install "
                                                         "openssl); these tests were written against OpenSSL 3.0")]

S_ADDR = "127.0.0.31"  # where s_server listens
S_CN, A_CN, B_CN = "sbc.lab", "nodeA.lab", "nodeB.lab"
BASE = 8000


@pytest.fixture(scope="module")
def pki(tmp_path_factory):
    return make_pki(tmp_path_factory.mktemp("openssl-pki"), [S_CN, A_CN, B_CN], ["stranger.lab"])


@pytest.fixture
def port(port_offset):
    return port_for(port_offset, BASE)


REQUEST = re.compile(rb"(?m)^([A-Z]+) (\S+) SIP/2\.0\r\n(.*?)\r\n\r\n", re.S)


class SServer:
    """`openssl s_server -brief` on S_ADDR:port requiring a client certificate. What the client sends
    is printed on its stdout (decrypted); what this object writes to its stdin goes to the client —
    so a test can play the far end of SIP by hand."""

    def __init__(self, pki, port: int, *extra: str):
        self.cmd = [OPENSSL, "s_server", "-brief", "-Verify", "1", "-verify_return_error", "-CAfile", str(pki.ca),
                    "-cert", str(pki[S_CN].cert), "-key", str(pki[S_CN].key), "-accept", f"{S_ADDR}:{port}",
                    "-naccept", "1", *extra]
        self.proc = subprocess.Popen(self.cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                     stderr=subprocess.PIPE, start_new_session=True)
        self.stdout, self.stderr = bytearray(), bytearray()
        self._threads = [threading.Thread(target=self._pump, args=(s, b), daemon=True)
                         for s, b in ((self.proc.stdout, self.stdout), (self.proc.stderr, self.stderr))]
        for t in self._threads:
            t.start()
        deadline = time.monotonic() + 10
        while not is_listening(S_ADDR, port):
            if self.proc.poll() is not None or time.monotonic() > deadline:
                self.stop()
                raise AssertionError(f"{OPENSSL_VERSION}: s_server did not start: {self.cmd}\n{self.text()}")
            time.sleep(0.05)

    @staticmethod
    def _pump(stream, into: bytearray) -> None:
        for chunk in iter(lambda: stream.read1(65536), b""):
            into += chunk

    def text(self) -> str:
        return (f"{OPENSSL_VERSION}\n--- s_server stdout\n{bytes(self.stdout).decode(errors='replace')}\n"
                f"--- s_server stderr\n{bytes(self.stderr).decode(errors='replace')}")

    def requests(self) -> list[tuple[str, str, str]]:
        """(method, request URI, header block) of every SIP request the client sent so far."""
        return [(m.decode(), u.decode(), h.decode(errors="replace")) for m, u, h in REQUEST.findall(bytes(self.stdout))]

    def wait_request(self, method: str, timeout: float = 10) -> tuple[str, str, str]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            found = [r for r in self.requests() if r[0] == method]
            if found:
                return found[-1]
            time.sleep(0.05)
        raise AssertionError(f"no {method} reached s_server within {timeout} s\n{self.text()}")

    def answer(self, request: tuple[str, str, str], status: int, reason: str) -> None:
        """Write a response to ``request`` to s_server's stdin: s_server encrypts it to the client."""
        _, _, block = request
        lines = [f"SIP/2.0 {status} {reason}"]
        for line in block.split("\r\n"):
            name = line.split(":", 1)[0].strip().lower()
            if name in ("via", "from", "call-id", "cseq"):
                lines.append(line)
            elif name == "to":
                lines.append(line if ";tag=" in line else line + ";tag=openssl-1")
        lines += ["Server: openssl-s_server-by-hand", "Content-Length: 0", "", ""]
        self.proc.stdin.write("\r\n".join(lines).encode())
        self.proc.stdin.flush()

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait(timeout=10)
        for t in self._threads:
            t.join(timeout=5)

    def __enter__(self) -> SServer:
        return self

    def __exit__(self, *exc) -> None:
        self.stop()


def headers(block: str) -> dict[str, str]:
    return {k.strip().lower(): v.strip() for k, _, v in (line.partition(":") for line in block.split("\r\n"))}


def sipsim_bg(*args) -> subprocess.Popen:
    return subprocess.Popen(PY + [str(a) for a in args], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            start_new_session=True)


def finish(proc: subprocess.Popen, timeout: float = 30) -> subprocess.CompletedProcess:
    try:
        stdout, stderr = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        stdout, stderr = proc.communicate(timeout=10)
        raise AssertionError(f"sipsim did not finish within {timeout} s\n{stdout}\n{stderr}") from None
    return subprocess.CompletedProcess(proc.args, proc.returncode, stdout, stderr)


def a_flags(pki, *extra):
    return ["--local", A_ADDR, *pki[A_CN].flags(), "--trust", pki.ca, "--handshake-timeout", "5", *extra]


def ping_answered(ss, pki, port) -> subprocess.CompletedProcess:
    """`sipsim ping` (CUCM-A, expecting s_server's name) while ``ss`` answers its OPTIONS with 200."""
    ping = sipsim_bg("ping", f"sip:{S_ADDR}:{port}", *a_flags(pki, "--subjects", S_CN, "--timeout", "10"))
    try:
        ss.answer(ss.wait_request("OPTIONS"), 200, "OK")
        return finish(ping)
    finally:
        ping.kill()


# (a) sipsim as the TLS client of s_server ---------------------------------------------------------

def test_ping_s_server_sees_cucm_options_and_our_answer_makes_it_up(pki, port):
    with SServer(pki, port) as ss:
        ping = sipsim_bg("ping", f"sip:{S_ADDR}:{port}", *a_flags(pki, "--subjects", S_CN, "--timeout", "10"))
        try:
            options = ss.wait_request("OPTIONS")
            ss.answer(options, 200, "OK")
            proc = finish(ping)
        finally:
            ping.kill()
    method, uri, block = options
    h = headers(block)
    assert uri == f"sip:{S_ADDR}:{port}", ss.text()
    assert h["via"].startswith(f"SIP/2.0/TLS {A_ADDR}:") and ";branch=z9hG4bK" in h["via"], h
    assert "X-cisco-srtp-fallback" in h["supported"], h
    assert h["cseq"].endswith(" OPTIONS") and h["max-forwards"] == "70", h
    assert ";transport=tls" in h["contact"].lower() and A_ADDR in h["contact"], h
    # s_server's view of the handshake: our client certificate was asked for, sent and verified
    assert f"CN = {A_CN}" in ss.text() or f"CN={A_CN}" in ss.text(), ss.text()
    assert proc.returncode == 0, f"{out(proc)}\n{ss.text()}"
    assert "response: 200" in proc.stdout and "is up" in proc.stdout
    assert f"peer certificate: CN={S_CN}" in proc.stdout and "Certificate Request" in proc.stdout


def test_call_to_s_server_sends_a_cucm_invite_and_a_486_by_hand_fails_it_cleanly(pki, port):
    with SServer(pki, port) as ss:
        call = sipsim_bg("call", f"sip:8511001@{S_ADDR}:{port}", "--from", "7131001",
                         *a_flags(pki, "--subjects", S_CN))
        try:
            invite = ss.wait_request("INVITE")
            ss.answer(invite, 486, "Busy Here")
            ack = ss.wait_request("ACK")  # the transaction layer acknowledges a non-2xx final answer
            proc = finish(call)
        finally:
            call.kill()
    _, uri, block = invite
    h = headers(block)
    assert uri == f"sip:8511001@{S_ADDR}:{port}", ss.text()
    assert h["via"].startswith(f"SIP/2.0/TLS {A_ADDR}:"), h
    assert "X-cisco-srtp-fallback" in h["supported"], h
    assert h["contact"].lower().startswith(f"<sip:7131001@{A_ADDR}:") and ";transport=tls" in h["contact"].lower(), h
    assert h["content-type"] == "application/sdp" and int(h["content-length"]) > 0, h
    assert "m=audio " in bytes(ss.stdout).decode(errors="replace"), ss.text()
    assert headers(ack[2])["cseq"].split()[0] == h["cseq"].split()[0] and ack[1] == uri, (ack, h)
    assert proc.returncode == 1, out(proc)
    assert "0 answered, 1 failed" in proc.stdout and "486" in proc.stdout, proc.stdout
    assert "Traceback" not in proc.stderr, proc.stderr


def call_that_s_server_leaves_unanswered(pki, port) -> tuple[subprocess.CompletedProcess, float]:
    """sipsim call to s_server, which prints the INVITE and then goes away without answering."""
    with SServer(pki, port) as ss:
        t0 = time.monotonic()
        call = sipsim_bg("call", f"sip:8511001@{S_ADDR}:{port}", "--from", "7131001",
                         *a_flags(pki, "--subjects", S_CN))
        try:
            ss.wait_request("INVITE")
            time.sleep(0.3)
            ss.stop()  # the far end goes away with the INVITE unanswered
            proc = finish(call, timeout=20)
        finally:
            call.kill()
    return proc, time.monotonic() - t0


def test_call_to_s_server_that_never_answers_fails_cleanly_when_it_goes_away(pki, port):
    proc, elapsed = call_that_s_server_leaves_unanswered(pki, port)
    assert elapsed < 20
    assert proc.returncode == 1, out(proc)
    assert "0 answered, 1 failed" in proc.stdout and "failed: connection_lost ×1" in proc.stdout, proc.stdout
    assert "Traceback" not in proc.stdout + proc.stderr, out(proc)


def test_a_lost_connection_is_not_reported_as_the_peers_503(pki, port):
    proc, _ = call_that_s_server_leaves_unanswered(pki, port)
    assert "failed: connection_lost ×1" in proc.stdout, proc.stdout
    assert f"{S_ADDR}:{port} answered 503" not in proc.stdout, proc.stdout


def test_why_calls_failed_names_the_destination_not_none(pki, port):
    proc, _ = call_that_s_server_leaves_unanswered(pki, port)
    why = proc.stdout[proc.stdout.index("Why calls failed"):]
    assert "None" not in why and f"{S_ADDR}:{port}" in why, why


def test_a_peer_that_never_answers_the_client_hello_times_out(pki, port):
    # the bounded-time counterpart of s_server: a TCP listener that accepts and never speaks TLS
    import socket

    silent = socket.socket()
    silent.bind((S_ADDR, port))
    silent.listen(1)
    try:
        t0 = time.monotonic()
        ping = sipsim_bg("ping", f"sip:{S_ADDR}:{port}", "--local", A_ADDR, *pki[A_CN].flags(), "--trust", pki.ca,
                         "--handshake-timeout", "1", "--timeout", "1")
        proc = finish(ping, timeout=20)
    finally:
        silent.close()
    assert time.monotonic() - t0 < 15
    assert proc.returncode == 1 and "is down: Local=1" in proc.stdout and "timeout" in proc.stdout, out(proc)
    assert "Traceback" not in proc.stderr


def test_s_server_rejects_a_client_certificate_from_another_ca(pki, port):
    with SServer(pki, port) as ss:
        proc = finish(sipsim_bg("ping", f"sip:{S_ADDR}:{port}", "--local", A_ADDR, *pki["stranger.lab"].flags(),
                                "--trust", pki.ca, "--timeout", "5"))
        time.sleep(0.2)
        text = ss.text()
    assert proc.returncode == 1, out(proc)
    assert "is down: Local=2" in proc.stdout and "tls_unknown_ca" in proc.stdout, out(proc)
    assert "CN=stranger.lab" in proc.stdout, proc.stdout
    assert not ss.requests(), text
    assert "Traceback" not in proc.stderr


# (b) legacy CUCM 9.x: TLS 1.0 with AES128-SHA ---------------------------------------------------

def test_ping_a_tls10_aes128_sha_s_server_like_cucm_9(pki, port):
    with SServer(pki, port, "-tls1", "-cipher", "AES128-SHA@SECLEVEL=0") as ss:
        ping = sipsim_bg("ping", f"sip:{S_ADDR}:{port}",
                         *a_flags(pki, "--tls-min", "1.0", "--tls-max", "1.0", "--ciphers", "AES128-SHA",
                                  "--timeout", "10"))
        try:
            ss.answer(ss.wait_request("OPTIONS"), 200, "OK")
            proc = finish(ping)
        finally:
            ping.kill()
        time.sleep(0.2)
        text = ss.text()
    assert proc.returncode == 0, f"{out(proc)}\n{text}"
    assert re.search(r"TLS TLSv1\.0 AES128-SHA with ", proc.stdout), proc.stdout
    assert "warning: TLS 1.0 allowed: legacy and insecure" in proc.stdout, proc.stdout
    assert "Server Hello Done" in proc.stdout  # a TLS 1.2-and-older handshake, spelled out
    assert re.search(r"Protocol version: TLSv1\b", text) and "AES128-SHA" in text, text


def test_tls10_s_server_and_sipsim_defaults_have_no_version_in_common(pki, port):
    with SServer(pki, port, "-tls1", "-cipher", "AES128-SHA@SECLEVEL=0") as ss:
        proc = finish(sipsim_bg("ping", f"sip:{S_ADDR}:{port}", *a_flags(pki, "--timeout", "5")))
        text = ss.text()
    assert proc.returncode == 1 and "is down: Local=2" in proc.stdout, f"{out(proc)}\n{text}"
    assert "(tls_protocol_version)" in proc.stdout and "no TLS version in common" in proc.stdout, proc.stdout
    assert "Alert (Level: Fatal, Description: Protocol Version)" in proc.stdout, proc.stdout
    assert "warning: TLS 1.0" not in proc.stdout


# (c) s_client against `sipsim serve` --------------------------------------------------------------

OPTIONS = ("OPTIONS sip:{host}:{port} SIP/2.0\r\n"
           "Via: SIP/2.0/TLS {local}:5061;branch=z9hG4bK-s-client-1\r\n"
           "From: <sip:ping@{local}>;tag=s-client\r\nTo: <sip:{host}:{port}>\r\n"
           "Call-ID: s-client-options-1@{local}\r\nCSeq: 1 OPTIONS\r\nMax-Forwards: 70\r\nContent-Length: 0\r\n\r\n")


def s_client(port: int, *extra: str, wait: float = 2.0) -> subprocess.CompletedProcess:
    """s_client from A's address to B's `sipsim serve`: send OPTIONS, read for ``wait`` seconds."""
    cmd = [OPENSSL, "s_client", "-connect", f"{B_ADDR}:{port}", "-bind", f"{A_ADDR}:0", "-quiet", "-ign_eof",
           "-verify_return_error", *extra]
    proc = subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            start_new_session=True)
    proc.stdin.write(OPTIONS.format(host=B_ADDR, port=port, local=A_ADDR).encode())
    proc.stdin.flush()
    try:
        stdout, stderr = proc.communicate(timeout=wait)
    except subprocess.TimeoutExpired:
        proc.kill()
        stdout, stderr = proc.communicate(timeout=10)
    return subprocess.CompletedProcess(cmd, proc.returncode, stdout.decode(errors="replace"),
                                       stderr.decode(errors="replace"))


def test_s_client_with_a_certificate_gets_200_ok_to_options(pki, port, tmp_path):
    with serve(pki, B_CN, B_ADDR, port, tmp_path / "b.log", "--subjects", A_CN) as b:
        proc = s_client(port, "-cert", str(pki[A_CN].cert), "-key", str(pki[A_CN].key), "-CAfile", str(pki.ca))
        served = b.text()
    assert proc.stdout.startswith("SIP/2.0 200 OK\r\n"), f"{OPENSSL_VERSION}\n{proc.stdout}\n{proc.stderr}\n{served}"
    assert "CSeq: 1 OPTIONS" in proc.stdout and "branch=z9hG4bK-s-client-1" in proc.stdout
    assert "Call-ID: s-client-options-1@" in proc.stdout
    assert f"CN = {B_CN}" in proc.stderr  # s_client verified sipsim's certificate against the lab CA
    assert f"TLS from {A_ADDR}:" in served and f"peer CN={A_CN}" in served, served
    # the serve line names the key exchange group (s_client 3.0 offers X25519 first)
    assert re.search(rf"TLS from {re.escape(A_ADDR)}:\d+: TLSv1\.3 \S+ x25519, peer CN=", served), served


def test_s_client_without_a_certificate_is_refused_in_the_handshake(pki, port, tmp_path):
    with serve(pki, B_CN, B_ADDR, port, tmp_path / "b.log", "--subjects", A_CN) as b:
        proc = s_client(port, "-CAfile", str(pki.ca))
        refused = b.wait_for_lines("tls_no_peer_cert", 1)
        served = b.text()
    assert "SIP/2.0" not in proc.stdout, proc.stdout
    assert re.search(r"alert|error", proc.stderr, re.I), proc.stderr
    assert refused and f"TLS from {A_ADDR}:" in refused[0] and "sent no client certificate" in refused[0], served


def test_s_client_with_an_unlisted_name_is_refused(pki, port, tmp_path):
    # B's CA-signed certificate verifies, but B's --subjects lists only nodeA.lab
    with serve(pki, B_CN, B_ADDR, port, tmp_path / "b.log", "--subjects", A_CN) as b:
        proc = s_client(port, "-cert", str(pki[S_CN].cert), "-key", str(pki[S_CN].key), "-CAfile", str(pki.ca))
        refused = b.wait_for_lines("subject_not_allowed", 1)
        served = b.text()
    assert "SIP/2.0" not in proc.stdout, proc.stdout
    assert refused and S_CN in refused[0], served
    assert "alert" in proc.stderr.lower(), proc.stderr


# (d) key exchange groups: what sipsim's Client Hello offers, as OpenSSL 3.0's s_server -trace reads it --

def client_hello_groups(trace: str) -> tuple[list[str], list[str]]:
    """(supported_groups, key_share groups) of the first Client Hello in s_server's -trace output."""
    hello = trace[trace.index("ClientHello"):]
    hello = hello[:hello.index("Record\n")]  # up to the next record (Sent Record: the Server Hello)
    groups = re.search(r"extension_type=supported_groups\(10\).*?\n((?:          \S.*\n)+)", hello)
    shares = re.findall(r"NamedGroup: (.+)", hello)
    return [g.strip() for g in groups.group(1).splitlines()], [s.strip() for s in shares]


def test_sipsim_offers_the_classical_groups_and_no_ml_kem(pki, port, tmp_path):
    trace_file = tmp_path / "trace.txt"  # -trace into its own file: stdout keeps the plain SIP
    with SServer(pki, port, "-trace", "-msgfile", str(trace_file)) as ss:
        proc = ping_answered(ss, pki, port)
    text = trace_file.read_text(errors="replace")
    assert proc.returncode == 0, f"{out(proc)}\n{ss.text()}"
    offered, shares = client_hello_groups(text)
    # OpenSSL 3.0 prints a group it does not know, such as X25519MLKEM768 (4588), as UNKNOWN (4588)
    assert offered == ["ecdh_x25519 (29)", "secp256r1 (P-256) (23)", "secp384r1 (P-384) (24)",
                       "secp521r1 (P-521) (25)"], text
    assert shares == ["ecdh_x25519 (29)"], text
    assert "4588" not in text[:text.index("ServerHello")]
    assert re.search(r"TLS TLSv1\.3 TLS_AES_256_GCM_SHA384 x25519 with ", proc.stdout), proc.stdout


def test_a_server_limited_to_p384_gets_p384_from_sipsim_after_a_hello_retry(pki, port):
    with SServer(pki, port, "-groups", "P-384") as ss:
        proc = ping_answered(ss, pki, port)
    assert proc.returncode == 0, out(proc)
    assert re.search(r"TLS TLSv1\.3 TLS_AES_256_GCM_SHA384 secp384r1 with ", proc.stdout), proc.stdout
    assert "← Hello Retry Request" in proc.stdout


def test_ml_kem_only_against_openssl_3_0_has_no_group_in_common(pki, port):
    with SServer(pki, port) as ss:
        proc = finish(sipsim_bg("ping", f"sip:{S_ADDR}:{port}", *a_flags(pki, "--tls-groups", "X25519MLKEM768",
                                                                          "--timeout", "5")))
        time.sleep(0.2)
        text = ss.text()
    assert proc.returncode == 1 and "is down: Local=2" in proc.stdout, f"{out(proc)}\n{text}"
    assert "no key exchange group in common" in proc.stdout and "--tls-groups" in proc.stdout, proc.stdout
    assert "no suitable key share" in text, text  # s_server's own words
    assert not ss.requests()
