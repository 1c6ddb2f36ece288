"""Ladder diagrams of a call: rows from a real one-in-four report, SVG that parses, the CLI."""

import json
import subprocess
import sys
import xml.etree.ElementTree as ET

import pytest
import trio

from sipsim.lab.loader import load_scenario
from sipsim.report.ladder import build, find_call, render_svg, render_text
from sipsim.report.transcript import handshake_flights
from sipsim.runtime.runner import LabRunner
from tests.conftest import ROOT, SCENARIOS, _offsets

SVG = "{http://www.w3.org/2000/svg}"


def run_report(name, base):
    result = trio.run(LabRunner(load_scenario(SCENARIOS / name), port_offset=next(_offsets), base=base).run)
    return result.to_dict()


@pytest.fixture(scope="module")
def oif(tmp_path_factory):
    return run_report("one-in-four.toml", tmp_path_factory.mktemp("oif"))


@pytest.fixture(scope="module")
def refused(tmp_path_factory):
    return run_report("one-in-four-refused.toml", tmp_path_factory.mktemp("ref"))


def arrows(svg, kind):
    root = ET.fromstring(svg)
    return [e for e in root.iter(f"{SVG}line") if kind in (e.get("class") or "").split()]


def test_default_call_is_the_first_failed_one_else_call_1(oif):
    assert find_call(oif, None)["id"] == 4
    ok = dict(oif, calls=[c for c in oif["calls"] if c["outcome"] == "answered"])
    assert find_call(ok, None)["id"] == 1
    assert find_call(oif, 99) is None


def test_svg_has_one_arrow_per_sip_message_and_per_tls_flight(oif):
    call = find_call(oif, 1)
    conn = oif["connections"][call["attempts"][0]["connection"]]
    svg = render_svg(oif, 1)
    root = ET.fromstring(svg)  # valid XML
    assert root.tag == f"{SVG}svg"
    assert len(arrows(svg, "sip")) == len(call["messages"]) == 7
    assert len(arrows(svg, "tls")) == len(handshake_flights(conn)) == 4
    assert len(arrows(svg, "tcp")) == 1
    for line in arrows(svg, "sip") + arrows(svg, "tls"):
        assert line.get("marker-end", "").startswith("url(#arrow")
    lanes = [e for e in root.iter(f"{SVG}line") if e.get("class") == "lane"]
    assert len(lanes) == 4
    texts = [t.text for t in root.iter(f"{SVG}text")]
    for name in ("1000 (phone)", "CUCM-HQ", "cucm-b1", "2000 (phone)"):
        assert name in texts
    assert "INVITE sip:2000@" in " ".join(t for t in texts if t)
    assert any(t and t.endswith(" ms") for t in texts)


def test_failed_call_shows_the_alert_and_the_failure_in_red(oif):
    svg = render_svg(oif, 4)
    root = ET.fromstring(svg)
    red = [e for e in root.iter(f"{SVG}line") if e.get("stroke") == "#c62828"]
    assert any("tls" in e.get("class") for e in red)  # the Bad Certificate alert flight
    red_text = " ".join(t.text or "" for t in root.iter(f"{SVG}text") if t.get("fill") == "#c62828")
    assert "Alert (Level: Fatal, Description: Bad Certificate)" in red_text
    assert "subject_not_allowed" in red_text and "cucm-b4-old.branch.lab" in red_text
    assert arrows(svg, "sip") == []


def test_text_ladder_rows_in_time_order_and_connection_reuse(oif):
    text = render_text(oif, 5, markup=False)
    assert text.splitlines()[0].startswith("call 5: 1000 → 2000 (2XXX) over SIP-TLS-Branch — answered 200")
    assert "reuses TLS connection #0 to cucm-b1 (opened for call 1)" in text
    assert "TCP connect" not in text and "Client Hello" not in text
    lad = build(oif, find_call(oif, 1))
    times = [r.t for r in lad.rows]
    assert times == sorted(times)
    labels = [r.label for r in lad.rows]
    assert labels.index("Client Hello") < labels.index(next(x for x in labels if x.startswith("INVITE")))
    assert any(x.startswith("TCP connect 127.0.0.41:") for x in labels)
    marked = render_text(oif, 4)
    assert "[red]" in marked and "Bad Certificate" in marked


def test_tls_up_names_version_cipher_and_key_exchange_group(oif):
    labels = [r.label for r in build(oif, find_call(oif, 1)).rows]
    assert "TLS up: TLSv1.3 TLS_AES_256_GCM_SHA384 x25519" in labels
    # a report without the group (a connection that negotiated none, or an older report) keeps the old text
    old = json.loads(json.dumps(oif))
    for conn in old["connections"]:
        conn.pop("group", None)
    assert "TLS up: TLSv1.3 TLS_AES_256_GCM_SHA384" in [r.label for r in build(old, find_call(old, 1)).rows]


def test_refused_connection_is_a_red_tcp_arrow(refused):
    lad = build(refused, find_call(refused, None))
    tcp = [r for r in lad.rows if r.kind == "tcp"]
    assert len(tcp) == 1 and tcp[0].failed and "refused" in tcp[0].label
    svg = render_svg(refused, None)
    assert [e.get("stroke") for e in arrows(svg, "tcp")] == ["#c62828"]


def sipsim(*args, cwd):
    return subprocess.run([sys.executable, "-m", "sipsim", *map(str, args)], capture_output=True, text=True,
                          cwd=cwd, timeout=60)


def test_ladder_command(oif, tmp_path):
    report = tmp_path / "r.json"
    report.write_text(json.dumps(oif))
    proc = sipsim("ladder", report, "--svg", tmp_path / "out" / "c4.svg", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert "call 4:" in proc.stdout and "Client Hello" in proc.stdout
    ET.parse(tmp_path / "out" / "c4.svg")
    proc = sipsim("ladder", report, "--call", "2", cwd=tmp_path)
    assert proc.returncode == 0 and "call 2:" in proc.stdout and "cucm-b2" in proc.stdout


@pytest.mark.parametrize("setup, args, message", [
    (None, ["missing.json"], "no such report file"),
    ("not json {", ["bad.json"], "not a JSON report"),
    ('{"x": 1}', ["bad.json"], "not a sipsim report"),
    ("REPORT", ["r.json", "--call", "99"], "no call 99"),
])
def test_ladder_command_errors_are_one_line_exit_2(oif, tmp_path, setup, args, message):
    if setup == "REPORT":
        (tmp_path / "r.json").write_text(json.dumps(oif))
    elif setup is not None:
        (tmp_path / "bad.json").write_text(setup)
    proc = sipsim("ladder", *args, cwd=tmp_path)
    assert proc.returncode == 2
    assert message in proc.stderr and len(proc.stderr.strip().splitlines()) == 1, proc.stderr
