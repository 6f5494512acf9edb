"""Gopher's rule families (Rae et al. 2021, as in datatrove): quality heuristics (word
counts and lengths, symbols, bullet and ellipsis lines, stop words) and repetition
heuristics (repeated lines, paragraphs and word n-grams)."""

from collections.abc import Sequence

from curation_assets.curation.filtering.document_rules.builders import (
    detail_sql,
    fmt,
    limit_rule,
)
from curation_assets.curation.filtering.document_rules.measures import (
    GOPHER_STOP_WORDS,
    alpha_tokens_ratio,
    bullet_lines_ratio,
    duplicate_char_fraction,
    duplicate_fraction,
    duplicate_ngram_char_fraction,
    ellipsis_lines_ratio,
    ellipsis_ratio,
    hash_ratio,
    lines,
    mean_word_length,
    n_words,
    paragraphs,
    stop_word_count,
    top_ngram_char_fraction,
)
from curation_assets.curation.filtering.rule_engine import Rule


def gopher_quality_rules(
    *,
    column: str = "prompt",
    min_doc_words: int = 50,
    max_doc_words: int = 100_000,
    min_mean_word_length: float = 3,
    max_mean_word_length: float = 10,
    max_symbol_word_ratio: float = 0.1,
    max_bullet_lines_ratio: float = 0.9,
    max_ellipsis_lines_ratio: float = 0.3,
    min_alpha_words_ratio: float = 0.8,
    min_stop_words: int = 2,
    stop_words: Sequence[str] = GOPHER_STOP_WORDS,
) -> list[Rule]:
    """Gopher's quality heuristics (Rae et al. 2021, as in datatrove's GopherQualityFilter)."""
    c = column
    nw, mwl = n_words(c), mean_word_length(c)
    return [
        limit_rule(
            "gopher_too_few_words",
            f"fewer than {min_doc_words} words (Gopher)",
            nw,
            f"< {int(min_doc_words)}",
            "words:",
            0,
        ),
        limit_rule(
            "gopher_too_many_words",
            f"more than {max_doc_words} words (Gopher)",
            nw,
            f"> {int(max_doc_words)}",
            "words:",
            0,
        ),
        Rule(
            "gopher_mean_word_length",
            f"mean word length outside {fmt(min_mean_word_length)}.."
            f"{fmt(max_mean_word_length)} characters (Gopher)",
            f"NOT ({mwl} BETWEEN {min_mean_word_length} AND {max_mean_word_length})",
            detail_sql("mean word length:", mwl, 2),
        ),
        limit_rule(
            "gopher_hash_ratio",
            f"more than {fmt(max_symbol_word_ratio)} '#' per word (Gopher symbol-to-word ratio)",
            hash_ratio(c),
            f"> {max_symbol_word_ratio}",
            "'#' per word:",
        ),
        limit_rule(
            "gopher_ellipsis_ratio",
            f"more than {fmt(max_symbol_word_ratio)} ellipses per word "
            "(Gopher symbol-to-word ratio)",
            ellipsis_ratio(c),
            f"> {max_symbol_word_ratio}",
            "ellipses per word:",
        ),
        limit_rule(
            "gopher_bullet_lines",
            f"more than {fmt(max_bullet_lines_ratio)} of lines start with a bullet (Gopher)",
            bullet_lines_ratio(c),
            f"> {max_bullet_lines_ratio}",
            "bullet lines:",
        ),
        limit_rule(
            "gopher_ellipsis_lines",
            f"more than {fmt(max_ellipsis_lines_ratio)} of lines end with an ellipsis (Gopher)",
            ellipsis_lines_ratio(c),
            f"> {max_ellipsis_lines_ratio}",
            "ellipsis lines:",
        ),
        limit_rule(
            "gopher_alpha_words",
            f"fewer than {fmt(min_alpha_words_ratio)} of words contain a letter (Gopher)",
            alpha_tokens_ratio(c),
            f"< {min_alpha_words_ratio}",
            "words with a letter:",
        ),
        limit_rule(
            "gopher_stop_words",
            f"fewer than {min_stop_words} of the stop words {', '.join(stop_words)} (Gopher)",
            stop_word_count(c, stop_words),
            f"< {int(min_stop_words)}",
            "stop words:",
            0,
        ),
    ]


def gopher_repetition_rules(
    *,
    column: str = "prompt",
    max_dup_line_fraction: float = 0.3,
    max_dup_paragraph_fraction: float = 0.3,
    max_dup_line_char_fraction: float = 0.2,
    max_dup_paragraph_char_fraction: float = 0.2,
    max_top_ngram_char_fractions: Sequence[tuple[int, float]] = ((2, 0.2), (3, 0.18), (4, 0.16)),
    max_dup_ngram_char_fractions: Sequence[tuple[int, float]] = (
        (5, 0.15),
        (6, 0.14),
        (7, 0.13),
        (8, 0.12),
        (9, 0.11),
        (10, 0.10),
    ),
) -> list[Rule]:
    """Gopher's repetition heuristics: repeated lines, paragraphs and word n-grams."""
    c = column
    ls, ps = lines(c), paragraphs(c)
    rules = [
        limit_rule(
            "gopher_dup_lines",
            f"more than {fmt(max_dup_line_fraction)} of lines repeat an earlier line (Gopher)",
            duplicate_fraction(ls),
            f"> {max_dup_line_fraction}",
            "repeated lines:",
        ),
        limit_rule(
            "gopher_dup_paragraphs",
            f"more than {fmt(max_dup_paragraph_fraction)} of paragraphs repeat an earlier "
            "paragraph (Gopher)",
            duplicate_fraction(ps),
            f"> {max_dup_paragraph_fraction}",
            "repeated paragraphs:",
        ),
        limit_rule(
            "gopher_dup_line_chars",
            f"more than {fmt(max_dup_line_char_fraction)} of characters in repeated lines (Gopher)",
            duplicate_char_fraction(ls, c),
            f"> {max_dup_line_char_fraction}",
            "characters in repeated lines:",
        ),
        limit_rule(
            "gopher_dup_paragraph_chars",
            f"more than {fmt(max_dup_paragraph_char_fraction)} of characters in repeated "
            "paragraphs (Gopher)",
            duplicate_char_fraction(ps, c),
            f"> {max_dup_paragraph_char_fraction}",
            "characters in repeated paragraphs:",
        ),
    ]
    for n, limit in max_top_ngram_char_fractions:
        rules.append(
            limit_rule(
                f"gopher_top_{n}gram",
                f"the most frequent word {n}-gram covers more than {fmt(limit)} of "
                "characters (Gopher)",
                top_ngram_char_fraction(c, n),
                f"> {limit}",
                f"top {n}-gram character share:",
            )
        )
    for n, limit in max_dup_ngram_char_fractions:
        rules.append(
            limit_rule(
                f"gopher_dup_{n}grams",
                f"repeated word {n}-grams cover more than {fmt(limit)} of characters (Gopher)",
                duplicate_ngram_char_fraction(c, n),
                f"> {limit}",
                f"characters in repeated {n}-grams:",
            )
        )
    return rules


__all__ = ["gopher_quality_rules", "gopher_repetition_rules"]
