"""`sipsim certs ...` end to end through the real CLI entry point (sipsim.cli.main)."""

import argparse
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from sipsim.commands import certs as certs_cmd
from sipsim.pki import files, issue, keys

OPENSSL = "/usr/bin/openssl"


def sipsim(capsys, *argv):
    from sipsim.cli import main

    code = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return code, out, err


def openssl(*args, check=True):
    p = subprocess.run([OPENSSL, *map(str, args)], capture_output=True, text=True, timeout=60)
    if check:
        assert p.returncode == 0, p.stderr
    return p


def test_parser_convention():
    parser = argparse.ArgumentParser()
    sub = parser.add_subparsers()
    certs_cmd.add_parser(sub)
    args = parser.parse_args(["certs", "show", "x.pem"])
    assert args.func is certs_cmd.run
    args = parser.parse_args(["certs"])
    assert args.func is not certs_cmd.run  # prints help, exit 2


def test_self_signed_show_verify(tmp_path, capsys):
    code, out, err = sipsim(capsys, "certs", "self-signed", "--cn", "CUCM10", "--san", "cucm10.lab",
                            "--subject", "OU=cisco,O=cisco,L=cisco,ST=cisco,C=IN", "--key", "ec-p256",
                            "--out", tmp_path)
    assert code == 0, err
    cert, key = tmp_path / "CUCM10.pem", tmp_path / "CUCM10.key"
    assert stat.S_IMODE(key.stat().st_mode) == 0o600
    assert f"wrote {key} (EC P-256 private key, mode 0600)" in out
    assert "CN=CUCM10, OU=cisco, O=cisco, L=cisco, ST=cisco, C=IN" in out
    text = openssl("x509", "-in", cert, "-noout", "-text").stdout
    assert "DNS:cucm10.lab" in text and "IPSec End System" in text

    code, out, _ = sipsim(capsys, "certs", "show", cert)
    assert code == 0
    assert "Subject Name: CN=CUCM10, OU=cisco, O=cisco, L=cisco, ST=cisco, C=IN" in out
    assert "Usage oids: 1.3.6.1.5.5.7.3.1, 1.3.6.1.5.5.7.3.2, 1.3.6.1.5.5.7.3.5," in out

    code, out, _ = sipsim(capsys, "certs", "verify", cert, "--trust", cert, "--purpose", "server")
    assert code == 0 and out.startswith("OK: CN=CUCM10")
    code, out, _ = sipsim(capsys, "certs", "verify", cert, "--trust", cert, "--at", "2099-01-01")
    assert code == 1 and out.startswith("FAIL (expired): CN=CUCM10")
    # existing key is not overwritten without --force
    code, _, err = sipsim(capsys, "certs", "self-signed", "--cn", "CUCM10", "--out", tmp_path)
    assert code == 2 and "already exists: pass --force" in err and len(err.strip().splitlines()) == 1
    code, _, _ = sipsim(capsys, "certs", "self-signed", "--cn", "CUCM10", "--out", tmp_path, "--force")
    assert code == 0


def test_expired_on_purpose(tmp_path, capsys):
    code, out, err = sipsim(capsys, "certs", "self-signed", "--cn", "old", "--not-after", "2025-01-01",
                            "--out", tmp_path)
    assert code == 0, err
    c = files.load_certificate(tmp_path / "old.pem")
    assert c.not_valid_after_utc.year == 2025
    code, out, _ = sipsim(capsys, "certs", "verify", tmp_path / "old.pem", "--trust", tmp_path / "old.pem")
    assert code == 1 and "(expired)" in out


def test_ca_csr_sign_verify_seed_003_flow(tmp_path, capsys):
    # the CA
    code, out, err = sipsim(capsys, "certs", "ca", "--cn", "CA", "--subject", "DC=CA", "--out", tmp_path / "ca")
    assert code == 0, err
    ca_pem, ca_key = tmp_path / "ca" / "CA.pem", tmp_path / "ca" / "CA.key"
    assert "CallManager-trust" in out
    # CUCM 10.5 style CSR: 1024 bits, SHA1
    code, out, err = sipsim(capsys, "certs", "csr", "--cn", "CUCM10", "--san", "CUCM10.lab", "--key", "rsa1024",
                            "--hash", "sha1", "--subject", "OU=cisco,O=cisco,L=cisco,ST=cisco,C=IN",
                            "--out", tmp_path / "csr")
    assert code == 0, err
    csr = tmp_path / "csr" / "CUCM10.csr"
    assert stat.S_IMODE((tmp_path / "csr" / "CUCM10.key").stat().st_mode) == 0o600
    assert "RSA 1024, SHA-1; SANs CUCM10.lab" in out
    openssl("req", "-in", csr, "-noout", "-verify")
    # the CA signs it
    signed = tmp_path / "CUCM10.pem"
    code, out, err = sipsim(capsys, "certs", "sign", csr, "--ca-cert", ca_pem, "--ca-key", ca_key,
                            "--days", "365", "--hash", "sha1", "--out", signed)
    assert code == 0, err
    assert "issuer CN=CA, DC=CA" in out and "SANs CUCM10.lab" in out
    openssl("verify", "-CAfile", ca_pem, "-purpose", "sslserver", signed)
    code, out, _ = sipsim(capsys, "certs", "verify", signed, "--trust", ca_pem, "--purpose", "client")
    assert code == 0
    assert "warning: CN=CUCM10, OU=cisco, O=cisco, L=cisco, ST=cisco, C=IN is signed with SHA-1" in out
    assert "1024-bit RSA key" in out
    code, out, _ = sipsim(capsys, "certs", "show", signed)
    assert "SignatureAlgorithm: SHA1withRSA (1.2.840.113549.1.1.5)" in out and "Issuer Name: CN=CA, DC=CA" in out
    # untrusted: the self-signed cert of another node is not the CA
    code, _, _ = sipsim(capsys, "certs", "self-signed", "--cn", "CUCMA", "--out", tmp_path / "a")
    code, out, _ = sipsim(capsys, "certs", "verify", signed, "--trust", tmp_path / "a" / "CUCMA.pem")
    assert code == 1
    assert out.splitlines()[0] == ("FAIL (unknown_issuer): CN=CUCM10, OU=cisco, O=cisco, L=cisco, ST=cisco, C=IN was issued "
                           "by CN=CA, DC=CA, which is not in the trust files given: upload the CA's root certificate "
                           "as CallManager-trust")


def test_intermediate_ca_and_chain(tmp_path, capsys):
    assert sipsim(capsys, "certs", "ca", "--cn", "Root", "--out", tmp_path)[0] == 0
    code, _, err = sipsim(capsys, "certs", "ca", "--cn", "Inter", "--parent-cert", tmp_path / "Root.pem",
                          "--parent-key", tmp_path / "Root.key", "--out", tmp_path)
    assert code == 0, err
    assert sipsim(capsys, "certs", "csr", "--cn", "node", "--out", tmp_path)[0] == 0
    code, _, err = sipsim(capsys, "certs", "sign", tmp_path / "node.csr", "--ca-cert", tmp_path / "Inter.pem",
                          "--ca-key", tmp_path / "Inter.key", "--chain", "--out", tmp_path / "node-full.pem")
    assert code == 0, err
    assert len(files.load_certificates(tmp_path / "node-full.pem")) == 2
    code, out, _ = sipsim(capsys, "certs", "verify", tmp_path / "node-full.pem", "--trust", tmp_path / "Root.pem")
    assert code == 0, out
    code, out, _ = sipsim(capsys, "certs", "verify", tmp_path / "node-full.pem", "--trust", tmp_path / "Inter.pem")
    assert code == 1
    code, out, _ = sipsim(capsys, "certs", "verify", tmp_path / "node-full.pem", "--trust", tmp_path / "Inter.pem",
                          "--partial-chain")
    assert code == 0


def test_import_prints_formats(tmp_path, capsys):
    assert sipsim(capsys, "certs", "self-signed", "--cn", "CUCM8-Publisher.bbbburns.lab", "--out", tmp_path)[0] == 0
    pem = tmp_path / "CUCM8-Publisher.bbbburns.lab.pem"
    key = tmp_path / "CUCM8-Publisher.bbbburns.lab.key"
    der = tmp_path / "CallManager.der"
    openssl("x509", "-in", pem, "-outform", "der", "-out", der)
    p7 = tmp_path / "chain.p7b"
    openssl("crl2pkcs7", "-nocrl", "-certfile", pem, "-out", p7)
    pfx = tmp_path / "node.pfx"
    openssl("pkcs12", "-export", "-in", pem, "-inkey", key, "-passout", "pass:pw", "-out", pfx)
    out_dir = tmp_path / "imported"
    code, out, err = sipsim(capsys, "certs", "import", der, p7, pfx, "--password", "pw", "--out", out_dir)
    assert code == 0, err
    lines = out.strip().splitlines()
    assert lines[0].startswith(f"{der}: DER certificate, 1 certificate(s): wrote {out_dir}/CUCM8-Publisher.bbbburns.lab.pem")
    assert lines[1].startswith(f"{p7}: PKCS#7 (PEM), 1 certificate(s)")
    assert lines[2].startswith(f"{pfx}: PKCS#12, 1 certificate(s)") and lines[2].endswith(".key")
    assert stat.S_IMODE((out_dir / "CUCM8-Publisher.bbbburns.lab.key").stat().st_mode) == 0o600
    # show works on PKCS#12 too
    code, out, _ = sipsim(capsys, "certs", "show", pfx, "--password", "pw")
    assert code == 0 and "CN=CUCM8-Publisher.bbbburns.lab" in out
    code, _, err = sipsim(capsys, "certs", "import", pfx, "--password", "bad", "--out", out_dir)
    assert code == 2 and err.strip() == f"sipsim: {pfx}: wrong password for the PKCS#12 file (or the file is damaged)"


@pytest.mark.parametrize("argv, needle", [
    (["certs", "self-signed", "--cn", "x", "--key", "dsa", "--out", "{d}"], "unknown key type 'dsa': use one of rsa1024"),
    (["certs", "self-signed", "--cn", "x", "--hash", "md5", "--out", "{d}"], "unknown hash 'md5'"),
    (["certs", "self-signed", "--cn", "x", "--subject", "C=India", "--out", "{d}"], "two-letter"),
    (["certs", "show", "{d}/missing.pem"], "does not exist"),
    (["certs", "verify", "{d}/missing.pem", "--trust", "{d}/missing.pem"], "does not exist"),
    (["certs", "verify", "{d}/junk.pem", "--trust", "{d}/junk.pem"], "neither a PEM nor a DER certificate"),
    (["certs", "import", "{d}/junk.pem"], "junk.pem is not a certificate"),
    (["certs", "sign", "{d}/junk.pem", "--ca-cert", "{d}/junk.pem", "--ca-key", "{d}/junk.pem", "--out", "{d}/x"],
     "not a certificate signing request"),
    (["certs", "verify", "{d}/junk.pem", "--trust", "{d}/junk.pem", "--at", "someday"], "cannot read the time"),
    (["certs", "ca", "--cn", "I", "--parent-cert", "{d}/junk.pem", "--out", "{d}"], "--parent-key"),
])
def test_errors_one_line_exit_2(tmp_path, capsys, argv, needle):
    (tmp_path / "junk.pem").write_bytes(b"junk junk")
    code, out, err = sipsim(capsys, *[a.format(d=tmp_path) for a in argv])
    assert code == 2
    assert needle in err, err
    assert len(err.strip().splitlines()) == 1 and "Traceback" not in err


def test_ca_key_readable_by_others_refused(tmp_path, capsys):
    assert sipsim(capsys, "certs", "ca", "--cn", "CA", "--out", tmp_path)[0] == 0
    assert sipsim(capsys, "certs", "csr", "--cn", "n", "--out", tmp_path)[0] == 0
    (tmp_path / "CA.key").chmod(0o644)
    code, _, err = sipsim(capsys, "certs", "sign", tmp_path / "n.csr", "--ca-cert", tmp_path / "CA.pem",
                          "--ca-key", tmp_path / "CA.key", "--out", tmp_path / "n.pem")
    assert code == 2 and f"run chmod 600 {tmp_path / 'CA.key'}" in err


def test_python_m_sipsim_no_traceback(tmp_path):
    junk = tmp_path / "junk.p12"
    junk.write_bytes(b"\x00garbage")
    p = subprocess.run([sys.executable, "-m", "sipsim", "certs", "import", str(junk)], capture_output=True,
                       text=True, cwd=Path(__file__).resolve().parents[2], timeout=60)
    assert p.returncode == 2
    assert p.stderr.strip().startswith(f"sipsim: {junk} is not a certificate") and "Traceback" not in p.stderr
