"""The warehouse path of the suspect scores: fit the models once, then score only new rows."""

import json
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path

import duckdb
import numpy as np
import pyarrow as pa

from curation_assets.curation.review import suspect_model
from curation_assets.curation.review.suspects.embeddings import (
    EncoderChoice,
    cached_embeddings,
    encoder_for,
)
from curation_assets.curation.review.suspects.scoring import (
    LENGTH_Z,
    MODELS_TABLE,
    REFIT_GROWTH,
    SCORES_TABLE,
    LengthStats,
    Log,
    score_frame,
)
from curation_assets.curation.review.tables import SUSPECT_MODELS, SUSPECT_SCORES

# --- the warehouse path: fit once, then score what is new --------------------------------

_Z = LENGTH_Z
REASON_SQL = f"""CASE
    WHEN method = 'heuristic' THEN
        CASE WHEN given IS NOT NULL THEN 'label ''' || given || ''' too rare to model; '
             ELSE '' END
        || CASE WHEN n_flags > 0 OR abs(z_response) > {_Z} OR abs(z_prompt) > {_Z}
                THEN 'suspect: ' || array_to_string(list_filter([
                    CASE WHEN n_flags > 0 THEN n_flags || ' rule warning(s)' END,
                    CASE WHEN abs(z_response) > {_Z} THEN 'unusually '
                         || CASE WHEN z_response > 0 THEN 'long' ELSE 'short' END
                         || ' response (z=' || printf('%+.1f', z_response) || ')' END,
                    CASE WHEN abs(z_prompt) > {_Z} THEN 'unusually '
                         || CASE WHEN z_prompt > 0 THEN 'long' ELSE 'short' END
                         || ' prompt (z=' || printf('%+.1f', z_prompt) || ')' END],
                    lambda x: x IS NOT NULL), '; ')
                ELSE 'no warning signs' END
    ELSE 'suspect: label ''' || given || ''' has quality ' || printf('%.2f', quality)
         || CASE WHEN suggested != given THEN '; model prefers ''' || suggested || ''' (p='
                 || printf('%.2f', p_suggested) || ')' ELSE '' END
         || CASE WHEN flagged THEN '; flagged by confident learning' ELSE '' END
         || CASE WHEN n_flags > 0 THEN '; ' || n_flags || ' rule warning(s)' ELSE '' END
END"""


@dataclass(frozen=True)
class RefreshConfig:
    """How ``refresh_scores`` works (from the queue settings)."""

    labelled: bool = True
    encoder: str = "none"  # ``encoder_for`` setting
    cache_dir: Path | None = None
    fit: suspect_model.FitConfig = suspect_model.FitConfig()
    chunk_rows: int = 50_000
    refit: bool = False  # refit even if nothing calls for it


def _ensure_tables(con: duckdb.DuckDBPyConnection) -> None:
    SUSPECT_MODELS.create(con)


def _active_model(con: duckdb.DuckDBPyConnection) -> dict | None:
    row = con.execute(
        f"SELECT model_id, fingerprint, labelled, classes, sample_rows, rows_at_fit, info, "
        f"blob FROM {MODELS_TABLE} WHERE active ORDER BY fitted_at DESC LIMIT 1"
    ).fetchall()
    if not row:
        return None
    keys = ("model_id", "fingerprint", "labelled", "classes", "sample_rows", "rows_at_fit")
    out = dict(zip(keys, row[0][:6], strict=True))
    out["info"] = json.loads(row[0][6]) if row[0][6] else {}
    out["blob"] = row[0][7]
    return out


def _scores_table_current(con: duckdb.DuckDBPyConnection) -> bool:
    cols = {
        r[0]
        for r in con.execute(
            "SELECT column_name FROM information_schema.columns WHERE table_name = ?",
            [SCORES_TABLE],
        ).fetchall()
    }
    return not cols or "model_id" in cols


def _label_classes(con: duckdb.DuckDBPyConnection) -> list[str]:
    return [
        r[0]
        for r in con.execute(
            "SELECT response FROM filtered WHERE response IS NOT NULL GROUP BY 1 "
            "HAVING count(*) >= 2 ORDER BY 1"
        ).fetchall()
    ]


def refit_reason(
    active: dict | None, config: RefreshConfig, fingerprint: str, rows: int, classes: list[str]
) -> str | None:
    """Why the stored model must be refitted now (None: keep it, score new rows only).

    A refit happens when there is no model; when the settings that shape it changed
    (features, sample caps, encoder, seed, task type); when the label set gained a label
    the model cannot predict; when the data grew by ``REFIT_GROWTH`` while the last
    sample held every row (more data would change the model); or on request.
    """
    if config.refit:
        return "requested"
    if active is None:
        return "no model yet"
    if active["fingerprint"] != fingerprint or bool(active["labelled"]) != config.labelled:
        return "settings changed"
    known = list(active["classes"] or [])
    if config.labelled:
        new = sorted(set(classes) - set(known))
        if new:
            return f"new labels: {', '.join(new[:5])}" + ("..." if len(new) > 5 else "")
    per_label = max(2, min(config.fit.max_per_label, config.fit.max_rows // max(len(known), 1)))
    full_sample = bool(known) and active["sample_rows"] >= per_label * len(known)
    if not full_sample and rows >= REFIT_GROWTH * max(active["rows_at_fit"], 1):
        return f"data grew from {active['rows_at_fit']:,} to {rows:,} rows"
    return None


def _sample_query(config: RefreshConfig, n_classes: int) -> str:
    per_label = max(2, min(config.fit.max_per_label, config.fit.max_rows // max(n_classes, 1)))
    return f"""SELECT example_id, prompt, response FROM filtered
               WHERE response IN (SELECT response FROM filtered GROUP BY 1 HAVING count(*) >= 2)
               QUALIFY row_number() OVER (PARTITION BY response
                                          ORDER BY sha256(example_id || '{config.fit.seed}'))
                       <= {per_label}
               ORDER BY example_id"""


Embedder = Callable[[list[str], list[str]], np.ndarray]


def _embedder(con: duckdb.DuckDBPyConnection, choice: EncoderChoice | None) -> Embedder | None:
    if choice is None:
        return None
    if not choice.cached:
        return lambda ids, texts: choice.encode(texts)
    return lambda ids, texts: cached_embeddings(con, ids, texts, choice.key, choice.encode)[0]


def refresh_scores(
    con: duckdb.DuckDBPyConnection, config: RefreshConfig, log: Log | None = None
) -> dict:
    """Bring ``suspect_scores`` up to date with ``filtered`` (needs ``_annotated``).

    Returns what was done: refit or not (and why), rows scored, timings.
    """
    log = log or (lambda message: None)
    started = time.perf_counter()
    timings: dict[str, float] = {}
    _ensure_tables(con)
    rows = con.execute("SELECT count(*) FROM filtered").fetchall()[0][0]
    choice = encoder_for(config.encoder, config.cache_dir) if config.labelled else None
    fit_config = suspect_model.FitConfig(
        **{**asdict(config.fit), "encoder": choice.key if choice else ""}
    )
    fingerprint = fit_config.fingerprint()
    classes = _label_classes(con) if config.labelled else []
    active = _active_model(con) if _scores_table_current(con) else None
    reason = refit_reason(active, config, fingerprint, rows, classes)
    embed = _embedder(con, choice)
    timings["setup_s"] = time.perf_counter() - started
    if reason is not None:
        log(f"suspect models: refit ({reason}) on {rows:,} filtered rows")
        active = _refit(con, config, fit_config, fingerprint, classes, rows, embed, reason, log)
        con.execute(f"DROP TABLE IF EXISTS {SCORES_TABLE}")
        timings["refit_s"] = time.perf_counter() - started - sum(timings.values())
    assert active is not None
    models = suspect_model.loads(active["blob"]) if active["blob"] else None
    stats = LengthStats(**active["info"]["length_stats"])
    _create_scores_table(con)
    removed = con.execute(
        f"DELETE FROM {SCORES_TABLE} WHERE model_id != ? OR example_id NOT IN "
        "(SELECT example_id FROM filtered)",
        [active["model_id"]],
    ).fetchall()[0][0]
    scored = _score_new(con, config, models, stats, active["model_id"], embed, log)
    timings["score_s"] = time.perf_counter() - started - sum(timings.values())
    methods = {
        str(m): int(c)
        for m, c in con.execute(
            f"SELECT method, count(*) FROM {SCORES_TABLE} GROUP BY 1 ORDER BY 1"
        ).fetchall()
    }
    return {
        "examples": int(rows),
        "methods": methods,
        "model_id": active["model_id"],
        "refit": reason is not None,
        "refit_reason": reason or "",
        "newly_scored": int(scored),
        "scores_removed": int(removed),
        "sample_rows": int(active["sample_rows"] or 0),
        "encoder": choice.key if choice else "none",
        "seconds": {k: round(v, 2) for k, v in timings.items()},
        "fit_seconds": models.timings if models else {},
    }


def _refit(con, config, fit_config, fingerprint, classes, rows, embed, reason, log) -> dict:
    lengths = con.execute(
        "SELECT length(coalesce(prompt, '')), length(coalesce(response, '')) FROM filtered "
        "USING SAMPLE reservoir(100000 ROWS) REPEATABLE (0)"
    ).fetchnumpy()
    stats = LengthStats.of(*(np.asarray(v, dtype=float) for v in lengths.values()))
    models = None
    sample_rows = 0
    if config.labelled and len(classes) >= 2:
        sample = con.sql(_sample_query(config, len(classes))).df()
        sample_rows = len(sample)
        ids = sample["example_id"].tolist()
        texts = sample["prompt"].fillna("").tolist()
        vectors = embed(ids, texts) if embed else None
        models = suspect_model.fit(
            ids,
            texts,
            sample["response"].astype(str).tolist(),
            fit_config,
            (lambda idx: vectors[idx]) if vectors is not None else None,
            log,
        )
    model_id = f"{fingerprint[:8]}-{time.strftime('%Y%m%dT%H%M%S')}-{time.time_ns() % 10**6:06d}"
    info = {"length_stats": asdict(stats), "fit_seconds": models.timings if models else {}}
    if models is not None:
        info["temperatures"] = models.temperatures
    con.execute(f"UPDATE {MODELS_TABLE} SET active = FALSE")
    con.execute(
        f"INSERT INTO {MODELS_TABLE} VALUES (?, now(), ?, ?, ?, ?, ?, ?, ?, ?, TRUE)",
        [
            model_id,
            fingerprint,
            config.labelled,
            models.classes if models else [],
            sample_rows,
            rows,
            reason,
            json.dumps(info),
            suspect_model.dumps(models) if models else None,
        ],
    )
    con.execute(f"DELETE FROM {MODELS_TABLE} WHERE NOT active")  # keep the warehouse small
    found = _active_model(con)
    assert found is not None and found["model_id"] == model_id
    return found


def _create_scores_table(con: duckdb.DuckDBPyConnection) -> None:
    SUSPECT_SCORES.create(con)


def _score_new(con, config, models, stats, model_id, embed, log) -> int:
    todo = con.execute(
        f"SELECT count(*) FROM filtered WHERE example_id NOT IN "
        f"(SELECT example_id FROM {SCORES_TABLE})"
    ).fetchall()[0][0]
    if not todo:
        log("suspect scores: every filtered example already has a score from this model")
        return 0
    con.execute(  # ids in scoring order; each chunk's rows are read, scored and written
        f"""CREATE OR REPLACE TEMP TABLE _pending AS
            SELECT example_id, row_number() OVER (ORDER BY example_id) - 1 AS rn
            FROM filtered WHERE example_id NOT IN (SELECT example_id FROM {SCORES_TABLE})"""
    )
    started, done = time.perf_counter(), 0
    for part in suspect_model.chunks(todo, config.chunk_rows):
        frame = con.execute(
            """SELECT f.example_id, f.prompt, f.response, a.flags FROM _pending p
               JOIN filtered f USING (example_id) JOIN _annotated a USING (example_id)
               WHERE p.rn >= ? AND p.rn < ? ORDER BY p.rn""",
            [part.start, part.stop],
        ).df()
        vectors = None
        if embed is not None and models is not None and models.embedding_models:
            vectors = embed(frame["example_id"].tolist(), frame["prompt"].fillna("").tolist())
        raw = score_frame(models, frame, stats, labelled=config.labelled, embeddings=vectors)
        con.register("_new_scores", pa.Table.from_pandas(raw, preserve_index=False))
        try:
            con.execute(
                f"""INSERT INTO {SCORES_TABLE}
                    SELECT example_id, score, quality, given, suggested, p_given,
                           p_suggested, method, {REASON_SQL}, flagged, n_flags,
                           quality_tfidf, quality_embeddings, ?, now()
                    FROM _new_scores""",
                [model_id],
            )
        finally:
            con.unregister("_new_scores")
        done += len(frame)
        rate = done / max(time.perf_counter() - started, 1e-9)
        log(
            f"suspect scores: {done:,} of {todo:,} rows ({rate:,.0f} rows/s, "
            f"about {(todo - done) / rate:,.0f} s left)"
        )
    con.execute("DROP TABLE IF EXISTS _pending")
    return done
