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
"""

from collections.abc import Sequence
from dataclasses import replace

from curation_assets.curation.filtering.rule_engine import Rule

#: Gopher's stop words (Rae et al. 2021): a real English text has at least two of them.
GOPHER_STOP_WORDS = ("the", "be", "to", "of", "and", "that", "have", "with")
#: Lines C4 removes when they contain one of these (lower case).
C4_POLICY_SUBSTRINGS = (
    "terms of use",
    "privacy policy",
    "cookie policy",
    "uses cookies",
    "use of cookies",
    "use cookies",
)
#: Records whose batch came from an HTML/WARC/WET file (``ingest_batches.file_format``).
DOCUMENT_FORMATS = ("html", "warc", "wet")
DOCUMENT_BATCH_SQL = (
    "batch IN (SELECT batch FROM ingest_batches WHERE file_format IN ("
    + ", ".join(f"'{f}'" for f in DOCUMENT_FORMATS)
    + "))"
)

_NL = "chr(10)"
#: Whitespace other than the space, mapped to spaces before splitting into tokens.
_WS_CHARS = (10, 9, 13, 11, 12, 160, 8239, 12288)
_PUNCT_EDGES = "'^[\\pP\\pS]+|[\\pP\\pS]+$'"


# --- measures: SQL expressions over one text column ------------------------------------


def tokens(col: str) -> str:
    """Runs of non-whitespace (split on spaces after mapping other whitespace to spaces)."""
    ws = " || ".join(f"chr({c})" for c in _WS_CHARS)
    return (
        f"list_filter(string_split(translate({col}, {ws}, '{' ' * len(_WS_CHARS)}'), ' '), "
        "lambda w: w <> '')"
    )


def words(col: str) -> str:
    """Tokens with leading/trailing punctuation and symbols stripped, empty ones dropped."""
    return (
        f"list_filter(list_transform({tokens(col)}, lambda w: regexp_replace(w, "
        f"{_PUNCT_EDGES}, '', 'g')), lambda w: w <> '')"
    )


def lines(col: str) -> str:
    """Lines with non-whitespace on them, as written (not stripped)."""
    return f"list_filter(string_split({col}, {_NL}), lambda l: regexp_matches(l, '\\S'))"


def paragraphs(col: str) -> str:
    return f"regexp_split_to_array(trim({col}), '\\n\\s*\\n')"


def _ratio(numerator: str, denominator: str) -> str:
    return f"(({numerator}) / nullif({denominator}, 0))"


def _occurrences(col: str, needle: str) -> str:
    """How often ``needle`` (no quotes, no newlines) occurs in ``col``."""
    return f"((length({col}) - length(replace({col}, '{needle}', ''))) // {len(needle)})"


def _newlines(col: str) -> str:
    return f"(length({col}) - length(replace({col}, {_NL}, '')))"


def _count_where(items: str, predicate: str) -> str:
    return f"len(list_filter({items}, lambda l: {predicate}))"


def n_tokens(col: str) -> str:
    return f"len({tokens(col)})"


def n_words(col: str) -> str:
    return f"len({words(col)})"


def n_lines(col: str) -> str:
    return f"len({lines(col)})"


def mean_word_length(col: str) -> str:
    return _ratio(f"length(array_to_string({words(col)}, ''))", n_words(col))


def hash_ratio(col: str) -> str:
    return _ratio(_occurrences(col, "#"), n_tokens(col))


def ellipsis_ratio(col: str) -> str:
    return _ratio(f"{_occurrences(col, '...')} + {_occurrences(col, '…')}", n_tokens(col))


def bullet_lines_ratio(col: str) -> str:
    starts = "regexp_matches(l, '^\\s*[•‣◦▪●*-]')"
    return _ratio(_count_where(lines(col), starts), n_lines(col))


def ellipsis_lines_ratio(col: str) -> str:
    ends = "regexp_matches(l, '(?:\\.\\.\\.|…)\\s*$')"
    return _ratio(_count_where(lines(col), ends), n_lines(col))


def alpha_tokens_ratio(col: str) -> str:
    return _ratio(_count_where(tokens(col), "regexp_matches(l, '\\pL')"), n_tokens(col))


def stop_word_count(col: str, stop_words: Sequence[str] = GOPHER_STOP_WORDS) -> str:
    listed = ", ".join("'" + w.lower().replace("'", "''") + "'" for w in stop_words)
    return _count_where(words(col), f"lower(l) IN ({listed})")


def duplicate_fraction(items: str) -> str:
    """Share of elements that repeat an earlier element."""
    return _ratio(f"len({items}) - len(list_distinct({items}))", f"len({items})")


def duplicate_chars(items: str) -> str:
    """Characters in elements that repeat an earlier element (first occurrences excluded)."""
    return (
        f"(length(array_to_string({items}, '')) "
        f"- length(array_to_string(list_distinct({items}), '')))"
    )


#: Bits of a sort key that hold the n-gram's start position (documents up to 2**20 words).
_POS_BITS = 20
_POS_MASK = (1 << _POS_BITS) - 1


def _over_words(col: str, body: str) -> str:
    """``body`` evaluated once per row with ``v.h`` = the hashes of the words of ``col`` and
    ``v.l`` = their lengths, and ``s`` = the word n-grams sorted by (hash, start)."""
    w = words(col)
    bound = (
        f"{{'h': list_transform({w}, lambda w: hash(w)), "
        f"'l': list_transform({w}, lambda w: length(w))}}"
    )
    return f"list_transform([{bound}], lambda v: {body})[1]"


def _sorted_ngrams(n: int, body: str) -> str:
    """``body`` with ``s`` bound to the sorted keys (hash bits | start) of the word n-grams."""
    gram = "hash(" + ", ".join(f"v.h[i + {k}]" if k else "v.h[i]" for k in range(n)) + ")"
    keys = (
        f"list_transform(range(1, len(v.h) - {n - 2}), "
        f"lambda i: (({gram} >> {_POS_BITS}) << {_POS_BITS}) | i::UBIGINT)"
    )
    return f"list_transform([list_sort({keys})], lambda s: {body})[1]"


def _chars_at(n: int, start: str) -> str:
    return " + ".join(f"v.l[{start} + {k}]" if k else f"v.l[{start}]" for k in range(n)) + (
        f" + {n - 1}" if n > 1 else ""
    )


def top_ngram_char_fraction(col: str, n: int) -> str:
    """Characters of the most frequent word n-gram times its count, over the text length.

    As datatrove's GopherRepetitionFilter: n-grams overlap, words are joined by one space.
    Runs of equal hashes in the sorted n-grams are the n-grams; the longest run wins (ties:
    the longer n-gram).
    """
    run_starts = (
        f"list_filter(range(1, len(s) + 1), "
        f"lambda k: k = 1 OR (s[k] >> {_POS_BITS}) <> (s[k - 1] >> {_POS_BITS}))"
    )
    start = f"(s[b[r]] & {_POS_MASK})::BIGINT"
    best = (
        f"list_max(list_transform(range(1, len(b) + 1), "
        f"lambda r: {{'count': coalesce(b[r + 1], len(s) + 1) - b[r], "
        f"'chars': {_chars_at(n, start)}}}))"
    )
    covered = f"list_transform([{best}], lambda m: m.count * m.chars)[1]"
    body = f"list_transform([{run_starts}], lambda b: {covered})[1]"
    top = _over_words(col, _sorted_ngrams(n, body))
    return _ratio(f"coalesce({top}, 0)", f"length({col})")


def duplicate_ngram_char_fraction(col: str, n: int) -> str:
    """Characters of words covered by a repeated word n-gram (not its first occurrence).

    Gopher's measure, with overlapping n-grams not counted twice: in the n-grams sorted by
    (hash, start), one whose hash equals its predecessor's repeats an earlier n-gram, and
    every word under a repeat counts once (word characters, spaces excluded).
    """
    repeats = (
        f"list_transform(list_filter(range(2, len(s) + 1), "
        f"lambda k: (s[k] >> {_POS_BITS}) = (s[k - 1] >> {_POS_BITS})), "
        f"lambda k: (s[k] & {_POS_MASK})::BIGINT)"
    )
    covered = f"list_distinct(flatten(list_transform({repeats}, lambda p: range(p, p + {n}))))"
    chars = f"list_sum(list_transform({covered}, lambda j: v.l[j]))"
    total = _over_words(col, _sorted_ngrams(n, chars))
    return _ratio(f"coalesce({total}, 0)", f"length({col})")


# --- rule families -------------------------------------------------------------------------


def _fmt(value: float) -> str:
    return f"{value:g}"


def _detail(label: str, measure: str, digits: int = 3) -> str:
    label = label.replace("'", "''")
    return f"'{label} ' || coalesce(CAST(round({measure}, {digits}) AS VARCHAR), 'n/a')"


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
    line_chars = _ratio(duplicate_chars(ls), f"length({c})")
    para_chars = _ratio(duplicate_chars(ps), f"length({c})")
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
        f"list_transform(string_split({col}, {_NL}), lambda l: trim(regexp_replace(l, "
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
            f"contains(lower(array_to_string({candidates}, {_NL})), 'lorem ipsum')",
        ),
        Rule(
            "c4_curly_bracket",
            "a kept line contains a curly bracket (C4: code or templates)",
            f"contains(array_to_string({no_js}, {_NL}), '{{')",
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
    punct = _ratio(_count_where(ls, ends), f"len({ls})")
    short = _ratio(_count_where(ls, f"length(l) <= {int(short_line_length)}"), f"len({ls})")
    dup_chars = _ratio(duplicate_chars(ls), f"length(replace({c}, {_NL}, ''))")
    newlines = _ratio(_newlines(c), n_tokens(c))
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
        "dup_line_char_fraction": _ratio(duplicate_chars(ls), f"length({c})"),
        "dup_paragraph_char_fraction": _ratio(duplicate_chars(ps), f"length({c})"),
        **{f"top_{n}gram_char_fraction": top_ngram_char_fraction(c, n) for n in (2, 3, 4)},
        **{f"dup_{n}gram_char_fraction": duplicate_ngram_char_fraction(c, n) for n in range(5, 11)},
    }
    return ",\n".join(f"{sql} AS {name}" for name, sql in measures.items())
