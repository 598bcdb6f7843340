"""Local identifiers in each partner's own format, unique across a whole run.

Ids come from running counters scrambled by an affine map (a bijection modulo 10^k), so they look
random, never collide, and depend only on the seed and the order of generation.
"""

from __future__ import annotations

import numpy as np

from linkage.errors import LinkageConfigError

UPN_LETTERS = "ABCDEFGHJKLMNPQRTUVWXYZ"
_MULT = 7919  # prime, coprime with 10: k -> (k * _MULT + offset) mod 10^digits is a bijection


def upn_check_letter(body: str) -> str:
    """Check letter for the 12 characters after it (positions 2-13 weighted 2-13, mod 23)."""
    total = 0
    for weight, ch in enumerate(body, start=2):
        total += weight * (int(ch) if ch.isdigit() else UPN_LETTERS.index(ch))
    return UPN_LETTERS[total % 23]


def nhs_check_digit(nine: str) -> int | None:
    total = sum(int(c) * (10 - i) for i, c in enumerate(nine))
    check = 11 - total % 11
    return 0 if check == 11 else (None if check == 10 else check)


class IdFactory:
    """Hands out nominal ids, UPNs, temporary UPNs, LA child ids and NHS numbers."""

    def __init__(self, seed: int) -> None:
        rng = np.random.default_rng([seed, 7])
        self.offsets = {k: int(rng.integers(0, 10**9)) for k in ("nominal", "upn", "temp", "child", "nhs")}
        self.counters = dict.fromkeys(self.offsets, 0)

    def _next(self, kind: str, n: int, digits: int) -> np.ndarray:
        start = self.counters[kind]
        if start + n > 10**digits:
            raise LinkageConfigError(f"too many people for the {digits}-digit {kind} id format; "
                                     "generate fewer people per run")
        self.counters[kind] = start + n
        k = np.arange(start, start + n, dtype=np.int64)
        return (k * _MULT + self.offsets[kind]) % (10**digits)

    def nominal(self, n: int) -> list[str]:
        return [f"N{x:07d}" for x in self._next("nominal", n, 7).tolist()]

    def child_id(self, n: int) -> list[str]:
        return [f"LA{x:06d}" for x in self._next("child", n, 6).tolist()]

    def upn(self, la_codes: np.ndarray, years: np.ndarray) -> list[str]:
        """Permanent UPN: check letter, LA (3), establishment (4), year of allocation (2), serial (3)."""
        xs = self._next("upn", len(la_codes), 7).tolist()
        out = []
        for la, year, x in zip(la_codes.tolist(), years.tolist(), xs, strict=True):
            body = f"{la}{x // 1000:04d}{year % 100:02d}{x % 1000:03d}"
            out.append(upn_check_letter(body) + body)
        return out

    def temporary_upn(self, la_codes: np.ndarray) -> list[str]:
        """Temporary UPN: as a UPN but the 13th character is a letter."""
        xs = self._next("temp", len(la_codes), 8).tolist()
        out = []
        for la, x in zip(la_codes.tolist(), xs, strict=True):
            body = f"{la}{x:08d}{UPN_LETTERS[x % 23]}"
            out.append(upn_check_letter(body) + body)
        return out

    def nhs_number(self, n: int) -> list[str]:
        """Valid NHS numbers (mod-11 check digit); four candidates per id, the first valid one is used."""
        base = self._next("nhs", 4 * n, 8).reshape(n, 4) + 400_000_000
        out = []
        for row in base.tolist():
            for cand in row:
                check = nhs_check_digit(str(cand))
                if check is not None:
                    out.append(f"{cand}{check}")
                    break
            else:
                out.append("")
        return out
