"""The index tables in DuckDB (declared in ``filtering/tables.yaml``): their creation and
settings check, their reset, and the append of new records, buckets and ``near_duplicates``
rows."""

import contextlib
import json

import duckdb
import numpy as np
import pyarrow as pa

from curation_assets.curation import publish
from curation_assets.curation.filtering.dedup.minhash import (
    DOCS,
    INDEX,
    META,
    OUTPUT,
    WORD_PATTERN,
    MinHashConfig,
)
from curation_assets.curation.filtering.tables import (
    MINHASH_DOCS,
    MINHASH_INDEX,
    MINHASH_META,
    NEAR_DUPLICATES,
    add_columns,
)


def ensure_index(con: duckdb.DuckDBPyConnection, config: MinHashConfig) -> None:
    """Create the index tables (from their declarations); refuse an index built with other
    settings."""
    for table in (MINHASH_META, MINHASH_DOCS, MINHASH_INDEX, NEAR_DUPLICATES):
        table.create(con)
    # indexes made before ``sync_records`` stored each record's group and content
    add_columns(con, MINHASH_DOCS, "grp", "version")
    wanted = fingerprint(con, config)
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


def fingerprint(con: duckdb.DuckDBPyConnection, config: MinHashConfig) -> dict[str, str]:
    """What makes stored signatures comparable: the index settings, rensa's algorithm
    version, DuckDB's word hash and the word pattern."""
    import rensa

    probe = con.execute("SELECT hash('minhash probe')::VARCHAR").fetchall()[0][0]
    return {
        "settings": json.dumps(config.index_settings(), sort_keys=True),
        "rensa_algorithm": str(rensa.RMinHash.ALGORITHM_VERSION),
        "duckdb_hash_probe": str(probe),
        "word_pattern": WORD_PATTERN,
    }


def append_records(
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
        with contextlib.ExitStack() as writes:
            if atomic:
                try:
                    writes.enter_context(publish.transaction(con))  # rolled back if one fails
                except duckdb.TransactionException as error:
                    raise RuntimeError(
                        "a transaction is already open on this connection: commit it first, or "
                        "pass atomic=False and commit the index writes yourself"
                    ) from error
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
    finally:
        for name in ("_mh_docs", "_mh_index", "_mh_out"):
            con.unregister(name)
