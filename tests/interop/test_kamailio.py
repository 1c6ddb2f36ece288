"""Kamailio (tls module) as a mutual-TLS proxy between two sipsim endpoints on loopback:

    sipsim call (A, 127.0.0.11) → Kamailio (127.0.0.30, tm + record_route) → sipsim serve (B, 127.0.0.21)

A lab CA made with `sipsim certs` signs A's, B's and Kamailio's certificates; every party trusts the CA.
Kamailio requires and verifies client certificates, and presents its own when it connects to B.
Written against Kamailio 5.6.3 (Debian bookworm's kamailio + kamailio-tls-modules), OpenSSL 3.0.
"""

from __future__ import annotations

import re
import time
from pathlib import Path

import pytest

from tests.interop.helpers import (A_ADDR, B_ADDR, PY, Background, find_program, make_pki, out, port_for, serve,
                                   sipsim, version_line)

KAMAILIO = find_program("kamailio")
MODULE_DIRS = ["/usr/lib/x86_64-linux-gnu/kamailio/modules", "/usr/lib/aarch64-linux-gnu/kamailio/modules",
               "/usr/lib/kamailio/modules", "/usr/local/lib64/kamailio/modules", "/usr/local/lib/kamailio/modules"]
MPATH = next((d for d in MODULE_DIRS if Path(d, "tls.so").exists()), None)
KAMAILIO_VERSION = version_line([KAMAILIO, "-v"]) if KAMAILIO else None

pytestmark = [
    pytest.mark.peer,
    pytest.mark.skipif(KAMAILIO is None, reason="kamailio not installed (apt-get install kamailio "
                                                "kamailio-tls-modules); these tests were written against 5.6.3"),
    pytest.mark.skipif(KAMAILIO is not None and MPATH is None,
                       reason=f"{KAMAILIO_VERSION}: its tls module (tls.so) is missing: apt-get install "
                              f"kamailio-tls-modules (looked in {', '.join(MODULE_DIRS)})"),
]

HERE = Path(__file__).parent / "kamailio"
K_ADDR, K_CN, A_CN, B_CN = "127.0.0.30", "kamailio.lab", "nodeA.lab", "nodeB.lab"
BASE = 9000


@pytest.fixture(scope="module")
def pki(tmp_path_factory):
    return make_pki(tmp_path_factory.mktemp("kamailio-pki"), [A_CN, B_CN, K_CN], ["stranger.lab"])


@pytest.fixture
def port(port_offset):
    """The same port number on every address: Kamailio 127.0.0.30, B 127.0.0.21, A (when it serves) 127.0.0.11."""
    return port_for(port_offset, BASE)


class Kamailio(Background):
    """kamailio -DD -E in the foreground, config from tests/interop/kamailio/, its port accepting."""

    def __init__(self, pki, port: int, tmp: Path, *, client_cert: bool = True):
        tmp.mkdir(parents=True, exist_ok=True)
        ident = pki[K_CN]
        values = {"KAM_ADDR": K_ADDR, "KAM_PORT": port, "MPATH": MPATH, "A_ADDR": A_ADDR, "A_PORT": port,
                  "B_ADDR": B_ADDR, "B_PORT": port, "TLS_CFG": tmp / "tls.cfg", "CERT": ident.cert,
                  "KEY": ident.key, "CA": pki.ca,
                  "CLIENT_CERT": f"certificate = {ident.cert}\nprivate_key = {ident.key}" if client_cert
                  else "# no certificate: Kamailio connects to B without a client certificate"}
        for name in ("kamailio.cfg", "tls.cfg"):
            text = (HERE / name).read_text()
            for key, value in values.items():
                text = text.replace(f"@{key}@", str(value))
            assert "@" not in re.sub(r"#.*", "", text).replace("$", ""), f"unfilled placeholder in {name}"
            (tmp / name).write_text(text)
        check = sipsim_free_run([KAMAILIO, "-c", "-f", tmp / "kamailio.cfg"])
        assert "config file ok" in check.lower(), f"{KAMAILIO_VERSION}: kamailio -c refused the config:\n{check}"
        super().__init__([KAMAILIO, "-f", tmp / "kamailio.cfg", "-DD", "-E", "-w", tmp, "-P", tmp / "kamailio.pid",
                          "-m", "64", "-M", "8"], tmp / "kamailio.log", cwd=tmp)
        try:
            self.wait_for_port(K_ADDR, port)
        except BaseException:
            self.stop()
            raise

    def requests(self, method: str) -> list[str]:
        return [line for line in self.text().splitlines() if f"interop: {method} " in line]


def sipsim_free_run(cmd) -> str:
    import subprocess

    proc = subprocess.run([str(c) for c in cmd], capture_output=True, text=True, timeout=30)
    return proc.stdout + proc.stderr


def call(pki, ident: str, local: str, uri: str, *extra: str, trust: Path | None = None):
    return sipsim("call", uri, "--from", "7131001" if ident == A_CN else "8511001", "--local", local,
                  *pki[ident].flags(), "--trust", trust or pki.ca, "--handshake-timeout", "5", *extra, timeout=60)


def test_calls_go_from_a_through_kamailio_to_b(pki, port, tmp_path):
    with Kamailio(pki, port, tmp_path / "k") as kam, \
            serve(pki, B_CN, B_ADDR, port, tmp_path / "b.log", "--subjects", K_CN) as b:
        proc = call(pki, A_CN, A_ADDR, f"sip:8511001@{K_ADDR}:{port}", "--subjects", K_CN, "--count", "3",
                    "--hold", "0.2")
        assert proc.returncode == 0, f"{KAMAILIO_VERSION}\n{out(proc)}\n{kam.text()}\n{b.text()}"
        assert "3 calls: 3 answered, 0 failed" in proc.stdout
        assert K_CN in proc.stdout  # A's peer is the proxy
        byes = kam.wait_for_lines("interop: BYE ", 3)
        served = b.text()
    # B saw the proxy, not A: Kamailio's client certificate, from Kamailio's address
    assert re.search(rf"TLS from {re.escape(K_ADDR)}:\d+: TLSv1\.[23] \S+( \S+)?, peer CN={re.escape(K_CN)}", served), served
    assert served.count("answering 200") == 3, served
    invites = kam.requests("INVITE")
    assert len(invites) == 3 and all(f"from {A_ADDR}:" in i and f"tls-peer={A_CN}" in i for i in invites), invites
    # record_route(): the ACKs and BYEs came back through the proxy, to B's Contact
    assert len(kam.requests("ACK")) == 3 and len(byes) == 3, kam.text()
    assert all(f"@{B_ADDR}:{port};transport=tls" in line for line in byes), byes


def test_b_hangs_up_and_its_bye_reaches_a_through_kamailio(pki, port, tmp_path):
    with Kamailio(pki, port, tmp_path / "k") as kam, \
            serve(pki, B_CN, B_ADDR, port, tmp_path / "b.log", "--subjects", K_CN, "--hold", "0.3"):
        t0 = time.monotonic()
        proc = call(pki, A_CN, A_ADDR, f"sip:8511001@{K_ADDR}:{port}", "--subjects", K_CN, "--hold", "20",
                    "--report", tmp_path / "a.json")
        elapsed = time.monotonic() - t0
        assert proc.returncode == 0, f"{out(proc)}\n{kam.text()}"
        byes = kam.requests("BYE")
    # the BYE came from B and went to A over A's own connection (A does not listen)
    assert len(byes) == 1 and f"from {B_ADDR}:" in byes[0] and f"tls-peer={K_CN}" not in byes[0], byes
    assert f"tls-peer={B_CN}" in byes[0], byes
    assert elapsed < 15, f"A held the call its whole --hold: B's BYE did not reach it ({elapsed:.1f} s)\n{proc.stdout}"
    import json

    calls = json.loads((tmp_path / "a.json").read_text())["calls"]
    assert [c["status"] for c in calls] == [200], calls


def test_roles_reversed_b_calls_a_through_kamailio(pki, port, tmp_path):
    with Kamailio(pki, port, tmp_path / "k") as kam, \
            serve(pki, A_CN, A_ADDR, port, tmp_path / "a.log", "--subjects", K_CN) as a:
        proc = call(pki, B_CN, B_ADDR, f"sip:7131001@{K_ADDR}:{port}", "--subjects", K_CN, "--count", "2")
        assert proc.returncode == 0, f"{out(proc)}\n{kam.text()}\n{a.text()}"
        assert "2 calls: 2 answered, 0 failed" in proc.stdout
        served = a.text()
    assert f"TLS from {K_ADDR}:" in served and f"peer CN={K_CN}" in served, served
    assert all(f"tls-peer={B_CN}" in line for line in kam.requests("INVITE")), kam.text()


def test_options_ping_to_kamailio_is_up_with_its_certificate(pki, port, tmp_path):
    with Kamailio(pki, port, tmp_path / "k") as kam:
        proc = sipsim("ping", f"sip:{K_ADDR}:{port}", "--local", A_ADDR, *pki[A_CN].flags(), "--trust", pki.ca,
                      "--timeout", "5", timeout=60)
        assert proc.returncode == 0, f"{out(proc)}\n{kam.text()}"
    assert "response: 200" in proc.stdout and "is up" in proc.stdout
    assert f"peer certificate: CN={K_CN}" in proc.stdout
    assert re.search(r"TLS TLSv1\.[23] ", proc.stdout), proc.stdout
    assert any(f"tls-peer={A_CN}" in line for line in kam.requests("OPTIONS")), kam.text()


def test_kamailio_not_listed_in_b_subjects_is_rejected_by_b(pki, port, tmp_path):
    # B trusts the lab CA (Kamailio's chain verifies) but its X.509 Subject Name lists only A
    with Kamailio(pki, port, tmp_path / "k") as kam, \
            serve(pki, B_CN, B_ADDR, port, tmp_path / "b.log", "--subjects", A_CN) as b:
        proc = call(pki, A_CN, A_ADDR, f"sip:8511001@{K_ADDR}:{port}", "--subjects", K_CN)
        served = b.wait_for_lines("subject_not_allowed", 1) and b.text()
        log = kam.text()
    assert proc.returncode == 1, out(proc)
    assert "0 answered, 1 failed" in proc.stdout and "Traceback" not in proc.stderr
    assert "subject_not_allowed" in served and K_CN in served, served
    assert "answering" not in served, served
    # Kamailio's view: B's alert on its outbound connection, then its own 408 to A
    assert len(kam.requests("INVITE")) == 1 and "alert bad certificate" in log and f"src addr: {B_ADDR}:{port}" in log, log
    assert "timeout 408" in proc.stdout, proc.stdout


def test_kamailio_without_a_client_certificate_is_refused_by_b(pki, port, tmp_path):
    with Kamailio(pki, port, tmp_path / "k", client_cert=False) as kam, \
            serve(pki, B_CN, B_ADDR, port, tmp_path / "b.log", "--subjects", K_CN) as b:
        proc = call(pki, A_CN, A_ADDR, f"sip:8511001@{K_ADDR}:{port}", "--subjects", K_CN)
        served = b.wait_for_lines("tls_no_peer_cert", 1) and b.text()
        log = kam.text()
    assert proc.returncode == 1, out(proc)
    assert "0 answered, 1 failed" in proc.stdout and "Traceback" not in proc.stderr
    assert f"TLS from {K_ADDR}:" in served and "tls_no_peer_cert" in served, served
    assert "answering" not in served, served
    assert "alert certificate required" in log and f"src addr: {B_ADDR}:{port}" in log, log


def test_an_untrusted_kamailio_certificate_is_refused_by_a(pki, port, tmp_path):
    # A trusts only another CA: Kamailio's chain cannot verify
    with Kamailio(pki, port, tmp_path / "k") as kam, \
            serve(pki, B_CN, B_ADDR, port, tmp_path / "b.log", "--subjects", K_CN) as b:
        proc = call(pki, A_CN, A_ADDR, f"sip:8511001@{K_ADDR}:{port}", trust=pki.other_ca)
        log, served = kam.text(), b.text()
    assert proc.returncode == 1, out(proc)
    assert "tls_unknown_ca" in proc.stdout and "Traceback" not in proc.stderr
    assert f"does not trust {K_ADDR}:{port}" in proc.stdout, proc.stdout
    assert not kam.requests("INVITE"), log
    assert "alert unknown ca" in log, log  # nothing reached the proxy's script
    assert "TLS from" not in served, served


def test_a_client_certificate_from_an_unknown_ca_is_refused_by_kamailio(pki, port, tmp_path):
    # Kamailio verifies client certificates against the lab CA: a certificate of another CA fails
    with Kamailio(pki, port, tmp_path / "k") as kam:
        proc = sipsim("call", f"sip:8511001@{K_ADDR}:{port}", "--from", "7131001", "--local", A_ADDR,
                      *pki["stranger.lab"].flags(), "--trust", pki.ca, "--handshake-timeout", "5", timeout=60)
        log = kam.text()
    assert proc.returncode == 1, out(proc)
    assert "0 answered, 1 failed" in proc.stdout and "Traceback" not in proc.stderr
    # TLS 1.3: Kamailio's alert arrives on sipsim's first read; sipsim names it and whose certificate it was
    assert "tls_unknown_ca" in proc.stdout, proc.stdout
    assert re.search(r"does not trust [\w' ]{0,30}certificate CN=stranger\.lab", proc.stdout), proc.stdout
    assert not kam.requests("INVITE"), log
    assert "certificate verify failed" in log and f"src addr: {A_ADDR}:" in log, log
