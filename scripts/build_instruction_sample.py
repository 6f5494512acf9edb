"""Build ``curation_assets/sample_data/instruction/``: a small real instruction scrape.

Reads the Alpaca-style machine-generated records of alpaca-libre (MIT,
``../shared/data/instructions/alpaca_libre_raw``), keeps a seeded subset of each of its
three files (source lines copied verbatim, so the real defects and the 14 malformed JSON
lines of v2 stay as they were), runs the product's own ingest, filter and review-queue code
on it with the instruction settings, and simulates the reviewers' and the expert's
decisions on the queues the pipeline builds. Writes the inbox, the decisions, the licence,
``manifest.json`` (the truth about every line, the settings, sha256 of every file, the
expected outcome) and ``README.md``.

Deterministic (seeded). Exits 0 with a "skipped" message when the source is absent.

    python scripts/build_instruction_sample.py
"""

import ast
import hashlib
import json
import operator
import random
import re
import shutil
import sys
import tempfile
import unicodedata
from collections import Counter, defaultdict
from datetime import UTC, datetime, timedelta
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
SOURCE = REPO.parent / "shared" / "data" / "instructions" / "alpaca_libre_raw"
OUT = REPO / "curation_assets" / "sample_data" / "instruction"
SEED = 17

#: source file -> (bundle file, clean records to draw)
FILES = {
    "alpaca_libre_tasks_v1.jsonl": ("2026-12-01_alpaca_libre_v1.jsonl", 215),
    "alpaca_libre_tasks_v2.jsonl": ("2026-12-08_alpaca_libre_v2.jsonl", 215),
    "alpaca_libre_tasks_v3.jsonl": ("2026-12-15_alpaca_libre_v3.jsonl", 125),
}
#: defect class -> records drawn per source file (all there are when fewer)
QUOTA = {
    "empty_output": 12,
    "merged_instructions": 12,
    "noinput_marker": 8,
    "url_in_input": 8,
    "image_reference": 6,
    "missing_input_text": 4,
    "code_request_without_code": 3,
}

#: clean records (no rule fires) that a reviewer rejects or corrects, per source file
FLAWED = 24

#: The settings the bundle is built for (``CURATION_*`` variables of the demo).
SETTINGS = {
    "task_type": "instruction",
    "labels": (),
    "coverage_sample_size": 250,
    "suspect_queue_size": 100,
    "reviews_required": 1,
    "validation_fraction": 0.2,
    "min_verified_examples": 150,
    "min_validation_examples": 20,
}

#: defect class -> (what it is, the rule that must catch it)
CLASSES = {
    "empty_output": ("the output is empty or only blank lines", "empty_response"),
    "merged_instructions": (
        "the generator's numbered template leaked: several Instruction:/Input:/Output: "
        "tasks in one record (instruction often 'ERROR')",
        "merged_instructions",
    ),
    "noinput_marker": (
        "a no-input marker variant ('<No input>', 'Noinput.', '<noinput>' in the output) "
        "left in the text",
        "no_input_marker",
    ),
    "url_in_input": (
        "the whole input is a URL standing in for an article the record does not hold",
        "missing_input_url",
    ),
    "image_reference": (
        "the instruction asks about a given image/picture/photo that a text record cannot hold",
        "missing_input_media",
    ),
    "missing_input_text": (
        "the instruction refers to a given paragraph/text/sentence but the input is empty",
        "missing_input_text",
    ),
    "code_request_without_code": (
        "'Write a program/function' answered with the program's output instead of code",
        "code_request_without_code",
    ),
    "exact_duplicate": (
        "same instruction, input and output as an earlier record (case/whitespace aside)",
        "exact_duplicate",
    ),
    "near_duplicate": (
        "word 5-gram Jaccard >= 0.9 with an earlier record (computed here exactly)",
        "near_duplicate",
    ),
    "malformed_json": ("a line that is not valid JSON (the source's v2 has 14)", None),
    "clean": ("none of the above (the source's status may still say 'too similar')", None),
}
NO_INPUT = ("", "<noinput>", "<no input>", "noinput", "none", "n/a", "null")

REVIEWERS = ("alice", "bob")
EXPERT = "dr_okafor"
DOUBLE_REVIEW_SHARE = 0.15
REVIEWER_ERROR_RATE = 0.03
COVERAGE_UNDECIDED = 8  # nobody decided: offered to a new reviewer and a new expert
COVERAGE_AWAITING = 4  # one reviewer, no expert: offered to a new expert
SUSPECT_WORKED = 70  # reviewers work the first 70 of the suspect queue
MEDIAN_SECONDS = {"accept": 14.0, "edit": 40.0, "reject": 10.0}
EXPERT_MEDIAN_SECONDS = {"accept": 20.0, "edit": 45.0, "reject": 14.0}

#: Responses corrected by hand (an expert's "edit"): source record -> corrected output.
HAND_FIXES = {
    ("Describe a recipe.", "Spaghetti Carbonara"): (
        "Spaghetti Carbonara is a classic Italian dish made with spaghetti, eggs, pecorino "
        "romano cheese, and guanciale. Cook the spaghetti, fry the guanciale until crisp, "
        "then toss the hot pasta off the heat with the eggs beaten with the cheese and plenty "
        "of black pepper, so that the eggs make a creamy sauce instead of scrambling."
    ),
    ("Explain Pythagoras' Theorem.", ""): (
        "Pythagoras' Theorem states that in a right-angled triangle, the square of the length "
        "of the hypotenuse (the side opposite the right angle) is equal to the sum of the "
        "squares of the lengths of the other two sides: a^2 + b^2 = c^2."
    ),
    ("Write a haiku.", "Cherry Blossoms"): (
        "Pink petals flutter\nSoft on the warm spring breeze now\nBlossoms kiss the ground"
    ),
    ("Generate a haiku poem about nature.", ""): (
        "The wind in the trees\nWhispers to the quiet stream\nLeaves drift to the earth"
    ),
}


# --- reading and classifying the source ---------------------------------------------------


def words(text: str) -> list[str]:
    return re.findall(r"\w+", text.lower())


def canonical(rec: dict) -> tuple[str, str]:
    """prompt/response as the ingest makes them (instruction + blank line + input)."""
    instruction, context = str(rec.get("instruction") or ""), rec.get("input")
    context = "" if context is None else str(context)
    prompt = instruction
    if context.strip().lower() not in NO_INPUT:
        prompt = instruction + "\n\n" + context
    return prompt, str(rec.get("output") if rec.get("output") is not None else "")


def norm(text: str) -> str:
    """The product's identity normalization (``records.NORMALIZE_SQL``): NFC, spaces
    trimmed, whitespace runs collapsed, lower case. DuckDB's ``trim`` strips spaces only,
    so a trailing newline survives as one space: "Tokyo." and "Tokyo.\\n" differ."""
    return re.sub(r"\s+", " ", unicodedata.normalize("NFC", text).strip(" ")).lower()


def defect(rec: dict) -> str | None:
    """The source-level defect of a record, found with simple checks of its own fields
    (independent of the product's rules, which the build then checks against)."""
    instruction = str(rec.get("instruction") or "")
    context = str(rec.get("input") or "")
    output = str(rec.get("output") or "")
    both = instruction + "\n" + context + "\n" + output
    # (the source also has "Instructions:" templates, which no rule catches: the records
    # holding them have empty outputs and count as empty_output here)
    if re.search(r"(?im)^\s*(#\s*task\s*\d+|instruction\s*:)", both):
        return "merged_instructions"
    if not output.strip():
        return "empty_output"
    bare = re.sub(r"[\W_]+", "", context.lower())
    if (bare in ("noinput", "none") and context.strip().lower() not in NO_INPUT) or re.search(
        r"(?i)<\s*no\s*input\s*>", instruction + output
    ):
        return "noinput_marker"
    if re.fullmatch(r"\s*https?://\S+\s*", context):
        return "url_in_input"
    empty_input = context.strip().lower() in NO_INPUT
    if re.search(
        r"(?i)\b(this|the given|the following|following|attached)\s+"
        r"(image|picture|photo|photograph)\b",
        instruction,
    ) and not re.search(r"(?i)\b(image|picture|photo) of\b", instruction):
        return "image_reference"
    if empty_input and re.search(
        r"(?i)\b(the )?(given|following) (paragraph|article|text|passage|sentence)\.?$",
        instruction.strip(),
    ):
        return "missing_input_text"
    if re.match(r"(?i)\s*write an? (program|function|script)\b", instruction) and not re.search(
        r"def |function|return|[{};=]|\bfor\b|print|import", output
    ):
        return "code_request_without_code"
    return None


def read_source(name: str) -> list[dict]:
    """Every line of a source file: text, 1-based line number, parsed record or None."""
    rows = []
    with (SOURCE / name).open(encoding="utf-8") as handle:
        for i, line in enumerate(handle, start=1):
            text = line.rstrip("\n")
            try:
                rec = json.loads(text)
            except json.JSONDecodeError:
                rec = None
            cls = "malformed_json" if rec is None else defect(rec)
            rows.append({"source": name, "source_line": i, "text": text, "rec": rec, "cls": cls})
    return rows


def shingles(rec: dict) -> set[tuple[str, ...]]:
    w = words(" ".join(canonical(rec)))
    return {tuple(w[i : i + 5]) for i in range(max(len(w) - 4, 1))}


def select(rng: random.Random, sources: dict[str, list[dict]]) -> dict[str, list[dict]]:
    """Per source file: every malformed line, the defect quotas, duplicate pairs of the
    source, and clean records; kept in source order (the first copy comes first)."""
    chosen: dict[str, list[dict]] = {}
    seen_exact: dict[tuple[str, str], dict] = {}
    for name, rows in sources.items():
        picked = [r for r in rows if r["cls"] == "malformed_json"]
        by_cls = defaultdict(list)
        for r in rows:
            by_cls[r["cls"]].append(r)
        for cls, n in QUOTA.items():
            pool = by_cls.get(cls, [])
            picked += rng.sample(pool, min(n, len(pool)))
        clean = [
            r for r in by_cls[None] if r["rec"]["status"] in ("ok", "too similar", "blacklist")
        ]
        # the source's own exact duplicates (across and within files)
        dup_pairs = []
        for r in rows:
            if r["rec"] is None or r["cls"] is not None:
                continue
            key = tuple(norm(t) for t in canonical(r["rec"]))
            if key in seen_exact:
                dup_pairs.append((seen_exact[key], r))
            else:
                seen_exact[key] = r
        for first, second in rng.sample(dup_pairs, min(4, len(dup_pairs))):
            picked.append(second)
            (picked if first["source"] == name else chosen[first["source"]]).append(first)
        failed = [r for r in by_cls[None] if r["rec"]["status"] not in ("ok", "too similar")]
        picked += rng.sample(failed, min(12, len(failed)))
        # records the filters keep that a reviewer must reject or correct
        flawed = [r for r in by_cls[None] if right_decision(r["rec"])[0] != "accept"]
        picked += rng.sample(flawed, min(FLAWED, len(flawed)))
        ids = {id(r) for r in picked}
        rest = [r for r in clean if id(r) not in ids]
        picked += rng.sample(rest, FILES[name][1])
        chosen[name] = picked
    for name in chosen:  # one copy of each line, in source order (first copies first)
        unique = {id(r): r for r in chosen[name]}.values()
        chosen[name] = sorted(unique, key=lambda r: r["source_line"])
    return chosen


def classify_duplicates(chosen: dict[str, list[dict]]) -> None:
    """Mark exact and near duplicates of an earlier bundled record (in ingest order)."""
    first: dict[tuple[str, str], dict] = {}
    earlier: list[tuple[dict, set]] = []
    for name in FILES:
        for r in chosen[name]:
            if r["rec"] is None:
                continue
            key = tuple(norm(t) for t in canonical(r["rec"]))
            sh = shingles(r["rec"])
            r["dup_of"] = None
            if r["cls"] is None and key in first:
                r["cls"], r["dup_of"] = "exact_duplicate", first[key]
            elif r["cls"] is None:
                for other, osh in earlier:
                    jac = len(sh & osh) / len(sh | osh)
                    if jac >= 0.9 and key != tuple(norm(t) for t in canonical(other["rec"])):
                        r["cls"], r["dup_of"] = "near_duplicate", other
                        r["jaccard"] = round(jac, 3)
                        break
            first.setdefault(key, r)
            if r["cls"] is None:
                earlier.append((r, sh))


# --- the right decision for a record the filter keeps ---------------------------------------

_OPS = {
    ast.Add: operator.add,
    ast.Sub: operator.sub,
    ast.Mult: operator.mul,
    ast.Div: operator.truediv,
}


def _arith(expr: str) -> float | None:
    text = expr.replace("÷", "/").replace("×", "*").strip().rstrip("=").strip()
    text = re.sub(r"(?<=\d)\s*x\s*(?=[\d(])", "*", text)
    if not re.fullmatch(r"[\d\s+\-*/().]+", text) or not re.search(r"\d\s*[-+*/]\s*\d", text):
        return None

    def ev(node):
        if isinstance(node, ast.Expression):
            return ev(node.body)
        if isinstance(node, ast.Constant) and isinstance(node.value, int | float):
            return node.value
        if isinstance(node, ast.BinOp) and type(node.op) in _OPS:
            return _OPS[type(node.op)](ev(node.left), ev(node.right))
        if isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.USub):
            return -ev(node.operand)
        raise ValueError(node)

    try:
        return float(ev(ast.parse(text, mode="eval")))
    except (ValueError, SyntaxError, ZeroDivisionError):
        return None


def right_decision(rec: dict) -> tuple[str, str | None, str | None]:
    """What a careful reviewer decides: (decision, corrected response, note)."""
    instruction = str(rec.get("instruction") or "")
    context = str(rec.get("input") or "")
    output = str(rec.get("output") or "").strip()
    fix = HAND_FIXES.get((instruction, context.strip() if context.strip() else ""))
    if fix is not None and not output.endswith(fix[-20:]):
        return "edit", fix, "incomplete response, completed"
    if re.search(r"(?i)\b(solve|math|equation|calculate|answer)\b", instruction) or re.search(
        r"(?i)\bsimplify the following math", instruction
    ):
        value = _arith(context) if context.strip() else None
        got = re.fullmatch(r"(-?\d+(?:\.\d+)?)\.?", output)
        if value is not None and got and abs(float(got[1]) - value) > 1e-9:
            right = str(int(value)) if value == int(value) else f"{value:g}"
            return "edit", right, "wrong answer, corrected"
    if re.match(r"[ \t]*\n", str(rec.get("output") or "")):
        return "edit", output, "blank line before the response removed"
    status = rec.get("status")
    if status == "too short" and re.search(r"(?i)(\band|\bor|\bthe|\bof|\bwith|,)$", output):
        return "reject", None, "truncated response"
    if re.search(r"(?i)\bhaiku\b", instruction) and output.count("\n") == 0:
        return "reject", None, "incomplete haiku (one line)"
    if (
        re.search(
            r"(?i)\b(the|this|that|your|a given)\s+(picture|image|photo|video|drawing|painting|"
            r"diagram|chart|graph|youtube video)\b",
            instruction,
        )
        and not context.strip()
    ):
        return "reject", None, "refers to media the record does not hold"
    return "accept", None, None


# --- simulated people ----------------------------------------------------------------------


def _seconds(rng: random.Random, median: float) -> float:
    return round(min(60.0, max(5.0, rng.lognormvariate(0, 0.45) * median)), 1)


class Clock:
    def __init__(self, start: datetime) -> None:
        self.now = start

    def tick(self, rng: random.Random, seconds: float) -> datetime:
        at = self.now
        self.now += timedelta(seconds=seconds + rng.uniform(2, 12))
        if self.now.hour >= 17:
            self.now = (self.now + timedelta(days=1)).replace(hour=9, minute=rng.randint(0, 40))
        return at


def _wrong(rng: random.Random, right: tuple[str, str | None, str | None], row: dict):
    """A reviewer's mistake: accept what should go, reject what is fine, miss a fix."""
    word = right[0]
    if word == "accept":
        return "reject", None, "looks wrong"
    return "accept", None, None


def simulate(rng: random.Random, coverage: list[dict], suspect: list[dict]) -> tuple[list, dict]:
    """alice and bob take turns down the coverage sample, then the first
    ``SUSPECT_WORKED`` of the suspect queue; ``DOUBLE_REVIEW_SHARE`` of the coverage is
    decided by both; about ``REVIEWER_ERROR_RATE`` of their votes are wrong. dr_okafor
    (always right) settles every disagreement, then decides the coverage sample; the
    last coverage items are left open for whoever tries the demo."""
    clocks = {
        who: Clock(datetime(2026, 12, 16, 9, 5 + 7 * i, tzinfo=UTC))
        for i, who in enumerate(REVIEWERS)
    }
    undecided = coverage[-COVERAGE_UNDECIDED:]
    awaiting = coverage[-(COVERAGE_UNDECIDED + COVERAGE_AWAITING) : -COVERAGE_UNDECIDED]
    worked = coverage[: -(COVERAGE_UNDECIDED + COVERAGE_AWAITING)]
    out, votes, mistakes = [], defaultdict(list), 0
    turn = 0
    for queue, items in (("coverage", worked + awaiting), ("suspect", suspect[:SUSPECT_WORKED])):
        for row in items:
            who = REVIEWERS[turn % 2]
            turn += 1
            people = [who]
            if queue == "coverage" and row not in awaiting and rng.random() < DOUBLE_REVIEW_SHARE:
                people.append(REVIEWERS[turn % 2])
            for person in people:
                word = row["right"]
                if rng.random() < REVIEWER_ERROR_RATE:
                    word, mistakes = _wrong(rng, word, row), mistakes + 1
                secs = _seconds(rng, MEDIAN_SECONDS[word[0]])
                at = clocks[person].tick(rng, secs)
                votes[row["example_id"]].append(word[0])
                out.append(_decision(row, person, "reviewer", word, at, secs))
    last = max(d["decided_at"] for d in out)
    expert_clock = Clock(datetime.fromisoformat(last) + timedelta(hours=2))
    disputed = [eid for eid, v in votes.items() if len(set(v)) > 1]
    by_id = {r["example_id"]: r for r in coverage + suspect}
    expert_rows = [by_id[e] for e in disputed] + [
        r for r in worked if r["example_id"] not in set(disputed)
    ]
    for row in expert_rows:
        word = row["right"]
        secs = _seconds(rng, EXPERT_MEDIAN_SECONDS[word[0]])
        at = expert_clock.tick(rng, secs)
        out.append(_decision(row, EXPERT, "expert", word, at, secs))
    info = {
        "reviewer_votes": sum(len(v) for v in votes.values()),
        "reviewer_mistakes": mistakes,
        "double_reviewed": sum(len(v) > 1 for v in votes.values()),
        "disagreements_settled_by_expert": len(disputed),
        "left_open": {
            "coverage_undecided": [_open(r) for r in undecided],
            "coverage_awaiting_expert": [_open(r) for r in awaiting],
            "suspect_undecided": len(suspect) - min(SUSPECT_WORKED, len(suspect)),
        },
    }
    return out, info


def _open(row: dict) -> dict:
    return {
        "example_id": row["example_id"],
        "record": row["record_id"],
        "right_decision": row["right"][0],
    }


def _decision(row: dict, who: str, role: str, word, at: datetime, secs: float) -> dict:
    return {
        "example_id": row["example_id"],
        "reviewer": who,
        "role": role,
        "decision": word[0],
        "corrected_response": word[1],
        "note": word[2],
        "decided_at": at.isoformat(timespec="seconds"),
        "seconds_spent": secs,
    }


# --- the product's own stages --------------------------------------------------------------


def settings_for(data_dir: Path, inbox: Path):
    from curation_assets.config import Settings

    return Settings(data_dir=data_dir, inbox_dir=inbox, **SETTINGS)


def run_pipeline(settings, decisions_file: Path | None):
    """Ingest, filter, queue (and with decisions: review and verify) with the product's
    core functions, as the assets of a first demo run do; returns the open connection."""
    import duckdb

    from curation_assets.curation.filtering import filter_stage
    from curation_assets.curation.ingest import intake
    from curation_assets.curation.review import decisions, review_stage
    from curation_assets.defs.filtering.assets import filter_config
    from curation_assets.defs.review.assets import queue_config

    settings.data_dir.mkdir(parents=True, exist_ok=True)
    con = duckdb.connect(str(settings.warehouse))
    intake.store_inbox(
        con,
        settings.inbox,
        settings.column_mapping,
        settings.max_record_bytes,
        datetime(2026, 12, 15, 2, 0),
    )
    filter_stage.run_stage(con, filter_config(settings))
    if decisions_file is not None:
        decisions.import_file(decisions_file, settings.decision_store)
    store = decisions.load_all(settings.decision_store)
    review_stage.build_review_queue(con, store, queue_config(settings), ())
    if decisions_file is not None:
        review_stage.build_reviewed(con, store, settings.reviews_required, ())
        review_stage.build_verified(con, store, settings.validation_fraction)
    return con


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def main() -> int:
    if not SOURCE.is_dir() or not all((SOURCE / name).is_file() for name in FILES):
        print(f"skipped: {SOURCE} is absent (the shared data exists on dev machines only)")
        return 0
    sys.path.insert(0, str(REPO))
    rng = random.Random(SEED)
    sources = {name: read_source(name) for name in FILES}
    chosen = select(rng, sources)
    classify_duplicates(chosen)

    if OUT.exists():
        shutil.rmtree(OUT)
    (OUT / "inbox").mkdir(parents=True)
    (OUT / "decisions").mkdir()
    rows = []
    for name, (target, _) in FILES.items():
        lines = []
        for i, r in enumerate(chosen[name], start=1):
            r.update(file=target, line_no=i, record_id=f"{target}:{i}")
            lines.append(r["text"])
            rows.append(r)
        (OUT / "inbox" / target).write_text("\n".join(lines) + "\n", encoding="utf-8")

    with tempfile.TemporaryDirectory() as tmp:
        settings = settings_for(Path(tmp) / "data", OUT / "inbox")
        con = run_pipeline(settings, None)
        ids = dict(con.execute("SELECT record_id, example_id FROM raw_scrapes").fetchall())
        fired = defaultdict(set)
        for rid, rule in con.execute("SELECT record_id, rule FROM rejections").fetchall():
            fired[rid].add(rule)
        kept = {rid for (rid,) in con.execute("SELECT record_id FROM filtered").fetchall()}
        quarantined = {
            f"{Path(f).name}:{n}"
            for f, n in con.execute("SELECT source_file, line_no FROM quarantine").fetchall()
        }
        queue = con.execute(
            "SELECT q.queue, q.example_id FROM review_queue q ORDER BY q.queue, q.priority"
        ).fetchall()
        rejected_by_rule = dict(
            con.execute("SELECT rule, count(*) FROM rejections GROUP BY 1 ORDER BY 1").fetchall()
        )
        con.close()

    # every defect class is caught by its rule; malformed lines are quarantined
    missed = []
    for r in rows:
        rule = CLASSES[r["cls"] or "clean"][1]
        r["example_id"] = ids.get(r["record_id"])
        r["rules"] = sorted(fired.get(r["record_id"], ()))
        if r["cls"] == "malformed_json":
            assert r["record_id"] in quarantined, r["record_id"]
        elif rule is not None and rule not in r["rules"]:
            missed.append((r["record_id"], r["cls"], r["rules"], r["text"][:160]))
    assert not missed, "\n".join(map(str, missed))
    by_eid = {r["example_id"]: r for r in rows if r["record_id"] in kept}
    for r in by_eid.values():
        r["right"] = right_decision(r["rec"])
    coverage = [by_eid[e] for q, e in queue if q == "coverage"]
    suspect = [by_eid[e] for q, e in queue if q == "suspect"]
    made, people = simulate(rng, coverage, suspect)
    dec_path = OUT / "decisions" / "review_decisions.jsonl"
    dec_path.write_text(
        "".join(json.dumps(d, ensure_ascii=False) + "\n" for d in made), encoding="utf-8"
    )

    with tempfile.TemporaryDirectory() as tmp:
        settings = settings_for(Path(tmp) / "data", OUT / "inbox")
        con = run_pipeline(settings, dec_path)

        def scalar(sql: str):
            return con.execute(sql).fetchall()[0][0]

        outcome = {
            "reviewed": scalar("SELECT count(*) FROM reviewed"),
            "verified": scalar("SELECT count(*) FROM verified"),
            "verified_corrected": scalar("SELECT count(*) FROM verified WHERE edited"),
            "verified_splits": dict(
                con.execute("SELECT split, count(*) FROM verified GROUP BY 1 ORDER BY 1").fetchall()
            ),
            "review_queue": dict(
                con.execute(
                    "SELECT queue || ':' || review_status, count(*) FROM review_queue "
                    "GROUP BY 1 ORDER BY 1"
                ).fetchall()
            ),
        }
        con.close()
    assert outcome["verified"] >= SETTINGS["min_verified_examples"], outcome
    assert outcome["verified_splits"].get("validation", 0) >= SETTINGS["min_validation_examples"]

    (OUT / "LICENSE-alpaca-libre").write_text(licence_text(), encoding="utf-8")
    files = {}
    for name, (target, _) in FILES.items():
        mine = [r for r in rows if r["file"] == target]
        counts = Counter(r["cls"] or "clean" for r in mine)
        files[target] = {
            "source": name,
            "units": len(mine),
            "expected_records": sum(r["cls"] != "malformed_json" for r in mine),
            "expected_quarantined": counts["malformed_json"],
            "expected_kept": sum(r["record_id"] in kept for r in mine),
            "class_counts": dict(sorted(counts.items())),
            "source_status": dict(
                sorted(Counter(r["rec"]["status"] for r in mine if r["rec"]).items())
            ),
        }
    right = Counter(r["right"][0] for r in by_eid.values())
    info = {
        "description": (
            "Real noisy instruction scrape (alpaca-libre, machine-generated Alpaca-style "
            "records, rejects included) with the truth about every line; built by "
            "scripts/build_instruction_sample.py."
        ),
        "seed": SEED,
        "task": {
            "type": "instruction",
            "prompt": "instruction + blank line + input",
            "response": "output",
        },
        "settings": {k: list(v) if isinstance(v, tuple) else v for k, v in SETTINGS.items()},
        "env": demo_env(),
        "column_mapping": "none needed: instruction -> prompt, input -> appended to the "
        "prompt after a blank line (no-input markers count as empty), output -> response; "
        "status/similarity/other stay in `original`",
        "source": {
            "name": "alpaca-libre",
            "license": "MIT",
            "files": json.loads((SOURCE / "SOURCES.json").read_text(encoding="utf-8")),
        },
        "classes": {k: {"what": v[0], "rule": v[1]} for k, v in CLASSES.items()},
        "files": files,
        "sha256": {
            str(p.relative_to(OUT)): sha256(p)
            for p in sorted(OUT.rglob("*"))
            if p.is_file() and p.name not in ("manifest.json", "README.md")
        },
        "totals": {
            "units": len(rows),
            "class_counts": dict(sorted(Counter(r["cls"] or "clean" for r in rows).items())),
        },
        "expected_filtered": {
            "kept": len(kept),
            "rejected_records": sum(bool(r["rules"]) for r in rows),
            "quarantined": len(quarantined),
            "rejections_by_rule": rejected_by_rule,
        },
        "review_queues": {
            "coverage": len(coverage),
            "suspect": len(suspect),
            "right_decisions_of_kept": dict(sorted(right.items())),
        },
        "decisions": {
            "file": "decisions/review_decisions.jsonl",
            "count": len(made),
            "by_role_decision": dict(
                sorted(Counter(f"{d['role']}:{d['decision']}" for d in made).items())
            ),
            "by_person": dict(sorted(Counter(d["reviewer"] for d in made).items())),
            **people,
        },
        "expected_pipeline": outcome,
        "rows": [
            {
                "record": r["record_id"],
                "source": f"{r['source']}:{r['source_line']}",
                "class": r["cls"] or "clean",
                "example_id": r["example_id"],
                **({"dup_of": r["dup_of"]["record_id"]} if r.get("dup_of") else {}),
                **({"rules": r["rules"]} if r["rules"] else {}),
                **({"right": r["right"][0]} if "right" in r else {}),
            }
            for r in rows
        ],
    }
    (OUT / "manifest.json").write_text(json.dumps(info, indent=1) + "\n", encoding="utf-8")
    (OUT / "README.md").write_text(readme(info), encoding="utf-8")
    print(
        f"wrote {OUT.relative_to(REPO)}: {len(rows)} lines, {len(made)} decisions, "
        f"{outcome['verified']} verified"
    )
    return 0


def licence_text() -> str:
    lines = [
        (SOURCE / "SOURCE_LICENSE").read_text(encoding="utf-8").rstrip(),
        "",
        "---",
        "The files of inbox/ are lines of these source files (SOURCES.json of the shared",
        "data folder: repository, commit, path, size and sha256):",
        "",
    ]
    for entry in json.loads((SOURCE / "SOURCES.json").read_text(encoding="utf-8")):
        lines.append(json.dumps(entry, sort_keys=True))
    return "\n".join(lines) + "\n"


def demo_env() -> dict[str, str]:
    env = {}
    for key, value in SETTINGS.items():
        text = ",".join(value) if isinstance(value, tuple) else str(value)
        env[f"CURATION_{key.upper()}"] = text
    return env


def readme(info: dict) -> str:
    classes = [c for c in CLASSES]
    head = "| file | lines | " + " | ".join(classes) + " |"
    sep = "|---|---:|" + "---:|" * len(classes)
    body = []
    for name, f in info["files"].items():
        body.append(
            f"| `{name}` | {f['units']} | "
            + " | ".join(str(f["class_counts"].get(c, 0)) for c in classes)
            + " |"
        )
    t = info["totals"]
    body.append(
        f"| total | {t['units']} | "
        + " | ".join(str(t["class_counts"].get(c, 0)) for c in classes)
        + " |"
    )
    rules = "\n".join(
        f"- `{k}` -> `{v['rule']}`: {v['what']}" for k, v in info["classes"].items() if v["rule"]
    )
    d, e, q = info["decisions"], info["expected_pipeline"], info["expected_filtered"]
    env = " ".join(f"{k}={v}" for k, v in info["env"].items())
    return (
        f"""# Bundled instruction demo data

A small real instruction "scrape" for the curation_assets demo with
`CURATION_TASK_TYPE=instruction`: {t["units"]} lines of alpaca-libre, machine-generated
Alpaca-style records whose generator kept its rejects (the source's `status` is its own
machine verdict: ok, too similar, blacklist, too short, error...). The lines are copied
verbatim from the source, defects included; nothing was injected.

| file | what |
|---|---|
"""
        + "\n".join(
            f"| `inbox/{n}` | lines of `{f['source']}` (JSON Lines: `instruction`, `input`, "
            f"`output`, `status`, ...) |"
            for n, f in info["files"].items()
        )
        + f"""
| `decisions/review_decisions.jsonl` | decisions of reviewers alice and bob, expert dr_okafor |
| `manifest.json` | the truth: settings, sha256 of every file, class of every line, outcome |
| `LICENSE-alpaca-libre` | the source's MIT licence and its provenance lines |

{head}
{sep}
{chr(10).join(body)}

No column mapping is needed: the ingest maps `instruction` to the prompt, appends `input`
after a blank line (the no-input markers `<noinput>`, `none`, `n/a`... count as empty) and
maps `output` to the response; `status` and the other fields stay in `original`.

Defect classes (found by the build script with simple checks of the source fields) and the
rule that must catch each:

{rules}
- `malformed_json`: quarantined at ingest.

After filtering {q["kept"]} examples remain ({q["rejected_records"]} records rejected,
{q["quarantined"]} lines quarantined). The review queue holds a coverage sample of
{info["review_queues"]["coverage"]} and a suspect queue of {info["review_queues"]["suspect"]}.

{d["count"]} decisions ({", ".join(f"{k} {v}" for k, v in d["by_role_decision"].items())}):
the reviewers take turns down the coverage sample and the first {SUSPECT_WORKED} suspects
(about 3% of their votes wrong, some examples reviewed by both), the expert settles every
disagreement and decides the coverage sample. The decisions follow real properties of the
records the filters keep: a response that stops mid-sentence, a one-line haiku or a task
about a picture that is not there is rejected; a wrong arithmetic answer is corrected and
a few incomplete responses were completed by hand (an `edit` carries the corrected
response); the rest is accepted. {COVERAGE_UNDECIDED} coverage items are left undecided
and {COVERAGE_AWAITING} wait for an expert.

With the settings below the pipeline makes {e["reviewed"]} `reviewed` and {e["verified"]}
`verified` examples ({e["verified_corrected"]} corrected; splits {e["verified_splits"]}).

## Run it

    {env} \\
      CURATION_INBOX_DIR=curation_assets/sample_data/instruction/inbox

then import `decisions/review_decisions.jsonl` (`curation decisions import`) and run the
graph.

## Source and licence

- **alpaca-libre**: Maciej Obarski, <https://github.com/mobarski/alpaca-libre>
  (`data/output/work/alpaca_libre_tasks_v{{1,2,3}}.jsonl` at commit 9024e0c), MIT
  (`LICENSE-alpaca-libre`, with the provenance lines).

## Rebuild

With `../shared/data/instructions/alpaca_libre_raw` present (dev machines only):

    python scripts/build_instruction_sample.py

Deterministic (seeded). Rerun it when the filter rules or queue settings change what the
pipeline keeps or queues: the decisions follow the queues.
"""
    )


if __name__ == "__main__":
    raise SystemExit(main())
