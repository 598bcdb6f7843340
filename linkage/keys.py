"""Secret keys: generation, key files, the key check value (KCV) and HKDF subkeys.

One 256-bit secret is shared by the partners only. Every encoding uses a subkey derived from it with
HKDF-SHA256, scoped by project id, field and purpose, so tokens of one field cannot be compared with
another field's, nor with another project's. The KCV is a short MAC of a fixed constant: it shows whether
two parties hold the same key without revealing anything about the key.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import secrets
from functools import lru_cache
from pathlib import Path

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from linkage.errors import KeyFileError

KEY_BYTES = 32
KEY_FILE_HEADER = "linkage-key-v1"
_KCV_CONSTANT = b"linkage key check value v1"


def generate_key() -> bytes:
    """A fresh 256-bit secret from the operating system's CSPRNG."""
    return secrets.token_bytes(KEY_BYTES)


def write_key_file(path: str | Path, key: bytes) -> None:
    """Write ``key`` to a new owner-read-only file; refuse to overwrite an existing one."""
    path = Path(path)
    if len(key) != KEY_BYTES:
        raise KeyFileError(f"{path}: a key must be {KEY_BYTES} bytes")
    if path.exists():
        raise KeyFileError(f"{path}: already exists; refusing to overwrite a key file")
    if not path.parent.exists():
        raise KeyFileError(f"{path}: folder {path.parent} does not exist")
    text = f"{KEY_FILE_HEADER}\n{key.hex()}\n".encode()
    # O_EXCL makes creation atomic with the existence check; 0o400 = owner read only.
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o400)
    except FileExistsError:
        raise KeyFileError(f"{path}: already exists; refusing to overwrite a key file") from None
    except OSError as exc:
        raise KeyFileError(f"{path}: cannot create key file ({exc.strerror})") from None
    with os.fdopen(fd, "wb") as handle:
        handle.write(text)


def read_key_file(path: str | Path) -> bytes:
    """Read and validate a key file written by :func:`write_key_file`."""
    path = Path(path)
    if not path.is_file():
        raise KeyFileError(f"{path}: key file not found")
    try:
        text = path.read_text(encoding="ascii")
    except (OSError, UnicodeDecodeError):
        raise KeyFileError(f"{path}: key file is unreadable or not a linkage key file") from None
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    if len(lines) != 2 or lines[0] != KEY_FILE_HEADER:
        raise KeyFileError(f"{path}: not a linkage key file (expected header '{KEY_FILE_HEADER}')")
    try:
        key = bytes.fromhex(lines[1])
    except ValueError:
        raise KeyFileError(f"{path}: key is not valid hexadecimal") from None
    if len(key) < KEY_BYTES:
        raise KeyFileError(f"{path}: key is too short ({len(key) * 8} bits; need {KEY_BYTES * 8})")
    return key


def key_check_value(key: bytes) -> str:
    """Six-byte hex MAC of a fixed constant: safe to print, share and store in manifests."""
    return hmac.new(key, _KCV_CONSTANT, hashlib.sha256).hexdigest()[:12]


@lru_cache(maxsize=256)
def derive_subkey(key: bytes, project_id: str, field: str, purpose: str) -> bytes:
    """HKDF-SHA256 subkey bound to one project, one field and one purpose."""
    info = f"linkage/v1/{project_id}/{field}/{purpose}".encode()
    return HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=info).derive(key)


def record_id(key: bytes, project_id: str, source: str, local_id: str) -> str:
    """Keyed pseudonym of a partner's local record id: stable across runs, meaningless without the key."""
    subkey = derive_subkey(key, project_id, "record_id", "pseudonym")
    return hashlib.blake2b(f"{source}\x1f{local_id}".encode(), key=subkey, digest_size=16).hexdigest()
