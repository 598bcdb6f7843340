"""linkage: privacy-preserving record linkage for a Violence Reduction Network.

The data's path is the architecture: partners encode (``encode_extract``), the VRN links
(``link_extracts``), researchers get cohort tables (``build_cohort``). Each stage reads only the files
the previous stage hands over.
"""

from __future__ import annotations

__version__ = "0.1.0"

from linkage.keys import generate_key, key_check_value, read_key_file, record_id, write_key_file

__all__ = ["__version__", "generate_key", "key_check_value", "read_key_file", "record_id", "write_key_file"]


def build_cohort(*args, **kwargs):
    """Re-export of :func:`linkage.cohort.build_cohort`, imported on first use to keep this module cheap."""
    from linkage.cohort import build_cohort as _build_cohort

    return _build_cohort(*args, **kwargs)


__all__.append("build_cohort")


def link_extracts(*args, **kwargs):
    """Re-export of :func:`linkage.link.run.link_extracts`, imported on first use."""
    from linkage.link.run import link_extracts as _link_extracts

    return _link_extracts(*args, **kwargs)


def evaluate_link(*args, **kwargs):
    """Re-export of :func:`linkage.link.evaluate.evaluate_link`, imported on first use."""
    from linkage.link.evaluate import evaluate_link as _evaluate_link

    return _evaluate_link(*args, **kwargs)


__all__ += ["evaluate_link", "link_extracts"]


def generate_extracts(*args, **kwargs):
    """Re-export of :func:`linkage.synth.generate_extracts` (synthetic test data), imported on first use."""
    from linkage.synth import generate_extracts as _generate_extracts

    return _generate_extracts(*args, **kwargs)


__all__.append("generate_extracts")


def audit_extract(*args, **kwargs):
    """Re-export of :func:`linkage.audit.audit_extract` (privacy audit before release), imported on first use."""
    from linkage.audit import audit_extract as _audit_extract

    return _audit_extract(*args, **kwargs)


__all__.append("audit_extract")
