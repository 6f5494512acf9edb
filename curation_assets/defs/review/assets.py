"""Stage 3, review: ``review_queue`` -> ``reviewed`` -> ``verified``.

Human decisions live in the decision store (SQLite, not the warehouse), shown in the
graph as the external asset ``review_decisions`` (``decision_store.py``: the asset, its
sensor and its integrity check); the audits' suites are in ``suites.py``.
"""

from collections.abc import Iterator

import dagster as dg
from dagster_duckdb import DuckDBResource

from curation_assets.config import Settings
from curation_assets.curation import publish, warehouse
from curation_assets.curation.filtering import tables as filtering_tables
from curation_assets.curation.review import agreement, review_stage
from curation_assets.curation.review import tables as review_tables
from curation_assets.defs.resources import DecisionStoreResource, EncoderResource, SettingsParam
from curation_assets.defs.review.suites import (
    GROUPS,
    review_queue_expectations,
    reviewed_expectations,
    verified_expectations,
)
from curation_assets.defs.shared.checks import publish_audited
from curation_assets.defs.shared.datasets import published_dataset
from curation_assets.defs.shared.gate import require_upstream_checks_passed
from curation_assets.defs.shared.metadata import as_table, column_lineage
from curation_assets.defs.shared.run_config import ReviewQueueConfig


def queue_config(
    settings: Settings, refit: bool = False, encoder: EncoderResource | None = None
) -> review_stage.QueueConfig:
    """The queue settings of ``Settings``, embedding with ``encoder`` (default: the
    settings' ``suspect_encoder`` and the user cache)."""
    encoder = encoder or EncoderResource(model=settings.suspect_encoder)
    return review_stage.QueueConfig(
        suspect_fit_rows=settings.suspect_fit_rows,
        suspect_fit_rows_per_label=settings.suspect_fit_rows_per_label,
        suspect_refit=refit,
        coverage_sample_size=settings.coverage_sample_size,
        suspect_queue_size=settings.suspect_queue_size,
        reviews_required=settings.reviews_required,
        verified_takes_suspect_fixes=settings.verified_takes_suspect_fixes,
        labelled=settings.task_type == "classification",
        suspect_encoder=encoder.model,
        cache_dir=encoder.cache_path,
        seed=settings.seed,
    )


@dg.asset(
    deps=["filtered", "review_decisions"],
    description=(
        "Two queues over `filtered`, each ordered by `priority` (1 first): `coverage`, a "
        "stratified sample (label, source, length, rule warnings) that experts confirm into "
        "`verified`; and `suspect`, the examples most likely mislabelled (confident learning "
        "on out-of-sample probabilities), for cleaning. Each row has `score`, `queue_reason` "
        "and `review_status`; disagreements (`needs_expert`) come first. Published to the "
        "decision store for the review app."
    ),
    **published_dataset(
        review_tables.REVIEW_QUEUE,
        "Audit before publishing to the review app (Great Expectations): both queues "
        "drawn from filtered, the coverage sample at its size, unique priorities per "
        "queue, a reason and a score for each row (warning: a label missing from the "
        "coverage sample).",
        GROUPS["review_queue"],
    ),
)
def review_queue(
    context: dg.AssetExecutionContext,
    config: ReviewQueueConfig,
    duckdb: DuckDBResource,
    decision_store: DecisionStoreResource,
    encoder: EncoderResource,
    settings: SettingsParam,
) -> Iterator:
    require_upstream_checks_passed(context)
    settings = config.applied_to(settings)
    store = decision_store.load_all()
    with duckdb.get_connection() as con, publish.transaction(con):
        scoring = review_stage.build_review_queue(
            con,
            store,
            queue_config(settings, config.refit_suspect_models, encoder),
            settings.allowed_labels,
            log=context.log.info,
        )
        status = (
            con.sql(
                "SELECT queue, review_status, count(*) AS examples FROM review_queue "
                "GROUP BY ALL ORDER BY ALL"
            )
            .df()
            .to_dict("records")
        )
        heads = {
            queue: warehouse.preview(
                con,
                "SELECT priority, example_id, prompt, response, round(score, 3) AS score, "
                "queue_reason, review_status FROM review_queue "
                f"WHERE queue = '{queue}' ORDER BY priority",
            )
            for queue in review_stage.QUEUES
        }
        patterns = review_stage.suspect_patterns(con)
        total = warehouse.count(con, "review_queue")
        needs_expert = warehouse.count(con, "review_queue", "review_status = 'needs_expert'")
        items = review_stage.queue_for_app(con)
        version = con.execute(
            "SELECT sha256(string_agg(concat_ws(':', example_id, queue, priority, score, "
            "review_status, response), ',' ORDER BY queue, priority)) FROM review_queue"
        ).fetchall()[0][0]
        check, outcome = publish_audited(
            con,
            settings,
            "review_queue",
            review_queue_expectations(settings),
            GROUPS["review_queue"],
        )
    if not outcome.published:
        yield from check  # the review app keeps showing the previous queue
        return
    published = decision_store.publish_queue(items)
    sizes = items["queue"].value_counts().to_dict()
    context.log.info(
        f"review_queue: {sizes.get('coverage', 0)} coverage + {sizes.get('suspect', 0)} "
        f"suspect examples, {needs_expert} need an expert; published {published} to "
        f"{decision_store.path}"
    )
    yield dg.MaterializeResult(
        metadata={
            **config.metadata(),
            **column_lineage(review_tables.REVIEW_QUEUE, filtering_tables.FILTERED),
            "dagster/row_count": total,
            "coverage_examples": int(sizes.get("coverage", 0)),
            "suspect_examples": int(sizes.get("suspect", 0)),
            "needs_expert": needs_expert,
            "by_queue_and_status": as_table(status),
            "next_up_coverage": as_table(heads["coverage"]),
            "next_up_suspect": as_table(heads["suspect"]),
            "suspect_scoring": dg.MetadataValue.json(scoring),
            "suspect_refit": dg.MetadataValue.text(
                f"refit: {scoring['refit_reason']}" if scoring["refit"] else "no refit"
            ),
            "suspect_newly_scored": int(scoring["newly_scored"]),
            "step_seconds": dg.MetadataValue.json(scoring["step_seconds"]),
            "suspect_confusions": as_table(
                patterns["confusions"], "(no label suspected of a confusion)"
            ),
            "suspect_rate_per_source": as_table(patterns["per_source"]),
            "suspect_rate_per_label": as_table(patterns["per_label"]),
            "decisions_in_store": len(store),
            "published_to_review_app": published,
            "data_version": version or "empty",
        },
        data_version=dg.DataVersion(version or "empty"),
    )
    yield from check


@dg.asset(
    deps=["review_queue", "review_decisions"],
    description=(
        "Filtered examples whose deciding decision keeps them: an expert's latest decision, "
        "else `reviews_required` reviewers whose latest votes agree. Edits replace the "
        "response (the original stays); `from_queue` says which queue the decision came "
        "from. Reviewer agreement (Cohen's kappa, Krippendorff's alpha) is stored in "
        "`review_agreement`."
    ),
    **published_dataset(
        review_tables.REVIEWED,
        "Audit before publishing (Great Expectations): unique examples, every row "
        "attributed to a person, only accepting decisions, labels in the allowed set, "
        "and reviewer agreement (Cohen's kappa) at least min_agreement once enough "
        "examples have two or more reviews.",
        GROUPS["reviewed"],
    ),
)
def reviewed(
    context: dg.AssetExecutionContext,
    duckdb: DuckDBResource,
    decision_store: DecisionStoreResource,
    settings: SettingsParam,
) -> Iterator:
    require_upstream_checks_passed(context)
    store = decision_store.load_all()
    with duckdb.get_connection() as con, publish.transaction(con):
        stats = review_stage.build_reviewed(
            con, store, settings.reviews_required, settings.allowed_labels
        )
        total = warehouse.count(con, "reviewed")
        edited = warehouse.count(con, "reviewed", "edited")
        by_queue = (
            con.sql(
                "SELECT from_queue, decided_by_role AS role, decision, count(*) AS examples "
                "FROM reviewed GROUP BY ALL ORDER BY ALL"
            )
            .df()
            .to_dict("records")
        )
        rejected = warehouse.count(con, "review_queue", "review_status = 'rejected'")
        unknown = con.execute(  # decisions about examples not (or no longer) filtered
            "SELECT count(DISTINCT example_id) FROM _decisions "
            "WHERE example_id NOT IN (SELECT example_id FROM filtered)"
        ).fetchall()[0][0]
        invalid = con.execute("SELECT count(*) FROM _decisions WHERE NOT valid").fetchall()[0][0]
        patterns = review_stage.review_patterns(con)
        check, outcome = publish_audited(
            con,
            settings,
            "reviewed",
            reviewed_expectations(settings),
            GROUPS["reviewed"],
            [agreement.AGREEMENT_TABLE],
        )
    if not outcome.published:
        yield from check
        return
    overall = stats[stats["scope"] == "overall"].iloc[0]
    enough = int(overall["items"]) >= settings.min_agreement_items
    note = (
        f"kappa checked against min_agreement={settings.min_agreement}"
        if enough
        else f"not checked: {int(overall['items'])} examples with 2+ reviews, "
        f"{settings.min_agreement_items} needed"
    )
    per_label = stats[stats["scope"] == "label"][
        ["key", "items", "observed_agreement", "kappa", "alpha"]
    ].rename(columns={"key": "label"})
    yield dg.MaterializeResult(
        metadata={
            **column_lineage(
                review_tables.REVIEWED,
                filtering_tables.FILTERED,
                renamed={"original_response": "response"},
            ),
            "dagster/row_count": total,
            "edited": edited,
            "from_suspect_queue": int(
                sum(r["examples"] for r in by_queue if r["from_queue"] == "suspect")
            ),
            "rejected_by_review": rejected,
            "by_queue_role_and_decision": as_table(by_queue),
            "agreement_items": int(overall["items"]),
            "agreement_kappa": _number(overall["kappa"]),
            "agreement_alpha": _number(overall["alpha"]),
            "agreement_observed": _number(overall["observed_agreement"]),
            "agreement_note": note,
            "agreement_per_label": as_table(_records(per_label)),
            "per_reviewer": as_table(patterns["per_reviewer"]),
            "corrections": as_table(patterns["corrections"], "(no corrections)"),
            "error_rate_per_source": as_table(patterns["per_source"]),
            "decided_examples_not_in_filtered": int(unknown),
            "invalid_decisions_ignored": int(invalid),
        }
    )
    yield from check


def _number(value: float) -> dg.MetadataValue:
    return (
        dg.MetadataValue.float(round(float(value), 4))
        if value == value
        else (dg.MetadataValue.text("n/a"))
    )


def _records(frame) -> list[dict]:
    frame = frame.round(4)
    return frame.astype(object).where(frame.notna(), None).to_dict("records")


@dg.asset(
    deps=["reviewed"],
    description=(
        "Expert decisions (accepted or corrected) on the coverage sample: the only data a "
        "fine-tune may use (suspect-queue fixes too if `verified_takes_suspect_fixes`). "
        "`split` (train / validation) is fixed per example by a hash of its prompt; train "
        "examples that share n-grams with a validation example are `excluded` (never trained)."
    ),
    **published_dataset(
        review_tables.VERIFIED,
        "Audit before publishing (Great Expectations): enough verified examples to "
        "train, labels in the allowed set, both splits populated and no prompt shared "
        "between train and validation.",
        GROUPS["verified"],
    ),
)
def verified(
    context: dg.AssetExecutionContext,
    duckdb: DuckDBResource,
    decision_store: DecisionStoreResource,
    settings: SettingsParam,
) -> Iterator:
    require_upstream_checks_passed(context)
    store = decision_store.load_all()
    take = settings.verified_takes_suspect_fixes
    with duckdb.get_connection() as con, publish.transaction(con):
        review_stage.build_verified(
            con, store, settings.validation_fraction, take, settings.decontamination_ngram
        )
        splits = (
            con.sql(
                "SELECT split, count(*) AS examples, count(DISTINCT response) AS labels "
                "FROM verified GROUP BY split ORDER BY split"
            )
            .df()
            .to_dict("records")
        )
        per_label = (
            con.sql(
                "SELECT response AS label, count(*) AS examples, sum(edited::INT) AS corrected "
                "FROM verified GROUP BY 1 ORDER BY 1"
            )
            .df()
            .to_dict("records")
        )
        total, corrected = con.execute(
            "SELECT count(*), sum(edited::INT) FROM verified"
        ).fetchall()[0]
        accounting = review_stage.expert_time(con, take)
        version = con.execute(
            "SELECT sha256(string_agg(example_id || ':' || response || ':' || split, ',' "
            "ORDER BY example_id)) FROM verified"
        ).fetchall()[0][0]
        check, outcome = publish_audited(
            con, settings, "verified", verified_expectations(settings), GROUPS["verified"]
        )
    if not outcome.published:
        yield from check
        return
    total = int(total or 0)
    yield dg.MaterializeResult(
        metadata={
            **column_lineage(
                review_tables.VERIFIED,
                review_tables.REVIEWED,
                renamed={"verified_by": "decided_by", "verified_at": "decided_at"},
            ),
            "dagster/row_count": total,
            "corrected_by_expert": int(corrected or 0),
            **{k: v if v is not None else "n/a" for k, v in accounting.items()},
            "takes_suspect_fixes": take,
            "splits": as_table(splits),
            "per_label": as_table(per_label),
            "data_version": version or "empty",
        },
        data_version=dg.DataVersion(version or "empty"),
    )
    yield from check
