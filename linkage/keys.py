"""Secret keys: generation, key files, the key check value (KCV) and HKDF subkeys.

One 256-bit secret is shared by the partners only. Every encoding uses a subkey derived from it with
HKDF-SHA256, scoped by project id, field and purpose, so tokens of one field cannot be compared with
another field's, nor with another project's. The KCV is a short MAC of a fixed constant: it shows whether
two parties hold the same key without revealing anything about the key.

Also here: the analysis environment's X25519 key pair (attribute packages are encrypted to it) and
the per-release pseudonym of a person id that the linkage unit hands to the analysis environment.
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

from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey, X25519PublicKey
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


def _read_hex_key_file(path: Path, header: str, what: str) -> bytes:
    """The key bytes of a two-line key file (``header``, then the key in hex); one-line errors naming the file
    and ``what`` it should be, never the file's content."""
    if not path.is_file():
        raise KeyFileError(f"{path}: {what} not found")
    try:
        lines = [line.strip() for line in path.read_text(encoding="ascii").splitlines() if line.strip()]
    except (OSError, UnicodeDecodeError):
        raise KeyFileError(f"{path}: unreadable or not a {what}") from None
    if len(lines) != 2 or lines[0] != header:
        raise KeyFileError(f"{path}: not a {what} (expected header '{header}')")
    try:
        return bytes.fromhex(lines[1])
    except ValueError:
        raise KeyFileError(f"{path}: key is not valid hexadecimal") from None


def read_key_file(path: str | Path) -> bytes:
    """Read and validate a key file written by :func:`write_key_file`."""
    path = Path(path)
    key = _read_hex_key_file(path, KEY_FILE_HEADER, "linkage key file")
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


# --- the analysis environment's key pair ----------------------------------------------------------
# Partners encrypt attribute packages to the analysis environment's X25519 public key; only the
# holder of the private key (the analysis step) can open them. The public key's fingerprint is what
# partners confirm out of band (phone, signed letter) before trusting a public key file they were sent.

ANALYSIS_PUBLIC_HEADER = "linkage-analysis-public-key-v1"
ANALYSIS_PRIVATE_HEADER = "linkage-analysis-private-key-v1"


def generate_analysis_keypair() -> X25519PrivateKey:
    """A fresh X25519 private key for the analysis environment."""
    return X25519PrivateKey.generate()


def public_key_bytes(key: X25519PublicKey | X25519PrivateKey) -> bytes:
    public = key.public_key() if isinstance(key, X25519PrivateKey) else key
    return public.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)


def public_key_fingerprint(key: X25519PublicKey | X25519PrivateKey) -> str:
    """SHA-256 of the raw public key, first 128 bits, in groups of four hex digits (safe to print)."""
    digest = hashlib.sha256(b"linkage analysis key fingerprint v1\x00" + public_key_bytes(key)).hexdigest()[:32]
    return ":".join(digest[i:i + 4] for i in range(0, 32, 4))


def _write_new_file(path: Path, text: str, mode: int, what: str) -> None:
    if path.exists():
        raise KeyFileError(f"{path}: already exists; refusing to overwrite a {what}")
    if not path.parent.exists():
        raise KeyFileError(f"{path}: folder {path.parent} does not exist")
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, mode)
    except FileExistsError:
        raise KeyFileError(f"{path}: already exists; refusing to overwrite a {what}") from None
    except OSError as exc:
        raise KeyFileError(f"{path}: cannot create {what} ({exc.strerror})") from None
    with os.fdopen(fd, "w", encoding="ascii") as handle:
        handle.write(text)


def write_analysis_keypair(private_path: str | Path, public_path: str | Path) -> str:
    """Write a new analysis key pair (private key owner-read-only); return the public key's fingerprint."""
    private_path, public_path = Path(private_path), Path(public_path)
    if public_path.exists():  # checked first so that a refusal leaves no orphan private key behind
        raise KeyFileError(f"{public_path}: already exists; refusing to overwrite a public key file")
    private = generate_analysis_keypair()
    raw = private.private_bytes(serialization.Encoding.Raw, serialization.PrivateFormat.Raw,
                                serialization.NoEncryption())
    _write_new_file(private_path, f"{ANALYSIS_PRIVATE_HEADER}\n{raw.hex()}\n", 0o400, "private key file")
    _write_new_file(public_path, f"{ANALYSIS_PUBLIC_HEADER}\n{public_key_bytes(private).hex()}\n", 0o444,
                    "public key file")
    return public_key_fingerprint(private)


def _read_x25519_key_file(path: Path, header: str, what: str) -> bytes:
    raw = _read_hex_key_file(path, header, what)
    if len(raw) != 32:
        raise KeyFileError(f"{path}: an X25519 key is 32 bytes, found {len(raw)}")
    return raw


def read_analysis_public_key(path: str | Path) -> X25519PublicKey:
    return X25519PublicKey.from_public_bytes(
        _read_x25519_key_file(Path(path), ANALYSIS_PUBLIC_HEADER, "analysis public key file"))


def read_analysis_private_key(path: str | Path) -> X25519PrivateKey:
    return X25519PrivateKey.from_private_bytes(
        _read_x25519_key_file(Path(path), ANALYSIS_PRIVATE_HEADER, "analysis private key file"))


# --- per-release pseudonym keys -------------------------------------------------------------------
# The linkage unit keeps one secret per release of a crosswalk; released person ids are an HMAC of the
# internal person id under it, so two releases cannot be joined without the linkage unit's consent.

def release_person_id(release_key: bytes, person_id: str) -> str:
    """Per-release pseudonym of an internal person id (128-bit HMAC-SHA256, hex)."""
    return hmac.new(release_key, b"linkage release person id v1\x00" + person_id.encode(),
                    hashlib.sha256).hexdigest()[:32]
