"""TLS engine: pyOpenSSL driven through memory BIOs over a trio stream (see docs/architecture.md)."""

from .certinfo import CertInfo
from .config import TLSConfig
from .context import build_context
from .errors import REASONS, TLSFailure
from .presets import PRESETS, resolve_ciphers
from .record import ConnectionRecord
from .stream import TLSStream
from .transcript import Flight, format_transcript

__all__ = [
    "CertInfo", "ConnectionRecord", "Flight", "PRESETS", "REASONS", "TLSConfig", "TLSFailure",
    "TLSStream", "build_context", "format_transcript", "resolve_ciphers",
]
