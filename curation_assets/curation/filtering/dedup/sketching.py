"""Reading texts from DuckDB for the index: word hashes, shingles and band buckets of the
records not indexed yet (sketched in chunks), and the shingle sets of indexed records read
back to confirm candidate pairs."""

import time
from collections.abc import Iterator

import duckdb
import numpy as np
import pyarrow as pa

from curation_assets.curation.filtering.dedup.minhash import (
    DOCS,
    MinHashConfig,
    band_buckets,
    relation,
    shingles,
    signatures,
    word_lists,
    words_sql,
)


class Clock:
    """Seconds spent per named step, summed over repeats (``laps``)."""

    def __init__(self) -> None:
        self.laps: dict[str, float] = {}
        self._t = time.perf_counter()

    def lap(self, name: str) -> None:
        now = time.perf_counter()
        self.laps[name] = self.laps.get(name, 0.0) + now - self._t
        self._t = now


def batches(con: duckdb.DuckDBPyConnection, sql: str, rows: int) -> Iterator[pa.Table]:
    """The query's result in slices of ``rows``.

    The result is fetched whole first: DuckDB then tokenizes on every core, and does not
    compete for them with the numpy work on each slice (as a streaming reader would).
    """
    table = con.sql(sql).to_arrow_table()
    for start in range(0, table.num_rows, rows):
        yield table.slice(start, rows)


def sketch_new(
    con: duckdb.DuckDBPyConnection,
    source: str,
    order_by: str,
    text_sql: str,
    config: MinHashConfig,
    clock: Clock,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Word-hash, shingle and sketch the unindexed records.

    A narrow query numbers the new records in ``order_by`` order; their texts then stream
    in whatever order DuckDB produces them (no sort of the text). Returns, by position in
    ``order_by`` order: record ids, the row of each in the shingle CSR, and band buckets
    (positions x bands; 0 for a record without words, never a candidate); plus the
    shingle CSR itself (flat hashes, offsets; rows in stream order, repeats kept).
    """
    con.execute(
        "CREATE OR REPLACE TEMP TABLE _mh_order AS "
        "SELECT record_id::VARCHAR AS record_id, "
        f"row_number() OVER (ORDER BY {order_by}, record_id) - 1 AS _pos "
        f"FROM {relation(source)} s WHERE NOT EXISTS "
        f"(SELECT 1 FROM {DOCS} d WHERE d.record_id = s.record_id)"
    )
    stream = (
        f"SELECT s.*, o._pos FROM {relation(source)} s "
        "JOIN _mh_order o ON o.record_id = s.record_id::VARCHAR"
    )
    ids, positions, set_parts, bucket_parts = [], [], [], []
    offset_parts, total = [np.zeros(1, dtype=np.int64)], 0
    try:
        for batch in batches(con, words_sql(stream, text_sql, extra="_pos"), config.chunk_size):
            words, offsets = word_lists(batch)
            clock.lap("words")
            flat, sh_offsets = shingles(words, offsets, config.ngram)
            del words
            clock.lap("shingle")
            sig = signatures(flat, sh_offsets, config)
            clock.lap("sketch")
            buckets = band_buckets(sig, config)
            buckets[np.diff(sh_offsets) == 0] = 0
            ids.append(batch.column("record_id").to_numpy(zero_copy_only=False).astype(object))
            positions.append(batch.column("_pos").to_numpy().astype(np.int64))
            set_parts.append(flat)
            offset_parts.append(sh_offsets[1:] + total)
            total += int(sh_offsets[-1])
            bucket_parts.append(buckets)
            clock.lap("bands")
    finally:
        con.execute("DROP TABLE IF EXISTS _mh_order")
    if not ids:
        empty = np.zeros(0, dtype=np.int64)
        return empty.astype(object), empty, np.zeros((0, config.bands), np.int64), empty, empty
    position = np.concatenate(positions)
    row_of = np.empty(len(position), dtype=np.int64)
    row_of[position] = np.arange(len(position))
    return (
        np.concatenate(ids)[row_of],
        row_of,
        np.concatenate(bucket_parts)[row_of],
        np.concatenate(set_parts),
        np.concatenate(offset_parts),
    )


def old_records(
    con: duckdb.DuckDBPyConnection,
    source: str,
    text_sql: str,
    seqs: np.ndarray,
    config: MinHashConfig,
) -> dict[str, np.ndarray]:
    """Shingle sets of indexed records (and of their clusters' representatives)."""
    empty = {
        "seq": np.zeros(0, np.int64),
        "cluster_id": np.zeros(0, np.int64),
        "record_id": np.zeros(0, object),
        "sets": np.zeros(0, np.uint64),
        "offsets": np.zeros(1, np.int64),
    }
    if not len(seqs):
        return empty
    con.register("_mh_old_arrow", pa.table({"seq": seqs.astype(np.int64)}))
    try:
        wanted = (
            f"SELECT d.seq, d.cluster_id, d.record_id FROM {DOCS} d "
            "WHERE d.seq IN (SELECT seq FROM _mh_old_arrow) OR d.seq IN ("
            f"SELECT d2.cluster_id FROM {DOCS} d2 WHERE d2.seq IN (SELECT seq FROM _mh_old_arrow))"
        )
        sql = (
            words_sql(
                f"SELECT s.*, w.seq AS _seq, w.cluster_id AS _cluster FROM {relation(source)} s "
                f"JOIN ({wanted}) w USING (record_id)",
                text_sql,
                extra="_seq, _cluster",
            )
            + " ORDER BY _seq"
        )
        table = con.sql(sql).to_arrow_table()
    finally:
        con.unregister("_mh_old_arrow")
    if table.num_rows == 0:
        return empty
    words, offsets = word_lists(table)
    sets, set_offsets = shingles(words, offsets, config.ngram)
    return {
        "seq": table.column("_seq").to_numpy().astype(np.int64),
        "cluster_id": table.column("_cluster").to_numpy().astype(np.int64),
        "record_id": table.column("record_id").to_numpy(zero_copy_only=False).astype(object),
        "sets": sets,
        "offsets": set_offsets,
    }
