"""The Gopher, C4 and FineWeb rule families as ``Rule``s, and the per-document statistics."""

from collections.abc import Sequence
from dataclasses import replace

from curation_assets.curation.filtering.document_rules.measures import (
    C4_POLICY_SUBSTRINGS,
    GOPHER_STOP_WORDS,
    NEWLINE,
    alpha_tokens_ratio,
    bullet_lines_ratio,
    count_where,
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
    newline_count,
    paragraphs,
    ratio,
    stop_word_count,
    top_ngram_char_fraction,
)
from curation_assets.curation.filtering.rule_engine import Rule
from curation_assets.curation.warehouse import sql_literal

# --- rule families -------------------------------------------------------------------------


def _fmt(value: float) -> str:
    return f"{value:g}"


def _detail(label: str, measure: str, digits: int = 3) -> str:
    value = f"coalesce(CAST(round({measure}, {digits}) AS VARCHAR), 'n/a')"
    return f"{sql_literal(label + ' ')} || {value}"


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
        Rule(
            "gopher_too_few_words",
            f"fewer than {min_doc_words} words (Gopher)",
            f"{nw} < {int(min_doc_words)}",
            _detail("words:", nw, 0),
        ),
        Rule(
            "gopher_too_many_words",
            f"more than {max_doc_words} words (Gopher)",
            f"{nw} > {int(max_doc_words)}",
            _detail("words:", nw, 0),
        ),
        Rule(
            "gopher_mean_word_length",
            f"mean word length outside {_fmt(min_mean_word_length)}.."
            f"{_fmt(max_mean_word_length)} characters (Gopher)",
            f"NOT ({mwl} BETWEEN {min_mean_word_length} AND {max_mean_word_length})",
            _detail("mean word length:", mwl, 2),
        ),
        Rule(
            "gopher_hash_ratio",
            f"more than {_fmt(max_symbol_word_ratio)} '#' per word (Gopher symbol-to-word ratio)",
            f"{hash_ratio(c)} > {max_symbol_word_ratio}",
            _detail("'#' per word:", hash_ratio(c)),
        ),
        Rule(
            "gopher_ellipsis_ratio",
            f"more than {_fmt(max_symbol_word_ratio)} ellipses per word "
            "(Gopher symbol-to-word ratio)",
            f"{ellipsis_ratio(c)} > {max_symbol_word_ratio}",
            _detail("ellipses per word:", ellipsis_ratio(c)),
        ),
        Rule(
            "gopher_bullet_lines",
            f"more than {_fmt(max_bullet_lines_ratio)} of lines start with a bullet (Gopher)",
            f"{bullet_lines_ratio(c)} > {max_bullet_lines_ratio}",
            _detail("bullet lines:", bullet_lines_ratio(c)),
        ),
        Rule(
            "gopher_ellipsis_lines",
            f"more than {_fmt(max_ellipsis_lines_ratio)} of lines end with an ellipsis (Gopher)",
            f"{ellipsis_lines_ratio(c)} > {max_ellipsis_lines_ratio}",
            _detail("ellipsis lines:", ellipsis_lines_ratio(c)),
        ),
        Rule(
            "gopher_alpha_words",
            f"fewer than {_fmt(min_alpha_words_ratio)} of words contain a letter (Gopher)",
            f"{alpha_tokens_ratio(c)} < {min_alpha_words_ratio}",
            _detail("words with a letter:", alpha_tokens_ratio(c)),
        ),
        Rule(
            "gopher_stop_words",
            f"fewer than {min_stop_words} of the stop words {', '.join(stop_words)} (Gopher)",
            f"{stop_word_count(c, stop_words)} < {int(min_stop_words)}",
            _detail("stop words:", stop_word_count(c, stop_words), 0),
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
    line_chars = ratio(duplicate_chars(ls), f"length({c})")
    para_chars = ratio(duplicate_chars(ps), f"length({c})")
    rules = [
        Rule(
            "gopher_dup_lines",
            f"more than {_fmt(max_dup_line_fraction)} of lines repeat an earlier line (Gopher)",
            f"{duplicate_fraction(ls)} > {max_dup_line_fraction}",
            _detail("repeated lines:", duplicate_fraction(ls)),
        ),
        Rule(
            "gopher_dup_paragraphs",
            f"more than {_fmt(max_dup_paragraph_fraction)} of paragraphs repeat an earlier "
            "paragraph (Gopher)",
            f"{duplicate_fraction(ps)} > {max_dup_paragraph_fraction}",
            _detail("repeated paragraphs:", duplicate_fraction(ps)),
        ),
        Rule(
            "gopher_dup_line_chars",
            f"more than {_fmt(max_dup_line_char_fraction)} of characters in repeated lines "
            "(Gopher)",
            f"{line_chars} > {max_dup_line_char_fraction}",
            _detail("characters in repeated lines:", line_chars),
        ),
        Rule(
            "gopher_dup_paragraph_chars",
            f"more than {_fmt(max_dup_paragraph_char_fraction)} of characters in repeated "
            "paragraphs (Gopher)",
            f"{para_chars} > {max_dup_paragraph_char_fraction}",
            _detail("characters in repeated paragraphs:", para_chars),
        ),
    ]
    for n, limit in max_top_ngram_char_fractions:
        measure = top_ngram_char_fraction(c, n)
        rules.append(
            Rule(
                f"gopher_top_{n}gram",
                f"the most frequent word {n}-gram covers more than {_fmt(limit)} of "
                "characters (Gopher)",
                f"{measure} > {limit}",
                _detail(f"top {n}-gram character share:", measure),
            )
        )
    for n, limit in max_dup_ngram_char_fractions:
        measure = duplicate_ngram_char_fraction(c, n)
        rules.append(
            Rule(
                f"gopher_dup_{n}grams",
                f"repeated word {n}-grams cover more than {_fmt(limit)} of characters (Gopher)",
                f"{measure} > {limit}",
                _detail(f"characters in repeated {n}-grams:", measure),
            )
        )
    return rules


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
        Rule(
            "c4_too_few_sentences",
            f"fewer than {min_sentences} sentences in the lines C4 keeps (lines ending in "
            f"terminal punctuation, at least {min_words_per_line} words, no 'javascript', "
            "no policy text)",
            f"{sentences} < {int(min_sentences)}",
            _detail("sentences kept:", sentences, 0),
        ),
    ]


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
        Rule(
            "fineweb_line_punct",
            f"fewer than {_fmt(min_line_punct_ratio)} of lines end in punctuation (FineWeb)",
            f"{punct} < {min_line_punct_ratio}",
            _detail("lines ending in punctuation:", punct),
        ),
        Rule(
            "fineweb_short_lines",
            f"at least {_fmt(max_short_line_ratio)} of lines are at most {short_line_length} "
            "characters long (FineWeb)",
            f"{short} >= {max_short_line_ratio}",
            _detail("short lines:", short),
        ),
        Rule(
            "fineweb_dup_line_chars",
            f"at least {_fmt(max_dup_line_char_ratio)} of characters in repeated lines (FineWeb)",
            f"{dup_chars} >= {max_dup_line_char_ratio}",
            _detail("characters in repeated lines:", dup_chars),
        ),
        Rule(
            "fineweb_list_like",
            f"more than {_fmt(max_newline_word_ratio)} line breaks per word: a list, not prose "
            "(FineWeb)",
            f"{newlines} > {max_newline_word_ratio}",
            _detail("line breaks per word:", newlines),
        ),
    ]


def document_rules(column: str = "prompt") -> list[Rule]:
    """All document rules with their published thresholds (Gopher, C4, FineWeb)."""
    return [
        *gopher_quality_rules(column=column),
        *gopher_repetition_rules(column=column),
        *c4_rules(column=column),
        *fineweb_rules(column=column),
    ]


def only_where(rules: Sequence[Rule], predicate: str) -> list[Rule]:
    """The same rules, firing only on records where the SQL ``predicate`` holds.

    ``only_where(document_rules(), DOCUMENT_BATCH_SQL)`` restricts them to web documents;
    ``only_where(instruction_rules, f"NOT {DOCUMENT_BATCH_SQL}")`` keeps pair rules off them.
    The predicate goes to ``Rule.where`` (ANDed with one already there): record-scope rules
    are then evaluated in a SELECT over the matching records only, where DuckDB computes
    the measures several rules share (words, lines, n-grams) once per record. Wrapping
    each condition in ``CASE WHEN predicate`` instead made it compute them once per rule.
    """
    return [
        replace(r, where=predicate if r.where is None else f"({r.where}) AND ({predicate})")
        for r in rules
    ]


def document_stats_sql(column: str = "prompt") -> str:
    """A SELECT list of every measure the rules use, for a stats table or a histogram."""
    c = column
    ls, ps = lines(c), paragraphs(c)
    measures = {
        "n_words": n_words(c),
        "n_tokens": n_tokens(c),
        "n_lines": n_lines(c),
        "mean_word_length": mean_word_length(c),
        "hash_ratio": hash_ratio(c),
        "ellipsis_ratio": ellipsis_ratio(c),
        "bullet_lines_ratio": bullet_lines_ratio(c),
        "ellipsis_lines_ratio": ellipsis_lines_ratio(c),
        "alpha_words_ratio": alpha_tokens_ratio(c),
        "stop_words": stop_word_count(c),
        "dup_line_fraction": duplicate_fraction(ls),
        "dup_paragraph_fraction": duplicate_fraction(ps),
        "dup_line_char_fraction": ratio(duplicate_chars(ls), f"length({c})"),
        "dup_paragraph_char_fraction": ratio(duplicate_chars(ps), f"length({c})"),
        **{f"top_{n}gram_char_fraction": top_ngram_char_fraction(c, n) for n in (2, 3, 4)},
        **{f"dup_{n}gram_char_fraction": duplicate_ngram_char_fraction(c, n) for n in range(5, 11)},
    }
    return ",\n".join(f"{sql} AS {name}" for name, sql in measures.items())
