"""Do the cohort figures change when payloads travel as encrypted, minimised attribute packages?

Takes a demo folder written by the version before the split (``encoded/<source>/payload.parquet``,
``vrn/link/``, ``researcher/cohort/``), re-encodes the same raw extracts with the same project key,
checks that the identifier packages are byte-identical to the old ``tokens.parquet`` (so the old link
applies unchanged), releases the old link's crosswalk under a fresh release key, rebuilds the cohort from
the attribute packages and compares every released table, and the person-level frames, with the old run.

    python bench/separation_compare.py --before OLD_DEMO_DIR --work NEW_EMPTY_DIR
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import pandas as pd

from linkage import keys
from linkage.cohort import build_cohort
from linkage.demo import SOURCES
from linkage.encode import encode_extract
from linkage.link.pseudonyms import export_crosswalk
from linkage.resources import configs_dir


def person_signature(persons: pd.DataFrame, crosswalk: pd.DataFrame) -> pd.DataFrame:
    """The person frame keyed by each person's sorted record ids (person ids differ by design)."""
    records = (crosswalk.groupby("person_id")["record_id"].apply(lambda r: "|".join(sorted(r)))
               .rename("records"))
    out = persons.merge(records, left_on="person_id", right_index=True).drop(columns=["person_id"])
    out = out.drop(columns=[c for c in out.columns if c == "index_crime_ref"])  # pseudonymised by design
    return out.sort_values("records").reset_index(drop=True)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--before", type=Path, required=True)
    parser.add_argument("--work", type=Path, required=True)
    args = parser.parse_args()
    before, work = args.before, args.work
    work.mkdir(parents=True, exist_ok=False)
    key = keys.read_key_file(before / "partners" / "project.key")
    keys.write_analysis_keypair(work / "analysis.key", work / "analysis.pub")
    public = keys.read_analysis_public_key(work / "analysis.pub")
    (work / "identifiers").mkdir()
    (work / "attributes").mkdir()
    for source in SOURCES:
        encode_extract(configs_dir() / "partners" / f"{source}.yaml", key,
                       before / "partners" / "raw" / f"{source}.csv",
                       work / "identifiers" / source, quiet=True, analysis_public_key=public,
                       attributes_out=work / "attributes" / source)
        same = ((work / "identifiers" / source / "tokens.parquet").read_bytes()
                == (before / "encoded" / source / "tokens.parquet").read_bytes())
        print(f"{source}: identifier package tokens byte-identical to the old run: {same}")
        if not same:
            return 1
    export_crosswalk(before / "vrn" / "link", keys.generate_key(), work / "crosswalk")
    config = configs_dir() / "cohorts" / "high_harm.yaml"
    new = build_cohort(config, work / "crosswalk", [work / "attributes" / s for s in SOURCES], work / "cohort",
                       quiet=True, keep_persons=True, analysis_key=work / "analysis.key")
    old = build_cohort(config, before / "vrn" / "link", [before / "encoded" / s for s in SOURCES],
                       work / "cohort-old-layout", quiet=True, keep_persons=True)
    tables = sorted(p.name for p in (before / "researcher" / "cohort").glob("*.csv"))
    differing = [t for t in tables if (work / "cohort" / t).read_bytes()
                 != (before / "researcher" / "cohort" / t).read_bytes()]
    a = person_signature(old["persons"], pd.read_parquet(before / "vrn" / "link" / "crosswalk.parquet"))
    b = person_signature(new["persons"], pd.read_parquet(work / "crosswalk" / "crosswalk.parquet"))
    same_people = a["records"].tolist() == b["records"].tolist()
    columns = [c for c in a.columns if c in b.columns]
    differing_columns = [c for c in columns if not a[c].astype("string").fillna("<NA>").equals(
        b[c].astype("string").fillna("<NA>"))]
    result = {"people": len(a), "same_people": same_people, "tables_compared": len(tables),
              "tables_differing": differing, "person_columns_compared": len(columns),
              "person_columns_differing": differing_columns}
    print(json.dumps(result, indent=2))
    return 0 if same_people and not differing and not differing_columns else 1


if __name__ == "__main__":
    sys.exit(main())
