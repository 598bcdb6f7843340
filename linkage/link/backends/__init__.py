"""Execution backends of the link job: one typed protocol (``base.LinkBackend``), one module per engine.

``linkage.link.job`` owns the phases, counts, progress, manifest and report; a backend owns only how
each heavy step runs on its engine (load tokens, register them with Splink, train, predict, export
the scored pairs). What follows scoring (operating point, clustering, outputs, report) is one code path
on DuckDB for every backend. Adding an engine (Postgres, Athena, ...) means one module implementing
``LinkBackend`` (subclassing ``base.SplinkBackend``, which registers inputs with Splink, trains and
slices the scoring the same way on every engine) and one entry in ``open_backend``.

Backend modules import nothing from each other or from the job; engines are imported only when opened,
so pyspark is never imported on the DuckDB path.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

from linkage.errors import LinkageConfigError
from linkage.link.backends.base import LinkBackend, LinkPlan, Progress
from linkage.link.config import BackendSettings, LinkConfig

BACKENDS = ("duckdb", "spark")

__all__ = ["BACKENDS", "LinkBackend", "LinkPlan", "Progress", "open_backend"]


@contextlib.contextmanager
def open_backend(settings: BackendSettings, config: LinkConfig) -> Iterator[LinkBackend]:
    """The backend named by ``settings.kind``, started, and released when the block ends."""
    if settings.kind == "duckdb":
        from linkage.link.backends.duckdb import DuckDBBackend

        backend: LinkBackend = DuckDBBackend(settings, config)
    elif settings.kind == "spark":
        from linkage.link.backends.spark import SparkBackend

        backend = SparkBackend(settings, config)
    else:  # pragma: no cover - pydantic's discriminated union admits only the two kinds
        raise LinkageConfigError(f"backend '{settings.kind}' is not supported ({' or '.join(BACKENDS)})")
    try:
        yield backend
    finally:
        backend.close()
