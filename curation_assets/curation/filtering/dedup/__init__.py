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

* ``minhash_docs(seq, record_id, cluster_id, n_shingles, grp, version)``: every record
  ever sketched; ``cluster_id`` is the ``seq`` of its cluster's representative, ``grp``
  and ``version`` its group and content (stored by ``sync_records``).
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

Modules: ``minhash`` (word hashing, shingles, signatures, band buckets, exact Jaccard),
``index`` (the incremental index: one call from new records to stored clusters, and the
``near_duplicate`` rule), ``sketching`` (new records sketched, indexed ones read back),
``candidates`` (pairs that share a band bucket), ``clusters`` (connected components and
the near-duplicate rows) and ``storage`` (the index tables). This package exposes
their public names (``dedup.dedup_new_records``, ``dedup.near_duplicate_rule``, ...).
"""

from curation_assets.curation.filtering.dedup.clusters import (
    connected_min,
)
from curation_assets.curation.filtering.dedup.index import (
    DedupResult,
    dedup_new_records,
    eligible_records_sql,
    near_duplicate_rule,
    near_duplicates,
    sync_records,
)
from curation_assets.curation.filtering.dedup.minhash import (
    DOCS,
    INDEX,
    META,
    OUTPUT,
    TEXT_SQL,
    WORD_PATTERN,
    MinHashConfig,
    band_buckets,
    gather_rows,
    jaccard_of_texts,
    mix64,
    pair_jaccard,
    relation,
    sequence_hash,
    shingles,
    signatures,
    word_hashes_sql,
    word_lists,
    words_sql,
)
from curation_assets.curation.filtering.dedup.storage import ensure_index, reset_index

__all__ = [
    "DOCS",
    "DedupResult",
    "INDEX",
    "META",
    "MinHashConfig",
    "OUTPUT",
    "TEXT_SQL",
    "WORD_PATTERN",
    "band_buckets",
    "connected_min",
    "dedup_new_records",
    "eligible_records_sql",
    "ensure_index",
    "gather_rows",
    "jaccard_of_texts",
    "mix64",
    "near_duplicate_rule",
    "near_duplicates",
    "pair_jaccard",
    "relation",
    "reset_index",
    "sequence_hash",
    "shingles",
    "signatures",
    "sync_records",
    "word_hashes_sql",
    "word_lists",
    "words_sql",
]
