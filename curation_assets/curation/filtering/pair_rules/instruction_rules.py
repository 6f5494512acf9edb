"""The instruction/response rules: inputs referred to but missing, merged instructions,
requests a text model cannot answer, leftover no-input markers, empty or truncated
responses."""

from curation_assets.curation.filtering.pair_rules.patterns import (
    ANGLE_PLACEHOLDER_RE,
    CODE_LIKE_RE,
    CODE_REQUEST_RE,
    CODE_WORD_RE,
    DRAW_IDIOM_RE,
    DRAW_RE,
    EMPTY_RESPONSE_RE,
    END_MARKER_RE,
    ENUMERATION_RE,
    INLINE_CONTENT_RE,
    INPUT_SQL,
    INSTRUCTION_SQL,
    LIST_ITEM_RE,
    MARKER_NEEDLES,
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
    TEMPLATE_LEAK_RE,
    TEMPLATE_OUTPUT_RE,
    TEXT_REFERENCE_RE,
    UNPUNCTUATED_LINES_RE,
    URL_CONTENT_RE,
    URL_RE,
    URL_TASK_RE,
)
from curation_assets.curation.filtering.pair_rules.sql import (
    contains_any,
    null_safe,
    re_full,
    re_match,
    re_replace,
    when,
)
from curation_assets.curation.filtering.rule_engine import Rule
from curation_assets.curation.records import NO_INPUT_MARKERS

#: Defaults of the thresholds (``pair_rules`` passes its keyword arguments of these names on).
MIN_MERGED_QUESTIONS = 2
MIN_TRUNCATED_CHARS = 100
MIN_TRUNCATED_PROSE_WORDS = 15


def _marker_list() -> str:
    return ", ".join("'" + m.replace("'", "''") + "'" for m in NO_INPUT_MARKERS)


def empty_response() -> Rule:
    """The response is empty, only punctuation, or a placeholder such as "N/A"."""
    return Rule(
        "empty_response",
        'response is empty, only punctuation, or a placeholder ("N/A", "none", "no output")',
        f"response IS NULL OR {re_full('response', EMPTY_RESPONSE_RE)}",
    )


def missing_input_media() -> Rule:
    """The prompt refers to an image/audio/video/attachment that a text record cannot hold."""
    return Rule(
        "missing_input_media",
        "prompt refers to an attached or shown image, audio, video or file that is not in "
        "the record",
        null_safe(
            f"({re_match('prompt', PLACEHOLDER_RE)}"
            f" AND (NOT {re_match('prompt', MARKUP_RE)}"
            f" OR NOT {re_match('prompt', ANGLE_PLACEHOLDER_RE)}))"
            f" OR ({re_match(INSTRUCTION_SQL, MISSING_MEDIA_RE)}"
            f" AND NOT {re_match(INSTRUCTION_SQL, MEDIA_COMPOUND_RE)})"
        ),
    )


def missing_input_text() -> Rule:
    """The prompt refers to a given text ("the following paragraph") but none follows."""
    return Rule(
        "missing_input_text",
        'prompt refers to a given text ("the following paragraph", "this sentence") but no '
        "input follows",
        null_safe(
            f"{re_match(INSTRUCTION_SQL, TEXT_REFERENCE_RE)}"
            f" AND NOT {re_match('rtrim(prompt)', INLINE_CONTENT_RE)}"
            # code written for "a given list" needs no list
            f" AND NOT {re_match(INSTRUCTION_SQL, CODE_REQUEST_RE)}"
        ),
    )


def missing_input_url() -> Rule:
    """A link stands in for content (an article, a page, a video) that is not in the record.

    Fires when the whole input is a link, or when the prompt asks about a link's content
    (summarise, read, this article...) and gives no other content; never when the task is
    about the link itself (shorten it, parse it, its domain...).
    """
    without_urls = f"rtrim({re_replace('prompt', URL_RE, '')})"
    link_only_input = re_full(INPUT_SQL, rf"\s*({URL_RE.removeprefix('(?i)')}\s*)+")
    return Rule(
        "missing_input_url",
        "prompt points to content behind a link (an article, a page, a video) that is not in "
        "the record",
        null_safe(
            f"CASE WHEN {re_match('prompt', URL_RE)} AND NOT {re_match(without_urls, URL_TASK_RE)}"
            f" THEN {link_only_input} OR ({re_match('prompt', URL_CONTENT_RE)}"
            f" AND NOT {re_match(without_urls, INLINE_CONTENT_RE)}) ELSE FALSE END"
        ),
    )


def merged_instructions(*, min_questions: int = MIN_MERGED_QUESTIONS) -> Rule:
    """Several tasks in one prompt: numbered tasks, a leaked template, or questions + tasks."""
    instruction = INSTRUCTION_SQL
    questions = f"(length({instruction}) - length(replace({instruction}, '?', '')))"
    both = "prompt || chr(10) || response"
    return Rule(
        "merged_instructions",
        "several instructions merged into one prompt (numbered tasks, a leaked "
        f"Instruction:/Output: template, or {min_questions}+ questions plus a separate task)",
        null_safe(
            when(contains_any(instruction, "1.", "1)"), re_match(instruction, NUMBERED_TASKS_RE))
            + " OR "
            + when(
                contains_any("prompt", "nstruction", "NSTRUCTION")
                + " OR "
                + contains_any("response", "nstruction", "NSTRUCTION"),
                f"{re_match(both, TEMPLATE_LEAK_RE)} AND {re_match(both, TEMPLATE_OUTPUT_RE)}",
            )
            + " OR "
            + when(
                f"{questions} >= {int(min_questions)}", re_match(instruction, QUESTION_THEN_TASK_RE)
            )
        ),
    )


def code_request_without_code() -> Rule:
    """The instruction asks for a program/function/script/query; the response has no code."""
    unquoted = re_replace(INSTRUCTION_SQL, QUOTED_RE, "")
    return Rule(
        "code_request_without_code",
        "instruction asks for code (program, function, script, SQL, regex) but the response "
        "contains nothing code-like",
        null_safe(
            when(
                re_match(INSTRUCTION_SQL, CODE_WORD_RE),
                f"{re_match(unquoted, CODE_REQUEST_RE)} AND NOT {re_match(unquoted, NOT_CODE_RE)}"
                f" AND NOT {re_match('response', CODE_LIKE_RE)}",
            )
        ),
    )


def media_generation_request() -> Rule:
    """The instruction asks to draw, paint, film or record something: not a text task."""
    return Rule(
        "media_generation_request",
        "instruction asks for an image, audio or video (draw, paint, generate an image, "
        "create a song or recording), which a text model cannot produce",
        null_safe(
            f"({re_match(INSTRUCTION_SQL, MEDIA_GENERATION_RE)}"
            f" OR ({re_match(INSTRUCTION_SQL, DRAW_RE)}"
            f" AND NOT {re_match(INSTRUCTION_SQL, DRAW_IDIOM_RE)}))"
            f" AND NOT {re_match(INSTRUCTION_SQL, MEDIA_AS_TEXT_RE)}"
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
        null_safe(
            " OR ".join(
                [
                    when(contains_any(col, *MARKER_NEEDLES), re_match(col, MARKER_TOKEN_RE))
                    for col in ("prompt", "response")
                ]
                + [
                    when(  # an input part short enough to be a marker
                        "contains(prompt, chr(10) || chr(10)) AND length(prompt)"
                        " - strpos(prompt, chr(10) || chr(10)) <= 64",
                        re_full(INPUT_SQL, NO_INPUT_PHRASE_RE),
                    ),
                    when(
                        contains_any(INSTRUCTION_SQL, "nput", "NPUT", "/", "(", "[", "<", "{"),
                        re_match(f"rtrim({INSTRUCTION_SQL})", END_MARKER_RE),
                    ),
                    # the source's own input field, when the original is JSON with a short one
                    when(
                        re_match("original", SHORT_JSON_INPUT_RE) + " AND json_valid(original)",
                        f"{re_full(json_input, NO_INPUT_PHRASE_RE)}"
                        f" AND lower(trim({json_input})) NOT IN ({_marker_list()})",
                    ),
                ]
            )
        ),
    )


def truncated_response(
    *, min_chars: int = MIN_TRUNCATED_CHARS, min_prose_words: int = MIN_TRUNCATED_PROSE_WORDS
) -> Rule:
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
        null_safe(
            f"CASE WHEN length({text}) >= {int(min_chars)}"
            f" AND {re_match(f'right({text}, 1)', OPEN_LAST_CHAR_RE)}"
            f" AND {re_match(text, OPEN_ENDING_RE)}"
            f" THEN NOT ({re_match(text, UNPUNCTUATED_LINES_RE)}"
            f" AND ({words} < {int(min_prose_words)} OR {re_match(last_line, LIST_ITEM_RE)}))"
            f" AND NOT {re_match(last_line, NOT_PROSE_LINE_RE)}"
            f" AND NOT {re_match(last_line, ENUMERATION_RE)}"
            f" AND NOT {re_match(last_line, CODE_LIKE_RE)}"
            " ELSE FALSE END"
        ),
    )


__all__ = [
    "MIN_MERGED_QUESTIONS",
    "MIN_TRUNCATED_CHARS",
    "MIN_TRUNCATED_PROSE_WORDS",
    "code_request_without_code",
    "empty_response",
    "media_generation_request",
    "merged_instructions",
    "missing_input_media",
    "missing_input_text",
    "missing_input_url",
    "no_input_marker",
    "truncated_response",
]
