"""All document rules (``document_rules``, the Gopher, C4 and FineWeb families with their
published thresholds) and their restriction to some records (``only_where``)."""

from collections.abc import Sequence
from dataclasses import replace

from curation_assets.curation.filtering.document_rules.c4 import c4_rules
from curation_assets.curation.filtering.document_rules.fineweb import fineweb_rules
from curation_assets.curation.filtering.document_rules.gopher import (
    gopher_quality_rules,
    gopher_repetition_rules,
)
from curation_assets.curation.filtering.rule_engine import Rule


def document_rules(column: str = "prompt") -> list[Rule]:
    """All document rules with their published thresholds (Gopher, C4, FineWeb)."""
    return [
        *gopher_quality_rules(column=column),
        *gopher_repetition_rules(column=column),
        *c4_rules(column=column),
        *fineweb_rules(column=column),
    ]


def only_where(rules: Sequence[Rule], predicate: str) -> list[Rule]:
    """The same rules, firing only on records where the SQL ``predicate`` holds.

    ``only_where(document_rules(), DOCUMENT_BATCH_SQL)`` restricts them to web documents;
    ``only_where(instruction_rules, f"NOT {DOCUMENT_BATCH_SQL}")`` keeps pair rules off them.
    The predicate goes to ``Rule.where`` (ANDed with one already there): record-scope rules
    are then evaluated in a SELECT over the matching records only, where DuckDB computes
    the measures several rules share (words, lines, n-grams) once per record. Wrapping
    each condition in ``CASE WHEN predicate`` instead made it compute them once per rule.
    """
    return [
        replace(r, where=predicate if r.where is None else f"({r.where}) AND ({predicate})")
        for r in rules
    ]


__all__ = ["document_rules", "only_where"]
