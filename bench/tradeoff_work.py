"""The layout of a bench_tradeoff.py ``--work`` folder: the one place that names its files.

bench_tradeoff.py writes the folder; relink_same_key.py, threshold_candidates.py, blocking_recall.py and
diagnose_profile_losses.py read it back. Both sides take the paths from here, so a renamed file cannot leave a
reader looking in the wrong place:

    WORK/bench.key                        the run's key (one fresh key per run)
    WORK/linkage_bench.yaml               the shipped link config with DuckDB's memory capped (--memory-limit)
    WORK/febrl4_truth.csv, febrl3_truth.csv
    WORK/synth_<people>_<seed>/           synthetic extracts and truth.csv (seed + 1: the realistic population)
    WORK/messy_<messy_people>_<seed>/     the messy extract and truth.csv
    WORK/<profile>_<dataset>/             a profile's encodings (enc_<source>/) and link folders (link/, ...)

Datasets are named as in those folders: febrl4, febrl3, synthetic, messy (bench_tradeoff.py's ``--datasets``
says ``synth`` for synthetic).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class TradeoffWork:
    """One ``--work`` folder. ``people``, ``messy_people`` and ``seed`` are the run's ``--people``,
    ``--messy-people`` and ``--seed``: they name the synthetic and messy folders. The defaults are the runs the
    reading tools are used on (10,000 people, seed 1)."""

    root: Path
    people: int = 10_000
    messy_people: int = 10_000
    seed: int = 1

    @property
    def key_file(self) -> Path:
        """The run's key: the truth's record ids are keyed with it."""
        return self.root / "bench.key"

    @property
    def link_config(self) -> Path:
        """The link config a --memory-limit run wrote (without one the run links with configs/linkage.yaml)."""
        return self.root / "linkage_bench.yaml"

    def synth_dir(self, seed: int | None = None) -> Path:
        """The synthetic extracts of ``seed`` (default: the run's seed)."""
        return self.root / f"synth_{self.people}_{self.seed if seed is None else seed}"

    def messy_dir(self) -> Path:
        """The messy extract."""
        return self.root / f"messy_{self.messy_people}_{self.seed}"

    def truth(self, dataset: str) -> Path:
        """The truth CSV (source, local_id, person_id) of a dataset."""
        if dataset in ("febrl3", "febrl4"):
            return self.root / f"{dataset}_truth.csv"
        if dataset == "synthetic":
            return self.synth_dir() / "truth.csv"
        if dataset == "messy":
            return self.messy_dir() / "truth.csv"
        raise KeyError(f"{dataset!r}: not a dataset of a bench_tradeoff.py run (febrl3, febrl4, synthetic, messy)")

    def profile_dir(self, profile: str, dataset: str) -> Path:
        """A profile's folder for a dataset. A profile given as a partner-config path is named by the file's stem."""
        tag = Path(profile).stem if profile.endswith(".yaml") else profile
        return self.root / f"{tag}_{dataset}"
