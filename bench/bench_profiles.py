"""FEBRL4 and FEBRL3 pairwise accuracy of one partner encoding profile under the shipped link config.

    python bench/bench_profiles.py configs/partners/febrl.yaml /tmp/profile-shipped        # the hardened default
    python bench/bench_profiles.py configs/partners/unhardened/febrl.yaml /tmp/profile-unhardened

Each run makes a fresh key, encodes FEBRL4 a/b and FEBRL3 with the profile, links with the shipped
link config and evaluates against the FEBRL truth (bench only: reads /work/shared/data/febrl).
"""

import shutil
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_link_accuracy import FEBRL, febrl_truth  # noqa: E402

from linkage import keys  # noqa: E402
from linkage.encode import encode_extract  # noqa: E402
from linkage.link import evaluate_link, link_extracts  # noqa: E402

cfg, work = Path(sys.argv[1]), Path(sys.argv[2])
shutil.rmtree(work, ignore_errors=True)
work.mkdir(parents=True)
key = keys.generate_key()
keys.write_key_file(work / "k.key", key)
for name, files in {"febrl4": {"febrl4a": FEBRL / "dataset4a.csv", "febrl4b": FEBRL / "dataset4b.csv"},
                    "febrl3": {"febrl3": FEBRL / "dataset3.csv"}}.items():
    truth = febrl_truth(files, work / f"{name}_truth.csv")
    dirs = []
    for s, p in files.items():
        encode_extract(cfg, key, p, work / s, source=s, quiet=True)
        dirs.append(work / s)
    t = time.time()
    link_extracts(dirs, work / f"link_{name}", quiet=True, allow_unaudited=True)  # encoded here without the audit
    r = evaluate_link(work / f"link_{name}", truth, work / "k.key")
    p = r["pairwise"]
    print(name, cfg, f"P {p['precision']:.4f} R {p['recall']:.4f} F1 {p['f1']:.4f}", f"{time.time() - t:.0f}s",
          flush=True)
