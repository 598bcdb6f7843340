"""Keyed field-level Bloom filters of character n-grams, stored as fixed-length bytes.

Each n-gram sets ``hashes`` bit positions drawn from a keyed BLAKE2b digest of the n-gram (independent
positions, not double hashing, which has a known weakness). The mask of each distinct n-gram is computed
once and cached as a Python int, so a filter is just the OR of a few cached masks.
"""

from __future__ import annotations

import hashlib

from linkage.keys import derive_subkey


class BloomEncoder:
    def __init__(self, key: bytes, project_id: str, field: str, bits: int, hashes: int, ngram: int) -> None:
        if bits % 8:
            raise ValueError("Bloom filter length must be a multiple of 8 bits")
        self.bits, self.hashes, self.ngram = bits, hashes, ngram
        self.n_bytes = bits // 8
        self._subkey = derive_subkey(key, project_id, field, f"bloom-{bits}-{hashes}-{ngram}")
        self._gram_masks: dict[str, int] = {}
        self._cache: dict[str, bytes] = {}

    def ngrams(self, value: str) -> list[str]:
        padded = f"_{value}_" if self.ngram > 1 else value
        n = self.ngram
        return [padded[i:i + n] for i in range(max(1, len(padded) - n + 1))]

    def _mask(self, gram: str) -> int:
        mask = self._gram_masks.get(gram)
        if mask is None:
            # 4 bytes per position keeps the modulo bias negligible for any allowed length.
            digest = hashlib.blake2b(gram.encode("utf-8"), key=self._subkey[:32],
                                     digest_size=64).digest()
            if self.hashes * 4 > len(digest):
                digest += hashlib.blake2b(digest, key=self._subkey[:32], digest_size=64).digest()
            mask = 0
            for i in range(self.hashes):
                mask |= 1 << (int.from_bytes(digest[4 * i:4 * i + 4], "big") % self.bits)
            self._gram_masks[gram] = mask
        return mask

    def encode(self, value: str | None) -> bytes | None:
        if not value:
            return None
        cached = self._cache.get(value)
        if cached is None:
            mask = 0
            for gram in self.ngrams(value):
                mask |= self._mask(gram)
            cached = mask.to_bytes(self.n_bytes, "big")
            if len(self._cache) < 2_000_000:
                self._cache[value] = cached
        return cached


def dice(a: bytes, b: bytes) -> float:
    """Sørensen–Dice similarity of two equal-length filters (used in tests and audits)."""
    ia, ib = int.from_bytes(a, "big"), int.from_bytes(b, "big")
    total = ia.bit_count() + ib.bit_count()
    return 2 * (ia & ib).bit_count() / total if total else 0.0
