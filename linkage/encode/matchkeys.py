"""Date-of-birth-tolerant salts for composite name tokens (ONS match-key style).

A name token salted with the whole date of birth hides the name's frequency but stops agreeing as soon
as the date differs between two sources. The salts here are the date's *tolerance neighbourhood*: each
one-digit deletion of YYYYMMDD (one digit mistyped, or two adjacent digits swapped), the date with day
and month in order (day and month swapped), and two overlapping two-year windows of the same day and month
(year off by one, also across a decade: 1989 / 1990). Two dates within one such error share at least one
salt, so the same name agrees; each salt covers at most about ten dates, so a composite token of a name
and a salt stays about as rare as the name within ten days of birth.

The list always has :data:`SALT_COUNT` entries' worth of tokens (the encoder pads it with keyed fillers),
so its size tells nothing about the date (repeated digits give fewer distinct deletions).
"""

from __future__ import annotations

SALT_COUNT = 11  # 8 deletions + 1 ordered day/month + 2 year windows


def dob_tolerant_salts(digits: str) -> list[str]:
    """Salts of an 8-digit YYYYMMDD string (calendar date or a well-formed typo of one), sorted, distinct."""
    if len(digits) != 8 or not digits.isdigit():
        return []
    year, month, day = digits[:4], digits[4:6], digits[6:]
    salts = {"d" + digits[:i] + digits[i + 1:] for i in range(8)}
    salts.add("s" + year + "".join(sorted((month, day))))
    salts.add(f"a{month}{day}{int(year) // 2}")
    salts.add(f"b{month}{day}{(int(year) + 1) // 2}")
    return sorted(salts)
