"""Pair rules: each rule fires on real defect shapes and stays quiet on good pairs.

Records are built the way ingest builds them (``records.to_canonical``: instruction plus
input, the original fields as JSON), stored in an in-memory ``raw_scrapes`` and filtered
with ``rule_engine.run_filters``, so the SQL is tested exactly as the stage runs it.
"""

import json

import duckdb
import pandas as pd
import pytest

from curation_assets.curation.filtering import annotators, generic_rules, pair_rules, rule_engine
from curation_assets.curation.ingest import tables as ingest_tables
from curation_assets.curation.records import example_id_sql, to_canonical

DEDUP = next(
    r
    for r in generic_rules.rules_for(
        min_prompt_chars=0, max_prompt_chars=10**9, min_response_chars=0, max_response_chars=10**9
    )
    if r.name == "exact_duplicate"
)
LONG_ARTICLE = (
    "Zinc is an essential mineral that the body needs for immune function, wound healing and "
    "the senses of taste and smell. Most adults get enough from meat, shellfish and legumes."
)


def _con(rows: list[dict]) -> duckdb.DuckDBPyConnection:
    """An in-memory warehouse whose ``raw_scrapes`` holds ``rows`` as ingest would store them."""
    frame = pd.DataFrame(rows)
    canonical, problem = to_canonical(frame, {})
    assert problem is None
    canonical["original"] = [json.dumps(r, ensure_ascii=False) for r in rows]
    canonical["line_no"] = range(1, len(rows) + 1)
    con = duckdb.connect()
    ingest_tables.ensure_tables(con)
    con.register("_rows", canonical[["line_no", "prompt", "response", "original"]])
    con.execute(
        f"""INSERT INTO raw_scrapes
            SELECT 't:' || line_no, {example_id_sql()}, 't', NULL, line_no, 'test', prompt,
                   response, original, now()
            FROM _rows"""
    )
    con.unregister("_rows")
    annotators.store_annotations(con)
    return con


def _fired(rows: list[dict], **kwargs) -> list[set[str]]:
    """The pair rules that fired, one set per row (in order)."""
    con = _con(rows)
    rule_engine.run_filters(con, [*pair_rules.pair_rules(**kwargs), DEDUP])
    fired: dict[str, set[str]] = {f"t:{i}": set() for i in range(1, len(rows) + 1)}
    for record_id, rule in con.sql("SELECT record_id, rule FROM rejections").fetchall():
        if rule != DEDUP.name:
            fired[record_id].add(rule)
    return list(fired.values())


def pair(instruction: str, output: str, input_: str = "") -> dict:
    return {"instruction": instruction, "input": input_, "output": output}


def _mojibake(text: str) -> str:
    return text.encode("utf-8").decode("cp1252", errors="replace")


# Each rule with pairs it must fire on (shapes found by hand in Alpaca and its relatives).
BAD = {
    "empty_response": [
        pair("Name three primary colors.", ""),
        pair("Translate 'cat' into French.", "N/A"),
        pair("Give a synonym of happy.", "<nooutput>"),
        pair("Write a limerick about a cat.", "No output."),
        pair("Define a function that returns the longest word.", '"""'),
        pair("Recommend a book about the sea.", "None"),
    ],
    "missing_input_media": [
        pair("Identify the object in the picture.", "A red apple.", "<Picture Attached>"),
        pair("Describe the attached image in two sentences.", "A sunset over a calm sea."),
        pair("What breed is the dog in this photo?", "It is a golden retriever."),
        pair("Transcribe the audio recording below.", "Hello and welcome to the show."),
        pair("Classify the image.", "Category: feline", "[an image of a cat]"),
    ],
    "missing_input_text": [
        pair("Summarize the following article in one sentence.", "It is about the climate."),
        pair("Correct the grammar in the given sentence.", "She goes to school every day."),
        pair("Translate this paragraph into Spanish.", "El perro corre en el parque."),
        pair("Find the main idea of the passage provided.", "The passage is about sleep."),
        pair("Given a list of numbers, find the largest one.", "The largest number is 42."),
    ],
    "missing_input_url": [
        pair("Summarize the article.", "Prices rose.", "https://www.example.com/news/123"),
        pair("Write a summary of this video: https://youtu.be/abc123", "A cooking tutorial."),
        pair("Provide a summary of the news article.", "Markets fell.", "www.example.org/a/b"),
    ],
    "merged_instructions": [
        pair(
            "1. Give three tips for staying healthy.\n2. What are the three primary colors?",
            "Eat well, sleep, exercise. Red, yellow and blue.",
        ),
        pair(
            "Write a haiku about rain.\nInput:\nOutput: Soft rain on the roof\n\n"
            "5. Instruction: Name a fruit.",
            "Soft rain on the roof.",
        ),
        pair(
            "What is the capital of France? Who wrote Hamlet? Translate 'hello' into German.",
            "Paris. Shakespeare. Hallo.",
        ),
    ],
    "code_request_without_code": [
        pair("Write a program that prints the factorial of a number.", "120", "Number: 5"),
        pair("Write a Python function that reverses a string.", '"olleh"', '"hello"'),
        pair("Write a SQL query to list all customers from Canada.", "All Canadian customers."),
        pair("Implement bubble sort in Java.", "Bubble sort swaps neighbours until sorted."),
    ],
    "media_generation_request": [
        pair("Draw a picture of a cat sitting on a fence.", "Here is the cat."),
        pair("Generate an image of a sunset over the mountains.", "A warm orange sunset."),
        pair("Create a song about summer holidays.", "Summer is here."),
        pair("Paint a portrait of a medieval king.", "The king looks proud."),
        pair("Record a short video showing how to tie a tie.", "First, cross the ends."),
    ],
    "no_input_marker": [  # the marker as the input, then inside the instruction
        pair("Describe a rainbow.", "Bands of colour in the sky.", "No input required"),
        pair("Name a planet.", "Mars.", "Input: N/A"),
        pair("Tell a joke. <noinput>", "Why did the chicken cross the road?"),
        pair("Write a slogan for a bakery. (no input)", "Fresh every morning."),
    ],
    "truncated_response": [
        pair(
            "Explain the Industrial Revolution.",
            "The Industrial Revolution began in Britain in the late 18th century. It transformed "
            "manufacturing through mechanisation and changed how people lived and worked. "
            "Factories drew workers from the countryside into the growing cities, where",
        ),
        pair(
            "Describe a healthy breakfast.",
            "A healthy breakfast combines protein, fibre and some fruit. Oatmeal with berries "
            "and a boiled egg keeps you full for hours, and a glass of water helps you",
        ),
    ],
    "control_characters": [
        pair("Name a color.\x07", "Blue."),
        pair("Name a fruit.", "Apple\x9b."),
        pair("Name a tree.", "Oak\x00."),
    ],
    "low_letter_ratio": [
        pair("Say something.", "!!! ??? ### $$$ %%% &&& *** ((( ))) @@@ ^^^ ~~~"),
        pair("#$%^&*()_+{}|:<>?~`-=[]\\;',./ #$%^&*", "Okay."),
    ],
    "repeated_characters": [
        pair("Express surprise.", "Wow" + "o" * 30 + "!"),
        pair("Express excitement.", "Great news" + "!" * 25),
    ],
    "repetitive_text": [
        pair("Describe your day.", "I am happy today. " * 10),
        pair("List fruits.", "apple banana " * 20),
    ],
    "mojibake": [
        pair("Describe a café.", _mojibake("It’s a “great” café with crème brûlée.")),
        pair(_mojibake("Translate “good morning” into French."), "Bonjour."),
    ],
}

# Good pairs, many from the shapes that naive filters reject; none may fire any rule.
GOOD = [
    pair(
        "Rewrite the sentence to be more concise.",
        "Please ask if you have questions about my rate.",
        "If you have any questions about my rate, please let me know.",
    ),
    pair(
        "Write a Python function that checks whether a number is prime.",
        "def is_prime(n):\n    if n < 2:\n        return False\n"
        "    return all(n % i for i in range(2, int(n**0.5) + 1))",
    ),
    pair("Summarize the given article in one sentence.", "Zinc matters for health.", LONG_ARTICLE),
    pair(
        "Draw a conclusion from the following data.",
        "The campaign probably raised sales.",
        "Sales rose 10% after the ad campaign.",
    ),
    pair("Write a song about the sea.", "Verse 1:\nThe waves roll in, the gulls cry out.\n"),
    pair("Generate a title for a video about cooking pasta.", "Perfect Pasta in 10 Minutes"),
    pair("List three novels by Jane Austen.", "Pride and Prejudice, Emma, Persuasion"),
    pair(
        "Based on the given query, suggest some related search queries.",
        "learning french for beginners\nlearning french online\nfrench language course\n"
        "how to learn french on your own\nbest way to learn french online",
        "learning french",
    ),
    pair(
        "Write an email inviting friends to dinner on Friday.",
        "Hi all,\n\nI'd love to have you over for dinner on Friday at seven. Let me know if "
        "you can make it, and tell me about any allergies!\n\nLooking forward to seeing you,\nSam",
    ),
    pair(
        "Convert the given HTML into Markdown.",
        "Use `print()` here.",
        "<p>Use <code>print()</code> here.</p>",
    ),
    pair("Shorten this URL.", "https://ex.co/abc", "https://www.example.com/a/long/path?ref=1"),
    pair("What sound does this character make?", "hǎo", "好"),
    pair("Translate into French.", "Bonsoir — à bientôt, café crème.", "Good evening"),
    pair("Respond to the chat with emojis.", "- 😌😊", "+ How did your exams go?"),
    pair(
        "Think of some movies that someone who liked the given series would enjoy.",
        "- Clickbait\n- Hellbound\n- Sweet Home\n- Alice in Borderland",
        "Squid Game",
    ),
    pair(
        "Solve the given Sudoku row puzzle.",
        "|1|6|5|9|2|4|7|8|3|\n|9|7|2|8|5|3|1|6|4|",
        "|1| |5| | | | |8| |\n| | | | | |3| |6|4|",
    ),
    pair(
        "Analyze the tone of the given email. How may the writer sound to the reader?",
        "Confident",
        "Hi Jen, can we catch up today? I'd appreciate your input on my presentation.",
    ),
    pair(
        "Think of a motivational quote from a book.",
        "“Believe in yourself. You are braver than you think.”\n― Roy T. Bennett, The Light "
        "in the Heart",
    ),
    pair("Describe a rainbow.", "Bands of colour in the sky after rain.", "<noinput>"),
    pair(
        "Write a tweet promoting a local bakery.",
        "Fresh croissants every morning at Rosie's! Come early before they sell out. "
        "#bakery #breakfast",
    ),
    pair("Write a function that reverses a given string.", "def rev(s):\n    return s[::-1]"),
    pair("Compose a haiku about autumn.", "Red leaves drift and fall.\nQuiet paths.\nCold air."),
]


BAD_CASES = [(rule, example) for rule, examples in BAD.items() for example in examples]


@pytest.fixture(scope="module")
def bad_fired() -> list[set[str]]:
    """Every bad example filtered in one batch (the pair rules look at one row at a time, so a
    batch fires the same rules as one run per example, at a fiftieth of the cost)."""
    return _fired([example for _, example in BAD_CASES])


@pytest.mark.parametrize(
    ("case", "rule", "example"),
    [(i, rule, example) for i, (rule, example) in enumerate(BAD_CASES)],
    ids=lambda v: v if isinstance(v, str) else "" if isinstance(v, int) else v["instruction"][:30],
)
def test_rule_fires_on_its_defect(bad_fired, case, rule, example):
    assert rule in bad_fired[case], f"{rule} did not fire on {example}"


def test_good_pairs_pass_every_rule():
    fired = _fired(GOOD)
    flagged = {GOOD[i]["instruction"]: rules for i, rules in enumerate(fired) if rules}
    assert flagged == {}


def test_every_rule_has_examples_and_a_reason():
    names = {r.name for r in pair_rules.pair_rules()}
    assert names == set(BAD)
    assert all(r.reason for r in pair_rules.pair_rules(labelled=True))


def test_conflicting_labels_flags_every_member_and_names_the_labels():
    rows = [
        {"text": "Where is my new card?", "label": "card_arrival"},
        {"text": "where is my   NEW card? ", "label": "lost_or_stolen_card"},
        {"text": "My transfer is stuck on pending.", "label": "pending_transfer"},
        {"text": "my transfer is stuck on pending.", "label": "pending_transfer"},
    ]
    con = _con(rows)
    rule_engine.run_filters(con, [*pair_rules.pair_rules(labelled=True), DEDUP])
    conflicts = dict(
        con.sql(
            "SELECT record_id, reason FROM rejections WHERE rule = 'conflicting_labels'"
        ).fetchall()
    )
    assert set(conflicts) == {"t:1", "t:2"}
    assert '"card_arrival", "lost_or_stolen_card"' in conflicts["t:1"]
    other_rules = con.sql("SELECT DISTINCT rule FROM rejections").fetchall()
    assert set(other_rules) == {("conflicting_labels",), ("exact_duplicate",)}


def test_labelled_rule_set_keeps_text_rules_only():
    names = [r.name for r in pair_rules.pair_rules(labelled=True)]
    assert "conflicting_labels" in names
    assert "code_request_without_code" not in names and "empty_response" not in names
    assert "control_characters" in names and "mojibake" in names


def test_thresholds_are_keyword_arguments():
    rules = {r.name: r for r in pair_rules.pair_rules(max_char_run=5, min_truncated_chars=20)}
    assert "5+ times" in rules["repeated_characters"].reason
    assert "20+ characters" in rules["truncated_response"].reason
    (fired,) = _fired([pair("Express surprise.", "Wowwwww")], max_char_run=5)
    assert fired == {"repeated_characters"}
    assert "mojibake" not in {r.name for r in pair_rules.pair_rules(annotations_table=None)}


def test_missing_fields_never_fire_except_a_missing_response():
    con = duckdb.connect()
    ingest_tables.ensure_tables(con)
    con.execute(
        "INSERT INTO raw_scrapes VALUES "
        "('t:1', 'a', 't', NULL, 1, 's', 'Name a color.', NULL, NULL, now()),"
        "('t:2', 'b', 't', NULL, 2, 's', NULL, 'Blue.', 'not json', now())"
    )
    annotators.store_annotations(con)
    rule_engine.run_filters(con, pair_rules.pair_rules())
    fired = con.sql("SELECT record_id, rule FROM rejections ORDER BY ALL").fetchall()
    assert fired == [("t:1", "empty_response")]


def test_mojibake_flags_only_broken_text():
    texts = [None, "plain ascii", "café — “quoted” 好 😌", _mojibake("It’s a café"), "Ã©tÃ©"]
    assert annotators.mojibake_flags(texts) == [False, False, False, True, True]


def test_annotate_and_store_annotations_cover_every_record():
    frame = pd.DataFrame(
        {
            "record_id": ["a", "b", "c"],
            "prompt": ["Say hi.", _mojibake("Say “hi”."), "Say hi."],
            "response": ["Hi.", "Hi.", None],
        }
    )
    out = annotators.annotate(frame)
    assert out.to_dict("list") == {"record_id": ["a", "b", "c"], "mojibake": [False, True, False]}

    con = _con([pair("Say hi.", "Hi."), pair("Describe a café.", _mojibake("It’s “nice”."))])
    assert annotators.store_annotations(con) == 1
    rows = con.sql("SELECT record_id, mojibake FROM annotations ORDER BY record_id").fetchall()
    assert rows == [("t:1", False), ("t:2", True)]
