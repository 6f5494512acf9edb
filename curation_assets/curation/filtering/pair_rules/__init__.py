"""Rules for instruction/response pairs and labelled data, as pure DuckDB SQL.

Web-text quality filters destroy instruction data (see the project notes), so these rules
target the problems found by hand in Alpaca (AlpacaDataCleaned): answers to inputs that
were never given, several instructions merged into one, empty or "N/A" responses, code
requests answered without code, image/audio generation requests, leftover no-input
markers, nonsense or truncated text, stray control characters and mojibake. For labelled
data: the same text carrying different labels.

Each rule is a :class:`~curation_assets.curation.filtering.rule_engine.Rule` whose
``condition`` reads the columns of ``raw_scrapes`` (``prompt``, ``response``, ``original``,
``record_id``), so the whole set runs in the one DuckDB pass of
:func:`rule_engine.run_filters`. Every condition is
NULL-safe (``run_filters`` treats NULL as "fired"). Thresholds are keyword arguments named
after what they measure.

Instruction data reaches ``raw_scrapes`` as ``instruction + "\\n\\n" + input`` (see
``records.to_canonical``), so the instruction is the prompt up to its first blank line and
the input is the rest.

Integration (the ``filtered`` stage), on the one connection it already opens::

    rule_set = generic_rules.rules_for(...) + pair_rules.pair_rules(
        labelled=settings.task_type == "classification"
    )
    annotators.store_annotations(con)  # rebuilds table ``annotations`` from raw_scrapes
    rule_engine.run_filters(con, rule_set)

The ``mojibake`` rule reads ``annotations`` through a semi-join on ``record_id``, so
``run_filters`` needs no change (a LEFT JOIN of ``annotations`` there works as well);
records missing from the table count as clean, so refresh it before every run. The
``conflicting_labels`` reason lists the labels with a window over the rows it flagged,
which is how ``run_filters`` builds ``rejections`` (one query per rule over its flagged
rows).

Modules: ``patterns`` (the regular expressions and SQL fragments the rules share, each
with what it matches), ``rules`` (one function per rule: name, reason, condition, and
``pair_rules`` that lists them). This package exposes their public names.
"""

from curation_assets.curation.filtering.pair_rules.patterns import (
    ANGLE_PLACEHOLDER_RE,
    CODE_LIKE_RE,
    CODE_REQUEST_RE,
    CODE_WORD_RE,
    CONTROL_CHARS_RE,
    DRAW_IDIOM_RE,
    DRAW_RE,
    EMPTY_RESPONSE_RE,
    END_MARKER_RE,
    ENUMERATION_RE,
    INLINE_CONTENT_RE,
    INPUT_SQL,
    INSTRUCTION_SQL,
    LIST_ITEM_RE,
    MARKER_TOKEN_RE,
    MARKUP_RE,
    MEDIA_AS_TEXT_RE,
    MEDIA_COMPOUND_RE,
    MEDIA_GENERATION_RE,
    MISSING_MEDIA_RE,
    NO_INPUT_PHRASE_RE,
    NOT_CODE_RE,
    NOT_PROSE_LINE_RE,
    NUMBERED_TASKS_RE,
    OPEN_ENDING_RE,
    OPEN_LAST_CHAR_RE,
    PLACEHOLDER_RE,
    QUESTION_THEN_TASK_RE,
    QUOTED_RE,
    SHORT_JSON_INPUT_RE,
    SYMBOL_TRIPLE_RE,
    TEMPLATE_LEAK_RE,
    TEMPLATE_OUTPUT_RE,
    TEXT_REFERENCE_RE,
    UNPUNCTUATED_LINES_RE,
    URL_CONTENT_RE,
    URL_RE,
    URL_TASK_RE,
)
from curation_assets.curation.filtering.pair_rules.rules import (
    code_request_without_code,
    conflicting_labels,
    control_characters,
    empty_response,
    low_letter_ratio,
    media_generation_request,
    merged_instructions,
    missing_input_media,
    missing_input_text,
    missing_input_url,
    mojibake,
    no_input_marker,
    pair_rules,
    repeated_characters,
    repetitive_text,
    truncated_response,
)

__all__ = [
    "ANGLE_PLACEHOLDER_RE",
    "CODE_LIKE_RE",
    "CODE_REQUEST_RE",
    "CODE_WORD_RE",
    "CONTROL_CHARS_RE",
    "DRAW_IDIOM_RE",
    "DRAW_RE",
    "EMPTY_RESPONSE_RE",
    "END_MARKER_RE",
    "ENUMERATION_RE",
    "INLINE_CONTENT_RE",
    "INPUT_SQL",
    "INSTRUCTION_SQL",
    "LIST_ITEM_RE",
    "MARKER_TOKEN_RE",
    "MARKUP_RE",
    "MEDIA_AS_TEXT_RE",
    "MEDIA_COMPOUND_RE",
    "MEDIA_GENERATION_RE",
    "MISSING_MEDIA_RE",
    "NOT_CODE_RE",
    "NOT_PROSE_LINE_RE",
    "NO_INPUT_PHRASE_RE",
    "NUMBERED_TASKS_RE",
    "OPEN_ENDING_RE",
    "OPEN_LAST_CHAR_RE",
    "PLACEHOLDER_RE",
    "QUESTION_THEN_TASK_RE",
    "QUOTED_RE",
    "SHORT_JSON_INPUT_RE",
    "SYMBOL_TRIPLE_RE",
    "TEMPLATE_LEAK_RE",
    "TEMPLATE_OUTPUT_RE",
    "TEXT_REFERENCE_RE",
    "UNPUNCTUATED_LINES_RE",
    "URL_CONTENT_RE",
    "URL_RE",
    "URL_TASK_RE",
    "code_request_without_code",
    "conflicting_labels",
    "control_characters",
    "empty_response",
    "low_letter_ratio",
    "media_generation_request",
    "merged_instructions",
    "missing_input_media",
    "missing_input_text",
    "missing_input_url",
    "mojibake",
    "no_input_marker",
    "pair_rules",
    "repeated_characters",
    "repetitive_text",
    "truncated_response",
]
