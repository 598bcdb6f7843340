"""Shared file handling: atomic output folders, checksums, JSON, progress display.

Every command writes its outputs into a hidden temporary folder beside the target and renames it into
place only when the run succeeded, so a failed run leaves nothing half-written.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import shutil
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from tqdm import tqdm

from linkage.errors import OutputError


def check_output_dir(out_dir: str | Path) -> Path:
    """Refuse an output folder that exists and is not empty."""
    out = Path(out_dir)
    if out.exists() and (not out.is_dir() or any(out.iterdir())):
        raise OutputError(f"{out}: output folder exists and is not empty; choose a new folder")
    if out.parent.exists() and not out.parent.is_dir():
        raise OutputError(f"{out}: parent {out.parent} is a file, not a folder")
    return out


def staging_dir(out_dir: str | Path) -> Path:
    """A new hidden folder beside ``out_dir`` (checked to be usable) to write into before :func:`publish_dir`."""
    out = check_output_dir(out_dir)
    out.parent.mkdir(parents=True, exist_ok=True)  # `--out enc/police` works without making enc/ first
    return Path(tempfile.mkdtemp(prefix=f".{out.name}.partial-", dir=out.parent))


def publish_dir(staged: Path, out_dir: str | Path) -> None:
    """Rename a staging folder into place (``out_dir`` may exist only as an empty folder)."""
    out = Path(out_dir)
    if out.exists():
        out.rmdir()  # empty, checked by staging_dir; fails (and so refuses) if something appeared since
    os.replace(staged, out)


@contextlib.contextmanager
def atomic_output_dir(out_dir: str | Path) -> Iterator[Path]:
    """Yield a temporary folder; on success it becomes ``out_dir``, on failure it is removed."""
    tmp = staging_dir(out_dir)
    try:
        yield tmp
        publish_dir(tmp, out_dir)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


def atomic_write_bytes(path: str | Path, data: bytes) -> None:
    """Write a single file atomically (temp file in the same folder + rename)."""
    path = Path(path)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise


def sha256_file(path: str | Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def write_json(path: str | Path, data: Any) -> None:
    Path(path).write_text(json.dumps(data, indent=2, sort_keys=True, default=str) + "\n", encoding="utf-8")


def progress(total: int | None = None, desc: str = "", unit: str = "rows", quiet: bool = False) -> tqdm:
    """A progress bar on stderr (rows, rate, elapsed); silent when ``quiet`` or not a terminal in CI."""
    disable = quiet or (os.environ.get("CI") == "true" and not sys.stderr.isatty())
    return tqdm(total=total, desc=desc, unit=unit, unit_scale=True, disable=disable, file=sys.stderr,
                dynamic_ncols=True, mininterval=0.5)


class PhaseTimer:
    """Records how long each named phase took; shown as progress and stored in manifests."""

    def __init__(self, echo: bool = True) -> None:
        self.echo = echo
        self.timings: dict[str, float] = {}
        self._start = time.perf_counter()

    @contextlib.contextmanager
    def phase(self, name: str) -> Iterator[None]:
        t0 = time.perf_counter()
        if self.echo:
            print(f"[{time.perf_counter() - self._start:7.1f}s] {name} …", file=sys.stderr, flush=True)
        yield
        self.timings[name] = round(time.perf_counter() - t0, 3)

    @property
    def total(self) -> float:
        return round(time.perf_counter() - self._start, 3)


def write_json_atomic(path: str | Path, data: Any) -> Path:
    """Write JSON to a single file atomically; a missing folder is a one-line error, not a traceback."""
    path = Path(path)
    if not path.parent.is_dir():
        raise OutputError(f"{path}: folder {path.parent} does not exist")
    if path.is_dir():
        raise OutputError(f"{path}: is a folder; give a file name")
    atomic_write_bytes(path, (json.dumps(data, indent=2, sort_keys=True, default=str) + "\n").encode("utf-8"))
    return path


def die_with_parent() -> None:
    """Ask Linux to kill this (worker) process when its parent dies, even by ``kill -9``.

    A worker holds the project key in memory; it must not outlive the command that started it. Elsewhere
    (no prctl) this does nothing and the pool's own shutdown is the only guard.
    """
    if not sys.platform.startswith("linux"):
        return
    import ctypes
    import signal

    try:
        libc = ctypes.CDLL(None, use_errno=True)
        pr_set_pdeathsig = 1
        libc.prctl(pr_set_pdeathsig, int(signal.SIGKILL), 0, 0, 0)
    except (OSError, AttributeError):
        return
    if os.getppid() == 1:  # the parent died before the request took effect
        os._exit(1)
