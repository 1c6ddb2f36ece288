"""`explain`: failed calls grouped by reason, destination and certificate, with evidence and fix."""

import json
import subprocess
import sys

import pytest
import trio

from sipsim.lab.loader import load_scenario
from sipsim.report.explain import explain, render_explain
from sipsim.runtime.runner import LabRunner
from tests.conftest import SCENARIOS, _offsets


def run_report(path, base):
    result = trio.run(LabRunner(load_scenario(path), port_offset=next(_offsets), base=base).run)
    return result.to_dict()


@pytest.fixture(scope="module")
def oif(tmp_path_factory):
    return run_report(SCENARIOS / "one-in-four.toml", tmp_path_factory.mktemp("oif"))


def test_one_in_four_names_cucm_b4_its_certificate_and_the_fix(oif):
    groups = explain(oif)
    assert len(groups) == 1
    g = groups[0]
    assert (g.reason, g.node, g.calls, g.recovered) == ("subject_not_allowed", "cucm-b4", [4, 8], [])
    assert g.destination == "cucm-b4.branch.lab:5061"
    assert "cucm-b4-old.branch.lab" in g.presented
    text = "\n".join(g.lines())
    assert text.startswith("subject_not_allowed ×2 at cucm-b4")
    assert "cucm-b1.branch.lab, cucm-b2.branch.lab, cucm-b3.branch.lab, cucm-b4.branch.lab" in text
    assert "cucm-b4-old.branch.lab.pem" in text  # the file, from lab.nodes[*].cert_file
    assert ('add cucm-b4-old.branch.lab to the X.509 Subject Name of security profile "To Branch TLS" '
            "on cluster HQ") in g.fixes[0]
    assert "reissue cucm-b4's certificate with CN cucm-b4.branch.lab" in g.fixes[1]
    assert render_explain(oif).startswith("2 of 8 calls failed:")


def test_refused_variant_says_the_node_is_down(tmp_path):
    report = run_report(SCENARIOS / "one-in-four-refused.toml", tmp_path)
    [g] = explain(report)
    assert g.reason == "connect_refused" and g.node == "cucm-b4" and g.calls == [4, 8]
    assert "cucm-b4 is down" in g.summary and "nothing listens at 127.0.0.54:5061" in g.summary
    assert g.fixes[0].startswith("start cucm-b4")
    assert g.injected == "cucm-b4: refuse_connections"


def test_failover_variant_has_no_failed_call_but_explains_the_recovered_attempts(tmp_path):
    report = run_report(SCENARIOS / "one-in-four-failover.toml", tmp_path)
    [g] = explain(report)
    assert g.calls == [] and g.recovered == [4, 8] and g.node == "cucm-b4"
    assert render_explain(report).startswith("no failed calls; some attempts failed")


def test_forgotten_trust_upload_names_the_file_to_upload_where(tmp_path):
    text = (SCENARIOS / "seed-000-self-signed.toml").read_text()
    text = text.replace('  name = "CUCM8-Publisher"\n  address = "127.0.0.21"\n',
                        '  name = "CUCM8-Publisher"\n  address = "127.0.0.21"\n'
                        '  trust_exclude = ["CUCM7-SUB1.bbbburns.lab"]\n')
    assert "trust_exclude" in text
    path = tmp_path / "forgot.toml"
    path.write_text(text)
    report = run_report(path, tmp_path)
    groups = explain(report)
    assert groups and all(g.reason == "tls_unknown_ca" for g in groups)
    fixes = {f for g in groups for f in g.fixes}
    assert "upload CUCM7-SUB1.bbbburns.lab.pem to CUCM8-Publisher as CallManager-trust" in fixes
    failed = sorted(c for g in groups for c in g.calls)
    assert failed == sorted(c["id"] for c in report["calls"] if c["outcome"] != "answered")
    assert all("CUCM7-SUB1" in (g.node or "") or "CUCM7-SUB1" in " ".join(g.origins) for g in groups)


def _report(call, nodes=(), profiles=(), trunks=()):
    return {"calls": [call], "connections": [],
            "lab": {"pki": "self-signed", "nodes": list(nodes), "profiles": list(profiles), "trunks": list(trunks)}}


def test_wrong_destination_port_says_set_it_to_the_peers_incoming_port():
    call = {"id": 1, "caller": "1000", "called": "2000", "pattern": "2XXX", "trunk": "T", "origin_node": "A",
            "outcome": "failed", "reason": "connect_refused", "detail": "refused",
            "attempts": [{"destination": "b.lab:5060", "destination_node": "B", "reason": "connect_refused",
                          "detail": "refused", "ms": 1.0, "injected": None, "connection": None}]}
    nodes = [{"name": "A", "cluster": "CA", "address": "127.0.0.1", "fault": []},
             {"name": "B", "cluster": "CB", "address": "127.0.0.2", "fault": []}]
    profiles = [{"cluster": "CB", "name": "P", "x509_subject_name": ["a.lab"], "incoming_port": 5061}]
    trunks = [{"cluster": "CA", "name": "T", "security_profile": "Q", "nodes": ["A"], "destinations": ["b.lab:5060"]},
              {"cluster": "CB", "name": "U", "security_profile": "P", "nodes": ["B"], "destinations": ["a.lab:5061"]}]
    [g] = explain(_report(call, nodes, profiles, trunks))
    assert "set the destination port of b.lab:5060 on trunk T to 5061 (the peer's incoming port)" in g.fixes[0]


def test_protocol_version_and_unallocated_number():
    nodes = [{"name": "OLD", "cluster": "X", "tls": {"min_version": "1.0", "max_version": "1.0"}},
             {"name": "NEW", "cluster": "Y", "tls": {"min_version": "1.2", "max_version": "1.3"}}]
    call = {"id": 3, "called": "2000", "trunk": "T", "origin_node": "OLD", "outcome": "failed",
            "reason": "tls_protocol_version",
            "attempts": [{"destination": "new:5061", "destination_node": "NEW", "reason": "tls_protocol_version",
                          "detail": "no version", "connection": None}]}
    [g] = explain(_report(call, nodes))
    assert "OLD speaks TLS 1.0 to 1.0; NEW speaks TLS 1.2 to 1.3" in g.evidence
    assert g.fixes[0].startswith("raise OLD's maximum TLS version to at least 1.2")
    call = {"id": 1, "caller": "1000", "called": "9999", "pattern": None, "origin_node": None, "outcome": "failed",
            "reason": "unallocated_number", "status": 404, "detail": "no route pattern", "attempts": []}
    [g] = explain(_report(call))
    assert g.reason == "unallocated_number" and g.calls == [1]
    assert "add a route pattern (e.g. 9XXX)" in g.fixes[0]


def test_no_shared_group_names_each_nodes_groups_and_the_fix():
    nodes = [{"name": "A", "cluster": "X", "tls": {"groups": "P-384"}},
             {"name": "B", "cluster": "Y", "tls": {"groups": None}}]
    call = {"id": 2, "called": "2000", "trunk": "T", "origin_node": "A", "outcome": "failed",
            "reason": "tls_no_shared_group",
            "attempts": [{"destination": "b:5061", "destination_node": "B", "reason": "tls_no_shared_group",
                          "detail": "no group", "connection": None}]}
    [g] = explain(_report(call, nodes))
    assert g.summary.startswith("A and B have no key exchange group in common, so the TLS 1.3 handshake failed")
    assert g.evidence[:2] == ["A offers key exchange groups P-384",
                              "B accepts key exchange groups X25519:P-256:P-384:P-521 (the default)"]
    assert g.fixes[0].startswith("give both nodes a group in common ([cluster.node.tls] groups, or --tls-groups)")


def test_no_failed_calls():
    assert render_explain({"calls": [{"id": 1, "outcome": "answered", "attempts": []}]}) == "no failed calls\n"


def test_explain_command(oif, tmp_path):
    report = tmp_path / "r.json"
    report.write_text(json.dumps(oif))
    run = lambda *a: subprocess.run([sys.executable, "-m", "sipsim", "explain", *map(str, a)], capture_output=True,
                                    text=True, cwd=tmp_path, timeout=60)
    proc = run(report)
    assert proc.returncode == 0, proc.stderr
    assert "subject_not_allowed ×2 at cucm-b4" in proc.stdout and "To Branch TLS" in proc.stdout
    ok = tmp_path / "ok.json"
    ok.write_text(json.dumps(dict(oif, calls=[c for c in oif["calls"] if c["outcome"] == "answered"])))
    proc = run(ok)
    assert proc.returncode == 0 and proc.stdout.strip() == "no failed calls"
    proc = run(tmp_path / "nope.json")
    assert proc.returncode == 2 and proc.stderr.count("\n") == 1 and "no such report file" in proc.stderr
