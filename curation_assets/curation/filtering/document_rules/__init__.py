"""Quality rules for raw web documents (Gopher, C4, FineWeb) as DuckDB SQL ``Rule``s.

Only for document data: these filters were designed for web pages, and they destroy
instruction data (datatrove's Gopher filter drops 66% of the self-instruct seed tasks).
Each rule reads one text column (``prompt`` by default), fires (rejects) when its
condition is TRUE, carries the published threshold as a keyword default, and reports
the measured value in its ``detail``. Restrict them with ``only_where(rules,
DOCUMENT_BATCH_SQL)`` so they fire on records from web-document files only.

Text is measured with DuckDB string and list functions, not spaCy, so counts differ a
little from datatrove's: a *token* is a run of non-whitespace; a *word* is a token with
its leading and trailing punctuation/symbols stripped (tokens of only punctuation are no
words); a *line* has non-whitespace on it; paragraphs are separated by blank lines.
Character fractions are over ``length(text)``. Each measure binds its lists once per row
(``list_transform([x], lambda v: ...)[1]``): DuckDB re-evaluates an expression captured
inside a lambda for every element, and a shared subexpression of several rules is
computed once per row (common subexpression elimination within one SELECT).

Modules: ``measures`` (the SQL expressions that measure a text: tokens, words, lines,
ratios, repeated n-grams) and ``rules`` (the Gopher, C4 and FineWeb rule families built on
them, and the per-document statistics query). This package exposes their public names.
"""

from curation_assets.curation.filtering.document_rules.measures import (
    C4_POLICY_SUBSTRINGS,
    DOCUMENT_BATCH_SQL,
    DOCUMENT_FORMATS,
    GOPHER_STOP_WORDS,
    alpha_tokens_ratio,
    bullet_lines_ratio,
    duplicate_chars,
    duplicate_fraction,
    duplicate_ngram_char_fraction,
    ellipsis_lines_ratio,
    ellipsis_ratio,
    hash_ratio,
    lines,
    mean_word_length,
    n_lines,
    n_tokens,
    n_words,
    paragraphs,
    stop_word_count,
    tokens,
    top_ngram_char_fraction,
    words,
)
from curation_assets.curation.filtering.document_rules.rules import (
    c4_lines,
    c4_rules,
    document_rules,
    document_stats_sql,
    fineweb_rules,
    gopher_quality_rules,
    gopher_repetition_rules,
    only_where,
)

__all__ = [
    "C4_POLICY_SUBSTRINGS",
    "DOCUMENT_BATCH_SQL",
    "DOCUMENT_FORMATS",
    "GOPHER_STOP_WORDS",
    "alpha_tokens_ratio",
    "bullet_lines_ratio",
    "c4_lines",
    "c4_rules",
    "document_rules",
    "document_stats_sql",
    "duplicate_chars",
    "duplicate_fraction",
    "duplicate_ngram_char_fraction",
    "ellipsis_lines_ratio",
    "ellipsis_ratio",
    "fineweb_rules",
    "gopher_quality_rules",
    "gopher_repetition_rules",
    "hash_ratio",
    "lines",
    "mean_word_length",
    "n_lines",
    "n_tokens",
    "n_words",
    "only_where",
    "paragraphs",
    "stop_word_count",
    "tokens",
    "top_ngram_char_fraction",
    "words",
]
