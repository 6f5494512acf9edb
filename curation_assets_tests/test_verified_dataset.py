"""The verified data as a Hugging Face dataset: a real ``verified`` table in a DuckDB file,
exported, then loaded back the three ways a fine-tuning user would (``load_from_disk``,
``load_dataset("parquet", ...)``, ``load_dataset(folder)`` through the card), the card's
header and counts, versioning and ``latest``, the audit, and the push that never happens
without configuration (nothing here reaches the Hub)."""

import dataclasses
import itertools
import os
from datetime import UTC, datetime

import duckdb
import pytest

os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
os.environ.setdefault("HF_HUB_OFFLINE", "1")

from curation_assets.curation import export  # noqa: E402
from curation_assets.curation.export import hub, licences  # noqa: E402
from curation_assets.curation.export.folder import LATEST  # noqa: E402
from curation_assets.curation.review.tables import VERIFIED  # noqa: E402

PROVENANCE = [
    "original_response",
    "edited",
    "verified_by",
    "verified_at",
    "batch",
    "source",
    "from_queue",
    "expert_seconds",
]
COLUMNS = ["example_id", "prompt", "response", *PROVENANCE]
#: (split, label) of the rows: 5 train, 3 validation, 1 excluded.
LAYOUT = [
    ("train", "billing"),
    ("train", "billing"),
    ("train", "login"),
    ("train", "login"),
    ("train", "delivery"),
    ("validation", "billing"),
    ("validation", "login"),
    ("validation", "delivery"),
    ("excluded", "billing"),
]


def _rows(batch: str = "a.jsonl") -> list[tuple]:
    out = []
    for i, (split, label) in enumerate(LAYOUT):
        edited = i == 1
        out.append(
            (
                f"ex{i:02d}",
                f"customer message number {i} about {label}",
                label,
                "login" if edited else label,
                edited,
                "dr_chen" if i % 2 else "dr_okafor",
                datetime(2026, 11, 2, 9, i, tzinfo=UTC),
                batch,
                "email" if i < 4 else "chat",
                "coverage",
                20.0 + i,
                split,
                "ex05" if split == "excluded" else None,
            )
        )
    return out


def _warehouse(path, rows: list[tuple]) -> duckdb.DuckDBPyConnection:
    con = duckdb.connect(str(path))
    VERIFIED.create(con)
    marks = ", ".join("?" * len(VERIFIED.columns))
    con.executemany(f"INSERT INTO verified VALUES ({marks})", rows)
    return con


def _export(con, root, task_type: str = "classification", **kwargs) -> export.Written:
    labelled = task_type == "classification"
    rows = export.read_verified(con)
    provenance = export.read_provenance(con, labelled)
    return export.write_version(rows, provenance, root, task_type=task_type, **kwargs)


def _header(card: str) -> dict:
    import yaml

    assert card.startswith("---\n")
    return yaml.safe_load(card.split("---\n", 2)[1])


def _table_after(card: str, heading: str) -> list[dict]:
    """The first Markdown table after ``heading`` as rows of text cells."""
    lines = card.split(heading, 1)[1].splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith("|"))
    table = list(itertools.takewhile(lambda line: line.startswith("|"), lines[start:]))
    names = [c.strip() for c in table[0].strip("|").split("|")]
    return [
        dict(zip(names, (c.strip() for c in line.strip("|").split("|")), strict=True))
        for line in table[2:]
    ]


@pytest.fixture
def exported(tmp_path):
    con = _warehouse(tmp_path / "warehouse.duckdb", _rows())
    written = _export(con, tmp_path / "datasets" / "verified", languages=("en",))
    yield con, written, tmp_path
    con.close()


def test_the_folder_loads_back_as_train_and_validation_without_excluded_rows(exported):
    import datasets

    con, written, _ = exported
    assert written.published and not written.unchanged and written.audit.passed
    loaded = datasets.load_from_disk(str(written.folder))
    assert sorted(loaded) == ["train", "validation"]
    assert {s: loaded[s].num_rows for s in loaded} == {"train": 5, "validation": 3}
    for split in loaded:
        assert loaded[split].column_names == COLUMNS
        expected = con.execute(
            "SELECT example_id, response, edited FROM verified WHERE split = ? ORDER BY 1", [split]
        ).fetchall()
        got = loaded[split].select_columns(["example_id", "response", "edited"]).to_list()
        assert [tuple(r.values()) for r in got] == expected
    every_id = set(loaded["train"]["example_id"]) | set(loaded["validation"]["example_id"])
    assert "ex08" not in every_id  # the excluded row
    assert not set(loaded["train"]["example_id"]) & set(loaded["validation"]["example_id"])
    assert str(loaded["train"].features["verified_at"].dtype) == "timestamp[us, tz=UTC]"


def test_parquet_files_and_the_cards_configs_load_the_same_rows(exported, tmp_path):
    import datasets

    _, written, _ = exported
    folder = written.folder
    assert sorted(p.name for p in (folder / "data").iterdir()) == [
        "train-00000-of-00001.parquet",
        "validation-00000-of-00001.parquet",
    ]
    saved = datasets.load_from_disk(str(folder))
    files = {s: str(folder / "data" / f"{s}-00000-of-00001.parquet") for s in saved}
    cache = str(tmp_path / "hf_cache")
    from_parquet = datasets.load_dataset("parquet", data_files=files, cache_dir=cache)
    from_card = datasets.load_dataset(str(folder), cache_dir=cache)
    for split in ("train", "validation"):
        assert from_parquet[split].to_list() == saved[split].to_list()
        assert from_card[split].to_list() == saved[split].to_list()


def test_the_card_header_parses_and_its_counts_match_verified(exported):
    con, written, _ = exported
    card = (written.folder / "README.md").read_text()
    header = _header(card)
    assert header["license"] == "other"  # a batch of unknown origin
    assert header["task_categories"] == ["text-classification"]
    assert header["language"] == ["en"] and header["size_categories"] == ["n<1K"]
    config = header["configs"][0]
    assert {f["split"]: f["path"] for f in config["data_files"]} == {
        "train": "data/train-*",
        "validation": "data/validation-*",
    }
    info = header["dataset_info"]
    assert [f["name"] for f in info["features"]] == COLUMNS
    assert {s["name"]: s["num_examples"] for s in info["splits"]} == {"train": 5, "validation": 3}
    labels = {r["label"]: r for r in _table_after(card, "## Labels")}
    expected = con.execute(
        "SELECT response, count(*) FILTER (split = 'train'), "
        "count(*) FILTER (split = 'validation'), count(*) FILTER (split = 'excluded') "
        "FROM verified GROUP BY 1"
    ).fetchall()
    assert {
        k: (int(v["train"]), int(v["validation"]), int(v["excluded"])) for k, v in labels.items()
    } == {label: (train, validation, excluded) for label, train, validation, excluded in expected}
    assert "Left out: 1 example with split `excluded`" in card
    assert written.version in card and "load_from_disk(FOLDER)" in card
    assert "not known" in card and "`a.jsonl`" in card  # says why the licence is other
    experts = {r["expert"]: int(r["examples"]) for r in _table_after(card, "Experts who verified")}
    assert experts == {"dr_chen": 4, "dr_okafor": 4}


def test_batches_of_the_bundled_sample_carry_their_sources_licences(tmp_path):
    """The demo's inbox files are recognised by content: CC BY 4.0 (banking77) and CC BY
    3.0 (CLINC150), with the attribution; a user's batch gets the declared licence."""
    files, _ = licences._known_folder(licences.BUNDLED_SOURCES)
    sample = sorted(files)[0]
    rows = [(*r[:7], sample if i < 6 else "mine.jsonl", *r[8:]) for i, r in enumerate(_rows())]
    con = _warehouse(tmp_path / "w.duckdb", rows)
    con.execute(
        "CREATE TABLE ingest_batches (batch VARCHAR, sha256 VARCHAR, units_read BIGINT, "
        "records_loaded BIGINT, records_quarantined BIGINT)"
    )
    con.executemany(
        "INSERT INTO ingest_batches VALUES (?, ?, 10, 9, 1)",
        [(sample, files[sample]), ("mine.jsonl", "0" * 64)],
    )
    written = _export(con, tmp_path / "out", declared_license="mit")
    assert _header(written.card)["license"] == ["cc-by-4.0", "cc-by-3.0", "mit"]
    assert (
        "Casanueva et al. 2020" in written.card and "`mine.jsonl` are under `mit`" in written.card
    )
    # the same names with other content are not the sample
    con.execute("UPDATE ingest_batches SET sha256 = '1' || sha256[2:]")
    con.execute("UPDATE verified SET prompt = prompt || '!'")  # a new version
    assert _header(_export(con, tmp_path / "out").card)["license"] == "other"


def test_the_same_rows_keep_their_version_and_a_changed_row_moves_latest(exported):
    import datasets

    con, first, tmp_path = exported
    root = first.folder.parent
    assert export.latest_version(root) == first.version
    stamps = {p: p.stat().st_mtime_ns for p in first.folder.rglob("*")}
    again = _export(con, root)
    assert (again.version, again.unchanged, again.latest_moved) == (first.version, True, False)
    assert {p: p.stat().st_mtime_ns for p in first.folder.rglob("*")} == stamps  # not rewritten
    con.execute("SET TimeZone = 'America/Los_Angeles'")  # the version does not depend on it
    assert export.read_verified(con).version == first.version

    con.execute("UPDATE verified SET response = 'delivery' WHERE example_id = 'ex00'")
    changed = _export(con, root)
    assert changed.version != first.version and changed.latest_moved and not changed.unchanged
    assert export.latest_version(root) == changed.version
    assert first.folder.is_dir() and changed.folder == root / changed.version  # both kept
    newest = datasets.load_from_disk(str(root / LATEST))
    assert newest["train"].filter(lambda r: r["example_id"] == "ex00")["response"] == ["delivery"]
    assert not list(root.glob(".writing-*"))  # no temporary folder left


def test_a_licence_declared_later_rewrites_only_the_card(exported):
    con, first, _ = exported
    root = first.folder.parent
    data = {p: p.stat().st_mtime_ns for p in first.folder.rglob("*") if p.name != "README.md"}
    declared = _export(con, root, declared_license="cc-by-sa-4.0")
    assert (declared.version, declared.unchanged, declared.card_updated) == (
        first.version,
        True,
        True,
    )
    assert _header((first.folder / "README.md").read_text())["license"] == "cc-by-sa-4.0"
    assert "`a.jsonl` are under `cc-by-sa-4.0`" in declared.card
    assert {p: p.stat().st_mtime_ns for p in data} == data  # the data files stay
    assert not _export(con, root, declared_license="cc-by-sa-4.0").card_updated


def test_a_published_card_is_replaced_only_by_one_that_passes_its_audit(exported, monkeypatch):
    from curation_assets.curation.export import card

    con, first, _ = exported
    before = (first.folder / "README.md").read_text()
    monkeypatch.setattr(card, "render", lambda *a, **k: "no header at all\n")
    with pytest.raises(ValueError, match="fails its audit"):
        _export(con, first.folder.parent, declared_license="cc-by-sa-4.0")
    assert (first.folder / "README.md").read_text() == before  # readers keep the audited card


def test_a_version_that_fails_its_audit_is_staged_and_latest_stays(exported):
    con, first, _ = exported
    root = first.folder.parent
    con.execute("UPDATE verified SET prompt = 'changed ' || prompt WHERE example_id = 'ex02'")
    rows = export.read_verified(con)
    wrong = dataclasses.replace(rows, counts={**rows.counts, "train": 99})  # as if rows were lost
    written = export.write_version(
        wrong, export.read_provenance(con, True), root, task_type="classification"
    )
    assert not written.published and not written.audit.passed
    assert written.folder == root / "staged" / rows.version
    assert not (root / rows.version).exists()
    assert export.latest_version(root) == first.version
    failed = {(f["validation"], f["expectation"]) for f in written.audit.failures}
    assert failed == {
        ("train", "ExpectRowCountToEqualVerified(value=99)"),
        ("train parquet", "ExpectRowCountToEqualVerified(value=99)"),
    }
    # with the true counts it publishes, and the staged copy goes
    assert export.write_version(
        rows, export.read_provenance(con, True), root, task_type="classification"
    ).published
    assert not (root / "staged" / rows.version).exists()


def test_instruction_data_gets_length_statistics(tmp_path):
    rows = [(*r[:2], f"Answer {i}: " + "word " * (i + 1), *r[3:]) for i, r in enumerate(_rows())]
    con = _warehouse(tmp_path / "w.duckdb", rows)
    written = _export(con, tmp_path / "out", task_type="instruction")
    assert _header(written.card)["task_categories"] == ["text-generation"]
    lengths = {r["split"]: r for r in _table_after(written.card, "## Lengths")}
    assert {s: int(r["examples"]) for s, r in lengths.items()} == {"train": 5, "validation": 3}
    assert int(lengths["train"]["response_chars_max"]) == len("Answer 4: " + "word " * 5)
    assert "## Labels" not in written.card


def test_nothing_is_pushed_without_configuration(exported, monkeypatch):
    import datasets
    from huggingface_hub import HfApi

    from curation_assets.defs.export.assets import VerifiedDatasetConfig

    calls = []
    monkeypatch.setattr(datasets.DatasetDict, "push_to_hub", lambda *a, **k: calls.append(a))
    monkeypatch.setattr(HfApi, "upload_file", lambda *a, **k: calls.append(a))
    monkeypatch.delenv(hub.REPO_VARIABLE, raising=False)
    _, written, _ = exported
    assert VerifiedDatasetConfig().repo() is None
    nothing = export.push(written.folder, written.version, None, "hf_token")
    assert not nothing.pushed and hub.REPO_VARIABLE in nothing.message
    no_token = export.push(written.folder, written.version, "org/data", None)
    assert not no_token.pushed and "token" in no_token.message
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    offline = export.push(written.folder, written.version, "org/data", "hf_token")
    assert not offline.pushed and "HF_HUB_OFFLINE" in offline.message
    assert calls == []
    monkeypatch.setenv(hub.REPO_VARIABLE, "org/from-env")
    assert VerifiedDatasetConfig().repo() == "org/from-env"
    assert VerifiedDatasetConfig(hub_repo="org/this-run").repo() == "org/this-run"


def test_a_configured_push_sends_the_dataset_and_the_card_once(exported, monkeypatch):
    """With a repository and a token (and the Hub faked: nothing leaves the machine)."""
    import datasets
    from huggingface_hub import HfApi

    calls = []
    monkeypatch.setattr(
        datasets.DatasetDict,
        "push_to_hub",
        lambda self, repo, **k: calls.append(("push", repo, sorted(self), k["private"])),
    )
    monkeypatch.setattr(
        HfApi,
        "upload_file",
        lambda self, **k: calls.append(("card", k["repo_id"], k["path_in_repo"])),
    )
    monkeypatch.setattr(hub, "hub_offline", lambda: False)
    _, written, _ = exported
    done = export.push(written.folder, written.version, "org/data", "hf_token")
    assert done.pushed and done.url == "https://huggingface.co/datasets/org/data"
    assert calls == [
        ("push", "org/data", ["train", "validation"], True),
        ("card", "org/data", "README.md"),
    ]
    again = export.push(written.folder, written.version, "org/data", "hf_token")
    assert not again.pushed and "already" in again.message and len(calls) == 2


def test_the_asset_is_gated_pooled_and_runs_with_every_curate_run(tmp_path):
    import dagster as dg

    from curation_assets.config import Settings
    from curation_assets.definitions import build_definitions

    defs = build_definitions(Settings(data_dir=tmp_path))
    key = dg.AssetKey("verified_dataset")
    asset = defs.resolve_assets_def(key)
    spec = asset.get_asset_spec()
    assert (spec.group_name, spec.owners) == ("export", ["team:curation"])
    assert {"huggingface", "parquet"} <= set(spec.kinds)
    assert [d.asset_key for d in spec.deps] == [dg.AssetKey("verified")]
    check = defs.resolve_asset_graph().get_check_spec(dg.AssetCheckKey(key, "loads_back"))
    assert check.blocking
    assert key in defs.resolve_job_def("curate_job").asset_layer.selected_asset_keys


@pytest.mark.integration  # a Dagster run with the real resources
def test_the_asset_refuses_unverified_data_then_exports_through_dagster(tmp_path):
    import dagster as dg

    from curation_assets.config import Settings
    from curation_assets.definitions import build_definitions
    from curation_assets.defs.resources import resources_for

    settings = Settings(data_dir=tmp_path / "data")
    settings.data_dir.mkdir(parents=True)
    _warehouse(settings.warehouse, _rows()).close()
    defs = build_definitions(settings)
    graph = defs.resolve_asset_graph()
    key = dg.AssetKey("verified_dataset")
    upstream = graph.get_check_keys_for_assets(
        {k for k in graph.get_ancestor_asset_keys(key) if not graph.get(k).is_partitioned}
    )
    blocking = [k for k in upstream if graph.get_check_spec(k).blocking]
    assert dg.AssetCheckKey(dg.AssetKey("verified"), "expectations") in blocking

    def materialize(instance):
        return dg.materialize(
            [*defs.assets, *defs.asset_checks],
            selection=[key],
            instance=instance,
            resources=resources_for(settings),
            raise_on_error=False,
        )

    with dg.instance_for_test() as instance:
        refused = materialize(instance)  # verified's audit never ran: nothing leaves
        assert not refused.success
        failure = refused.get_step_failure_events()[0].step_failure_data.user_failure_data
        assert "Refusing to materialize verified_dataset" in failure.description
        assert not export.export_root(settings.data_dir).exists()
        for check in blocking:
            instance.report_runless_asset_event(
                dg.AssetCheckEvaluation(
                    asset_key=check.asset_key, check_name=check.name, passed=True
                )
            )
        result = materialize(instance)
        assert result.success
        (event,) = result.get_asset_materialization_events()
        meta = event.materialization.metadata
        folder = export.export_root(settings.data_dir) / meta["data_version"].value
        assert meta["path"].value == str(folder) and (folder / "dataset_dict.json").is_file()
        assert meta["dagster/row_count"].value == 8 and meta["excluded_examples"].value == 1
        assert meta["hub"].value.startswith("not pushed")
        assert {r.data["label"] for r in meta["per_label"].value.records} == {
            "billing",
            "delivery",
            "login",
        }
        (check,) = result.get_asset_check_evaluations()
        assert check.passed and check.check_name == "loads_back"
        assert event.materialization.tags["dagster/data_version"] == meta["data_version"].value
        instance.report_runless_asset_event(  # a later audit of verified fails: refused again
            dg.AssetCheckEvaluation(
                asset_key=dg.AssetKey("verified"),
                check_name="expectations",
                passed=False,
                severity=dg.AssetCheckSeverity.ERROR,
            )
        )
        assert not materialize(instance).success
