"""The stage's decontamination step: the evaluation texts it checks against, and the
``contamination`` table of matches, re-checked in full only when those texts change."""

import hashlib
from pathlib import Path

import duckdb
import pandas as pd

from curation_assets.curation.filtering import decontamination, rule_engine
from curation_assets.curation.filtering.filter_stage.config import (
    CONTAMINATION_TABLE,
    FilterConfig,
)
from curation_assets.curation.filtering.tables import CONTAMINATION, CONTAMINATION_META
from curation_assets.curation.ingest import intake

_CONTAMINATION_META = CONTAMINATION_META.name


def evaluation_texts(
    con: duckdb.DuckDBPyConnection, cfg: FilterConfig, extra: pd.DataFrame | None
) -> pd.DataFrame:
    """The evaluation texts: ``extra`` and ``cfg.eval_files``, inputs of this stage only.

    Not the validation split of ``verified``: it is downstream of ``filtered``, so reading
    it made every run depend on the previous one (the first run kept what the second then
    rejected as contaminated). ``review.build_verified`` moves train examples that overlap
    a validation example to split ``excluded`` instead.
    """
    frames = [extra[["eval_id", "text"]]] if extra is not None and len(extra) else []
    for path in cfg.eval_files:
        frames.append(read_eval_file(Path(path)))
    if not frames:
        return pd.DataFrame({"eval_id": pd.Series(dtype=str), "text": pd.Series(dtype=str)})
    return pd.concat(frames, ignore_index=True).astype({"eval_id": str, "text": str})


def read_eval_file(path: Path) -> pd.DataFrame:
    """Any file the inbox accepts (same readers and column mapping); ids are FILE:LINE."""
    records = intake.read_file(path, {}, max_record_bytes=10_000_000).records
    text = records["prompt"].fillna("") + " " + records["response"].fillna("")
    ids = path.name + ":" + records["line_no"].astype(str)
    return pd.DataFrame({"eval_id": ids.to_numpy(), "text": text.to_numpy()})


def decontaminate(
    con: duckdb.DuckDBPyConnection, cfg: FilterConfig, extra: pd.DataFrame | None
) -> int:
    """Refresh ``contamination``; only new records unless the evaluation texts changed.
    Returns the number of records checked."""
    evaluation = evaluation_texts(con, cfg, extra)
    digest = hashlib.sha256(
        pd.util.hash_pandas_object(evaluation, index=False).to_numpy().tobytes()
        + str(cfg.decontamination_ngram).encode()
    ).hexdigest()[:16]
    CONTAMINATION_META.create(con)
    CONTAMINATION.create(con)
    same = con.execute(f"SELECT digest FROM {_CONTAMINATION_META}").fetchall() == [(digest,)]
    if not same:
        con.execute(f"DELETE FROM {CONTAMINATION_TABLE}")
        con.execute(f"DELETE FROM {_CONTAMINATION_META}")
        con.execute(f"INSERT INTO {_CONTAMINATION_META} VALUES (?)", [digest])
    rule_engine.drop_stale(con, CONTAMINATION_TABLE)
    # rows with checked = TRUE and no eval_id mark "looked at, clean"
    unchecked = f"record_id NOT IN (SELECT record_id FROM {CONTAMINATION_TABLE})"
    n = int(con.execute(f"SELECT count(*) FROM raw_scrapes WHERE {unchecked}").fetchall()[0][0])
    if n == 0:
        return 0
    pending = f"""SELECT record_id, example_id, prompt, response FROM raw_scrapes
                  WHERE {rule_engine.batch_range(con, unchecked)} AND {unchecked}"""
    found = pd.DataFrame(columns=["record_id", "eval_id", "overlap_ngrams"])
    if len(evaluation):
        found = decontamination.find_contamination(
            con,
            evaluation,
            pending,
            config=decontamination.DecontaminationConfig(ngram=cfg.decontamination_ngram),
        )[["record_id", "eval_id", "overlap_ngrams"]]
    con.register("_found", found)
    con.register("_eval_ids", evaluation[["eval_id"]])
    try:
        # matches, then one marker row per checked record (eval_id NULL). Validation rows
        # are raw records too: an evaluation example is never removed as contamination
        # (not by itself, nor by a near-identical validation example), only training
        # candidates are
        con.execute(
            f"""INSERT INTO {CONTAMINATION_TABLE}
                SELECT p.record_id, p.example_id, f.eval_id, f.overlap_ngrams, TRUE
                FROM ({pending}) p JOIN _found f USING (record_id)
                WHERE p.example_id NOT IN (SELECT eval_id FROM _eval_ids)"""
        )
        con.execute(
            f"""INSERT INTO {CONTAMINATION_TABLE}
                SELECT record_id, example_id, NULL, NULL, TRUE FROM ({pending})"""
        )
    finally:
        con.unregister("_found")
        con.unregister("_eval_ids")
    return n
