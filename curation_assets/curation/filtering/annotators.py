"""Per-record annotations that SQL cannot compute, done in bulk over whole columns.

The filter rules run in DuckDB; what needs a Python library lands here and is stored as the
table ``annotations`` (``record_id``, ``mojibake``), which the ``mojibake`` rule of
``rules_pairs`` reads. No Dagster here: plain columns in, plain columns out.

Mojibake (UTF-8 read as cp1252 or Latin-1: "â€™", "Ã©") is detected with ftfy's badness
heuristic. Only strings with a non-ASCII character can be mojibake, so an Arrow kernel
selects those first and ftfy sees only them.
"""

from collections.abc import Iterable

import duckdb
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from curation_assets.curation.filtering.tables import ANNOTATIONS

ANNOTATIONS_TABLE = ANNOTATIONS.name
#: The columns of a mojibake annotations table (any name; declared as ``annotations``).
ANNOTATIONS_SCHEMA = ANNOTATIONS.ddl()


def mojibake_flags(texts: Iterable[str | None] | pa.Array | pa.ChunkedArray) -> list[bool]:
    """One flag per text: True where the text looks like mojibake (None counts as clean)."""
    from ftfy.badness import is_bad  # imported here: the code location loads without it

    array = (
        texts
        if isinstance(texts, pa.Array | pa.ChunkedArray)
        else pa.array(list(texts), type=pa.large_string())
    )
    non_ascii = pc.invert(pc.fill_null(pc.string_is_ascii(array), True))
    flags = [False] * len(array)
    candidates = pc.indices_nonzero(non_ascii).to_pylist()
    if candidates:
        for index, text in zip(candidates, array.take(candidates).to_pylist(), strict=True):
            flags[index] = bool(is_bad(text))
    return flags


def annotate(frame: pd.DataFrame) -> pd.DataFrame:
    """``record_id`` and ``mojibake`` (prompt or response) for each row of ``frame``.

    ``frame`` needs ``record_id``, ``prompt`` and ``response`` columns.
    """
    prompt = mojibake_flags(pa.array(frame["prompt"], type=pa.large_string(), from_pandas=True))
    response = mojibake_flags(pa.array(frame["response"], type=pa.large_string(), from_pandas=True))
    return pd.DataFrame(
        {
            "record_id": frame["record_id"].to_numpy(),
            "mojibake": [p or r for p, r in zip(prompt, response, strict=True)],
        }
    )


def store_annotations(
    con: duckdb.DuckDBPyConnection,
    source: str = "raw_scrapes",
    table: str = ANNOTATIONS_TABLE,
    *,
    replace: bool = True,
) -> int:
    """Rebuild ``table`` from every record of ``source`` (a table or a parenthesized
    SELECT); with ``replace=False``, add or update only those records. Returns the flagged
    count.

    Only records with a non-ASCII character are read into Python (DuckDB selects them);
    every other record is clean by construction and gets a FALSE row.
    """
    candidates = con.sql(
        f"""SELECT record_id, prompt, response FROM {source}
            WHERE NOT (regexp_full_match(coalesce(prompt, ''), '[\\x00-\\x7F]*')
                       AND regexp_full_match(coalesce(response, ''), '[\\x00-\\x7F]*'))"""
    ).df()
    flagged = (
        annotate(candidates)
        if len(candidates)
        else pd.DataFrame({"record_id": pd.Series(dtype=object), "mojibake": pd.Series(dtype=bool)})
    )
    con.register("_mojibake_flags", flagged)
    try:
        if replace:
            con.execute(f"CREATE OR REPLACE TABLE {table} ({ANNOTATIONS_SCHEMA})")
        else:
            con.execute(f"CREATE TABLE IF NOT EXISTS {table} ({ANNOTATIONS_SCHEMA})")
        con.execute(
            f"""INSERT OR REPLACE INTO {table}
                SELECT s.record_id, coalesce(f.mojibake, FALSE)
                FROM {source} s LEFT JOIN _mojibake_flags f USING (record_id)"""
        )
    finally:
        con.unregister("_mojibake_flags")
    return int(flagged["mojibake"].sum())
