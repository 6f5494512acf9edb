"""The bundled instruction sample (``curation_assets/sample_data/instruction``) agrees with
its manifest, and the whole graph with its settings catches every defect class with its
rule and reaches ``verified`` with the bundled decisions.

``scripts/build_instruction_sample.py`` builds the bundle from alpaca-libre (MIT) and
records the truth in ``manifest.json``; every expectation here comes from it.
"""

import hashlib
import json
from collections import Counter
from pathlib import Path

import duckdb
import pytest

from curation_assets.config import Settings
from curation_assets.curation.ingest import intake
from curation_assets.curation.review import decisions

SAMPLE = Path(__file__).resolve().parent.parent / "curation_assets" / "sample_data" / "instruction"
MANIFEST = json.loads((SAMPLE / "manifest.json").read_text(encoding="utf-8"))
DECISIONS = SAMPLE / "decisions" / "review_decisions.jsonl"


def _settings(data_dir: Path) -> Settings:
    values = dict(MANIFEST["settings"])
    values["labels"] = tuple(values["labels"])
    return Settings(data_dir=data_dir, inbox_dir=SAMPLE / "inbox", **values)


def test_manifest_hashes_match_the_files_and_the_licence_is_there():
    files = {str(p.relative_to(SAMPLE)) for p in SAMPLE.rglob("*") if p.is_file()}
    assert files == {*MANIFEST["sha256"], "manifest.json", "README.md"}
    for name, digest in MANIFEST["sha256"].items():
        assert hashlib.sha256((SAMPLE / name).read_bytes()).hexdigest() == digest, name
    licence = (SAMPLE / "LICENSE-alpaca-libre").read_text(encoding="utf-8")
    assert licence.startswith("MIT License") and "Maciej Obarski" in licence
    for entry in MANIFEST["source"]["files"]:  # the provenance lines
        assert entry["sha256"] in licence and entry["commit"] in licence
    # self_instruct_user_oriented must not be used for training: it is not in the bundle
    assert "self_instruct" not in json.dumps(MANIFEST["source"])
    assert sum(p.stat().st_size for p in SAMPLE.rglob("*") if p.is_file()) < 1_500_000


def test_every_raw_line_is_accounted_for():
    rows = MANIFEST["rows"]
    for name, info in MANIFEST["files"].items():
        lines = (SAMPLE / "inbox" / name).read_text(encoding="utf-8").splitlines()
        mine = [r for r in rows if r["record"].rsplit(":", 1)[0] == name]
        assert len(lines) == info["units"] == len(mine) == sum(info["class_counts"].values())
        assert [int(r["record"].rsplit(":", 1)[1]) for r in mine] == list(range(1, len(lines) + 1))
        assert dict(Counter(r["class"] for r in mine)) == info["class_counts"]
        result = intake.read_file(SAMPLE / "inbox" / name, {}, Settings().max_record_bytes)
        assert result.units_read == info["units"]
        assert len(result.records) == info["expected_records"], name
        assert len(result.quarantine) == info["expected_quarantined"], name
    assert MANIFEST["totals"]["class_counts"]["malformed_json"] == 14
    # every defect class the pair rules catch is in the bundle
    caught = {c for c, v in MANIFEST["classes"].items() if v["rule"]}
    present = {c for c, n in MANIFEST["totals"]["class_counts"].items() if n}
    assert caught <= present


def test_decisions_import_cleanly_and_match_the_manifest(tmp_path):
    info = MANIFEST["decisions"]
    report = decisions.import_file(DECISIONS, tmp_path / "store.sqlite")
    assert report.errors == [] and report.added == info["count"]
    made = [json.loads(line) for line in DECISIONS.read_text(encoding="utf-8").splitlines()]
    assert dict(Counter(f"{d['role']}:{d['decision']}" for d in made)) == info["by_role_decision"]
    assert {d["reviewer"] for d in made} == {"alice", "bob", "dr_okafor"}
    assert {d["role"] for d in made if d["reviewer"] == "dr_okafor"} == {"expert"}
    assert all(bool(d["corrected_response"]) == (d["decision"] == "edit") for d in made)
    assert {"accept", "edit", "reject"} <= {d["decision"] for d in made if d["role"] == "expert"}
    # decisions only on examples the filters keep
    kept = {r["example_id"] for r in MANIFEST["rows"] if "right" in r}
    assert {d["example_id"] for d in made} <= kept
    assert min(d["decided_at"] for d in made if d["role"] == "expert") > max(
        d["decided_at"] for d in made if d["role"] == "reviewer"
    )


@pytest.mark.integration
def test_whole_graph_catches_each_defect_and_verifies_enough(tmp_path):
    """Ingest + filter + review + verify the bundle through the Dagster curate job."""
    import dagster as dg

    from curation_assets.runs.pipeline import run_everything

    settings = _settings(tmp_path / "data")
    settings.data_dir.mkdir(parents=True)
    report = decisions.import_file(DECISIONS, settings.decision_store)
    assert report.errors == []
    with dg.instance_for_test() as instance:
        out = run_everything(settings, instance, skip_training=True, emit=None)
    assert out["success"], "\n".join(out["lines"])
    assert out["failed_checks"] == []

    with duckdb.connect(str(settings.warehouse), read_only=True) as con:

        def scalar(sql: str):
            return con.execute(sql).fetchall()[0][0]

        fired: dict[str, set[str]] = {}
        for rid, rule in con.execute("SELECT record_id, rule FROM rejections").fetchall():
            fired.setdefault(rid, set()).add(rule)
        quarantined = {
            f"{Path(f).name}:{n}"
            for f, n in con.execute("SELECT source_file, line_no FROM quarantine").fetchall()
        }
        units = scalar("SELECT sum(units_read) FROM ingest_batches")
        kept = scalar("SELECT count(*) FROM filtered")
        verified = scalar("SELECT count(*) FROM verified")
        validation = scalar("SELECT count(*) FROM verified WHERE split = 'validation'")
        corrected = scalar("SELECT count(*) FROM verified WHERE edited")

    expected = MANIFEST["expected_filtered"]
    # counts add up: read = kept + rejected + quarantined
    assert units == MANIFEST["totals"]["units"]
    assert units == kept + len(fired) + len(quarantined)
    assert (kept, len(fired), len(quarantined)) == (
        expected["kept"],
        expected["rejected_records"],
        expected["quarantined"],
    )
    # each defect class is caught by its rule
    missed = Counter()
    by_class = Counter()
    for row in MANIFEST["rows"]:
        rule = MANIFEST["classes"][row["class"]]["rule"]
        if row["class"] == "malformed_json":
            missed[row["class"]] += row["record"] not in quarantined
        elif rule is not None:
            missed[row["class"]] += rule not in fired.get(row["record"], set())
        by_class[row["class"]] += 1
    assert sum(missed.values()) == 0, dict(missed)
    assert all(by_class[c] > 0 for c in MANIFEST["classes"])
    # enough examples reach verified with the bundled decisions
    pipeline = MANIFEST["expected_pipeline"]
    assert verified == pipeline["verified"] >= settings.min_verified_examples
    assert validation == pipeline["verified_splits"]["validation"]
    assert validation >= settings.min_validation_examples
    assert corrected == pipeline["verified_corrected"] > 0
