"""Non Secure (plain TCP) connections are in --capture too: tshark reads their SIP directly."""

import shutil
import subprocess

import pytest

from tests.cli.test_run_cli import sipsim
from tests.conftest import SCENARIOS


@pytest.mark.skipif(shutil.which("tshark") is None, reason="needs tshark")
def test_a_non_secure_lab_capture_shows_its_sip(tmp_path):
    text = (SCENARIOS / "non-secure-tcp.toml").read_text()
    for old, new in (("127.0.0.91", "127.0.9.91"), ("127.0.0.92", "127.0.9.92")):  # keep port 5060, free addresses
        text = text.replace(old, new)
    path = tmp_path / "tcp.toml"
    path.write_text(text)
    capture = tmp_path / "tcp.pcapng"
    proc = sipsim("run", path, "--capture", capture, "--quiet", cwd=tmp_path)
    if "cannot listen" in proc.stderr:
        pytest.skip("port 5060 on 127.0.9.x is in use")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    out = subprocess.run(["tshark", "-r", str(capture), "-Y", "sip", "-T", "fields", "-e", "sip.Method",
                          "-e", "sip.Status-Code"], capture_output=True, text=True, timeout=60,
                         env={"WIRESHARK_CONFIG_DIR": str(tmp_path), "PATH": "/usr/bin:/bin"}).stdout
    methods = [line.split("\t")[0] for line in out.splitlines()]
    assert methods.count("INVITE") == 4 and methods.count("BYE") == 4 and methods.count("ACK") == 4
