"""TLS settings of one node (one listener / one outgoing trunk side)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from sipsim.errors import UserError

#: Accepted spellings of a protocol version, normalised to "1.0" … "1.3".
_VERSION_ALIASES = {
    "1": "1.0", "1.0": "1.0", "tls1": "1.0", "tls1.0": "1.0", "tlsv1": "1.0", "tlsv1.0": "1.0",
    "1.1": "1.1", "tls1.1": "1.1", "tlsv1.1": "1.1",
    "1.2": "1.2", "tls1.2": "1.2", "tlsv1.2": "1.2",
    "1.3": "1.3", "tls1.3": "1.3", "tlsv1.3": "1.3",
}
VERSIONS = ("1.0", "1.1", "1.2", "1.3")
MODES = ("encrypted", "authenticated")

#: The key exchange groups (ECDHE curves) a node offers unless told otherwise: the classical ones that
#: CUCM, CUBE and Kamailio (OpenSSL 1.1/3.0) negotiate, X25519 first (its key share goes in the TLS 1.3
#: Client Hello). OpenSSL 3.5+ (cryptography's bundled one) would otherwise lead with the post-quantum
#: hybrid X25519MLKEM768: a 1.2 kB larger Client Hello no CUCM peer sends. Opt in with `groups`.
DEFAULT_GROUPS = "X25519:P-256:P-384:P-521"
#: valid names to suggest when a group list is refused
GROUP_EXAMPLES = "X25519, P-256, P-384, P-521, X448, ffdhe2048, X25519MLKEM768"

#: spellings of one group → the name OpenSSL reports after the handshake (SSL_get0_group_name)
_GROUP_ALIASES = {
    "p-256": "secp256r1", "prime256v1": "secp256r1", "secp256r1": "secp256r1",
    "p-384": "secp384r1", "secp384r1": "secp384r1",
    "p-521": "secp521r1", "secp521r1": "secp521r1",
}


def normalise_version(value: str | float, field: str = "version") -> str:
    """'TLSv1.2', 'tls1.2', '1.2', 1.2 → '1.2'; anything else is a UserError."""
    key = str(value).strip().lower().replace("_", ".").replace(" ", "")
    try:
        return _VERSION_ALIASES[key]
    except KeyError:
        raise UserError(
            f"TLS {field} {value!r} is not a TLS version: use one of 1.0, 1.1, 1.2, 1.3"
        ) from None


def group_names(groups: str | None) -> list[str] | None:
    """The groups a list allows, each in the name OpenSSL reports after a handshake ("P-256" →
    "secp256r1", "X25519" → "x25519"), in order; None when the list cannot be read without OpenSSL
    (DEFAULT, "-" removals). Prefixes "*" (key share) and "?" (ignore if unknown) are dropped."""
    text = DEFAULT_GROUPS if groups is None else str(groups)
    out: list[str] = []
    for part in text.replace("/", ":").split(":"):
        name = part.strip().lstrip("*?")
        if not name:
            continue
        if name.startswith("-") or name.upper() == "DEFAULT":
            return None
        key = name.lower()
        canon = _GROUP_ALIASES.get(key, key if key in ("x25519", "x448") or key.startswith("ffdhe") else name)
        if canon not in out:
            out.append(canon)
    return out


def shared_groups(a: str | None, b: str | None) -> list[str] | None:
    """The groups two lists have in common (in a's order); None when either cannot be read."""
    ga, gb = group_names(a), group_names(b)
    if ga is None or gb is None:
        return None
    lowered = {g.lower() for g in gb}
    return [g for g in ga if g.lower() in lowered]


def _opt_path(value):
    if value is None or value == "":
        return None
    return Path(value)


@dataclass(frozen=True)
class TLSConfig:
    """Everything `build_context` needs.

    cert_file/key_file: the node's identity (CallManager certificate); the cert file may also hold
    the chain after the leaf. None → no certificate (a client that presents nothing).
    chain_files: intermediates sent after the leaf. trust_files: the CallManager-trust store (each
    file may hold several PEM certificates, or one DER). ciphers: an OpenSSL cipher list or a CUCM
    preset name (see `sipsim.tls.presets`). mode: "encrypted" or "authenticated" (NULL-SHA).
    groups: an OpenSSL key exchange group list ("X25519:P-256"); None = `DEFAULT_GROUPS`.
    security_level: OpenSSL @SECLEVEL; None = automatic (0 for TLS 1.0/1.1 or NULL ciphers).
    """

    cert_file: str | Path | None
    key_file: str | Path | None
    chain_files: tuple = ()
    trust_files: tuple = ()
    min_version: str = "1.2"
    max_version: str = "1.3"
    ciphers: str | None = None
    mode: str = "encrypted"
    require_peer_cert: bool = True
    handshake_timeout: float = 10.0
    ecdsa_cert_file: str | Path | None = None
    ecdsa_key_file: str | Path | None = None
    tls13_ciphersuites: str | None = None
    security_level: int | None = None
    groups: str | None = None

    def __post_init__(self):
        set_ = lambda name, value: object.__setattr__(self, name, value)  # noqa: E731
        set_("cert_file", _opt_path(self.cert_file))
        set_("key_file", _opt_path(self.key_file))
        set_("ecdsa_cert_file", _opt_path(self.ecdsa_cert_file))
        set_("ecdsa_key_file", _opt_path(self.ecdsa_key_file))
        if isinstance(self.chain_files, (str, Path)):
            set_("chain_files", (self.chain_files,))
        if isinstance(self.trust_files, (str, Path)):
            set_("trust_files", (self.trust_files,))
        set_("chain_files", tuple(Path(p) for p in self.chain_files))
        set_("trust_files", tuple(Path(p) for p in self.trust_files))
        lo = normalise_version(self.min_version, "min_version")
        hi = normalise_version(self.max_version, "max_version")
        set_("min_version", lo)
        set_("max_version", hi)
        if VERSIONS.index(lo) > VERSIONS.index(hi):
            raise UserError(
                f"TLS min_version {lo} is above max_version {hi}: lower min_version or raise max_version"
            )
        mode = str(self.mode).strip().lower()
        if mode not in MODES:
            raise UserError(
                f"TLS mode {self.mode!r} is unknown: use 'encrypted' or 'authenticated' (NULL-SHA)"
            )
        set_("mode", mode)
        if (self.cert_file is None) != (self.key_file is None):
            raise UserError(
                "TLS cert_file and key_file go together: give both (the node's certificate and its "
                "private key) or neither"
            )
        if (self.ecdsa_cert_file is None) != (self.ecdsa_key_file is None):
            raise UserError("TLS ecdsa_cert_file and ecdsa_key_file go together: give both or neither")
        if not (self.handshake_timeout and self.handshake_timeout > 0):
            raise UserError("TLS handshake_timeout must be a positive number of seconds")
        if self.groups is not None:
            if not isinstance(self.groups, str) or not self.groups.strip():
                raise UserError(
                    f"TLS groups {self.groups!r} is not a group list: give names separated by ':' "
                    f"such as {DEFAULT_GROUPS} (default), from {GROUP_EXAMPLES}"
                )
            set_("groups", self.groups.strip())
        if self.security_level is not None and self.security_level not in range(0, 6):
            raise UserError("TLS security_level must be 0 to 5 (OpenSSL @SECLEVEL)")

    @property
    def group_list(self) -> str:
        """The group list given to OpenSSL: ``groups`` or `DEFAULT_GROUPS`."""
        return self.groups or DEFAULT_GROUPS

    @property
    def legacy(self) -> bool:
        """True when TLS 1.0 or 1.1 may be negotiated."""
        return self.min_version in ("1.0", "1.1")
