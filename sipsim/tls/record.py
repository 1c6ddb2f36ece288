"""What sipsim remembers about one TLS connection (reports, JSON, traces)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from .certinfo import CertInfo
from .transcript import Flight, format_transcript


@dataclass(slots=True)
class ConnectionRecord:
    role: str                                  # "client" | "server"
    local: tuple                               # (host, port)
    remote: tuple
    started_at: str                            # ISO 8601 UTC, wall clock
    local_name: str | None = None              # e.g. "CUCM8-Publisher"
    peer_name: str | None = None
    version: str | None = None                 # "TLSv1.0", "TLSv1.2", "TLSv1.3"
    cipher: str | None = None                  # OpenSSL name: "AES128-SHA", "TLS_AES_256_GCM_SHA384"
    group: str | None = None                   # key exchange group: "x25519", "secp256r1", "X25519MLKEM768"
    peer_chain: list[CertInfo] = field(default_factory=list)   # leaf first, as the peer sent it
    local_chain: list[CertInfo] = field(default_factory=list)  # what we present, leaf first
    alert_sent: str | None = None              # first alert other than close_notify: "unknown_ca"
    alert_received: str | None = None
    close_notify_sent: bool = False
    close_notify_received: bool = False
    reason: str | None = None                  # None = handshake succeeded (see sipsim.tls.errors)
    detail: str | None = None
    handshake_ms: float | None = None
    ca_names: list[str] = field(default_factory=list)   # CertificateRequest CA list (RFC 4514)
    verify_errors: list[dict] = field(default_factory=list)  # {"errnum","depth","text","subject"}
    openssl_errors: list[str] = field(default_factory=list)
    peer_subject_ok: bool | None = None        # peer_check verdict (None = not checked)
    resumed: bool = False                      # abbreviated handshake: the peer offered a ticket/session ID
    # the transcript: a TranscriptBuilder naming flights when they are read (see `transcript`),
    # or a plain list once assigned
    _tx: Any = field(default=None, repr=False, compare=False)
    _flights: list | None = field(default=None, repr=False)
    _truncated: bool = field(default=False, repr=False)

    @property
    def transcript(self) -> list[Flight]:
        """Flights of this connection, named on first read (sipsim.tls.transcript)."""
        tx = self._tx
        if tx is not None:
            return tx.flights
        if self._flights is None:
            self._flights = []
        return self._flights

    @transcript.setter
    def transcript(self, flights: list[Flight]) -> None:
        self._tx = None
        self._flights = flights

    @property
    def transcript_truncated(self) -> bool:
        tx = self._tx
        return tx.truncated if tx is not None else self._truncated

    @transcript_truncated.setter
    def transcript_truncated(self, value: bool) -> None:
        if self._tx is not None:
            raise AttributeError("transcript_truncated follows the live transcript")
        self._truncated = value

    @property
    def ok(self) -> bool:
        return self.reason is None and self.version is not None

    @property
    def peer_leaf(self) -> CertInfo | None:
        return self.peer_chain[0] if self.peer_chain else None

    def transcript_lines(self) -> list[str]:
        return format_transcript(self.transcript)

    def certificate_ind(self) -> str:
        """The CUCM SDL trace line for this connection (SIPCertificateInd)."""
        leaf = self.peer_leaf
        subject = leaf.slash_subject if leaf else ""
        sans = ",".join(leaf.sans) if leaf else ""
        return (f"--remoteIP={self.remote[0]} --remotePort = {self.remote[1]} --X509SubjectName "
                f"{subject} --Cipher {self.cipher or ''} --SubjectAltname = {sans}")

    def to_dict(self) -> dict:
        return {
            "role": self.role,
            "local": list(self.local),
            "remote": list(self.remote),
            "started_at": self.started_at,
            "local_name": self.local_name,
            "peer_name": self.peer_name,
            "version": self.version,
            "cipher": self.cipher,
            "group": self.group,
            "peer_chain": [c.to_dict() for c in self.peer_chain],
            "local_chain": [c.to_dict() for c in self.local_chain],
            "transcript": [f.to_dict() for f in self.transcript],
            "transcript_truncated": self.transcript_truncated,
            "alert_sent": self.alert_sent,
            "alert_received": self.alert_received,
            "close_notify_sent": self.close_notify_sent,
            "close_notify_received": self.close_notify_received,
            "reason": self.reason,
            "detail": self.detail,
            "handshake_ms": None if self.handshake_ms is None else round(self.handshake_ms, 3),
            "ca_names": list(self.ca_names),
            "verify_errors": [dict(v) for v in self.verify_errors],
            "openssl_errors": list(self.openssl_errors),
            "peer_subject_ok": self.peer_subject_ok,
            "resumed": self.resumed,
        }
