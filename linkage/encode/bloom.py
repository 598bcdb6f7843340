"""Keyed field-level Bloom filters of character n-grams, stored as fixed-length bytes.

Each n-gram sets ``hashes`` bit positions drawn from a keyed BLAKE2b digest of the n-gram (independent
positions, not double hashing, which has a known weakness). The mask of each distinct n-gram is computed
once and cached as a Python int, so a filter is just the OR of a few cached masks.

Optional hardening (all off by default, when the output is exactly the plain filter): a salt mixed into
each n-gram's positions, XOR-folding, balancing (filter + complement, keyed permutation) and BLIP random
bit flips. Every random choice is drawn from keyed BLAKE2b streams, never from a library RNG, so two
partners on different machines and library versions produce identical filters.
"""

from __future__ import annotations

import hashlib

import numpy as np

from linkage.keys import derive_subkey


def _keyed_stream(key: bytes, label: bytes, n_bytes: int) -> bytes:
    """``n_bytes`` pseudo-random bytes from a keyed BLAKE2b in counter mode."""
    out = bytearray()
    counter = 0
    while len(out) < n_bytes:
        out += hashlib.blake2b(label + counter.to_bytes(4, "big"), key=key, digest_size=64).digest()
        counter += 1
    return bytes(out[:n_bytes])


class BloomEncoder:
    def __init__(self, key: bytes, project_id: str, field: str, bits: int, hashes: int, ngram: int, *,
                 xor_fold: bool = False, balanced: bool = False, blip: float = 0.0) -> None:
        if bits % 8 or (xor_fold and bits % 16):
            raise ValueError("Bloom filter length must be a multiple of 8 bits (16 when folded)")
        self.bits, self.hashes, self.ngram = bits, hashes, ngram
        self.xor_fold, self.balanced, self.blip = xor_fold, balanced, blip
        self.out_bits = (bits // 2 if xor_fold else bits) * (2 if balanced else 1)
        self.n_bytes = self.out_bits // 8
        self._subkey = derive_subkey(key, project_id, field, f"bloom-{bits}-{hashes}-{ngram}")
        self._gram_masks: dict[tuple[str, str | None], int] = {}
        self._cache: dict[tuple[str, str | None, str | None], bytes] = {}
        self._perm: np.ndarray | None = None
        if balanced:
            # A keyed permutation: sort positions by a keyed pseudo-random 64-bit label each.
            labels = np.frombuffer(_keyed_stream(self._subkey[:32], b"balance", 8 * self.out_bits), dtype=">u8")
            self._perm = np.argsort(labels, kind="stable")
        self._blip_key = derive_subkey(key, project_id, field, "bloom-blip")[:32] if blip else b""

    def ngrams(self, value: str) -> list[str]:
        padded = f"_{value}_" if self.ngram > 1 else value
        n = self.ngram
        return [padded[i:i + n] for i in range(max(1, len(padded) - n + 1))]

    def _mask(self, gram: str, salt: str | None = None) -> int:
        mask = self._gram_masks.get((gram, salt))
        if mask is None:
            # A salt joins the n-gram before hashing, so the same gram lands elsewhere in another year.
            text = gram if salt is None else f"{gram}\x1f{salt}"
            # 4 bytes per position keeps the modulo bias negligible for any allowed length.
            digest = hashlib.blake2b(text.encode("utf-8"), key=self._subkey[:32],
                                     digest_size=64).digest()
            if self.hashes * 4 > len(digest):
                digest += hashlib.blake2b(digest, key=self._subkey[:32], digest_size=64).digest()
            mask = 0
            for i in range(self.hashes):
                mask |= 1 << (int.from_bytes(digest[4 * i:4 * i + 4], "big") % self.bits)
            self._gram_masks[(gram, salt)] = mask
        return mask

    def encode(self, value: str | None, salt: str | None = None, context: str | None = None) -> bytes | None:
        """Filter of ``value``; ``salt`` keys the positions, ``context`` seeds the BLIP flips (if enabled)."""
        if not value:
            return None
        cache_key = (value, salt or None, context if self.blip else None)
        cached = self._cache.get(cache_key)
        if cached is None:
            mask = 0
            for gram in self.ngrams(value):
                mask |= self._mask(gram, salt or None)
            cached = self._harden(mask, value, salt or "", context or "")
            if len(self._cache) < 2_000_000:
                self._cache[cache_key] = cached
        return cached

    def _harden(self, mask: int, value: str, salt: str, context: str) -> bytes:
        if self.xor_fold:
            half = self.bits // 2
            mask = (mask >> half) ^ (mask & ((1 << half) - 1))
        if not (self.balanced or self.blip):
            return mask.to_bytes(self.n_bytes, "big")
        width = self.bits // 2 if self.xor_fold else self.bits
        bits = np.unpackbits(np.frombuffer(mask.to_bytes(width // 8, "big"), dtype=np.uint8))
        if self.balanced:
            assert self._perm is not None
            bits = np.concatenate([bits, 1 - bits])[self._perm]
        if self.blip:
            # Seeded by the whole identifier set: one person gets the same flips at every partner, but the
            # same name in two people does not give the same filter (which frequency counting relies on).
            seed = f"{value}\x1f{salt}\x1f{context}".encode()
            stream = np.frombuffer(_keyed_stream(self._blip_key, seed, 2 * len(bits)), dtype=">u2")
            bits = bits ^ (stream < int(self.blip * 65536)).astype(np.uint8)
        return np.packbits(bits).tobytes()


def dice(a: bytes, b: bytes) -> float:
    """Sørensen–Dice similarity of two equal-length filters (used in tests and audits)."""
    ia, ib = int.from_bytes(a, "big"), int.from_bytes(b, "big")
    total = ia.bit_count() + ib.bit_count()
    return 2 * (ia & ib).bit_count() / total if total else 0.0
