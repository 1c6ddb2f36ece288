"""`sipsim run --trace DIR`: one CUCM-style SDI/SDL trace file per node, as the seeds show them.

Lines (seed 003's format, `NNNNNNNN.NNN |HH:MM:SS.mmm |AppInfo |…`):

- the digit analysis block of every call a node places (`|PretransformCallingPartyNumber=`, …);
- `//SIP/SIPHandler/ccbId=0/scbId=0/SIP_PROCESS_ENQUEUE: createConnMsg tls_security=3` and
  `sipConnectionManagerProcessConnCreated: … addr=…, port=5061, connid=N, transport=TLS Over TCP` when
  a node opens a connection;
- the SDL signal `SIPCertificateInd … connIdx= N --remoteIP=… --X509SubjectName … --Cipher …` when the
  TLS layer hands the peer's identity to SIP (both sides of a connection);
- every SIP message in and out: `SIPtcp - wait_SdlSPISignal: Outgoing SIP TCP message to IP on port P
  index N` (or `Incoming … from …`) followed by the message.

A connection keeps one index (`connid`/`connIdx`/`index`) per node throughout the file.
"""

from __future__ import annotations

import datetime
import re
from pathlib import Path
from typing import Any

from sipsim.runtime.observers import Observer

_SAFE = re.compile(r"[^A-Za-z0-9._-]+")


def clock(t: float) -> str:
    """HH:MM:SS.mmm in local time, as CUCM writes it."""
    d = datetime.datetime.fromtimestamp(t)
    return d.strftime("%H:%M:%S.") + f"{d.microsecond // 1000:03d}"


class CucmTrace(Observer):
    def __init__(self, directory):
        self.dir = Path(directory)
        self.dir.mkdir(parents=True, exist_ok=True)
        self._files: dict[str, Any] = {}
        self._seq: dict[str, int] = {}
        self._net: dict[str, int] = {}
        self._next_idx: dict[str, int] = {}
        self._by_port: dict[tuple[str, int], int] = {}   # (node, local port) -> index (outbound)
        self._by_conn: dict[tuple[str, int], int] = {}   # (node, runtime connection id) -> index

    def path(self, node: str) -> Path:
        return self.dir / f"{_SAFE.sub('_', node)}.txt"

    # writing ------------------------------------------------------------------------------------
    def _write(self, node: str, t: float, kind: str, text: str) -> None:
        f = self._files.get(node)
        if f is None:
            f = self._files[node] = open(self.path(node), "w", encoding="utf-8")
            self._seq[node] = 4530000
        self._seq[node] += 1
        f.write(f"{self._seq[node]:08d}.000 |{clock(t)} |{kind} |{text}\n")
        f.flush()

    def _index(self, node: str) -> int:
        n = self._next_idx.get(node, 11) + 1  # the seeds show connIdx 12 and 19: start at 12
        self._next_idx[node] = n
        return n

    def _conn(self, node: str, conn_id: int, local_port: int | None = None) -> int:
        key = (node, conn_id)
        if key not in self._by_conn:
            if local_port is not None and (node, local_port) in self._by_port:
                self._by_conn[key] = self._by_port[(node, local_port)]
            else:
                self._by_conn[key] = self._index(node)
        return self._by_conn[key]

    # the observer interface ---------------------------------------------------------------------
    def digit_analysis(self, node, t, calling, called, pattern, partition) -> None:
        self._write(node, t, "AppInfo",
                    f'Digit analysis: match(pi="2", fqcn="{calling}", cn="{calling}",plv="5", pss="{partition or ""}", '
                    f'TodFilteredPss="", dd="{called}",dac="0")')
        self._write(node, t, "AppInfo", "Digit analysis: analysis results")
        block = (f"|PretransformCallingPartyNumber={calling}\n"
                 f"|CallingPartyNumber={calling}\n"
                 f"|DialingPartition={partition or ''}\n"
                 f"|DialingPattern={pattern or ''}\n"
                 f"|FullyQualifiedCalledPartyNumber={called}")
        if pattern is None:
            block += "\n|no route pattern matches: unallocated number"
        self._write(node, t, "AppInfo", block)

    def connection_created(self, node, t, conn_idx, remote, tls_security) -> None:
        idx = self._index(node)
        self._by_port[(node, conn_idx)] = idx  # the runtime passes our local port
        transport = "TLS Over TCP" if tls_security else "TCP"
        self._write(node, t, "AppInfo",
                    f"//SIP/SIPHandler/ccbId=0/scbId=0/SIP_PROCESS_ENQUEUE: createConnMsg tls_security={tls_security}")
        self._write(node, t, "AppInfo",
                    f"//SIP/Stack/Transport/0x0/sipConnectionManagerProcessConnCreated: gConnTab=0xb444c150, "
                    f"addr={remote[0]}, port={remote[1]}, connid={idx}, transport={transport}")

    def certificate_ind(self, node, t, conn_idx, remote, record) -> None:
        local_port = record.local[1] if record is not None and getattr(record, "role", "") == "client" else None
        idx = self._conn(node, conn_idx, local_port)
        tail = record.certificate_ind() if record is not None else \
            f"--remoteIP={remote[0]} --remotePort = {remote[1]} --X509SubjectName  --Cipher  --SubjectAltname ="
        self._write(node, t, "SdlSig",
                    f"SIPCertificateInd |wait |SIPHandler(1,100,72,1) |SIPTcp(1,100,64,1) |1,100,17,11.3^*** "
                    f"|[T:N-H:0,N:1,L:0,V:0,Z:0,D:0] connIdx= {idx} {tail}")

    def sip_message(self, node, t, direction, conn_idx, remote, data) -> None:
        idx = self._conn(node, conn_idx)
        self._net[node] = self._net.get(node, 130) + 1
        if direction == "out":
            head = f"SIPtcp - wait_SdlSPISignal: Outgoing SIP TCP message to {remote[0]} on port {remote[1]} index {idx}"
        else:
            head = f"SIPtcp - wait_SdlSPISignal: Incoming SIP TCP message from {remote[0]} on port {remote[1]} index {idx}"
        text = data.decode("utf-8", "replace") if isinstance(data, (bytes, bytearray)) else str(data)
        text = text.replace("\r\n", "\n").rstrip("\n")
        self._write(node, t, "AppInfo", f"{head}\n[{self._net[node]},NET]\n{text}")

    def close(self) -> None:
        for f in self._files.values():
            f.close()
        self._files.clear()
