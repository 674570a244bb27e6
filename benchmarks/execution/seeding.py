"""Deterministic seed derivation: a rerun with the same suite seed gives the same rows."""

from __future__ import annotations

import hashlib


def derive_seed(*keys: object) -> int:
    """A 31-bit seed from any keys, stable across processes and Python versions (SHA-256)."""
    text = "\x1f".join(str(k) for k in keys)
    return int.from_bytes(hashlib.sha256(text.encode()).digest()[:4], "little") & 0x7FFFFFFF
