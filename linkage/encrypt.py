"""Encryption of an attribute package to the analysis environment's public key (streamed, authenticated).

Construction (all primitives from ``cryptography``):

* a fresh random 256-bit content key per package, sealed to the recipient's X25519 public key with
  HPKE (RFC 9180, base mode: DHKEM(X25519, HKDF-SHA256), HKDF-SHA256, AES-256-GCM); the HPKE ``info``
  is the package header, so the header (recipient fingerprint, source, project, extract id) cannot be
  altered without the content key failing to open;
* the plaintext (a Parquet file) in fixed-size chunks, each sealed with AES-256-GCM under the content
  key; the nonce is the chunk counter plus a "last chunk" flag (the STREAM construction of Hoang et
  al., 2015), so chunks cannot be reordered, dropped or truncated at a chunk boundary unnoticed;
* every chunk's associated data is the header's SHA-256; the last chunk's also holds the plaintext's
  SHA-256, row count and the identifier package's tokens checksum, so the manifest's copies of them are
  authenticated too.

HPKE in ``cryptography`` is single-shot, which is why it seals only the content key and the stream is
chunked on top: memory stays bounded by one chunk however large the payload.

File layout: ``MAGIC | u32 header length | header JSON | u32 sealed-key length | sealed key | chunks``.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import struct
from pathlib import Path
from typing import Any, BinaryIO

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hpke
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey, X25519PublicKey
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from linkage.errors import LinkageInputError, ManifestMismatchError
from linkage.keys import public_key_fingerprint

MAGIC = b"LNKAP\x00\x01\n"
FORMAT = "linkage-attribute-package/1"
CHUNK_BYTES = 1 << 20
TAG_BYTES = 16
MAX_HEADER_BYTES = 1 << 16
_HPKE_INFO = b"linkage attribute package v1\x00"
_SUITE = hpke.Suite(hpke.KEM.X25519, hpke.KDF.HKDF_SHA256, hpke.AEAD.AES_256_GCM)
ALGORITHM = {"kem": "DHKEM(X25519, HKDF-SHA256)", "kdf": "HKDF-SHA256", "aead": "AES-256-GCM",
             "content": "AES-256-GCM STREAM"}


def _nonce(counter: int, last: bool) -> bytes:
    return counter.to_bytes(11, "big") + (b"\x01" if last else b"\x00")


def trailer_bytes(plaintext_sha256: str, rows: int, tokens_sha256: str | None) -> bytes:
    """The facts the last chunk authenticates (canonical JSON)."""
    return json.dumps({"plaintext_sha256": plaintext_sha256, "rows": rows, "tokens_sha256": tokens_sha256},
                      sort_keys=True, separators=(",", ":")).encode()


class EncryptingWriter(io.RawIOBase):
    """A write-only file object: bytes written to it are encrypted chunk by chunk into ``sink``.

    ``pyarrow.parquet.ParquetWriter`` writes straight into it, so no plaintext payload reaches the disk.
    Call :meth:`finish` (not only ``close``) with the facts the last chunk must authenticate.
    """

    def __init__(self, sink: BinaryIO, recipient: X25519PublicKey, header: dict[str, Any],
                 chunk_bytes: int = CHUNK_BYTES) -> None:
        super().__init__()
        self.sink, self.chunk_bytes = sink, chunk_bytes
        self.header = {**header, "format": FORMAT, **ALGORITHM, "chunk_bytes": chunk_bytes,
                       "recipient_fingerprint": public_key_fingerprint(recipient)}
        header_json = json.dumps(self.header, sort_keys=True, separators=(",", ":")).encode()
        content_key = os.urandom(32)
        sealed = _SUITE.encrypt(content_key, recipient, info=_HPKE_INFO + header_json)
        sink.write(MAGIC + struct.pack(">I", len(header_json)) + header_json + struct.pack(">I", len(sealed)) + sealed)
        self._aead = AESGCM(content_key)
        self._aad = hashlib.sha256(MAGIC + header_json).digest()
        self._buffer = bytearray()
        self._counter = 0
        self._written = 0
        self.plaintext = hashlib.sha256()
        self.finished = False

    def writable(self) -> bool:
        return True

    def tell(self) -> int:
        return self._written

    def write(self, data) -> int:
        view = memoryview(data).cast("B")
        self.plaintext.update(view)
        self._buffer += view
        self._written += len(view)
        # Keep at least one byte back: the last chunk is only known to be last at finish().
        while len(self._buffer) > self.chunk_bytes:
            chunk = bytes(self._buffer[:self.chunk_bytes])
            del self._buffer[:self.chunk_bytes]
            self.sink.write(self._aead.encrypt(_nonce(self._counter, False), chunk, self._aad))
            self._counter += 1
        return len(view)

    def finish(self, rows: int, tokens_sha256: str | None) -> str:
        """Seal the last chunk, binding the plaintext checksum and counts; returns the plaintext SHA-256."""
        digest = self.plaintext.hexdigest()
        aad = self._aad + trailer_bytes(digest, rows, tokens_sha256)
        self.sink.write(self._aead.encrypt(_nonce(self._counter, True), bytes(self._buffer), aad))
        self._buffer.clear()
        self.finished = True
        return digest


def read_header(path: Path) -> tuple[dict[str, Any], bytes, bytes, int]:
    """(header, header bytes, sealed key, offset of the first chunk); raises on a malformed file."""
    with open(path, "rb") as handle:
        start = handle.read(len(MAGIC) + 4)
        if len(start) < len(MAGIC) + 4 or start[:len(MAGIC)] != MAGIC:
            raise LinkageInputError("not an encrypted attribute package (bad magic bytes)", file=str(path))
        (n,) = struct.unpack(">I", start[len(MAGIC):])
        if n > MAX_HEADER_BYTES:
            raise LinkageInputError("attribute package header is implausibly long", file=str(path))
        header_json = handle.read(n)
        raw_len = handle.read(4)
        if len(header_json) != n or len(raw_len) != 4:
            raise LinkageInputError("attribute package is truncated inside its header", file=str(path))
        (k,) = struct.unpack(">I", raw_len)
        if k > 1024:
            raise LinkageInputError("attribute package sealed key is implausibly long", file=str(path))
        sealed = handle.read(k)
        if len(sealed) != k:
            raise LinkageInputError("attribute package is truncated inside its header", file=str(path))
    try:
        header = json.loads(header_json)
    except (json.JSONDecodeError, UnicodeDecodeError):
        raise LinkageInputError("attribute package header is not valid JSON", file=str(path)) from None
    if not isinstance(header, dict) or header.get("format") != FORMAT:
        raise LinkageInputError(f"attribute package header is not format {FORMAT}", file=str(path))
    return header, header_json, sealed, len(MAGIC) + 4 + n + 4 + k


def decrypt_file(path: str | Path, private_key: X25519PrivateKey, *, plaintext_sha256: str, rows: int,
                 tokens_sha256: str | None) -> bytes:
    """Decrypt and authenticate a whole package; returns the plaintext only if every check passes.

    The expected checksum, row count and tokens checksum come from the package manifest: they are part
    of the last chunk's associated data, so a manifest that disagrees with what the partner sealed fails
    authentication exactly as altered ciphertext does.
    """
    path = Path(path)
    header, header_json, sealed, offset = read_header(path)
    mine = public_key_fingerprint(private_key)
    theirs = header.get("recipient_fingerprint")
    if theirs != mine:
        raise ManifestMismatchError(f"{path}: encrypted to analysis key {theirs}, but this analysis key is {mine}; "
                                    "ask the partner to re-encrypt to the right public key")
    try:
        content_key = _SUITE.decrypt(sealed, private_key, info=_HPKE_INFO + header_json)
    except InvalidTag:
        raise ManifestMismatchError(f"{path}: authentication failed on the sealed key or header "
                                    "(tampered or damaged); refusing to use it") from None
    chunk_bytes = header.get("chunk_bytes")
    if not isinstance(chunk_bytes, int) or not 1 <= chunk_bytes <= 1 << 26:
        raise LinkageInputError("attribute package header has an invalid chunk size", file=str(path))
    aead = AESGCM(content_key)
    aad = hashlib.sha256(MAGIC + header_json).digest()
    final_aad = aad + trailer_bytes(plaintext_sha256, rows, tokens_sha256)
    out = bytearray()
    block = chunk_bytes + TAG_BYTES
    with open(path, "rb") as handle:
        handle.seek(offset)
        current = handle.read(block)
        counter = 0
        while True:
            following = handle.read(block)
            last = not following
            try:
                out += aead.decrypt(_nonce(counter, last), current, final_aad if last else aad)
            except InvalidTag:
                raise ManifestMismatchError(
                    f"{path}: authentication failed at chunk {counter} (ciphertext tampered, truncated or "
                    "reordered, or the manifest's checksum/row count altered); refusing to use it") from None
            if last:
                break
            current, counter = following, counter + 1
    if hashlib.sha256(out).hexdigest() != plaintext_sha256:  # cannot happen unless the AAD check is broken
        raise ManifestMismatchError(f"{path}: plaintext checksum differs from the manifest")
    return bytes(out)
