"""MinHash over word n-grams, in bulk: word hashes from DuckDB, numpy shingles, rensa
signatures, band buckets, and the exact Jaccard that confirms a candidate pair."""

import itertools
from dataclasses import dataclass

import duckdb
import numpy as np
import pyarrow as pa

from curation_assets.curation.filtering.tables import (
    MINHASH_DOCS,
    MINHASH_INDEX,
    MINHASH_META,
    NEAR_DUPLICATES,
)

#: The text that is compared: prompt and response, NFC-normalized, lower case. Word
#: extraction below makes whitespace normalization (as in ``NORMALIZE_SQL``) unnecessary.
TEXT_SQL = "lower(nfc_normalize(coalesce(prompt, '') || ' ' || coalesce(response, '')))"
#: A word: a run of Unicode letters, digits and underscores (RE2 ``\w`` is ASCII only).
WORD_PATTERN = r"[\p{L}\p{N}_]+"

#: The index tables (declared in ``filtering/tables.yaml``; created by ``storage.ensure_index``).
DOCS, INDEX, META, OUTPUT = (
    t.name for t in (MINHASH_DOCS, MINHASH_INDEX, MINHASH_META, NEAR_DUPLICATES)
)

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


# --------------------------------------------------------------------------- hashing


def mix64(x: np.ndarray) -> np.ndarray:
    """splitmix64 finalizer, vectorized (uint64 in, uint64 out)."""
    with np.errstate(over="ignore"):
        z = x.astype(np.uint64) + _GOLDEN
        z = (z ^ (z >> np.uint64(30))) * _M1
        z = (z ^ (z >> np.uint64(27))) * _M2
        return z ^ (z >> np.uint64(31))


def relation(source: str) -> str:
    """A table name as it is, a query in parentheses."""
    text = source.strip()
    return f"({text})" if " " in text or "\n" in text else text


def word_hashes_sql(text_sql: str) -> str:
    """SQL: the list of word hashes (``WORD_PATTERN``, DuckDB ``hash``) of a text
    expression; empty for NULL."""
    return (
        f"coalesce(list_transform(regexp_extract_all({text_sql}, '{WORD_PATTERN}'), "
        "lambda w: hash(w)), []::UBIGINT[])"
    )


def words_sql(source: str, text_sql: str = TEXT_SQL, extra: str = "") -> str:
    """Query: ``record_id``, ``words`` (list of word hashes) and ``extra`` columns."""
    extra = f", {extra}" if extra else ""
    return (
        f"SELECT record_id::VARCHAR AS record_id, {word_hashes_sql(text_sql)} AS words{extra} "
        f"FROM {relation(source)}"
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
