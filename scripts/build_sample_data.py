"""Build the bundled demo data in ``curation_assets/sample_data/`` (deterministic, seeded).

Reads banking77 (10 confusable card and transfer intents) and CLINC150 out-of-scope
messages from the shared data folder, which exists on dev machines only, and writes a noisy
"scrape" split over three inbox files, the decisions of two reviewers and an expert, and a
manifest holding the truth about every noisy row. The output is committed: the product
never reads the shared folder at run time.

The decisions follow the pipeline's real review queues: the script ingests and filters the
inbox files and builds the review queue with the product's own core functions (on a
temporary DuckDB warehouse, default settings, no Dagster run), simulates the people working
those queues, then runs the review stages on the decisions and records the outcome
(reviewed, verified, agreement, expert time) in the manifest. Rerun it whenever the filter
rules or the queue settings change what the pipeline queues.

    python scripts/build_sample_data.py [--shared ../shared/data] [--out DIR]
"""

import argparse
import csv
import io
import json
import math
import random
import re
import shutil
import tempfile
import unicodedata
from collections import Counter, defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

import duckdb
import pyarrow as pa
import pyarrow.parquet as pq

from curation_assets.config import Settings
from curation_assets.curation.filtering import filter_stage
from curation_assets.curation.ingest import intake
from curation_assets.curation.records import example_id
from curation_assets.curation.review import decisions, review_stage

# The Settings -> stage config mappings the assets use (plain functions; importing them
# loads Dagster but runs nothing in it): the queue computed here is the pipeline's.
from curation_assets.defs.filtering.assets import filter_config
from curation_assets.defs.review.assets import queue_config
from curation_assets.review_app import store as app_store

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_SHARED = ROOT.parent / "shared" / "data"
DEFAULT_OUT = ROOT / "curation_assets" / "sample_data"
SEED = 77

LABELS = (
    "card_arrival",
    "card_delivery_estimate",
    "card_not_working",
    "lost_or_stolen_card",
    "compromised_card",
    "declined_card_payment",
    "pending_card_payment",
    "transfer_not_received_by_recipient",
    "pending_transfer",
    "top_up_failed",
)
#: Which wrong label a careless labeller picks for each intent.
CONFUSABLE = {
    "card_arrival": ("card_delivery_estimate",),
    "card_delivery_estimate": ("card_arrival",),
    "card_not_working": ("declined_card_payment",),
    "lost_or_stolen_card": ("compromised_card",),
    "compromised_card": ("lost_or_stolen_card",),
    "declined_card_payment": ("pending_card_payment", "card_not_working"),
    "pending_card_payment": ("declined_card_payment",),
    "transfer_not_received_by_recipient": ("pending_transfer",),
    "pending_transfer": ("transfer_not_received_by_recipient", "top_up_failed"),
    "top_up_failed": ("pending_transfer",),
}
#: What each intent is about, in the words a reviewer would write in a note.
ABOUT = {
    "card_arrival": "the card was ordered and has not arrived",
    "card_delivery_estimate": "asks how long card delivery takes",
    "card_not_working": "the card itself does not work",
    "lost_or_stolen_card": "the card was lost or stolen",
    "compromised_card": "card details were used by someone else",
    "declined_card_payment": "a card payment was declined",
    "pending_card_payment": "a card payment is still pending",
    "transfer_not_received_by_recipient": "the recipient has not got the transfer",
    "pending_transfer": "the transfer is still pending",
    "top_up_failed": "a top-up failed",
}

JSONL, CSV, PARQUET = (
    "2026-11-01_support_tickets.jsonl",
    "2026-11-08_helpdesk_export.csv",
    "2026-11-15_chat_logs.parquet",
)
FILES = (JSONL, CSV, PARQUET)
FILE_SHARES = (0.40, 0.30, 0.30)
SOURCES = {JSONL: ("email", "web_form", "app_feedback"), PARQUET: ("chat_widget", "in_app_chat")}

MIN_PROMPT_CHARS = 8  # Settings.min_prompt_chars
SWAP_RATE = 0.08  # of the banking rows
OFF_TOPIC_PER_FILE = 20
SHORT_PROMPTS = ("hi", "?", "help", "hello?", "card!!", "urgent")
#: How a label goes outside the allowed set (two per file).
BAD_LABELS = ("typo", "title_case", "unknown", "hyphens", "other", "upper_case")
#: Duplicates: (scope, variant, count). Copies always come after their original.
DUPLICATE_PLAN = (
    ("within_file", "exact", 24),
    ("cross_file", "exact", 24),
    ("within_file", "case", 6),
    ("within_file", "whitespace", 5),
    ("cross_file", "case", 6),
    ("cross_file", "whitespace", 5),
)

#: Who made the bundled decisions. None of them is a name the README has the user create
#: (``carol``, ``dr_chen``): a new reviewer and a new expert find the open items below.
REVIEWERS = ("alice", "bob")
EXPERT = "dr_okafor"
REVIEWER_ERROR_RATE = 0.03  # share of reviewer votes that are wrong
DOUBLE_REVIEW_SHARE = 0.15  # examples both reviewers decide (agreement is measured on them)
#: Left open for whoever tries the demo: coverage items nobody decided (offered to a new
#: reviewer and a new expert), coverage items one reviewer decided that wait for an expert
#: (offered to a new expert only), both taken from the end of the coverage sample with a
#: few label swaps and off-topic rows among them (``COVERAGE_OPEN_NOISE``), so a new user
#: edits and rejects too; and the last suspect items (offered to a new reviewer; experts
#: are offered every suspect item without an expert decision).
COVERAGE_OPEN = 12
COVERAGE_AWAITING_EXPERT = 8
COVERAGE_OPEN_NOISE = {
    "undecided": {"label_swap": 2, "off_topic": 1},
    "awaiting": {"label_swap": 1},
}
SUSPECT_OPEN = 15
REVIEW_DAYS = ("2026-11-16", "2026-11-17", "2026-11-18", "2026-11-19")
EXPERT_DAYS = ("2026-11-20", "2026-11-23", "2026-11-24")


@dataclass(eq=False)
class Row:
    """One line or row of an inbox file, with the truth about it."""

    text: str | None
    label: str | None
    true_label: str | None  # None: off-topic or not a request at all
    noise: str | None = None  # None: a clean row
    detail: dict = field(default_factory=dict)
    source: str | None = None
    raw: bytes | None = None  # a broken line, written verbatim
    dup_of: "Row | None" = None
    file: str = ""
    line_no: int = 0
    example_id: str | None = None


def normalize(text: str) -> str:
    """The identity normalization of ``curation.records`` (NFC, lower case, collapsed spaces)."""
    return re.sub(r"\s+", " ", unicodedata.normalize("NFC", text).strip()).lower()


def load_banking(path: Path) -> list[tuple[str, str]]:
    """banking77 rows of the ten intents, first copy of each normalized text only."""
    with path.open(newline="", encoding="utf-8") as handle:
        rows = [(r["text"], r["category"]) for r in csv.DictReader(handle)]
    seen: set[str] = set()
    kept = []
    for text, label in rows:
        if label in LABELS and normalize(text) not in seen:
            seen.add(normalize(text))
            kept.append((text, label))
    return kept


def load_oos(path: Path, banking: list[tuple[str, str]]) -> list[str]:
    """CLINC150 ``oos_train`` messages that are long enough and not banking77 texts."""
    taken = {normalize(t) for t, _ in banking}
    texts = [t for t, _ in json.loads(path.read_text(encoding="utf-8"))["oos_train"]]
    return [t for t in texts if len(t.strip()) >= MIN_PROMPT_CHARS and normalize(t) not in taken]


def _take(
    pool: list[tuple[str, str]], ok: Callable[[str], bool], label: str | None = None
) -> tuple[str, str]:
    """Remove and return the first pool item whose text satisfies ``ok`` (and has ``label``)."""
    for index, (text, item_label) in enumerate(pool):
        if ok(text) and label in (None, item_label):
            return pool.pop(index)
    raise ValueError("no banking row fits")


def _plain(text: str) -> bool:
    return text == text.strip() and not re.search(r"[\"'\n\r,]", text)


def broken_rows(pool: list[tuple[str, str]]) -> dict[str, list[Row]]:
    """Lines and rows that ingest must quarantine, per file."""
    out: dict[str, list[Row]] = {JSONL: [], CSV: [], PARQUET: []}

    def add(file: str, kind: str, raw: bytes | None, text: str | None, label: str | None) -> None:
        true = label if label in LABELS else None
        out[file].append(Row(text, None, true, "quarantined", {"kind": kind}, raw=raw))

    text, label = _take(pool, _plain)
    line = json.dumps({"text": text, "label": label, "source": "email"})
    add(JSONL, "malformed_json", line[: len(line) * 2 // 3].encode(), text, label)
    text, label = _take(pool, _plain)
    line = f"{{'text': '{text}', 'label': '{label}', 'source': 'web_form'}}"
    add(JSONL, "malformed_json", line.encode(), text, label)
    text, label = _take(pool, _plain)
    line = json.dumps({"text": text, "label": label, "source": "email"})[:-1] + ", }"
    add(JSONL, "malformed_json", line.encode(), text, label)
    text = "My card payment was declined at the café this morning, why?"
    line = json.dumps(
        {"text": text, "label": "declined_card_payment", "source": "email"}, ensure_ascii=False
    )
    add(JSONL, "invalid_utf8", line.encode("cp1252"), text, "declined_card_payment")
    text, label = _take(pool, _plain)
    add(JSONL, "json_array", json.dumps([text, label]).encode(), text, label)
    text, label = _take(pool, _plain)
    line = json.dumps({"text": text, "label": None, "source": "app_feedback"})
    add(JSONL, "missing_label", line.encode(), text, label)
    text, label = _take(pool, _plain)
    add(JSONL, "missing_label", json.dumps({"text": text, "source": "email"}).encode(), text, label)
    add(JSONL, "empty_record", b"{}", None, None)

    text, label = _take(pool, lambda t: "," in t and _plain(t.replace(",", "")))
    add(CSV, "wrong_field_count", f"{text},{label}".encode(), text, label)
    text, label = _take(pool, _plain)
    add(CSV, "wrong_field_count", text.encode(), text, label)
    text, label = _take(pool, _plain)
    add(CSV, "wrong_field_count", f"{text},{label},escalated".encode(), text, label)

    text, label = _take(pool, _plain)
    out[PARQUET].append(Row(text, None, label, "quarantined", {"kind": "missing_label"}))
    return out


def _bad_label(label: str, kind: str) -> str:
    """A label outside the allowed set, the way a person or an export mangles one."""
    if kind == "typo":
        doubled = re.search(r"(.)\1", label)
        return label[: doubled.start()] + label[doubled.start() + 1 :] if doubled else label[:-1]
    words = label.replace("_", " ")
    return {
        "title_case": words.title(),
        "hyphens": label.replace("_", "-"),
        "upper_case": words.upper(),
    }.get(kind, kind)


def _variant(rng: random.Random, text: str, kind: str) -> str:
    """A copy of ``text`` that differs only in case or whitespace (same example id)."""
    if kind == "exact":
        return text
    if kind == "case":
        options = [text.lower(), text.upper(), text[:1].lower() + text[1:]]
    else:
        options = ["  " + text, text + " ", text.replace(" ", "  ", 1), text.replace(" ", "\t", 1)]
    options = [o for o in options if o != text and normalize(o) == normalize(text)]
    return rng.choice(options)


def build_scrape(
    rng: random.Random, banking: list[tuple[str, str]], oos: list[str]
) -> dict[str, list[Row]]:
    """The rows of each inbox file, in file order, noise injected."""
    pool = list(banking)
    rng.shuffle(pool)
    broken = broken_rows(pool)
    files: dict[str, list[Row]] = {name: [] for name in FILES}
    for i, name in enumerate(FILES):
        for kind in BAD_LABELS[2 * i : 2 * i + 2]:
            if kind in ("typo", "title_case"):
                text, label = _take(pool, lambda t: True, "card_arrival")
            else:
                text, label = pool.pop()
            files[name].append(Row(text, _bad_label(label, kind), label, "label_not_allowed"))
        for prompt in SHORT_PROMPTS[2 * i : 2 * i + 2]:
            files[name].append(Row(prompt, rng.choice(LABELS), None, "prompt_too_short"))
        for text in oos[OFF_TOPIC_PER_FILE * i : OFF_TOPIC_PER_FILE * (i + 1)]:
            files[name].append(Row(text, rng.choice(LABELS), None, "off_topic"))

    swapped = set(rng.sample(range(len(pool)), round(SWAP_RATE * len(pool))))
    bounds = [0, round(FILE_SHARES[0] * len(pool)), round(sum(FILE_SHARES[:2]) * len(pool))]
    bounds.append(len(pool))
    for i, name in enumerate(FILES):
        for index in range(bounds[i], bounds[i + 1]):
            text, label = pool[index]
            if index in swapped:
                files[name].append(Row(text, rng.choice(CONFUSABLE[label]), label, "label_swap"))
            else:
                files[name].append(Row(text, label, label))
    for rows in files.values():
        rng.shuffle(rows)

    used: set[int] = set()
    for scope, kind, count in DUPLICATE_PLAN:
        for _ in range(count):
            if scope == "within_file":
                src = dst = rng.choices(FILES, weights=FILE_SHARES)[0]
            else:
                src, dst = rng.choice([(JSONL, CSV), (JSONL, PARQUET), (CSV, PARQUET)])
            candidates = [r for r in files[src] if r.noise is None and id(r) not in used]
            original = rng.choice(candidates)
            used.add(id(original))
            copy = Row(
                _variant(rng, original.text or "", kind),
                original.label,
                original.true_label,
                "exact_duplicate",
                {"scope": scope, "variant": kind},
                dup_of=original,
            )
            start = files[dst].index(original) + 1 if scope == "within_file" else 0
            files[dst].insert(rng.randint(start, len(files[dst])), copy)

    for name, rows in broken.items():
        for row in rows:
            rows_now = files[name]
            rows_now.insert(rng.randint(1, len(rows_now) - 1), row)
    for name, rows in files.items():
        for row in rows:
            row.file = name
            if row.source is None and name in SOURCES:
                row.source = rng.choice(SOURCES[name])
    return files


def write_inbox(files: dict[str, list[Row]], inbox: Path) -> None:
    """Write the three inbox files and set each row's line number and example id."""
    inbox.mkdir(parents=True, exist_ok=True)
    lines = []
    for line_no, row in enumerate(files[JSONL], start=1):
        row.line_no = line_no
        record = {"text": row.text, "label": row.label, "source": row.source}
        lines.append(row.raw or json.dumps(record, ensure_ascii=False).encode())
    (inbox / JSONL).write_bytes(b"\n".join(lines) + b"\n")

    chunks = [_csv_line(["text", "category"])]
    line_no = 2
    for row in files[CSV]:
        row.line_no = line_no
        chunk = row.raw.decode() + "\n" if row.raw else _csv_line([row.text, row.label])
        chunks.append(chunk)
        line_no += len(re.findall(r"\r\n|\r|\n", chunk))
    (inbox / CSV).write_text("".join(chunks), encoding="utf-8")

    rows = files[PARQUET]
    for line_no, row in enumerate(rows, start=1):
        row.line_no = line_no
    table = pa.table(
        {
            "prompt": pa.array([r.text for r in rows], pa.string()),
            "response": pa.array([r.label for r in rows], pa.string()),
            "source": pa.array([r.source for r in rows], pa.string()),
        }
    )
    pq.write_table(table, inbox / PARQUET, compression="zstd")

    cache: dict[tuple[str, str], str] = {}
    for rows in files.values():
        for row in rows:
            if row.raw is None and row.text is not None and row.label is not None:
                key = (row.text, row.label)
                row.example_id = cache.get(key) or cache.setdefault(key, example_id(*key))


def _csv_line(fields: list[str | None]) -> str:
    buffer = io.StringIO()
    csv.writer(buffer, lineterminator="\n").writerow(fields)
    return buffer.getvalue()


def survivors(files: dict[str, list[Row]]) -> list[Row]:
    """Rows that pass ingest and the length, label and exact-duplicate rules, in first-seen
    order; checks that these rules drop exactly the injected noise. (The real filter stage
    has more rules: ``pipeline_queues`` runs it.)"""
    seen: set[str] = set()
    kept = []
    for name in FILES:
        for row in files[name]:
            if row.example_id is None:
                continue
            fired = [
                len((row.text or "").strip()) < MIN_PROMPT_CHARS,
                row.label not in LABELS,
                row.example_id in seen,
            ]
            seen.add(row.example_id)
            if row.dup_of is not None and row.dup_of.example_id != row.example_id:
                raise AssertionError(f"duplicate with a different id: {row}")
            if any(fired) != (
                row.noise in {"prompt_too_short", "label_not_allowed", "exact_duplicate"}
            ):
                raise AssertionError(f"unexpected filter outcome for {row}")
            if not any(fired):
                kept.append(row)
    return kept


@dataclass
class Queues:
    """The review queue the pipeline builds from the inbox files (no decisions yet)."""

    coverage: list[Row]  # priority order
    suspect: list[Row]  # priority order
    filtered: list[Row]  # one row per example of ``filtered`` (the row it was kept from)
    rejected: dict[str, list[tuple[Row, str]]]  # rule -> (row, reason)
    scoring: dict  # what ``score_suspects`` did (methods, examples)
    suggested: dict[str, str | None]  # example_id -> label the suspect models prefer


def _labels(settings: Settings) -> tuple[str, ...]:
    return settings.labels if settings.task_type == "classification" else ()


def pipeline_queues(
    con: duckdb.DuckDBPyConnection, settings: Settings, files: dict[str, list[Row]]
) -> Queues:
    """Ingest, filter and queue the inbox with the product's own core functions.

    The same calls, in the same order, with the same settings as the ``raw_scrapes``,
    ``filtered`` and ``review_queue`` assets of a first ``curation demo`` run (no Dagster
    run, no decisions), so the simulated people work exactly the queues the pipeline shows.
    """
    intake.store_inbox(
        con,
        settings.inbox,
        settings.column_mapping,
        settings.max_record_bytes,
        datetime(2026, 11, 25, 2, 0),
    )
    filter_stage.run_stage(con, filter_config(settings))
    empty = decisions.load_all(settings.decision_store)
    scoring = review_stage.build_review_queue(con, empty, queue_config(settings), _labels(settings))

    by_record = {f"{r.file}:{r.line_no}": r for rows in files.values() for r in rows}

    def row_of(record_id: str, eid: str) -> Row:
        row = by_record[record_id]
        if row.example_id != eid:
            raise AssertionError(f"{record_id}: example id {eid} != {row.example_id}")
        return row

    kept = {
        eid: row_of(rid, eid)
        for eid, rid in con.execute(
            "SELECT example_id, record_id FROM filtered ORDER BY batch, line_no"
        ).fetchall()
    }
    rejected: dict[str, list[tuple[Row, str]]] = defaultdict(list)
    for rule, rid, eid, reason in con.execute(
        "SELECT j.rule, j.record_id, r.example_id, j.reason FROM rejections j "
        "JOIN raw_scrapes r USING (record_id) ORDER BY j.rule, r.batch, r.line_no"
    ).fetchall():
        rejected[rule].append((row_of(rid, eid), reason))
    queue = con.execute(
        "SELECT q.queue, q.example_id, s.suggested FROM review_queue q "
        f"JOIN {review_stage.SUSPECT_TABLE} s USING (example_id) ORDER BY q.queue, q.priority"
    ).fetchall()
    return Queues(
        coverage=[kept[eid] for name, eid, _ in queue if name == "coverage"],
        suspect=[kept[eid] for name, eid, _ in queue if name == "suspect"],
        filtered=list(kept.values()),
        rejected=dict(rejected),
        scoring=scoring,
        suggested={eid: suggested for _, eid, suggested in queue},
    )


class Clock:
    """Working-hours timestamps for one person over a list of days."""

    def __init__(self, rng: random.Random, days: tuple[str, ...], per_day: int) -> None:
        self.rng, self.days, self.per_day, self.done = rng, days, max(per_day, 1), 0
        self.now = datetime.fromisoformat(days[0]).replace(tzinfo=UTC) - timedelta(seconds=1)

    def tick(self, seconds: float) -> datetime:
        """Start time of the next item, ``seconds`` being the time spent on it."""
        day = min(self.done // self.per_day, len(self.days) - 1)
        start = datetime.fromisoformat(self.days[day]).replace(tzinfo=UTC)
        if self.now < start:
            self.now = start + timedelta(hours=8, minutes=self.rng.uniform(30, 90))
        elif self.rng.random() < 0.02:
            self.now += timedelta(minutes=self.rng.uniform(5, 25))  # a break
        at = self.now
        self.now += timedelta(seconds=seconds + self.rng.uniform(2, 12))
        self.done += 1
        return at


def _correct(row: Row) -> tuple[str, str | None]:
    """The right decision for a row: reject off-topic, fix a wrong label, else accept."""
    if row.noise == "off_topic":
        return "reject", None
    if row.true_label != row.label:
        return "edit", row.true_label
    return "accept", None


def _outcome(row: Row, word: tuple[str, str | None]) -> str:
    """What a decision makes of the example (as ``curation.review.agreement`` compares votes)."""
    return "reject" if word[0] == "reject" else f"keep:{word[1] or row.label}"


def _seconds(rng: random.Random, median: float) -> float:
    return round(min(60.0, max(5.0, rng.lognormvariate(0, 0.45) * median)), 1)


def _decision(
    row: Row,
    who: str,
    role: str,
    decision: str,
    corrected: str | None,
    note: str | None,
    at: datetime,
    seconds: float,
) -> dict:
    return {
        "example_id": row.example_id,
        "reviewer": who,
        "role": role,
        "decision": decision,
        "corrected_response": corrected,
        "note": note,
        "decided_at": at.isoformat(timespec="seconds"),
        "seconds_spent": seconds,
    }


MEDIAN_SECONDS = {"accept": 11.0, "edit": 24.0, "reject": 8.0}
EXPERT_MEDIAN_SECONDS = {"accept": 16.0, "edit": 30.0, "reject": 12.0}
DISPUTE_SLOWDOWN = 1.5  # settling a disagreement takes longer than a confirmation


@dataclass(eq=False)
class Vote:
    """One reviewer's work on one queued example."""

    row: Row
    queue: str
    reviewer: str
    mistake: str | None = None
    change: str | None = None
    final: tuple[str, str | None] = ("accept", None)


def simulate_decisions(rng: random.Random, queues: Queues) -> tuple[list[dict], dict]:
    """Reviewers work the pipeline's queues, the expert decides the coverage sample.

    alice and bob take turns down the coverage queue, then the suspect queue, and stop
    ``COVERAGE_OPEN`` and ``SUSPECT_OPEN`` items before the end of each;
    ``DOUBLE_REVIEW_SHARE`` of the examples is decided by both (the overlap reviewer
    agreement is measured on). About ``REVIEWER_ERROR_RATE`` of their votes are wrong and
    a few are changed later. The expert (always right) first settles every example the
    reviewers disagree on, then confirms or fixes the coverage sample in priority order
    but for its last ``COVERAGE_OPEN + COVERAGE_AWAITING_EXPERT`` items: only those
    decisions build ``verified``. Reviewer fixes in the suspect queue clean ``reviewed``.
    """
    undecided, awaiting = _held_back(queues.coverage)
    held = {id(row) for row in undecided + awaiting}
    coverage_worked = len(queues.coverage) - len(undecided)
    single = {id(row) for row in awaiting}  # one vote each: no disagreement to settle
    nobody = {id(row) for row in undecided}
    work = [(row, "coverage") for row in queues.coverage if id(row) not in nobody]
    work += [(row, "suspect") for row in queues.suspect[: len(queues.suspect) - SUSPECT_OPEN]]
    votes: list[Vote] = []
    turn = 0
    for row, queue in work:
        if rng.random() < DOUBLE_REVIEW_SHARE and id(row) not in single:
            votes += [Vote(row, queue, who) for who in REVIEWERS]
        else:
            votes.append(Vote(row, queue, REVIEWERS[turn % len(REVIEWERS)]))
            turn += 1
    mine = {who: [v for v in votes if v.reviewer == who] for who in REVIEWERS}

    by_noise: dict[str | None, list[Vote]] = defaultdict(list)
    for vote in votes:
        by_noise[vote.row.noise].append(vote)
    n_errors = round(REVIEWER_ERROR_RATE * len(votes))
    n_wrong_edit, n_off_topic = round(0.15 * n_errors), 2
    for noise, kind, count in (
        ("label_swap", "accepted_wrong_label", n_errors - n_wrong_edit - n_off_topic),
        (None, "edited_correct_label", n_wrong_edit),
        ("off_topic", "accepted_off_topic", n_off_topic),
    ):
        for vote in rng.sample(by_noise[noise], count):
            vote.mistake = kind
    early = {id(v) for who in REVIEWERS for v in mine[who][: len(mine[who]) * 3 // 4]}
    for noise, kind, count in (
        ("label_swap", "accept_then_edit", 2),
        (None, "edit_then_accept", 2),
        ("off_topic", "accept_then_reject", 1),
        (None, "reject_then_accept", 1),
    ):
        free = [v for v in by_noise[noise] if v.mistake is None and id(v) in early]
        for vote in rng.sample(free, count):
            vote.change = kind

    decisions: list[dict] = []
    for who in REVIEWERS:
        clock = Clock(rng, REVIEW_DAYS, -(-len(mine[who]) // len(REVIEW_DAYS)))
        for vote in mine[who]:
            row = vote.row
            final = _correct(row)
            if vote.mistake == "edited_correct_label":
                final = ("edit", rng.choice(CONFUSABLE[row.label or ""]))
            elif vote.mistake is not None:
                final = ("accept", None)
            first = {
                "accept_then_edit": ("accept", None),
                "edit_then_accept": ("edit", CONFUSABLE[row.label or ""][0]),
                "accept_then_reject": ("accept", None),
                "reject_then_accept": ("reject", None),
            }.get(vote.change or "", final)
            seconds = _seconds(rng, MEDIAN_SECONDS[first[0]])
            at = clock.tick(seconds)
            decisions.append(_reviewer_decision(rng, row, who, first, at, seconds, ""))
            if vote.change:
                later = at + timedelta(days=1, minutes=rng.uniform(-60, 120))
                seconds = _seconds(rng, MEDIAN_SECONDS[final[0]])
                decisions.append(
                    _reviewer_decision(rng, row, who, final, later, seconds, "changed my mind: ")
                )
            vote.final = final

    votes_of: dict[int, list[Vote]] = defaultdict(list)
    for vote in votes:
        votes_of[id(vote.row)].append(vote)
    disputed = [
        (row, queue)
        for row, queue in work
        if len({_outcome(row, v.final) for v in votes_of[id(row)]}) > 1
    ]
    disputed_ids = {id(row) for row, _ in disputed}
    expert_coverage = [row for row in queues.coverage if id(row) not in held]
    expert_work = disputed + [(r, "coverage") for r in expert_coverage if id(r) not in disputed_ids]
    clock = Clock(rng, EXPERT_DAYS, -(-len(expert_work) // len(EXPERT_DAYS)))
    overturned: Counter = Counter()
    for row, _ in expert_work:
        word = _correct(row)
        wrong = [v for v in votes_of[id(row)] if _outcome(row, v.final) != _outcome(row, word)]
        overturned.update(v.reviewer for v in wrong)
        note = None
        if word[0] == "reject":
            note = "off-topic"
        elif word[0] == "edit":
            note = ("reviewer missed it: " if wrong else "") + ABOUT[row.true_label or ""]
        elif wrong:
            note = f"original label is right: {ABOUT[row.label or '']}"
        if id(row) in disputed_ids:
            note = "reviewers disagree; " + (note or "label is right")
        median = EXPERT_MEDIAN_SECONDS[word[0]]
        seconds = _seconds(rng, median * (DISPUTE_SLOWDOWN if id(row) in disputed_ids else 1))
        decisions.append(
            _decision(row, EXPERT, "expert", word[0], word[1], note, clock.tick(seconds), seconds)
        )

    decisions.sort(key=lambda d: (d["decided_at"], d["reviewer"]))
    expert_ids = {id(row) for row, _ in expert_work}
    coverage_words = Counter(_correct(row)[0] for row in expert_coverage)
    double = sum(len(v) > 1 for v in votes_of.values())
    summary = {
        "reviewers": {
            "examples": len(work),
            "coverage_examples": coverage_worked,
            "suspect_examples": len(work) - coverage_worked,
            "votes": len(votes),
            "votes_per_reviewer": {who: len(mine[who]) for who in REVIEWERS},
            "double_reviewed": double,
            "disagreements": len(disputed),
            "mistakes": sum(v.mistake is not None for v in votes),
        },
        "expert": {
            "decisions": len(expert_work),
            "coverage_examples": len(expert_coverage),
            "disagreements_settled": len(disputed),
            "disagreements_in_suspect_queue": sum(q == "suspect" for _, q in disputed),
            "coverage_accepted": coverage_words["accept"],
            "coverage_corrected": coverage_words["edit"],
            "coverage_rejected": coverage_words["reject"],
            "reviewer_votes_overturned": dict(sorted(overturned.items())),
        },
        "left_open": {
            "note": "the last items of each queue, left for whoever tries the demo: nobody "
            "decided the undecided ones; the awaiting ones have one reviewer vote and no "
            "expert decision",
            "coverage_undecided": [_open_item(row) for row in undecided],
            "coverage_awaiting_expert": [
                {**_open_item(row), "reviewer": votes_of[id(row)][0].reviewer} for row in awaiting
            ],
            "suspect_undecided": [
                _open_item(row) for row in queues.suspect[len(queues.suspect) - SUSPECT_OPEN :]
            ],
        },
        "reviewer_mistakes": [
            {
                "example_id": v.row.example_id,
                "reviewer": v.reviewer,
                "queue": v.queue,
                "kind": v.mistake,
                "caught_by_expert": id(v.row) in expert_ids,
            }
            for v in votes
            if v.mistake is not None
        ],
        "changed_mind": [
            {
                "example_id": v.row.example_id,
                "reviewer": v.reviewer,
                "queue": v.queue,
                "kind": v.change,
            }
            for v in votes
            if v.change is not None
        ],
    }
    return decisions, summary


def _held_back(coverage: list[Row]) -> tuple[list[Row], list[Row]]:
    """The coverage rows left open, (undecided, awaiting an expert), in queue order: the
    last rows of the sample, the last ones of each noise class ``COVERAGE_OPEN_NOISE``
    asks for first."""
    pool = list(reversed(coverage))

    def take(n: int, wanted: dict[str, int]) -> list[Row]:
        picked: list[Row] = []
        for noise, count in wanted.items():
            picked += [r for r in pool if r.noise == noise][:count]
        picked += [r for r in pool if r.noise is None and r not in picked][: n - len(picked)]
        for row in picked:
            pool.remove(row)
        order = {id(row): i for i, row in enumerate(coverage)}
        return sorted(picked, key=lambda row: order[id(row)])

    undecided = take(COVERAGE_OPEN, COVERAGE_OPEN_NOISE["undecided"])
    return undecided, take(COVERAGE_AWAITING_EXPERT, COVERAGE_OPEN_NOISE["awaiting"])


def _open_item(row: Row) -> dict:
    return {
        "example_id": row.example_id,
        "record": f"{row.file}:{row.line_no}",
        "label": row.label,
        "noise_class": row.noise or "clean",
        "right_decision": _correct(row)[0],
    }


def _reviewer_decision(
    rng: random.Random,
    row: Row,
    who: str,
    word: tuple[str, str | None],
    at: datetime,
    seconds: float,
    prefix: str,
) -> dict:
    decision, corrected = word
    note = None
    if decision == "reject":
        note = prefix + "off-topic" if prefix else "off-topic"
    elif decision == "edit":
        note = prefix + rng.choice((f"should be {corrected}", ABOUT[corrected or ""]))
    elif prefix:
        note = prefix + "label is fine"
    return _decision(row, who, "reviewer", decision, corrected, note, at, seconds)


def pipeline_outcome(
    con: duckdb.DuckDBPyConnection, settings: Settings, decisions_file: Path, queues: Queues
) -> dict:
    """What the review stages make of the decisions: the demo's expected results.

    Imports the decisions file into a fresh decision store (as ``curation demo`` does),
    rebuilds the queue as a first run would (no earlier queue, so nothing is locked), then
    ``reviewed``, ``verified`` and the expert-time accounting, all with the product's code.
    """
    report = decisions.import_file(decisions_file, settings.decision_store)
    if report.errors:
        raise AssertionError(f"the decision store refused lines: {report.errors[:5]}")
    store = decisions.load_all(settings.decision_store)
    con.execute("DROP TABLE review_queue")
    review_stage.build_review_queue(con, store, queue_config(settings), _labels(settings))
    membership = con.execute(
        "SELECT queue, example_id FROM review_queue ORDER BY queue, priority"
    ).fetchall()
    expected = {("coverage", r.example_id) for r in queues.coverage}
    expected |= {("suspect", r.example_id) for r in queues.suspect}
    if set(membership) != expected:
        raise AssertionError("decisions changed the queue membership of a first run")
    stats = review_stage.build_reviewed(con, store, settings.reviews_required, _labels(settings))
    take = settings.verified_takes_suspect_fixes
    review_stage.build_verified(
        con, store, settings.validation_fraction, take, settings.decontamination_ngram
    )
    timing = review_stage.expert_time(con, take)
    # what the review app offers someone new, on the queue the first run publishes
    decisions.publish_queue(settings.decision_store, review_stage.queue_for_app(con))
    new_users = {
        f"new_{role}": {
            queue: app_store.standing(
                settings.decision_store,
                {"username": f"new_{role}", "role": role},
                queue,
                settings.reviews_required,
            )
            for queue in decisions.QUEUES
        }
        for role in ("reviewer", "expert")
    }

    def counts(sql: str) -> dict[str, int]:
        return {str(key): int(n) for key, n in con.execute(sql).fetchall()}

    overall = stats[stats["scope"] == "overall"].iloc[0]
    reviewers = stats[stats["scope"] == "reviewer"].set_index("key")

    def number(value: object, digits: int = 4) -> float | None:
        value = float(value)  # type: ignore[arg-type]
        return None if math.isnan(value) else round(value, digits)

    return {
        "review_queue": counts(
            "SELECT queue || ':' || review_status, count(*) FROM review_queue GROUP BY 1 ORDER BY 1"
        ),
        "reviewed": con.execute("SELECT count(*) FROM reviewed").fetchall()[0][0],
        "reviewed_by_queue": counts(
            "SELECT from_queue, count(*) FROM reviewed GROUP BY 1 ORDER BY 1"
        ),
        "reviewed_edited": con.execute("SELECT count(*) FROM reviewed WHERE edited").fetchall()[0][
            0
        ],
        "verified": con.execute("SELECT count(*) FROM verified").fetchall()[0][0],
        "verified_corrected": con.execute("SELECT count(*) FROM verified WHERE edited").fetchall()[
            0
        ][0],
        "verified_splits": counts("SELECT split, count(*) FROM verified GROUP BY 1 ORDER BY 1"),
        "verified_per_label": counts(
            "SELECT response, count(*) FROM verified GROUP BY 1 ORDER BY 1"
        ),
        "agreement": {
            "items": int(overall["items"]),
            "min_items": settings.min_agreement_items,
            "kappa": number(overall["kappa"]),
            "alpha": number(overall["alpha"]),
            "observed": number(overall["observed_agreement"]),
            "per_reviewer": {
                str(who): {
                    "expert_checked": int(row["expert_checked"]),
                    "overturned": int(row["overturned"]),
                }
                for who, row in reviewers.iterrows()
            },
        },
        "expert_time": timing,
        "review_app_for_new_users": new_users,
    }


def manifest(
    files: dict[str, list[Row]],
    queues: Queues,
    decisions_made: list[dict],
    summary: dict,
    outcome: dict,
    settings: Settings,
    n_banking: int,
    n_oos: int,
) -> dict:
    """The truth about the scrape and the decisions, for tests and benchmarks."""
    classes = (
        "label_swap",
        "exact_duplicate",
        "off_topic",
        "label_not_allowed",
        "prompt_too_short",
        "quarantined",
    )
    per_file = {}
    for name, rows in files.items():
        counts = Counter(r.noise for r in rows)
        quarantined = counts["quarantined"]
        per_file[name] = {
            "units": len(rows),
            "expected_records": len(rows) - quarantined,
            "expected_quarantined": quarantined,
            "clean_rows": counts[None],
            "noise_counts": {c: counts[c] for c in classes},
        }
    totals = Counter(r.noise for rows in files.values() for r in rows)
    units = sum(len(rows) for rows in files.values())
    noisy = [
        {
            "file": r.file,
            "line_no": r.line_no,
            "example_id": r.example_id,
            "label_in_file": r.label,
            "true_label": r.true_label,
            "noise_class": r.noise,
            **r.detail,
            **(
                {"duplicate_of": {"file": r.dup_of.file, "line_no": r.dup_of.line_no}}
                if r.dup_of
                else {}
            ),
        }
        for rows in files.values()
        for r in rows
        if r.noise is not None
    ]
    injected = {"exact_duplicate", "prompt_too_short", "label_not_allowed"}
    other_rules = [
        {
            "file": row.file,
            "line_no": row.line_no,
            "example_id": row.example_id,
            "noise_class": row.noise,
            "rule": rule,
            "reason": reason,
        }
        for rule, rows in queues.rejected.items()
        if rule not in injected
        for row, reason in rows
    ]
    by_role = Counter(f"{d['role']}:{d['decision']}" for d in decisions_made)
    kept = queues.filtered

    def by_noise(rows: list[Row]) -> dict[str, int]:
        return dict(sorted(Counter(r.noise or "clean" for r in rows).items()))

    worked = summary["reviewers"]["suspect_examples"]
    return {
        "description": "Noisy intent-classification scrape (banking77 + CLINC150 out-of-scope) "
        "with the truth about every noisy row; built by scripts/build_sample_data.py.",
        "seed": SEED,
        "task": {
            "type": "classification",
            "prompt": "customer message",
            "response": "intent label",
        },
        "allowed_labels": list(LABELS),
        "min_prompt_chars": MIN_PROMPT_CHARS,
        "sources": {
            "banking77": {
                "license": "CC BY 4.0",
                "file": "banking77/train.csv",
                "rows_available": n_banking,
            },
            "clinc150": {
                "license": "CC BY 3.0",
                "file": "clinc150/data_full.json (oos_train)",
                "rows_used": n_oos,
            },
        },
        "noise_classes": {
            "label_swap": "label replaced by a confusable intent; true_label is the right one",
            "exact_duplicate": "same normalized prompt and label as an earlier row "
            "(exact, or differing in case/whitespace); the first copy is kept",
            "off_topic": "CLINC150 out-of-scope message with a random banking label; "
            "true_label null, reviewers should reject it",
            "label_not_allowed": "label outside allowed_labels; true_label is the intended one",
            "prompt_too_short": f"prompt shorter than {MIN_PROMPT_CHARS} characters",
            "quarantined": "line or row ingest cannot use (kind says why); example_id null",
        },
        "files": per_file,
        "totals": {
            "units": units,
            "noise_counts": {c: totals[c] for c in classes},
            "clean_rows": totals[None],
        },
        "expected_filtered": {
            "kept": len(kept),
            "rejected_records": len(
                {(r.file, r.line_no) for v in queues.rejected.values() for r, _ in v}
            ),
            "rejected_by_rule": {rule: len(rows) for rule, rows in sorted(queues.rejected.items())},
            "kept_by_noise": by_noise(kept),
            "kept_by_label": {label: sum(r.label == label for r in kept) for label in LABELS},
            "rejected_by_other_rules": other_rules,
        },
        "review_queues": {
            "settings": {
                "coverage_sample_size": settings.coverage_sample_size,
                "suspect_queue_size": settings.suspect_queue_size,
                "reviews_required": settings.reviews_required,
                "suspect_encoder": settings.suspect_encoder,
            },
            "suspect_scoring": {
                k: v
                for k, v in queues.scoring.items()
                if k in ("examples", "methods", "encoder", "sample_rows", "refit_reason")
            },
            "coverage": {
                "examples": len(queues.coverage),
                "by_noise": by_noise(queues.coverage),
                "by_label": dict(sorted(Counter(r.label for r in queues.coverage).items())),
            },
            "suspect": {
                "examples": len(queues.suspect),
                "by_noise": by_noise(queues.suspect),
                "worked_by_reviewers": worked,
                "worked_by_noise": by_noise(queues.suspect[:worked]),
                "top_100_by_noise": by_noise(queues.suspect[:100]),
            },
            "unqueued": {
                "examples": len(kept) - len(queues.coverage) - len(queues.suspect),
                "by_noise": by_noise(
                    [
                        r
                        for r in kept
                        if r.example_id
                        not in {q.example_id for q in queues.coverage + queues.suspect}
                    ]
                ),
            },
        },
        "decisions": {
            "file": "decisions/review_decisions.jsonl",
            "count": len(decisions_made),
            "by_role_decision": dict(sorted(by_role.items())),
            **summary,
        },
        "expected_pipeline": {
            "note": "what a first `curation demo` run computes from these files with default "
            "settings (computed by this script with the product's core functions)",
            **outcome,
        },
        "noisy_rows": noisy,
    }


README = """# Bundled demo data

A small, deliberately noisy "scrape" for the curation_assets demo: intent classification of
customer banking messages (prompt = the customer's message, response = the intent label).

| file | what |
|---|---|
| `inbox/{jsonl}` | support tickets, JSON Lines (`text`, `label`, `source`) |
| `inbox/{csv}` | helpdesk export, CSV (`text`, `category`) |
| `inbox/{parquet}` | chat logs, Parquet (`prompt`, `response`, `source`) |
| `decisions/review_decisions.jsonl` | decisions of reviewers {reviewers}, expert {expert} |
| `manifest.json` | the truth: labels, noise per file, every noisy row, queues, outcome |

{summary}

## Left open: try each role

The bundled decisions stop short of the end of each queue, so that someone new finds work
in the review app (the ids, records and right decisions are under `decisions.left_open`
in `manifest.json`):

{left_open}

None of the bundled names ({reviewers}, {expert}) is one the README has you create, so
`curation users add carol --role reviewer` and `curation users add dr_chen --role expert`
start with these items. When a queue has nothing left for you, the app says why, by
reason (decided by you, decided by an expert, reviewed by others...).

## Sources and licences

- **banking77**: PolyAI, "Efficient Intent Detection with Dual Sentence Encoders",
  Casanueva et al. 2020, <https://github.com/PolyAI-LDN/task-specific-datasets>.
  Licensed CC BY 4.0 (`LICENSE-banking77`).
- **CLINC150**: Larson et al. 2019, "An Evaluation Dataset for Intent Classification and
  Out-of-Scope Prediction", <https://github.com/clinc/oos-eval>. Licensed CC BY 3.0
  (`LICENSE-clinc150`).

## What was changed

- Subset: the banking77 training rows of 10 confusable intents, one duplicated source row
  dropped: {labels}. Plus {oos} out-of-scope messages from CLINC150 `oos_train`. The six
  too-short prompts and the invalid UTF-8 line's message were written for this demo.
- Noise injected on purpose, recorded row by row in `manifest.json`: labels swapped between
  confusable intents, exact duplicates (also across files, and differing only in
  case/whitespace), off-topic CLINC150 messages given a random banking label, labels outside
  the allowed set, too-short prompts, and broken lines (malformed JSON, invalid UTF-8, a JSON
  array, missing labels, an empty record, CSV rows with the wrong number of fields).
- The decisions are simulated on the queues the pipeline itself builds from these files
  (the script runs the product's ingest, filter and review-queue code with the default
  settings): reviewers take turns down the coverage sample and the suspect queue, about 3%
  of their votes are wrong, a share of the examples is reviewed by both (reviewer agreement
  is measured on it), and the expert, who is always right, settles every disagreement and
  confirms or fixes the coverage sample. The last items of each queue are left open for
  whoever tries the demo (below).
- The files were split over three dated inbox files in three formats.

## Rebuild

With the shared data folder present next to the repository (`../shared/data`, dev machines
only; the product never reads it):

    python scripts/build_sample_data.py

The build is deterministic (seeded), so an unchanged script reproduces these files. It
must be rerun when the filter rules or the queue settings change what the pipeline queues:
the decisions follow the queues.
"""


def _summary_table(info: dict) -> str:
    """Markdown table of rows and noise per file, then what review makes of them."""
    classes = list(info["totals"]["noise_counts"])
    lines = [
        "| file | units | clean | " + " | ".join(classes) + " |",
        "|---" * (len(classes) + 3) + "|",
    ]
    rows = [*info["files"].items(), ("total", info["totals"])]
    for name, item in rows:
        counts = " | ".join(str(item["noise_counts"][c]) for c in classes)
        lines.append(f"| {name} | {item['units']} | {item['clean_rows']} | {counts} |")
    f, q, d = info["expected_filtered"], info["review_queues"], info["decisions"]
    r, e, p = d["reviewers"], d["expert"], info["expected_pipeline"]
    a, t = p["agreement"], p["expert_time"]
    others = Counter(x["rule"] for x in f["rejected_by_other_rules"])
    besides = ", ".join(f"{n} by `{rule}`" for rule, n in sorted(others.items()))
    return "\n".join(lines) + (
        f"\n\nAfter filtering {f['kept']} examples remain ({f['rejected_records']} records "
        "rejected: the injected duplicates, short prompts and bad labels"
        + (f", and {besides}" if besides else "")
        + f"). The review queue holds a coverage sample of {q['coverage']['examples']} and a "
        f"suspect queue of {q['suspect']['examples']} "
        f"({q['suspect']['top_100_by_noise'].get('label_swap', 0)} of its first 100 are "
        "swapped labels).\n\n"
        f"{d['count']} decisions: reviewers {' and '.join(REVIEWERS)} decided "
        f"{r['coverage_examples']} of the {q['coverage']['examples']} "
        f"coverage and {r['suspect_examples']} suspect-queue examples ({r['votes']} votes, "
        f"{r['double_reviewed']} examples reviewed by both, {r['disagreements']} "
        f"disagreements, {r['mistakes']} wrong votes); the expert {EXPERT} settled the "
        f"disagreements and decided {e['coverage_examples']} coverage examples "
        f"({e['coverage_accepted']} confirmed, {e['coverage_corrected']} corrected, "
        f"{e['coverage_rejected']} rejected as off-topic). Counts by role and decision are in "
        "`manifest.json`.\n\n"
        f"With the default settings the pipeline makes {p['reviewed']} `reviewed` and "
        f"{p['verified']} `verified` examples ({p['verified_corrected']} corrected by the "
        f"expert); reviewer agreement on {a['items']} double-reviewed examples: Cohen's kappa "
        f"{a['kappa']}, Krippendorff's alpha {a['alpha']}; "
        f"{t['expert_seconds_per_verified_example']} expert seconds per verified example."
    )


def _left_open_table(info: dict) -> str:
    """Markdown table: per queue and role, how many items a new user is offered."""
    new = info["expected_pipeline"]["review_app_for_new_users"]
    left = info["decisions"]["left_open"]

    def mix(items: list[dict]) -> str:
        words = Counter(item["right_decision"] for item in items)
        return ", ".join(f"{n} to {word}" for word, n in sorted(words.items()))

    queues = info["review_queues"]
    rows = [
        "| queue | items | offered to a new reviewer | offered to a new expert | left open |",
        "|---|---:|---:|---:|---|",
        f"| coverage | {queues['coverage']['examples']} | "
        f"{new['new_reviewer']['coverage']['open']} | {new['new_expert']['coverage']['open']} "
        f"| {len(left['coverage_undecided'])} undecided ({mix(left['coverage_undecided'])}); "
        f"{len(left['coverage_awaiting_expert'])} decided by one reviewer, waiting for an "
        f"expert ({mix(left['coverage_awaiting_expert'])}) |",
        f"| suspect | {queues['suspect']['examples']} | "
        f"{new['new_reviewer']['suspect']['open']} | {new['new_expert']['suspect']['open']} "
        f"| {len(left['suspect_undecided'])} undecided ({mix(left['suspect_undecided'])}); "
        "experts may also check every item the reviewers decided |",
    ]
    return "\n".join(rows) + (
        "\n\nOnly expert decisions on the coverage sample make `verified`: a reviewer's "
        "decision puts an item in `reviewed`, an expert's (on any coverage item offered to "
        "them) puts it in `verified` after the next run."
    )


def main() -> None:
    """Build everything under ``--out`` from ``--shared``."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--shared", type=Path, default=DEFAULT_SHARED)
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT)
    args = parser.parse_args()
    rng = random.Random(SEED)
    banking = load_banking(args.shared / "banking77" / "train.csv")
    oos_all = load_oos(args.shared / "clinc150" / "data_full.json", banking)
    oos = rng.sample(oos_all, OFF_TOPIC_PER_FILE * len(FILES))

    files = build_scrape(rng, banking, oos)
    out: Path = args.out
    for sub in ("inbox", "decisions"):
        shutil.rmtree(out / sub, ignore_errors=True)
    write_inbox(files, out / "inbox")
    survivors(files)  # the injected noise is exactly what the length/label/duplicate rules drop
    decisions_file = out / "decisions" / "review_decisions.jsonl"
    with tempfile.TemporaryDirectory(prefix="build_sample_data_") as tmp:
        # the default settings `curation demo` runs with; only the paths differ
        settings = Settings(data_dir=Path(tmp), inbox_dir=out / "inbox")
        con = duckdb.connect(str(settings.warehouse))
        try:
            queues = pipeline_queues(con, settings, files)
            made, summary = simulate_decisions(rng, queues)
            decisions_file.parent.mkdir(parents=True, exist_ok=True)
            with decisions_file.open("w", encoding="utf-8") as handle:
                for item in made:
                    handle.write(json.dumps(item, ensure_ascii=False) + "\n")
            outcome = pipeline_outcome(con, settings, decisions_file, queues)
        finally:
            con.close()
    info = manifest(files, queues, made, summary, outcome, settings, len(banking), len(oos))
    (out / "manifest.json").write_text(json.dumps(info, indent=1, ensure_ascii=False) + "\n")
    readme = README.format(
        jsonl=JSONL,
        csv=CSV,
        parquet=PARQUET,
        oos=len(oos),
        labels=", ".join(f"`{label}`" for label in LABELS),
        summary=_summary_table(info),
        left_open=_left_open_table(info),
        reviewers=" and ".join(REVIEWERS),
        expert=EXPERT,
    )
    (out / "README.md").write_text(readme, encoding="utf-8")
    for name in ("banking77", "clinc150"):
        shutil.copyfile(args.shared / name / "SOURCE_LICENSE", out / f"LICENSE-{name}")
    print(json.dumps({k: info[k] for k in ("totals", "expected_filtered")}, indent=1))
    print(json.dumps(info["review_queues"], indent=1))
    print(
        json.dumps(
            {
                k: v
                for k, v in info["decisions"].items()
                if k not in ("reviewer_mistakes", "changed_mind")
            },
            indent=1,
        )
    )
    print(json.dumps(info["expected_pipeline"], indent=1))


if __name__ == "__main__":
    main()
