"""The graph helpers every component and spanning-tree computation goes through (linkage.graph)."""

from __future__ import annotations

import numpy as np

from linkage.graph import component_labels, index_component_labels, spanning_forest


def test_index_component_labels_numbers_components_by_their_lowest_node():
    labels = index_component_labels(6, np.array([4, 1, 1]), np.array([5, 2, 2]))  # a repeated edge; 0 and 3 alone
    assert labels.tolist() == [0, 1, 1, 2, 3, 3]
    assert index_component_labels(3, np.array([], dtype=np.int64), np.array([], dtype=np.int64)).tolist() == [0, 1, 2]


def test_component_labels_over_named_nodes():
    assert component_labels(["c", "a", "b", "d"], [("a", "d")]) == {"c": 0, "a": 1, "b": 2, "d": 1}


def test_spanning_forest_keeps_the_strongest_edges_that_join_each_component():
    # A triangle a-b-c given strongest first, plus a separate edge d-e: the weakest triangle edge closes a cycle.
    edges = [("a", "b"), ("b", "c"), ("a", "c"), ("d", "e"), ("e", "d")]
    assert spanning_forest(edges) == [0, 1, 3]
    assert spanning_forest([]) == []
