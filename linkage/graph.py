"""Graph algorithms over record and token graphs, in one place: connected components on scipy's ``csgraph``
(the clustering chain guard, the threshold sweep, the release intruder and the audit's graph attacks) and the
maximum spanning forest of edges ranked strongest first (the report's false-merge estimate)."""

from __future__ import annotations

from collections.abc import Hashable, Iterable, Sequence
from typing import TypeVar

import numpy as np
from scipy.sparse import coo_matrix
from scipy.sparse.csgraph import connected_components

Node = TypeVar("Node", bound=Hashable)


def index_component_labels(n: int, left: np.ndarray, right: np.ndarray) -> np.ndarray:
    """The component label of each of ``n`` nodes numbered ``0..n-1``, given undirected edges
    ``left[i]``-``right[i]`` (repeated edges allowed). Labels are numbered in order of each component's
    lowest node."""
    graph = coo_matrix((np.ones(len(left)), (left, right)), shape=(n, n))
    return connected_components(graph, directed=False)[1]


def component_labels(nodes: Sequence[Node], edges: Iterable[tuple[Node, Node]]) -> dict[Node, int]:
    """Each node's component number, numbered in order of each component's first node in ``nodes``."""
    index = {n: i for i, n in enumerate(nodes)}
    pairs = np.array([(index[a], index[b]) for a, b in edges], dtype=np.int64).reshape(-1, 2)
    labels = index_component_labels(len(nodes), pairs[:, 0], pairs[:, 1])
    return {n: int(label) for n, label in zip(nodes, labels, strict=True)}


def components(nodes: Sequence[Node], edges: Iterable[tuple[Node, Node]]) -> list[list[Node]]:
    """The components as lists of nodes, each in ``nodes`` order, ordered by their first node."""
    groups: dict[int, list[Node]] = {}
    for node, label in component_labels(nodes, edges).items():
        groups.setdefault(label, []).append(node)
    return list(groups.values())


def spanning_forest(edges: Iterable[tuple[Node, Node]]) -> list[int]:
    """Kruskal: the positions of the edges, given strongest first, that join two parts not yet joined (the
    maximum spanning forest: the strongest edges that hold each component together)."""
    parent: dict[Node, Node] = {}

    def root(x: Node) -> Node:  # union-find with path halving
        while parent.setdefault(x, x) != x:
            parent[x] = parent[parent[x]]
            x = parent[x]
        return x

    kept = []
    for i, (left, right) in enumerate(edges):
        a, b = root(left), root(right)
        if a != b:
            parent[a] = b
            kept.append(i)
    return kept
