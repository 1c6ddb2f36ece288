"""The TLS transcript in words: real labs (seed 003, one-in-four) and hand-made records."""

import pytest
import trio

from sipsim.lab.loader import load_scenario
from sipsim.report.transcript import ALERT_MEANING, alert_meaning, render_connection, render_run_transcripts
from sipsim.runtime.runner import LabRunner
from tests.conftest import SCENARIOS, _offsets


def run_report(name, base):
    result = trio.run(LabRunner(load_scenario(SCENARIOS / name), port_offset=next(_offsets), base=base).run)
    return result.to_dict()


@pytest.fixture(scope="module")
def seed003(tmp_path_factory):
    return run_report("seed-003-ca-signed.toml", tmp_path_factory.mktemp("s3"))


@pytest.fixture(scope="module")
def one_in_four(tmp_path_factory):
    return run_report("one-in-four.toml", tmp_path_factory.mktemp("oif"))


def flights(lines):
    return [line.split(": ", 1)[1].rsplit("  (", 1)[0] for line in lines if " ms  " in line and " → " in line]


def test_seed003_transcript_reads_the_tls10_handshake_flight_by_flight(seed003):
    conn = seed003["connections"][0]
    lines = render_connection(conn, seed003["lab"])
    assert lines[0].startswith("TLS connection #0 from CUCMA (127.0.0.61:")
    assert "to CUCM10 (127.0.0.62:" in lines[0]
    assert flights(lines) == [
        "Client Hello",
        "Server Hello, Certificate, Certificate Request, Server Hello Done",
        "Certificate, Client Key Exchange, Certificate Verify, Change Cipher Spec, Finished",
        "New Session Ticket, Change Cipher Spec, Finished",
    ]
    text = "\n".join(lines)
    assert "CUCMA → CUCM10: Client Hello" in text and "CUCM10 → CUCMA: Server Hello, Certificate" in text
    assert "handshake completed in" in text and "TLSv1.0, cipher AES128-SHA." in text  # RSA key exchange: no group
    assert "subject /C=IN/ST=cisco/L=cisco/O=cisco/OU=cisco/CN=CUCM10" in text
    # CA-signed: the trust store holds the issuer, not the certificate itself
    assert "CUCMA's CallManager-trust holds its issuer CN=CA,DC=CA" in text
    assert "CUCM10's CallManager-trust holds its issuer CN=CA,DC=CA" in text
    assert "clear text" in text and "Alert" not in text


def test_one_in_four_failed_connection_says_who_sent_which_alert_and_why(one_in_four):
    conn = next(c for c in one_in_four["connections"] if c["server_node"] == "cucm-b4")
    text = "\n".join(render_connection(conn, one_in_four["lab"]))
    assert "FAILED (subject_not_allowed)" in text
    assert "Alert bad_certificate: sent by CUCM-HQ to cucm-b4" in text
    assert "X.509 Subject Name" in text
    assert "subject /CN=cucm-b4-old.branch.lab" in text
    assert "CUCM-HQ's CallManager-trust holds this certificate (cucm-b4-old.branch.lab)" in text
    # TLS 1.3: which messages were encrypted
    assert "encrypted: Encrypted Extensions, Certificate Request" in text
    assert "In TLS 1.3 everything after the Server Hello is encrypted" in text


def test_a_completed_handshake_names_its_key_exchange_group(one_in_four):
    conn = next(c for c in one_in_four["connections"] if c["server_node"] == "cucm-b1")
    text = "\n".join(render_connection(conn, one_in_four["lab"]))
    assert "TLSv1.3, cipher TLS_AES_256_GCM_SHA384, key exchange group x25519." in text


def test_run_transcripts_names_the_calls_that_used_each_connection(one_in_four):
    text = render_run_transcripts(one_in_four)
    assert text.count("TLS connection #") == len(one_in_four["connections"])
    assert "Used by call(s) 1, 5." in text
    assert render_run_transcripts({"connections": []}).startswith("no TLS connection")


def _cert(cn, self_signed=True, issuer=None):
    return {"subject": f"CN={cn}", "slash_subject": f"/CN={cn}", "cn": cn, "sans": [], "issuer": issuer or f"CN={cn}",
            "serial": "01", "not_before": "2020-01-01T00:00:00Z", "not_after": "2030-01-01T00:00:00Z",
            "key": "RSA 2048", "signature_hash": "sha256", "eku": ["serverAuth", "clientAuth"],
            "self_signed": self_signed}


def test_tls13_client_certificate_rejected_after_finished_is_learned_on_the_first_read():
    conn = {
        "id": 7, "role": "client", "local": ["127.0.0.1", 40000], "remote": ["127.0.0.2", 5061],
        "client_node": "A", "server_node": "B", "version": "TLSv1.3", "cipher": "TLS_AES_128_GCM_SHA256",
        "reason": "tls_unknown_ca", "detail": "B does not trust A", "started_at": "2026-01-01T00:00:00Z",
        "peer_chain": [_cert("b.lab")], "local_chain": [_cert("a.lab")],
        "transcript": [
            {"direction": "sent", "t_ms": 0.1, "nbytes": 300, "messages": ["Client Hello"], "encrypted_messages": [False]},
            {"direction": "received", "t_ms": 1.0, "nbytes": 2000,
             "messages": ["Server Hello", "Encrypted Extensions", "Certificate Request", "Certificate",
                          "Certificate Verify", "Finished"],
             "encrypted_messages": [False, True, True, True, True, True]},
            {"direction": "sent", "t_ms": 2.0, "nbytes": 1000, "messages": ["Certificate", "Certificate Verify", "Finished"],
             "encrypted_messages": [True, True, True]},
            {"direction": "received", "t_ms": 3.0, "nbytes": 24, "messages": ["Alert (Level: Fatal, Description: Unknown CA)"],
             "encrypted_messages": [True]},
        ],
        "alert_sent": None, "alert_received": "unknown_ca",
    }
    lab = {"nodes": [{"name": "A", "address": "127.0.0.1", "trust": ["b.lab"]},
                     {"name": "B", "address": "127.0.0.2", "trust": ["c.lab"]}]}
    text = "\n".join(render_connection(conn, lab))
    assert "Alert unknown_ca: sent by B to A" in text
    assert "only on its first read" in text
    assert "A's CallManager-trust holds this certificate (b.lab)" in text
    assert "B's CallManager-trust holds NEITHER this certificate NOR its issuer (it holds: c.lab)" in text
    assert "encrypted: Certificate, Certificate Verify, Finished" in text


@pytest.mark.parametrize("alert", ["unknown_ca", "bad_certificate", "certificate_unknown", "handshake_failure",
                                   "protocol_version", "certificate_required", "decrypt_error", "certificate_expired",
                                   "unsupported_certificate", "insufficient_security"])
def test_every_common_alert_has_its_own_sentence(alert):
    assert alert in ALERT_MEANING
    assert alert_meaning(alert) != alert_meaning("no_such_alert")
    assert len(set(ALERT_MEANING.values())) == len(ALERT_MEANING)
