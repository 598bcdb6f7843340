"""Error types. Each is caught once, in ``linkage.cli``, and printed as one line.

Messages name the file, row and field at fault but never a value from a partner extract: an error
message can end up in a log or a ticket, where a clear identifier must never go.
"""

from __future__ import annotations


class LinkageError(Exception):
    """Base class: a problem the user can fix, reported without a traceback."""

    exit_code = 2


class LinkageInputError(LinkageError):
    """A file given to a command is missing, unreadable or malformed."""

    def __init__(self, message: str, *, file: str | None = None, row: int | None = None,
                 field: str | None = None) -> None:
        where = []
        if file is not None:
            where.append(str(file))
        if row is not None:
            where.append(f"row {row}")
        if field is not None:
            where.append(f"field '{field}'")
        prefix = ", ".join(where)
        super().__init__(f"{prefix}: {message}" if prefix else message)
        self.file, self.row, self.field = file, row, field


class LinkageConfigError(LinkageError):
    """A configuration file does not validate."""


class KeyFileError(LinkageError):
    """A key file is missing, unreadable, too short or would be overwritten."""


class OutputError(LinkageError):
    """The output location cannot be used (for example it is a non-empty folder)."""


class ManifestMismatchError(LinkageError):
    """Encoded extracts disagree (key check value, project id, checksums) and must not be linked."""
