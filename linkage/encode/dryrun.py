"""``linkage hash --dry-run``: what encoding would accept, blank and reject, per field, writing nothing.

It runs the encoder's own cleaning and checks (``ChunkEncoder.triage``) over the whole extract, so the
figures are exactly those a real run would record, but it stops before anything is keyed: no key is
needed, no token is computed and no file is written. The report holds counts and reasons only, never a
value, so it can be pasted into an email to the VRN when asking for help with a config.
"""

from __future__ import annotations

import datetime as dt
import secrets
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow.compute as pc

from linkage.config import PartnerConfig, load_partner_config
from linkage.encode.extract import ChunkEncoder, HashSet, read_chunks
from linkage.encode.sources import DatabaseSource
from linkage.errors import LinkageInputError
from linkage.io import progress


@dataclass
class FieldCheck:
    """One raw column: how many rows hold a value, and what the checks would do with it."""

    column: str
    role: str  # "local id", an identifier name, or "payload (type)"
    present: int = 0  # rows with a non-empty value
    accepted: int = 0  # present, and the row is kept with this value
    blanked: int = 0  # present but unusable: the row is kept without it
    rejected: int = 0  # rows rejected with this column as the (first) reason
    reasons: Counter[str] = field(default_factory=Counter)


@dataclass
class DryRun:
    """The result of a dry run: row totals and one :class:`FieldCheck` per configured column."""

    source: str
    rows_read: int
    rows_accepted: int
    placeholder_dobs: int
    fields: list[FieldCheck]

    @property
    def rows_rejected(self) -> int:
        return self.rows_read - self.rows_accepted

    @property
    def accepted_share(self) -> float:
        return self.rows_accepted / self.rows_read if self.rows_read else 0.0

    def to_frame(self) -> pd.DataFrame:
        return pd.DataFrame([{"column": f.column, "role": f.role, "present": f.present, "accepted": f.accepted,
                              "blanked": f.blanked, "rejected rows": f.rejected,
                              "main reason": f.reasons.most_common(1)[0][0] if f.reasons else ""}
                             for f in self.fields])

    def as_dict(self) -> dict[str, Any]:
        return {"source": self.source, "rows_read": self.rows_read, "rows_accepted": self.rows_accepted,
                "rows_rejected": self.rows_rejected, "placeholder_dobs": self.placeholder_dobs,
                "fields": [{"column": f.column, "role": f.role, "present": f.present, "accepted": f.accepted,
                            "blanked": f.blanked, "rejected": f.rejected, "reasons": dict(f.reasons)}
                           for f in self.fields]}

    def render(self) -> str:
        """A plain-text table for the terminal."""
        lines = [f"{self.source}: {self.rows_read:,} rows read; would accept {self.rows_accepted:,} "
                 f"({100 * self.accepted_share:.2f}%), reject {self.rows_rejected:,}; "
                 f"{self.placeholder_dobs:,} placeholder dates of birth read as unknown. Nothing was written.",
                 f"{'column':24s} {'role':22s} {'present':>9s} {'accepted':>9s} {'blanked':>9s} {'rejected':>9s}"
                 "  main reason"]
        for f in self.fields:
            reason = f.reasons.most_common(1)[0][0] if f.reasons else ""
            lines.append(f"{f.column[:24]:24s} {f.role[:22]:22s} {f.present:>9,} {f.accepted:>9,} {f.blanked:>9,} "
                         f"{f.rejected:>9,}  {reason}")
        return "\n".join(lines)


def dry_run(config: PartnerConfig | str | Path, input_path: str | Path | DatabaseSource, *, source: str | None = None,
            quiet: bool = False, today: dt.date | None = None) -> DryRun:
    """Check a whole extract under a partner config without a key and without writing anything."""
    cfg = config if isinstance(config, PartnerConfig) else load_partner_config(config)
    if source is not None:
        cfg = cfg.model_copy(update={"source": source})
    roles: dict[str, str] = {cfg.local_id: "local id"}
    for name, columns in cfg.identifiers.columns().items():
        for column in columns:
            roles.setdefault(column, name)
    for p in cfg.payload:
        roles.setdefault(p.column, f"payload ({p.type})")
    checks = {column: FieldCheck(column, role) for column, role in roles.items()}
    # The key only feeds token derivation, which a dry run never reaches: a throwaway one is safe.
    encoder = ChunkEncoder(cfg, secrets.token_bytes(32), today)
    seen_ids = HashSet()
    rows_read = rows_accepted = placeholders = 0
    first_row = 1
    bar = progress(desc=f"dry run {cfg.source}", quiet=quiet)
    try:
        reader_input: Path | DatabaseSource = input_path if isinstance(input_path, DatabaseSource) else Path(input_path)
        for chunk in read_chunks(reader_input, cfg, list(roles)):
            duplicates = np.zeros(chunk.num_rows, dtype=bool)
            if cfg.unique_local_id:
                local = pc.utf8_trim_whitespace(chunk.column(cfg.local_id).combine_chunks())
                duplicates = ~seen_ids.add(pd.util.hash_array(local.to_numpy(zero_copy_only=False).astype(object)))
            t = encoder.triage(chunk, first_row, duplicates)
            accepted = t.accepted.astype(bool)
            for column, check in checks.items():
                text = pc.utf8_trim_whitespace(chunk.column(column).combine_chunks())
                present = ~pc.equal(text, "").to_numpy(zero_copy_only=False)
                blanked = np.zeros(chunk.num_rows, dtype=bool)
                for mask, col, reason, action in t.problems:
                    if col == column and action == "blank":
                        blanked |= mask & accepted
                        check.reasons[f"blanked: {reason}"] += int((mask & accepted).sum())
                rejected_here = t.reject_field == column
                for mask, col, reason, action in t.problems:
                    if col == column and action == "reject":
                        check.reasons[f"rejected: {reason}"] += int((mask & rejected_here).sum())
                check.present += int(present.sum())
                check.blanked += int(blanked.sum())
                check.rejected += int(rejected_here.sum())
                check.accepted += int((present & accepted & ~blanked).sum())
            rows_read += chunk.num_rows
            rows_accepted += int(accepted.sum())
            placeholders += t.placeholders
            first_row += chunk.num_rows
            bar.update(chunk.num_rows)
    finally:
        bar.close()
    if rows_read == 0:
        raise LinkageInputError("file has a header but no data rows", file=str(input_path), row=1)
    for check in checks.values():
        check.reasons = Counter({k: v for k, v in check.reasons.items() if v})
    return DryRun(cfg.source, rows_read, rows_accepted, placeholders, list(checks.values()))
