"""Fuzzed inbox: every unit of every entry ends as exactly one record or quarantine row.

The corpus is generated here (seeded): ordinary exports in every supported format with
defects mixed in (malformed and deep JSON, bad encodings, unterminated CSV quotes, binary
and nested Parquet columns, empty files, broken datasets) plus entries that must be
refused (hidden names, folders, FIFOs, dangling links, links out of the inbox). The
generator knows how many units it wrote and how many are valid records; ingest must
account for every unit, keep exactly the valid ones, give every quarantine row a reason,
and never read anything outside the inbox.
"""

import csv
import io
import json
import os
import random
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from curation_assets.curation.expectations import run_validations
from curation_assets.curation.ingest import intake
from curation_assets.defs.ingest.suites import quarantine_expectations, raw_scrapes_expectations
from curation_assets_tests.fixtures import small_settings

pytestmark = pytest.mark.integration  # a 6,866-unit corpus: ./scripts/test --fast skips it

SECRET = "TOP-SECRET-OUTSIDE-THE-INBOX-4f1c"
LABELS = ["card_arrival", "pending_transfer", "lost_card", "refund"]


@dataclass
class Entry:
    units: int  # what the generator wrote: lines, elements, rows (1 for a refused entry)
    kept: int  # of which valid records
    refused: bool = False


@dataclass
class Corpus:
    inbox: Path
    rng: random.Random
    entries: dict[str, Entry] = field(default_factory=dict)

    def text(self) -> str:
        words = ["my", "card", "has", "not", "arrived", "refund", "please", "why", "is", "the"]
        return " ".join(self.rng.choice(words) for _ in range(self.rng.randint(3, 12)))

    def row(self) -> dict:
        return {"text": self.text() + f" #{self.rng.randrange(10**9)}", "label": "refund"}

    def add(self, name: str, data: bytes, units: int, kept: int) -> None:
        (self.inbox / name).write_bytes(data)
        self.entries[name] = Entry(units, kept)

    def refuse(self, name: str) -> None:
        self.entries[name] = Entry(1, 0, refused=True)


def _jsonl_lines(corpus: Corpus, n: int) -> tuple[list[bytes], int]:
    """``n`` units of JSONL: mostly valid, with every line-level defect mixed in."""
    defects = [
        b'{"text": "unterminated',
        b"[1, 2, 3]",
        b'"just a string"',
        b'{"text": "caf\xe9 latin-1", "label": "refund"}',
        b'{"label": "refund"}',
        b'{"text": "no label here"}',
        b'{"text": "", "label": ""}',
        b"[" * 100_000 + b"]" * 100_000,
        b'{"text": ' + b'{"a": ' * 150 + b"1" + b"}" * 150 + b', "label": "refund"}',
        json.dumps({"text": "x" * 3_000, "label": "refund"}).encode(),
    ]
    lines, kept = [], 0
    for _ in range(n):
        if corpus.rng.random() < 0.12:
            lines.append(corpus.rng.choice(defects))
        else:
            row = corpus.row()
            if corpus.rng.random() < 0.05:
                row["text"] += corpus.rng.choice(["\u2028", "\u2029", "\u0085", "\r"]) + "tail"
            if corpus.rng.random() < 0.05:
                row["meta"] = {"tags": [1, {"deep": [2, 3]}], "score": None}
            lines.append(json.dumps(row, ensure_ascii=corpus.rng.random() < 0.5).encode())
            kept += 1
    return lines, kept


def _csv_rows(corpus: Corpus, n: int, delimiter: str = ",") -> tuple[list[bytes], int]:
    """``n`` CSV units after a header: valid rows, legit multi-line quoted fields and
    every record-level defect (each defect is one unit, the lines after it are read)."""
    out, kept = [], 0
    for _ in range(n):
        roll = corpus.rng.random()
        if roll < 0.04:
            out.append(f'"unterminated quote{delimiter}refund'.encode())
        elif roll < 0.07:
            out.append(f'"closed" then text{delimiter}refund'.encode())
        elif roll < 0.10:
            out.append(f"too{delimiter}many{delimiter}fields".encode())
        elif roll < 0.12:
            out.append(b"caf\xe9" + delimiter.encode() + b"refund")
        elif roll < 0.14:
            out.append(delimiter.encode())  # a record of empty fields: an empty record
        else:
            buf = io.StringIO()
            text = corpus.text()
            if roll < 0.20:
                text += '\nsecond line, with "quotes" and a comma'
            csv.writer(buf, delimiter=delimiter, lineterminator="").writerow([text, "refund"])
            out.append(buf.getvalue().encode())
            kept += 1
    return out, kept


def _parquet(table: pa.Table) -> bytes:
    sink = io.BytesIO()
    pq.write_table(table, sink)
    return sink.getvalue()


def build_corpus(inbox: Path, outside: Path, seed: int = 13) -> Corpus:
    corpus = Corpus(inbox, random.Random(seed))
    inbox.mkdir(parents=True)
    # JSONL with every line ending and a BOM; blank lines are separators, not units.
    for i, (eol, bom) in enumerate(
        [(b"\n", b""), (b"\r\n", b""), (b"\r", b""), (b"\n", intake.UTF8_BOM)] * 6
    ):
        lines, kept = _jsonl_lines(corpus, 120)
        body = bom + eol.join(line + (eol if j % 17 == 0 else b"") for j, line in enumerate(lines))
        corpus.add(f"scrape_{i:02d}.jsonl", body + eol, len(lines), kept)
    # .json exports: an array (pretty and compact), one object, JSONL named .json.
    for i in range(4):
        rows = [corpus.row() for _ in range(150)]
        mixed: list = rows + [7, "text", None]
        corpus.rng.shuffle(mixed)
        indent = 2 if i % 2 else None
        corpus.add(f"export_{i}.json", json.dumps(mixed, indent=indent).encode(), 153, 150)
    corpus.add("one_object.json", json.dumps(corpus.row(), indent=2).encode(), 1, 1)
    rows = [corpus.row() for _ in range(40)]
    corpus.add("lines.json", b"\n".join(json.dumps(r).encode() for r in rows), 40, 40)
    broken = json.dumps([corpus.row() for _ in range(30)])[:-1]  # never closed
    corpus.add("unclosed_array.json", intake.UTF8_BOM + broken.encode(), 31, 30)
    garbage = json.dumps([corpus.row() for _ in range(10)]) + ' {"x": 1}'
    latin = b'[{"text": "ok one", "label": "refund"}, {"text": "caf\xe9", "label": "refund"}]'
    corpus.add("latin1_array.json", latin, 2, 1)
    corpus.add("trailing.json", garbage.encode(), 11, 10)
    # CSV/TSV with \n, \r\n and lone \r, a BOM, strict quoting.
    for i, (eol, bom, delimiter) in enumerate(
        [
            ("\n", "", ","),
            ("\r\n", "", ","),
            ("\r", "", ","),
            ("\n", "\ufeff", ","),
            ("\n", "", "\t"),
        ]
        * 3
    ):
        rows_b, kept = _csv_rows(corpus, 150, delimiter)
        header = f"text{delimiter}label".encode()
        body = bom.encode() + eol.encode().join([header, *rows_b]) + eol.encode()
        suffix = "tsv" if delimiter == "\t" else "csv"
        corpus.add(f"helpdesk_{i:02d}.{suffix}", body, len(rows_b), kept)
    # Empty files of every kind: recorded as empty batches.
    corpus.add("zero_bytes.jsonl", b"", 0, 0)
    corpus.add("blank_only.jsonl", b"\n  \n\t\n", 0, 0)
    corpus.add("header_only.csv", b"text,label\n", 0, 0)
    corpus.add("zero_bytes.csv", b"", 0, 0)
    corpus.add("empty_array.json", b"[]", 0, 0)
    # Parquet: plain, nested list/struct columns, binary (text and not), dictionary, empty.
    n = 200
    texts = [corpus.text() for _ in range(n)]
    corpus.add("plain.parquet", _parquet(pa.table({"text": texts, "label": ["refund"] * n})), n, n)
    nested = pa.table(
        {
            "text": texts,
            "label": pa.array(["refund"] * n).dictionary_encode(),
            "tags": [[i, i + 1] for i in range(n)],
            "meta": [{"a": i, "b": [str(i)]} for i in range(n)],
        }
    )
    corpus.add("nested.parquet", _parquet(nested), n, n)
    blobs = [t.encode() if i % 10 else b"\xff\xfe\x00binary" for i, t in enumerate(texts)]
    binary = pa.table({"text": pa.array(blobs, pa.binary()), "label": ["refund"] * n})
    corpus.add("binary.parquet", _parquet(binary), n, n - n // 10)
    nested_prompt = pa.table({"text": [[t] for t in texts], "label": ["refund"] * n})
    corpus.add("list_prompt.parquet", _parquet(nested_prompt), n, n)
    empty = pa.table({"text": pa.array([], pa.string()), "label": pa.array([], pa.string())})
    corpus.add("empty.parquet", _parquet(empty), 0, 0)
    corpus.add(
        "corrupt.parquet", b"PAR1" + bytes(corpus.rng.randrange(256) for _ in range(500)), 1, 0
    )
    # A saved HF dataset folder, and a broken one.
    import datasets

    datasets.Dataset.from_dict({"text": texts[:50], "label": ["refund"] * 50}).save_to_disk(
        str(inbox / "hf_export")
    )
    corpus.entries["hf_export"] = Entry(50, 50)
    splits = {
        name: datasets.Dataset.from_dict({"text": texts[i : i + 30], "label": ["refund"] * 30})
        for i, name in ((0, "train"), (30, "test"))
    }
    datasets.DatasetDict(splits).save_to_disk(str(inbox / "hf_splits"))
    corpus.entries["hf_splits"] = Entry(60, 60)
    (inbox / "hf_broken").mkdir()
    (inbox / "hf_broken" / "state.json").write_text("{not json")
    corpus.entries["hf_broken"] = Entry(1, 0)
    # Entries that are refused, each with its reason.
    corpus.add("notes.txt", b"some notes", 1, 0)
    (inbox / ".partial_upload.jsonl").write_bytes(b'{"text": "hidden", "label": "refund"}\n')
    corpus.refuse(".partial_upload.jsonl")
    (inbox / "folder.jsonl").mkdir()
    (inbox / "folder.jsonl" / "inner.jsonl").write_bytes(b'{"text": "in a folder", "label": "x"}\n')
    corpus.refuse("folder.jsonl")
    (inbox / "dangling.jsonl").symlink_to(inbox / "does_not_exist.jsonl")
    corpus.refuse("dangling.jsonl")
    outside.parent.mkdir(parents=True)
    outside.write_text(json.dumps({"text": SECRET, "label": "refund"}) + "\n" + SECRET + "\n")
    (inbox / "escape.jsonl").symlink_to(outside)
    corpus.refuse("escape.jsonl")
    (inbox / "escape_dir").symlink_to(outside.parent, target_is_directory=True)
    corpus.refuse("escape_dir")
    os.mkfifo(inbox / "pipe.jsonl")
    corpus.refuse("pipe.jsonl")
    # A link inside the inbox is read (it stays in the inbox).
    (inbox / "alias.jsonl").symlink_to(inbox / "scrape_00.jsonl")
    corpus.entries["alias.jsonl"] = corpus.entries["scrape_00.jsonl"]
    return corpus


@pytest.fixture(scope="module")
def fuzzed(tmp_path_factory):
    import duckdb

    root = tmp_path_factory.mktemp("fuzz")
    settings = small_settings(root / "data", base_model="unused", max_record_bytes=2_000)
    corpus = build_corpus(settings.inbox, root / "outside" / "passwd")
    con = duckdb.connect(str(root / "warehouse.duckdb"))
    entries = intake.list_inbox(settings.inbox)
    for path in entries:
        result = intake.read_file(
            path, settings.column_mapping, settings.max_record_bytes, settings.inbox
        )
        intake.store_batch(con, result, datetime(2026, 12, 1))
    yield corpus, con, settings, entries
    con.close()


def test_corpus_is_big_enough(fuzzed):
    corpus, *_ = fuzzed
    assert sum(e.units for e in corpus.entries.values()) >= 5_000
    assert len(corpus.entries) >= 60


def test_every_entry_is_a_batch(fuzzed):
    corpus, con, _, entries = fuzzed
    assert sorted(p.name for p in entries) == sorted(corpus.entries)
    stored = {b for (b,) in con.sql("SELECT batch FROM ingest_batches").fetchall()}
    assert stored == set(corpus.entries)


def test_every_unit_is_accounted_for(fuzzed):
    corpus, con, *_ = fuzzed
    got = {
        batch: (units, loaded, quarantined, raw, q)
        for batch, units, loaded, quarantined, raw, q in con.sql(
            """SELECT b.batch, b.units_read, b.records_loaded, b.records_quarantined,
                      (SELECT count(*) FROM raw_scrapes r WHERE r.batch = b.batch),
                      (SELECT count(*) FROM quarantine q WHERE q.batch = b.batch)
               FROM ingest_batches b"""
        ).fetchall()
    }
    wrong = {}
    for name, entry in corpus.entries.items():
        units, loaded, quarantined, raw, q = got[name]
        expected = (entry.units, entry.kept, entry.units - entry.kept)
        if (units, loaded, quarantined) != expected or (raw, q) != (loaded, quarantined):
            wrong[name] = {"expected": expected, "got": got[name]}
    assert not wrong
    total = sum(e.units for e in corpus.entries.values())
    accounted = con.sql(
        "SELECT (SELECT count(*) FROM raw_scrapes) + (SELECT count(*) FROM quarantine)"
    ).fetchall()[0][0]
    assert accounted == total


def test_every_quarantine_row_has_a_reason_and_a_place(fuzzed):
    corpus, con, *_ = fuzzed
    rows = con.sql(
        """SELECT q.batch, q.line_no, q.reason, b.units_read FROM quarantine q
           JOIN ingest_batches b USING (batch)"""
    ).fetchall()
    assert all(reason and len(reason) > 10 for _, _, reason, _ in rows)
    assert all(line is not None or units == 1 for _, line, _, units in rows)
    refused = {
        b: r
        for b, r in con.sql("SELECT batch, reason FROM quarantine WHERE line_no IS NULL").fetchall()
    }
    assert "hidden file" in refused[".partial_upload.jsonl"]
    assert "a folder, not a saved HF dataset" in refused["folder.jsonl"]
    assert "dangling symbolic link" in refused["dangling.jsonl"]
    assert "outside the inbox" in refused["escape.jsonl"]
    assert "outside the inbox" in refused["escape_dir"]
    assert "not a regular file" in refused["pipe.jsonl"]
    assert (
        refused["corrupt.parquet"].startswith("unreadable file")
        and "bytes)" in refused["corrupt.parquet"]
    )
    assert refused["hf_broken"].startswith("unreadable file")
    assert "unsupported format .txt" in refused["notes.txt"]


def test_nothing_outside_the_inbox_is_read(fuzzed):
    _, con, *_ = fuzzed
    for table in ("raw_scrapes", "quarantine", "ingest_batches"):
        hits = con.sql(
            f"SELECT count(*) FROM {table} t WHERE CAST(t AS VARCHAR) LIKE '%{SECRET}%'"
        ).fetchall()[0][0]
        assert hits == 0, table


def test_defects_are_quarantined_one_unit_at_a_time(fuzzed):
    _, con, *_ = fuzzed
    reasons = dict(
        con.sql(
            """SELECT regexp_extract(reason, '^[a-zA-Z -]+') AS kind, count(*) FROM quarantine
               GROUP BY kind"""
        ).fetchall()
    )
    for kind in (
        "malformed JSON",
        "JSON nested too deeply ",
        "invalid UTF-",
        "malformed CSV",
        "expected ",
        "oversized record",
        "missing required field",
        "empty record",
        "column ",
    ):
        assert any(k.startswith(kind.strip()) for k in reasons), (kind, reasons)
    deep = con.sql(
        "SELECT count(DISTINCT batch) FROM quarantine WHERE reason LIKE 'JSON nested too deeply%'"
    ).fetchall()[0][0]
    assert deep > 1  # one deep line per file, never the whole file


def test_the_stage_audits_prove_the_accounting(fuzzed):
    _, con, settings, _ = fuzzed
    assert run_validations(con, quarantine_expectations()).success
    audit = run_validations(con, raw_scrapes_expectations(settings))
    failed = {f["expectation"] for f in audit.failures}
    assert "ExpectColumnPairValuesToBeEqual" not in failed  # stored rows match accounting
    con.execute("BEGIN TRANSACTION")  # tamper, audit, undo
    try:
        con.execute("DELETE FROM quarantine WHERE rowid IN (SELECT rowid FROM quarantine LIMIT 1)")
        assert not run_validations(con, quarantine_expectations()).success
        con.execute("UPDATE quarantine SET reason = '' WHERE line_no = 3")
        assert not run_validations(con, quarantine_expectations()).success
    finally:
        con.execute("ROLLBACK")


def test_reading_twice_gives_the_same_rows(fuzzed, tmp_path):
    _, _, settings, entries = fuzzed
    for path in entries:
        if path.name.startswith("scrape_0") or path.suffix in {".csv", ".parquet"}:
            a = intake.read_file(path, settings.column_mapping, settings.max_record_bytes)
            b = intake.read_file(path, settings.column_mapping, settings.max_record_bytes)
            assert a.records.equals(b.records) and a.quarantine.equals(b.quarantine)
            assert a.read_key == b.read_key
