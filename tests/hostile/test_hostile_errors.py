"""Errors never carry a clear value, name the file/row/field, and leave nothing behind.

``--debug`` (before or after the command) shows a traceback whose messages are withheld unless they are
our own; duplicate keys and headers are errors; a bad byte is blamed on its row; a full disk, a signal or
a killed parent leaves no half-written key, output folder or worker.
"""

from __future__ import annotations

import errno
import json
import os
import signal
import subprocess
import sys
import textwrap
import time
import traceback
from pathlib import Path

import pytest

from linkage import keys
from linkage import normalise as nz
from linkage.cli import describe_unexpected, scrubbed_traceback
from linkage.errors import KeyFileError

from .conftest import (
    assert_nothing_written,
    assert_refused,
    config_dict,
    people,
    run_cli,
    write_config,
    write_csv,
)

ROOT = Path(__file__).resolve().parents[2]
SECRET = "Quentinella"


def _hash_args(tmp_path, key_file, raw, cfg=None):
    cfg = cfg or write_config(tmp_path / "p.yaml", config_dict())
    return ["hash", "--config", str(cfg), "--key", str(key_file), "--input", str(raw),
            "--out", str(tmp_path / "enc"), "--quiet", "--no-audit"]  # input handling, not the release audit


@pytest.fixture
def leaky_library(monkeypatch):
    """A library error that quotes the value it choked on, as pyarrow, pandas and strptime do."""
    def clean_name(raw, placeholders=()):
        raise ValueError(f"could not handle {raw!r}")
    monkeypatch.setattr(nz, "clean_name", clean_name)


@pytest.mark.parametrize("where", ["before", "after"])
def test_debug_traceback_is_scrubbed_of_values(tmp_path, key_file, leaky_library, where):
    rows = people(20)
    rows[0][1] = SECRET
    raw = write_csv(tmp_path / "in.csv", rows)
    args = _hash_args(tmp_path, key_file, raw)
    args = ["--debug", *args] if where == "before" else [*args, "--debug"]
    result = run_cli(*args)
    assert result.exit_code != 0
    assert "Traceback (most recent call last, values scrubbed)" in result.output
    assert "ValueError" in result.output and "clean_name" in result.output  # useful: type and frames
    assert SECRET not in result.output and "message withheld" in result.output
    assert_nothing_written(tmp_path, "enc")


def test_unscrubbed_traceback_would_leak_the_value():
    try:
        raise ValueError(f"could not handle {SECRET!r}")
    except ValueError as exc:
        assert SECRET in "".join(traceback.format_exception(exc))  # what plain --debug printed before
        assert SECRET not in scrubbed_traceback(exc)


def test_unexpected_error_without_debug_is_one_line(tmp_path, key_file, leaky_library):
    raw = write_csv(tmp_path / "in.csv", [[*people(1)[0][:1], SECRET, *people(1)[0][2:]]])
    line = assert_refused(run_cli(*_hash_args(tmp_path, key_file, raw)), clear=[SECRET])
    assert "ValueError" in line


def test_ragged_row_with_debug_shows_no_row_text(tmp_path, key_file):
    raw = write_csv(tmp_path / "in.csv", people(20))
    with open(raw, "a") as handle:
        handle.write(f"P9,{SECRET},Smith,01/01/2001,M,LE1 1AB,E9,extra,fields\n")
    result = run_cli("--debug", *_hash_args(tmp_path, key_file, raw))
    assert result.exit_code != 0 and "row 21" in result.output
    assert SECRET not in result.output


def test_non_utf8_byte_is_blamed_on_its_data_row(tmp_path, key_file):
    raw = write_csv(tmp_path / "in.csv", people(20))
    lines = raw.read_bytes().split(b"\n")
    lines[11] = lines[11].replace(b"Smith", b"Sm\xe9th").replace(b"Patel", b"P\xe9tel").replace(b"Jones", b"J\xe9nes")
    lines[11] = lines[11][:10] + b"\xe9" + lines[11][10:]
    raw.write_bytes(b"\n".join(lines))
    line = assert_refused(run_cli(*_hash_args(tmp_path, key_file, raw)), names="row 11")
    assert "set input.encoding" in line


def test_duplicate_csv_header_is_an_error(tmp_path, key_file):
    header = ["person_ref", "forename", "surname", "dob", "sex", "postcode", "surname"]
    raw = write_csv(tmp_path / "in.csv", people(20), header=header)
    assert_refused(run_cli(*_hash_args(tmp_path, key_file, raw)), names="field 'surname'")


def test_duplicate_yaml_key_is_an_error(tmp_path, key_file):
    raw = write_csv(tmp_path / "in.csv", people(20))
    cfg = tmp_path / "p.yaml"
    text = json.dumps(config_dict(), indent=1)
    cfg.write_text(text.replace('"source": "police",', '"source": "police",\n "source": "health",'))
    line = assert_refused(run_cli(*_hash_args(tmp_path, key_file, raw, cfg)), names="appears twice")
    assert "source" in line
    import yaml

    assert yaml.safe_load(cfg.read_text())["source"] == "health"  # a plain loader silently keeps the last


def test_unknown_codec_is_a_config_error(tmp_path, key_file):
    raw = write_csv(tmp_path / "in.csv", people(20))
    cfg = write_config(tmp_path / "p.yaml", config_dict(input={"encoding": "utf-99"}))
    assert_refused(run_cli(*_hash_args(tmp_path, key_file, raw, cfg)), names="unknown text encoding")


def test_row_longer_than_the_read_block_is_read(tmp_path, key_file):
    rows = people(20)
    rows[4][6] = "x" * (5 << 20)  # 5 MB, more than one 4 MB read block
    raw = write_csv(tmp_path / "in.csv", rows)
    result = run_cli(*_hash_args(tmp_path, key_file, raw))
    assert result.exit_code == 0 and "accepted 20" in result.output


def test_keygen_on_a_full_disk_leaves_no_key(tmp_path, monkeypatch):
    path = tmp_path / "project.key"

    def full(fd):
        raise OSError(errno.ENOSPC, "No space left on device")
    monkeypatch.setattr(os, "fsync", full)
    with pytest.raises(KeyFileError, match="No space left"):
        keys.write_key_file(path, keys.generate_key())
    assert list(tmp_path.iterdir()) == []  # neither a 0-byte key nor a temporary file
    monkeypatch.undo()
    keys.write_key_file(path, keys.generate_key())  # the rerun is not blocked
    assert keys.read_key_file(path)


def test_world_readable_key_is_used_with_a_warning(tmp_path, key_file):
    os.chmod(key_file, 0o644)
    result = run_cli("keycheck", str(key_file))
    assert result.exit_code == 0
    assert "warning:" in result.output and "chmod 400" in result.output


def test_unexpected_types_get_real_messages():
    full = OSError(errno.ENOSPC, "No space left on device")
    full.filename = "/data/out/tokens.parquet"
    assert describe_unexpected(full)[0].startswith("disk full writing /data/out/tokens.parquet")
    assert "too large" in describe_unexpected(OverflowError("int too big"))[0]
    assert "unexpected" not in describe_unexpected(MemoryError())[0]


def test_sigterm_removes_the_partial_output(tmp_path):
    script = textwrap.dedent(f"""
        import sys, time
        sys.path.insert(0, {str(ROOT)!r})
        import typer
        from linkage.cli import run_safely
        from linkage.io import atomic_output_dir

        def work():
            with atomic_output_dir({str(tmp_path / "out")!r}) as tmp:
                (tmp / "half.txt").write_text("x")
                print("ready", flush=True)
                time.sleep(60)
        try:
            run_safely(work)
        except typer.Exit as exc:
            sys.exit(exc.exit_code)
    """)
    proc = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    assert proc.stdout.readline().strip() == "ready"
    assert list(tmp_path.glob(".out.partial-*"))
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=30)
    assert proc.returncode == 143 and "terminated" in err
    assert_nothing_written(tmp_path, "out")


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="prctl is Linux-only")
def test_worker_dies_with_a_killed_parent(tmp_path):
    script = textwrap.dedent(f"""
        import multiprocessing as mp, sys, time
        sys.path.insert(0, {str(ROOT)!r})
        from linkage.io import die_with_parent

        def child():
            die_with_parent()
            time.sleep(60)

        if __name__ == "__main__":
            p = mp.get_context("spawn").Process(target=child)
            p.start()
            print(p.pid, flush=True)
            time.sleep(60)
    """)
    (tmp_path / "parent.py").write_text(script)
    parent = subprocess.Popen([sys.executable, str(tmp_path / "parent.py")], stdout=subprocess.PIPE, text=True)
    child = int(parent.stdout.readline())
    time.sleep(1.0)  # let the child reach die_with_parent
    parent.kill()
    parent.wait(timeout=10)
    for _ in range(50):
        try:
            os.kill(child, 0)
        except ProcessLookupError:
            return
        # A zombie (dead, not yet reaped by init) counts as dead.
        status = Path(f"/proc/{child}/status")
        if status.exists() and "zombie" in status.read_text():
            return
        time.sleep(0.1)
    os.kill(child, signal.SIGKILL)
    pytest.fail("worker outlived its killed parent")


def test_quoted_line_breaks_past_the_read_block_are_refused_with_the_row(tmp_path, key_file):
    rows = people(20)
    rows[3][6] = "line one\n" * 700_000  # a 6 MB quoted value of many lines
    raw = write_csv(tmp_path / "in.csv", rows)
    line = assert_refused(run_cli(*_hash_args(tmp_path, key_file, raw)), names="row 4")
    assert "4 MB" in line
    assert_nothing_written(tmp_path, "enc")
