"""The regular expressions and SQL fragments of the pair rules (DuckDB RE2 syntax)."""

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
#: Substrings every input/output marker contains (a cheap gate for ``MARKER_TOKEN_RE``).
MARKER_NEEDLES = ("nput", "NPUT", "utput", "UTPUT")
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
RUN_CHARS = "abcdefghijklmnopqrstuvwxyz0123456789!?,;:'\"@$%&()[]{}/\\^`+<>"

__all__ = [
    "ANGLE_PLACEHOLDER_RE",
    "CODE_LIKE_RE",
    "CODE_REQUEST_RE",
    "CODE_WORD_RE",
    "CONTROL_CHARS_RE",
    "DRAW_IDIOM_RE",
    "DRAW_RE",
    "EMPTY_RESPONSE_RE",
    "END_MARKER_RE",
    "ENUMERATION_RE",
    "INLINE_CONTENT_RE",
    "INPUT_SQL",
    "INSTRUCTION_SQL",
    "LIST_ITEM_RE",
    "MARKER_NEEDLES",
    "MARKER_TOKEN_RE",
    "MARKUP_RE",
    "MEDIA_AS_TEXT_RE",
    "MEDIA_COMPOUND_RE",
    "MEDIA_GENERATION_RE",
    "MISSING_MEDIA_RE",
    "NOT_CODE_RE",
    "NOT_PROSE_LINE_RE",
    "NO_INPUT_PHRASE_RE",
    "NUMBERED_TASKS_RE",
    "OPEN_ENDING_RE",
    "OPEN_LAST_CHAR_RE",
    "PLACEHOLDER_RE",
    "QUESTION_THEN_TASK_RE",
    "QUOTED_RE",
    "RUN_CHARS",
    "SHORT_JSON_INPUT_RE",
    "SYMBOL_TRIPLE_RE",
    "TEMPLATE_LEAK_RE",
    "TEMPLATE_OUTPUT_RE",
    "TEXT_REFERENCE_RE",
    "UNPUNCTUATED_LINES_RE",
    "URL_CONTENT_RE",
    "URL_RE",
    "URL_TASK_RE",
]
