"""Key exchange groups as a user meets them: `[cluster.node.tls] groups` in `sipsim run` and `sipsim
doctor`, `--tls-groups` on `serve`, `call` and `ping`; what is negotiated, and the one-line errors."""

import json
import subprocess
import sys

import pytest

from tests.cli.test_run_cli import sipsim
from tests.conftest import ROOT
from tests.labs import CALLS_EACH_WAY, two_clusters

PY = [sys.executable, "-m", "sipsim"]

def lab(tmp_path, name, a_groups=None, b_groups=None):
    tls = lambda g: f'tls = {{ groups = "{g}" }}' if g is not None else ""  # noqa: E731
    return two_clusters(tmp_path, name, a_address="127.0.0.211", b_address="127.0.0.212", a_node=tls(a_groups),
                        b_node=tls(b_groups), **CALLS_EACH_WAY)


def run(path, tmp_path, port_offset):
    report = tmp_path / "report.json"
    proc = sipsim("run", path, "--report", report, "--port-offset", port_offset, cwd=tmp_path)
    return proc, (json.loads(report.read_text()) if report.exists() else None)


# --- sipsim run ------------------------------------------------------------------------------------

@pytest.mark.parametrize("a_groups,b_groups,group", [
    (None, None, "x25519"),                                   # the default: classical, X25519 first
    (None, "P-256", "secp256r1"),                             # one node limited to P-256
    ("X25519MLKEM768:X25519", "X25519MLKEM768", "X25519MLKEM768"),  # post-quantum, opted into by both
])
def test_run_negotiates_the_group_the_nodes_allow_and_the_report_says_which(tmp_path, port_offset,
                                                                           a_groups, b_groups, group):
    proc, data = run(lab(tmp_path, "groups-ok", a_groups, b_groups), tmp_path, port_offset)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "2 calls: 2 answered, 0 failed" in proc.stdout
    assert [(c["version"], c["group"]) for c in data["connections"]] == [("TLSv1.3", group)] * 2
    assert {n["name"]: n["tls"]["groups"] for n in data["lab"]["nodes"]} == {"CUCM-A": a_groups, "CUCM-B": b_groups}


def test_run_with_no_group_in_common_fails_every_call_with_tls_no_shared_group(tmp_path, port_offset):
    proc, data = run(lab(tmp_path, "groups-gap", "P-384", "P-256"), tmp_path, port_offset)
    assert "2 calls: 0 answered, 2 failed" in proc.stdout, proc.stdout + proc.stderr
    assert [c["reason"] for c in data["calls"]] == ["tls_no_shared_group"] * 2
    first, second = (c["detail"] for c in data["calls"])
    # the server's own verdict, then both nodes' settings
    assert first.startswith("CUCM-B and CUCM-A (127.0.0.211:") and "no key exchange group in common" in first
    assert first.endswith("— CUCM-A offers key exchange groups P-384; CUCM-B accepts P-256: give them a group in "
                          "common ([cluster.node.tls] groups)")
    assert second.endswith("— CUCM-B offers key exchange groups P-256; CUCM-A accepts P-384: give them a group in "
                           "common ([cluster.node.tls] groups)")
    # `sipsim run` explains it: the evidence and the fix name the groups
    why = proc.stdout[proc.stdout.index("Why calls failed"):]
    assert "tls_no_shared_group ×1 at CUCM-B" in why and "CUCM-A offers key exchange groups P-384" in why
    assert "give both nodes a group in common ([cluster.node.tls] groups" in why
    explained = sipsim("explain", tmp_path / "report.json", cwd=tmp_path)
    assert explained.returncode == 0 and "CUCM-B accepts key exchange groups P-256" in explained.stdout


def test_doctor_finds_the_group_gap_before_any_call(tmp_path):
    proc = sipsim("doctor", lab(tmp_path, "groups-gap-doc", "P-384", "P-256"), cwd=tmp_path)
    assert proc.returncode == 1, proc.stdout + proc.stderr
    found = [line for line in proc.stdout.splitlines() if line.startswith("problem: ")]
    assert found == [
        "problem: CUCM-A → CUCM-B (trunk To-B): no key exchange group in common (tls_no_shared_group): CUCM-A offers "
        "groups P-384, CUCM-B accepts P-256: give both nodes a group in common ([cluster.node.tls] groups; the "
        "default X25519:P-256:P-384:P-521 is what CUCM-era peers offer)",
        "problem: CUCM-B → CUCM-A (trunk To-A): no key exchange group in common (tls_no_shared_group): CUCM-B offers "
        "groups P-256, CUCM-A accepts P-384: give both nodes a group in common ([cluster.node.tls] groups; the "
        "default X25519:P-256:P-384:P-521 is what CUCM-era peers offer)",
    ]


@pytest.mark.parametrize("command", ["run", "doctor"])
def test_an_unknown_group_in_a_scenario_is_one_line_and_exit_2(tmp_path, command):
    path = lab(tmp_path, "groups-bad", b_groups="X25519:bogus")
    proc = sipsim(command, path, cwd=tmp_path)
    assert proc.returncode == 2, proc.stdout + proc.stderr
    assert proc.stderr.strip().count("\n") == 0 and "Traceback" not in proc.stderr
    assert (f"{path}: cluster \"B\" node \"CUCM-B\" [tls]: field 'groups' is 'X25519:bogus': 'bogus' is not a key "
            "exchange group OpenSSL knows; use names separated by ':' such as X25519, P-256") in proc.stderr


# --- --tls-groups on the single-endpoint commands --------------------------------------------------

@pytest.fixture(scope="module")
def ids(tmp_path_factory):
    d = tmp_path_factory.mktemp("groups-ids")
    for cn in ("srv.lab", "cli.lab"):
        subprocess.run(PY + ["certs", "self-signed", "--cn", cn, "--out", str(d)], check=True, capture_output=True,
                       timeout=120)
    return d


def tls_flags(ids, me, peer):
    return ["--cert", str(ids / f"{me}.pem"), "--key", str(ids / f"{me}.key"), "--trust", str(ids / f"{peer}.pem")]


@pytest.mark.parametrize("value,shown", [
    ("X25519:bogus", "'bogus' is not a key exchange group OpenSSL knows"),
    ("", "give key exchange groups separated by ':' (default X25519:P-256:P-384:P-521)"),
])
@pytest.mark.parametrize("command", [
    ["ping", "sip:127.0.0.212:5061"],
    ["call", "sip:2000@127.0.0.212:5061", "--from", "1000"],
    ["serve", "--listen", "127.0.0.212:5061"],
])
def test_a_bad_tls_groups_flag_is_one_line_and_exit_2(ids, command, value, shown):
    proc = subprocess.run(PY + [*command, *tls_flags(ids, "cli.lab", "srv.lab"), "--tls-groups", value],
                          cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert proc.returncode == 2, proc.stdout + proc.stderr
    assert proc.stderr.strip().count("\n") == 0 and "Traceback" not in proc.stderr
    assert proc.stderr.strip().startswith(f"sipsim: --tls-groups {value!r}: "), proc.stderr
    assert shown in proc.stderr


@pytest.fixture
def server(ids, port_offset):
    """`sipsim serve` on 127.0.0.212 limited to P-256 (--tls-groups)."""
    port = 7061 + port_offset % 1000
    proc = subprocess.Popen(PY + ["serve", "--listen", f"127.0.0.212:{port}", *tls_flags(ids, "srv.lab", "cli.lab"),
                                  "--subjects", "cli.lab", "--tls-groups", "P-256", "--duration", "60"],
                            cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    line = proc.stdout.readline()
    assert "listening on 127.0.0.212" in line, line + (proc.stdout.read() if proc.poll() is not None else "")
    yield port, proc
    proc.terminate()
    try:
        proc.wait(timeout=10)
    except subprocess.TimeoutExpired:
        proc.kill()


def ping(ids, port, *extra):
    return subprocess.run(PY + ["ping", f"sip:127.0.0.212:{port}", "--local", "127.0.0.211",
                                *tls_flags(ids, "cli.lab", "srv.lab"), "--subjects", "srv.lab", "--timeout", "5", *extra],
                          cwd=ROOT, capture_output=True, text=True, timeout=60)


def test_ping_a_p256_only_server_negotiates_secp256r1_after_a_hello_retry(ids, server):
    port, _ = server
    proc = ping(ids, port)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert f"TLS TLSv1.3 TLS_AES_256_GCM_SHA384 secp256r1 with 127.0.0.212:{port}" in proc.stdout
    assert "← Hello Retry Request" in proc.stdout  # our X25519 key share was not one the server takes


def test_ping_with_only_ml_kem_against_a_p256_only_server_is_down_and_the_server_says_why(ids, server):
    port, srv = server
    proc = ping(ids, port, "--tls-groups", "X25519MLKEM768")
    assert proc.returncode == 1, proc.stdout + proc.stderr
    assert "is down: Local=2" in proc.stdout
    # the client only sees handshake_failure before any Server Hello: its sentence names both causes
    assert "(tls_no_shared_cipher)" in proc.stdout and "no key exchange group in common" in proc.stdout
    srv.terminate()
    served = srv.stdout.read()
    assert "tls_no_shared_group" in served and "no key exchange group in common" in served, served
