"""Keyed exact tokens: keyed BLAKE2b with a 128-bit output, one HKDF subkey per field and purpose.

Keyed BLAKE2b is a MAC in its own right (no HMAC construction needed) and about twice as fast as
HMAC-SHA256 in CPython, which matters at a million rows.

A :class:`Tokeniser` caches tokens per distinct value: in real extracts names, dates and postcodes repeat
thousands of times, so caching turns the per-row cost into a dictionary look-up.
"""

from __future__ import annotations

import hashlib

from linkage.keys import derive_subkey

TOKEN_HEX_CHARS = 32  # 128 bits


class Tokeniser:
    """Turns clear values into keyed tokens for one (project, field, purpose)."""

    def __init__(self, key: bytes, project_id: str, field: str, purpose: str) -> None:
        self._subkey = derive_subkey(key, project_id, field, purpose)
        self._cache: dict[str, str] = {}

    def token(self, value: str | None) -> str | None:
        if value is None or value == "":
            return None
        cached = self._cache.get(value)
        if cached is None:
            cached = hashlib.blake2b(value.encode("utf-8"), key=self._subkey, digest_size=16).hexdigest()
            if len(self._cache) < 2_000_000:  # bound memory on pathological inputs
                self._cache[value] = cached
        return cached

    def tokens(self, values: list[str]) -> list[str] | None:
        """Tokens of several values, sorted (order would leak position) and de-duplicated."""
        if not values:
            return None
        return sorted({t for t in (self.token(v) for v in values) if t is not None})
