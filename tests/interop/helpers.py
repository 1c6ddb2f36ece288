"""Shared by the interop tests: a lab PKI made with `sipsim certs`, sipsim and peer processes on
loopback with bounded waits, and their logs."""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from tests.conftest import ROOT

PY = [sys.executable, "-m", "sipsim"]
A_ADDR, B_ADDR = "127.0.0.11", "127.0.0.21"


def port_for(port_offset: int, base: int) -> int:
    return base + port_offset % 1000


def find_program(name: str) -> str | None:
    """``name`` on PATH, or in an sbin directory a non-root PATH often lacks (Debian's kamailio)."""
    return shutil.which(name) or shutil.which(name, path="/usr/sbin:/usr/local/sbin:/sbin")


def sipsim(*args, timeout: float = 60, cwd: Path = ROOT) -> subprocess.CompletedProcess:
    """Run one sipsim command to its end (bounded), output as text."""
    return subprocess.run(PY + [str(a) for a in args], cwd=cwd, capture_output=True, text=True, timeout=timeout)


def out(proc: subprocess.CompletedProcess) -> str:
    return f"exit {proc.returncode}\n--- stdout\n{proc.stdout}\n--- stderr\n{proc.stderr}"


@dataclass
class Identity:
    cn: str
    cert: Path
    key: Path

    def flags(self) -> list[str]:
        return ["--cert", str(self.cert), "--key", str(self.key)]


@dataclass
class LabPKI:
    """A lab CA that signs every identity (the simplest trust: everyone trusts the root), and a second,
    unrelated CA to make certificates nobody trusts."""

    ca: Path
    other_ca: Path
    ids: dict[str, Identity]

    def __getitem__(self, cn: str) -> Identity:
        return self.ids[cn]


def make_pki(directory: Path, names: list[str], other_names: list[str] = ()) -> LabPKI:
    """`sipsim certs ca`, `certs csr` and `certs sign`, as an administrator would run them. File names
    have no spaces (Kamailio's tls.cfg cannot quote a path)."""
    directory.mkdir(parents=True, exist_ok=True)

    def run(*args):
        proc = sipsim("certs", *args, timeout=120, cwd=directory)
        assert proc.returncode == 0, out(proc)

    ids = {}
    for ca_cn, members in (("interop-ca", names), ("other-ca", other_names)):
        run("ca", "--cn", ca_cn, "--out", "ca")
        for cn in members:
            run("csr", "--cn", cn, "--out", "csr")
            run("sign", f"csr/{cn}.csr", "--ca-cert", f"ca/{ca_cn}.pem", "--ca-key", f"ca/{ca_cn}.key",
                "--out", f"id/{cn}.pem")
            key = directory / "id" / f"{cn}.key"
            shutil.copyfile(directory / "csr" / f"{cn}.key", key)
            os.chmod(key, 0o600)
            ids[cn] = Identity(cn, directory / "id" / f"{cn}.pem", key)
    return LabPKI(directory / "ca" / "interop-ca.pem", directory / "ca" / "other-ca.pem", ids)


class Background:
    """A long-running process (sipsim serve, kamailio, openssl s_server) with its output in a file;
    stopped (its whole process group) when the ``with`` block ends."""

    def __init__(self, cmd: list[str], log: Path, *, cwd: Path = ROOT, stdin=subprocess.DEVNULL):
        self.cmd, self.log = [str(c) for c in cmd], log
        self._fh = open(log, "wb")
        self.proc = subprocess.Popen(self.cmd, cwd=cwd, stdout=self._fh, stderr=subprocess.STDOUT, stdin=stdin,
                                     start_new_session=True)

    def text(self) -> str:
        return self.log.read_bytes().decode(errors="replace")

    def wait_for_text(self, needle: str, timeout: float = 15) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if needle in self.text():
                return
            if self.proc.poll() is not None:
                break
            time.sleep(0.05)
        raise AssertionError(f"{' '.join(self.cmd[:3])}…: no {needle!r} within {timeout} s "
                             f"(exit {self.proc.poll()})\n{self.text()}")

    def wait_for_port(self, host: str, port: int, timeout: float = 15) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                break
            try:
                with socket.create_connection((host, port), timeout=0.5):
                    return
            except OSError:
                time.sleep(0.1)
        raise AssertionError(f"{self.cmd[0]}: nothing listens on {host}:{port} after {timeout} s "
                             f"(exit {self.proc.poll()})\n{self.text()}")

    def wait_for_lines(self, needle: str, count: int, timeout: float = 10) -> list[str]:
        """Wait until ``count`` lines of the log contain ``needle``; return them (maybe fewer)."""
        deadline = time.monotonic() + timeout
        while True:
            lines = [line for line in self.text().splitlines() if needle in line]
            if len(lines) >= count or time.monotonic() > deadline:
                return lines
            time.sleep(0.05)

    def stop(self) -> str:
        if self.proc.poll() is None:
            try:
                os.killpg(self.proc.pid, signal.SIGTERM)
            except ProcessLookupError:
                pass
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait(timeout=10)
        self._fh.close()
        return self.text()

    def __enter__(self) -> Background:
        return self

    def __exit__(self, *exc) -> None:
        self.stop()


def serve(pki: LabPKI, ident: str, address: str, port: int, log: Path, *extra: str) -> Background:
    """`sipsim serve` on address:port with ``ident``'s certificate, trusting the lab CA; waits until it listens."""
    bg = Background(PY + ["serve", "--listen", f"{address}:{port}", *pki[ident].flags(), "--trust", str(pki.ca),
                          "--duration", "90", *extra], log)
    try:
        bg.wait_for_text(f"listening on {address}:{port}")
    except BaseException:
        bg.stop()
        raise
    return bg


def is_listening(host: str, port: int) -> bool:
    """Is a TCP socket listening on host:port (IPv4)? Read from /proc/net/tcp, without connecting — a
    probe connection would use up a peer's only accept (openssl s_server -naccept 1)."""
    want = "".join(f"{int(b):02X}" for b in reversed(host.split("."))) + f":{port:04X}"
    try:
        lines = Path("/proc/net/tcp").read_text().splitlines()[1:]
    except OSError:
        return False
    return any(f[1] == want and f[3] == "0A" for f in (line.split() for line in lines))


def version_line(cmd: list[str]) -> str:
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=10)
    except (OSError, subprocess.TimeoutExpired) as e:
        return f"{cmd[0]}: {e}"
    return ((proc.stdout or proc.stderr).strip().splitlines() or ["?"])[0]
