"""Leicester, Leicestershire and Rutland geography for the generator: areas, postcodes, ethnic mix.

An *area* is a postcode sector (e.g. ``LE3 9``) with its local authority, Neighbourhood Policing Area,
district and a deprivation score. Weights are invented to give an LLR-like spread with the
synthetic population's over-representation of deprived city neighbourhoods; sector lists are plausible,
not a gazetteer. Ethnic mix per profile follows the 2021 census pattern (Leicester about 60% minority
ethnic, the county far less, Rutland mostly White British), rounded.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache

import numpy as np

LA_CODES = {"Leicester": "856", "Leicestershire": "855", "Rutland": "857"}

# (postcode district, sectors, LA, district, NPA, deprivation 0..1, ethnic profile, weight)
_AREAS: list[tuple[str, str, str, str, str, float, str, float]] = [
    ("LE1", "1234567", "Leicester", "Leicester", "Central Leicester", 0.75, "city_central", 2.0),
    ("LE2", "01", "Leicester", "Leicester", "Central Leicester", 0.85, "city_east", 3.0),
    ("LE2", "37", "Leicester", "Leicester", "South Leicester", 0.45, "city_central", 2.0),
    ("LE2", "689", "Leicester", "Leicester", "South Leicester", 0.90, "city_white", 4.0),  # Saffron, Eyres Monsell
    ("LE3", "0125", "Leicester", "Leicester", "West Leicester", 0.85, "city_white", 4.5),  # Braunstone
    ("LE3", "69", "Leicester", "Leicester", "West Leicester", 0.90, "city_white", 3.5),  # New Parks
    ("LE3", "8", "Leicester", "Leicester", "West Leicester", 0.40, "city_central", 1.0),
    ("LE4", "012", "Leicester", "Leicester", "West Leicester", 0.85, "city_white", 3.5),  # Beaumont Leys
    ("LE4", "5679", "Leicester", "Leicester", "East Leicester", 0.65, "city_asian", 5.0),  # Belgrave, Rushey Mead
    ("LE5", "345", "Leicester", "Leicester", "East Leicester", 0.90, "city_east", 5.0),  # Spinney Hill
    ("LE5", "0126", "Leicester", "Leicester", "East Leicester", 0.55, "city_asian", 3.0),  # Humberstone, Evington
    ("LE11", "1234", "Leicestershire", "Charnwood", "Charnwood", 0.55, "county_town", 3.0),  # Loughborough
    ("LE11", "5", "Leicestershire", "Charnwood", "Charnwood", 0.30, "county", 0.8),
    ("LE12", "5789", "Leicestershire", "Charnwood", "Charnwood", 0.15, "county", 1.2),
    ("LE7", "147", "Leicestershire", "Charnwood", "Charnwood", 0.25, "county_town", 1.3),  # Syston
    ("LE4", "34", "Leicestershire", "Charnwood", "Charnwood", 0.30, "county_town", 1.0),  # Birstall
    ("LE10", "0123", "Leicestershire", "Hinckley and Bosworth", "Hinckley & Blaby", 0.45, "county", 2.5),
    ("LE9", "27", "Leicestershire", "Hinckley and Bosworth", "Hinckley & Blaby", 0.35, "county", 1.0),
    ("LE19", "1234", "Leicestershire", "Blaby", "Hinckley & Blaby", 0.30, "county", 1.3),
    ("LE8", "46", "Leicestershire", "Blaby", "Hinckley & Blaby", 0.25, "county", 0.8),
    ("LE67", "23456", "Leicestershire", "North West Leicestershire", "North West Leicestershire", 0.50,
     "county", 2.4),  # Coalville
    ("LE65", "12", "Leicestershire", "North West Leicestershire", "North West Leicestershire", 0.25,
     "county", 0.8),
    ("DE74", "2", "Leicestershire", "North West Leicestershire", "North West Leicestershire", 0.25,
     "county", 0.3),
    ("LE16", "79", "Leicestershire", "Harborough", "Harborough", 0.20, "county", 1.0),
    ("LE17", "45", "Leicestershire", "Harborough", "Harborough", 0.20, "county", 0.7),
    ("LE2", "45", "Leicestershire", "Oadby and Wigston", "Oadby & Wigston", 0.20, "county_asian", 1.0),
    ("LE18", "1234", "Leicestershire", "Oadby and Wigston", "Oadby & Wigston", 0.40, "county", 1.2),
    ("LE13", "01", "Leicestershire", "Melton", "Melton & Rutland", 0.40, "county", 1.3),
    ("LE14", "234", "Leicestershire", "Melton", "Melton & Rutland", 0.15, "county", 0.5),
    ("LE15", "6789", "Rutland", "Rutland", "Melton & Rutland", 0.15, "rutland", 0.7),
    ("PE9", "3", "Rutland", "Rutland", "Melton & Rutland", 0.15, "rutland", 0.2),
]

# 18+1 ethnicity code probabilities per profile (young population, so slightly more diverse than adults).
_PROFILES: dict[str, str] = {
    "city_central": "W1:30 W2:1 W9:8 M1:3 M2:1 M3:2 M9:1 A1:28 A2:4 A3:2 A4:3 A9:4 B1:1 B2:7 B9:1 O1:2 O9:2",
    "city_east": "W1:12 W9:6 M1:2 M2:1 M3:2 M9:1 A1:30 A2:8 A3:6 A9:6 B1:1 B2:14 B9:1 O1:5 O9:4",
    "city_asian": "W1:18 W9:5 M1:2 M3:2 M9:1 A1:55 A2:3 A3:2 A4:1 A9:4 B1:1 B2:3 O1:1 O9:2",
    "city_white": "W1:68 W2:1 W3:1 W9:7 M1:6 M2:2 M3:1 M9:2 A1:4 A2:1 A9:1 B1:2 B2:2 B9:1 O9:1",
    "county_town": "W1:72 W2:1 W9:6 M1:2 M2:1 M3:2 M9:1 A1:8 A2:1 A3:1 A4:2 A9:1 B2:1 O9:1",
    "county_asian": "W1:55 W2:1 W9:4 M1:1 M3:2 M9:1 A1:25 A2:3 A4:2 A9:3 B2:1 O9:2",
    "county": "W1:86 W2:1 W3:1 W9:5 M1:2 M2:1 M3:1 M9:1 A1:1 A4:0.5 B1:0.3 B2:0.2",
    "rutland": "W1:92 W2:1 W9:4 M1:1 M3:1 M9:0.5 A1:0.3 A4:0.2",
}
ETHNICITY_CODES = ("W1", "W2", "W3", "W9", "M1", "M2", "M3", "M9", "A1", "A2", "A3", "A4", "A9",
                   "B1", "B2", "B9", "O1", "O9")
# DfE main code for each 18+1 code (education and social-care extracts).
DFE_ETHNICITY = {"W1": "WBRI", "W2": "WIRI", "W3": "WIRT", "W9": "WOTH", "M1": "MWBC", "M2": "MWBA",
                 "M3": "MWAS", "M9": "MOTH", "A1": "AIND", "A2": "APKN", "A3": "ABAN", "A4": "CHNE",
                 "A9": "AOTH", "B1": "BCRB", "B2": "BAFR", "B9": "BOTH", "O1": "OOTH", "O9": "OOTH"}
# Postcode unit letters never used in the inward code (C I K M O V).
UNIT_LETTERS = np.array(list("ABDEFGHJLNPQRSTUWXYZ"))


@dataclass(frozen=True)
class AreaTable:
    """Sector-level areas as parallel arrays (index = area id)."""

    sector: np.ndarray        # "LE3 9"
    la: np.ndarray            # "Leicester"
    district: np.ndarray
    npa: np.ndarray
    deprivation: np.ndarray   # 0..1
    profile: np.ndarray       # index into PROFILE_NAMES
    weight: np.ndarray        # sampling probability

    def __len__(self) -> int:
        return len(self.sector)


PROFILE_NAMES = tuple(_PROFILES)


# Households per local authority relative to the weights above. The city keeps more than its ONS share of
# residents (about 46% of the synthetic residents against 33% in Census 2021), so its at-risk young people
# are visible at test sizes, but no longer 61%: the SNA's LLR-wide rate is a population-weighted mean of
# the district rates, and with 61% city residents it came out at 46 per 1,000 against the published 39.6
# although every district rate was right (docs/synthetic-data.md).
LA_HOUSEHOLD_SCALE = {"Leicester": 0.55, "Leicestershire": 1.0, "Rutland": 1.0}


@cache
def areas() -> AreaTable:
    rows = []
    for pc_district, sectors, la, district, npa, dep, profile, weight in _AREAS:
        for s in sectors:
            rows.append((f"{pc_district} {s}", la, district, npa, dep, PROFILE_NAMES.index(profile),
                         weight * LA_HOUSEHOLD_SCALE[la] / len(sectors)))
    cols = list(zip(*rows, strict=True))
    w = np.array(cols[6], dtype=float)
    return AreaTable(np.array(cols[0], dtype=object), np.array(cols[1], dtype=object),
                     np.array(cols[2], dtype=object), np.array(cols[3], dtype=object),
                     np.array(cols[4], dtype=float), np.array(cols[5], dtype=np.int64), w / w.sum())


@cache
def ethnicity_matrix() -> np.ndarray:
    """(profile, ethnicity code) probability matrix."""
    out = np.zeros((len(PROFILE_NAMES), len(ETHNICITY_CODES)))
    for i, name in enumerate(PROFILE_NAMES):
        for item in _PROFILES[name].split():
            code, w = item.split(":")
            out[i, ETHNICITY_CODES.index(code)] = float(w)
    return out / out.sum(axis=1, keepdims=True)


def random_postcodes(rng: np.random.Generator, area_ids: np.ndarray) -> np.ndarray:
    """A full postcode in each given area's sector, e.g. ``LE2 1AB`` (valid UK format)."""
    n = len(area_ids)
    letters = UNIT_LETTERS[rng.integers(0, len(UNIT_LETTERS), size=(n, 2))]
    sector = areas().sector[area_ids]
    return np.array([f"{s}{a}{b}" for s, a, b in zip(sector, letters[:, 0], letters[:, 1], strict=True)],
                    dtype=object)
