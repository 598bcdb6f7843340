"""VRN side: link encoded extracts into persons (``link_extracts``) and score a link against truth
(``evaluate_link``). Imports are lazy so ``import linkage.link`` stays cheap."""

from __future__ import annotations

from typing import Any


def link_extracts(*args: Any, **kwargs: Any) -> dict[str, Any]:
    from linkage.link.job import link_extracts as _link

    return _link(*args, **kwargs)


def evaluate_link(*args: Any, **kwargs: Any) -> dict[str, Any]:
    from linkage.link.evaluate import evaluate_link as _evaluate

    return _evaluate(*args, **kwargs)


__all__ = ["evaluate_link", "link_extracts"]
