"""Clusters of confirmed near-duplicate pairs (vectorized union-find) and the
``near_duplicates`` rows of their non-representative members."""

import numpy as np
import pandas as pd
import pyarrow as pa

from curation_assets.curation.filtering.dedup.minhash import pair_jaccard


def cluster_ids(
    edges: np.ndarray, start: int, n_new: int, cluster_of_old: dict[int, int]
) -> np.ndarray:
    """Cluster id (the representative's seq) of every new record.

    Nodes are the new records plus the *clusters* of old records (old clusters are frozen);
    each component's representative is its smallest seq, i.e. the earliest old cluster it
    touches, else its earliest new record.
    """
    new_seqs = np.arange(start, start + n_new, dtype=np.int64)
    if not len(edges):
        return new_seqs
    left = edges[:, 0].copy()
    old = left < start
    left[old] = [cluster_of_old[s] for s in left[old].tolist()]
    nodes, inverse = np.unique(np.concatenate([new_seqs, left, edges[:, 1]]), return_inverse=True)
    u, v = inverse[n_new : n_new + len(edges)], inverse[n_new + len(edges) :]
    return nodes[connected_min(u, v, len(nodes))[inverse[:n_new]]]


def connected_min(u: np.ndarray, v: np.ndarray, n: int) -> np.ndarray:
    """Union-find, vectorized: for each of ``n`` nodes, the smallest node of its component.

    Every round hooks the larger root of each edge under the smaller one, then compresses
    paths by pointer jumping; it stops when no edge joins two different roots.
    """
    parent = np.arange(n)
    while True:
        pu, pv = parent[u], parent[v]
        differ = pu != pv
        if not differ.any():
            return parent
        np.minimum.at(parent, np.maximum(pu, pv)[differ], np.minimum(pu, pv)[differ])
        while True:
            jumped = parent[parent]
            if (jumped == parent).all():
                break
            parent = jumped


class ShingleStore:
    """Shingles of the new records (by seq) and of the old records read back."""

    def __init__(
        self,
        start: int,
        new_ids: np.ndarray,
        row_of: np.ndarray,
        new_flat: np.ndarray,
        new_offsets: np.ndarray,
        old: dict[str, np.ndarray],
    ) -> None:
        self.start, self.n_new, self.row_of = start, len(new_ids), row_of
        self.flat = np.concatenate([new_flat, old["sets"]])
        self.offsets = np.concatenate([new_offsets, old["offsets"][1:] + new_offsets[-1]])
        self.new_ids = new_ids
        self.old_row = dict(zip(old["seq"].tolist(), range(len(old["seq"])), strict=True))
        self.old_ids = old["record_id"]

    def rows(self, seqs: np.ndarray) -> np.ndarray:
        """Row of each seq in ``flat``; -1 for an old record that was not read back."""
        seqs = np.asarray(seqs, dtype=np.int64)
        rows = np.empty(len(seqs), dtype=np.int64)
        old = seqs < self.start
        rows[~old] = self.row_of[seqs[~old] - self.start]
        rows[old] = [self.n_new + self.old_row.get(q, -1 - self.n_new) for q in seqs[old].tolist()]
        return rows

    def jaccard(self, a: np.ndarray, b: np.ndarray) -> np.ndarray:
        """Exact Jaccard of seq pairs; NaN where a side is unknown."""
        ra, rb = self.rows(a), self.rows(b)
        known = (ra >= 0) & (rb >= 0)
        out = np.full(len(ra), np.nan)
        out[known] = pair_jaccard(self.flat, self.offsets, ra[known], rb[known])
        return out

    def record_ids(self, seqs: np.ndarray) -> np.ndarray:
        out = np.empty(len(seqs), dtype=object)
        new = seqs >= self.start
        out[new] = self.new_ids[seqs[new] - self.start]
        rows = [self.old_row.get(q) for q in seqs[~new].tolist()]
        out[~new] = [None if r is None else self.old_ids[r] for r in rows]
        return out


def near_duplicate_rows(
    dup_seqs: np.ndarray,
    dup_clusters: np.ndarray,
    edges: np.ndarray,
    edge_sim: np.ndarray,
    store: ShingleStore,
) -> pa.Table:
    """One row per new non-representative: cluster, representative, Jaccards."""
    if not len(dup_seqs):
        return pa.table({"seq": pa.array([], pa.int64())})
    # The strongest confirmed edge of each record (to anything in its component).
    both = pd.DataFrame(
        {
            "seq": np.concatenate([edges[:, 1], edges[:, 0]]),
            "other": np.concatenate([edges[:, 0], edges[:, 1]]),
            "sim": np.concatenate([edge_sim, edge_sim]),
        }
    )
    best = both.sort_values(["seq", "sim", "other"], ascending=[True, False, True])
    matched = best.drop_duplicates("seq").set_index("seq").reindex(dup_seqs)
    return pa.table(
        {
            "record_id": store.record_ids(dup_seqs),
            "cluster_id": dup_clusters,
            "representative_record_id": store.record_ids(dup_clusters),
            "jaccard": store.jaccard(dup_seqs, dup_clusters),
            "matched_record_id": store.record_ids(matched["other"].to_numpy().astype(np.int64)),
            "matched_jaccard": matched["sim"].to_numpy(),
            "seq": dup_seqs,
        }
    )
