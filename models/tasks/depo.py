"""Depo-style k-hop retrieval on a shuffled directed cycle (Allen-Zhu & Li; paper §6.2).

Episode layout (window L = max(2 * edges_per_window, max_depth + 2)):

    n3 n7 n12 n0 n7 n12 n5 n3          <- graph windows: the cycle's edges "a b" (a -> b), shuffled
    n0 n9 ...                             and packed, never split across a window
    n5 > > > [n12]                      <- query windows, one query each: from n5, k hops -> n12
    n9 > > > [n0]

The graph is evicted before any query arrives and start nodes are drawn after the graph, so the
consolidation must be query-agnostic: the fast weights must hold the cycle in a form from which
k hops can be read in one forward pass. The hop count k is written in unary (k ">" tokens), so hop
counts outside the training range are expressible with known tokens. Node names are drawn per
episode from a larger name vocabulary, so nothing about the graph can be memorised in the slow
weights. The cycle is longer than the largest k, so no query loops back to its start.
"""

from __future__ import annotations

import math
import random
from dataclasses import dataclass

from dreamchat.models.tasks import PAD, Example, pack_windows


@dataclass(frozen=True)
class Depo:
    n_nodes: int = 10  # cycle length (paper: up to 75); must exceed max_depth
    n_names: int = 16  # node-name vocabulary; each episode draws n_nodes distinct names
    n_queries: int = 2  # queries per episode, one per prediction window (paper: 10)
    edges_per_window: int = 5  # edges packed in one graph window
    max_depth: int = 8  # largest hop count k the layout holds
    name: str = "depo"

    def __post_init__(self) -> None:
        if self.n_nodes <= self.max_depth:
            raise ValueError(f"depo n_nodes ({self.n_nodes}) must exceed max_depth ({self.max_depth})")
        if self.n_names < self.n_nodes:
            raise ValueError(f"depo n_names ({self.n_names}) must be >= n_nodes ({self.n_nodes})")
        if self.n_queries < 1 or self.edges_per_window < 1 or self.max_depth < 1:
            raise ValueError("depo needs n_queries, edges_per_window and max_depth >= 1")

    @property
    def vocab(self) -> tuple[str, ...]:
        return ("<pad>", ">") + tuple(f"n{i}" for i in range(self.n_names))

    @property
    def window(self) -> int:
        return max(2 * self.edges_per_window, self.max_depth + 2)

    @property
    def graph_windows(self) -> int:
        per_window = self.window // 2
        return math.ceil(self.n_nodes / per_window)

    @property
    def seq_len(self) -> int:
        return (self.graph_windows + self.n_queries) * self.window

    @property
    def chance(self) -> float:
        return 1 / (self.n_nodes - 1)  # any node of the episode's cycle but the start

    @property
    def depths(self) -> tuple[int, ...]:
        return tuple(range(1, self.max_depth + 1))

    def example(self, rng: random.Random, depth: int) -> Example:
        if not 1 <= depth <= self.max_depth:
            raise ValueError(f"depo depth {depth} outside 1..{self.max_depth}")
        hop, first_name = 1, 2
        nodes = [first_name + i for i in rng.sample(range(self.n_names), self.n_nodes)]
        edges = [(nodes[i], nodes[(i + 1) % self.n_nodes]) for i in range(self.n_nodes)]
        rng.shuffle(edges)
        tokens = pack_windows(edges, self.window, self.graph_windows)
        mask = [0] * len(tokens)
        for _ in range(self.n_queries):
            start = rng.randrange(self.n_nodes)
            query = [nodes[start]] + [hop] * depth + [nodes[(start + depth) % self.n_nodes]]
            pad = self.window - len(query)
            tokens += query + [PAD] * pad
            mask += [0] * (len(query) - 1) + [1] + [0] * pad
        return Example(tuple(tokens), tuple(mask), depth)
