"""Streaming readers for raw partner extracts (CSV, Parquet, Excel), in chunks of bounded size.

Every reader yields DataFrames of strings (missing = ""), whatever the input format, so the encoder has
one code path. File-level problems (missing file, undecodable text, wrong delimiter, absent columns)
raise :class:`LinkageInputError` naming the file and, where known, the row and column.
"""

from __future__ import annotations

import codecs
import contextlib
from collections.abc import Iterator
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv
import pyarrow.parquet as pq

from linkage.config import InputFormat
from linkage.errors import LinkageInputError

READ_BLOCK_BYTES = 4 << 20
MAX_HEADER_BYTES = 1 << 20


def _check_columns(path: Path, header: list[str], needed: list[str], cfg: InputFormat) -> None:
    seen: set[str] = set()
    for position, name in enumerate(header, start=1):
        if name in seen and name:
            raise LinkageInputError(f"column name appears twice in the header (again at position {position}); "
                                    "a reader would silently take one of them", file=str(path), row=0, field=name)
        seen.add(name)
    missing = [c for c in needed if c not in header]
    if not missing:
        return
    if cfg.format == "csv" and len(header) == 1:
        other = next((d for d in (";", "\t", "|", ",") if d != cfg.delimiter and d in header[0]), None)
        if other is not None:
            raise LinkageInputError(
                f"the header has one column but contains {other!r}: wrong delimiter? "
                f"(config says {cfg.delimiter!r})", file=str(path), row=0)
    raise LinkageInputError(f"mapped column is absent from the header (found {len(header)} columns)",
                            file=str(path), row=0, field=missing[0])


def _csv_encoding(cfg: InputFormat) -> str:
    # A UTF-8 byte-order mark is common in files saved by Excel; utf-8-sig reads both with and without.
    name = codecs.lookup(cfg.encoding).name
    return "utf-8-sig" if name == "utf-8" else cfg.encoding


def _iter_csv(path: Path, cfg: InputFormat, needed: list[str], chunk_rows: int) -> Iterator[pa.Table]:
    encoding = _csv_encoding(cfg)
    # Decode the header line alone: a text-mode readline decodes a whole buffer, so a bad byte in a
    # data row near the top would be blamed on the header.
    with open(path, "rb") as raw:
        first = raw.readline(MAX_HEADER_BYTES + 1)
    if len(first) > MAX_HEADER_BYTES:
        raise LinkageInputError("header row is longer than 1 MB; is this a CSV file?", file=str(path), row=0)
    try:
        header_line = first.decode(encoding)
    except UnicodeDecodeError:
        raise LinkageInputError(f"header is not valid {cfg.encoding} text; set input.encoding "
                                "(e.g. cp1252 for Windows files)", file=str(path), row=0) from None
    if not header_line.strip():
        raise LinkageInputError("file is empty (no header row)", file=str(path), row=0)
    header = [h.strip() for h in _split_header(header_line, cfg.delimiter)]
    _check_columns(path, header, needed, cfg)
    # Arrow's multi-threaded CSV reader; every column read as text so no value is silently re-typed.
    read = pacsv.ReadOptions(encoding="utf8" if encoding == "utf-8-sig" else encoding,
                             block_size=READ_BLOCK_BYTES, use_threads=True,
                             skip_rows=1, column_names=header)
    parse = pacsv.ParseOptions(delimiter=cfg.delimiter, newlines_in_values=False)
    convert = pacsv.ConvertOptions(column_types={h: pa.string() for h in header}, strings_can_be_null=False,
                                   include_columns=[h for h in dict.fromkeys(needed)])
    try:
        with pacsv.open_csv(path, read_options=read, parse_options=parse, convert_options=convert) as reader:
            yield from _rechunk(reader, chunk_rows)
    except pa.ArrowInvalid as exc:
        text = str(exc)
        if "straddling" in text.lower() or "block" in text.lower():
            raise LinkageInputError("a row (or a quoted value) is longer than the 4 MB read block; split or "
                                    "clean the file", file=str(path),
                                    row=_first_long_row(path, cfg, encoding)) from None
        if "UTF8" in text.upper() or "decode" in text.lower():
            raise LinkageInputError(f"text is not valid {cfg.encoding}; set input.encoding "
                                    "(e.g. cp1252 for Windows files)", file=str(path),
                                    row=_first_bad_row(path, cfg, encoding)) from None
        ragged = _first_bad_row(path, cfg, encoding)
        long_row = _first_long_row(path, cfg, encoding) if ragged is None else None
        if long_row is not None:  # the fast reader split a long quoted value that the csv module reads whole
            raise LinkageInputError("a row (or a quoted value with line breaks) is longer than the 4 MB read "
                                    "block; split or clean the file", file=str(path), row=long_row) from None
        raise LinkageInputError("row has a different number of fields from the header", file=str(path),
                                row=ragged) from None


def _rechunk(batches: Iterator[pa.RecordBatch], chunk_rows: int) -> Iterator[pa.Table]:
    """Regroup reader batches (sized in bytes) into tables of exactly ``chunk_rows`` rows (last one fewer)."""
    pending: list[pa.RecordBatch] = []
    held = 0
    for batch in batches:
        pending.append(batch)
        held += batch.num_rows
        while held >= chunk_rows:
            table = pa.Table.from_batches(pending)
            yield table.slice(0, chunk_rows).combine_chunks()
            rest = table.slice(chunk_rows)
            pending, held = rest.to_batches(), rest.num_rows
    if held:
        yield pa.Table.from_batches(pending).combine_chunks()


def _first_bad_row(path: Path, cfg: InputFormat, encoding: str) -> int | None:
    """Find the data row that breaks the file (slow path, only after an error)."""
    import csv

    try:
        with open(path, encoding=encoding, newline="") as handle, _big_fields():
            rows = csv.reader(handle, delimiter=cfg.delimiter)
            width = len(next(rows))
            for number, row in enumerate(rows, start=1):
                if len(row) != width:
                    return number
    except csv.Error:
        return None
    except UnicodeDecodeError:
        # Count complete lines that decode, to name the row holding the bad byte.
        with open(path, "rb") as handle:
            for number, line in enumerate(handle):
                try:
                    line.decode(encoding)
                except UnicodeDecodeError:
                    return number
    return None


@contextlib.contextmanager
def _big_fields() -> Iterator[None]:
    """Let the csv module read fields up to the read block (its default limit is 128 kB)."""
    import csv

    previous = csv.field_size_limit(READ_BLOCK_BYTES * 4)
    try:
        yield
    finally:
        csv.field_size_limit(previous)


def _first_long_row(path: Path, cfg: InputFormat, encoding: str, limit: int = READ_BLOCK_BYTES) -> int | None:
    """The first data row (1 = first after the header) longer than ``limit`` characters, quoted line
    breaks included (slow path, only after an error; one row in memory at a time)."""
    import csv

    try:
        with open(path, encoding=encoding, newline="") as handle, _big_fields():
            rows = csv.reader(handle, delimiter=cfg.delimiter)
            next(rows, None)
            for number, row in enumerate(rows, start=1):
                if sum(len(field) for field in row) > limit:
                    return number
    except (csv.Error, UnicodeDecodeError):  # e.g. a field over 16 MB: the message still names the file
        return None
    return None


def _split_header(line: str, delimiter: str) -> list[str]:
    import csv

    return next(csv.reader([line.rstrip("\r\n")], delimiter=delimiter))


def _iter_parquet(path: Path, cfg: InputFormat, needed: list[str], chunk_rows: int) -> Iterator[pa.Table]:
    try:
        parquet = pq.ParquetFile(path)
    except Exception:
        raise LinkageInputError("not a readable Parquet file", file=str(path)) from None
    _check_columns(path, parquet.schema_arrow.names, needed, cfg)
    try:
        for batch in parquet.iter_batches(batch_size=chunk_rows, columns=list(dict.fromkeys(needed))):
            yield pa.table({name: pc.fill_null(column_as_text(batch.column(name)), "") for name in batch.schema.names})
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError, OSError):
        raise LinkageInputError("a column cannot be read as text (damaged file or nested type)",
                                file=str(path)) from None


def column_as_text(column: pa.Array) -> pa.Array:
    """A Parquet column as text; native dates and timestamps in the native date form, never re-typed."""
    kind = column.type
    if pa.types.is_date(kind) or pa.types.is_timestamp(kind):
        # Whole seconds (sub-second parts dropped); Arrow's %Y zero-pads years before 1000.
        seconds = pc.cast(column, pa.timestamp("s", tz=getattr(kind, "tz", None)), safe=False)
        return pc.strftime(seconds, format="%Y-%m-%dT%H:%M:%S")
    return column.cast(pa.string())


def _iter_xlsx(path: Path, cfg: InputFormat, needed: list[str], chunk_rows: int) -> Iterator[pa.Table]:
    import openpyxl

    try:
        book = openpyxl.load_workbook(path, read_only=True, data_only=True)
    except Exception:
        raise LinkageInputError("not a readable .xlsx workbook", file=str(path)) from None
    try:
        if cfg.sheet is not None and cfg.sheet not in book.sheetnames:
            raise LinkageInputError(f"worksheet {cfg.sheet!r} not found", file=str(path))
        sheet = book[cfg.sheet] if cfg.sheet else book.worksheets[0]
        rows = sheet.iter_rows(values_only=True)
        first = next(rows, None)
        if first is None:
            raise LinkageInputError("worksheet is empty (no header row)", file=str(path), row=0)
        header = ["" if v is None else str(v).strip() for v in first]
        _check_columns(path, header, needed, cfg)
        buffer: list[list[str]] = []
        for values in rows:
            buffer.append([_cell_text(v) for v in values])
            if len(buffer) >= chunk_rows:
                yield _rows_to_table(buffer, header, needed)
                buffer = []
        if buffer:
            yield _rows_to_table(buffer, header, needed)
    finally:
        book.close()


def _rows_to_table(rows: list[list[str]], header: list[str], needed: list[str]) -> pa.Table:
    wanted = list(dict.fromkeys(needed))
    where = {name: header.index(name) for name in wanted}
    return pa.table({name: pa.array([r[i] if i < len(r) else "" for r in rows], type=pa.string())
                     for name, i in where.items()})


def _native_date_text(value: object) -> str:
    """A native date or datetime in :data:`~linkage.normalise.NATIVE_DATE_FORMAT` (zero-padded years)."""
    import datetime as dt

    if isinstance(value, dt.datetime):
        moment = value
    elif isinstance(value, dt.date):
        moment = dt.datetime(value.year, value.month, value.day)
    else:
        return str(value)
    return (f"{moment.year:04d}-{moment.month:02d}-{moment.day:02d}T"
            f"{moment.hour:02d}:{moment.minute:02d}:{moment.second:02d}")


def _cell_text(value: object) -> str:
    import datetime as dt

    if value is None:
        return ""
    if isinstance(value, dt.date | dt.datetime):
        # Excel stores dates as numbers; openpyxl returns datetimes. They are passed on in the native
        # date form, which date fields accept whatever formats the config lists.
        return _native_date_text(value)
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def iter_chunks(path: str | Path, cfg: InputFormat, needed: list[str], chunk_rows: int) -> Iterator[pa.Table]:
    """Yield the needed columns of the extract in chunks (Arrow tables of strings; missing = "")."""
    path = Path(path)
    if not path.is_file():
        raise LinkageInputError("input file not found", file=str(path))
    if path.stat().st_size == 0:
        raise LinkageInputError("input file is empty", file=str(path), row=0)
    readers = {"csv": _iter_csv, "parquet": _iter_parquet, "xlsx": _iter_xlsx}
    yield from readers[cfg.format](path, cfg, needed, chunk_rows)
