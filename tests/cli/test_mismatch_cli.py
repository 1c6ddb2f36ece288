"""The mismatch labs end to end: each fails as its [expect] says, and says why with both sides."""

import json

import pytest

from tests.cli.test_run_cli import run_lab


@pytest.mark.parametrize("name,reason,words", [
    ("mismatch-tls-version.toml", "tls_protocol_version", ["CUCMA offers TLS 1.0 only", "CUCM10 requires TLS ≥ 1.2"]),
    ("mismatch-null-cipher.toml", "tls_no_shared_cipher", ["Authenticated", "Encrypted"]),
    ("mismatch-missing-ca.toml", "tls_unknown_ca", ["does not trust", "CallManager-trust"]),
    ("mismatch-expired.toml", "tls_cert_expired", ["expired", "2024-01-01"]),
])
def test_mismatch_lab_fails_with_its_reason_and_names_both_sides(tmp_path, port_offset, name, reason, words):
    proc, data = run_lab(name, tmp_path, port_offset)
    assert proc.returncode == 0, proc.stdout + proc.stderr  # its [expect] holds
    failed = [c for c in data["calls"] if c["outcome"] == "failed"]
    assert failed and {c["reason"] for c in failed} == {reason}
    first = failed[0]["detail"]
    for w in words:
        assert w in first, (w, first)
