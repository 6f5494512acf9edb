"""The whole ``filtered`` stage as one plain function: annotate, deduplicate, filter.

Order of work on a warehouse holding ``raw_scrapes`` and ``ingest_batches``:

1. Per-record annotations that need Python libraries, for new records only: mojibake
   (ftfy; non-document records, the only ones a rule reads it for), language (fastText
   lid.176; web documents by their first ``language_document_chars`` characters).
2. Record-scope rules (lengths, labels, pair rules or document rules, language, mojibake):
   flags and reasons cached per record in ``record_flags`` and ``record_rejections`` (see
   ``rule_engine.update_record_flags``); each rule family is evaluated in its own SELECT over
   its own records.
3. Near-duplicates: the incremental MinHash LSH index (``dedup``) over the first record of
   each example that no record-scope rule rejected, so a rejected record never becomes the
   representative that removes a good one.
4. Decontamination against evaluation texts (user files and the validation split of
   ``verified``), re-run only when those texts change.
5. Corpus-scope rules (exact duplicates, conflicting labels, near duplicates,
   contamination) over ids and flags, and the derived tables ``filter_flags`` (flags, no
   text), ``filtered`` (updated in place: only rows that enter or leave are written) and
   ``rejections`` (cached record-rule reasons plus the corpus rules').
6. PII redaction (``pii``) of the kept records not scanned yet: ``filtered`` holds the
   masked text and ``pii_redactions`` every masked span (kind, place, keyed hash; never the
   value).

Every step costs the size of the new data, except the SQL passes of step 5 over ids, so a
nightly batch does not recompute the past. No Dagster here.
"""

import hashlib
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import duckdb
import pandas as pd

from curation_assets.curation.filtering import (
    annotators,
    decontamination,
    dedup,
    document_rules,
    generic_rules,
    language,
    pair_rules,
    pii,
    rule_engine,
)
from curation_assets.curation.filtering.tables import PII_REDACTIONS
from curation_assets.curation.ingest import intake

PII_TABLE = PII_REDACTIONS.name
PII_SCANNED = "pii_scanned"  # records already scanned for PII (found or not), by content
#: The content (example_id) each mojibake flag of ``annotations`` was computed from.
MOJIBAKE_VERSIONS = "annotations_versions"
CONTAMINATION_TABLE = "contamination"
W = rule_engine.WORKING_TABLE  # the stage writes here; ``filtered`` is published from it
_CONTAMINATION_META = "contamination_meta"
DOCUMENT_SQL = document_rules.DOCUMENT_BATCH_SQL
NON_DOCUMENT_SQL = f"NOT ({DOCUMENT_SQL})"


@dataclass(frozen=True)
class FilterConfig:
    """Every threshold of the stage (``Settings`` fills it; defaults are the published ones)."""

    task_type: str = "classification"  # "classification" or "instruction"
    labels: tuple[str, ...] = ()
    min_prompt_chars: int = 8
    max_prompt_chars: int = 2_000
    min_response_chars: int = 1
    max_response_chars: int = 8_000
    languages: tuple[str, ...] = ("en",)  # empty: no language rule
    min_language_score: float = language.DEFAULT_MIN_SCORE
    language_max_chars: int = language.DEFAULT_MAX_CHARS  # characters read, pairs
    #: characters read from a web document (its start decides; cost is linear in length)
    language_document_chars: int = language.DEFAULT_DOCUMENT_CHARS
    dedup_threshold: float | None = 0.8  # word 5-gram Jaccard; None: no near-dup rule
    decontamination_ngram: int = 8
    pii_kinds: tuple[str, ...] = pii.PII_KINDS  # empty: no redaction
    pii_key: bytes = b""  # keys the hash of each masked value
    eval_files: tuple[Path, ...] = ()
    pair_thresholds: dict = field(default_factory=dict)  # keyword args of pair_rules


@dataclass
class StageReport:
    """What one run did: seconds per step and the new records each step processed."""

    seconds: dict[str, float] = field(default_factory=dict)
    new_records: dict[str, int] = field(default_factory=dict)

    def lap(self, step: str, start: float, records: int | None = None) -> float:
        now = time.perf_counter()
        self.seconds[step] = round(now - start, 3)
        if records is not None:
            self.new_records[step] = int(records)
        return now


def rules(cfg: FilterConfig) -> list[rule_engine.Rule]:
    """The rule set: generic rules, then pair rules (non-document records) or document rules
    (records of HTML/WARC/WET batches), language, near duplicates and contamination."""
    length_rules = generic_rules.rules_for(
        min_prompt_chars=cfg.min_prompt_chars,
        max_prompt_chars=cfg.max_prompt_chars,
        min_response_chars=cfg.min_response_chars,
        max_response_chars=cfg.max_response_chars,
        labels=cfg.labels if cfg.task_type == "classification" else (),
    )
    # web documents have no response and their own length rules (Gopher word counts)
    generic = document_rules.only_where(
        [r for r in length_rules if r.scope == "record"], NON_DOCUMENT_SQL
    )
    corpus_generic = [r for r in length_rules if r.scope == "corpus"]
    pairs = document_rules.only_where(
        pair_rules.pair_rules(labelled=cfg.task_type == "classification", **cfg.pair_thresholds),
        NON_DOCUMENT_SQL,
    )
    documents = document_rules.only_where(document_rules.document_rules(), DOCUMENT_SQL)
    out = [*generic, *corpus_generic, *pairs, *documents]
    if cfg.languages:
        out.append(language.language_rule(allowed=cfg.languages, min_score=cfg.min_language_score))
    if cfg.dedup_threshold is not None:
        out.append(dedup.near_duplicate_rule(threshold=cfg.dedup_threshold))
    out.append(
        rule_engine.Rule(
            "contaminated",
            "shares word n-grams with an evaluation or validation text (would inflate accuracy)",
            f"record_id IN (SELECT record_id FROM {CONTAMINATION_TABLE} WHERE eval_id IS NOT NULL)",
            detail=(
                f"(SELECT 'overlaps ' || eval_id || ' (' || overlap_ngrams || ' n-grams)' "
                f"FROM {CONTAMINATION_TABLE} c WHERE c.record_id = filter_flags.record_id "
                "ORDER BY overlap_ngrams DESC LIMIT 1)"
            ),
            scope="corpus",
        )
    )
    return out


def run_stage(
    con: duckdb.DuckDBPyConnection,
    cfg: FilterConfig,
    evaluation: pd.DataFrame | None = None,
    publish: bool = True,
) -> StageReport:
    """Run the stage on ``con``; ``evaluation`` (eval_id, text) adds evaluation texts to
    those read from ``cfg.eval_files`` and the validation split of ``verified``."""
    report = StageReport()
    t = time.perf_counter()
    rule_set = rules(cfg)
    n = _annotate_mojibake(con)
    t = report.lap("mojibake", t, n)
    if cfg.languages:
        n = _annotate_languages(con, cfg)
        t = report.lap("language", t, n)
    record_rules = [r for r in rule_set if r.scope == "record"]
    n = rule_engine.update_record_flags(con, record_rules)
    t = report.lap("record_rules", t, n)
    if cfg.dedup_threshold is not None:
        result = dedup.sync_records(
            con,
            _dedup_source(record_rules),
            config=dedup.MinHashConfig(threshold=cfg.dedup_threshold),
            atomic=False,  # the caller's transaction (write, audit, publish) covers it
        )
        t = report.lap("near_dedup", t, result.new_records)
    n = _decontaminate(con, cfg, evaluation)
    t = report.lap("decontamination", t, n)
    rule_engine.run_filters(con, rule_set, update_flags=False, publish=False)  # flags are fresh
    t = report.lap("corpus_rules_and_tables", t)
    n = _redact(con, cfg)
    t = report.lap("pii", t, n)
    if publish:  # the filter stage's asset publishes after its audit instead
        rule_engine.publish_filtered(con)
        report.lap("publish", t)
    return report


def _annotate_languages(con: duckdb.DuckDBPyConnection, cfg: FilterConfig) -> int:
    """Language of new records: pairs by their first ``language_max_chars`` characters,
    web documents by their first ``language_document_chars``. Returns the records done."""
    table = language.LANGUAGE_TABLE
    con.execute(f"CREATE TABLE IF NOT EXISTS {table} ({language.ANNOTATIONS_SCHEMA})")
    _drop_stale(con, table)
    missing = (
        f"NOT EXISTS (SELECT 1 FROM {table} a WHERE a.record_id = raw_scrapes.record_id "
        "AND a.example_id IS NOT DISTINCT FROM raw_scrapes.example_id)"
    )
    in_range = rule_engine.batch_range(con, missing)
    n = 0
    for family, max_chars in (
        (NON_DOCUMENT_SQL, cfg.language_max_chars),
        (DOCUMENT_SQL, cfg.language_document_chars),
    ):
        n += language.annotate_languages(
            con,
            source=f"(SELECT * FROM raw_scrapes WHERE {in_range} AND {family})",
            table=table,
            max_chars=max_chars,
        )
    return n


def _annotate_mojibake(con: duckdb.DuckDBPyConnection) -> int:
    """Mojibake flags of new non-document records (only pair rules read them: web
    documents, nearly all with a non-ASCII character, never reach ftfy). Returns the
    number of records annotated."""
    table = annotators.ANNOTATIONS_TABLE
    con.execute(f"CREATE TABLE IF NOT EXISTS {table} ({annotators.ANNOTATIONS_SCHEMA})")
    # the annotations table has no content key: ``MOJIBAKE_VERSIONS`` records the example_id
    # each flag was computed from; a flag without a current version is stale
    con.execute(
        f"CREATE TABLE IF NOT EXISTS {MOJIBAKE_VERSIONS} (record_id VARCHAR, example_id VARCHAR)"
    )
    _drop_stale(con, MOJIBAKE_VERSIONS)
    con.execute(
        f"DELETE FROM {table} WHERE record_id NOT IN (SELECT record_id FROM {MOJIBAKE_VERSIONS})"
    )
    missing = f"{NON_DOCUMENT_SQL} AND record_id NOT IN (SELECT record_id FROM {table})"
    new = f"(SELECT * FROM raw_scrapes WHERE {rule_engine.batch_range(con, missing)} AND {missing})"
    n = int(con.execute(f"SELECT count(*) FROM {new}").fetchall()[0][0])
    if n:
        # versions first (narrow columns), while ``missing`` still selects the new records
        con.execute(
            f"DELETE FROM {MOJIBAKE_VERSIONS} "
            f"WHERE record_id NOT IN (SELECT record_id FROM {table})"
        )
        con.execute(f"INSERT INTO {MOJIBAKE_VERSIONS} SELECT record_id, example_id FROM {new}")
        annotators.store_annotations(con, new, table, replace=False)
    return n


def _drop_stale(con: duckdb.DuckDBPyConnection, table: str) -> None:
    """Delete the rows of a per-record cache (``record_id``, ``example_id``) whose record
    left ``raw_scrapes`` or now has other content (a file dropped again, changed)."""
    con.execute(
        f"""DELETE FROM {table} c WHERE NOT EXISTS (
                SELECT 1 FROM raw_scrapes r
                WHERE r.record_id = c.record_id AND r.example_id = c.example_id)"""
    )


def _dedup_source(record_rules: Sequence[rule_engine.Rule]) -> str:
    """The first record (``rule_engine.FIRST_SEEN_ORDER``) of each example that no
    record-scope rule rejected: a function of the raw content alone."""
    fired = " OR ".join(f"f.rule_{r.name}" for r in record_rules) or "FALSE"
    # the window runs over narrow columns; the texts are joined to the ids it keeps
    return f"""
        SELECT r.record_id, r.example_id, r.prompt, r.response, r.batch, r.line_no
        FROM raw_scrapes r JOIN (
            SELECT r.record_id
            FROM raw_scrapes r
            WHERE r.record_id IN (
                SELECT f.record_id FROM {rule_engine.RECORD_FLAGS} f WHERE NOT ({fired}))
            QUALIFY row_number() OVER (
                PARTITION BY r.example_id ORDER BY {rule_engine.FIRST_SEEN_ORDER}) = 1
        ) e ON e.record_id = r.record_id"""


def _evaluation_texts(
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
        frames.append(_read_eval_file(Path(path)))
    if not frames:
        return pd.DataFrame({"eval_id": pd.Series(dtype=str), "text": pd.Series(dtype=str)})
    return pd.concat(frames, ignore_index=True).astype({"eval_id": str, "text": str})


def _read_eval_file(path: Path) -> pd.DataFrame:
    """Any file the inbox accepts (same readers and column mapping); ids are FILE:LINE."""
    records = intake.read_file(path, {}, max_record_bytes=10_000_000).records
    text = records["prompt"].fillna("") + " " + records["response"].fillna("")
    ids = path.name + ":" + records["line_no"].astype(str)
    return pd.DataFrame({"eval_id": ids.to_numpy(), "text": text.to_numpy()})


def _decontaminate(
    con: duckdb.DuckDBPyConnection, cfg: FilterConfig, extra: pd.DataFrame | None
) -> int:
    """Refresh ``contamination``; only new records unless the evaluation texts changed.
    Returns the number of records checked."""
    evaluation = _evaluation_texts(con, cfg, extra)
    digest = hashlib.sha256(
        pd.util.hash_pandas_object(evaluation, index=False).to_numpy().tobytes()
        + str(cfg.decontamination_ngram).encode()
    ).hexdigest()[:16]
    con.execute(f"CREATE TABLE IF NOT EXISTS {_CONTAMINATION_META} (digest VARCHAR)")
    con.execute(
        f"CREATE TABLE IF NOT EXISTS {CONTAMINATION_TABLE} (record_id VARCHAR, "
        "example_id VARCHAR, eval_id VARCHAR, overlap_ngrams BIGINT, checked BOOLEAN)"
    )
    same = con.execute(f"SELECT digest FROM {_CONTAMINATION_META}").fetchall() == [(digest,)]
    if not same:
        con.execute(f"DELETE FROM {CONTAMINATION_TABLE}")
        con.execute(f"DELETE FROM {_CONTAMINATION_META}")
        con.execute(f"INSERT INTO {_CONTAMINATION_META} VALUES (?)", [digest])
    _drop_stale(con, CONTAMINATION_TABLE)
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


def _redact(con: duckdb.DuckDBPyConnection, cfg: FilterConfig) -> int:
    """Mask PII in ``filtered`` (prompt and response), recording each span. Scans the
    rows not scanned under the current settings (their text in ``filtered`` is still the
    original)."""
    PII_REDACTIONS.create(con)
    con.execute(f"CREATE TABLE IF NOT EXISTS {PII_SCANNED} (record_id VARCHAR, digest VARCHAR)")
    # the content a scan was made of: a record dropped again with new text is scanned again
    # (a scan without it, from before the column existed, counts as stale)
    con.execute(f"ALTER TABLE {PII_SCANNED} ADD COLUMN IF NOT EXISTS example_id VARCHAR")
    setting = hashlib.sha256(repr((cfg.pii_kinds, cfg.pii_key)).encode()).hexdigest()[:16]
    stale = f"""SELECT record_id FROM {PII_SCANNED} s WHERE digest <> ? OR NOT EXISTS (
                    SELECT 1 FROM raw_scrapes r
                    WHERE r.record_id = s.record_id AND r.example_id = s.example_id)"""
    # ``filtered`` keeps its masked rows from run to run: records masked under other
    # settings (or from other content) get their original text back before a new scan
    for column in ("prompt", "response"):
        con.execute(
            f"""UPDATE {W} SET {column} = r.{column} FROM raw_scrapes r
                WHERE {W}.record_id = r.record_id AND {W}.record_id IN ({stale})""",
            [setting],
        )
    con.execute(f"DELETE FROM {PII_SCANNED} WHERE record_id IN ({stale})", [setting])
    con.execute(
        f"""DELETE FROM {PII_TABLE} WHERE record_id NOT IN (SELECT record_id FROM {PII_SCANNED})
            OR record_id NOT IN (SELECT record_id FROM raw_scrapes)"""
    )
    n = 0
    if cfg.pii_kinds:
        unscanned = f"record_id NOT IN (SELECT record_id FROM {PII_SCANNED})"
        in_range = rule_engine.batch_range(con, unscanned, W)
        new = con.sql(
            f"SELECT record_id, example_id, prompt, response FROM {W} "
            f"WHERE {in_range} AND {unscanned}"
        ).df()
        n = len(new)
        candidates = new[
            new["prompt"].str.contains(_PII_HINT, regex=True, na=False)
            | new["response"].str.contains(_PII_HINT, regex=True, na=False)
        ]
        spans = []
        for column in ("prompt", "response"):
            redacted, found = pii.redact_column(
                candidates, column, kinds=cfg.pii_kinds, key=cfg.pii_key
            )
            found = found.merge(
                pd.DataFrame({"record_id": candidates["record_id"], "redacted": redacted}),
                on="record_id",
            )
            spans.append(found)
        rows = pd.concat(spans, ignore_index=True)
        con.register("_spans", rows)
        con.register("_scanned", new[["record_id", "example_id"]])
        try:
            if len(rows):
                con.execute(f"INSERT INTO {PII_TABLE} SELECT * FROM _spans")
            con.execute(
                f"INSERT INTO {PII_SCANNED} (record_id, digest, example_id) "
                "SELECT record_id, ?, example_id FROM _scanned",
                [setting],
            )
        finally:
            con.unregister("_spans")
            con.unregister("_scanned")
    # apply the stored redactions to the rows of ``filtered`` not masked yet (new ones)
    for column in ("prompt", "response"):
        con.execute(
            f"""UPDATE {W} SET {column} = p.redacted
                FROM (SELECT DISTINCT record_id, redacted FROM {PII_TABLE}
                      WHERE "column" = '{column}') p
                WHERE {W}.record_id = p.record_id
                  AND {W}.{column} IS DISTINCT FROM p.redacted"""
        )
    return n


#: Every PII kind needs an "@", a URL marker or a digit: cheap pre-selection of candidates.
_PII_HINT = r"@|://|www\.|\d"


def pii_summary(con: duckdb.DuckDBPyConnection) -> list[dict]:
    """Masked values per kind among kept records."""
    return (
        con.sql(
            f"""SELECT kind, count(*) AS masked, count(DISTINCT record_id) AS records
                FROM {PII_TABLE} WHERE record_id IN (SELECT record_id FROM {W})
                GROUP BY kind ORDER BY masked DESC"""
        )
        .df()
        .to_dict("records")
    )
