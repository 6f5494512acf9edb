"""The pair rules, one small named function each, and ``pair_rules`` that lists them."""

from curation_assets.curation.filtering.pair_rules.patterns import (
    _MARKER_NEEDLES,
    _RUN_CHARS,
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
from curation_assets.curation.filtering.rule_engine import Rule
from curation_assets.curation.records import NO_INPUT_MARKERS, NORMALIZE_SQL


def _re(column: str, pattern: str) -> str:
    """``regexp_matches`` with the pattern quoted as a SQL literal."""
    return f"regexp_matches({column}, '{pattern.replace(chr(39), chr(39) * 2)}')"


def _sub(column: str, pattern: str, replacement: str) -> str:
    """``regexp_replace`` of every match, pattern and replacement quoted as SQL literals."""
    pattern = pattern.replace(chr(39), chr(39) * 2)
    return f"regexp_replace({column}, '{pattern}', '{replacement}', 'g')"


def _full(column: str, pattern: str) -> str:
    return f"regexp_full_match({column}, '{pattern.replace(chr(39), chr(39) * 2)}')"


def _when(gate: str, condition: str) -> str:
    """``condition`` evaluated only where the cheap ``gate`` holds (DuckDB's CASE is lazy)."""
    return f"CASE WHEN {gate} THEN {condition} ELSE FALSE END"


def _contains_any(column: str, *needles: str) -> str:
    return "(" + " OR ".join(f"contains({column}, '{n}')" for n in needles) + ")"


def _safe(condition: str) -> str:
    """NULL (a missing field) never fires: ``run_filters`` reads NULL as fired."""
    return f"coalesce({condition}, FALSE)"


def _char_run_re(max_run: int) -> str:
    alternatives = "|".join(
        ("\\" + c if c in r"\^$.|?*+()[]{}" else c) + "{" + str(int(max_run)) + ",}"
        for c in _RUN_CHARS
    )
    return f"(?i)({alternatives})"


def _few_letters(column: str, min_ratio: float) -> str:
    """Letters and digits are under ``min_ratio`` of the characters other than blanks."""
    letters = rf"length(regexp_replace({column}, '[^\pL\pN]+', '', 'g'))"
    non_blank = f"length(replace(replace(replace({column}, ' ', ''), chr(10), ''), chr(9), ''))"
    return f"{letters} < {float(min_ratio)} * {non_blank}"


def _marker_list() -> str:
    return ", ".join("'" + m.replace("'", "''") + "'" for m in NO_INPUT_MARKERS)


def empty_response() -> Rule:
    """The response is empty, only punctuation, or a placeholder such as "N/A"."""
    return Rule(
        "empty_response",
        'response is empty, only punctuation, or a placeholder ("N/A", "none", "no output")',
        f"response IS NULL OR {_full('response', EMPTY_RESPONSE_RE)}",
    )


def missing_input_media() -> Rule:
    """The prompt refers to an image/audio/video/attachment that a text record cannot hold."""
    return Rule(
        "missing_input_media",
        "prompt refers to an attached or shown image, audio, video or file that is not in "
        "the record",
        _safe(
            f"({_re('prompt', PLACEHOLDER_RE)}"
            f" AND (NOT {_re('prompt', MARKUP_RE)} OR NOT {_re('prompt', ANGLE_PLACEHOLDER_RE)}))"
            f" OR ({_re(INSTRUCTION_SQL, MISSING_MEDIA_RE)}"
            f" AND NOT {_re(INSTRUCTION_SQL, MEDIA_COMPOUND_RE)})"
        ),
    )


def missing_input_text() -> Rule:
    """The prompt refers to a given text ("the following paragraph") but none follows."""
    return Rule(
        "missing_input_text",
        'prompt refers to a given text ("the following paragraph", "this sentence") but no '
        "input follows",
        _safe(
            f"{_re(INSTRUCTION_SQL, TEXT_REFERENCE_RE)}"
            f" AND NOT {_re('rtrim(prompt)', INLINE_CONTENT_RE)}"
            # code written for "a given list" needs no list
            f" AND NOT {_re(INSTRUCTION_SQL, CODE_REQUEST_RE)}"
        ),
    )


def missing_input_url() -> Rule:
    """A link stands in for content (an article, a page, a video) that is not in the record.

    Fires when the whole input is a link, or when the prompt asks about a link's content
    (summarise, read, this article...) and gives no other content; never when the task is
    about the link itself (shorten it, parse it, its domain...).
    """
    without_urls = f"rtrim({_sub('prompt', URL_RE, '')})"
    link_only_input = _full(INPUT_SQL, rf"\s*({URL_RE.removeprefix('(?i)')}\s*)+")
    return Rule(
        "missing_input_url",
        "prompt points to content behind a link (an article, a page, a video) that is not in "
        "the record",
        _safe(
            f"CASE WHEN {_re('prompt', URL_RE)} AND NOT {_re(without_urls, URL_TASK_RE)}"
            f" THEN {link_only_input} OR ({_re('prompt', URL_CONTENT_RE)}"
            f" AND NOT {_re(without_urls, INLINE_CONTENT_RE)}) ELSE FALSE END"
        ),
    )


def merged_instructions(*, min_questions: int = 2) -> Rule:
    """Several tasks in one prompt: numbered tasks, a leaked template, or questions + tasks."""
    instruction = INSTRUCTION_SQL
    questions = f"(length({instruction}) - length(replace({instruction}, '?', '')))"
    both = "prompt || chr(10) || response"
    return Rule(
        "merged_instructions",
        "several instructions merged into one prompt (numbered tasks, a leaked "
        f"Instruction:/Output: template, or {min_questions}+ questions plus a separate task)",
        _safe(
            _when(_contains_any(instruction, "1.", "1)"), _re(instruction, NUMBERED_TASKS_RE))
            + " OR "
            + _when(
                _contains_any("prompt", "nstruction", "NSTRUCTION")
                + " OR "
                + _contains_any("response", "nstruction", "NSTRUCTION"),
                f"{_re(both, TEMPLATE_LEAK_RE)} AND {_re(both, TEMPLATE_OUTPUT_RE)}",
            )
            + " OR "
            + _when(f"{questions} >= {int(min_questions)}", _re(instruction, QUESTION_THEN_TASK_RE))
        ),
    )


def code_request_without_code() -> Rule:
    """The instruction asks for a program/function/script/query; the response has no code."""
    unquoted = _sub(INSTRUCTION_SQL, QUOTED_RE, "")
    return Rule(
        "code_request_without_code",
        "instruction asks for code (program, function, script, SQL, regex) but the response "
        "contains nothing code-like",
        _safe(
            _when(
                _re(INSTRUCTION_SQL, CODE_WORD_RE),
                f"{_re(unquoted, CODE_REQUEST_RE)} AND NOT {_re(unquoted, NOT_CODE_RE)}"
                f" AND NOT {_re('response', CODE_LIKE_RE)}",
            )
        ),
    )


def media_generation_request() -> Rule:
    """The instruction asks to draw, paint, film or record something: not a text task."""
    return Rule(
        "media_generation_request",
        "instruction asks for an image, audio or video (draw, paint, generate an image, "
        "create a song or recording), which a text model cannot produce",
        _safe(
            f"({_re(INSTRUCTION_SQL, MEDIA_GENERATION_RE)}"
            f" OR ({_re(INSTRUCTION_SQL, DRAW_RE)} AND NOT {_re(INSTRUCTION_SQL, DRAW_IDIOM_RE)}))"
            f" AND NOT {_re(INSTRUCTION_SQL, MEDIA_AS_TEXT_RE)}"
        ),
    )


def no_input_marker() -> Rule:
    """A "no input" marker was left in the text instead of an empty input."""
    json_input = (
        "coalesce(json_extract_string(original, '$.input'), "
        "json_extract_string(original, '$.context'))"
    )
    return Rule(
        "no_input_marker",
        'a "no input" marker (<noinput>, "No input", "N/A" as the whole input) was left in '
        "the text",
        _safe(
            " OR ".join(
                [
                    _when(_contains_any(col, *_MARKER_NEEDLES), _re(col, MARKER_TOKEN_RE))
                    for col in ("prompt", "response")
                ]
                + [
                    _when(  # an input part short enough to be a marker
                        "contains(prompt, chr(10) || chr(10)) AND length(prompt)"
                        " - strpos(prompt, chr(10) || chr(10)) <= 64",
                        _full(INPUT_SQL, NO_INPUT_PHRASE_RE),
                    ),
                    _when(
                        _contains_any(INSTRUCTION_SQL, "nput", "NPUT", "/", "(", "[", "<", "{"),
                        _re(f"rtrim({INSTRUCTION_SQL})", END_MARKER_RE),
                    ),
                    # the source's own input field, when the original is JSON with a short one
                    _when(
                        _re("original", SHORT_JSON_INPUT_RE) + " AND json_valid(original)",
                        f"{_full(json_input, NO_INPUT_PHRASE_RE)}"
                        f" AND lower(trim({json_input})) NOT IN ({_marker_list()})",
                    ),
                ]
            )
        ),
    )


def truncated_response(*, min_chars: int = 100, min_prose_words: int = 15) -> Rule:
    """A long response that stops mid-sentence: no closing punctuation where prose needs one.

    Not fired when the text itself ends its lines without punctuation (lists written one
    per line, sign-offs) and the last line is short (under ``min_prose_words``), on table
    rows, headings, attributions, code, or a last line that is an enumeration of names
    ("Dune, Emma, Ulysses, ...").
    """
    text = "rtrim(response)"
    last_line = rf"regexp_extract({text}, '[^\n]*$')"
    words = rf"len(regexp_extract_all({last_line}, '\S+'))"
    return Rule(
        "truncated_response",
        f"response of {min_chars}+ characters ends mid-sentence (no closing punctuation)",
        _safe(
            f"CASE WHEN length({text}) >= {int(min_chars)}"
            f" AND {_re(f'right({text}, 1)', OPEN_LAST_CHAR_RE)} AND {_re(text, OPEN_ENDING_RE)}"
            f" THEN NOT ({_re(text, UNPUNCTUATED_LINES_RE)}"
            f" AND ({words} < {int(min_prose_words)} OR {_re(last_line, LIST_ITEM_RE)}))"
            f" AND NOT {_re(last_line, NOT_PROSE_LINE_RE)}"
            f" AND NOT {_re(last_line, ENUMERATION_RE)}"
            f" AND NOT {_re(last_line, CODE_LIKE_RE)}"
            " ELSE FALSE END"
        ),
    )


def low_letter_ratio(*, min_ratio: float = 0.25, min_chars: int = 30) -> Rule:
    """Prompt or response is mostly symbols: letters and digits are a small share."""
    checks = []
    for col in ("prompt", "response"):
        ratio = _few_letters(col, min_ratio)
        if min_ratio <= 0.3 and min_chars >= 30:
            ratio = _when(_re(col, SYMBOL_TRIPLE_RE), ratio)
        checks.append(_when(f"length({col}) >= {int(min_chars)}", ratio))
    return Rule(
        "low_letter_ratio",
        f"prompt or response of {min_chars}+ characters has fewer than {min_ratio:.0%} "
        "letters or digits (symbol noise)",
        _safe(" OR ".join(checks)),
    )


def repeated_characters(*, max_run: int = 20) -> Rule:
    """A character repeated many times in a row ("aaaa...", "!!!!...")."""
    pattern = _char_run_re(max_run)
    return Rule(
        "repeated_characters",
        f"prompt or response repeats one character {max_run}+ times in a row",
        _safe(f"{_re('prompt', pattern)} OR {_re('response', pattern)}"),
    )


def repetitive_text(*, tail_chars: int = 24, min_repeats: int = 4) -> Rule:
    """A degenerate loop: the text's last characters occur again and again in it.

    A generation stuck in a loop repeats its phrase up to the end, so its tail recurs once
    per repetition (whatever the phrase length); normal text does not repeat its ending.
    """
    checks = []
    for col in ("prompt", "response"):
        tail = f"right(rtrim({col}), {int(tail_chars)})"
        occurrences = f"(length({col}) - length(replace({col}, {tail}, ''))) // {int(tail_chars)}"
        checks.append(
            _when(
                f"length({col}) >= {int(tail_chars) * int(min_repeats)}",
                f"{occurrences} >= {int(min_repeats)}",
            )
        )
    return Rule(
        "repetitive_text",
        f"prompt or response repeats its last {tail_chars} characters {min_repeats}+ times "
        "(a repetition loop)",
        _safe(" OR ".join(checks)),
    )


def control_characters() -> Rule:
    """C0/C1 control characters other than tab, newline and carriage return."""
    return Rule(
        "control_characters",
        "prompt or response contains control characters (C0/C1 other than tab and newlines)",
        _safe(f"{_re('prompt', CONTROL_CHARS_RE)} OR {_re('response', CONTROL_CHARS_RE)}"),
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
        _safe(f"min({label}) {window} <> max({label}) {window}"),
        # Evaluated over the flagged rows only, which hold every member of each conflict.
        detail=(
            f"'labels ' || string_agg(DISTINCT '\"' || trim(response) || '\"', ', ' "
            f"ORDER BY '\"' || trim(response) || '\"') {window}"
        ),
        scope="corpus",
    )


def pair_rules(
    *,
    labelled: bool = False,
    annotations_table: str | None = "annotations",
    min_truncated_chars: int = 100,
    min_truncated_prose_words: int = 15,
    min_letter_ratio: float = 0.25,
    min_letter_ratio_chars: int = 30,
    max_char_run: int = 20,
    loop_tail_chars: int = 24,
    min_loop_repeats: int = 4,
    min_merged_questions: int = 2,
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
