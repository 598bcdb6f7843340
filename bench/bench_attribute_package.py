"""What the attribute package costs `linkage hash`: minimisation, Parquet writing and encryption, one run.

    python bench/bench_attribute_package.py [--rows 1000000] [--out bench/results/attribute_package.json]

Builds a police extract of --rows rows by tiling a synthetic 50,000-person police extract (nominal ids and
crime references made distinct per copy), then runs `linkage hash` with the shipped police config twice,
each in a fresh subprocess: without an analysis key (identifier package only; the payload is still parsed
and checked) and with one (identifier + attribute package). It then times the encryption alone: the same
plaintext Parquet sealed again by :class:`linkage.encrypt.EncryptingWriter` (HPKE key wrap + AES-256-GCM
stream). Reports wall and CPU seconds of each and the shares of the full `hash` time.
"""

from __future__ import annotations

import argparse
import io
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pandas as pd

REPO = Path(__file__).resolve().parents[1]


def make_extract(path: Path, rows: int, work: Path) -> None:
    from linkage.synth import generate_extracts

    generate_extracts(50_000, 2024, work / "synth", quiet=True)
    base = pd.read_csv(work / "synth" / "police.csv", dtype=str, keep_default_na=False)
    copies = -(-rows // len(base))
    with open(path, "w", encoding="utf-8", newline="") as handle:
        for i in range(copies):
            part = base.copy()
            part["nominal_id"] = part["nominal_id"] + f"-{i}"
            part["crime_ref"] = part["crime_ref"] + f"-{i}"
            take = min(len(part), rows - i * len(base))
            part.iloc[:take].to_csv(handle, index=False, header=i == 0)


def run_hash(csv: Path, out: Path, key: Path, public: Path | None) -> dict:
    code = f"""
import json, resource, time
from linkage.encode import encode_extract
from linkage.keys import read_analysis_public_key, read_key_file
public = read_analysis_public_key({str(public)!r}) if {public is not None} else None
t = time.perf_counter()
m = encode_extract({str(REPO / 'configs/partners/police.yaml')!r}, read_key_file({str(key)!r}), {str(csv)!r},
                   {str(out)!r}, quiet=True, analysis_public_key=public)
u = resource.getrusage(resource.RUSAGE_SELF)
print(json.dumps({{"seconds": time.perf_counter() - t, "cpu_seconds": u.ru_utime + u.ru_stime,
                   "rows": m["counts"]["rows_read"],
                   "attribute_counts": (m.get("attribute_package") or {{}}).get("counts")}}))
"""
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=REPO)
    return json.loads(result.stdout.strip().splitlines()[-1])


def time_encryption(package: Path, private_key_path: Path) -> dict:
    """Seal the package's plaintext again, timing only the encryption (HPKE wrap + AES-GCM stream)."""
    from linkage import keys
    from linkage.contracts.attribute_package import read_attribute_manifest
    from linkage.encrypt import EncryptingWriter, decrypt_file

    private = keys.read_analysis_private_key(private_key_path)
    m = read_attribute_manifest(package)
    plaintext = decrypt_file(package / "attributes.enc", private, plaintext_sha256=m.plaintext_sha256,
                             rows=m.counts.rows, tokens_sha256=m.identifier_package.tokens_sha256)
    sink = io.BytesIO()
    wall, cpu = time.perf_counter(), time.process_time()
    writer = EncryptingWriter(sink, private.public_key(), {"source": "bench"})
    for start in range(0, len(plaintext), 1 << 16):  # Parquet writes in pieces of this order
        writer.write(plaintext[start:start + (1 << 16)])
    writer.finish(m.counts.rows, m.identifier_package.tokens_sha256)
    return {"seconds": time.perf_counter() - wall, "cpu_seconds": time.process_time() - cpu,
            "plaintext_mb": len(plaintext) / 1e6, "ciphertext_mb": len(sink.getvalue()) / 1e6}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args()
    from linkage import keys

    with tempfile.TemporaryDirectory() as tmp_name:
        tmp = Path(tmp_name)
        csv = tmp / "police.csv"
        print(f"building a {args.rows:,}-row police extract …", file=sys.stderr)
        make_extract(csv, args.rows, tmp)
        keys.write_key_file(tmp / "project.key", keys.generate_key())
        keys.write_analysis_keypair(tmp / "analysis.key", tmp / "analysis.pub")
        print("hash without an analysis key …", file=sys.stderr)
        plain = run_hash(csv, tmp / "ids-only", tmp / "project.key", None)
        print("hash with an analysis key …", file=sys.stderr)
        sealed = run_hash(csv, tmp / "ids", tmp / "project.key", tmp / "analysis.pub")
        print("encryption alone …", file=sys.stderr)
        encryption = time_encryption(tmp / "ids-attributes", tmp / "analysis.key")
    result = {
        "rows": sealed["rows"], "hash_without_attributes": plain, "hash_with_attributes": sealed,
        "encryption_only": encryption,
        "encryption_share_of_hash_wall": encryption["seconds"] / sealed["seconds"],
        "encryption_share_of_hash_cpu": encryption["cpu_seconds"] / sealed["cpu_seconds"],
        "attribute_package_share_of_hash_wall": (sealed["seconds"] - plain["seconds"]) / sealed["seconds"],
    }
    print(json.dumps(result, indent=2))
    if args.out is not None:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(result, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
