"""`sipsim serve`, `call` and `ping` as separate processes on loopback, as a user runs them."""

import json
import os
import subprocess
import sys
import time

import pytest

from tests.conftest import ROOT, SCENARIOS

PY = [sys.executable, "-m", "sipsim"]


@pytest.fixture(scope="module")
def certs(tmp_path_factory):
    d = tmp_path_factory.mktemp("endpoint")
    subprocess.run(PY + ["certs", "init", str(SCENARIOS / "seed-000-self-signed.toml")], cwd=d, check=True,
                   capture_output=True, timeout=120)
    return d / "certs" / "seed-000"


def files(certs, cn):
    return ["--cert", str(certs / f"{cn}.bbbburns.lab.pem"), "--key", str(certs / f"{cn}.bbbburns.lab.key")]


@pytest.fixture
def server(certs, port_offset):
    port = 7061 + port_offset % 1000
    cmd = PY + ["serve", "--listen", f"127.0.0.21:{port}", *files(certs, "CUCM8-Publisher"),
                "--trust", str(certs / "CUCM7-PUB.bbbburns.lab.pem"), "--trust", str(certs / "CUCM7-SUB1.bbbburns.lab.pem"),
                "--subjects", "CUCM7-PUB.bbbburns.lab", "--duration", "60"]
    proc = subprocess.Popen(cmd, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    line = proc.stdout.readline()
    assert "listening on 127.0.0.21" in line, line + (proc.stdout.read() if proc.poll() is not None else "")
    yield port, proc
    proc.terminate()
    proc.wait(timeout=10)


def client(certs, cn, local, *args):
    return subprocess.run(PY + [*args, "--local", local, *files(certs, cn),
                                "--trust", str(certs / "CUCM8-Publisher.bbbburns.lab.pem")],
                          cwd=ROOT, capture_output=True, text=True, timeout=60)


def test_ping_a_serving_endpoint_is_up_and_shows_the_handshake(certs, server):
    port, _ = server
    proc = client(certs, "CUCM7-PUB", "127.0.0.11", "ping", f"sip:127.0.0.21:{port}")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "→ Client Hello" in proc.stdout and "peer certificate: CN=CUCM8-Publisher.bbbburns.lab" in proc.stdout
    assert "response: 200" in proc.stdout and "is up" in proc.stdout


def test_ping_where_nothing_listens_is_down_with_local_2(certs, port_offset):
    proc = client(certs, "CUCM7-PUB", "127.0.0.11", "ping", f"sip:127.0.0.29:{7061 + port_offset % 1000}")
    assert proc.returncode == 1
    assert "is down: Local=2" in proc.stdout and "connect_refused" in proc.stdout


def test_call_many_calls_summarises_and_reports_every_call(certs, server, tmp_path):
    port, _ = server
    report = tmp_path / "calls.json"
    proc = client(certs, "CUCM7-PUB", "127.0.0.11", "call", f"sip:8511001@127.0.0.21:{port}", "--from", "7131001",
                  "--subjects", "CUCM8-Publisher.bbbburns.lab", "--count", "40", "--concurrency", "8",
                  "--report", str(report))
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "40 calls: 40 answered, 0 failed" in proc.stdout and "calls/s" in proc.stdout
    assert "setup ms: p50" in proc.stdout
    data = json.loads(report.read_text())
    assert len(data["calls"]) == 40 and data["summary"]["answered"] == 40
    assert {c["status"] for c in data["calls"]} == {200}


def test_a_client_certificate_not_listed_is_rejected(certs, server):
    port, proc_server = server
    proc = client(certs, "CUCM7-SUB1", "127.0.0.12", "call", f"sip:8511001@127.0.0.21:{port}", "--from", "7131002")
    assert proc.returncode == 1
    assert "0 answered, 1 failed" in proc.stdout
    assert "CUCM7-SUB1.bbbburns.lab" in proc.stdout


def test_an_untrusted_server_certificate_is_refused_by_the_caller(certs, server):
    port, _ = server
    # trust CUCM7-PUB's own certificate instead of the server's: the server's chain cannot verify
    proc = subprocess.run(PY + ["call", f"sip:8511001@127.0.0.21:{port}", "--from", "7131001", "--local", "127.0.0.11",
                                *files(certs, "CUCM7-PUB"), "--trust", str(certs / "CUCM7-PUB.bbbburns.lab.pem")],
                          cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert proc.returncode == 1 and "tls_unknown_ca" in proc.stdout


def test_a_key_readable_by_others_is_refused_with_the_chmod_fix(certs, tmp_path):
    key = tmp_path / "open.key"
    key.write_bytes((certs / "CUCM7-PUB.bbbburns.lab.key").read_bytes())
    os.chmod(key, 0o644)
    proc = subprocess.run(PY + ["ping", "sip:127.0.0.21:5061", "--cert", str(certs / "CUCM7-PUB.bbbburns.lab.pem"),
                                "--key", str(key), "--trust", str(certs / "CUCM8-Publisher.bbbburns.lab.pem")],
                          cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert proc.returncode == 2 and "chmod 600" in proc.stderr and "Traceback" not in proc.stderr


def test_serve_one_node_of_a_lab_answers_calls_from_the_rest(certs, port_offset, tmp_path):
    offset = port_offset + 500
    serve = subprocess.Popen(PY + ["serve", str(SCENARIOS / "seed-000-self-signed.toml"), "--node", "CUCM8-Publisher",
                                   "--port-offset", str(offset), "--duration", "60"],
                             cwd=certs.parent.parent, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        assert "listening on 127.0.0.21" in serve.stdout.readline()
        proc = subprocess.run(PY + ["call", f"sip:8511001@127.0.0.21:{5061 + offset}", "--from", "7131001",
                                    "--local", "127.0.0.11", *files(certs, "CUCM7-PUB"),
                                    "--trust", str(certs / "CUCM8-Publisher.bbbburns.lab.pem")],
                              cwd=ROOT, capture_output=True, text=True, timeout=60)
        assert proc.returncode == 0, proc.stdout
    finally:
        serve.terminate()
        serve.wait(timeout=10)
