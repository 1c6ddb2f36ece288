"""`sipsim doctor` as a user runs it: a subprocess in a fresh directory, exit codes 0/1/2, one line each."""

import os
import subprocess
import sys

import pytest

from tests.conftest import ROOT, SCENARIOS


def doctor(*args, cwd):
    env = {**os.environ, "PYTHONPATH": str(ROOT)}  # the checkout's sipsim, whatever the current directory
    return subprocess.run([sys.executable, "-m", "sipsim", "doctor", *map(str, args)], capture_output=True,
                          text=True, cwd=cwd, timeout=120, env=env)


def test_seed_000_has_no_problems_and_its_certificates_go_under_the_current_directory(tmp_path):
    proc = doctor(SCENARIOS / "seed-000-self-signed.toml", cwd=tmp_path)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    lines = proc.stdout.splitlines()
    assert lines[0] == "seed-000: 3 nodes, 4 connections checked"
    assert lines[-1] == "no problems"
    assert (tmp_path / "certs" / "seed-000" / "CUCM8-Publisher.bbbburns.lab.pem").exists()
    assert "pki: made" in proc.stderr  # made once, said on stderr
    again = doctor(SCENARIOS / "seed-000-self-signed.toml", cwd=tmp_path)
    assert again.returncode == 0 and again.stderr == ""  # kept, nothing to say


def test_seed_003_passes_with_warnings(tmp_path):
    proc = doctor(SCENARIOS / "seed-003-ca-signed.toml", cwd=tmp_path)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    warnings = [line for line in proc.stdout.splitlines() if line.startswith("warning: ")]
    assert len(warnings) >= 4
    assert proc.stdout.splitlines()[-1] == f"no problems ({len(warnings)} warnings)"
    assert not any(line.startswith("problem: ") for line in proc.stdout.splitlines())


def test_one_in_four_exits_1_with_one_line_per_problem(tmp_path):
    proc = doctor(SCENARIOS / "one-in-four.toml", cwd=tmp_path)
    assert proc.returncode == 1
    problems = [line for line in proc.stdout.splitlines() if line.startswith("problem: ")]
    assert problems == [
        'problem: CUCM-HQ → cucm-b4 (trunk SIP-TLS-Branch): cucm-b4 presents CN=cucm-b4-old.branch.lab, not in '
        'security profile "To Branch TLS" (cluster HQ): add it to the X.509 Subject Name, or reissue cucm-b4\'s '
        "certificate as cucm-b4.branch.lab",
        'problem: cucm-b4 → CUCM-HQ (trunk SIP-TLS-HQ): cucm-b4 presents CN=cucm-b4-old.branch.lab, not in '
        'security profile "To Branch TLS" (cluster HQ) that CUCM-HQ applies on port 5061: add it to the X.509 '
        "Subject Name, or reissue cucm-b4's certificate as cucm-b4.branch.lab",
    ]
    assert proc.stdout.splitlines()[-1] == "2 problems"


def test_an_injected_fault_is_a_note_and_exit_0(tmp_path):
    proc = doctor(SCENARIOS / "one-in-four-refused.toml", cwd=tmp_path)
    assert proc.returncode == 0, proc.stdout
    assert "note: cucm-b4: fault injected (refuse_connections)" in proc.stdout
    assert proc.stdout.splitlines()[-1] == "no problems (1 note)"


@pytest.mark.parametrize("name,reason", [
    ("mismatch-tls-version.toml", "tls_protocol_version"),
    ("mismatch-null-cipher.toml", "tls_no_shared_cipher"),
    ("mismatch-missing-ca.toml", "tls_unknown_ca"),
    ("mismatch-expired.toml", "tls_cert_expired"),
])
def test_each_mismatch_scenario_exits_1(name, reason, tmp_path):
    proc = doctor(SCENARIOS / name, cwd=tmp_path)
    assert proc.returncode == 1, proc.stdout
    problems = [line for line in proc.stdout.splitlines() if line.startswith("problem: ")]
    assert len(problems) == 2 and all(f"({reason}" in p and " → " in p for p in problems)


def test_at_a_date_after_every_certificate_expires(tmp_path):
    proc = doctor(SCENARIOS / "seed-000-self-signed.toml", "--at", "2100-01-01", cwd=tmp_path)
    assert proc.returncode == 1
    assert proc.stdout.splitlines()[0] == "seed-000: 3 nodes, 4 connections checked at 2100-01-01 00:00:00 UTC"
    assert proc.stdout.count("(tls_cert_expired)") == 8  # 4 connections, both certificates each


def test_a_bad_scenario_is_one_line_and_exit_2(tmp_path):
    bad = tmp_path / "bad.toml"
    bad.write_text((SCENARIOS / "seed-000-self-signed.toml").read_text().replace("incoming_port", "incomming_port", 1))
    proc = doctor(bad, cwd=tmp_path)
    assert proc.returncode == 2 and proc.stdout == ""
    (line,) = proc.stderr.splitlines()
    assert line.startswith(f"sipsim: {bad}:") and "'incomming_port'" in line and "did you mean 'incoming_port'" in line
    missing = doctor(tmp_path / "nowhere.toml", cwd=tmp_path)
    assert missing.returncode == 2 and len(missing.stderr.splitlines()) == 1


def test_a_bad_date_is_one_line_and_exit_2(tmp_path):
    proc = doctor(SCENARIOS / "seed-000-self-signed.toml", "--at", "someday", cwd=tmp_path)
    assert proc.returncode == 2
    (line,) = proc.stderr.splitlines()
    assert "cannot read the time 'someday'" in line
