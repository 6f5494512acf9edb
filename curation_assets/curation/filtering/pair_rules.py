"""Rules for instruction/response pairs and labelled data, as pure DuckDB SQL.

Web-text quality filters destroy instruction data (see the project notes), so these rules
target the problems found by hand in Alpaca (AlpacaDataCleaned): answers to inputs that
were never given, several instructions merged into one, empty or "N/A" responses, code
requests answered without code, image/audio generation requests, leftover no-input
markers, nonsense or truncated text, stray control characters and mojibake. For labelled
data: the same text carrying different labels.

Each rule is a :class:`~curation_assets.curation.filtering.rule_engine.Rule` whose
``condition`` reads the columns of ``raw_scrapes`` (``prompt``, ``response``, ``original``,
``record_id``), so the whole set runs in the one DuckDB pass of
:func:`rule_engine.run_filters`. Every condition is
NULL-safe (``run_filters`` treats NULL as "fired"). Thresholds are keyword arguments named
after what they measure.

Instruction data reaches ``raw_scrapes`` as ``instruction + "\\n\\n" + input`` (see
``records.to_canonical``), so the instruction is the prompt up to its first blank line and
the input is the rest.

Integration (the ``filtered`` stage), on the one connection it already opens::

    rule_set = filtering.rules_for(...) + rules_pairs.pair_rules(
        labelled=settings.task_type == "classification"
    )
    annotators.store_annotations(con)  # rebuilds table ``annotations`` from raw_scrapes
    filtering.run_filters(con, rule_set)

The ``mojibake`` rule reads ``annotations`` through a semi-join on ``record_id``, so
``run_filters`` needs no change (a LEFT JOIN of ``annotations`` there works as well);
records missing from the table count as clean, so refresh it before every run. The
``conflicting_labels`` reason lists the labels with a window over the rows it flagged,
which is how ``run_filters`` builds ``rejections`` (one query per rule over its flagged
rows).
"""

from curation_assets.curation.filtering.rule_engine import Rule
from curation_assets.curation.records import NO_INPUT_MARKERS, NORMALIZE_SQL

#: The instruction part of the prompt (up to the first blank line) and the input part.
INSTRUCTION_SQL = "split_part(prompt, chr(10) || chr(10), 1)"
INPUT_SQL = r"regexp_extract(prompt, '(?s)\n\n(.*)', 1)"

#: C0 and C1 control characters (and DEL) other than tab, line feed and carriage return.
CONTROL_CHARS_RE = r"[\x00-\x08\x0B\x0C\x0E-\x1F\x7F-\x9F]"

_LANGS = (
    r"python|java|javascript|js|typescript|c\+\+|c#|golang|go|rust|ruby|php|perl|swift|"
    r"kotlin|scala|matlab|bash|shell|powershell|sql|mysql|postgresql|sqlite|html|html5|css|"
    r"haskell|lua|julia|vba|node\.js|nodejs|react|jquery|dart|r|c|assembly|latex|regex|"
    r"unix|linux|command[- ]line|cli"
)
_CODE_ADJ = (
    r"simple|short|small|basic|quick|computer|console|recursive|complete|working|"
    r"efficient|reusable|generic|helper|custom|new|single|valid|one-line|sample|example"
)
_CODE_VERB = (
    r"write|create|generate|develop|implement|construct|compose|produce|code|give|provide|"
    r"show|design|build|make|program"
)
#: A request for code: a code noun after a request verb, or a language-qualified artefact.
CODE_REQUEST_RE = (
    rf"(?i)\b({_CODE_VERB})\s+(me\s+|us\s+)?((a|an|some|the)\s+)?(({_CODE_ADJ}|{_LANGS})[\s-]+)"
    r"{0,3}(program|function|code|snippet|subroutine|regex|regular expression|one-liner|"
    r"sql (query|statement)|query in sql)s?\b"
    rf"|(?i)\b({_CODE_VERB})\s+(me\s+|us\s+)?((a|an|some|the)\s+)?(({_CODE_ADJ})[\s-]+)*"
    rf"({_LANGS})[\s-]+(({_CODE_ADJ})[\s-]+)*"
    r"(script|query|class|method|module|procedure|loop|implementation|solution|program|"
    r"statement|command|function|snippet)s?\b"
    r"|(?i)\b(implement|write|code|program|create|develop)\s.{0,60}\b(in|using)\s+"
    r"(python|java|javascript|typescript|c\+\+|c#|golang|rust|ruby|php|perl|swift|kotlin|"
    r"scala|matlab|bash|powershell|sql|haskell|julia|node\.js)\b"
)
#: A word every code request contains (a cheap gate for the full pattern).
CODE_WORD_RE = (
    r"(?i)program|function|code|snippet|subroutine|regex|regular expression|one-liner|sql|"
    r"script|query|class|method|module|procedure|loop|implement|solution|statement|command|"
    r"python|java|c\+\+|c#|golang|rust|ruby|php|perl|swift|kotlin|scala|matlab|bash|"
    r"powershell|haskell|julia|node"
)
#: Quoted text inside an instruction (content, not the request itself).
QUOTED_RE = r"\"[^\"]*\"|“[^”]*”"
#: Phrases where "code" or "program" is not software.
NOT_CODE_RE = (
    r"(?i)\bcode\s+(of\s+(conduct|ethics|practice|honou?r)|words?|names?)\b"
    r"|\b(dress|zip|postal|area|secret|promo|promotional|discount|coupon|colou?r|morse|qr|"
    r"bar|access|country|genetic|moral|ethical)\s+codes?\b"
)
#: Something that looks like code in a response (case-sensitive keywords).
CODE_LIKE_RE = (
    r"(?m)```|[{}]|;[ \t]*$|\w\(\)|\w\(([^s)]|s[^)])|\)\s*[:{]|[=!<>]=|=>|->|:=|\+\+|&&|\|\||"
    r"</?[a-zA-Z][\w-]*(\s[^<>]*)?/?>|"
    r"^\s*(def|class|import|from|return|function|var|let|const|public|private|static|void|"
    r"int|#include|#!|SELECT|INSERT|UPDATE|DELETE|CREATE|WITH|for|while|if|echo|print|"
    r"printf|console\.log|System\.out|SELECT)\b|"
    r"^( {2,}|\t)\S|\b[A-Za-z_]\w*\s*=\s*\S|\$\w|\b\w+\.\w+\("
)

_MEDIA_NOUNS = (
    r"images?|pictures?|pics?|photos?|photographs?|screenshots?|videos?|video clips?|clips?|"
    r"audio|audio clips?|recordings?|sound clips?|voice (notes?|messages?)|podcasts?|"
    r"attachments?|drawings?|paintings?|illustrations?|scans?|x-rays?|gifs?|slides?|"
    r"charts?|graphs?|diagrams?|figures?|maps?|infographics?|posters?|memes?"
)
#: Attachment placeholders: "<Picture Attached>", "[image]", "(see attachment)".
PLACEHOLDER_RE = (
    r"(?i)[<\[(]\s*((insert|see|attached|embedded|uploaded|an?|the|link\s+to\s+an?)\s+)*"
    r"(picture|image|photo|img|video|audio|file|attachment|pdf|chart|graph|figure|screenshot|"
    r"diagram)s?(\s+(attached|here|below|above|link|url|clip|file|recording|\d+)"
    r"|\s+of\s[^<>\[\]()]{0,80})*\s*[>\])]"
)
ANGLE_PLACEHOLDER_RE = r"(?i)<\s*(\w+\s+)*(picture|image|photo|img|video|audio)s?\b[^<>]*>"
#: Prompts about markup, where "<video>" or "<picture>" is an HTML element, not a placeholder.
MARKUP_RE = r"(?i)\b(html5?|tags?|elements?|markup|xml|jsx|svg)\b"
_END = r"([\s.,;:?!)]|$)"  # a word end that is not a possessive ("the video's content")
#: References to media that a text record cannot contain ("the attached image", "this photo").
MISSING_MEDIA_RE = (
    r"(?i)\b(attached|enclosed|uploaded|accompanying|embedded)\s+(\w+\s+)?"
    rf"({_MEDIA_NOUNS}|files?|documents?|pdfs?|spreadsheets?){_END}"
    r"|\bsee\s+(the\s+)?attach(ed|ment)\b"
    r"|\b(this|these|the\s+following|following|the\s+given|the\s+provided|the\s+above|"
    r"the\s+below|the\s+shown|the\s+displayed)\s+(\w+\s+)?"
    r"(images?|pictures?|photos?|photographs?|screenshots?|videos?|video clips?|audio|"
    r"audio clips?|recordings?|sound clips?|paintings?|drawings?|illustrations?|x-rays?|"
    rf"scans?|diagrams?|charts?|figures?|infographics?|gifs?){_END}"
    r"|\b(in|from|on|at)\s+the\s+(images?|pictures?|photos?|photographs?|screenshots?|"
    r"videos?|video clip|audio|audio clip|recording|sound clip|x-ray|scan|diagram|chart|"
    rf"infographic|gif){_END}"
    rf"|\bthe\s+(\w+\s+)?({_MEDIA_NOUNS}|map|files?|documents?|spreadsheets?)\s+"
    r"(below|above|attached|shown|provided|given|included|linked|here)\b"
)

#: Media words that name a text artefact ("video script", "image caption").
MEDIA_COMPOUND_RE = (
    r"(?i)\b(video|audio|image|picture|photo|podcast|film)\s+(scripts?|games?|titles?|captions?|"
    r"descriptions?|transcripts?|editors?|ideas?|concepts?|outlines?)\b"
)

_TEXT_NOUNS = (
    r"texts?|passages?|paragraphs?|articles?|sentences?|words?|phrases?|statements?|"
    r"stor(y|ies)|poems?|essays?|e-?mails?|letters?|documents?|code|snippets?|programs?|"
    r"functions?|data|dataset|tables?|lists?|questions?|reviews?|tweets?|posts?|inputs?|"
    r"conversations?|dialogu?es?|excerpts?|quotes?|quotations?|reports?|summar(y|ies)|"
    r"recipes?|equations?|expressions?|numbers?|strings?|arrays?|sequences?|sets?|"
    r"descriptions?|news|headlines?|titles?|messages?|comments?|transcripts?|lyrics|"
    r"songs?|books?|speech|abstracts?|contracts?|resumes?|products?|options?|choices?|"
    r"scenarios?|situations?|facts?|claims?|arguments?|examples?|items?|names?|"
    r"values?|inputs?|files?|urls?|links?|websites?|web ?pages?|problems?|tasks?|"
    r"instructions?|prompts?|topics?|keywords?|terms?|concepts?|events?|characters?|"
    r"movies?|films?|person|people|company|companies|places?|locations?|cit(y|ies)"
)
_TEXT_DEICTIC = (
    r"given|following|provided|above|below|attached|included|enclosed|supplied|preceding|"
    r"aforementioned|specified|underlined|highlighted|bolded|listed|shown|mentioned"
)
#: A reference to a text input ("the given sentence", "this paragraph", ...).
TEXT_REFERENCE_RE = (
    rf"(?i)\b(the|this|these|those|each|every|your)\s+({_TEXT_DEICTIC})\s+[\w'-]"
    rf"|(?i)\b(this|these)\s+({_TEXT_NOUNS})\b"
    rf"|(?i)\bthe\s+({_TEXT_NOUNS})\s+(given|provided|supplied|shown|listed|mentioned)\b"
    r"|(?i)\byou\s+(are|will\s+be|have\s+been|were)\s+(given|provided|shown|presented)\b"
    r"|(?i)^\s*given\s+(a|an|the|two|three|some|several|one)\s"
    r"|(?i)\b(a|an)\s+given\s+[\w-]+"
    r"|(?i)\b(has|have)\s+been\s+(given|provided|supplied)\b|\bgiven\s+to\s+you\b"
    r"|(?i)\b(is|are)\s+(given|provided|supplied)(\s+(to\s+you|below|above|here))?\s*[.,;:]"
    r"|(?i)\bthe\s+([\w-]+\s+){1,3}(given|provided|supplied)\s*([.,;:!?]|$|and\s)"
    rf"|(?i)\b({_TEXT_NOUNS})\s+(below|above)\b"
    r"|(?i)\b(the|this|these)\s+(following|above|below)\s*[:.]?\s*$"
)
#: Content that is given inline: a later line, text after a colon, or a quotation.
INLINE_CONTENT_RE = (
    r"(?s)\n\s*\S|:\s*\S|\s[-–—]+\s*\S|\"[^\"]{3,}\"|“[^”]{3,}”|«[^»]{3,}»|`[^`]{3,}`"
)

URL_RE = r"(?i)\b(https?://|www\.)[^\s<>\"']+"
#: Words that ask about what a link points to.
URL_CONTENT_RE = (
    r"(?i)\b(summar\w*|read|watch|listen|visit|view|open|browse|analy[sz]e|review|describe|"
    r"evaluate|explain|extract|scrape|check|based on|according to|articles?|videos?|pages?|"
    r"websites?|site|web ?pages?|links?|urls?|posts?|blogs?|papers?|content|reports?|"
    r"stor(y|ies)|news|tweets?|threads?|profiles?|repo\w*|documents?|podcasts?|songs?)\b"
)

#: Tasks about the link itself, which need no linked content.
URL_TASK_RE = (
    r"(?i)\b(shorten\w*|pars\w*|domains?|valid\w*|encod\w*|decod\w*|regex|regular expression|"
    r"protocols?|query string|parameters?|host ?names?|redirect\w*|status codes?|dns|"
    r"ip address|hyperlinks?|anchor|markdown link|html link|clickable|slug|subdomains?|"
    r"top-level|tld|phishing|malicious)\b"
)

_TASK_VERBS = (
    r"give|name|list|write|describe|explain|generate|create|find|identify|translate|"
    r"summari[sz]e|classify|compose|suggest|provide|make|calculate|compute|convert|rewrite|"
    r"edit|tell|compare|design|develop|analy[sz]e|evaluate|choose|select|determine|predict|"
    r"construct|outline|brainstorm|propose|answer|paraphrase|categori[sz]e|rank|sort|"
    r"formulate|add|change|replace|correct|complete|output|produce|recommend|come up|"
    r"what|who|when|where|why|how|which|is|are|can|do|does"
)
_IMPERATIVES = (
    r"give|name|list|write|describe|generate|create|find|identify|translate|summari[sz]e|"
    r"classify|compose|suggest|provide|make|calculate|compute|convert|rewrite|edit|tell|"
    r"compare|design|develop|analy[sz]e|choose|select|determine|predict|construct|outline|"
    r"brainstorm|propose|paraphrase|categori[sz]e|rank|sort|formulate|output|produce|"
    r"recommend"
)
#: Several tasks in one instruction: a numbered list of tasks, or a leaked generator template.
NUMBERED_TASKS_RE = (
    r"(?s)^\s*1\s*[.)]\s+\S.*(\n|[.?!:;]\s+)\s*2\s*[.)]\s+\S"
    rf"|(?is)(^|\n|[:.?!]\s+)\s*1\s*[.)]\s+({_TASK_VERBS})\b.*(\n|[.?!]\s+)\s*2\s*[.)]\s+"
    rf"({_TASK_VERBS})\b"
)
TEMPLATE_LEAK_RE = r"(?im)^[\s#*]*(\d+\s*[.)]?\s*)?instruction\s*:"
TEMPLATE_OUTPUT_RE = r"(?im)^[\s#*]*(input|output|response)\s*:"
QUESTION_THEN_TASK_RE = rf"(?i)\?\s+({_IMPERATIVES})\b"

_MEDIA_GEN_VERB = (
    r"generate|create|produce|make|design|render|take|shoot|film|record|animate|compose|sing"
)
#: Requests for a picture, sound or film, which a text model cannot produce.
DRAW_RE = (
    r"(?i)\b(draw|paint|sketch|illustrate|doodle)\s+(me\s+|us\s+)?(a|an|the|some|your|my|\d+)\b"
)
#: "draw" idioms that are not pictures.
DRAW_IDIOM_RE = (
    r"(?i)\b(draw|paint)\s+(me\s+|us\s+)?(a|an|the|some|your|my)\s+(\w+\s+)?(conclusions?|"
    r"comparisons?|parallels?|inferences?|distinctions?|analog(y|ies)|lessons?|attention|"
    r"breath|cards?|straws?|lots|blood|curtains?|bath|water|salary|line|crowds?|blank|"
    r"vivid|mental|clear)\b"
)
MEDIA_GENERATION_RE = (
    rf"(?i)\b({_MEDIA_GEN_VERB})\s+(me\s+|us\s+)?((a|an|the|some|\d+)\s+)?([\w'-]+\s+){{0,3}}"
    r"(images?|pictures?|photos?|photographs?|drawings?|paintings?|illustrations?|artworks?|"
    r"logos?|icons?|videos?|animations?|gifs?|audio|audio clips?|sound effects?|sound ?tracks?|"
    r"songs?|melod(y|ies)|tunes?|music|jingles?|recordings?|podcasts?|voice-?overs?|memes?|"
    r"sketch(es)?|portraits?|3d models?)\b"
)
#: Mentions that make such a request answerable in text (ASCII art, code, lyrics, ideas...).
MEDIA_AS_TEXT_RE = (
    r"(?i)\b(ascii|emoji|latex|tikz|svg|html|css|code|python|matplotlib|markdown|mermaid|"
    r"graphviz|prompts?|lyrics|words|text|poem|sentences?|paragraphs?|essays?|descriptions?|"
    r"describ\w*|script|outline|titles?|"
    r"captions?|names?|playlists?|recommend\w*|reviews?|games?|slogans?|taglines?|stor(y|ies)|"
    r"plans?|ideas?|list|summary|concepts?|conclusions?|comparisons?|parallels?|inferences?|"
    r"distinctions?|analog(y|ies)|lessons?)\b"
)

_MARKER_PHRASE = (
    r"[<(\[{]?\s*(no|without|empty|blank)[\s_-]*(inputs?|contexts?)"
    r"(\s+(is\s+)?(required|needed|necessary|provided|given|available))?\s*[>)\]}]?"
    r"|[<(\[{]?\s*(n\s*/\s*a|n\.\s*a\.?|none|null|nil|nan|empty|blank|not applicable|nothing|"
    r"-+|\.+)\s*[>)\]}]?"
)
#: A whole input (or line) that only says "there is no input".
NO_INPUT_PHRASE_RE = rf"(?i)\s*(input\s*:\s*)?({_MARKER_PHRASE})\s*[.!]?\s*"
#: An instruction that ends with an explicit marker ("... [no input]", "... (none)", "N/A").
END_MARKER_RE = (
    r"(?i)(^|[.!?:]\s|\n)\s*(input\s*:\s*)?([<(\[{]\s*(no|without|empty|blank)?[\s_-]*"
    r"(inputs?|contexts?|none|n\s*/\s*a|empty|blank|null|nothing)(\s+(is\s+)?(required|needed|"
    r"necessary|provided|given|available))?\s*[>)\]}]|(no|without)[\s_-]*inputs?(\s+(is\s+)?"
    r"(required|needed|necessary|provided|given|available))?|n\s*/\s*a)\s*[.!]?\s*$"
)
#: A short "input"/"context" field in the original JSON (where a marker could hide).
SHORT_JSON_INPUT_RE = r"\"(input|context)\":\s*\"[^\"]{1,40}\""
_MARKER_NEEDLES = ("nput", "NPUT", "utput", "UTPUT")
#: Marker tokens that must never be left in the text.
MARKER_TOKEN_RE = r"(?i)<\s*no[\s_-]*(input|output)s?\s*>|(?m)^\s*input\s*:\s*$"

#: Responses that are placeholders for "no answer".
EMPTY_RESPONSE_RE = (
    r"(?i)[\s\p{P}]*|\s*[<(\[{]?\s*(n\s*/\s*a|n\.a\.?|na|none|null|nil|nan|empty|blank|"
    r"not applicable|no[\s_-]*(output|answer|response|result)s?"
    r"(\s+(is\s+)?(required|needed|necessary|provided|given|available))?)"
    r"\s*[>)\]}]?\s*[.!]?\s*"
)

#: A response that ends without closing punctuation: on a plain word (not a #tag, a link or
#: a number), on a comma (after a long line or in a list item), on a dangling dash or list
#: marker.
OPEN_ENDING_RE = (
    r"(^|\s)[\pL'’-]*\pL$|[^\n]{40,},$|(^|\n)\s*([-*+•]|\d+\s*[.)-])\s[^\n]*,$|\S\s+[-–—]$"
    r"|\n\s*[-*+•]$"
)
#: The last characters those endings can have (a cheap gate).
OPEN_LAST_CHAR_RE = r"[\pL,\-–—*+•]"
#: A list item line ("- ...", "2. ...", "3- ...").
LIST_ITEM_RE = r"^\s*([-*+•]|\d+\s*[.)-]|[a-z][.)])\s"
#: A last line ending in three or more short or capitalised comma items: a list of names.
ENUMERATION_RE = (
    r"(,\s*[\p{Lu}\pN][^,]{0,50}){3}$|(,[^,]{1,32}){4}$|(\s\d+\s*[.)-]\s[^\n]{1,40}){3}$"
)
#: The line before the last also ends without sentence punctuation (a list, a sign-off).
UNPUNCTUATED_LINES_RE = r"[^.!?:;\"'”’)\]*\s]\s*\n[^\n]*$"
#: Last lines that are not prose: table rows, headings, attributions ("- Name"), code.
NOT_PROSE_LINE_RE = r"\||^\s*#|^\s*[―—–~]|^( {2,}|\t)|\s[-–—―]\s*(\p{Lu}[\w.'’]*\s*){1,5}$"
#: Three symbols in a row (spaces between allowed): a text of 30+ characters with under
#: 30% letters and digits always has some, so this cheap test gates the costly ratio.
SYMBOL_TRIPLE_RE = r"[^\pL\pN\s]\s*[^\pL\pN\s]\s*[^\pL\pN\s]"
#: Characters whose long runs mean noise (separators such as - = _ * . # ~ are left out).
_RUN_CHARS = "abcdefghijklmnopqrstuvwxyz0123456789!?,;:'\"@$%&()[]{}/\\^`+<>"


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
