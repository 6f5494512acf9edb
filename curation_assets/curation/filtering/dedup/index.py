"""The incremental MinHash index in DuckDB: new records are sketched alone, matched
against the stored band buckets and themselves, clustered, and stored; plus the query of
the records worth deduplicating and the ``near_duplicate`` rule that reads the result."""

from dataclasses import asdict, dataclass, field

import duckdb
import numpy as np

from curation_assets.curation.filtering.dedup.candidates import candidate_pairs
from curation_assets.curation.filtering.dedup.clusters import (
    ShingleStore,
    cluster_ids,
    near_duplicate_rows,
)
from curation_assets.curation.filtering.dedup.minhash import (
    DOCS,
    INDEX,
    OUTPUT,
    TEXT_SQL,
    MinHashConfig,
    relation,
)
from curation_assets.curation.filtering.dedup.sketching import Clock, old_records, sketch_new
from curation_assets.curation.filtering.dedup.storage import (
    append_records,
    ensure_index,
    reset_index,
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
    result, clock = DedupResult(), Clock()
    ensure_index(con, config)
    start = con.execute(f"SELECT coalesce(max(seq) + 1, 0) FROM {DOCS}").fetchall()[0][0]
    new_ids, row_of, buckets, new_sets, new_offsets = sketch_new(
        con, source, order_by, text_sql, config, clock
    )
    n_new = len(new_ids)
    result.new_records = n_new
    if n_new == 0:
        result.indexed_records = _count(con, DOCS)
        result.seconds = clock.laps
        return result

    pairs = candidate_pairs(con, buckets, start, config)
    result.candidate_pairs = len(pairs)
    clock.lap("candidates")

    old_seqs = np.unique(pairs[:, 0][pairs[:, 0] < start])
    old = old_records(con, source, text_sql, old_seqs, config)
    store = ShingleStore(start, new_ids, row_of, new_sets, new_offsets, old)
    clock.lap("read_back")

    sim = store.jaccard(pairs[:, 0], pairs[:, 1])  # NaN where a text could not be read back
    confirmed = sim >= config.threshold
    edges, edge_sim = pairs[confirmed], sim[confirmed]
    result.confirmed_pairs = len(edges)
    clock.lap("verify")

    cluster_of_old = dict(zip(old["seq"].tolist(), old["cluster_id"].tolist(), strict=True))
    cluster = cluster_ids(edges, start, n_new, cluster_of_old)
    seqs = np.arange(start, start + n_new, dtype=np.int64)
    dup = cluster != seqs
    clock.lap("cluster")

    frame = near_duplicate_rows(seqs[dup], cluster[dup], edges, edge_sim, store)
    result.new_near_duplicates = len(frame)
    n_shingles = np.diff(new_offsets)[row_of]
    append_records(
        con, new_ids, seqs, cluster, n_shingles, buckets, frame, config, atomic, versions
    )
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
    con.execute(
        "CREATE OR REPLACE TEMP TABLE _mh_src AS SELECT record_id::VARCHAR AS record_id, "
        f"({group})::VARCHAR AS grp, ({version})::VARCHAR AS version FROM {relation(source)}"
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


def _count(con: duckdb.DuckDBPyConnection, table: str) -> int:
    return int(con.execute(f"SELECT count(*) FROM {table}").fetchall()[0][0])
