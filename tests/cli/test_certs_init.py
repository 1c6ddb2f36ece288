import subprocess
import sys

from tests.conftest import ROOT, SCENARIOS


def sipsim(*args, cwd):
    return subprocess.run([sys.executable, "-m", "sipsim", *map(str, args)], capture_output=True, text=True,
                          cwd=cwd, timeout=120)


def test_init_makes_the_seed_material_and_says_what_each_node_uploads(tmp_path):
    proc = sipsim("certs", "init", SCENARIOS / "seed-000-self-signed.toml", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    d = tmp_path / "certs" / "seed-000"
    for cn in ("CUCM7-PUB.bbbburns.lab", "CUCM7-SUB1.bbbburns.lab", "CUCM8-Publisher.bbbburns.lab"):
        assert (d / f"{cn}.pem").exists() and (d / f"{cn}.key").stat().st_mode & 0o777 == 0o600
    out = proc.stdout
    # CUCM8-Publisher trusts both cluster-1 nodes; each cluster-1 node trusts only CUCM8-Publisher
    block = out[out.index("CUCM8-Publisher (CUCM8"):]
    assert "CallManager-trust:  CUCM7-PUB.bbbburns.lab.pem, CUCM7-SUB1.bbbburns.lab.pem" in block
    pub = out[out.index("CUCM7-PUB (CUCM7"):out.index("CUCM7-SUB1 (CUCM7")]
    assert "CallManager-trust:  CUCM8-Publisher.bbbburns.lab.pem" in pub
    mtime = (d / "CUCM7-PUB.bbbburns.lab.pem").stat().st_mtime_ns
    again = sipsim("certs", "init", SCENARIOS / "seed-000-self-signed.toml", cwd=tmp_path)
    assert again.returncode == 0 and "kept" in again.stdout
    assert (d / "CUCM7-PUB.bbbburns.lab.pem").stat().st_mtime_ns == mtime


def test_init_of_a_ca_lab_trusts_the_root_only(tmp_path):
    proc = sipsim("certs", "init", SCENARIOS / "seed-003-ca-signed.toml", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.count("CallManager-trust:  CA.pem") == 2
    assert (tmp_path / "certs" / "seed-003" / "ca" / "CA.pem").exists()
