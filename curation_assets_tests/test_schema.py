"""Declared tables: one declaration per dataset table, the DDL made from it, the catalog's
column schema taken from it, and a publish that refuses a table that drifted from it."""

import dagster as dg
import duckdb
import pytest

from curation_assets.curation import publish, schema
from curation_assets.curation.filtering import tables as filtering_tables
from curation_assets.curation.ingest import tables as ingest_tables
from curation_assets.curation.lineage import tables as lineage_tables
from curation_assets.curation.review import tables as review_tables
from curation_assets.curation.training import tables as training_tables

STAGE_TABLES = (ingest_tables, filtering_tables, review_tables, lineage_tables, training_tables)
#: Declared tables that are a stage's bookkeeping, not assets of their own.
BOOKKEEPING = {
    "ingest_batches",
    "pii_redactions",
    "held_batches",
    "review_agreement",
    "suspect_models",
    "suspect_scores",
    "example_embeddings",
    # filtering: the MinHash index, decontamination, PII scans, annotations, caches
    "annotations",
    "annotations_versions",
    "contamination",
    "contamination_meta",
    "filter_generations",
    "language_annotations",
    "minhash_docs",
    "minhash_index",
    "minhash_meta",
    "near_duplicates",
    "pii_scanned",
    "record_flags_ruleset",
    # training: the model registry
    "models",
    "model_examples",
    "model_evaluations",
}


def declared_tables() -> list[schema.Table]:
    """Every table a stage declares (plus the shared ``held_batches``)."""
    found = [
        value
        for module in STAGE_TABLES
        for value in vars(module).values()
        if isinstance(value, schema.Table)
    ]
    return [*found, publish.HELD_BATCHES]


def test_every_declared_column_is_described_once():
    tables = declared_tables()
    assert len({t.name for t in tables}) == len(tables) >= 11
    for table in tables:
        assert table.description
        assert len(set(table.column_names)) == len(table.columns), table.name
        assert all(c.description and c.type for c in table.columns), table.name
        assert schema.declared(table.name) is table


@pytest.mark.parametrize("table", declared_tables(), ids=lambda t: t.name)
def test_created_tables_have_exactly_the_declared_columns_and_types(table):
    con = duckdb.connect()
    table.create(con)
    assert table.drift(con, types=True) == []


def test_drift_names_missing_undeclared_and_retyped_columns():
    con = duckdb.connect()
    con.execute(
        "CREATE TABLE rejections (record_id VARCHAR, example_id VARCHAR, batch VARCHAR, "
        "line_no VARCHAR, rule VARCHAR, why VARCHAR)"
    )
    (names,) = filtering_tables.REJECTIONS.drift(con)
    assert "missing ['reason']" in names and "undeclared ['why']" in names
    con.execute("ALTER TABLE rejections RENAME COLUMN why TO reason")
    assert filtering_tables.REJECTIONS.drift(con) == []
    assert filtering_tables.REJECTIONS.drift(con, types=True) == [
        "rejections.line_no: type VARCHAR, declared BIGINT"
    ]
    assert filtering_tables.REJECTIONS.drift(duckdb.connect()) == ["rejections does not exist"]


def test_a_drifted_table_is_never_published(tmp_path):
    con = duckdb.connect(str(tmp_path / "w.duckdb"))
    filtering_tables.REJECTIONS.create(con)
    con.execute("INSERT INTO rejections VALUES ('b:1', 'e1', 'b', 1, 'too_short', 'short')")
    with (
        pytest.raises(schema.SchemaDriftError, match="undeclared"),  # noqa: PT012
        publish.transaction(con),
    ):
        con.execute("DELETE FROM rejections")
        con.execute("ALTER TABLE rejections ADD COLUMN detail VARCHAR")
        publish.finish(con, True, ["rejections"])
    # the published version is untouched: same columns, same row
    assert filtering_tables.REJECTIONS.drift(con) == []
    assert con.sql("SELECT rule FROM rejections").fetchall() == [("too_short",)]
    # undeclared tables publish as before
    con.execute("CREATE TABLE scratch (x INTEGER)")
    with publish.transaction(con):
        con.execute("INSERT INTO scratch VALUES (1)")
        assert publish.finish(con, True, ["scratch"]).published


def test_dataset_assets_show_their_declared_columns_in_the_catalog():
    from curation_assets.definitions import defs

    graph = defs.resolve_asset_graph()
    for table in declared_tables():
        key = dg.AssetKey(table.name)
        if table.name in BOOKKEEPING:
            assert not graph.has(key)
            continue
        metadata = graph.get(key).metadata
        columns = metadata["dagster/column_schema"].columns
        assert [(c.name, c.type) for c in columns] == [(c.name, c.type) for c in table.columns]
        assert all(c.description for c in columns)
        assert metadata["dagster/table_name"] == f"warehouse.main.{table.name}"


def test_column_lineage_follows_same_named_and_renamed_columns():
    from curation_assets.defs.shared.metadata import column_lineage

    lineage = column_lineage(filtering_tables.FILTERED, ingest_tables.RAW_SCRAPES)
    deps = lineage["dagster/column_lineage"].deps_by_column
    assert set(deps) == {"record_id", "example_id", "batch", "line_no", "source"} | {
        "prompt",
        "response",
    }
    assert deps["prompt"][0].asset_key == dg.AssetKey("raw_scrapes")
    renamed = column_lineage(
        review_tables.VERIFIED, review_tables.REVIEWED, renamed={"verified_by": "decided_by"}
    )["dagster/column_lineage"].deps_by_column
    assert renamed["verified_by"][0].column_name == "decided_by"
    assert "split" not in renamed  # computed in verified, from no single column


def test_a_stage_file_binds_every_table_it_declares(tmp_path):
    (tmp_path / "tables.yaml").write_text(
        "scratch_a:\n  description: A.\n  columns:\n    record_id:\n"
        '    n: {type: BIGINT, constraint: NOT NULL, description: "A count."}\n'
        "scratch_b:\n  description: B.\n  columns:\n    batch:\n"
    )
    module = str(tmp_path / "tables.py")
    with pytest.raises(ValueError, match="declares"):
        schema.load_tables(module, "scratch_a")
    a, _ = schema.load_tables(module, "scratch_a", "scratch_b")
    assert a.column_names == ["record_id", "n"]
    assert a.columns[0] is schema.shared_columns()["record_id"]
    assert a.ddl() == '"record_id" VARCHAR, "n" BIGINT NOT NULL'


def test_a_key_over_several_columns_is_enforced():
    con = duckdb.connect()
    review_tables.EXAMPLE_EMBEDDINGS.create(con)
    con.execute("INSERT INTO example_embeddings VALUES ('e1', 'minilm', [0.5])")
    con.execute("INSERT INTO example_embeddings VALUES ('e1', 'static', [0.5])")  # other model
    with pytest.raises(duckdb.ConstraintException):
        con.execute("INSERT INTO example_embeddings VALUES ('e1', 'minilm', [0.1])")


#: The hand-written DDL these tables were created with before they were declared (columns
#: added later by ``ALTER TABLE ... ADD COLUMN`` left out): warehouses made with it exist.
OLD_DDL = {
    "minhash_docs": "seq BIGINT PRIMARY KEY, record_id VARCHAR UNIQUE, cluster_id BIGINT, "
    "n_shingles INTEGER",
    "near_duplicates": "record_id VARCHAR, cluster_id BIGINT, representative_record_id VARCHAR, "
    "jaccard DOUBLE, matched_record_id VARCHAR, matched_jaccard DOUBLE, seq BIGINT",
    "models": """model_id VARCHAR PRIMARY KEY, created_at TIMESTAMP, model_dir VARCHAR,
        base_model VARCHAR, data_version VARCHAR, train_examples BIGINT,
        validation_examples BIGINT, train_loss DOUBLE, metrics VARCHAR, run_id VARCHAR""",
    "model_examples": "model_id VARCHAR, example_id VARCHAR, split VARCHAR, prompt_key VARCHAR",
    "model_evaluations": """model_id VARCHAR, evaluated_at TIMESTAMP, split VARCHAR,
        examples BIGINT, accuracy DOUBLE, macro_f1 DOUBLE, report VARCHAR""",
    "suspect_models": """model_id VARCHAR PRIMARY KEY, fitted_at TIMESTAMPTZ, fingerprint VARCHAR,
        labelled BOOLEAN, classes VARCHAR[], sample_rows BIGINT, rows_at_fit BIGINT,
        refit_reason VARCHAR, info JSON, blob BLOB, active BOOLEAN""",
    "suspect_scores": """example_id VARCHAR PRIMARY KEY, score DOUBLE, quality DOUBLE,
        given VARCHAR, suggested VARCHAR, p_given DOUBLE, p_suggested DOUBLE, method VARCHAR,
        reason VARCHAR, flagged BOOLEAN, n_flags INTEGER, quality_tfidf DOUBLE,
        quality_embeddings DOUBLE, model_id VARCHAR, scored_at TIMESTAMPTZ""",
    "example_embeddings": "example_id VARCHAR, model VARCHAR, embedding FLOAT[], "
    "PRIMARY KEY (example_id, model)",
}


def _constraints(con: duckdb.DuckDBPyConnection, table: str) -> set[tuple[str, tuple]]:
    rows = con.execute(
        "SELECT constraint_type, constraint_column_names FROM duckdb_constraints() "
        "WHERE table_name = ? AND constraint_type IN ('PRIMARY KEY', 'UNIQUE', 'NOT NULL')",
        [table],
    ).fetchall()
    return {(kind, tuple(columns)) for kind, columns in rows}


def test_declarations_keep_the_keys_of_the_old_ddl():
    """A declaration that dropped a key would let new warehouses take duplicates."""
    for name, ddl in OLD_DDL.items():
        old, new = duckdb.connect(), duckdb.connect()
        old.execute(f"CREATE TABLE {name} ({ddl})")
        schema.declared(name).create(new)
        assert _constraints(new, name) == _constraints(old, name), name


def test_a_warehouse_made_with_the_old_ddl_conforms_to_the_declarations():
    from curation_assets.curation.filtering import dedup
    from curation_assets.curation.training import registry

    con = duckdb.connect()
    for name, ddl in OLD_DDL.items():
        con.execute(f"CREATE TABLE {name} ({ddl})")
    con.execute("INSERT INTO minhash_docs VALUES (0, 'b:1', 0, 12)")
    con.execute("INSERT INTO models (model_id, run_id) VALUES ('m1', 'r1')")
    dedup.ensure_index(con, dedup.MinHashConfig())  # creates what is missing, migrates
    registry.ensure_registry(con)
    for name in OLD_DDL:
        assert schema.declared(name).drift(con, types=True) == [], name
    # the rows stay; the columns added later are NULL on them
    assert con.sql("SELECT * FROM minhash_docs").fetchall() == [(0, "b:1", 0, 12, None, None)]
    assert con.sql("SELECT run_id, task_type FROM models").fetchall() == [("r1", None)]


def test_the_declared_keys_of_the_bookkeeping_tables_hold():
    con = duckdb.connect()
    filtering_tables.MINHASH_DOCS.create(con)
    training_tables.MODELS.create(con)
    con.execute("INSERT INTO minhash_docs VALUES (0, 'b:1', 0, 12, 'b', 'e1')")
    for duplicate in (
        "INSERT INTO minhash_docs VALUES (0, 'b:2', 0, 3, 'b', 'e2')",  # seq
        "INSERT INTO minhash_docs VALUES (1, 'b:1', 1, 3, 'b', 'e2')",  # record_id
    ):
        with pytest.raises(duckdb.ConstraintException):
            con.execute(duplicate)
    con.execute("INSERT INTO models (model_id) VALUES ('m1')")
    with pytest.raises(duckdb.ConstraintException):
        con.execute("INSERT INTO models (model_id) VALUES ('m1')")
