"""Decontamination: flag training candidates that share word n-grams with evaluation texts.

Same tokenization as ``dedup`` (NFC, lower case, Unicode words hashed in DuckDB) and the
same vectorized n-gram hashing, so the whole job is a few numpy passes per chunk of
training records:

* an evaluation text of at least ``ngram`` words contributes its word n-grams; a
  training record matches it when they share at least ``min_overlap`` of them (and at
  least ``min_overlap_fraction`` of the evaluation text's n-grams);
* a shorter one (``min_words`` words or more) is one word sequence; a training record
  matches when it contains that sequence contiguously (prompt or response);
* a very short one (fewer than ``min_words`` words) matches only a training prompt or
  response that is exactly that word sequence.

Output: one row per (record, evaluation text) with the number of shared n-grams.
"""

from collections.abc import Sequence
from dataclasses import dataclass

import duckdb
import numpy as np
import pandas as pd
import pyarrow as pa

from curation_assets.curation.filtering.dedup import (
    relation,
    sequence_hash,
    shingles,
    word_hashes_sql,
    word_lists,
)

#: Result columns (also the schema of the output table).
COLUMNS = ("record_id", "eval_id", "overlap_ngrams", "eval_ngrams", "overlap_fraction", "match")


@dataclass(frozen=True)
class DecontaminationConfig:
    """How much overlap counts as contamination: shared ``ngram``-word n-grams for a long
    evaluation text, containment for a shorter one, equality for one under ``min_words``
    words (see the module's description)."""

    ngram: int = 8
    #: shorter evaluation texts (under ``ngram`` words) count only when contained whole,
    #: and under ``min_words`` words only when a training prompt or response equals them
    min_words: int = 5
    #: an n-gram match needs this many shared n-grams ...
    min_overlap: int = 1
    #: ... and this share of the evaluation text's n-grams (0.5 drops generic phrases)
    min_overlap_fraction: float = 0.0
    chunk_size: int = 100_000


def _words(expr: str) -> str:
    """SQL: list of word hashes of a text expression (NFC, lower case), as ``dedup``'s."""
    return word_hashes_sql(f"lower(nfc_normalize({expr}))")


def find_contamination(
    con: duckdb.DuckDBPyConnection,
    evaluation: pd.DataFrame | Sequence[str] | str,
    training: str = "filtered",
    *,
    columns: tuple[str, str] = ("prompt", "response"),
    config: DecontaminationConfig | None = None,
    output_table: str | None = None,
) -> pd.DataFrame:
    """Training records of ``training`` that overlap the evaluation texts.

    ``evaluation`` is a frame with ``eval_id`` and ``text``, a list of texts (ids are their
    positions), or a table name / ``SELECT`` with those two columns. ``training`` is a table
    name or ``SELECT`` with ``record_id`` and the two text ``columns``. With
    ``output_table`` the result also replaces that DuckDB table.
    """
    config = config or DecontaminationConfig()
    lookup = _eval_lookup(con, evaluation, config)
    p, r = columns
    sql = (
        f"SELECT record_id, list_concat({_words(p)}, {_words(r)}) AS words, "
        f"len({_words(p)}) AS n_prompt FROM {relation(training)}"
    )
    parts = [
        _match_chunk(batch, lookup, config)
        for batch in con.sql(sql).to_arrow_reader(config.chunk_size)
    ]
    found = pd.concat(parts, ignore_index=True) if parts else _empty()
    found = found.merge(lookup["info"], on="eval_index").drop(columns="eval_index")
    found["overlap_fraction"] = found["overlap_ngrams"] / found["eval_ngrams"]
    found = found[found["overlap_fraction"] >= config.min_overlap_fraction]
    found = found[list(COLUMNS)].sort_values(["record_id", "eval_id"], ignore_index=True)
    if output_table:
        con.register("_contamination", found)
        try:
            con.execute(f"CREATE OR REPLACE TABLE {output_table} AS SELECT * FROM _contamination")
        finally:
            con.unregister("_contamination")
    return found


def contamination_rule_sql(table: str = "contamination") -> str:
    """SQL condition for a ``filtering.Rule``: the record overlaps an evaluation text."""
    return f"record_id IN (SELECT record_id FROM {table})"


def _empty() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "record_id": pd.Series(dtype=object),
            "eval_index": pd.Series(dtype=np.int64),
            "overlap_ngrams": pd.Series(dtype=np.int64),
            "match": pd.Series(dtype=object),
        }
    )


def _eval_frame(evaluation: pd.DataFrame | Sequence[str] | str) -> pd.DataFrame | str:
    if isinstance(evaluation, str):
        return evaluation
    if isinstance(evaluation, pd.DataFrame):
        return evaluation[["eval_id", "text"]].astype({"eval_id": str})
    texts = list(evaluation)
    return pd.DataFrame({"eval_id": [str(i) for i in range(len(texts))], "text": texts})


def _eval_lookup(
    con: duckdb.DuckDBPyConnection,
    evaluation: pd.DataFrame | Sequence[str] | str,
    config: DecontaminationConfig,
) -> dict:
    """Sorted hash tables of the evaluation texts: n-grams, short sequences, exact texts."""
    source = _eval_frame(evaluation)
    if isinstance(source, pd.DataFrame):
        con.register("_eval_texts", source)
        texts = "_eval_texts"
    else:
        texts = relation(source)
    try:
        table = con.sql(
            f"SELECT eval_id::VARCHAR AS eval_id, {_words('text')} AS words FROM {texts}"
        ).to_arrow_table()
    finally:
        if isinstance(source, pd.DataFrame):
            con.unregister("_eval_texts")
    words, offsets = word_lists(table)
    lengths = np.diff(offsets)
    n, min_words = config.ngram, config.min_words
    eval_index = np.arange(len(lengths))

    # Long texts: their unique n-grams.
    flat, sh_offsets = shingles(words, offsets, n)
    row = np.repeat(eval_index, np.diff(sh_offsets))
    long = lengths[row] >= n
    grams = pd.DataFrame({"hash": flat[long], "eval_index": row[long]}).drop_duplicates()
    eval_ngrams = np.ones(len(lengths), dtype=np.int64)
    counts = grams.groupby("eval_index").size()
    eval_ngrams[counts.index.to_numpy()] = counts.to_numpy()

    # Short texts: one hash of the whole word sequence.
    short = np.flatnonzero((lengths > 0) & (lengths < n))
    whole = sequence_hash(words, offsets[short], lengths[short])
    sequences = {
        int(length): _table(whole[lengths[short] == length], short[lengths[short] == length])
        for length in np.unique(lengths[short])
        if length >= min_words
    }
    tiny = lengths[short] < min_words
    info = pd.DataFrame(
        {
            "eval_index": eval_index,
            "eval_id": table.column("eval_id").to_pylist(),
            "eval_ngrams": eval_ngrams,
        }
    )
    return {
        "ngrams": _table(grams["hash"].to_numpy(), grams["eval_index"].to_numpy()),
        "sequences": sequences,
        "exact": _table(whole[tiny], short[tiny]),
        "info": info,
    }


def _table(hashes: np.ndarray, eval_index: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    order = np.argsort(hashes, kind="stable")
    return hashes[order].astype(np.uint64), eval_index[order].astype(np.int64)


def _hits(
    hashes: np.ndarray, rows: np.ndarray, table: tuple[np.ndarray, np.ndarray]
) -> pd.DataFrame:
    """(row, eval_index, hash) for every hash found in a sorted table (many-to-many)."""
    keys, evals = table
    if not len(keys) or not len(hashes):
        return pd.DataFrame({"row": [], "eval_index": [], "hash": []}, dtype=np.int64)
    left = np.searchsorted(keys, hashes, side="left")
    right = np.searchsorted(keys, hashes, side="right")
    found = np.flatnonzero(right > left)
    width = (right - left)[found]
    which = np.repeat(found, width)
    pos = np.repeat(left[found] - np.cumsum(width) + width, width) + np.arange(width.sum())
    return pd.DataFrame(
        {"row": rows[which], "eval_index": evals[pos], "hash": hashes[which].view(np.int64)}
    )


def _match_chunk(batch: pa.RecordBatch, lookup: dict, config: DecontaminationConfig):
    """Matches of one chunk of training records: record_id, eval_index, overlap, match."""
    words, offsets = word_lists(batch)
    lengths = np.diff(offsets)
    ids = np.asarray(batch.column("record_id").to_pylist(), dtype=object)
    frames = []

    flat, sh_offsets = shingles(words, offsets, config.ngram)
    hits = _hits(flat, np.repeat(np.arange(len(lengths)), np.diff(sh_offsets)), lookup["ngrams"])
    if len(hits):
        counted = hits.drop_duplicates().groupby(["row", "eval_index"]).size()
        counted = counted[counted >= config.min_overlap].rename("overlap_ngrams").reset_index()
        frames.append(counted.assign(match="ngram"))

    for length, table in lookup["sequences"].items():
        flat, sh_offsets = shingles(words, offsets, length)
        hits = _hits(flat, np.repeat(np.arange(len(lengths)), np.diff(sh_offsets)), table)
        if len(hits):
            frames.append(_one_each(hits, "contains"))

    if len(lookup["exact"][0]):
        n_prompt = batch.column("n_prompt").to_numpy().astype(np.int64)
        starts = np.concatenate([offsets[:-1], offsets[:-1] + n_prompt])
        sizes = np.concatenate([n_prompt, lengths - n_prompt])
        rows = np.concatenate([np.arange(len(lengths))] * 2)
        small = (sizes > 0) & (sizes < config.min_words)
        hashes = sequence_hash(words, starts[small], sizes[small])
        hits = _hits(hashes, rows[small], lookup["exact"])
        if len(hits):
            frames.append(_one_each(hits, "equal"))

    if not frames:
        return _empty()
    found = pd.concat(frames, ignore_index=True)
    found = found.drop_duplicates(["row", "eval_index"])  # an n-gram match wins
    found.insert(0, "record_id", ids[found["row"].to_numpy()])
    return found.drop(columns="row")


def _one_each(hits: pd.DataFrame, match: str) -> pd.DataFrame:
    pairs = hits[["row", "eval_index"]].drop_duplicates()
    return pairs.assign(overlap_ngrams=1, match=match)
