"""Candidate pairs of the index: records that share a band bucket, found with numpy over
the new records' buckets and the stored ones they hit."""

import duckdb
import numpy as np
import pyarrow as pa

from curation_assets.curation.filtering.dedup.minhash import INDEX, MinHashConfig


def candidate_pairs(
    con: duckdb.DuckDBPyConnection, buckets: np.ndarray, start: int, config: MinHashConfig
) -> np.ndarray:
    """(earlier seq, later seq) pairs that share a band bucket; the later one is new.

    DuckDB fetches the index rows whose bucket a new record hit; numpy groups the rest.
    Buckets up to ``max_bucket_pairs`` members give all pairs; bigger ones link every new
    member to the bucket's earliest member and to its predecessor (linear in its size).
    """
    n = len(buckets)
    new_seq = np.arange(start, start + n, dtype=np.int64)
    old = {"seq": np.zeros(0, np.int64), "band": np.zeros(0, np.int16), "bucket": np.zeros(0)}
    if start > 0 and n:
        live = buckets[buckets != 0]
        con.register("_mh_new", pa.table({"bucket": np.unique(live)}))
        try:
            old = con.sql(
                f"SELECT seq, band, bucket FROM {INDEX} "
                "WHERE bucket IN (SELECT bucket FROM _mh_new) ORDER BY band, seq"
            ).fetchnumpy()
        finally:
            con.unregister("_mh_new")
    band_starts = np.searchsorted(old["band"], np.arange(config.bands + 1))
    # Band by band (smaller sorts): rows of buckets with 2+ members, sorted by bucket
    # then seq, with a group number per bucket.
    parts_seq, parts_bucket = [], []
    for band in range(config.bands):
        lo, hi = band_starts[band], band_starts[band + 1]
        live = buckets[:, band] != 0
        seq = np.concatenate([old["seq"][lo:hi].astype(np.int64), new_seq[live]])
        bucket = np.concatenate([old["bucket"][lo:hi].astype(np.int64), buckets[live, band]])
        order = np.argsort(bucket, kind="stable")  # old seqs < new: seq order within bucket
        seq, bucket = seq[order], bucket[order]
        same_as_next = bucket[1:] == bucket[:-1]
        shared = np.zeros(len(bucket), dtype=bool)
        shared[1:] |= same_as_next
        shared[:-1] |= same_as_next
        parts_seq.append(seq[shared])
        parts_bucket.append(bucket[shared])
    seq = np.concatenate(parts_seq)
    bucket = np.concatenate(parts_bucket)
    first = np.ones(len(bucket), dtype=bool)
    first[1:] = bucket[1:] != bucket[:-1]
    group = np.cumsum(first) - 1
    size = np.bincount(group)[group] if len(group) else group

    found = []
    small = size <= config.max_bucket_pairs
    s_seq, s_group = seq[small], group[small]
    for d in range(1, int(min(size[small].max(initial=1), config.max_bucket_pairs))):
        same = s_group[d:] == s_group[:-d]
        a, b = s_seq[:-d][same], s_seq[d:][same]
        found.append(np.stack([a, b], axis=1)[b >= start])
    big = ~small
    if big.any():
        b_seq, b_first = seq[big], first[big]
        head = np.maximum.accumulate(np.where(b_first, np.arange(len(b_seq)), 0))
        prev = np.roll(b_seq, 1)
        later = ~b_first & (b_seq >= start)
        found.append(np.stack([b_seq[head][later], b_seq[later]], axis=1))
        found.append(np.stack([prev[later], b_seq[later]], axis=1))
    if not found:
        return np.zeros((0, 2), dtype=np.int64)
    pairs = np.concatenate(found)
    pairs = pairs[pairs[:, 0] != pairs[:, 1]]
    if not len(pairs):
        return np.zeros((0, 2), dtype=np.int64)
    width = int(pairs.max()) + 1  # one int64 key per pair, sorted by (later, earlier)
    key = np.unique(pairs[:, 1] * width + pairs[:, 0])
    return np.stack([key % width, key // width], axis=1)
