"""Benchmark of the instruction-pair rules (``curation_assets.curation.filtering.pair_rules``).

(a) false positives on 252 known-good self-instruct records (target: at most 5% dropped);
(b) catches on alpaca-libre's raw generations (against its machine ``status``) and on
    defects planted programmatically into the good records (target: 90% per class);
(c) throughput of the whole rule set in DuckDB on 100k resampled rows, plus the mojibake
    annotator.

Every record goes through the real ingest (``intake.read_file`` + ``store_batch``), the
annotations table and ``rule_engine.run_filters``. Data comes from ``../shared`` (override
with ``CURATION_SHARED_DIR``); without it the benchmark says so and exits 0.

    .venv/bin/python benchmarks/bench_pair_rules.py [--rows 100000] [--seed 7] [--out PATH]
"""

import argparse
import json
import os
import platform
import random
import re
import sys
import tempfile
from collections import Counter, defaultdict
from datetime import datetime
from pathlib import Path

import duckdb

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # runnable as a plain script

from benchmarks import common  # noqa: E402
from benchmarks.common import REPO, SHARED, md_table, scalar  # noqa: E402
from curation_assets.curation.filtering import annotators, generic_rules, pair_rules, rule_engine  # noqa: E402
from curation_assets.curation.ingest import intake  # noqa: E402
from curation_assets.curation.ingest import tables as ingest_tables  # noqa: E402
from curation_assets.curation.records import NORMALIZED_PROMPT_SQL  # noqa: E402

GOOD = common.SELF_INSTRUCT
RAW_DIR = common.ALPACA_RAW
SAMPLE_INBOX = REPO / "curation_assets/sample_data/inbox"
DEFAULT_OUT = REPO / "benchmarks/RESULTS_pair_rules.md"
COMMAND = common.reproduce("bench_pair_rules.py")
FP_TARGET = 0.05
#: A one-off review by hand, written down when the rules were built (not recomputed).
MANUAL_REVIEW = (
    "Reviewed by hand when the rules were written: 40 random rows flagged although their "
    "status is `ok`. 39 are real defects the status missed (answers to articles behind links "
    "or to inputs that are absent, empty responses, code requests answered with a value, "
    "leaked `<noinput>`, a stray U+0003); 1 is debatable (describe the purpose of "
    "https://www.wikipedia.org/, answerable from general knowledge)."
)
#: Planted classes checked against a rule of another name, and the one reported only.
UNTARGETED = "merged_plain_concatenation"
CLASS_RULE = {"missing_input": "missing_input_", UNTARGETED: "merged_instructions"}
CATCH_TARGET = 0.90
PER_CLASS = 40

#: The stage's dedup rule rides along (``filtered`` needs unique example ids); not counted.
DEDUP = next(
    r
    for r in generic_rules.rules_for(
        min_prompt_chars=0, max_prompt_chars=10**9, min_response_chars=0, max_response_chars=10**9
    )
    if r.name == "exact_duplicate"
)


# ----------------------------------------------------------------------------- loading


def good_records() -> list[dict]:
    """The self-instruct records as flat instruction/input/output rows."""
    return [
        {"instruction": record["instruction"], "input": inst["input"], "output": inst["output"]}
        for _, record in common.jsonl(GOOD)
        for inst in record["instances"]
    ]


def warehouse_with(files: list[Path]) -> duckdb.DuckDBPyConnection:
    """An in-memory warehouse with ``files`` ingested and annotated, as the pipeline does."""
    con = duckdb.connect()
    ingest_tables.ensure_tables(con)
    for i, path in enumerate(files):
        result = intake.read_file(path, {}, 1_000_000)
        intake.store_batch(con, result, datetime(2026, 1, 1 + i))
    annotators.store_annotations(con)
    return con


def write_jsonl(folder: Path, name: str, rows: list[dict]) -> Path:
    path = folder / name
    path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), "utf-8")
    return path


def run(con: duckdb.DuckDBPyConnection, rules: list[rule_engine.Rule]) -> dict[str, set[str]]:
    """Run the rules; record id -> names of the pair rules that fired."""
    rule_engine.run_filters(con, [*rules, DEDUP])
    fired: dict[str, set[str]] = defaultdict(set)
    for record_id, rule in con.sql("SELECT record_id, rule FROM rejections").fetchall():
        if rule != DEDUP.name:
            fired[record_id].add(rule)
    return fired


# ----------------------------------------------------------------------------- planting

SUBJECTS = [
    "a cat sleeping on a windowsill",
    "the Eiffel Tower at night",
    "a busy farmers market",
    "a dragon flying over mountains",
    "our new product launch",
    "a sunset over the ocean",
    "a child learning to ride a bike",
    "the water cycle",
    "a cozy coffee shop",
    "a robot playing chess",
]
MEDIA_TEMPLATES = [
    "Draw a picture of {s}.",
    "Generate an image of {s}.",
    "Create a song about {s}.",
    "Paint a portrait of {s}.",
    "Record a short video showing {s}.",
    "Compose a melody inspired by {s}.",
    "Create an audio clip of {s}.",
    "Sketch {s} in pencil.",
    "Make a video about {s}.",
    "Produce a short animation of {s}.",
    "Take a photo of {s}.",
    "Design a logo featuring {s}.",
    "Draw me a cartoon of {s}.",
    "Generate a photorealistic picture of {s}.",
]
CODE_TEMPLATES = [
    "Write a program to {t}",
    "Create a Python function that can {t}",
    "Write a SQL query to {t}",
    "Implement a JavaScript function which will {t}",
    "Write a bash script that can {t}",
    "Write code to {t}",
    "Develop a Java program to {t}",
    "Write a function in C++ that will {t}",
    "Give me a Python script to {t}",
    "Write a short program that helps {t}",
]
EMPTY_RESPONSES = [
    "",
    " ",
    "N/A",
    "n/a.",
    "None",
    "none",
    "No output",
    "No output.",
    "<nooutput>",
    "<no output>",
    '"""',
    "-",
    "...",
    "NA",
    "Not applicable",
    "No answer.",
    "null",
    "\n\n",
]
#: No-input markers that ``records.NO_INPUT_MARKERS`` does not normalise.
MARKERS = [
    "No input.",
    "No input required",
    "<No Input Provided>",
    "N/A.",
    "(none)",
    "Not applicable",
    "Input: N/A",
    "None.",
    "No input needed.",
    "[no input]",
    "no input given",
    "<empty>",
    "(no input)",
    "<no_input>",
    "[N/A]",
]
PLACEHOLDERS = [
    "<Picture Attached>",
    "[image]",
    "<image>",
    "<audio clip>",
    "[Video attached]",
    "<Insert image here>",
    "(see attachment)",
    "[Attached file]",
]
MEDIA_REFERENCES = [
    "Describe what is happening in the attached photo.",
    "Identify the bird in this picture.",
    "Summarize the video below in three sentences.",
    "What instrument is playing in the audio recording?",
    "Write a caption for the image shown above.",
    "Read the attached document and list its main points.",
    "Estimate the age of the person in the photo.",
    "Transcribe the voice note attached.",
]
#: C0/C1 controls to plant. U+0085 is left out: ``intake.formats._originals`` splits lines with
#: ``str.splitlines``, which breaks on it, and the whole file fails to ingest.
CONTROL = [
    chr(c) for c in [*range(0, 9), 11, 12, *range(14, 32), *range(127, 133), *range(134, 160)]
]
DEICTIC = re.compile(r"\b(given|following|this|these|provided|above|below)\b", re.IGNORECASE)
PLAIN_PROSE = re.compile(r"[A-Za-z0-9 ,.!?'\"’“”\n-]+")


def _lower_first(text: str) -> str:
    text = text.strip().rstrip(".")
    return text[:1].lower() + text[1:]


def _row(instruction: str, input_: str, output: str, klass: str, variant: str) -> dict:
    return {
        "instruction": instruction,
        "input": input_,
        "output": output,
        "planted": klass,
        "variant": variant,
    }


def plant(good: list[dict], rng: random.Random) -> list[dict]:
    """Known-good records with one defect each, PER_CLASS (or more) per class."""
    out: list[dict] = []
    with_input = [g for g in good if g["input"].strip()]
    without_input = [g for g in good if not g["input"].strip()]
    prose = [g for g in good if PLAIN_PROSE.fullmatch(g["output"]) and len(g["output"]) > 40]
    deictic = [g for g in with_input if DEICTIC.search(g["instruction"])]

    # missing input: drop a referenced input / a bare link / a placeholder / a media reference
    for g in rng.sample(deictic, min(PER_CLASS // 2, len(deictic))):
        out.append(_row(g["instruction"], "", g["output"], "missing_input", "input dropped"))
    for g in rng.sample(with_input, PER_CLASS // 4):
        url = f"https://www.example.com/{rng.randrange(10**6)}/story-{rng.randrange(999)}.html"
        out.append(_row(g["instruction"], url, g["output"], "missing_input", "link instead"))
    for g in rng.sample(with_input, PER_CLASS // 8):
        input_ = rng.choice(PLACEHOLDERS)
        out.append(_row(g["instruction"], input_, g["output"], "missing_input", "placeholder"))
    for g in rng.sample(prose, PER_CLASS // 8):
        out.append(
            _row(rng.choice(MEDIA_REFERENCES), "", g["output"], "missing_input", "media reference")
        )

    # merged instructions: numbered task lists and leaked generator templates
    for i in range(PER_CLASS):
        a, b, c = rng.sample(without_input, 3)
        if i % 3 == 0:
            text = f"1. {a['instruction']}\n2. {b['instruction']}"
            variant = "numbered 1./2."
        elif i % 3 == 1:
            text = f"1) {a['instruction']} 2) {b['instruction']} 3) {c['instruction']}"
            variant = "numbered 1)/2)/3)"
        else:
            text = (
                f"{a['instruction']}\nInput:\nOutput: {a['output'][:80]}\n\n"
                f"{rng.randrange(2, 20)}. Instruction: {b['instruction']}"
            )
            variant = "leaked template"
        out.append(_row(text, "", a["output"], "merged_instructions", variant))

    # not targeted (reported, not held to the target): two plain instructions run together
    for _ in range(PER_CLASS // 2):
        a, b = rng.sample(without_input, 2)
        text = f"{a['instruction'].rstrip()} {b['instruction']}"
        out.append(_row(text, "", a["output"], UNTARGETED, "plain concatenation"))

    # empty or placeholder responses
    for i, g in enumerate(rng.sample(good, PER_CLASS)):
        filler = EMPTY_RESPONSES[i % len(EMPTY_RESPONSES)]
        out.append(_row(g["instruction"], g["input"], filler, "empty_response", repr(filler)))

    # code requests answered in prose
    for i, g in enumerate(rng.sample(prose, PER_CLASS)):
        template = CODE_TEMPLATES[i % len(CODE_TEMPLATES)]
        text = template.format(t=_lower_first(g["instruction"]))
        out.append(_row(text, g["input"], g["output"], "code_request_without_code", template))

    # image / audio / video generation requests
    for i in range(PER_CLASS):
        template = MEDIA_TEMPLATES[i % len(MEDIA_TEMPLATES)]
        text = template.format(s=SUBJECTS[i % len(SUBJECTS)])
        answer = rng.choice(prose)["output"]
        out.append(_row(text, "", answer, "media_generation_request", template))

    # no-input markers that the ingest does not normalise
    for i, g in enumerate(rng.sample(without_input, PER_CLASS)):
        marker = MARKERS[i % len(MARKERS)]
        if i % 5 == 4:
            row = _row(f"{g['instruction']} {marker}", "", g["output"], "no_input_marker", "in")
        else:
            row = _row(g["instruction"], marker, g["output"], "no_input_marker", repr(marker))
        out.append(row)

    # truncated responses: cut long prose mid-sentence
    long_prose = [g for g in good if len(g["output"]) >= 250 and g["output"].rstrip()[-1:] in ".!?"]
    for g in rng.sample(long_prose, min(PER_CLASS, len(long_prose))):
        text = g["output"]
        cuts = [
            m.start()
            for m in re.finditer(r"\s", text)
            if 0.4 * len(text) < m.start() < 0.9 * len(text)
            and text[: m.start()].rstrip()[-1:] not in tuple('.!?:;"”)]')
        ]
        out.append(
            _row(g["instruction"], g["input"], text[: rng.choice(cuts)], "truncated_response", "")
        )

    # symbol noise
    symbols = "!@#$%^&*()_+-=[]{}|;:,.<>/?~`"
    for g in rng.sample(good, PER_CLASS):
        noise = "".join(rng.choice(symbols + " " + "ab1") for _ in range(rng.randrange(40, 200)))
        out.append(_row(g["instruction"], g["input"], noise, "low_letter_ratio", ""))

    # a character repeated many times
    for g in rng.sample(good, PER_CLASS):
        text = g["output"]
        run_ = rng.choice("abcdefghijklmnopqrstuvwxyz!?0") * rng.randrange(20, 80)
        at = rng.randrange(len(text) + 1)
        out.append(
            _row(
                g["instruction"],
                g["input"],
                text[:at] + run_ + text[at:],
                "repeated_characters",
                "",
            )
        )

    # a repetition loop
    for g in rng.sample(prose, PER_CLASS):
        words = g["output"].split()[: rng.randrange(4, 10)]
        loop = " ".join(words * rng.randrange(8, 16))
        out.append(_row(g["instruction"], g["input"], loop, "repetitive_text", ""))

    # stray control characters
    for i, g in enumerate(rng.sample(good, PER_CLASS)):
        field = "output" if i % 2 else "instruction"
        text = g[field]
        at = rng.randrange(len(text) + 1)
        row = dict(g)
        row[field] = text[:at] + rng.choice(CONTROL) + text[at:]
        out.append(
            _row(row["instruction"], row["input"], row["output"], "control_characters", field)
        )

    # mojibake: UTF-8 typography read back as cp1252
    typographic = [g for g in good if re.search(r"[’“”—é]|'", g["output"])]
    for g in rng.sample(typographic, min(PER_CLASS, len(typographic))):
        text = g["output"].replace("'", "’")
        broken = text.encode("utf-8").decode("cp1252", errors="replace")
        out.append(_row(g["instruction"], g["input"], broken, "mojibake", ""))
    return out


def planted_label_conflicts(con: duckdb.DuckDBPyConnection, rng: random.Random) -> list[dict]:
    """Copies of labelled rows with another label and a case/space variant of the text."""
    rows = con.execute("SELECT prompt, response FROM raw_scrapes").fetchall()
    labels = sorted({label for _, label in rows})
    out = []
    for text, label in rng.sample(rows, min(PER_CLASS, len(rows))):
        other = rng.choice([x for x in labels if x != label])
        variant = "  " + text.upper() if rng.random() < 0.5 else text.lower() + " "
        out.append({"text": variant, "label": other})
    return out


# ----------------------------------------------------------------------------- evaluation


def false_positives(tmp: Path, good: list[dict]) -> dict:
    con = warehouse_with([write_jsonl(tmp, "good.jsonl", good)])
    fired = run(con, pair_rules.pair_rules())
    per_rule = Counter(rule for rules in fired.values() for rule in rules)
    examples = [
        (
            rules,
            con.execute("SELECT prompt FROM raw_scrapes WHERE record_id = ?", [rid]).fetchall()[0],
        )
        for rid, rules in fired.items()
    ]
    labelled = scalar(con, "SELECT count(*) FROM raw_scrapes")
    fired_labelled = run(con, pair_rules.pair_rules(labelled=True))
    return {
        "records": labelled,
        "dropped": len(fired),
        "per_rule": per_rule,
        "examples": examples,
        "dropped_labelled_rules": len(fired_labelled),
    }


def raw_catches(tmp: Path) -> dict:
    con = warehouse_with(common.alpaca_raw_files())
    fired = run(con, pair_rules.pair_rules())
    status = dict(
        con.execute(
            "SELECT record_id, json_extract_string(original, '$.status') FROM raw_scrapes"
        ).fetchall()
    )
    quarantined = scalar(con, "SELECT count(*) FROM quarantine")
    by_status = Counter(status.values())
    flagged_by_status = Counter(status[r] for r in fired)
    crosstab: dict[str, Counter] = defaultdict(Counter)
    for record_id, rules in fired.items():
        for rule in rules:
            crosstab[rule][status[record_id]] += 1
    ok_flagged = [r for r in fired if status[r] == "ok"]
    rng = random.Random(1)
    sample = []
    for record_id in rng.sample(sorted(ok_flagged), min(12, len(ok_flagged))):
        prompt, response = con.execute(
            "SELECT prompt, response FROM raw_scrapes WHERE record_id = ?", [record_id]
        ).fetchall()[0]
        sample.append((sorted(fired[record_id]), prompt, response))
    return {
        "records": len(status),
        "quarantined": quarantined,
        "by_status": by_status,
        "flagged_by_status": flagged_by_status,
        "crosstab": crosstab,
        "ok_sample": sample,
    }


def planted_catches(tmp: Path, good: list[dict], seeds: list[int]) -> dict:
    """Plant every class once per seed; count per class (and per seed) what the rules catch."""
    total: Counter = Counter()
    caught: Counter = Counter()
    per_seed: dict[str, list[float]] = defaultdict(list)
    by_rule: Counter = Counter()
    by_variant: dict[str, Counter] = defaultdict(Counter)
    missed: dict[str, Counter] = defaultdict(Counter)
    for seed in seeds:
        rows = plant(good, random.Random(seed))
        con = warehouse_with([write_jsonl(tmp, f"planted_{seed}.jsonl", rows)])
        fired = run(con, pair_rules.pair_rules())
        seed_total: Counter = Counter()
        seed_caught: Counter = Counter()
        for rid, klass, variant in con.execute(
            "SELECT record_id, json_extract_string(original, '$.planted'), "
            "json_extract_string(original, '$.variant') FROM raw_scrapes"
        ).fetchall():
            rules = fired.get(rid, set())
            by_rule.update((klass, r) for r in rules)
            # a class counts as caught when a rule of that class fires on the record
            target = CLASS_RULE.get(klass, klass)
            hit = any(r.startswith(target) for r in rules)
            seed_total[klass] += 1
            seed_caught[klass] += hit
            by_variant[klass][(variant, hit)] += 1
            if not hit:
                missed[klass][variant] += 1
        for klass, n in seed_total.items():
            total[klass] += n
            caught[klass] += seed_caught[klass]
            per_seed[klass].append(seed_caught[klass] / n)
    rng = random.Random(seeds[0])
    # labelled data (the bundled demo inbox): every member of a conflict is flagged
    inbox = sorted(SAMPLE_INBOX.iterdir())
    con = warehouse_with(inbox)
    natural = run(con, pair_rules.pair_rules(labelled=True))
    natural_conflicts = sum("conflicting_labels" in r for r in natural.values())
    planted_rows = planted_label_conflicts(con, rng)
    con = warehouse_with([*inbox, write_jsonl(tmp, "zz_conflicts.jsonl", planted_rows)])
    lab_fired = run(con, pair_rules.pair_rules(labelled=True))
    groups = con.sql(
        f"""SELECT {NORMALIZED_PROMPT_SQL} AS t,
                   count(DISTINCT lower(trim(response))) > 1 AS conflict,
                   list(record_id) AS ids
            FROM raw_scrapes GROUP BY t"""
    ).fetchall()
    members = [rid for _, conflict, ids in groups if conflict for rid in ids]
    clean = [rid for _, conflict, ids in groups if not conflict for rid in ids]
    total["conflicting_labels"] = len(members)
    planted_ids = {
        rid
        for (rid,) in con.execute(
            "SELECT record_id FROM raw_scrapes WHERE batch = 'zz_conflicts.jsonl'"
        ).fetchall()
    }
    caught["conflicting_labels"] = sum(
        "conflicting_labels" in lab_fired.get(r, ()) for r in members
    )
    reasons = con.execute(
        "SELECT reason FROM rejections WHERE rule = 'conflicting_labels' LIMIT 1"
    ).fetchall()
    per_seed["conflicting_labels"].append(caught["conflicting_labels"] / len(members))
    return {
        "seeds": seeds,
        "total": total,
        "caught": caught,
        "per_seed": per_seed,
        "by_rule": by_rule,
        "by_variant": by_variant,
        "missed": missed,
        "label_false_flags": sum(bool(lab_fired.get(r)) for r in clean),
        "label_clean": len(clean),
        "label_rows": len(clean) + len(members),
        "label_planted": len(planted_ids),
        "label_planted_caught": sum(
            "conflicting_labels" in lab_fired.get(r, ()) for r in planted_ids
        ),
        "label_natural": natural_conflicts,
        "label_natural_rules": Counter(r for rules in natural.values() for r in rules),
        "label_reason": reasons[0][0] if reasons else "",
    }


def throughput(tmp: Path, good: list[dict], rows: int, seed: int, parts: int = 1) -> dict:
    """Rows/s of the full pair rule set on ``rows`` records resampled from both data sets.

    With ``parts`` > 1 each record's prompt and response are ``parts`` resampled ones joined
    by blank lines (longer records, for comparison with document filters).
    """
    con = warehouse_with([write_jsonl(tmp, "tp_good.jsonl", good), *common.alpaca_raw_files()])
    base = scalar(con, "SELECT count(*) FROM raw_scrapes")
    con.execute(
        f"""CREATE TABLE resampled AS
            WITH numbered AS (
                SELECT *, row_number() OVER (ORDER BY record_id) - 1 AS k FROM raw_scrapes
            ), picks AS (
                SELECT i, j, hash(i * {int(parts)} + j + {int(seed)}) % {base} AS k
                FROM range({int(rows)}) r(i), range({int(parts)}) p(j)
            )
            SELECT 'tp:' || i AS record_id, 'tp:' || i AS example_id, 'tp.jsonl' AS batch,
                   NULL AS source_file, i AS line_no, any_value(s.source) AS source,
                   string_agg(s.prompt, chr(10) || chr(10) ORDER BY j) AS prompt,
                   string_agg(s.response, chr(10) || chr(10) ORDER BY j) AS response,
                   any_value(s.original) AS original, any_value(s.ingested_at) AS ingested_at
            FROM picks JOIN numbered s USING (k)
            GROUP BY i"""
    )
    con.execute("DELETE FROM raw_scrapes")
    con.execute("INSERT INTO raw_scrapes SELECT * FROM resampled ORDER BY line_no")
    con.execute("DROP TABLE resampled")
    chars = scalar(con, "SELECT avg(length(prompt) + length(response)) FROM raw_scrapes")
    threads = common.duckdb_threads(con)
    load = os.getloadavg()[0]

    with common.Timer() as annotate:
        flagged = annotators.store_annotations(con)
    non_ascii = scalar(
        con,
        "SELECT count(*) FROM raw_scrapes WHERE NOT regexp_full_match(prompt || response, "
        "'[\\x00-\\x7F]*')",
    )
    baseline_s = common.best_of(lambda: rule_engine.run_filters(con, [DEDUP]))
    full_s = common.best_of(lambda: rule_engine.run_filters(con, [*pair_rules.pair_rules(), DEDUP]))
    per_rule = {
        rule.name: common.best_of(
            lambda rule=rule: con.execute(
                f"SELECT count(*) FROM raw_scrapes WHERE {rule.condition}"
            ).fetchall()
        )
        for rule in pair_rules.pair_rules()
    }
    return {
        "rows": rows,
        "avg_chars": chars,
        "threads": threads,
        "annotate_s": annotate.wall,
        "mojibake_flagged": flagged,
        "non_ascii_rows": non_ascii,
        "baseline_s": baseline_s,
        "full_s": full_s,
        "per_rule_s": per_rule,
        "load": (load + os.getloadavg()[0]) / 2,
    }


# ----------------------------------------------------------------------------- report


def _pct(part: float, whole: float) -> str:
    return f"{100 * part / whole:.1f}%" if whole else "n/a"


def _short(text: str, n: int = 110) -> str:
    text = " ".join(str(text).split()).replace("|", "\\|")
    return text if len(text) <= n else text[: n - 1] + "…"


def report(fp: dict, raw: dict, planted: dict, tps: list[dict], args: argparse.Namespace) -> str:
    rules = pair_rules.pair_rules()
    lines = [
        "## Pair rules (instruction/response filters)",
        "",
        f"Reproduce: `{COMMAND} --rows {args.rows} --seed {args.seed} --seeds {args.seeds}` "
        f"(needs `../shared`; {platform.python_version()}, duckdb {duckdb.__version__}, "
        f"{os.cpu_count()} cores).",
        "",
        "### Rules",
        "",
        *md_table(
            ["rule", "reason"],
            [
                *[(f"`{r.name}`", r.reason) for r in rules],
                ("`conflicting_labels` (labelled data)", pair_rules.conflicting_labels().reason),
            ],
            spaced=True,
        ),
        "",
        "### (a) False positives on known-good data (self-instruct user-oriented)",
        "",
        f"{fp['dropped']} of {fp['records']} records dropped = "
        f"**{_pct(fp['dropped'], fp['records'])}** (target ≤ {FP_TARGET:.0%}). "
        f"With the labelled-data rule set: {fp['dropped_labelled_rules']} dropped. "
        "In-sample: the patterns were developed while looking at this set (and at alpaca-libre "
        "and planting seeds 7–11 and 100–111), so read the alpaca-libre review below as the "
        "out-of-sample check.",
        "",
        *md_table(
            ["rule", "good records it fires on"],
            [(f"`{r.name}`", fp["per_rule"].get(r.name, 0)) for r in rules],
            spaced=True,
        ),
    ]
    if fp["examples"]:
        lines += ["", "Dropped good records:", ""]
        lines += [f"- {sorted(r)}: {_short(p[0])}" for r, p in fp["examples"]]

    statuses = sorted(raw["by_status"], key=lambda s: -raw["by_status"][s])
    crosstab = {r.name: raw["crosstab"].get(r.name, Counter()) for r in rules}
    lines += [
        "",
        "### (b1) alpaca-libre raw generations vs their machine `status`",
        "",
        f"{raw['records']} records ingested ({raw['quarantined']} lines quarantined as malformed "
        "JSON). `status` is the generator's own verdict: `too similar` is a ROUGE dedup, "
        "`blacklist` a keyword list (image, graph, picture, file, map, draw, plot, video, audio, "
        "music, ...), `too short` includes the unparsed `ERROR` rows.",
        "",
        *md_table(
            ["status", "records", "flagged by any pair rule"],
            [
                (
                    s,
                    raw["by_status"][s],
                    f"{raw['flagged_by_status'][s]} "
                    f"({_pct(raw['flagged_by_status'][s], raw['by_status'][s])})",
                )
                for s in statuses
            ],
            spaced=True,
        ),
        "",
        "Rows each rule fires on, by status:",
        "",
        *md_table(
            ["rule", "total", *statuses],
            [
                (f"`{name}`", sum(counts.values()), *(counts.get(s, 0) for s in statuses))
                for name, counts in crosstab.items()
            ],
            spaced=True,
        ),
    ]
    lines += [
        "",
        MANUAL_REVIEW,
        "",
        "A random sample of rows flagged although their status is `ok` (judge them yourself):",
        "",
        *[
            f"- {rules_}: {_short(prompt, 120)} → {_short(response, 60)!s}"
            for rules_, prompt, response in raw["ok_sample"]
        ],
        "",
        "### (b2) Planted defects (known-good records with one defect each)",
        "",
        f"Seeds {', '.join(map(str, planted['seeds']))}: every class planted {PER_CLASS} times "
        "per seed into the good records, then ingested and filtered like real data.",
        "",
        *md_table(
            [
                "class",
                "planted",
                "caught",
                f"share (target ≥ {CATCH_TARGET:.0%})",
                "worst seed",
                "most missed variants",
            ],
            spaced=True,
        ),
    ]
    for klass in planted["total"]:
        total, caught = planted["total"][klass], planted["caught"][klass]
        missed = ", ".join(
            f"{_short(v, 40)} ({n})" for v, n in planted["missed"][klass].most_common(3)
        )
        if klass == UNTARGETED:
            mark = " (not targeted)"
        else:
            mark = "" if total and caught / total >= CATCH_TARGET else " ✗"
        worst = min(planted["per_seed"][klass])
        lines.append(
            common.md_row(
                [klass, total, caught, f"**{_pct(caught, total)}**{mark}", f"{worst:.0%}", missed]
            )
        )
    variants = planted["by_variant"]["missing_input"]
    lines += [
        "",
        "missing_input by variant: "
        + ", ".join(
            f"{v} {variants[(v, True)]}/{variants[(v, True)] + variants[(v, False)]}"
            for v in sorted({v for v, _ in variants})
        )
        + ".",
    ]
    others = Counter()
    for (klass, rule), n in planted["by_rule"].items():
        if not rule.startswith(CLASS_RULE.get(klass, klass)):
            others[f"{rule} on planted {klass}"] += n
    lines += [
        "",
        "Planting: missing input = an input the instruction refers to dropped, a bare link or a "
        "placeholder instead of the input, or a media reference; merged = numbered task lists "
        "and leaked `Instruction:`/`Output:` templates (two plain instructions run together are "
        "reported as `merged_plain_concatenation`: the rule leaves them alone on purpose, "
        "they look like one multi-sentence instruction); code = code-request templates over "
        "prose answers; media = draw/paint/generate-image/create-song templates; markers = "
        "no-input phrases the ingest does not normalise, as the input or at the end of the "
        "instruction; truncated = prose cut at a word boundary at 40–90%; noise = symbol "
        "strings; repeated = a 20–80 character run; loop = a phrase repeated 8–15 times; "
        "control = one C0/C1 character (not U+0085, see the note below); mojibake = UTF-8 "
        "typography read as cp1252.",
        "",
        "Labelled data (`labelled=True` rule set) on the bundled demo inbox "
        f"(`curation_assets/sample_data/inbox`, {planted['label_rows'] - planted['label_planted']}"
        f" rows): as shipped, {planted['label_natural']} rows are in label conflicts and the "
        "rules that fire are: "
        + (
            ", ".join(f"{k} ({n})" for k, n in planted["label_natural_rules"].most_common())
            or "none"
        )
        + f". Planted {planted['label_planted']} copies of demo texts (upper/lower case, extra "
        f"spaces) with another label: {planted['label_planted_caught']} flagged; all "
        f"{planted['total']['conflicting_labels']} members of conflict groups flagged: "
        f"{planted['caught']['conflicting_labels']}; rows outside any conflict flagged by any "
        f"rule: {planted['label_false_flags']} of {planted['label_clean']}. Example reason: "
        f"`{_short(planted['label_reason'], 100)}`.",
        "",
        "Other rules that also fired on planted rows: "
        + (", ".join(f"{k} ({n})" for k, n in others.most_common()) or "none"),
        "",
        "Note: a text containing U+0085 (NEL), U+2028 or U+2029 makes `intake.read_file` raise "
        "`ValueError` for the whole file (`intake.formats._originals` splits its JSON lines with "
        "`str.splitlines`, which also breaks on these characters), so such records never reach "
        "the rules.",
        "",
        "### (c) Throughput",
        "",
        f"Best of 3 runs of `rule_engine.run_filters` (which also writes `filter_flags`, "
        f"`filtered` and `rejections`), DuckDB threads={tps[0]['threads']} on "
        f"{os.cpu_count()} cores. Records resampled from both sets; the long ones join 4 "
        "resampled prompts and 4 responses each. The machine's 1-minute load average during "
        "the runs: " + ", ".join(f"{tp['load']:.1f}" for tp in tps) + " (other work on a shared "
        "machine slows these numbers; on an idle one they are faster).",
        "",
        *md_table(
            ["records", "mean chars (prompt + response)", "step", "seconds", "rows/s", "MB/s"],
            spaced=True,
        ),
    ]
    for tp in tps:
        mb = tp["rows"] * tp["avg_chars"] / 1e6
        steps = [
            ("one pass, dedup rule only (baseline)", tp["baseline_s"]),
            (f"one pass, all {len(rules)} pair rules + dedup", tp["full_s"]),
            (
                f"`annotators.store_annotations` ({tp['non_ascii_rows']:,} non-ASCII rows "
                f"reach ftfy, {tp['mojibake_flagged']:,} flagged)",
                tp["annotate_s"],
            ),
        ]
        lines += [
            common.md_row(
                [
                    f"{tp['rows']:,}",
                    f"{tp['avg_chars']:.0f}",
                    step,
                    f"{sec:.2f}",
                    f"{tp['rows'] / sec:,.0f}",
                    f"{mb / sec:.1f}",
                ]
            )
            for step, sec in steps
        ]
    lines += [
        "",
        "Seconds to evaluate each rule's condition alone over all rows "
        "(`SELECT count(*) ... WHERE condition`):",
        "",
        *md_table(
            ["rule", *(f"{tp['avg_chars']:.0f} chars" for tp in tps)],
            [
                (f"`{rule.name}`", *(f"{tp['per_rule_s'][rule.name]:.3f}" for tp in tps))
                for rule in sorted(rules, key=lambda r: -tps[0]["per_rule_s"][r.name])
            ],
            spaced=True,
        ),
        "",
    ]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = common.parser(__doc__)
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--seeds", type=int, default=5, help="planting rounds (seed, seed+1, ...)")
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT)
    args = parser.parse_args(argv)
    if common.missing(f"skipped: the shared data folder {SHARED} is not there", GOOD, RAW_DIR):
        return 0
    good = good_records()
    seeds = [args.seed + i for i in range(args.seeds)]
    with tempfile.TemporaryDirectory() as folder:
        tmp = Path(folder)
        fp = false_positives(tmp, good)
        raw = raw_catches(tmp)
        planted = planted_catches(tmp, good, seeds)
        tps = [
            throughput(tmp, good, args.rows, args.seed),
            throughput(tmp, good, args.rows, args.seed, parts=4),
        ]
    common.write_report(args.out, report(fp, raw, planted, tps, args))
    fp_ok = fp["dropped"] / fp["records"] <= FP_TARGET
    catch_ok = all(
        planted["caught"][k] / planted["total"][k] >= CATCH_TARGET
        for k in planted["total"]
        if k != UNTARGETED
    )
    print(f"\nfalse-positive target met: {fp_ok}; catch target met in every class: {catch_ok}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
