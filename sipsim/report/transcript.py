"""A TLS connection of the report told in plain words, for teaching: who opened it, which handshake
messages each side sent flight by flight, the certificates presented and whether the receiver trusts
them, what was negotiated, and — when it failed — which alert was sent by whom and what it means.

Works on the JSON report's dictionaries (`report["connections"][i]`, `report["lab"]`), so it can
explain a report written by an earlier run as well as the one just made.
"""

from __future__ import annotations

from typing import Any

#: one sentence per TLS alert (RFC 8446 §6.2 names), as the receiver should read it
ALERT_MEANING = {
    "close_notify": "the sender is closing the connection normally",
    "unexpected_message": "the sender received a message it did not expect at that point of the handshake",
    "bad_record_mac": "a record could not be decrypted or its integrity check failed",
    "record_overflow": "a record was longer than TLS allows",
    "handshake_failure": "the sender could not agree on security parameters: no cipher suite in common, "
                         "no key exchange group in common (TLS 1.3), or (sent by a server) the client did not "
                         "present a certificate it required",
    "bad_certificate": "the sender rejected the certificate it received: corrupt, badly signed, or "
                       "(a CUCM) verified but its names are not in the trunk's X.509 Subject Name list",
    "unsupported_certificate": "the certificate's type or key usage (EKU) does not allow this use",
    "certificate_revoked": "the certificate was revoked by its issuer",
    "certificate_expired": "the certificate is past its notAfter date (or not valid yet)",
    "certificate_unknown": "the sender could not accept the certificate for some other reason, "
                           "usually because it does not trust it",
    "illegal_parameter": "a handshake field was out of range or inconsistent",
    "unknown_ca": "the sender has neither the certificate nor its issuing CA in its trust store "
                  "(on CUCM: CallManager-trust), so the chain cannot be verified",
    "access_denied": "the certificate verified but the sender's policy refuses this peer",
    "decode_error": "a message could not be parsed",
    "decrypt_error": "a signature or the Finished check did not verify (e.g. Certificate Verify made "
                     "with a key that does not match the certificate)",
    "protocol_version": "the sender does not support the TLS version offered: the two sides have no "
                        "version in common",
    "insufficient_security": "the sender requires stronger ciphers than the peer offered",
    "internal_error": "the sender hit an error of its own, unrelated to the peer",
    "inappropriate_fallback": "a version downgrade was detected",
    "user_canceled": "the sender cancelled the handshake",
    "missing_extension": "a required TLS extension was missing",
    "unsupported_extension": "an extension appeared where it is not allowed",
    "unrecognized_name": "the server does not know the name the client asked for (SNI)",
    "certificate_required": "the server required a client certificate and the client sent none (TLS 1.3)",
    "no_application_protocol": "no application protocol (ALPN) in common",
}

HANDSHAKE_DONE = ("Finished",)


def _addr(pair) -> str:
    if not pair:
        return "?"
    host, port = pair[0], pair[1]
    return f"[{host}]:{port}" if ":" in str(host) else f"{host}:{port}"


def _nodes(lab: dict | None) -> dict[str, dict]:
    return {n["name"]: n for n in (lab or {}).get("nodes", [])}


def _node_at(lab: dict | None, address: str | None) -> dict | None:
    for n in (lab or {}).get("nodes", []):
        if n.get("address") == address:
            return n
    return None


def sides(conn: dict, lab: dict | None = None) -> tuple[dict, dict]:
    """(client, server): each {"name", "addr", "chain", "node"} — the node's lab entry when known."""
    local = {"addr": conn.get("local"), "chain": conn.get("local_chain") or []}
    remote = {"addr": conn.get("remote"), "chain": conn.get("peer_chain") or []}
    if conn.get("role") == "server":
        client, server = remote, local
    else:
        client, server = local, remote
    nodes = _nodes(lab)
    for side, key in ((client, "client_node"), (server, "server_node")):
        name = conn.get(key)
        if name is None:
            name = conn.get("local_name") if side is local else conn.get("peer_name")
        node = nodes.get(name) if name else None
        if node is None and side["addr"]:
            node = _node_at(lab, side["addr"][0])
        side["node"] = node
        side["name"] = name or (node["name"] if node else _addr(side["addr"]))
    return client, server


def alert_meaning(alert: str) -> str:
    return ALERT_MEANING.get(alert, "an alert sipsim has no description for")


def _is_app_data(flight: dict) -> bool:
    return all(m == "Application Data" for m in flight.get("messages", []))


def _is_alert(message: str) -> bool:
    return message.startswith("Alert")


def handshake_flights(conn: dict) -> list[dict]:
    """The flights of the handshake (and alerts): everything except pure Application Data."""
    return [f for f in conn.get("transcript") or [] if not _is_app_data(f)]


def flight_label(flight: dict) -> str:
    return ", ".join(flight.get("messages", []))


def describe_certificate(cert: dict) -> list[str]:
    issuer = "itself (self-signed)" if cert.get("self_signed") else cert.get("issuer", "?")
    sans = ", ".join(cert.get("sans") or []) + ", ".join(cert.get("ip_sans") or []) or "none"
    lines = [
        f"subject {cert.get('slash_subject') or cert.get('subject')}",
        f"serial {cert.get('serial')}, issued by {issuer}",
        f"valid {cert.get('not_before')} → {cert.get('not_after')}",
        f"subject alternative names: {sans}",
        f"key {cert.get('key')}, signed with {cert.get('signature_hash')}"
        + (f", extended key usage {', '.join(cert['eku'])}" if cert.get("eku") else ", no extended key usage"),
    ]
    return lines


def trust_verdict(cert: dict, receiver: dict | None) -> str | None:
    """Whether the receiving node's CallManager-trust holds this certificate or its issuer."""
    if not receiver or "trust" not in receiver:
        return None
    trust = receiver.get("trust") or []
    cn = cert.get("cn") or ""
    lowered = [t.lower() for t in trust]
    store = f"{receiver['name']}'s CallManager-trust"
    files = receiver.get("trust_files") or []
    if cn.lower() in lowered:
        if cert.get("self_signed"):
            return f"{store} holds this certificate ({cn})."
        issuer = cert.get("issuer", "its CA")
        ca_files = [f for f in files if "/ca/" in f or f.rsplit("/", 1)[-1].lower().startswith("ca")]
        where = f", file {ca_files[0]}" if ca_files else ""
        return f"{store} holds its issuer {issuer}{where}."
    listed = ", ".join(trust) or "nothing"
    return f"{store} holds NEITHER this certificate NOR its issuer (it holds: {listed})."


def _ms(value) -> str:
    return f"{value:8.1f} ms" if isinstance(value, (int, float)) else "       ? ms"


def render_connection(conn: dict, lab: dict | None = None) -> list[str]:
    """The connection in plain sentences, one string per line."""
    client, server = sides(conn, lab)
    cname, sname = client["name"], server["name"]
    lines: list[str] = []
    ident = f"#{conn['id']} " if conn.get("id") is not None else ""
    lines.append(f"TLS connection {ident}from {cname} ({_addr(client['addr'])}, the client) to {sname} "
                 f"({_addr(server['addr'])}, the server), opened {conn.get('started_at', '?')}")
    version = conn.get("version")
    tls13 = version == "TLSv1.3" or any("Encrypted Extensions" in f.get("messages", [])
                                        for f in conn.get("transcript") or [])
    if conn.get("reason") is None and version:
        group = f", key exchange group {conn['group']}" if conn.get("group") else ""
        lines.append(f"  Result: handshake completed in {conn.get('handshake_ms') or 0:.1f} ms: {version}, "
                     f"cipher {conn.get('cipher')}{group}.")
    else:
        lines.append(f"  Result: FAILED ({conn.get('reason') or 'handshake_failed'}).")
        if conn.get("detail"):
            lines.append(f"    {conn['detail']}")
    lines.append("  Handshake, flight by flight (times from the TCP connection's start):")
    transcript = conn.get("transcript") or []
    app_flights = 0
    client_finished = False
    for f in transcript:
        if _is_app_data(f):
            app_flights += 1
            continue
        src, dst = (cname, sname) if f.get("direction") == "sent" else (sname, cname)
        lines.append(f"    {_ms(f.get('t_ms'))}  {src} → {dst}: {flight_label(f)}  ({f.get('nbytes', '?')} bytes)")
        enc = [m for m, e in zip(f.get("messages", []), f.get("encrypted_messages") or []) if e]
        if enc:
            lines.append(f"                 encrypted: {', '.join(enc)}")
        if f.get("direction") == "sent" and "Finished" in f.get("messages", []):
            client_finished = True
    if conn.get("transcript_truncated"):
        lines.append("    … (transcript truncated)")
    if app_flights:
        lines.append(f"    then {app_flights} flight(s) of Application Data: the SIP messages, encrypted with "
                     "the negotiated keys.")
    if version in ("TLSv1.0", "TLSv1.1", "TLSv1.2"):
        lines.append(f"  In {version.replace('v', ' ')} the handshake travels in clear text up to Change Cipher Spec: a capture "
                     "shows both certificates and the Certificate Request without any key; only Finished and the "
                     "Application Data are encrypted.")
    if tls13:
        lines.append("  In TLS 1.3 everything after the Server Hello is encrypted (Encrypted Extensions, "
                     "Certificate Request, both Certificates, Certificate Verify, Finished): a capture shows "
                     "them only with the key log (--keylog). Change Cipher Spec is a compatibility dummy.")
    # certificates
    for presenter, receiver, role in ((server, client, "server"), (client, server, "client")):
        chain = presenter["chain"]
        if not chain:
            if role == "client" and any("Certificate Request" in f.get("messages", []) for f in transcript):
                lines.append(f"  {presenter['name']} (client) was asked for a certificate (Certificate Request); "
                             "none is recorded.")
            continue
        lines.append(f"  {presenter['name']} ({role}) presented {len(chain)} certificate(s):")
        for i, cert in enumerate(chain):
            head = "leaf" if i == 0 else f"chain[{i}]"
            desc = describe_certificate(cert)
            lines.append(f"    {head}: {desc[0]}")
            lines.extend(f"          {d}" for d in desc[1:])
        verdict = trust_verdict(chain[0], receiver["node"])
        if verdict:
            lines.append(f"    → {verdict}")
    if conn.get("ca_names"):
        lines.append(f"  The server's Certificate Request named the CAs it accepts: {'; '.join(conn['ca_names'])}.")
    for v in conn.get("verify_errors") or []:
        lines.append(f"  Verification error {v.get('errnum')} at depth {v.get('depth')}: {v.get('text')} "
                     f"({v.get('subject')}).")
    # alerts
    me, peer = (cname, sname) if conn.get("role") != "server" else (sname, cname)
    for key, sender, receiver_name in (("alert_sent", me, peer), ("alert_received", peer, me)):
        alert = conn.get(key)
        if alert:
            lines.append(f"  Alert {alert}: sent by {sender} to {receiver_name} — {alert_meaning(alert)}.")
    if tls13 or (conn.get("alert_received") and client_finished):
        received_after = conn.get("alert_received") and client_finished and conn.get("role") != "server"
        if received_after:
            lines.append(f"  {cname} had already sent its Finished and considered the handshake done: in TLS 1.3 "
                         f"the server checks the client certificate after that, so {cname} learned of the "
                         "rejection only on its first read (the first call after a change fails, under TLS 1.3 only).")
        elif tls13:
            lines.append("  Note: in TLS 1.3 the client finishes its side before the server has checked the client "
                         "certificate; had the server rejected it, the client would only learn so on its first read.")
    return lines


def render_run_transcripts(report: dict) -> str:
    """Every connection of a report (the dictionary `RunResult.to_dict()` makes), one block each."""
    lab = report.get("lab") or {}
    conns = report.get("connections") or []
    if not conns:
        return "no TLS connection was recorded in this run"
    users: dict[int, list[int]] = {}
    for call in report.get("calls", []):
        for a in call.get("attempts", []):
            if a.get("connection") is not None:
                users.setdefault(a["connection"], []).append(call["id"])
    blocks = []
    for i, conn in enumerate(conns):
        lines = render_connection(conn, lab)
        calls = users.get(conn.get("id", i), [])
        if calls:
            lines.insert(1, "  Used by call(s) " + ", ".join(str(c) for c in dict.fromkeys(calls)) + ".")
        blocks.append("\n".join(lines))
    return "\n\n".join(blocks) + "\n"
