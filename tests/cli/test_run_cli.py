"""`sipsim run` as a user runs it: a subprocess, its exit code, its output and its JSON report."""

import json
import subprocess
import sys

import pytest

from tests.conftest import ROOT, SCENARIOS


def sipsim(*args, cwd=None, timeout=120):
    return subprocess.run([sys.executable, "-m", "sipsim", *map(str, args)], capture_output=True, text=True,
                          cwd=cwd or ROOT, timeout=timeout)


def run_lab(name, tmp_path, port_offset, *extra):
    report = tmp_path / "report.json"
    proc = sipsim("run", SCENARIOS / name, "--report", report, "--port-offset", port_offset, *extra, cwd=tmp_path)
    data = json.loads(report.read_text()) if report.exists() else None
    return proc, data


def test_seed_lab_from_the_command_line_writes_every_field_of_the_report(tmp_path, port_offset):
    proc, data = run_lab("seed-000-self-signed.toml", tmp_path, port_offset)
    assert proc.returncode == 0, proc.stderr
    assert "6 calls: 6 answered, 0 failed" in proc.stdout
    assert (tmp_path / "certs" / "seed-000" / "CUCM7-PUB.bbbburns.lab.pem").exists()
    key = tmp_path / "certs" / "seed-000" / "CUCM7-PUB.bbbburns.lab.key"
    assert key.stat().st_mode & 0o777 == 0o600
    required = {"id", "caller", "called", "pattern", "trunk", "origin_node", "destination", "destination_node",
                "outcome", "status", "reason", "tls_version", "cipher", "peer_subject", "peer_san", "setup_ms"}
    for call in data["calls"]:
        assert required <= call.keys()
        assert call["outcome"] == "answered" and call["status"] == 200 and call["reason"] is None


def test_one_in_four_fails_exactly_one_call_in_four_at_the_misnamed_node(tmp_path, port_offset):
    proc, data = run_lab("one-in-four.toml", tmp_path, port_offset)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "every expectation" in proc.stdout
    failed = [c for c in data["calls"] if c["outcome"] == "failed"]
    assert [c["id"] for c in failed] == [4, 8]
    for c in failed:
        assert c["reason"] == "subject_not_allowed" and c["destination_node"] == "cucm-b4"
        assert "cucm-b4-old.branch.lab" in c["detail"] and "To Branch TLS" in c["detail"]
        assert "add cucm-b4-old.branch.lab" in c["detail"]
    assert "subject_not_allowed ×2" in proc.stdout


def test_one_in_four_with_failover_answers_every_call_with_an_extra_attempt(tmp_path, port_offset):
    proc, data = run_lab("one-in-four-failover.toml", tmp_path, port_offset)
    assert proc.returncode == 0, proc.stdout
    calls = data["calls"]
    assert all(c["outcome"] == "answered" for c in calls)
    retried = [c for c in calls if len(c["attempts"]) == 2]
    assert [c["id"] for c in retried] == [4, 8]
    for c in retried:
        first, second = c["attempts"]
        assert first["destination_node"] == "cucm-b4" and first["reason"] == "subject_not_allowed"
        assert second["reason"] is None and c["destination_node"] == "cucm-b1"
        assert c["setup_ms"] >= first["ms"]


def test_one_in_four_refused_is_tagged_as_injected(tmp_path, port_offset):
    proc, data = run_lab("one-in-four-refused.toml", tmp_path, port_offset)
    assert proc.returncode == 0, proc.stdout
    failed = [c for c in data["calls"] if c["outcome"] == "failed"]
    assert len(failed) == 2 and {c["reason"] for c in failed} == {"connect_refused"}
    assert all("refuse_connections" in c["attempts"][0]["injected"] for c in failed)


def test_one_in_four_with_ping_shows_partial_service_and_loses_no_call(tmp_path, port_offset):
    proc, data = run_lab("one-in-four-ping.toml", tmp_path, port_offset)
    assert proc.returncode == 0, proc.stdout
    assert data["trunk_status"]["CUCM-HQ/SIP-TLS-Branch"] == "Partial Service"
    assert data["trunk_status"]["cucm-b1/SIP-TLS-HQ"] == "Unknown - OPTIONS Ping not enabled"
    assert all(c["destination_node"] != "cucm-b4" for c in data["calls"])
    down = [ch for ch in data["ping_changes"] if ch["to"] == "out_of_service"]
    assert [(ch["destination"], ch["cause"]) for ch in down] == [("cucm-b4.branch.lab:5061", "Local=2")]


def test_a_broken_expectation_exits_1_with_one_line_per_problem(tmp_path, port_offset):
    text = (SCENARIOS / "one-in-four.toml").read_text().replace("answered = 6", "answered = 7")
    path = tmp_path / "broken.toml"
    path.write_text(text.replace('name = "one-in-four"', 'name = "broken"'))
    proc = sipsim("run", path, "--port-offset", port_offset, "--quiet", cwd=tmp_path)
    assert proc.returncode == 1
    assert "expected 7 answered calls, got 6" in proc.stdout


@pytest.mark.parametrize("args,message", [
    (["run", "nope.toml"], "nope.toml: no such scenario file"),
    (["run", "bad.toml"], "bad.toml: not valid TOML"),
])
def test_bad_input_is_one_line_and_exit_2(tmp_path, args, message):
    (tmp_path / "bad.toml").write_text("[[cluster]\n")
    proc = sipsim(*args, cwd=tmp_path)
    assert proc.returncode == 2
    assert proc.stderr.strip().count("\n") == 0 and message in proc.stderr
    assert "Traceback" not in proc.stderr


def test_a_load_block_places_every_call_and_the_ratio_holds(tmp_path, port_offset):
    text = (SCENARIOS / "one-in-four.toml").read_text()
    text = text[:text.index("[[call]]")] + (
        '[[load]]\nfrom = "1000"\nto = "2000"\ncount = 40\nrate = 200\nconcurrency = 4\n'
        '[expect]\nfailure_ratio = 0.25\n')
    path = tmp_path / "load.toml"
    path.write_text(text.replace('name = "one-in-four"', 'name = "load"'))
    proc = sipsim("run", path, "--port-offset", port_offset, "--quiet", "--report", tmp_path / "r.json", cwd=tmp_path)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    data = json.loads((tmp_path / "r.json").read_text())
    assert len(data["calls"]) == 40 and sorted(c["id"] for c in data["calls"]) == list(range(1, 41))
    assert "40 calls: 30 answered, 10 failed" in proc.stdout


def test_legacy_settings_are_run_with_a_warning(tmp_path, port_offset):
    proc = sipsim("run", SCENARIOS / "seed-003-ca-signed.toml", "--port-offset", port_offset, "--quiet", cwd=tmp_path)
    assert proc.returncode == 0, proc.stdout
    assert "warning: node CUCMA allows TLS 1.0" in proc.stdout and "SHA-1" in proc.stdout
