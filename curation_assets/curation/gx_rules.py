"""The project's own Great Expectations expectation classes: rules GX has no built-in for.

Each is a GX custom SQL expectation (a subclass of ``UnexpectedRowsExpectation``, GX's
documented way to write one): a named class with a fixed query over the group's rows
(``{batch}``) and a description that Data Docs shows. A rule fails when its query returns a
row; those rows are the failure's sample. Imported only when a validation runs (GX is slow
to import); suites name a rule by its class name, like a built-in (``expect("Expect...")``).
"""

from typing import ClassVar

import duckdb
import great_expectations.expectations as gxe


class RowRule(gxe.UnexpectedRowsExpectation):
    """A project rule: the rows its ``unexpected_rows_query`` returns break it."""

    #: The columns of the group's query that the rule reads (documentation and tests).
    reads: ClassVar[tuple[str, ...]] = ()


class ExpectQuarantineRowsToBeLocated(RowRule):
    reads: ClassVar[tuple[str, ...]] = ("located",)
    unexpected_rows_query: str = "SELECT * FROM {batch} WHERE NOT located"
    description: str = (
        "Every quarantined record names the line it came from, unless the whole file was "
        "refused (one unit): a reviewer must be able to find it in the source file."
    )


class ExpectEveryUnitAccountedFor(RowRule):
    reads: ClassVar[tuple[str, ...]] = ("unaccounted",)
    unexpected_rows_query: str = "SELECT * FROM {batch} WHERE unaccounted <> 0"
    description: str = (
        "Per batch, units read = kept + rejected + quarantined: no record is lost or "
        "counted twice by the filter stage."
    )


class ExpectEveryRecordAccountedFor(RowRule):
    reads: ClassVar[tuple[str, ...]] = ("unaccounted_records",)
    unexpected_rows_query: str = "SELECT * FROM {batch} WHERE unaccounted_records <> 0"
    description: str = (
        "Per batch (held ones included), raw records = kept + rejected: every record of "
        "`raw_scrapes` is either kept or has a rejection with its reason."
    )


class ExpectNoRuleOverItsDropBound(RowRule):
    reads: ClassVar[tuple[str, ...]] = ("over_bound",)
    unexpected_rows_query: str = "SELECT * FROM {batch} WHERE over_bound"
    description: str = (
        "No single filter rule drops more of a batch than its bound: a rule that suddenly "
        "fires on most of a batch is a broken rule or a changed source, not bad data."
    )


class ExpectRejectionsToNameRawRecords(RowRule):
    reads: ClassVar[tuple[str, ...]] = ("in_raw_scrapes",)
    unexpected_rows_query: str = "SELECT * FROM {batch} WHERE NOT in_raw_scrapes"
    description: str = "Every rejection names a record of `raw_scrapes` (none invented)."


class ExpectNoRecordBothKeptAndRejected(RowRule):
    reads: ClassVar[tuple[str, ...]] = ("also_kept",)
    unexpected_rows_query: str = "SELECT * FROM {batch} WHERE also_kept"
    description: str = "No record is both kept by the filter stage and rejected by a rule."


class ExpectDecisionFingerprintsToMatch(RowRule):
    reads: ClassVar[tuple[str, ...]] = ("fingerprint_ok",)
    unexpected_rows_query: str = "SELECT * FROM {batch} WHERE NOT fingerprint_ok"
    description: str = (
        "Every decision's fingerprint matches the example it was made on: a decision made "
        "on other text (the example changed after review) must not count."
    )


class ExpectQueuedExamplesToBeFiltered(RowRule):
    reads: ClassVar[tuple[str, ...]] = ("example_id",)
    unexpected_rows_query: str = (
        "SELECT * FROM {batch} WHERE example_id NOT IN (SELECT example_id FROM filtered)"
    )
    description: str = (
        "Every queued example is in the published `filtered` table: reviewers never spend "
        "time on a record the filters rejected."
    )


def sample_rows(
    con: duckdb.DuckDBPyConnection, rule: type[RowRule], sql: str, limit: int
) -> list[dict]:
    """Up to ``limit`` rows that break ``rule`` on the group's query ``sql``."""
    query = rule.__fields__["unexpected_rows_query"].default.format(batch=f"({sql}) AS rows_")
    result = con.execute(f"SELECT * FROM ({query}) LIMIT {int(limit)}")
    names = [d[0] for d in result.description]
    return [dict(zip(names, row, strict=True)) for row in result.fetchall()]
