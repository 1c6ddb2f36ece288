"""Settings a scenario may pin on purpose to reproduce old CUCM releases, but that are insecure:
sipsim runs them and says so (secure defaults are TLS ≥ 1.2, RSA ≥ 2048, SHA-256)."""

from __future__ import annotations

from sipsim.lab import model as m


def legacy_warnings(scenario: m.Scenario) -> list[str]:
    out = []
    for node in scenario.nodes():
        if node.tls.min_version in ("1.0", "1.1"):
            out.append(f"node {node.name} allows TLS {node.tls.min_version}: legacy and insecure (CUCM 7.x–9.x "
                       "spoke only TLS 1.0) — keep it to reproduce old clusters")
        if node.cert.key == "rsa1024":
            out.append(f"node {node.name}'s certificate has an RSA 1024 key: too weak today (CUCM's old default)")
        if node.cert.hash == "sha1":
            out.append(f"node {node.name}'s certificate is signed with SHA-1: deprecated")
    for profile in (p for c in scenario.clusters for p in c.profiles):
        if profile.device_security_mode == "authenticated":
            out.append(f'security profile "{profile.name}" is Authenticated: NULL-SHA ciphers, SIP travels '
                       "unencrypted (integrity only)")
    return out
