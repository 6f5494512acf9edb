"""The "waiting for review" state of a run: ``verified`` has too few examples to train.

Every run did what it could and the only thing missing is review work (how every new
dataset starts). This module tells that state from a real failure, counts the open review
items, and writes the "what to do next" lines.
"""

from typing import Any

from curation_assets.config import Settings
from curation_assets.defs.review.suites import verified_expectations
from curation_assets.runs.summary import check_name, is_audit_failure

#: The check whose "not enough verified examples" failure means "waiting for review".
VERIFIED_CHECK = "verified:expectations"
#: Queue statuses that still need a person (coverage items need an expert after reviewers).
OPEN_STATUSES = ("pending", "in_review", "needs_expert")


def shortfall_expectations(settings: Settings) -> set[str]:
    """Labels of the ``verified`` expectations that only count examples: failing them
    means more verified examples are needed (too few rows, an empty or small split)."""
    labels = set()
    for validation in verified_expectations(settings):
        for item in validation.expectations:
            counts_rows = item.kind == "ExpectTableRowCountToBeBetween"
            split_size = validation.name == "splits" and item.kwargs.get("column") in (
                "validation",
                "train",
            )
            if counts_rows or split_size:
                labels.add(item.label())
    return labels


def waiting_for_review(settings: Settings, curate, failed_evals) -> dict[str, Any] | None:
    """What review work is missing, or None when the data is not short of verified rows."""
    audit = next((c for c in failed_evals if check_name(c) == VERIFIED_CHECK), None)
    if audit is None:
        return None
    unexpected = audit.metadata.get("unexpected_counts")
    failing = set(unexpected.value) if unexpected is not None else set()
    if not failing or not failing <= shortfall_expectations(settings):
        return None  # verified failed for another reason: a real failure
    rows = audit.metadata.get("rows_validated")
    have = int((rows.value if rows is not None else {}).get("rows", 0))
    waiting = {
        "verified": have,
        "min_verified_examples": settings.min_verified_examples,
        "more_needed": max(settings.min_verified_examples - have, 0),
        "min_validation_examples": settings.min_validation_examples,
        "validation": staged_validation_rows(settings),
    }
    waiting.update(queue_counts(settings))
    return waiting


def only_waiting(curate, failed_evals) -> bool:
    """True when the one problem of the curate run is the verified shortfall: no other
    blocking check failed and no step failed except ``verified`` on its audit."""
    if any(check_name(c) != VERIFIED_CHECK for c in failed_evals):
        return False
    for event in curate.get_step_failure_events():
        error = event.step_failure_data.error
        if event.step_key != "verified" or not is_audit_failure(error):
            return False
    return True


def queue_counts(settings: Settings) -> dict[str, int]:
    """Items of the published review queues that still wait for a person."""
    from curation_assets.curation import publish, warehouse
    from curation_assets.defs.shared.checks import snapshot_dir

    counts = {"coverage_open": 0, "coverage_need_expert": 0, "suspect_open": 0}
    con = publish.open_snapshot(snapshot_dir(settings))
    try:
        if not warehouse.table_exists(con, "review_queue"):
            return counts
        open_list = ", ".join(f"'{s}'" for s in OPEN_STATUSES)
        row = con.execute(
            f"""SELECT
                count(*) FILTER (WHERE queue = 'coverage'
                                 AND review_status IN ({open_list}, 'reviewed')),
                count(*) FILTER (WHERE queue = 'coverage'
                                 AND review_status IN ('needs_expert', 'reviewed')),
                count(*) FILTER (WHERE queue = 'suspect' AND review_status IN ({open_list}))
            FROM review_queue"""
        ).fetchall()[0]
    except Exception:  # noqa: BLE001 - the counts decorate a message, never fail the run
        return counts
    finally:
        con.close()
    return dict(zip(counts, map(int, row), strict=True))


def staged_validation_rows(settings: Settings) -> int | None:
    """Validation rows of the staged (unpublished) ``verified``, if the warehouse is free."""
    import duckdb

    try:
        with duckdb.connect(str(settings.warehouse), read_only=True) as con:
            return int(
                con.execute(
                    "SELECT count(*) FROM verified__staged WHERE split = 'validation'"
                ).fetchall()[0][0]
            )
    except Exception:  # noqa: BLE001 - locked by another process, or no staged table
        return None


def waiting_lines(waiting: dict[str, Any], settings: Settings) -> list[str]:
    """The "what to do next" lines of the waiting state."""
    coverage, suspects = waiting["coverage_open"], waiting["suspect_open"]
    total = coverage + suspects
    experts = waiting["coverage_need_expert"]
    lines = [
        "waiting for review (not a failure): "
        + (
            f"{total} items wait in the review queues (coverage {coverage}"
            + (f", {experts} of them for an expert" if experts else "")
            + f", suspects {suspects})"
            if total
            else "the review queues have no open item"
        ),
        "  open the review app (./scripts/review) or import decisions "
        "(curation decisions import FILE), then: curation run --from review_queue",
    ]
    have, need = waiting["verified"], waiting["more_needed"]
    if need:
        lines.append(
            f"  {need} more verified examples are needed before training (have {have} of "
            f"min_verified_examples={waiting['min_verified_examples']}); experts verify "
            "items of the coverage queue"
        )
    else:
        validation = waiting["validation"]
        lines.append(
            f"  {have} verified examples, but the validation split is too small"
            + (f" ({validation}" if validation is not None else " (")
            + f" of min_validation_examples={waiting['min_validation_examples']}): "
            "verify more coverage items"
        )
    return lines
