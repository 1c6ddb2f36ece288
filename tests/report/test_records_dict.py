"""The report's call records: the hand-written to_dict gives exactly what dataclasses.asdict would."""

from dataclasses import asdict

from sipsim.report.records import Attempt, CallRecord


def test_call_record_to_dict_matches_asdict_and_copies():
    rec = CallRecord(7, "7131001", "8511001", pattern="851XXXX", trunk="To-CUCM8", status=200,
                     outcome="answered", peer_san=["cucm8.lab"], setup_ms=12.5,
                     attempts=[Attempt("10.1.1.1:5061", "CUCM8-PUB", "connect_refused", "refused", 1.5, "refuse", 0),
                               Attempt("10.1.1.2:5061", "CUCM8-SUB1", None, None, 9.0)],
                     messages=[{"t_ms": 0.0, "dir": "out", "line": "INVITE sip:8511001@cucm8 SIP/2.0"}])
    d = rec.to_dict()
    assert d == asdict(rec)
    assert list(d) == list(asdict(rec))  # same key order in the JSON report
    d["peer_san"].append("other")
    d["messages"][0]["line"] = "changed"
    assert rec.peer_san == ["cucm8.lab"] and rec.messages[0]["line"].startswith("INVITE")
