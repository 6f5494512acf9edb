"""Which examples are most likely wrong: the ranking behind the suspect queue.

Labelled data (classification): confident learning on out-of-sample probabilities of two
cheap models (``suspect_model``: fold models fitted once on a capped, stratified sample,
then scoring every row in chunks; new rows are scored later without a refit). ``quality``
is the pooled probability of the given label (cleanlab's self-confidence), ``suspicion =
1 - quality``, and each rule warning multiplies the quality by ``1 - FLAG_WEIGHT``.

Unlabelled data (instruction pairs) and labels too rare to model: a heuristic,
``1 - prod(1 - p_i)`` over the signals present: each rule warning ``p = 0.3``; a response
or prompt length far from the typical one (|z| of log length above 2) up to ``p = 0.6``.

``refresh_scores`` keeps ``suspect_scores`` in the warehouse up to date: it fits (or
refits, for a reason it records) the models and scores only the rows that have no score
from the current model. Embeddings: static (model2vec format, thousands of texts per
CPU-second) by default; a transformer encoder's are cached in ``example_embeddings``.
No Dagster here.
"""

import json
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

import duckdb
import numpy as np
import pandas as pd
import pyarrow as pa

from curation_assets.curation.review import suspect_model

Encoder = Callable[[list[str]], np.ndarray]
Log = Callable[[str], None]

EMBEDDINGS_TABLE = "example_embeddings"
SCORES_TABLE = "suspect_scores"
MODELS_TABLE = "suspect_models"
FLAG_WEIGHT = 0.3  # suspicion added by one rule warning
LENGTH_Z = 2.0  # |z| of log length above which a length is an outlier
REFIT_GROWTH = 1.25  # refit when the data grew by this factor while the sample was not full
SCORE_COLUMNS = [
    "example_id",
    "score",
    "quality",
    "given",
    "suggested",
    "p_given",
    "p_suggested",
    "method",
    "reason",
]


def flag_count(flags_json: Sequence[str | None]) -> np.ndarray:
    """Number of rule warnings in each JSON list (``[]`` or NULL: none)."""
    return np.array([len(json.loads(f)) if f else 0 for f in flags_json], dtype=int)


@dataclass(frozen=True)
class LengthStats:
    """Mean and spread of log lengths, fixed at fit time so later rows score the same way."""

    prompt_mean: float = 0.0
    prompt_std: float = 0.0
    response_mean: float = 0.0
    response_std: float = 0.0

    @classmethod
    def of(cls, prompt_lengths: np.ndarray, response_lengths: np.ndarray) -> "LengthStats":
        p, r = np.log1p(prompt_lengths), np.log1p(response_lengths)
        return cls(
            float(p.mean()) if len(p) else 0.0,
            float(p.std()) if len(p) else 0.0,
            float(r.mean()) if len(r) else 0.0,
            float(r.std()) if len(r) else 0.0,
        )

    def z(self, prompt_lengths: np.ndarray, response_lengths: np.ndarray) -> tuple:
        def one(lengths, mean, std):
            logs = np.log1p(np.asarray(lengths, dtype=float))
            return (logs - mean) / std if std > 0 else np.zeros(len(logs))

        return (
            one(prompt_lengths, self.prompt_mean, self.prompt_std),
            one(response_lengths, self.response_mean, self.response_std),
        )


def heuristic_score(n_flags: np.ndarray, z_prompt: np.ndarray, z_response: np.ndarray):
    """Suspicion from rule warnings and length outliers: ``1 - prod(1 - p_i)`` (vectorized)."""
    keep = (1 - FLAG_WEIGHT) ** np.asarray(n_flags, dtype=float)
    for z in (np.abs(z_prompt), np.abs(z_response)):
        keep = keep * np.where(z > LENGTH_Z, 1 - np.minimum(0.6, (z - LENGTH_Z) / 4 + 0.2), 1.0)
    return 1.0 - keep


def heuristic_reason(n_flags: int, z_prompt: float, z_response: float) -> str:
    """The reason text of a heuristic score (same wording as ``REASON_SQL``)."""
    parts = [f"{n_flags} rule warning(s)"] if n_flags else []
    for name, z in (("response", z_response), ("prompt", z_prompt)):
        if abs(z) > LENGTH_Z:
            parts.append(f"unusually {'long' if z > 0 else 'short'} {name} (z={z:+.1f})")
    return "suspect: " + "; ".join(parts) if parts else "no warning signs"


def score_frame(
    models: suspect_model.FittedModels | None,
    frame: pd.DataFrame,
    stats: LengthStats,
    *,
    labelled: bool,
    embeddings: np.ndarray | None = None,
) -> pd.DataFrame:
    """Score columns (``RAW_COLUMNS``) of ``frame`` (example_id, prompt, response, flags)."""
    n = len(frame)
    prompts = frame["prompt"].fillna("").astype(str).tolist()
    responses = frame["response"].fillna("").astype(str).tolist()
    n_flags = flag_count(frame["flags"].tolist()) if "flags" in frame else np.zeros(n, int)
    z_prompt, z_response = stats.z(
        np.array([len(p) for p in prompts]), np.array([len(r) for r in responses])
    )
    heuristic = heuristic_score(n_flags, z_prompt, z_response)
    out = pd.DataFrame(
        {
            "example_id": frame["example_id"].astype(str).to_numpy(),
            "score": heuristic,
            "quality": np.nan,
            "given": responses if labelled else None,
            "suggested": None,
            "p_given": np.nan,
            "p_suggested": np.nan,
            "method": "heuristic",
            "flagged": False,
            "n_flags": n_flags,
            "z_prompt": z_prompt,
            "z_response": z_response,
            "quality_tfidf": np.nan,
            "quality_embeddings": np.nan,
        }
    )
    if not labelled or models is None or n == 0:
        return out
    texts = prompts
    scores = suspect_model.score(models, out["example_id"].tolist(), texts, responses, embeddings)
    modelled = ~np.isnan(scores.quality)
    keep = np.nan_to_num(scores.quality, nan=1.0) * (1 - FLAG_WEIGHT) ** n_flags
    out["score"] = np.where(modelled, 1.0 - keep, heuristic)
    out["quality"] = scores.quality
    out["suggested"] = np.where(modelled, scores.suggested, None)
    out["p_given"] = scores.p_given
    out["p_suggested"] = np.where(modelled, scores.p_suggested, np.nan)
    out["method"] = np.where(modelled, " + ".join(models.models), "heuristic")
    out["flagged"] = scores.flagged
    for name, values in scores.per_model_quality.items():
        out[f"quality_{name}"] = values
    return out


def score_examples(
    frame: pd.DataFrame,
    *,
    labelled: bool,
    embeddings: np.ndarray | None = None,
    seed: int = 0,
    config: suspect_model.FitConfig | None = None,
) -> pd.DataFrame:
    """Fit on ``frame`` and score every row of it (``SCORE_COLUMNS``; higher = worse).

    ``frame``: example_id, prompt, response and optionally ``flags`` (JSON list text).
    ``labelled``: the response is a class label. The warehouse path (``refresh_scores``)
    does the same, keeps the models and scores only new rows on later runs.
    """
    prompts = frame["prompt"].fillna("").astype(str)
    responses = frame["response"].fillna("").astype(str)
    stats = LengthStats.of(prompts.str.len().to_numpy(), responses.str.len().to_numpy())
    models = None
    if labelled and len(frame):
        config = config or suspect_model.FitConfig(
            encoder="given" if embeddings is not None else "", seed=seed
        )
        embed = (lambda rows: embeddings[rows]) if embeddings is not None else None
        models = suspect_model.fit(
            frame["example_id"].astype(str).tolist(),
            prompts.tolist(),
            responses.tolist(),
            config,
            embed,
        )
    raw = score_frame(models, frame, stats, labelled=labelled, embeddings=embeddings)
    raw["reason"] = [_reason(row) for row in raw.itertuples(index=False)]
    return raw[SCORE_COLUMNS]


def _reason(row) -> str:
    """Python twin of ``REASON_SQL`` (small frames only)."""
    heuristic = heuristic_reason(int(row.n_flags), float(row.z_prompt), float(row.z_response))
    if row.method == "heuristic":
        if row.given is not None and row.given == row.given:
            return f"label '{row.given}' too rare to model; " + heuristic
        return heuristic
    text = f"suspect: label '{row.given}' has quality {row.quality:.2f}"
    if row.suggested != row.given:
        text += f"; model prefers '{row.suggested}' (p={row.p_suggested:.2f})"
    if row.flagged:
        text += "; flagged by confident learning"
    if row.n_flags:
        text += f"; {int(row.n_flags)} rule warning(s)"
    return text


# --- sentence embeddings ---------------------------------------------------------------


class SentenceEncoder:
    """Mean-pooled, L2-normalized sentence embeddings from a transformers encoder.

    Loaded lazily on first use (torch and transformers import only then); batched.
    """

    def __init__(self, model: str, batch_size: int = 64, max_length: int = 128) -> None:
        self.model_name = model
        self.batch_size = batch_size
        self.max_length = max_length
        self._model = None
        self._tokenizer = None

    def _load(self) -> None:
        from transformers import AutoModel, AutoTokenizer

        self._tokenizer = AutoTokenizer.from_pretrained(self.model_name)
        self._model = AutoModel.from_pretrained(self.model_name)
        self._model.eval()

    def __call__(self, texts: list[str]) -> np.ndarray:
        import torch

        if self._model is None:
            self._load()
        order = sorted(range(len(texts)), key=lambda i: len(texts[i]))  # less padding
        chunks = []
        with torch.inference_mode():
            for start in range(0, len(texts), self.batch_size):
                batch = self._tokenizer(  # type: ignore[misc]
                    [texts[i] for i in order[start : start + self.batch_size]],
                    padding=True,
                    truncation=True,
                    max_length=self.max_length,
                    return_tensors="pt",
                )
                hidden = self._model(**batch).last_hidden_state  # type: ignore[misc]
                mask = batch["attention_mask"].unsqueeze(-1).to(hidden.dtype)
                pooled = (hidden * mask).sum(1) / mask.sum(1).clamp(min=1e-9)
                chunks.append(torch.nn.functional.normalize(pooled, dim=-1).numpy())
        if not chunks:
            return np.zeros((0, 0), dtype=np.float32)
        vectors = np.empty((len(texts), chunks[0].shape[1]), dtype=np.float32)
        vectors[order] = np.concatenate(chunks)
        return vectors


@dataclass(frozen=True)
class EncoderChoice:
    """A configured embedding model: its cache ``key`` and whether its vectors are cached."""

    key: str
    encode: Encoder
    cached: bool  # transformer encoders: vectors stored in ``example_embeddings``


def default_cache_dir() -> Path:
    """Where distilled static models live: ``CURATION_CACHE_DIR``, else the user cache."""
    import os

    if os.environ.get("CURATION_CACHE_DIR"):
        return Path(os.environ["CURATION_CACHE_DIR"])
    base = os.environ.get("XDG_CACHE_HOME")
    return (Path(base) if base else Path.home() / ".cache") / "curation_assets"


def encoder_for(setting: str, cache_dir: Path | None = None) -> EncoderChoice | None:
    """The embedding model for ``Settings.suspect_encoder``; None for TF-IDF only.

    ``auto``: static embeddings distilled (once, about a minute, cached under
    ``cache_dir``) from the packaged all-MiniLM-L6-v2, TF-IDF only where that package is
    absent (nothing is downloaded); ``minilm``: the packaged MiniLM itself (about 90 texts
    per CPU-second); ``none``/``tfidf``: TF-IDF only; ``static:PATH``: a model2vec folder;
    anything else: a local path or hub id of a transformers encoder.
    """
    from curation_assets.curation.base_models import DEFAULT_HUB_MODEL, resolve_base_model
    from curation_assets.curation.review import static_embeddings

    value = setting.strip()
    lowered = value.lower()
    if lowered in ("", "none", "tfidf"):
        return None
    if lowered in ("auto", "minilm"):
        path = resolve_base_model("auto")
        if path == DEFAULT_HUB_MODEL:
            return None
        if lowered == "minilm":
            return EncoderChoice("all-MiniLM-L6-v2", SentenceEncoder(path), cached=True)
        folder = static_embeddings.distilled(
            path, cache_dir or default_cache_dir(), name="all-MiniLM-L6-v2"
        )
        return EncoderChoice(folder.name, static_embeddings.StaticEncoder(folder), cached=False)
    if lowered.startswith("static:"):
        folder = Path(value.split(":", 1)[1])
        return EncoderChoice(
            f"static:{folder.name}", static_embeddings.StaticEncoder(folder), cached=False
        )
    return EncoderChoice(value, SentenceEncoder(value), cached=True)


def cached_embeddings(
    con: duckdb.DuckDBPyConnection,
    example_ids: Sequence[str],
    texts: Sequence[str],
    model_key: str,
    encoder: Encoder,
    batch: int = 2048,
) -> tuple[np.ndarray, int]:
    """Embeddings of ``texts`` (rows in input order) and how many were newly computed.

    Looks each ``example_id`` up in ``example_embeddings`` for ``model_key``; embeds the
    missing ones in batches and stores them.
    """
    con.execute(
        f"CREATE TABLE IF NOT EXISTS {EMBEDDINGS_TABLE} (example_id VARCHAR, model VARCHAR, "
        "embedding FLOAT[], PRIMARY KEY (example_id, model))"
    )
    wanted = pa.table({"example_id": pa.array(list(example_ids), pa.string())})
    con.register("_embed_wanted", wanted)
    missing = [
        r[0]
        for r in con.execute(
            f"SELECT w.example_id FROM _embed_wanted w WHERE NOT EXISTS (SELECT 1 FROM "
            f"{EMBEDDINGS_TABLE} e WHERE e.example_id = w.example_id AND e.model = ?)",
            [model_key],
        ).fetchall()
    ]
    text_of = dict(zip(example_ids, texts, strict=True))
    for start in range(0, len(missing), batch):
        ids = missing[start : start + batch]
        vectors = np.asarray(encoder([text_of[i] or "" for i in ids]), dtype=np.float32)
        table = pa.table(
            {
                "example_id": pa.array(ids, pa.string()),
                "embedding": pa.array(list(vectors), pa.list_(pa.float32())),
            }
        )
        con.register("_embed_new", table)
        con.execute(
            f"INSERT OR IGNORE INTO {EMBEDDINGS_TABLE} SELECT example_id, ?, embedding "
            "FROM _embed_new",
            [model_key],
        )
        con.unregister("_embed_new")
    stored = con.execute(
        f"SELECT w.example_id, e.embedding FROM _embed_wanted w JOIN {EMBEDDINGS_TABLE} e "
        "ON e.example_id = w.example_id AND e.model = ?",
        [model_key],
    ).df()
    con.unregister("_embed_wanted")
    if stored.empty:
        return np.zeros((0, 0), dtype=np.float32), len(missing)
    lookup = dict(zip(stored["example_id"], stored["embedding"], strict=True))
    vectors = np.stack([np.asarray(lookup[i], dtype=np.float32) for i in example_ids])
    return vectors, len(missing)


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
    con.execute(
        f"""CREATE TABLE IF NOT EXISTS {MODELS_TABLE} (
            model_id VARCHAR PRIMARY KEY, fitted_at TIMESTAMPTZ, fingerprint VARCHAR,
            labelled BOOLEAN, classes VARCHAR[], sample_rows BIGINT, rows_at_fit BIGINT,
            refit_reason VARCHAR, info JSON, blob BLOB, active BOOLEAN)"""
    )


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
    con.execute(
        f"""CREATE TABLE IF NOT EXISTS {SCORES_TABLE} (
            example_id VARCHAR PRIMARY KEY, score DOUBLE, quality DOUBLE, given VARCHAR,
            suggested VARCHAR, p_given DOUBLE, p_suggested DOUBLE, method VARCHAR,
            reason VARCHAR, flagged BOOLEAN, n_flags INTEGER, quality_tfidf DOUBLE,
            quality_embeddings DOUBLE, model_id VARCHAR, scored_at TIMESTAMPTZ)"""
    )


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
