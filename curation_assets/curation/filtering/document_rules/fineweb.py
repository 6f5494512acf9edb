"""FineWeb's own filters (Penedo et al. 2024, as in datatrove): line punctuation, short
lines, repeated line characters, list-like text."""

from curation_assets.curation.filtering.document_rules.builders import fmt, limit_rule
from curation_assets.curation.filtering.document_rules.measures import (
    NEWLINE,
    count_where,
    duplicate_chars,
    lines,
    n_tokens,
    newline_count,
    ratio,
)
from curation_assets.curation.filtering.rule_engine import Rule


def fineweb_rules(
    *,
    column: str = "prompt",
    min_line_punct_ratio: float = 0.12,
    max_short_line_ratio: float = 0.67,
    short_line_length: int = 30,
    max_dup_line_char_ratio: float = 0.1,
    max_newline_word_ratio: float = 0.3,
) -> list[Rule]:
    """FineWeb's own filters (Penedo et al. 2024, datatrove's FineWebQualityFilter)."""
    c = column
    ls = lines(c)
    ends = "right(l, 1) IN ('.', '!', '?', '\"', '''')"
    punct = ratio(count_where(ls, ends), f"len({ls})")
    short = ratio(count_where(ls, f"length(l) <= {int(short_line_length)}"), f"len({ls})")
    dup_chars = ratio(duplicate_chars(ls), f"length(replace({c}, {NEWLINE}, ''))")
    newlines = ratio(newline_count(c), n_tokens(c))
    return [
        limit_rule(
            "fineweb_line_punct",
            f"fewer than {fmt(min_line_punct_ratio)} of lines end in punctuation (FineWeb)",
            punct,
            f"< {min_line_punct_ratio}",
            "lines ending in punctuation:",
        ),
        limit_rule(
            "fineweb_short_lines",
            f"at least {fmt(max_short_line_ratio)} of lines are at most {short_line_length} "
            "characters long (FineWeb)",
            short,
            f">= {max_short_line_ratio}",
            "short lines:",
        ),
        limit_rule(
            "fineweb_dup_line_chars",
            f"at least {fmt(max_dup_line_char_ratio)} of characters in repeated lines (FineWeb)",
            dup_chars,
            f">= {max_dup_line_char_ratio}",
            "characters in repeated lines:",
        ),
        limit_rule(
            "fineweb_list_like",
            f"more than {fmt(max_newline_word_ratio)} line breaks per word: a list, not prose "
            "(FineWeb)",
            newlines,
            f"> {max_newline_word_ratio}",
            "line breaks per word:",
        ),
    ]


__all__ = ["fineweb_rules"]
