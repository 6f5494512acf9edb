"""The review stage's expectation suites (Great Expectations), one per asset: what each
audit checks before ``review_queue``, ``reviewed`` and ``verified`` are published, and what
the decision store's integrity check checks."""

from curation_assets.config import Settings
from curation_assets.curation.expectations import Validation, expect, labels_in
from curation_assets.curation.review import agreement, decisions, review_stage

#: The expectation groups of each asset's suite (one Dagster check each): what they check.
GROUPS = {
    "review_queue": {
        "queue": "One row per example, known queue and status, a priority unique within its "
        "queue, a reason, a score in [0, 1]; every queued example is in `filtered`.",
        "queues": "The coverage sample holds the configured number of examples (or all).",
        "labels_covered": "Classification: the coverage sample covers every label of "
        "`filtered` (a warning).",
    },
    "reviewed": {
        "rows": "One row per example, decided by someone, accept or edit, a non-empty "
        "response, labels in the allowed set.",
        "agreement": "Inter-reviewer agreement (Cohen's kappa) at least the bound, once "
        "enough examples have two reviews.",
    },
    "verified": {
        "rows": "Ids present and unique, prompt and response non-empty, verified by someone, "
        "a known split, labels in the allowed set, at least the minimum number of rows.",
        "splits": "Enough validation examples, a non-empty train split, no prompt in both.",
    },
}


def review_decisions_expectations(settings: Settings) -> list[Validation]:
    """GX validations of ``decisions.audit_trail``: rows, edits' labels, integrity."""
    zero = {"min_value": 0, "max_value": 0}
    validations = [
        Validation(
            "decisions",
            "SELECT * FROM decisions",
            [
                expect("ExpectColumnValuesToNotBeNull", column="example_id"),
                expect("ExpectColumnValueLengthsToBeBetween", column="example_id", min_value=1),
                expect("ExpectColumnValuesToNotBeNull", column="reviewer"),
                expect("ExpectColumnValuesToNotBeNull", column="role"),
                expect(
                    "ExpectColumnValuesToBeInSet", column="role", value_set=list(decisions.ROLES)
                ),
                expect(
                    "ExpectColumnValuesToBeInSet",
                    column="decision",
                    value_set=list(decisions.DECISIONS),
                ),
                expect("ExpectDecisionFingerprintsToMatch"),
                expect("ExpectColumnValuesToBeUnique", column="decision_id"),
            ],
            ("decision_id",),
        ),
        Validation(
            "edits",
            "SELECT corrected_response FROM decisions WHERE decision = 'edit'",
            [expect("ExpectColumnValuesToNotBeNull", column="corrected_response")]
            + labels_in(settings.allowed_labels, column="corrected_response"),
        ),
        Validation(
            "append_only",
            "SELECT * FROM integrity",
            [
                expect("ExpectColumnValuesToBeBetween", column=column, **zero)
                for column in (
                    "fingerprint_mismatches",
                    "missing_ids",
                    "deleted_newest",
                    "rewritten_since_last_audit",
                )
            ],
        ),
    ]
    return validations


def review_queue_expectations(settings: Settings) -> list[Validation]:
    validations = [
        Validation(
            "queue",
            "SELECT example_id, queue, priority, queue_reason, review_status, score, prompt, "
            "response, reviews_required FROM review_queue",
            [
                expect("ExpectColumnValuesToBeUnique", column="example_id"),
                expect("ExpectColumnValuesToNotBeNull", column="priority"),
                expect("ExpectColumnValuesToNotBeNull", column="queue_reason"),
                expect(
                    "ExpectColumnValuesToBeInSet",
                    column="queue",
                    value_set=list(review_stage.QUEUES),
                ),
                expect(
                    "ExpectColumnValuesToBeInSet",
                    column="review_status",
                    value_set=list(review_stage.STATUSES),
                ),
                expect("ExpectColumnValuesToBeBetween", column="score", min_value=0, max_value=1),
                expect("ExpectTableRowCountToBeBetween", min_value=1),
                expect("ExpectCompoundColumnsToBeUnique", column_list=["queue", "priority"]),
                expect("ExpectQueuedExamplesToBeFiltered"),
            ],
            ("example_id",),
        ),
        Validation(
            "queues",
            f"""SELECT
                least({int(settings.coverage_sample_size)}, (SELECT count(*) FROM filtered))
                - (SELECT count(*) FROM review_queue WHERE queue = 'coverage')
                    AS coverage_shortfall""",
            [expect("ExpectColumnValuesToBeBetween", column="coverage_shortfall", max_value=0)],
        ),
    ]
    if settings.task_type == "classification":
        validations.append(
            Validation(  # a warning: a sample smaller than the label set cannot cover it
                "labels_covered",
                "SELECT count(*) AS labels_missing FROM (SELECT DISTINCT response FROM filtered "
                "EXCEPT SELECT DISTINCT response FROM review_queue WHERE queue = 'coverage')",
                [
                    expect(
                        "ExpectColumnValuesToBeBetween",
                        warn_only=True,
                        column="labels_missing",
                        min_value=0,
                        max_value=0,
                    )
                ],
            )
        )
    return validations


def reviewed_expectations(settings: Settings) -> list[Validation]:
    rows = [
        expect("ExpectColumnValuesToBeUnique", column="example_id"),
        expect("ExpectColumnValuesToNotBeNull", column="decided_by"),
        expect("ExpectColumnValuesToBeInSet", column="decision", value_set=["accept", "edit"]),
        expect("ExpectColumnValueLengthsToBeBetween", column="response", min_value=1),
    ]
    rows += labels_in(settings.allowed_labels)
    return [
        Validation("rows", "SELECT * FROM reviewed", rows, ("example_id",)),
        Validation(  # checked only once enough examples have two or more reviews
            "agreement",
            f"""SELECT kappa FROM {agreement.AGREEMENT_TABLE}
                WHERE scope = 'overall' AND kappa IS NOT NULL
                  AND items >= {int(settings.min_agreement_items)}""",
            [
                expect(
                    "ExpectColumnValuesToBeBetween",
                    column="kappa",
                    min_value=settings.min_agreement,
                    max_value=1.0,
                )
            ],
        ),
    ]


def verified_expectations(settings: Settings) -> list[Validation]:
    rows = [
        expect("ExpectColumnValuesToNotBeNull", column="example_id"),
        expect("ExpectColumnValuesToBeUnique", column="example_id"),
        expect("ExpectColumnValueLengthsToBeBetween", column="prompt", min_value=1),
        expect("ExpectColumnValueLengthsToBeBetween", column="response", min_value=1),
        expect("ExpectColumnValuesToNotBeNull", column="verified_by"),
        expect(
            "ExpectColumnValuesToBeInSet",
            column="split",
            value_set=["train", "validation", "excluded"],
        ),
        expect("ExpectTableRowCountToBeBetween", min_value=settings.min_verified_examples),
    ]
    rows += labels_in(settings.allowed_labels)
    return [
        Validation("rows", "SELECT * FROM verified", rows, ("example_id",)),
        Validation(
            "splits",
            f"""SELECT (SELECT count(*) FROM verified WHERE split = 'validation') AS validation,
                       (SELECT count(*) FROM verified WHERE split = 'train') AS train,
                       ({_OVERLAP_SQL}) AS overlapping_prompts""",
            [
                expect(
                    "ExpectColumnValuesToBeBetween",
                    column="validation",
                    min_value=settings.min_validation_examples,
                ),
                expect("ExpectColumnValuesToBeBetween", column="train", min_value=1),
                expect(
                    "ExpectColumnValuesToBeBetween",
                    column="overlapping_prompts",
                    min_value=0,
                    max_value=0,
                ),
            ],
        ),
    ]


_OVERLAP_SQL = review_stage.split_overlap_sql()
