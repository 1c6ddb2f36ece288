"""Why a TLS connection failed: `TLSFailure(reason, detail, record)`.

`reason` is a stable code (reports, JSON, docs/reasons.md); `detail` is one sentence naming the
peer (address and, when known, certificate subject), what OpenSSL said (verify error or alert) and
the fix. `TLSFailure` is a `trio.BrokenResourceError`, so code that treats any broken transport
alike keeps working.

Reason codes:

- ``tls_unknown_ca`` — a certificate chain is not trusted. Either *we* rejected the peer's chain
  (OpenSSL verify error 2, 18, 19, 20, 21, 24, 27 or a bad signature: its certificate or CA is not
  in our CallManager-trust store), or the *peer* rejected ours (we received alert unknown_ca,
  bad_certificate or certificate_unknown). The detail says who rejected whom and what to upload
  where. Note: a CUCM-like peer whose X.509 Subject Name list lacks our name also answers
  bad_certificate by default; the sentence mentions both possibilities for that alert.
- ``tls_no_peer_cert`` — the server requires a client certificate and the client sent none
  (server side: "peer did not return a certificate"; client side: alert handshake_failure or
  certificate_required after we sent no certificate).
- ``tls_cert_expired`` — a certificate in the chain is past notAfter (verify error 10), or the peer
  told us ours is (alert certificate_expired).
- ``tls_cert_not_yet_valid`` — a certificate is before notBefore (verify error 9).
- ``tls_bad_eku`` — the certificate may not be used for this purpose (verify error 26: the extended
  key usage lacks serverAuth/clientAuth), or the peer said so (alert unsupported_certificate).
- ``tls_protocol_version`` — no TLS version in common (alert protocol_version, "unsupported
  protocol"), e.g. a TLS 1.0-only CUCM 9 against a peer whose minimum is 1.2.
- ``tls_no_shared_cipher`` — no cipher suite in common ("no shared cipher", or alert
  handshake_failure / insufficient_security before the Server Hello), e.g. Authenticated mode
  (NULL-SHA) against an Encrypted-only peer.
- ``tls_no_shared_group`` — no key exchange group in common: a TLS 1.3 server found none of its
  ``groups`` among the client's (OpenSSL: "no suitable key share"; it sends alert
  handshake_failure), e.g. a node limited to P-384 against one limited to P-256. The client only
  receives handshake_failure before any Server Hello, which is also what a cipher mismatch looks
  like: it reports ``tls_no_shared_cipher`` and its detail names both causes (in a lab run the
  server's own verdict replaces it). Under TLS 1.2 no common group only removes the ECDHE suites:
  the handshake uses another suite, or fails as ``tls_no_shared_cipher``.
- ``subject_not_allowed`` — the chain verified but the peer's certificate names are not in the
  X.509 Subject Name list (our `peer_check` said so). On the wire we send a fatal
  **bad_certificate** alert: sipsim sets OpenSSL's verify error X509_V_ERR_CERT_REJECTED, which
  OpenSSL maps to bad_certificate (a plain "return 0" from a verify callback would send
  internal_error).
- ``tls_handshake_failed`` — anything else: the peer closed the connection during the handshake,
  the peer did not speak TLS (e.g. plaintext SIP on the TLS port), an unexpected alert or error.
- ``timeout`` — the handshake did not finish within ``handshake_timeout`` seconds (e.g. a peer that
  accepts the TCP connection and sends nothing).
"""

from __future__ import annotations

import trio

from .config import DEFAULT_GROUPS

REASONS = {
    "tls_unknown_ca": "certificate chain not trusted (by us or by the peer)",
    "tls_no_peer_cert": "server required a client certificate; the client sent none",
    "tls_cert_expired": "a certificate is expired",
    "tls_cert_not_yet_valid": "a certificate is not valid yet",
    "tls_bad_eku": "a certificate's extended key usage does not allow TLS server/client use",
    "tls_protocol_version": "no TLS version in common",
    "tls_no_shared_cipher": "no cipher suite in common",
    "tls_no_shared_group": "no key exchange group in common",
    "subject_not_allowed": "certificate trusted but its names are not in the X.509 Subject Name list",
    "tls_handshake_failed": "the handshake failed for another reason (peer closed, not TLS, …)",
    "timeout": "the handshake did not finish in time",
}


def _addr(pair) -> str:
    if not pair:
        return "?"
    host, port = pair[0], pair[1]
    return f"[{host}]:{port}" if ":" in str(host) else f"{host}:{port}"


def refine(reason: str, detail: str, record) -> tuple[str, str]:
    """The reason and detail to report for a failure the TLS engine classified as ``reason``: the
    key exchange group cases its classification (by OpenSSL errors and alerts) folds into others.
    ``record``: the connection's `ConnectionRecord` (role, names, addresses, alerts, OpenSSL errors)."""
    if record is None:
        return reason, detail
    errs = " ".join(getattr(record, "openssl_errors", None) or ()).lower()
    if reason in ("tls_handshake_failed", "tls_no_shared_cipher") and "no suitable key share" in errs:
        who = record.local_name or f"this node ({_addr(record.local)})"
        peer = record.peer_name or _addr(record.remote)
        if record.peer_name:
            peer = f"{peer} ({_addr(record.remote)})"
        sent = f", alert {record.alert_sent} sent" if record.alert_sent else ""
        refused = f"{who} accepts none of the groups {peer} offered" if record.role == "server" \
            else "the server accepts none of the groups offered"
        return "tls_no_shared_group", (
            f"{who} and {peer} have no key exchange group in common: {refused} (OpenSSL: no suitable "
            f"key share{sent}); give both nodes a group in common (tls groups / --tls-groups, default "
            f"{DEFAULT_GROUPS})."
        )
    if (reason == "tls_no_shared_cipher" and record.role == "client"
            and record.alert_received == "handshake_failure" and "no key exchange group" not in detail):
        return reason, (f"{detail.rstrip('.')}. Under TLS 1.3 the same alert before the Server Hello also "
                        "means no key exchange group in common: compare both sides' groups (tls groups / "
                        "--tls-groups).")
    return reason, detail


class TLSFailure(trio.BrokenResourceError):
    """A TLS handshake (or, in TLS 1.3, the first read after it) failed. The reason and detail pass
    through `refine` (kept in the record too)."""

    def __init__(self, reason: str, detail: str, record=None):
        reason, detail = refine(reason, detail, record)
        if record is not None and getattr(record, "reason", None) is not None:
            record.reason, record.detail = reason, detail
        super().__init__(detail)
        self.reason = reason
        self.detail = detail
        self.record = record

    def __str__(self) -> str:
        return self.detail

    def __repr__(self) -> str:
        return f"TLSFailure({self.reason!r}, {self.detail!r})"
