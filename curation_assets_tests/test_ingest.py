"""Ingest: every line of a dropped file becomes a record or a quarantine row with a reason."""

import json
from datetime import datetime

import pandas as pd
import pytest

from curation_assets.curation.ingest import intake
from curation_assets.curation.records import example_id, resolve_columns, to_canonical


def _write_jsonl(path, lines: list[bytes]):
    path.write_bytes(b"\n".join(lines) + b"\n")
    return path


def test_malformed_lines_are_quarantined_with_line_and_reason(tmp_path):
    path = _write_jsonl(
        tmp_path / "a.jsonl",
        [
            json.dumps({"text": "where is my card", "label": "card_arrival"}).encode(),
            b'{"text": "broken',
            b"\xff\xfe not utf-8",
            b"[1, 2]",
            json.dumps({"text": "no label here"}).encode(),
            json.dumps({"text": "", "label": ""}).encode(),
            json.dumps({"text": "x" * 500, "label": "a"}).encode(),
        ],
    )
    result = intake.read_file(path, {}, max_record_bytes=300)
    assert list(result.records["prompt"]) == ["where is my card"]
    reasons = dict(zip(result.quarantine["line_no"], result.quarantine["reason"], strict=True))
    assert reasons[2].startswith("malformed JSON")
    assert reasons[3].startswith("invalid UTF-8")
    assert "not an object" in reasons[4]
    assert reasons[5] == "missing required field: label (mapped to response)"
    assert reasons[6].startswith("empty record")
    assert reasons[7].startswith("oversized record")
    assert result.units_read == len(result.records) + len(result.quarantine) == 7


def test_csv_wrong_field_count_and_encoding(tmp_path):
    path = tmp_path / "b.csv"
    path.write_bytes(b'text,category\nhello there,a\n"two\nlines",b\nx,y,z\n\xff,c\n')
    result = intake.read_file(path, {}, 10_000)
    assert list(result.records["line_no"]) == [2, 3]
    assert result.records["prompt"].tolist() == ["hello there", "two\nlines"]
    assert set(result.quarantine["reason"]) == {
        "expected 2 fields, got 3",
        "invalid UTF-8 encoding",
    }


def test_unreadable_and_unsupported_files_become_one_quarantine_row(tmp_path):
    bad_parquet = tmp_path / "c.parquet"
    bad_parquet.write_bytes(b"not a parquet file")
    unknown = tmp_path / "d.xml"
    unknown.write_text("<x/>")
    for path, start in ((bad_parquet, "unreadable file"), (unknown, "unsupported format")):
        result = intake.read_file(path, {}, 10_000)
        assert result.records.empty
        assert len(result.quarantine) == 1
        assert result.quarantine["reason"][0].startswith(start)


def test_parquet_and_hf_dataset_are_read(tmp_path):
    import datasets

    frame = pd.DataFrame(
        {"question": ["what is two plus two", "capital of France"], "answer": ["4", "Paris"]}
    )
    frame.to_parquet(tmp_path / "e.parquet")
    datasets.Dataset.from_pandas(frame).save_to_disk(str(tmp_path / "f_dataset"))
    for path in (tmp_path / "e.parquet", tmp_path / "f_dataset"):
        result = intake.read_file(path, {}, 10_000)
        assert result.records["response"].tolist() == ["4", "Paris"]
        assert result.quarantine.empty
    assert [p.name for p in intake.list_inbox(tmp_path)] == ["e.parquet", "f_dataset"]


def test_column_mapping_from_config_wins(tmp_path):
    cols = resolve_columns(
        ["utterance_text", "gold", "label"], {"utterance_text": "prompt", "gold": "response"}
    )
    assert cols["prompt"] == "utterance_text" and cols["response"] == "gold"
    frame = pd.DataFrame({"foo": ["a"], "bar": ["b"]})
    _, problem = to_canonical(frame, {})
    assert problem and "CURATION_COLUMN_MAPPING" in problem


def test_instruction_input_is_appended_unless_a_no_input_marker():
    frame = pd.DataFrame(
        {"instruction": ["Sum", "Sum"], "input": ["2 and 3", "<noinput>"], "output": ["5", "?"]}
    )
    canonical, _ = to_canonical(frame, {})
    assert canonical["prompt"].tolist() == ["Sum\n\n2 and 3", "Sum"]


def test_example_id_is_stable_under_case_and_whitespace():
    assert example_id("Where is  my card?", "a") == example_id(" where is my card? ", "a")
    assert example_id("Where is my card?", "a") != example_id("Where is my card?", "b")


def test_store_batch_is_idempotent(tmp_path, con):
    path = _write_jsonl(
        tmp_path / "a.jsonl",
        [json.dumps({"text": f"message number {i}", "label": "a"}).encode() for i in range(5)]
        + [b"{oops"],
    )
    for _ in range(2):
        intake.store_batch(con, intake.read_file(path, {}, 10_000), datetime(2026, 1, 1))
    assert con.sql("SELECT count(*) FROM raw_scrapes").fetchall()[0][0] == 5
    assert con.sql("SELECT count(*) FROM quarantine").fetchall()[0][0] == 1
    assert con.sql("SELECT units_read FROM ingest_batches").fetchall() == [(6,)]


@pytest.mark.parametrize("name", ["x.jsonl", "x.csv"])
def test_empty_file_reads_zero_units(tmp_path, name):
    path = tmp_path / name
    path.write_text("text,label\n" if name.endswith("csv") else "")
    result = intake.read_file(path, {}, 100)
    assert result.units_read == 0


@pytest.mark.parametrize("suffix", ["csv", "jsonl"])
@pytest.mark.parametrize("separator", ["\u2028", "\u2029", "\u0085"])
def test_unicode_line_separators_inside_values_keep_rows_aligned(tmp_path, separator, suffix):
    rows = [
        {"text": f"first{separator}message about my card", "label": "card_arrival"},
        {"text": "second message", "label": "pending_transfer"},
    ]
    path = tmp_path / f"seps.{suffix}"
    if suffix == "csv":
        pd.DataFrame(rows).to_csv(path, index=False)
    else:
        path.write_text("\n".join(json.dumps(r, ensure_ascii=False) for r in rows) + "\n")
    result = intake.read_file(path, {}, max_record_bytes=10_000)
    assert len(result.records) == 2 and result.quarantine.empty
    originals = [json.loads(o) for o in result.records["original"]]
    assert [o["label"] for o in originals] == ["card_arrival", "pending_transfer"]
    assert originals[0]["text"] == rows[0]["text"]


@pytest.mark.integration
def test_ingest_stage_records_odd_entries_and_keeps_unchanged_batches(tmp_path):
    """The Dagster ingest step on an empty file, a hidden file and a dangling link (each
    an audited batch, none a crash), and a second ingest of an unchanged file (rows and
    ``ingested_at`` kept) against a changed one (read again)."""
    import os

    import dagster as dg
    import duckdb

    from curation_assets.definitions import build_definitions
    from curation_assets.defs.ingest.assets import inbox_files
    from curation_assets_tests.fixtures import make_rows, small_settings, write_inbox

    settings = small_settings(tmp_path / "data", base_model="unused")
    write_inbox(settings.inbox, make_rows(5), name="a.jsonl")
    (settings.inbox / "empty.csv").write_bytes(b"")
    (settings.inbox / ".swap.jsonl").write_text('{"text": "x", "label": "y"}\n')
    os.symlink(tmp_path / "nowhere.jsonl", settings.inbox / "gone.jsonl")
    keys = [p.name for p in intake.list_inbox(settings.inbox)]
    assert keys == [".swap.jsonl", "a.jsonl", "empty.csv", "gone.jsonl"]
    job = build_definitions(settings).resolve_job_def("ingest_job")

    def ingest_all(instance) -> dict[str, dg.ExecuteInProcessResult]:
        return {
            k: job.execute_in_process(instance=instance, partition_key=k, raise_on_error=False)
            for k in keys
        }

    def stored(sql: str):
        with duckdb.connect(str(settings.warehouse), read_only=True) as con:
            return con.sql(sql).fetchall()

    with dg.instance_for_test() as instance:
        instance.add_dynamic_partitions(inbox_files.name, keys)
        first = ingest_all(instance)
        assert all(r.success for r in first.values())
        for key in keys:
            checks = first[key].get_asset_check_evaluations()
            assert {c.asset_key.to_user_string() for c in checks} == {"raw_scrapes", "quarantine"}
            assert all(c.passed for c in checks)
        rows = dict(stored("SELECT batch, units_read FROM ingest_batches"))
        assert rows == {
            ".swap.jsonl": 1,
            "a.jsonl": len(make_rows(5)) + 3,
            "empty.csv": 0,
            "gone.jsonl": 1,
        }
        refused = dict(stored("SELECT batch, reason FROM quarantine WHERE line_no IS NULL"))
        assert "hidden file" in refused[".swap.jsonl"]
        assert "dangling symbolic link" in refused["gone.jsonl"]
        before = stored("SELECT batch, ingested_at FROM ingest_batches ORDER BY batch")

        again = ingest_all(instance)
        meta = again["a.jsonl"].get_asset_materialization_events()[0].materialization.metadata
        assert meta["unchanged"].value is True
        assert stored("SELECT batch, ingested_at FROM ingest_batches ORDER BY batch") == before

        write_inbox(settings.inbox, make_rows(6), name="a.jsonl")  # new content
        result = job.execute_in_process(instance=instance, partition_key="a.jsonl")
        meta = result.get_asset_materialization_events()[0].materialization.metadata
        assert meta["unchanged"].value is False
        units = dict(stored("SELECT batch, units_read FROM ingest_batches"))["a.jsonl"]
        assert units == len(make_rows(6)) + 3  # write_inbox adds 3 broken lines
