"""`--keylog FILE`: NSS key log lines that are well-formed and, on their own, let tshark decrypt the SIP."""

import re
import shutil
import struct
import subprocess

import pytest

from tests.cli.test_run_cli import sipsim
from tests.conftest import SCENARIOS

LINE = re.compile(r"^(CLIENT_RANDOM|CLIENT_HANDSHAKE_TRAFFIC_SECRET|SERVER_HANDSHAKE_TRAFFIC_SECRET|"
                  r"CLIENT_TRAFFIC_SECRET_0|SERVER_TRAFFIC_SECRET_0|EXPORTER_SECRET|RSA) [0-9a-f]{16,64} [0-9a-f]+$")


def strip_secrets(src, dst):
    """Copy a little-endian pcapng without its Decryption Secrets Blocks (type 0x0A)."""
    data, out, i = src.read_bytes(), bytearray(), 0
    while i < len(data):
        btype, blen = struct.unpack_from("<II", data, i)
        if btype != 0x0000000A:
            out += data[i:i + blen]
        i += blen
    dst.write_bytes(bytes(out))


@pytest.mark.skipif(shutil.which("tshark") is None, reason="needs tshark")
def test_the_keylog_alone_decrypts_the_seed_lab(tmp_path):
    keylog, capture = tmp_path / "keys.log", tmp_path / "lab.pcapng"
    # Wireshark decodes SIP over TLS on port 5061 only: keep the seed's ports, move it to unused addresses
    text = (SCENARIOS / "seed-000-self-signed.toml").read_text()
    for old, new in (("127.0.0.11", "127.0.9.11"), ("127.0.0.12", "127.0.9.12"), ("127.0.0.21", "127.0.9.21")):
        text = text.replace(old, new)
    path = tmp_path / "lab.toml"
    path.write_text(text)
    proc = sipsim("run", path, "--keylog", keylog, "--capture", capture, "--quiet", cwd=tmp_path)
    if "cannot listen" in proc.stderr:
        pytest.skip("port 5061 on 127.0.9.x is in use")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    lines = keylog.read_text().splitlines()
    assert lines and all(LINE.match(line) for line in lines), [x for x in lines if not LINE.match(x)][:3]
    assert keylog.stat().st_mode & 0o777 == 0o600
    bare = tmp_path / "bare.pcapng"
    strip_secrets(capture, bare)

    def invites(*extra):
        out = subprocess.run(["tshark", "-r", str(bare), *extra, "-Y", "sip.Method == \"INVITE\"", "-T", "fields",
                              "-e", "sip.Call-ID"], capture_output=True, text=True, timeout=60,
                             env={"WIRESHARK_CONFIG_DIR": str(tmp_path), "PATH": "/usr/bin:/bin"})
        return [x for x in out.stdout.split() if x]

    assert invites() == []  # without secrets nothing decrypts
    assert len(invites("-o", f"tls.keylog_file:{keylog}")) == 6  # with the key log alone: every INVITE
