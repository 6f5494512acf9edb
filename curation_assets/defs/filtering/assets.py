"""Stage 2, filtered: named rules annotate every raw record; survivors form ``filtered``."""

import dataclasses
import os
import secrets
from pathlib import Path

import dagster as dg
from dagster_duckdb import DuckDBResource

from curation_assets.config import Settings
from curation_assets.curation import overrides, publish, warehouse
from curation_assets.curation.filtering import filter_stage, rule_engine
from curation_assets.curation.filtering import tables as filtering_tables
from curation_assets.curation.ingest import tables as ingest_tables
from curation_assets.curation.review import decisions
from curation_assets.defs.automation.conditions import ON_NEW_DATA
from curation_assets.defs.filtering.suites import (
    ACCOUNTING_SQL,
    GROUPS,
    filtered_expectations,
    rates_sql,
    rejections_expectations,
)
from curation_assets.defs.resources import DUCKDB_POOL, DecisionStoreResource, SettingsParam
from curation_assets.defs.shared.checks import audit_checks, audit_specs, snapshot_dir, validate
from curation_assets.defs.shared.datasets import dataset
from curation_assets.defs.shared.metadata import as_table, column_lineage
from curation_assets.defs.shared.run_config import FilteredConfig


def filter_config(settings: Settings) -> filter_stage.FilterConfig:
    """Every threshold of the stage, from settings: each ``FilterConfig`` field that is a
    setting of the same name, plus the three that are derived."""
    same_named = {
        f.name: getattr(settings, f.name)
        for f in dataclasses.fields(filter_stage.FilterConfig)
        if hasattr(settings, f.name)
    }
    eval_files = (*settings.decontamination_files, *settings.eval_files)
    return filter_stage.FilterConfig(
        **{
            **same_named,
            "dedup_threshold": settings.near_duplicate_threshold or None,
            "pii_key": _pii_key(settings),
            "eval_files": tuple(Path(f) for f in dict.fromkeys(eval_files)),
        }
    )


def rules(settings: Settings) -> list[rule_engine.Rule]:
    """The rule set with the thresholds from settings."""
    return filter_stage.rules(filter_config(settings))


def _pii_key(settings: Settings) -> bytes:
    """The key of the PII value hashes: ``CURATION_PII_KEY``, else a random key kept (0600)
    next to the warehouse, so masked values cannot be recovered by hashing guesses."""
    if os.environ.get("CURATION_PII_KEY"):
        return os.environ["CURATION_PII_KEY"].encode()
    path = settings.data_dir / ".pii_key"
    return decisions.private_secret_file(path, lambda: secrets.token_hex(32)).encode()


HELD_CHECK = dg.AssetCheckSpec(
    "held_batches",
    asset="filtered",
    blocking=False,
    description=(
        "Batches held back from `filtered` because they failed a per-batch bound (rule "
        "drop rate, rejection or quarantine rate, accounting): WARN while any is held. "
        "Clean batches before and after a held one publish normally."
    ),
)


@dg.multi_asset(
    specs=[
        dg.AssetSpec(
            "filtered",
            deps=["raw_scrapes"],
            description=(
                "Raw records that no filter rule fired on, one row per distinct example, "
                "PII masked (spans in `pii_redactions`). Rules: lengths, labels, exact and "
                "near duplicates (MinHash LSH, incremental across batches), pair rules "
                "(instruction data) or Gopher/C4/FineWeb rules (web documents), language, "
                "decontamination against evaluation data. Published only after its audit "
                "passes; a batch that fails a per-batch bound is held back (`held_batches`)."
            ),
            **dataset(filtering_tables.FILTERED),
            automation_condition=ON_NEW_DATA,
            skippable=True,
        ),
        dg.AssetSpec(
            "rejections",
            deps=["raw_scrapes"],
            description="One row per (raw record, rule that fired), with the rule's reason.",
            **dataset(filtering_tables.REJECTIONS),
            skippable=True,
        ),
    ],
    check_specs=[
        *audit_specs(
            "filtered",
            "Audit before publishing (Great Expectations): example ids present and unique, "
            "no empty prompt or response, labels in the allowed set; per published batch: "
            "read = kept + rejected + quarantined, rejection and quarantine rates within "
            "their bounds, no single rule dropping more of a batch than its bound. A batch "
            "over a bound is held back alone (see `held_batches`).",
            GROUPS["filtered"],
        ),
        *audit_specs(
            "rejections",
            "Audit before publishing: every row names a record of `raw_scrapes`, a known rule "
            "and a non-empty reason, once per (record, rule); no record is both kept and "
            "rejected; per batch, raw records = kept (held batches included) + rejected.",
            GROUPS["rejections"],
        ),
        HELD_CHECK,
    ],
    pool=DUCKDB_POOL,
)
def filter_raw_scrapes(
    context: dg.AssetExecutionContext,
    config: FilteredConfig,
    duckdb: DuckDBResource,
    decision_store: DecisionStoreResource,
    settings: SettingsParam,
):
    """Annotate new records, deduplicate, run every rule; hold bad batches; publish."""
    settings = config.applied_to(settings)
    cfg = filter_config(settings)
    rule_set = filter_stage.rules(cfg)
    accepted_all = decision_store.batch_overrides()
    with duckdb.get_connection() as con:
        ingest_tables.ensure_tables(con)
        publish.ensure_held_table(con)
        with publish.transaction(con):
            report = filter_stage.run_stage(con, cfg, publish=False)
            holds, accepted = _batch_holds(con, settings, accepted_all)
            publish.replace_holds(con, "filtered", holds)
            rule_engine.publish_filtered(con)  # staged inside the transaction
            skip = [h["batch"] for h in holds] + [a["batch"] for a in accepted]
            audit = validate(con, settings, "filtered", filtered_expectations(settings, skip))
            rejections_audit = validate(
                con, settings, "rejections", rejections_expectations([r.name for r in rule_set])
            )
            per_rule = rule_engine.rule_counts(con)
            accounting = rule_engine.batch_accounting(con).df().to_dict("records")
            kept = warehouse.count(con, "filtered")
            working = warehouse.count(con, rule_engine.WORKING_TABLE)
            rejected_records = con.execute(
                "SELECT count(DISTINCT record_id) FROM rejections"
            ).fetchall()[0][0]
            raw = warehouse.count(con, "raw_scrapes")
            quarantined = warehouse.count(con, "quarantine")
            sample = warehouse.preview(
                con,
                "SELECT record_id, example_id, rule, reason FROM rejections ORDER BY record_id",
            )
            pii = filter_stage.pii_summary(con)
            worst = warehouse.preview(
                con,
                "SELECT batch, rule, rejected, records, drop_rate, bound "
                f"FROM ({rates_sql(settings)}) ORDER BY drop_rate DESC",
            )
            # both tables come from one transaction: either failing keeps both unpublished
            outcome = publish.finish(
                con, audit.success and rejections_audit.success, ["filtered", "rejections"]
            )
        if outcome.published:
            out = snapshot_dir(settings)
            for table in ("filtered", "rejections", publish.HELD_TABLE):
                publish.snapshot(con, out, table)
    context.log.info(
        f"filtered: {raw} raw records -> {kept} kept, {rejected_records} rejected"
        + (f", {len(holds)} batch(es) held back" if holds else "")
    )
    checks = audit_checks(
        "filtered",
        audit,
        outcome,
        GROUPS["filtered"],
        extra={
            "held_batches": as_table(holds, "(none)"),
            "accepted_by_override": as_table(accepted, "(none)"),
        },
    )
    checks += audit_checks("rejections", rejections_audit, outcome, GROUPS["rejections"])
    held_check = dg.AssetCheckResult(
        asset_key="filtered",
        check_name="held_batches",
        passed=not holds,
        severity=dg.AssetCheckSeverity.WARN,
        metadata={
            "held": len(holds),
            "batches": as_table(holds, "(none held)"),
            "what_to_do": dg.MetadataValue.md(
                "A held batch's rows stay in `filtered__working` (and out of `filtered` and "
                "everything downstream). Replace its file in the inbox (it is ingested "
                "again), change the bound, or accept it on purpose: `curation batches "
                "accept BATCH --reason '...'`."
            ),
        },
    )
    if not outcome.published:
        yield from checks
        yield held_check
        return
    counts = {c["rule"]: c["records"] for c in per_rule}
    rule_table = [
        {"rule": r.name, "scope": r.scope, "reason": r.reason, "records": counts.get(r.name, 0)}
        for r in rule_set
    ]
    steps = [
        {"step": k, "seconds": v, "new_records": report.new_records.get(k, "")}
        for k, v in report.seconds.items()
    ]
    yield dg.MaterializeResult(
        asset_key="filtered",
        metadata={
            **config.metadata(),
            **column_lineage(filtering_tables.FILTERED, ingest_tables.RAW_SCRAPES),
            "dagster/row_count": kept,
            "raw_records": raw,
            "kept": kept,
            "kept_in_held_batches": working - kept,
            "rejected": int(rejected_records),
            "quarantined": quarantined,
            "counts_add_up": raw == working + rejected_records,
            "per_rule": as_table(rule_table),
            "per_batch": as_table(accounting),
            "held_batches": as_table(holds, "(none)"),
            "highest_rule_drop_rates": as_table(worst),
            "pii_masked": as_table(pii) if pii else "no PII found",
            "steps": as_table(steps),
            "stage_seconds": round(sum(report.seconds.values()), 2),
        },
    )
    yield dg.MaterializeResult(
        asset_key="rejections",
        metadata={
            **column_lineage(filtering_tables.REJECTIONS, ingest_tables.RAW_SCRAPES),
            "dagster/row_count": sum(c["records"] for c in per_rule),
            "rejected_records": int(rejected_records),
            "sample": as_table(sample),
            "per_rule_counts": dg.MetadataValue.json(counts),
        },
    )
    yield from checks
    yield held_check


def _batch_holds(con, settings: Settings, accepted_all: list[dict]) -> tuple[list[dict], list]:
    """Batches over a per-batch bound: (held, accepted by an override) with reasons."""
    problems = con.execute(
        f"""WITH acct AS ({ACCOUNTING_SQL}), rates AS ({rates_sql(settings)})
            SELECT p.batch, any_value(b.sha256) AS sha256, any_value(b.records_loaded) AS n,
                   string_agg(p.reason, '; ' ORDER BY p.reason) AS reason
            FROM (
                SELECT batch, printf('%d units unaccounted', unaccounted) AS reason
                FROM acct WHERE unaccounted <> 0
                UNION ALL
                SELECT batch, printf('rejected %.1f%% of its records (bound %.1f%%)',
                                     100 * rejection_rate, {100 * settings.max_rejection_rate})
                FROM acct WHERE rejection_rate > {float(settings.max_rejection_rate)}
                UNION ALL
                SELECT batch, printf('quarantined %.1f%% of its units (bound %.1f%%)',
                                     100 * quarantine_rate, {100 * settings.max_quarantine_rate})
                FROM acct WHERE quarantine_rate > {float(settings.max_quarantine_rate)}
                UNION ALL
                SELECT batch, printf('rule %s dropped %.1f%% (bound %.1f%%)',
                                     rule, 100 * drop_rate, 100 * bound)
                FROM rates WHERE over_bound
            ) p JOIN ingest_batches b USING (batch)
            GROUP BY p.batch ORDER BY p.batch"""
    ).fetchall()
    holds, accepted = [], []
    for batch, sha256, records, reason in problems:
        override = overrides.accepted(accepted_all, batch, sha256)
        if override is not None:
            accepted.append({**override, "audit": reason})
            continue
        holds.append(
            {
                "batch": batch,
                "sha256": sha256,
                "records": records,
                "reason": reason,
                "staged_table": rule_engine.WORKING_TABLE,
            }
        )
    return holds, accepted
