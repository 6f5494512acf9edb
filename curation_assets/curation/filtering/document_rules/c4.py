"""C4's filters (Raffel et al. 2020, as in datatrove): the lines C4 keeps, and the rules
on them (lorem ipsum, curly brackets, too few sentences)."""

from curation_assets.curation.filtering.document_rules.builders import limit_rule
from curation_assets.curation.filtering.document_rules.measures import (
    C4_POLICY_SUBSTRINGS,
    NEWLINE,
)
from curation_assets.curation.filtering.rule_engine import Rule


def c4_lines(
    col: str, *, min_words_per_line: int = 3, max_word_length: int = 1000, keep: bool = True
) -> str:
    """The lines C4 keeps: stripped, citations removed, ending in . ? ! " ' (not ...), with
    at least ``min_words_per_line`` words and no word longer than ``max_word_length``;
    ``keep=True`` also drops lines mentioning javascript or a policy (C4's line filters)."""
    cleaned = (
        f"list_transform(string_split({col}, {NEWLINE}), lambda l: trim(regexp_replace(l, "
        "'\\[\\d*\\]|\\[edit\\]|\\[citation needed\\]', '', 'g')))"
    )
    words_needed = "\\S+" + "\\s+\\S+" * (int(min_words_per_line) - 1)
    long_word = f"\\S{{{min(int(max_word_length), 1000)}}}" + "\\S" * max(
        1, int(max_word_length) - 999
    )
    candidates = (
        f"list_filter({cleaned}, lambda l: regexp_matches(l, '[.?!\"'']$') "
        f"AND NOT suffix(l, '...') AND regexp_matches(l, '{words_needed}') "
        f"AND NOT regexp_matches(l, '{long_word}'))"
    )
    if not keep:
        return candidates
    dropped = "|".join(["javascript", *C4_POLICY_SUBSTRINGS])
    return f"list_filter({candidates}, lambda l: NOT regexp_matches(lower(l), '{dropped}'))"


def c4_rules(
    *,
    column: str = "prompt",
    min_sentences: int = 5,
    min_words_per_line: int = 3,
    max_word_length: int = 1000,
) -> list[Rule]:
    """C4's filters (Raffel et al. 2020, as in datatrove's C4QualityFilter).

    C4 drops lines (no terminal punctuation, fewer than 3 words, "javascript", policy
    text) and then the whole document when a kept candidate line has "lorem ipsum" or a
    curly brace, or fewer than 5 sentences remain. Rules annotate rather than edit, so the
    line filters show up in ``c4_too_few_sentences``; ``c4_lines`` gives the kept text.
    """
    c = column
    candidates = c4_lines(
        c, min_words_per_line=min_words_per_line, max_word_length=max_word_length, keep=False
    )
    no_js = f"list_filter({candidates}, lambda l: NOT contains(lower(l), 'javascript'))"
    kept = c4_lines(c, min_words_per_line=min_words_per_line, max_word_length=max_word_length)
    sentences = (
        f"coalesce(list_sum(list_transform({kept}, lambda l: greatest(1, "
        "len(regexp_extract_all(l, '[.!?]+[\"'')\\]]*(?:\\s|$)'))))), 0)"
    )
    return [
        Rule(
            "c4_lorem_ipsum",
            'a kept line contains "lorem ipsum" (C4)',
            f"contains(lower(array_to_string({candidates}, {NEWLINE})), 'lorem ipsum')",
        ),
        Rule(
            "c4_curly_bracket",
            "a kept line contains a curly bracket (C4: code or templates)",
            f"contains(array_to_string({no_js}, {NEWLINE}), '{{')",
        ),
        limit_rule(
            "c4_too_few_sentences",
            f"fewer than {min_sentences} sentences in the lines C4 keeps (lines ending in "
            f"terminal punctuation, at least {min_words_per_line} words, no 'javascript', "
            "no policy text)",
            sentences,
            f"< {int(min_sentences)}",
            "sentences kept:",
            0,
        ),
    ]


__all__ = ["c4_lines", "c4_rules"]
