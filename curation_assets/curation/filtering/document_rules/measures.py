"""SQL expressions that measure one text column (tokens, words, lines, ratios, repeated
n-grams), and the per-document statistics query of every measure the rules use."""

from collections.abc import Sequence

from curation_assets.curation.warehouse import sql_literal

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

NEWLINE = "chr(10)"
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
    return f"list_filter(string_split({col}, {NEWLINE}), lambda l: regexp_matches(l, '\\S'))"


def paragraphs(col: str) -> str:
    return f"regexp_split_to_array(trim({col}), '\\n\\s*\\n')"


def ratio(numerator: str, denominator: str) -> str:
    return f"(({numerator}) / nullif({denominator}, 0))"


def _occurrences(col: str, needle: str) -> str:
    """How often ``needle`` (no quotes, no newlines) occurs in ``col``."""
    return f"((length({col}) - length(replace({col}, '{needle}', ''))) // {len(needle)})"


def newline_count(col: str) -> str:
    return f"(length({col}) - length(replace({col}, {NEWLINE}, '')))"


def count_where(items: str, predicate: str) -> str:
    return f"len(list_filter({items}, lambda l: {predicate}))"


def n_tokens(col: str) -> str:
    return f"len({tokens(col)})"


def n_words(col: str) -> str:
    return f"len({words(col)})"


def n_lines(col: str) -> str:
    return f"len({lines(col)})"


def mean_word_length(col: str) -> str:
    return ratio(f"length(array_to_string({words(col)}, ''))", n_words(col))


def hash_ratio(col: str) -> str:
    return ratio(_occurrences(col, "#"), n_tokens(col))


def ellipsis_ratio(col: str) -> str:
    return ratio(f"{_occurrences(col, '...')} + {_occurrences(col, '…')}", n_tokens(col))


def bullet_lines_ratio(col: str) -> str:
    starts = "regexp_matches(l, '^\\s*[•‣◦▪●*-]')"
    return ratio(count_where(lines(col), starts), n_lines(col))


def ellipsis_lines_ratio(col: str) -> str:
    ends = "regexp_matches(l, '(?:\\.\\.\\.|…)\\s*$')"
    return ratio(count_where(lines(col), ends), n_lines(col))


def alpha_tokens_ratio(col: str) -> str:
    return ratio(count_where(tokens(col), "regexp_matches(l, '\\pL')"), n_tokens(col))


def stop_word_count(col: str, stop_words: Sequence[str] = GOPHER_STOP_WORDS) -> str:
    listed = ", ".join(sql_literal(w.lower()) for w in stop_words)
    return count_where(words(col), f"lower(l) IN ({listed})")


def duplicate_fraction(items: str) -> str:
    """Share of elements that repeat an earlier element."""
    return ratio(f"len({items}) - len(list_distinct({items}))", f"len({items})")


def duplicate_chars(items: str) -> str:
    """Characters in elements that repeat an earlier element (first occurrences excluded)."""
    return (
        f"(length(array_to_string({items}, '')) "
        f"- length(array_to_string(list_distinct({items}), '')))"
    )


def duplicate_char_fraction(items: str, col: str) -> str:
    """Share of the characters of ``col`` in elements of ``items`` (its lines or paragraphs)
    that repeat an earlier element."""
    return ratio(duplicate_chars(items), f"length({col})")


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


def _gram_hash(k: str) -> str:
    """The hash bits of the sorted n-gram key ``s[k]``."""
    return f"(s[{k}] >> {_POS_BITS})"


def _gram_start(key: str) -> str:
    """The start position (word index) held in an n-gram sort key."""
    return f"({key} & {_POS_MASK})::BIGINT"


def _ngram_char_fraction(col: str, n: int, chars: str) -> str:
    """``chars`` (SQL over ``v`` and the sorted n-gram keys ``s``, see ``_over_words`` and
    ``_sorted_ngrams``) as a share of the length of ``col``; 0 for a text without n-grams."""
    return ratio(f"coalesce({_over_words(col, _sorted_ngrams(n, chars))}, 0)", f"length({col})")


def top_ngram_char_fraction(col: str, n: int) -> str:
    """Characters of the most frequent word n-gram times its count, over the text length.

    As datatrove's GopherRepetitionFilter: n-grams overlap, words are joined by one space.
    Runs of equal hashes in the sorted n-grams are the n-grams; the longest run wins (ties:
    the longer n-gram).
    """
    run_starts = (
        f"list_filter(range(1, len(s) + 1), "
        f"lambda k: k = 1 OR {_gram_hash('k')} <> {_gram_hash('k - 1')})"
    )
    start = _gram_start("s[b[r]]")
    best = (
        f"list_max(list_transform(range(1, len(b) + 1), "
        f"lambda r: {{'count': coalesce(b[r + 1], len(s) + 1) - b[r], "
        f"'chars': {_chars_at(n, start)}}}))"
    )
    covered = f"list_transform([{best}], lambda m: m.count * m.chars)[1]"
    return _ngram_char_fraction(col, n, f"list_transform([{run_starts}], lambda b: {covered})[1]")


def duplicate_ngram_char_fraction(col: str, n: int) -> str:
    """Characters of words covered by a repeated word n-gram (not its first occurrence).

    Gopher's measure, with overlapping n-grams not counted twice: in the n-grams sorted by
    (hash, start), one whose hash equals its predecessor's repeats an earlier n-gram, and
    every word under a repeat counts once (word characters, spaces excluded).
    """
    repeats = (
        f"list_transform(list_filter(range(2, len(s) + 1), "
        f"lambda k: {_gram_hash('k')} = {_gram_hash('k - 1')}), "
        f"lambda k: {_gram_start('s[k]')})"
    )
    covered = f"list_distinct(flatten(list_transform({repeats}, lambda p: range(p, p + {n}))))"
    return _ngram_char_fraction(col, n, f"list_sum(list_transform({covered}, lambda j: v.l[j]))")


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
        "dup_line_char_fraction": duplicate_char_fraction(ls, c),
        "dup_paragraph_char_fraction": duplicate_char_fraction(ps, c),
        **{f"top_{n}gram_char_fraction": top_ngram_char_fraction(c, n) for n in (2, 3, 4)},
        **{f"dup_{n}gram_char_fraction": duplicate_ngram_char_fraction(c, n) for n in range(5, 11)},
    }
    return ",\n".join(f"{sql} AS {name}" for name, sql in measures.items())


__all__ = [
    "C4_POLICY_SUBSTRINGS",
    "DOCUMENT_BATCH_SQL",
    "DOCUMENT_FORMATS",
    "GOPHER_STOP_WORDS",
    "NEWLINE",
    "alpha_tokens_ratio",
    "bullet_lines_ratio",
    "count_where",
    "document_stats_sql",
    "duplicate_char_fraction",
    "duplicate_chars",
    "duplicate_fraction",
    "duplicate_ngram_char_fraction",
    "ellipsis_lines_ratio",
    "ellipsis_ratio",
    "hash_ratio",
    "lines",
    "mean_word_length",
    "n_lines",
    "n_tokens",
    "n_words",
    "newline_count",
    "paragraphs",
    "ratio",
    "stop_word_count",
    "tokens",
    "top_ngram_char_fraction",
    "words",
]
