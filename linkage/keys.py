"""Secret keys: generation, key files, the key check value (KCV) and HKDF subkeys.

One 256-bit secret is shared by the partners only. Every encoding uses a subkey derived from it with
HKDF-SHA256, scoped by project id, field and purpose, so tokens of one field cannot be compared with
another field's, nor with another project's. The KCV is a short MAC of a fixed constant: it shows whether
two parties hold the same key without revealing anything about the key.
"""

from __future__ import annotations

import contextlib
import hashlib
import hmac
import os
import secrets
import stat
import warnings
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


class KeyFilePermissionWarning(UserWarning):
    """A key file can be read by users other than its owner."""


def write_key_file(path: str | Path, key: bytes) -> None:
    """Write ``key`` to a new owner-read-only file, atomically; refuse to overwrite an existing one.

    The key goes into a temporary file in the same folder, is flushed to disk, and is then hard-linked
    to its name (which fails if the name exists). A full disk or a crash leaves no file under the key's
    name, so a rerun is never blocked by a 0-byte key.
    """
    path = Path(path)
    if len(key) != KEY_BYTES:
        raise KeyFileError(f"{path}: a key must be {KEY_BYTES} bytes")
    if path.exists() or path.is_symlink():
        raise KeyFileError(f"{path}: already exists; refusing to overwrite a key file")
    if not path.parent.is_dir():
        raise KeyFileError(f"{path}: folder {path.parent} does not exist")
    text = f"{KEY_FILE_HEADER}\n{key.hex()}\n".encode()
    tmp = path.parent / f".{path.name}.{secrets.token_hex(8)}.partial"
    try:
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o400)  # 0o400 = owner read only
    except OSError as exc:
        raise KeyFileError(f"{path}: cannot create key file ({exc.strerror})") from None
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(text)
            handle.flush()
            os.fsync(handle.fileno())
        os.link(tmp, path)  # atomic, and refuses an existing name (unlike rename)
    except FileExistsError:
        raise KeyFileError(f"{path}: already exists; refusing to overwrite a key file") from None
    except OSError as exc:
        raise KeyFileError(f"{path}: cannot write key file ({exc.strerror}); nothing was written") from None
    finally:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)


def check_key_permissions(path: str | Path) -> None:
    """Warn (once per call) when a key file is readable or writable by group or others."""
    path = Path(path)
    try:
        mode = path.stat().st_mode
    except OSError:
        return
    if os.name == "posix" and mode & (stat.S_IRWXG | stat.S_IRWXO):
        warnings.warn(f"{path}: key file is accessible to other users (mode {stat.S_IMODE(mode):04o}); "
                      f"restrict it with: chmod 400 {path}", KeyFilePermissionWarning, stacklevel=2)


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
    check_key_permissions(path)
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
