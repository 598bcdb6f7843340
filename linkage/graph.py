"""Connected components of a graph over named nodes, on scipy's ``csgraph`` (the one implementation the
clustering chain guard and the release intruder share)."""

from __future__ import annotations

from collections.abc import Hashable, Iterable, Sequence
from typing import TypeVar

import numpy as np
from scipy.sparse import coo_matrix
from scipy.sparse.csgraph import connected_components

Node = TypeVar("Node", bound=Hashable)


def component_labels(nodes: Sequence[Node], edges: Iterable[tuple[Node, Node]]) -> dict[Node, int]:
    """Each node's component number, numbered in order of each component's first node in ``nodes``."""
    index = {n: i for i, n in enumerate(nodes)}
    pairs = np.array([(index[a], index[b]) for a, b in edges], dtype=np.int64).reshape(-1, 2)
    graph = coo_matrix((np.ones(len(pairs), dtype=np.int8), (pairs[:, 0], pairs[:, 1])),
                       shape=(len(nodes), len(nodes)))
    labels = connected_components(graph, directed=False)[1]
    return {n: int(label) for n, label in zip(nodes, labels, strict=True)}


def components(nodes: Sequence[Node], edges: Iterable[tuple[Node, Node]]) -> list[list[Node]]:
    """The components as lists of nodes, each in ``nodes`` order, ordered by their first node."""
    groups: dict[int, list[Node]] = {}
    for node, label in component_labels(nodes, edges).items():
        groups.setdefault(label, []).append(node)
    return list(groups.values())
