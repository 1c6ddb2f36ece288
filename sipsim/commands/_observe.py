"""Flags every command that opens connections shares: --keylog, --capture, --trace."""

from __future__ import annotations

from pathlib import Path

from sipsim.errors import UserError
from sipsim.runtime.observers import KeyLogFile, Observers


def add_observer_flags(p) -> None:
    p.add_argument("--keylog", type=Path, metavar="FILE",
                   help="write every connection's TLS secrets here (NSS key log, for Wireshark); mode 0600")
    p.add_argument("--capture", type=Path, metavar="FILE.pcapng",
                   help="write every TCP connection as pcapng with the TLS secrets inside (Wireshark shows the "
                        "SIP decrypted; see docs/capture.md); mode 0600")
    p.add_argument("--trace", type=Path, metavar="DIR", help="write one CUCM-style trace file per node into DIR")


def observers_from(args) -> Observers:
    """The observers the user asked for; key material only on request."""
    observers = Observers()
    try:
        if getattr(args, "keylog", None):
            observers.add(KeyLogFile(args.keylog))
        if getattr(args, "capture", None):
            from sipsim.report.pcapng import PcapngCapture

            observers.add(PcapngCapture(args.capture))
        if getattr(args, "trace", None):
            from sipsim.report.cucm_trace import CucmTrace

            observers.add(CucmTrace(args.trace))
    except OSError as e:
        observers.close()
        raise UserError(f"{e.filename}: cannot write it: {e.strerror}") from None
    return observers
