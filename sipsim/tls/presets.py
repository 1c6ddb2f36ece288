"""CUCM "TLS Ciphers" presets and the Authenticated (NULL-SHA) mode, as OpenSSL cipher lists.

CUCM's enterprise parameter "TLS Ciphers" (11.5+) offers these values; sipsim accepts them by name
(case-insensitive, spaces/dashes → underscores):

- ``all_ciphers_rsa_preferred`` (CUCM's default): ECDHE-RSA-AES256-GCM-SHA384,
  ECDHE-ECDSA-AES256-GCM-SHA384, ECDHE-RSA-AES128-GCM-SHA256, ECDHE-ECDSA-AES128-GCM-SHA256, AES128-SHA
- ``all_ciphers_ecdsa_preferred``: the same with the ECDSA suites first
- ``strongest`` (= ``strongest_rsa_preferred``) / ``strongest_ecdsa_preferred``: AES-256 / SHA-384 only
- ``medium`` (= ``medium_rsa_preferred``) / ``medium_ecdsa_preferred``: AES-256 and AES-128 GCM,
  no CBC suite (sipsim's reading of "Medium - AES-256 AES-128 only")

Device Security Mode *Authenticated* = TLS with a NULL cipher (integrity only): ``AUTHENTICATED``.
NULL ciphers and TLS 1.0/1.1 are refused by OpenSSL at its default security level, so
`resolve_ciphers` appends ``@SECLEVEL=0`` when either is in play (unless the list sets one).
"""

from __future__ import annotations

from sipsim.errors import UserError

_RSA256 = "ECDHE-RSA-AES256-GCM-SHA384"
_EC256 = "ECDHE-ECDSA-AES256-GCM-SHA384"
_RSA128 = "ECDHE-RSA-AES128-GCM-SHA256"
_EC128 = "ECDHE-ECDSA-AES128-GCM-SHA256"

PRESETS: dict[str, str] = {
    "all_ciphers_rsa_preferred": f"{_RSA256}:{_EC256}:{_RSA128}:{_EC128}:AES128-SHA",
    "all_ciphers_ecdsa_preferred": f"{_EC256}:{_RSA256}:{_EC128}:{_RSA128}:AES128-SHA",
    "strongest_rsa_preferred": f"{_RSA256}:{_EC256}",
    "strongest_ecdsa_preferred": f"{_EC256}:{_RSA256}",
    "medium_rsa_preferred": f"{_RSA256}:{_EC256}:{_RSA128}:{_EC128}",
    "medium_ecdsa_preferred": f"{_EC256}:{_RSA256}:{_EC128}:{_RSA128}",
}
PRESETS["strongest"] = PRESETS["strongest_rsa_preferred"]
PRESETS["medium"] = PRESETS["medium_rsa_preferred"]
PRESETS["all_ciphers"] = PRESETS["all_ciphers_rsa_preferred"]

DEFAULT_PRESET = "all_ciphers_rsa_preferred"
DEFAULT = PRESETS[DEFAULT_PRESET]

#: Authenticated mode: NULL encryption, SHA-1/SHA-256 MAC (what CUCM negotiates as NULL-SHA).
AUTHENTICATED = "NULL-SHA:NULL-SHA256:ECDHE-RSA-NULL-SHA:ECDHE-ECDSA-NULL-SHA"


def preset_key(name: str) -> str:
    return name.strip().lower().replace("-", "_").replace(" ", "_")


def is_preset(name: str | None) -> bool:
    return bool(name) and preset_key(name) in PRESETS


def resolve_ciphers(ciphers: str | None, mode: str = "encrypted", min_version: str = "1.2",
                    security_level: int | None = None) -> str:
    """The OpenSSL cipher string for a node: a preset name or a raw list, the mode's default,
    plus ``@SECLEVEL=n`` (explicit, or 0 automatically for legacy versions / NULL ciphers)."""
    if ciphers is None or not str(ciphers).strip():
        text = AUTHENTICATED if mode == "authenticated" else DEFAULT
    elif is_preset(ciphers):
        text = PRESETS[preset_key(ciphers)]
    else:
        text = str(ciphers).strip()
        if any(ch.isspace() for ch in text) and ":" not in text:
            raise UserError(
                f"TLS ciphers {ciphers!r} is neither a CUCM preset ({', '.join(sorted(PRESETS))}) "
                "nor an OpenSSL cipher list (names separated by ':')"
            )
    if "@SECLEVEL=" in text.upper():
        return text
    if security_level is not None:
        return f"{text}:@SECLEVEL={security_level}"
    if min_version in ("1.0", "1.1") or "NULL" in text.upper():
        return f"{text}:@SECLEVEL=0"
    return text
