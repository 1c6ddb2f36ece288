"""Key and hash specifications: the names users type ("rsa2048", "ec-p256", "sha256")."""

from __future__ import annotations

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, rsa

from sipsim.errors import UserError

DEFAULT_KEY = "rsa2048"
DEFAULT_HASH = "sha256"

_RSA_SIZES = {"rsa1024": 1024, "rsa2048": 2048, "rsa3072": 3072, "rsa4096": 4096}
_EC_CURVES = {"ec-p256": ec.SECP256R1, "ec-p384": ec.SECP384R1}
KEY_SPECS: tuple[str, ...] = tuple(_RSA_SIZES) + tuple(_EC_CURVES)

_HASHES = {"sha1": hashes.SHA1, "sha256": hashes.SHA256, "sha384": hashes.SHA384}
HASH_NAMES: tuple[str, ...] = tuple(_HASHES)
# How people write them elsewhere (CUCM GUI "SHA256", openssl "-sha256", "SHA-256").
_HASH_DISPLAY = {"sha1": "SHA-1", "sha256": "SHA-256", "sha384": "SHA-384", "sha512": "SHA-512", "md5": "MD5"}

PrivateKey = rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey
PublicKey = rsa.RSAPublicKey | ec.EllipticCurvePublicKey


def normalise_key_spec(spec: str | None) -> str:
    """Return the canonical key spec or raise UserError listing the valid ones."""
    if spec is None:
        return DEFAULT_KEY
    s = str(spec).strip().lower().replace("_", "-")
    aliases = {"rsa": "rsa2048", "ec": "ec-p256", "ecdsa": "ec-p256", "ec-256": "ec-p256",
               "ec-384": "ec-p384", "ecdsa-p256": "ec-p256", "ecdsa-p384": "ec-p384",
               "ec-secp256r1": "ec-p256", "ec-secp384r1": "ec-p384", "ec-prime256v1": "ec-p256",
               "rsa-1024": "rsa1024", "rsa-2048": "rsa2048", "rsa-3072": "rsa3072",
               "rsa-4096": "rsa4096", "ecp256": "ec-p256", "ecp384": "ec-p384"}
    s = aliases.get(s, s)
    if s not in KEY_SPECS:
        raise UserError(f"unknown key type {spec!r}: use one of {', '.join(KEY_SPECS)}")
    return s


def normalise_hash(name: str | None) -> str:
    """Return the canonical hash name ("sha256") or raise UserError listing the valid ones."""
    if name is None:
        return DEFAULT_HASH
    s = str(name).strip().lower().replace("-", "").replace("_", "")
    if s not in _HASHES:
        raise UserError(f"unknown hash {name!r}: use one of {', '.join(HASH_NAMES)}")
    return s


def new_private_key(spec: str = DEFAULT_KEY) -> PrivateKey:
    """A fresh private key for one of KEY_SPECS ("rsa1024", "rsa2048", ..., "ec-p256", "ec-p384")."""
    s = normalise_key_spec(spec)
    if s in _RSA_SIZES:
        return rsa.generate_private_key(public_exponent=65537, key_size=_RSA_SIZES[s])
    return ec.generate_private_key(_EC_CURVES[s]())


def hash_algorithm(name: str = DEFAULT_HASH) -> hashes.HashAlgorithm:
    return _HASHES[normalise_hash(name)]()


def key_spec_of(key) -> str | None:
    """The spec name of a private or public key ("rsa2048", "ec-p256"), None if not one of ours."""
    pub = key.public_key() if hasattr(key, "public_key") else key
    if isinstance(pub, rsa.RSAPublicKey):
        s = f"rsa{pub.key_size}"
        return s if s in _RSA_SIZES else None
    if isinstance(pub, ec.EllipticCurvePublicKey):
        for s, curve in _EC_CURVES.items():
            if isinstance(pub.curve, curve):
                return s
    return None


def describe_key(key) -> str:
    """'RSA 2048', 'EC P-256' (what a person reads)."""
    pub = key.public_key() if hasattr(key, "public_key") else key
    if isinstance(pub, rsa.RSAPublicKey):
        return f"RSA {pub.key_size}"
    if isinstance(pub, ec.EllipticCurvePublicKey):
        curve = {"secp256r1": "P-256", "secp384r1": "P-384", "secp521r1": "P-521"}.get(pub.curve.name, pub.curve.name)
        return f"EC {curve}"
    return type(pub).__name__.replace("PublicKey", "")


def hash_name_of(hash_alg: hashes.HashAlgorithm | None) -> str | None:
    """Canonical name of a hash object ("sha256"), None when there is none (Ed25519)."""
    if hash_alg is None:
        return None
    return hash_alg.name.replace("-", "").lower()


def describe_hash(name_or_alg) -> str:
    """'SHA-256' for 'sha256' or a hash object."""
    if name_or_alg is None:
        return "no hash"
    name = name_or_alg if isinstance(name_or_alg, str) else name_or_alg.name
    key = name.replace("-", "").lower()
    return _HASH_DISPLAY.get(key, name.upper())


def public_keys_equal(a, b) -> bool:
    """True when two public (or private) keys are the same key."""
    from cryptography.hazmat.primitives import serialization

    pa = a.public_key() if hasattr(a, "public_key") else a
    pb = b.public_key() if hasattr(b, "public_key") else b
    fmt = serialization.PublicFormat.SubjectPublicKeyInfo
    enc = serialization.Encoding.DER
    return pa.public_bytes(enc, fmt) == pb.public_bytes(enc, fmt)
