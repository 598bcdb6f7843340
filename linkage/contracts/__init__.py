"""Contracts: one typed model and one reader per hand-over between roles.

Nothing read from another role's file is trusted. Each reader validates the manifest, checks names
against the naming grammar (:mod:`linkage.contracts.names`), verifies checksums and cross-references
(KCV, project, inputs) and returns a typed object; stages consume these objects, never raw dicts.
JSON Schemas of the models are exported by ``linkage schemas`` into ``schemas/``.
"""

from pydantic import BaseModel

from linkage.contracts.crosscheck import check_agreement, check_key_agreement
from linkage.contracts.crosswalk_release import (
    CrosswalkReleaseManifest,
    CrosswalkSource,
    LinkedExtract,
    read_crosswalk,
)
from linkage.contracts.identifier_package import (
    IdentifierPackage,
    IdentifierPackageManifest,
    read_identifier_package,
)
from linkage.contracts.link_output import LinkOutput, LinkOutputManifest, read_link_output
from linkage.contracts.names import COLUMN_PATTERN, SOURCE_PATTERN, is_valid_column, is_valid_source
from linkage.contracts.release import Release, ReleaseManifest, read_release

CONTRACT_SCHEMAS: dict[str, type[BaseModel]] = {
    "identifier-package-manifest": IdentifierPackageManifest,
    "crosswalk-release-manifest": CrosswalkReleaseManifest,
    "link-output-manifest": LinkOutputManifest,
    "release-manifest": ReleaseManifest,
}

__all__ = [
    "COLUMN_PATTERN", "CONTRACT_SCHEMAS", "SOURCE_PATTERN", "CrosswalkReleaseManifest", "CrosswalkSource",
    "IdentifierPackage", "IdentifierPackageManifest", "LinkOutput", "LinkOutputManifest", "LinkedExtract",
    "Release", "ReleaseManifest", "check_agreement", "check_key_agreement", "is_valid_column", "is_valid_source",
    "read_crosswalk", "read_identifier_package", "read_link_output", "read_release",
]
