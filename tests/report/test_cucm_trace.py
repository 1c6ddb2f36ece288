"""`--trace DIR`: CUCM-style SDI/SDL trace files, one per node, from a real seed-003 lab."""

import json
import re
import subprocess
import sys

import pytest
import trio

from sipsim.lab.loader import load_scenario
from sipsim.report.cucm_trace import CucmTrace, clock
from sipsim.runtime.observers import Observers
from sipsim.runtime.runner import LabRunner
from tests.conftest import ROOT, SCENARIOS, _offsets

LINE = re.compile(r"^\d{8}\.\d{3} \|\d\d:\d\d:\d\d\.\d{3} \|(AppInfo|SdlSig) \|")


@pytest.fixture(scope="module")
def traces(tmp_path_factory):
    base = tmp_path_factory.mktemp("trace")
    trace = CucmTrace(base / "traces")
    observers = Observers([trace])
    try:
        result = trio.run(LabRunner(load_scenario(SCENARIOS / "seed-003-ca-signed.toml"), port_offset=next(_offsets),
                                    base=base, observers=observers).run)
    finally:
        observers.close()
    assert result.answered == 2
    return {p.stem: p.read_text() for p in (base / "traces").iterdir()}, result.to_dict()


def test_one_file_per_node_with_cucm_timestamps(traces):
    files, _ = traces
    assert set(files) == {"CUCMA", "CUCM10"}
    for text in files.values():
        heads = [line for line in text.splitlines() if re.match(r"^\d{8}\.", line)]
        assert heads and all(LINE.match(line) for line in heads), heads[:3]


def test_digit_analysis_block_as_seed_003_shows_it(traces):
    text = traces[0]["CUCMA"]
    block = ("|PretransformCallingPartyNumber=1018\n|CallingPartyNumber=1018\n|DialingPartition=\n"
             "|DialingPattern=9898\n|FullyQualifiedCalledPartyNumber=9898")
    assert "|AppInfo ||PretransformCallingPartyNumber=1018" in text
    assert block in text


def test_connection_and_certificate_ind_for_the_outgoing_call(traces):
    text = traces[0]["CUCMA"]
    assert "//SIP/SIPHandler/ccbId=0/scbId=0/SIP_PROCESS_ENQUEUE: createConnMsg tls_security=3" in text
    created = re.search(r"sipConnectionManagerProcessConnCreated: gConnTab=0x[0-9a-f]+, addr=127\.0\.0\.62, "
                        r"port=(\d+), connid=(\d+), transport=TLS Over TCP", text)
    assert created, text[:2000]
    port, idx = created.groups()
    ind = re.search(r"SIPCertificateInd .* connIdx= (\d+) --remoteIP=127\.0\.0\.62 --remotePort = (\d+) "
                    r"--X509SubjectName /C=IN/ST=cisco/L=cisco/O=cisco/OU=cisco/CN=CUCM10 --Cipher AES128-SHA "
                    r"--SubjectAltname =", text)
    assert ind and ind.groups() == (idx, port)
    out = re.search(rf"SIPtcp - wait_SdlSPISignal: Outgoing SIP TCP message to 127\.0\.0\.62 on port {port} "
                    rf"index {idx}\n\[\d+,NET\]\nINVITE sip:9898@127\.0\.0\.62:{port} SIP/2\.0\n", text)
    assert out
    assert re.search(rf"Incoming SIP TCP message from 127\.0\.0\.62 on port {port} index {idx}\n\[\d+,NET\]\n"
                     r"SIP/2\.0 200 OK", text)
    # the order CUCM logs them in: digit analysis, connection, certificate, message
    assert text.index("PretransformCallingPartyNumber") < text.index("createConnMsg") \
        < text.index("SIPCertificateInd") < text.index("Outgoing SIP TCP message")


def test_the_receiving_node_logs_the_callers_certificate_and_the_incoming_invite(traces):
    text = traces[0]["CUCM10"]
    assert "--X509SubjectName /C=IN/ST=cisco/L=cisco/O=cisco/OU=cisco/CN=CUCMA --Cipher AES128-SHA" in text
    assert re.search(r"Incoming SIP TCP message from 127\.0\.0\.61 on port \d+ index \d+\n\[\d+,NET\]\nINVITE sip:9898@", text)


def test_clock_is_hh_mm_ss_mmm():
    assert re.fullmatch(r"\d\d:\d\d:\d\d\.\d{3}", clock(1700000000.5))
    assert clock(1700000000.5).endswith(".500")


def test_run_trace_and_transcript_from_the_command_line(tmp_path):
    report = tmp_path / "r.json"
    proc = subprocess.run([sys.executable, "-m", "sipsim", "run", str(SCENARIOS / "seed-003-ca-signed.toml"),
                           "--port-offset", str(next(_offsets)), "--quiet", "--trace", str(tmp_path / "tr"),
                           "--transcript", "--report", str(report)],
                          capture_output=True, text=True, cwd=tmp_path, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert "CUCM10 → CUCMA: Server Hello, Certificate, Certificate Request, Server Hello Done" in proc.stdout
    assert "--Cipher AES128-SHA" in (tmp_path / "tr" / "CUCMA.txt").read_text()
    assert json.loads(report.read_text())["summary"]["answered"] == 2
