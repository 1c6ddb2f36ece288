"""Helpers for the PKI tests: the openssl CLI and small certificate factories."""

from __future__ import annotations

import shutil
import subprocess

OPENSSL = shutil.which("openssl") or "/usr/bin/openssl"


def openssl(*args: str, input: bytes | None = None, check: bool = True) -> subprocess.CompletedProcess:
    """Run the openssl CLI; returns the CompletedProcess (text decoded)."""
    proc = subprocess.run([OPENSSL, *args], input=input, capture_output=True, timeout=60)
    if check and proc.returncode != 0:
        raise AssertionError(f"openssl {' '.join(args)} failed: {proc.stderr.decode(errors='replace')}")
    return proc
