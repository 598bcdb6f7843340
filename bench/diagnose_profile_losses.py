"""Where the privacy-first (shipped) profile loses pairs against the unhardened one: a per-category table.

    nice -n 15 python bench/diagnose_profile_losses.py --datasets messy,febrl3 --messy-people 10000 \\
        --memory-limit 3GB --json bench/results/diagnose_profile_losses.json

One fresh key; each dataset encoded and linked with both profiles through bench_tradeoff.py's functions. The
pairs are the crosswalk's (every pair of records in one predicted person, as the pairwise F1 counts them).
Two sets are classified by what differs in the clear records (a benchmark tool: it reads clear data and truth):

* **lost**: true pairs the unhardened profile links and the shipped one does not (recall the profile costs);
* **gained false**: false pairs the shipped profile links and the unhardened one does not (precision it costs).

Per pair: date (same / missing / one error: one digit, day-month swap or year +-1 / other), postcode (same /
missing / typo: one edit / moved), given name (same / missing / swapped with the surname / nickname / typo:
<= 2 edits / other), surname (same / missing / typo / changed), and whether the two share surname and postcode
(household). Prints the top category combinations of each set.
"""

from __future__ import annotations

import argparse
import collections
import itertools
import json
import sys
import time
from pathlib import Path
from typing import Any

import jellyfish
import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from bench_tradeoff import dataset_key, datasets, link_config, run_one  # noqa: E402
from tradeoff_work import TradeoffWork  # noqa: E402

from linkage.contracts import read_link_output  # noqa: E402
from linkage.encode.evidence import name_aliases  # noqa: E402
from linkage.keys import generate_key, record_id, write_key_file  # noqa: E402


def clear_records(ds: dict) -> pd.DataFrame:
    """Clear identifiers per (source, local_id): given, surname, dob (YYYYMMDD digits), postcode (no spaces)."""
    frames = []
    for _, raw, src in ds["inputs"]:
        df = pd.read_csv(raw, dtype=str, skipinitialspace=True, keep_default_na=False)
        df.columns = [c.strip() for c in df.columns]
        lid = "rec_id" if "rec_id" in df.columns else "record_id"
        dob = df["date_of_birth"].str.strip()
        if dob.str.contains("/").any():  # messy: DD/MM/YYYY
            parts = dob.str.split("/", expand=True).reindex(columns=[0, 1, 2]).fillna("")
            dob = (parts[2] + parts[1] + parts[0]).where(dob != "", "")
        frames.append(pd.DataFrame({
            "source": src, "local_id": df[lid].str.strip(),
            "given": df["given_name"].str.strip().str.lower(), "surname": df["surname"].str.strip().str.lower(),
            "dob": dob, "postcode": df["postcode"].str.strip().str.upper().str.replace(" ", "", regex=False)}))
    return pd.concat(frames, ignore_index=True)


def cluster_pairs(link_dir: Path, key: bytes, clear: pd.DataFrame) -> set[tuple[int, int]]:
    """Every pair of records (as row numbers of the clear frame) within one predicted person."""
    link = read_link_output(link_dir, key=key)
    project = link.manifest.project_id
    ids = {record_id(key, project, s, lid): i for i, (s, lid) in enumerate(zip(clear.source, clear.local_id,
                                                                                strict=True))}
    cw = pd.read_parquet(link.crosswalk_path, columns=["person_id", "record_id"])
    cw["row"] = cw.record_id.map(ids)
    cw = cw.dropna(subset=["row"])
    out: set[tuple[int, int]] = set()
    for rows in cw.groupby("person_id").row.apply(list):
        if len(rows) > 1:
            out.update((int(a), int(b)) for a, b in itertools.combinations(sorted(rows), 2))
    return out


def one_edit(a: str, b: str) -> bool:
    return jellyfish.damerau_levenshtein_distance(a, b) <= 1


def date_kind(a: str, b: str) -> str:
    if not a or not b:
        return "date missing"
    if a == b:
        return "date same"
    if len(a) == len(b) == 8 and (
        a[:4] + a[6:] + a[4:6] == b or abs(int(a[:4]) - int(b[:4])) == 1 and a[4:] == b[4:]
        or sum(x != y for x, y in zip(a, b, strict=True)) == 1 or one_edit(a, b)):
        return "date 1err"
    return "date other"


def postcode_kind(a: str, b: str) -> str:
    if not a or not b:
        return "pc missing"
    if a == b:
        return "pc same"
    return "pc typo" if one_edit(a, b) else "pc moved"


def given_kind(g1: str, s1: str, g2: str, s2: str) -> str:
    if not g1 or not g2:
        return "given missing"
    if g1 == g2:
        return "given same"
    if s1 and s2 and (g1 == s2 or one_edit(g1, s2)) and (g2 == s1 or one_edit(g2, s1)):
        return "given swapped"
    if set(name_aliases(g1)) & set(name_aliases(g2)):
        return "given nickname"
    if jellyfish.damerau_levenshtein_distance(g1, g2) <= 2:
        return "given typo"
    if any(one_edit(x, y) for x in name_aliases(g1) for y in name_aliases(g2)):
        return "given nickname+typo"
    return "given other"


def surname_kind(g1: str, s1: str, g2: str, s2: str) -> str:
    if not s1 or not s2:
        return "sur missing"
    if s1 == s2:
        return "sur same"
    if g1 and g2 and (g1 == s2 or one_edit(g1, s2)) and (g2 == s1 or one_edit(g2, s1)):
        return "sur swapped"
    return "sur typo" if jellyfish.damerau_levenshtein_distance(s1, s2) <= 2 else "sur changed"


def classify(r1: Any, r2: Any) -> str:
    parts = [date_kind(r1.dob, r2.dob), postcode_kind(r1.postcode, r2.postcode),
             given_kind(r1.given, r1.surname, r2.given, r2.surname),
             surname_kind(r1.given, r1.surname, r2.given, r2.surname)]
    if r1.surname and r1.surname == r2.surname and r1.postcode and r1.postcode == r2.postcode:
        parts.append("household")
    return " | ".join(parts)


def marginals(pairs: list[tuple[int, int]], clear: pd.DataFrame) -> dict[str, int]:
    counts: collections.Counter[str] = collections.Counter()
    for a, b in pairs:
        for part in classify(clear.iloc[a], clear.iloc[b]).split(" | "):
            counts[part] += 1
    return dict(counts.most_common())


def table(title: str, pairs: list[tuple[int, int]], clear: pd.DataFrame, top: int) -> dict[str, Any]:
    counts = collections.Counter(classify(clear.iloc[a], clear.iloc[b]) for a, b in pairs)
    print(f"\n{title}: {len(pairs)} pairs")
    for combo, n in counts.most_common(top):
        print(f"  {n:6d}  {100 * n / max(len(pairs), 1):5.1f}%  {combo}")
    m = marginals(pairs, clear)
    print("  per field: " + ", ".join(f"{k} {v}" for k, v in m.items()))
    return {"pairs": len(pairs), "top": counts.most_common(top), "per_field": m}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--datasets", default="messy,febrl3")
    parser.add_argument("--profiles", default="shipped,unhardened", help="the profile to diagnose, then the "
                        "reference (bench_tradeoff.py names or partner-config paths)")
    parser.add_argument("--messy-people", type=int, default=10_000)
    parser.add_argument("--people", type=int, default=10_000)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--top", type=int, default=15)
    parser.add_argument("--work", type=Path, default=Path("/tmp/linkage-bench-diagnose"))
    parser.add_argument("--memory-limit", default=None)
    parser.add_argument("--json", type=Path, default=None)
    args = parser.parse_args()
    args.work.mkdir(parents=True, exist_ok=True)
    key = generate_key()
    key_file = TradeoffWork(args.work).key_file
    key_file.unlink(missing_ok=True)
    write_key_file(key_file, key)
    link_cfg = link_config(args.work, args.memory_limit)
    diagnosed, reference = args.profiles.split(",")
    report: dict[str, Any] = {}
    for ds in datasets(args.work, args.datasets.split(","), args.people, args.messy_people, args.seed):
        t0 = time.perf_counter()
        rows = {p: run_one(args.work, ds, p, key, key_file, False, link_cfg) for p in (diagnosed, reference)}
        clear = clear_records(ds)
        truth = pd.read_csv(ds["truth"], dtype=str)
        person = dict(zip(zip(truth.source, truth.local_id, strict=True), truth.person_id, strict=True))
        clear["person"] = [person.get((s, lid)) for s, lid in zip(clear.source, clear.local_id, strict=True)]
        pairs = {p: cluster_pairs(TradeoffWork(args.work).profile_dir(p, dataset_key(ds)) / "link", key, clear)
                 for p in (diagnosed, reference)}
        same = clear.person.to_numpy()
        lost = sorted(p for p in pairs[reference] - pairs[diagnosed] if same[p[0]] == same[p[1]])
        false = sorted(p for p in pairs[diagnosed] - pairs[reference] if same[p[0]] != same[p[1]])
        print(f"\n== {ds['name']}: {diagnosed} F1 {rows[diagnosed]['f1']:.4f} (P {rows[diagnosed]['precision']:.4f}"
              f" R {rows[diagnosed]['recall']:.4f}); {reference} F1 {rows[reference]['f1']:.4f}"
              f" (P {rows[reference]['precision']:.4f} R {rows[reference]['recall']:.4f})", flush=True)
        report[ds["name"]] = {
            "f1": {p: {k: rows[p][k] for k in ("precision", "recall", "f1")} for p in rows},
            "lost_true": table(f"(a) true pairs {reference} links, {diagnosed} misses", lost, clear, args.top),
            "gained_false": table(f"(b) false pairs {diagnosed} links, {reference} does not", false, clear,
                                  args.top),
            "wall_s": round(time.perf_counter() - t0, 1)}
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(report, indent=2) + "\n")


if __name__ == "__main__":
    main()
