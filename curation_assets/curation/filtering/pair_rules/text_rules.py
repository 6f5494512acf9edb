"""The text hygiene rules (symbol noise, character runs, repetition loops, control
characters, mojibake), which apply to labelled data too, and the label-conflict rule."""

from curation_assets.curation.filtering.pair_rules.patterns import (
    CONTROL_CHARS_RE,
    RUN_CHARS,
    SYMBOL_TRIPLE_RE,
)
from curation_assets.curation.filtering.pair_rules.sql import null_safe, re_match, when
from curation_assets.curation.filtering.rule_engine import Rule
from curation_assets.curation.records import NORMALIZE_SQL

#: Defaults of the thresholds (``pair_rules`` passes its keyword arguments of these names on).
MIN_LETTER_RATIO = 0.25
MIN_LETTER_RATIO_CHARS = 30
MAX_CHAR_RUN = 20
LOOP_TAIL_CHARS = 24
MIN_LOOP_REPEATS = 4


def _char_run_re(max_run: int) -> str:
    alternatives = "|".join(
        ("\\" + c if c in r"\^$.|?*+()[]{}" else c) + "{" + str(int(max_run)) + ",}"
        for c in RUN_CHARS
    )
    return f"(?i)({alternatives})"


def _few_letters(column: str, min_ratio: float) -> str:
    """Letters and digits are under ``min_ratio`` of the characters other than blanks."""
    letters = rf"length(regexp_replace({column}, '[^\pL\pN]+', '', 'g'))"
    non_blank = f"length(replace(replace(replace({column}, ' ', ''), chr(10), ''), chr(9), ''))"
    return f"{letters} < {float(min_ratio)} * {non_blank}"


def low_letter_ratio(
    *, min_ratio: float = MIN_LETTER_RATIO, min_chars: int = MIN_LETTER_RATIO_CHARS
) -> Rule:
    """Prompt or response is mostly symbols: letters and digits are a small share."""
    checks = []
    for col in ("prompt", "response"):
        ratio = _few_letters(col, min_ratio)
        if min_ratio <= 0.3 and min_chars >= 30:
            ratio = when(re_match(col, SYMBOL_TRIPLE_RE), ratio)
        checks.append(when(f"length({col}) >= {int(min_chars)}", ratio))
    return Rule(
        "low_letter_ratio",
        f"prompt or response of {min_chars}+ characters has fewer than {min_ratio:.0%} "
        "letters or digits (symbol noise)",
        null_safe(" OR ".join(checks)),
    )


def repeated_characters(*, max_run: int = MAX_CHAR_RUN) -> Rule:
    """A character repeated many times in a row ("aaaa...", "!!!!...")."""
    pattern = _char_run_re(max_run)
    return Rule(
        "repeated_characters",
        f"prompt or response repeats one character {max_run}+ times in a row",
        null_safe(f"{re_match('prompt', pattern)} OR {re_match('response', pattern)}"),
    )


def repetitive_text(
    *, tail_chars: int = LOOP_TAIL_CHARS, min_repeats: int = MIN_LOOP_REPEATS
) -> Rule:
    """A degenerate loop: the text's last characters occur again and again in it.

    A generation stuck in a loop repeats its phrase up to the end, so its tail recurs once
    per repetition (whatever the phrase length); normal text does not repeat its ending.
    """
    checks = []
    for col in ("prompt", "response"):
        tail = f"right(rtrim({col}), {int(tail_chars)})"
        occurrences = f"(length({col}) - length(replace({col}, {tail}, ''))) // {int(tail_chars)}"
        checks.append(
            when(
                f"length({col}) >= {int(tail_chars) * int(min_repeats)}",
                f"{occurrences} >= {int(min_repeats)}",
            )
        )
    return Rule(
        "repetitive_text",
        f"prompt or response repeats its last {tail_chars} characters {min_repeats}+ times "
        "(a repetition loop)",
        null_safe(" OR ".join(checks)),
    )


def control_characters() -> Rule:
    """C0/C1 control characters other than tab, newline and carriage return."""
    return Rule(
        "control_characters",
        "prompt or response contains control characters (C0/C1 other than tab and newlines)",
        null_safe(
            f"{re_match('prompt', CONTROL_CHARS_RE)} OR {re_match('response', CONTROL_CHARS_RE)}"
        ),
    )


def mojibake(*, annotations_table: str = "annotations") -> Rule:
    """Text decoded with the wrong encoding ("â€™"), flagged in bulk by ``annotators``.

    Needs ``annotations_table`` (record_id, mojibake) to exist when the rules run; records
    missing from it count as clean.
    """
    return Rule(
        "mojibake",
        'text was decoded with the wrong encoding (mojibake such as "â€™" or "Ã©")',
        f"record_id IN (SELECT record_id FROM {annotations_table} WHERE mojibake)",
    )


def conflicting_labels() -> Rule:
    """The same normalized text carries different labels: every member is flagged."""
    text = NORMALIZE_SQL.format(col="prompt")
    label = NORMALIZE_SQL.format(col="response")
    window = f"OVER (PARTITION BY {text})"
    return Rule(
        "conflicting_labels",
        "the same normalized text has different labels",
        null_safe(f"min({label}) {window} <> max({label}) {window}"),
        # Evaluated over the flagged rows only, which hold every member of each conflict.
        detail=(
            f"'labels ' || string_agg(DISTINCT '\"' || trim(response) || '\"', ', ' "
            f"ORDER BY '\"' || trim(response) || '\"') {window}"
        ),
        scope="corpus",
    )


__all__ = [
    "LOOP_TAIL_CHARS",
    "MAX_CHAR_RUN",
    "MIN_LETTER_RATIO",
    "MIN_LETTER_RATIO_CHARS",
    "MIN_LOOP_REPEATS",
    "conflicting_labels",
    "control_characters",
    "low_letter_ratio",
    "mojibake",
    "repeated_characters",
    "repetitive_text",
]
