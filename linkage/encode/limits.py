"""Loss limits of the partner step: a run that would silently lose a population fails instead.

After an extract is read, the counts of rejected rows and blanked values are compared with the config's
limits (``max_rejected_share``, ``max_blanked_share``, 5% by default). Over a limit, or when every row
was rejected, the run stops with one line naming the file, the field, the share, the most common reason
and (the reasons carry it) the likely fix, before anything is written.
"""

from __future__ import annotations

from collections import Counter
from pathlib import Path

from linkage.config import PartnerConfig
from linkage.errors import LinkageInputError
from linkage.normalise import PLACEHOLDER_REASON


def _by_field(by_reason: dict[str, int]) -> dict[str, Counter[str]]:
    fields: dict[str, Counter[str]] = {}
    for key, count in by_reason.items():
        field, _, reason = key.partition(": ")
        fields.setdefault(field, Counter())[reason] += count
    return fields


def _share(n: int, total: int) -> str:
    return f"{100 * n / total:.1f}%" if total else "100%"


def check_loss(cfg: PartnerConfig, input_path: str | Path, rows_read: int, rows_accepted: int,
               rejected_by_reason: dict[str, int], blanked_by_reason: dict[str, int]) -> None:
    """Raise :class:`LinkageInputError` when the run lost more than the config allows (see module doc)."""
    file = str(input_path)
    if rows_read == 0:
        return
    rejected = rows_read - rows_accepted
    fields = _by_field(rejected_by_reason)
    worst = max(fields.items(), key=lambda kv: sum(kv[1].values()), default=None)
    if rows_accepted == 0 or rejected / rows_read > cfg.max_rejected_share:
        if worst is None:  # cannot happen with consistent counts; still say something useful
            raise LinkageInputError(f"{_share(rejected, rows_read)} of rows rejected", file=file)
        field, reasons = worst
        reason, _ = reasons.most_common(1)[0]
        what = "every row was rejected" if rows_accepted == 0 else (
            f"{_share(rejected, rows_read)} of rows rejected (limit {cfg.max_rejected_share:.0%})")
        raise LinkageInputError(f"{what}; {_share(sum(reasons.values()), rows_read)} for this field, most often: "
                                f"{reason}. Fix the config or the extract (or raise max_rejected_share)",
                                file=file, field=field)
    for field, reasons in sorted(_by_field(blanked_by_reason).items()):
        unusable = Counter({r: n for r, n in reasons.items() if r != PLACEHOLDER_REASON})
        total = sum(unusable.values())
        if total and total / rows_read > cfg.max_blanked_share:
            reason, _ = unusable.most_common(1)[0]
            raise LinkageInputError(f"{_share(total, rows_read)} of values blanked as unusable (limit "
                                    f"{cfg.max_blanked_share:.0%}), most often: {reason}. Fix the config or the "
                                    "extract (or raise max_blanked_share)", file=file, field=field)
