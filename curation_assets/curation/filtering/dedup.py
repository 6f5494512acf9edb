"""Near-duplicate detection: MinHash LSH over word n-grams, confirmed by exact Jaccard.

The pipeline works in bulk, never per document in Python:

1. DuckDB normalizes the text (NFC, lower case) and hashes every word
   (``regexp_extract_all`` + ``hash``), returning one list of word hashes per record.
2. numpy folds word hashes into n-gram (shingle) hashes for all records at once.
3. ``rensa`` sketches every record from the flat shingle buffer (R-MinHash,
   ``bands * rows`` permutations); numpy folds each band of the signature into a bucket hash.
4. Records sharing a bucket (in the batch, or in the stored index, fetched by DuckDB)
   become candidate pairs; numpy computes the *exact* Jaccard of each pair's shingle sets
   (on shingle hashes); pairs at or above ``threshold`` become edges.
5. Connected components (vectorized union-find) form clusters; the earliest record (by
   ``order_by``) represents its cluster and every other member goes to ``near_duplicates``.

The index is incremental. Every sketched record gets a sequence number (``seq``, in
``order_by`` order, later batches after earlier ones) and its band buckets are stored in
DuckDB, so a new batch is sketched alone and matched against the index plus itself:

* ``minhash_docs(seq, record_id, cluster_id, n_shingles)``: every record ever sketched;
  ``cluster_id`` is the ``seq`` of its cluster's representative.
* ``minhash_index(seq, band, bucket)``: one row per record and band (``bucket`` already
  mixes in the band number, so joins use ``bucket`` alone).
* ``minhash_meta(key, value)``: the settings the index was built with.
* ``near_duplicates(record_id, cluster_id, representative_record_id, jaccard,
  matched_record_id, matched_jaccard, seq)``: one row per non-representative; ``jaccard``
  is the exact Jaccard with the representative, ``matched_*`` the strongest confirmed
  edge that put the record in its cluster (a cluster is transitive, so the two differ
  when a record joined through another member).

Earlier decisions are frozen: a new batch never rewrites rows of earlier batches. A new
record that links two earlier clusters joins the earlier one; the two stay as they were.

Use in the ``filtered`` stage (before ``filtering.run_filters``)::

    dedup.dedup_new_records(con, dedup.eligible_records_sql(), config=MinHashConfig(threshold=t))
    filtering.run_filters(con, rules + [dedup.near_duplicate_rule(threshold=t)])
"""

import itertools
import json
import time
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field

import duckdb
import numpy as np
import pandas as pd
import pyarrow as pa

from curation_assets.curation.filtering.rule_engine import Rule

#: The text that is compared: prompt and response, NFC-normalized, lower case. Word
#: extraction below makes whitespace normalization (as in ``NORMALIZE_SQL``) unnecessary.
TEXT_SQL = "lower(nfc_normalize(coalesce(prompt, '') || ' ' || coalesce(response, '')))"
#: A word: a run of Unicode letters, digits and underscores (RE2 ``\w`` is ASCII only).
WORD_PATTERN = r"[\p{L}\p{N}_]+"

DOCS, INDEX, META, OUTPUT = "minhash_docs", "minhash_index", "minhash_meta", "near_duplicates"

_M1 = np.uint64(0xBF58476D1CE4E5B9)
_M2 = np.uint64(0x94D049BB133111EB)
_GOLDEN = np.uint64(0x9E3779B97F4A7C15)
_PRIME = np.uint64(0xFF51AFD7ED558CCD)  # odd 64-bit multiplier (murmur3 fmix)


@dataclass(frozen=True)
class MinHashConfig:
    """MinHash LSH settings (FineWeb's defaults: word 5-grams, 14 bands x 8 rows).

    ``threshold`` only affects verification, so it may change between calls; the other
    fields shape the stored index and are checked against it.
    """

    ngram: int = 5
    bands: int = 14
    rows: int = 8
    seed: int = 1
    threshold: float = 0.8
    #: buckets with more members are linked star + chain (to the earliest and to the
    #: previous member) instead of all pairs, which keeps huge clusters linear
    max_bucket_pairs: int = 16
    #: records per sketching chunk (bounds memory of the temporary arrays)
    chunk_size: int = 100_000

    @property
    def num_perm(self) -> int:
        return self.bands * self.rows

    def index_settings(self) -> dict:
        """The settings an index must have been built with to be reused."""
        return {"ngram": self.ngram, "bands": self.bands, "rows": self.rows, "seed": self.seed}


@dataclass
class DedupResult:
    """What one call did (for asset metadata and benchmarks)."""

    new_records: int = 0
    indexed_records: int = 0
    candidate_pairs: int = 0
    confirmed_pairs: int = 0
    new_near_duplicates: int = 0
    seconds: dict[str, float] = field(default_factory=dict)


# --------------------------------------------------------------------------- hashing


def mix64(x: np.ndarray) -> np.ndarray:
    """splitmix64 finalizer, vectorized (uint64 in, uint64 out)."""
    with np.errstate(over="ignore"):
        z = x.astype(np.uint64) + _GOLDEN
        z = (z ^ (z >> np.uint64(30))) * _M1
        z = (z ^ (z >> np.uint64(27))) * _M2
        return z ^ (z >> np.uint64(31))


def words_sql(source: str, text_sql: str = TEXT_SQL, extra: str = "") -> str:
    """Query: ``record_id``, ``words`` (list of word hashes) and ``extra`` columns."""
    extra = f", {extra}" if extra else ""
    return (
        "SELECT record_id::VARCHAR AS record_id, coalesce(list_transform("
        f"regexp_extract_all({text_sql}, '{WORD_PATTERN}'), lambda w: hash(w)), "
        f"[]::UBIGINT[]) AS words{extra} FROM {_relation(source)}"
    )


def word_lists(
    batch: pa.RecordBatch | pa.Table, column: str = "words"
) -> tuple[np.ndarray, np.ndarray]:
    """Flat word hashes and row offsets (int64, length rows + 1) of a list column."""
    col = batch.column(column)
    if isinstance(col, pa.ChunkedArray):
        col = col.combine_chunks()
    offsets = col.offsets.to_numpy().astype(np.int64)
    values = col.values.to_numpy(zero_copy_only=False).astype(np.uint64, copy=False)
    values = values[offsets[0] : offsets[-1]]
    return values, offsets - offsets[0]


def sequence_hash(words: np.ndarray, starts: np.ndarray, length: int | np.ndarray) -> np.ndarray:
    """Hash of the word sequences ``words[s : s + length]`` (one per start), vectorized.

    The same function hashes a sliding n-gram and a whole short text, so a text shorter
    than ``n`` words and the identical n-word window elsewhere get the same hash.
    """
    starts = np.asarray(starts, dtype=np.int64)
    lengths = np.broadcast_to(np.asarray(length, dtype=np.int64), starts.shape)
    h = np.zeros(starts.shape, dtype=np.uint64)
    with np.errstate(over="ignore"):
        for k in range(int(lengths.max(initial=0))):
            live = lengths > k
            if live.all():
                h = h * _PRIME + words[starts + k]
            else:
                h[live] = h[live] * _PRIME + words[starts[live] + k]
    return mix64(h ^ lengths.astype(np.uint64))


def shingles(words: np.ndarray, offsets: np.ndarray, n: int) -> tuple[np.ndarray, np.ndarray]:
    """Word n-gram hashes of every row: (flat hashes, row offsets); repeats are kept.

    A row with fewer than ``n`` (but at least one) words has one shingle, its whole word
    sequence; an empty row has none.
    """
    lengths = np.diff(offsets)
    counts = np.where(lengths >= n, lengths - n + 1, (lengths > 0).astype(np.int64))
    out_offsets = np.zeros(len(lengths) + 1, dtype=np.int64)
    np.cumsum(counts, out=out_offsets[1:])
    out = np.empty(int(out_offsets[-1]), dtype=np.uint64)
    if not len(out):
        return out, out_offsets
    if len(words) >= n:
        # Hash every window of the flat buffer with contiguous slices, then keep the
        # windows that start in a row with at least n words left.
        windows = len(words) - n + 1
        h = np.zeros(windows, dtype=np.uint64)
        with np.errstate(over="ignore"):
            for k in range(n):
                h *= _PRIME
                h += words[k : k + windows]
        h = mix64(h ^ np.uint64(n))
        # A window is valid when it ends inside its row: drop the last n - 1 starts of
        # every row (all starts of a row shorter than n).
        valid = np.ones(len(words), dtype=bool)
        for k in range(1, n):
            last = offsets[1:] - k
            valid[last[last >= offsets[:-1]]] = False
        h = h[valid[:windows]]
        if len(h) == len(out):
            out[:] = h
        else:
            out[np.repeat(lengths >= n, counts)] = h
    short = np.flatnonzero((lengths > 0) & (lengths < n))
    if len(short):
        out[out_offsets[short]] = sequence_hash(words, offsets[short], lengths[short])
    return out, out_offsets


def signatures(flat: np.ndarray, offsets: np.ndarray, config: MinHashConfig) -> np.ndarray:
    """R-MinHash signatures (rows x num_perm, uint32) with rensa, all rows in one call."""
    import rensa

    matrix = rensa.RMinHash.digest_matrix_from_flat_token_hashes(
        np.ascontiguousarray(flat, dtype=np.uint64),
        np.ascontiguousarray(offsets, dtype=np.uint64),
        num_perm=config.num_perm,
        seed=config.seed,
    )
    rows = matrix.to_rows()  # the matrix exposes no buffer; this is its fastest export
    flat_sig = np.fromiter(
        itertools.chain.from_iterable(rows), dtype=np.uint32, count=len(rows) * config.num_perm
    )
    return flat_sig.reshape(-1, config.num_perm)


def band_buckets(sigs: np.ndarray, config: MinHashConfig) -> np.ndarray:
    """Bucket hash of every (row, band): rows x bands, int64; the band number is mixed in."""
    bands = sigs.reshape(len(sigs), config.bands, config.rows)
    h = bands[:, :, 0].astype(np.uint64)
    with np.errstate(over="ignore"):
        for r in range(1, config.rows):
            h = h * _PRIME + bands[:, :, r]
        h = mix64(h ^ (np.arange(config.bands, dtype=np.uint64) << np.uint64(56)))
    return h.view(np.int64)


# --------------------------------------------------------------------------- exact Jaccard


def gather_rows(
    flat: np.ndarray, offsets: np.ndarray, rows: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """CSR sub-matrix of the given rows."""
    lengths = np.diff(offsets)[rows]
    new_offsets = np.zeros(len(rows) + 1, dtype=np.int64)
    np.cumsum(lengths, out=new_offsets[1:])
    idx = np.repeat(offsets[:-1][rows] - new_offsets[:-1], lengths) + np.arange(new_offsets[-1])
    return flat[idx], new_offsets


def pair_jaccard(
    flat: np.ndarray,
    offsets: np.ndarray,
    a: np.ndarray,
    b: np.ndarray,
    max_elements: int = 20_000_000,
) -> np.ndarray:
    """Exact Jaccard of the shingle sets of row pairs (a[i], b[i]) of a CSR matrix.

    Vectorized: the rows involved become sorted sets in one sort of packed keys (row
    number in the high bits, the shingle hash below it), then each element of a pair's
    smaller set is looked up in the other set by binary search. Shingle hashes keep at
    least 40 of their 64 bits (a chance collision per pair is ~1e-8 for 200-word texts).
    """
    a, b = np.asarray(a, dtype=np.int64), np.asarray(b, dtype=np.int64)
    out = np.zeros(len(a))
    if not len(a):
        return out
    rows, inverse = np.unique(np.concatenate([a, b]), return_inverse=True)
    values, row_offsets = gather_rows(flat, offsets, rows)
    high = max(1, (len(rows) - 1).bit_length())
    low_mask = np.uint64((1 << (64 - high)) - 1)
    row_of = np.repeat(np.arange(len(rows), dtype=np.uint64), np.diff(row_offsets))
    keys = (row_of << np.uint64(64 - high)) | (values >> np.uint64(high))
    keys.sort()
    distinct = np.ones(len(keys), dtype=bool)
    distinct[1:] = keys[1:] != keys[:-1]
    keys = keys[distinct]
    set_offsets = np.zeros(len(rows) + 1, dtype=np.int64)
    counts = np.bincount((keys >> np.uint64(64 - high)).astype(np.int64), minlength=len(rows))
    np.cumsum(counts, out=set_offsets[1:])
    sizes = np.diff(set_offsets)
    ia, ib = inverse[: len(a)], inverse[len(a) :]
    a_smaller = sizes[ia] <= sizes[ib]
    query_row, target_row = np.where(a_smaller, ia, ib), np.where(a_smaller, ib, ia)
    per_pair = sizes[query_row]
    cuts = np.searchsorted(
        np.cumsum(per_pair), np.arange(max_elements, per_pair.sum(), max_elements)
    )
    bounds = np.unique(np.concatenate([[0], cuts, [len(a)]]))
    inter = np.zeros(len(a), dtype=np.int64)
    for lo, hi in zip(bounds[:-1].tolist(), bounds[1:].tolist(), strict=True):
        elements, _ = gather_rows(keys, set_offsets, query_row[lo:hi])
        pair = np.repeat(np.arange(lo, hi), per_pair[lo:hi])
        wanted = (target_row[pair].astype(np.uint64) << np.uint64(64 - high)) | (
            elements & low_mask
        )
        pos = np.minimum(np.searchsorted(keys, wanted), len(keys) - 1)
        inter += np.bincount(pair[keys[pos] == wanted], minlength=len(a))
    union = sizes[ia] + sizes[ib] - inter
    np.divide(inter, union, out=out, where=union > 0)
    return out


def jaccard_of_texts(texts_a: list[str], texts_b: list[str], ngram: int = 5) -> list[float]:
    """Exact word n-gram Jaccard of text pairs (the same definition the index verifies)."""
    texts = [*texts_a, *texts_b]
    frame = pa.table(
        {
            "record_id": [str(i) for i in range(len(texts))],
            "position": list(range(len(texts))),
            "prompt": texts,
            "response": [""] * len(texts),
        }
    )
    con = duckdb.connect()
    try:
        con.register("_texts", frame)
        table = con.sql(
            words_sql("_texts", extra="position") + " ORDER BY position"
        ).to_arrow_table()
    finally:
        con.close()
    words, offsets = word_lists(table)
    n = len(texts_a)
    return pair_jaccard(
        *shingles(words, offsets, ngram), np.arange(n), np.arange(n, 2 * n)
    ).tolist()


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


def _relation(source: str) -> str:
    text = source.strip()
    return f"({text})" if " " in text or "\n" in text else text


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


def _clusters(
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


class _Shingles:
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


def _near_duplicate_rows(
    dup_seqs: np.ndarray,
    dup_clusters: np.ndarray,
    edges: np.ndarray,
    edge_sim: np.ndarray,
    store: _Shingles,
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
