"""Compatibility shim: the link job moved to ``linkage.link.job`` (one orchestrator, pluggable backends).

Kept so ``from linkage.link.run import link_extracts`` and ``duckdb_session`` keep working.
"""

from __future__ import annotations

from linkage.link.job import link_extracts
from linkage.link.tables import duckdb_session

__all__ = ["duckdb_session", "link_extracts"]
