"""The incremental MinHash index in DuckDB: new records are sketched alone, matched
against the stored band buckets and themselves, clustered, and stored."""

import json
import time
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field

import duckdb
import numpy as np
import pyarrow as pa

#: The text that is compared: prompt and response, NFC-normalized, lower case. Word
#: extraction below makes whitespace normalization (as in ``NORMALIZE_SQL``) unnecessary.
from curation_assets.curation.filtering.dedup.clusters import (
    _clusters,
    _near_duplicate_rows,
    _Shingles,
)
from curation_assets.curation.filtering.dedup.minhash import (
    DOCS,
    INDEX,
    META,
    OUTPUT,
    TEXT_SQL,
    WORD_PATTERN,
    MinHashConfig,
    _relation,
    band_buckets,
    shingles,
    signatures,
    word_lists,
    words_sql,
)
from curation_assets.curation.filtering.rule_engine import Rule


@dataclass
class DedupResult:
    """What one call did (for asset metadata and benchmarks)."""

    new_records: int = 0
    indexed_records: int = 0
    candidate_pairs: int = 0
    confirmed_pairs: int = 0
    new_near_duplicates: int = 0
    seconds: dict[str, float] = field(default_factory=dict)


# --------------------------------------------------------------------------- the index


def ensure_index(con: duckdb.DuckDBPyConnection, config: MinHashConfig) -> None:
    """Create the index tables; refuse an index built with other settings."""
    con.execute(f"CREATE TABLE IF NOT EXISTS {META} (key VARCHAR PRIMARY KEY, value VARCHAR)")
    con.execute(
        f"CREATE TABLE IF NOT EXISTS {DOCS} (seq BIGINT PRIMARY KEY, record_id VARCHAR UNIQUE, "
        "cluster_id BIGINT, n_shingles INTEGER)"
    )
    con.execute(f"CREATE TABLE IF NOT EXISTS {INDEX} (seq BIGINT, band SMALLINT, bucket BIGINT)")
    con.execute(
        f"CREATE TABLE IF NOT EXISTS {OUTPUT} (record_id VARCHAR, cluster_id BIGINT, "
        "representative_record_id VARCHAR, jaccard DOUBLE, matched_record_id VARCHAR, "
        "matched_jaccard DOUBLE, seq BIGINT)"
    )
    wanted = _fingerprint(con, config)
    stored = dict(con.execute(f"SELECT key, value FROM {META}").fetchall())
    if not stored:
        con.executemany(f"INSERT INTO {META} VALUES (?, ?)", list(wanted.items()))
    elif stored != wanted:
        raise ValueError(
            f"the MinHash index was built with {stored}, not {wanted}: signatures are not "
            "comparable. Call dedup.reset_index(con) and index every record again."
        )


def reset_index(con: duckdb.DuckDBPyConnection) -> None:
    """Drop the index and the ``near_duplicates`` table (a full rebuild follows)."""
    for table in (META, DOCS, INDEX, OUTPUT):
        con.execute(f"DROP TABLE IF EXISTS {table}")


def _fingerprint(con: duckdb.DuckDBPyConnection, config: MinHashConfig) -> dict[str, str]:
    import rensa

    probe = con.execute("SELECT hash('minhash probe')::VARCHAR").fetchall()[0][0]
    return {
        "settings": json.dumps(config.index_settings(), sort_keys=True),
        "rensa_algorithm": str(rensa.RMinHash.ALGORITHM_VERSION),
        "duckdb_hash_probe": str(probe),
        "word_pattern": WORD_PATTERN,
    }


def dedup_new_records(
    con: duckdb.DuckDBPyConnection,
    source: str = "raw_scrapes",
    *,
    order_by: str = "batch, line_no",
    text_sql: str = TEXT_SQL,
    config: MinHashConfig | None = None,
    atomic: bool = True,
    versions: str | None = None,
) -> DedupResult:
    """Sketch the records of ``source`` not yet indexed, match them, extend the index.

    ``source`` is a table name or a ``SELECT`` with ``record_id``, the columns ``text_sql``
    reads (default: prompt, response) and those ``order_by`` sorts on. It should list the
    earlier, already indexed records too: their text is read back only for candidate pairs
    (to confirm them with exact Jaccard), never re-sketched. New records get sequence
    numbers after every indexed one, in ``order_by`` order. Appends the new
    non-representatives to ``near_duplicates``; rows of earlier calls are left alone.
    The writes go in one transaction (``atomic``); pass ``atomic=False`` when the caller
    already holds a transaction open on ``con``. ``versions``: a table of ``record_id``,
    ``grp``, ``version`` stored with each new record (see :func:`sync_records`).
    """
    config = config or MinHashConfig()
    result, clock = DedupResult(), _Clock()
    ensure_index(con, config)
    start = con.execute(f"SELECT coalesce(max(seq) + 1, 0) FROM {DOCS}").fetchall()[0][0]
    new_ids, row_of, buckets, new_sets, new_offsets = _sketch_new(
        con, source, order_by, text_sql, config, clock
    )
    n_new = len(new_ids)
    result.new_records = n_new
    if n_new == 0:
        result.indexed_records = _count(con, DOCS)
        result.seconds = clock.laps
        return result

    pairs = _candidate_pairs(con, buckets, start, config)
    result.candidate_pairs = len(pairs)
    clock.lap("candidates")

    old_seqs = np.unique(pairs[:, 0][pairs[:, 0] < start])
    old = _old_records(con, source, text_sql, old_seqs, config)
    store = _Shingles(start, new_ids, row_of, new_sets, new_offsets, old)
    clock.lap("read_back")

    sim = store.jaccard(pairs[:, 0], pairs[:, 1])  # NaN where a text could not be read back
    confirmed = sim >= config.threshold
    edges, edge_sim = pairs[confirmed], sim[confirmed]
    result.confirmed_pairs = len(edges)
    clock.lap("verify")

    cluster_of_old = dict(zip(old["seq"].tolist(), old["cluster_id"].tolist(), strict=True))
    cluster = _clusters(edges, start, n_new, cluster_of_old)
    seqs = np.arange(start, start + n_new, dtype=np.int64)
    dup = cluster != seqs
    clock.lap("cluster")

    frame = _near_duplicate_rows(seqs[dup], cluster[dup], edges, edge_sim, store)
    result.new_near_duplicates = len(frame)
    n_shingles = np.diff(new_offsets)[row_of]
    _store(con, new_ids, seqs, cluster, n_shingles, buckets, frame, config, atomic, versions)
    clock.lap("store")
    result.indexed_records = _count(con, DOCS)
    result.seconds = clock.laps
    return result


def sync_records(
    con: duckdb.DuckDBPyConnection,
    source: str,
    *,
    group: str = "batch",
    version: str = "example_id",
    order_by: str = "batch, line_no",
    text_sql: str = TEXT_SQL,
    config: MinHashConfig | None = None,
    atomic: bool = True,
) -> DedupResult:
    """``dedup_new_records`` kept a function of ``source`` alone, not of its history.

    ``source`` must list every record to deduplicate, with a ``group`` (the batch; groups
    sort in ``order_by`` order) and a ``version`` of each record's content (its
    ``example_id``). The index stores both. Records that left ``source``, changed content,
    or arrived in a group that sorts before an indexed one make the index stale from the
    first such group on: every indexed record of that group and later ones is dropped
    (with its buckets and ``near_duplicates`` row) and indexed again, in order. Earlier
    groups keep their rows; a new group after every indexed one is appended as before. So
    re-ingesting an unchanged file changes nothing, and the order in which files arrive
    does not decide which copy is kept. An index built without groups is rebuilt once.
    """
    config = config or MinHashConfig()
    ensure_index(con, config)
    for column in ("grp", "version"):
        con.execute(f"ALTER TABLE {DOCS} ADD COLUMN IF NOT EXISTS {column} VARCHAR")
    con.execute(
        "CREATE OR REPLACE TEMP TABLE _mh_src AS SELECT record_id::VARCHAR AS record_id, "
        f"({group})::VARCHAR AS grp, ({version})::VARCHAR AS version FROM {_relation(source)}"
    )
    try:
        legacy, dirty = con.execute(
            f"""SELECT bool_or(legacy), min(grp) FROM (
                    SELECT d.grp IS NULL AS legacy, d.grp FROM {DOCS} d
                    WHERE NOT EXISTS (SELECT 1 FROM _mh_src s WHERE s.record_id = d.record_id
                        AND s.grp = d.grp AND s.version IS NOT DISTINCT FROM d.version)
                    UNION ALL
                    SELECT FALSE, s.grp FROM _mh_src s
                    WHERE s.grp <= (SELECT max(grp) FROM {DOCS})
                      AND NOT EXISTS (SELECT 1 FROM {DOCS} d WHERE d.record_id = s.record_id))"""
        ).fetchall()[0]
        if legacy:
            cut = 0
        elif dirty is not None:
            cut = con.execute(f"SELECT min(seq) FROM {DOCS} WHERE grp >= ?", [dirty]).fetchall()[0][
                0
            ]
        else:
            cut = None
        if cut is not None:
            for table in (OUTPUT, INDEX, DOCS):
                con.execute(f"DELETE FROM {table} WHERE seq >= ?", [int(cut)])
        result = dedup_new_records(
            con,
            source,
            order_by=order_by,
            text_sql=text_sql,
            config=config,
            atomic=atomic,
            versions="_mh_src",
        )
    finally:
        con.execute("DROP TABLE IF EXISTS temp._mh_src")
    return result


def near_duplicates(
    con: duckdb.DuckDBPyConnection,
    table: str = "raw_scrapes",
    threshold: float = 0.8,
    *,
    order_by: str = "batch, line_no",
    text_sql: str = TEXT_SQL,
    config: MinHashConfig | None = None,
) -> DedupResult:
    """Full run: rebuild the index from scratch over ``table`` (a name or a ``SELECT``)."""
    config = config or MinHashConfig()
    if threshold != config.threshold:
        config = MinHashConfig(**{**asdict(config), "threshold": threshold})
    reset_index(con)
    return dedup_new_records(con, table, order_by=order_by, text_sql=text_sql, config=config)


def eligible_records_sql(where: str | None = None) -> str:
    """Records of ``raw_scrapes`` worth deduplicating: the first seen of each example_id.

    Exact duplicates are the ``exact_duplicate`` rule's business; ``where`` (SQL over
    ``raw_scrapes`` columns) can exclude records that other rules reject, so that a
    rejected record never becomes the representative that removes a good one.
    """
    condition = f"WHERE {where}" if where else ""
    return f"""
        SELECT record_id, example_id, prompt, response, batch, line_no
        FROM raw_scrapes {condition}
        QUALIFY row_number() OVER (
            PARTITION BY example_id ORDER BY batch, line_no, record_id) = 1"""


def near_duplicate_rule(table: str = OUTPUT, threshold: float | None = None) -> Rule:
    """The ``filtering`` rule that rejects every non-representative of ``table``.

    Reason, per record: ``near duplicate: Jaccard 0.87 with <record> (kept: <record>)``.
    """
    what = f" (word 5-gram Jaccard >= {threshold})" if threshold is not None else ""
    return Rule(
        "near_duplicate",
        f"near duplicate of an earlier record{what}",
        f"record_id IN (SELECT record_id FROM {table})",
        detail=(
            f"(SELECT printf('Jaccard %.2f with %s (kept: %s)', n.matched_jaccard, "
            f"n.matched_record_id, n.representative_record_id) FROM {table} n "
            "WHERE n.record_id = filter_flags.record_id LIMIT 1)"
        ),
        scope="corpus",
    )


# --------------------------------------------------------------------------- internals


class _Clock:
    def __init__(self) -> None:
        self.laps: dict[str, float] = {}
        self._t = time.perf_counter()

    def lap(self, name: str) -> None:
        now = time.perf_counter()
        self.laps[name] = self.laps.get(name, 0.0) + now - self._t
        self._t = now


def _count(con: duckdb.DuckDBPyConnection, table: str) -> int:
    return int(con.execute(f"SELECT count(*) FROM {table}").fetchall()[0][0])


def _batches(con: duckdb.DuckDBPyConnection, sql: str, rows: int) -> Iterator[pa.Table]:
    """The query's result in slices of ``rows``.

    The result is fetched whole first: DuckDB then tokenizes on every core, and does not
    compete for them with the numpy work on each slice (as a streaming reader would).
    """
    table = con.sql(sql).to_arrow_table()
    for start in range(0, table.num_rows, rows):
        yield table.slice(start, rows)


def _sketch_new(
    con: duckdb.DuckDBPyConnection,
    source: str,
    order_by: str,
    text_sql: str,
    config: MinHashConfig,
    clock: _Clock,
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
        f"FROM {_relation(source)} s WHERE NOT EXISTS "
        f"(SELECT 1 FROM {DOCS} d WHERE d.record_id = s.record_id)"
    )
    stream = (
        f"SELECT s.*, o._pos FROM {_relation(source)} s "
        "JOIN _mh_order o ON o.record_id = s.record_id::VARCHAR"
    )
    ids, positions, set_parts, bucket_parts = [], [], [], []
    offset_parts, total = [np.zeros(1, dtype=np.int64)], 0
    try:
        for batch in _batches(con, words_sql(stream, text_sql, extra="_pos"), config.chunk_size):
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


def _candidate_pairs(
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


def _old_records(
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
                f"SELECT s.*, w.seq AS _seq, w.cluster_id AS _cluster FROM {_relation(source)} s "
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


def _store(
    con: duckdb.DuckDBPyConnection,
    new_ids: np.ndarray,
    seqs: np.ndarray,
    cluster: np.ndarray,
    n_shingles: np.ndarray,
    buckets: np.ndarray,
    near_dups: pa.Table,
    config: MinHashConfig,
    atomic: bool,
    versions: str | None = None,
) -> None:
    """Append the new records (with their group and version from ``versions``), their
    buckets and their near-duplicate rows (one transaction)."""
    docs = pa.table(
        {
            "seq": seqs,
            "record_id": pa.array(new_ids.tolist(), pa.string()),
            "cluster_id": cluster,
            "n_shingles": n_shingles.astype(np.int32),
        }
    )
    keep = (buckets != 0).reshape(-1)
    index = pa.table(
        {
            "seq": np.repeat(seqs, config.bands)[keep],
            "band": np.tile(np.arange(config.bands, dtype=np.int16), len(seqs))[keep],
            "bucket": buckets.reshape(-1)[keep],
        }
    )
    con.register("_mh_docs", docs)
    con.register("_mh_index", index)
    con.register("_mh_out", near_dups)
    try:
        if atomic:
            try:
                con.execute("BEGIN TRANSACTION")
            except duckdb.TransactionException as error:
                raise RuntimeError(
                    "a transaction is already open on this connection: commit it first, or "
                    "pass atomic=False and commit the index writes yourself"
                ) from error
        try:
            if versions is None:
                con.execute(
                    f"INSERT INTO {DOCS} (seq, record_id, cluster_id, n_shingles) "
                    "SELECT seq, record_id, cluster_id, n_shingles FROM _mh_docs"
                )
            else:
                con.execute(
                    f"INSERT INTO {DOCS} (seq, record_id, cluster_id, n_shingles, grp, version) "
                    "SELECT d.seq, d.record_id, d.cluster_id, d.n_shingles, v.grp, v.version "
                    f"FROM _mh_docs d LEFT JOIN {versions} v ON v.record_id = d.record_id"
                )
            con.execute(f"INSERT INTO {INDEX} SELECT * FROM _mh_index")
            if near_dups.num_rows:
                con.execute(f"INSERT INTO {OUTPUT} SELECT * FROM _mh_out")
            if atomic:
                con.execute("COMMIT")
        except Exception:
            if atomic:
                con.execute("ROLLBACK")
            raise
    finally:
        for name in ("_mh_docs", "_mh_index", "_mh_out"):
            con.unregister(name)
