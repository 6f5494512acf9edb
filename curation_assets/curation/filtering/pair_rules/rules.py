"""``pair_rules``: the rule set for instruction/response pairs or labelled data, with each
threshold a keyword argument (defaults: those of the rules themselves)."""

from curation_assets.curation.filtering.pair_rules.instruction_rules import (
    MIN_MERGED_QUESTIONS,
    MIN_TRUNCATED_CHARS,
    MIN_TRUNCATED_PROSE_WORDS,
    code_request_without_code,
    empty_response,
    media_generation_request,
    merged_instructions,
    missing_input_media,
    missing_input_text,
    missing_input_url,
    no_input_marker,
    truncated_response,
)
from curation_assets.curation.filtering.pair_rules.text_rules import (
    LOOP_TAIL_CHARS,
    MAX_CHAR_RUN,
    MIN_LETTER_RATIO,
    MIN_LETTER_RATIO_CHARS,
    MIN_LOOP_REPEATS,
    conflicting_labels,
    control_characters,
    low_letter_ratio,
    mojibake,
    repeated_characters,
    repetitive_text,
)
from curation_assets.curation.filtering.rule_engine import Rule


def pair_rules(
    *,
    labelled: bool = False,
    annotations_table: str | None = "annotations",
    min_truncated_chars: int = MIN_TRUNCATED_CHARS,
    min_truncated_prose_words: int = MIN_TRUNCATED_PROSE_WORDS,
    min_letter_ratio: float = MIN_LETTER_RATIO,
    min_letter_ratio_chars: int = MIN_LETTER_RATIO_CHARS,
    max_char_run: int = MAX_CHAR_RUN,
    loop_tail_chars: int = LOOP_TAIL_CHARS,
    min_loop_repeats: int = MIN_LOOP_REPEATS,
    min_merged_questions: int = MIN_MERGED_QUESTIONS,
) -> list[Rule]:
    """The pair rules: instruction/response rules, or for ``labelled`` data the text rules.

    ``annotations_table`` names the table from ``annotators.store_annotations`` that the
    mojibake rule reads; ``None`` leaves that rule out.
    """
    text_rules = [
        control_characters(),
        low_letter_ratio(min_ratio=min_letter_ratio, min_chars=min_letter_ratio_chars),
        repeated_characters(max_run=max_char_run),
        repetitive_text(tail_chars=loop_tail_chars, min_repeats=min_loop_repeats),
    ]
    if annotations_table:
        text_rules.append(mojibake(annotations_table=annotations_table))
    if labelled:
        # Labels are short codes: only the text hygiene rules and label conflicts apply.
        return [*text_rules, conflicting_labels()]
    return [
        empty_response(),
        missing_input_media(),
        missing_input_text(),
        missing_input_url(),
        merged_instructions(min_questions=min_merged_questions),
        code_request_without_code(),
        media_generation_request(),
        no_input_marker(),
        truncated_response(
            min_chars=min_truncated_chars, min_prose_words=min_truncated_prose_words
        ),
        *text_rules,
    ]


__all__ = ["pair_rules"]
