"""`sipsim serve --max-connections/--max-handshakes/--max-message-bytes`: the flags reach the node."""

import socket
import subprocess
import sys

from tests.conftest import ROOT, SCENARIOS

PY = [sys.executable, "-m", "sipsim"]


def test_serve_max_connections_flag_closes_the_next_connection_at_once(tmp_path, port_offset):
    port = 5060 + port_offset
    cmd = PY + ["serve", str(SCENARIOS / "non-secure-tcp.toml"), "--node", "CUCM-A", "--port-offset",
                str(port_offset), "--duration", "20", "--max-connections", "2", "--max-message-bytes", "2048"]
    proc = subprocess.Popen(cmd, cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                            env={"PYTHONPATH": str(ROOT), "PATH": "/usr/bin:/bin"})
    try:
        line = proc.stdout.readline()
        assert f"listening on 127.0.0.91:{port} (TCP, Non Secure" in line, line
        idle = [socket.create_connection(("127.0.0.91", port), timeout=5, source_address=("127.0.0.92", 0))
                for _ in range(2)]
        extra = socket.create_connection(("127.0.0.91", port), timeout=5, source_address=("127.0.0.92", 0))
        assert extra.recv(100) == b""  # accepted and closed at once
        # a message over --max-message-bytes on an accepted connection: 413, then closed
        for s in idle:
            s.close()
        extra.close()
        import time

        time.sleep(0.2)
        s = socket.create_connection(("127.0.0.91", port), timeout=5, source_address=("127.0.0.92", 0))
        s.sendall(b"OPTIONS sip:127.0.0.91 SIP/2.0\r\nVia: SIP/2.0/TCP 127.0.0.92:5060;branch=z9hG4bK-1\r\n"
                  b"From: <sip:x@127.0.0.92>;tag=1\r\nTo: <sip:127.0.0.91>\r\nCall-ID: big@x\r\n"
                  b"CSeq: 1 OPTIONS\r\nContent-Length: 5000\r\n\r\n" + b"x" * 5000)
        got = b""
        while chunk := s.recv(65536):
            got += chunk
        assert got.startswith(b"SIP/2.0 413 "), got[:200]
        s.close()
    finally:
        proc.terminate()
        out = proc.communicate(timeout=10)[0]
    assert "closed at once: 2 connections open, max_connections is 2" in out, out
    assert "message_too_large" in out and "Traceback" not in out, out
