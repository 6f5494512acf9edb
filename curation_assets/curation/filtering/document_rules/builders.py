"""Builders the document rule families share: a threshold as the reasons show it, the
detail SQL that reports a measured value, and the rule that fires past a threshold."""

from curation_assets.curation.filtering.rule_engine import Rule
from curation_assets.curation.warehouse import sql_literal


def fmt(value: float) -> str:
    """A threshold as a reason shows it (``0.1``, ``3``)."""
    return f"{value:g}"


def detail_sql(label: str, measure: str, digits: int = 3) -> str:
    """SQL of a rule's detail: ``label`` and the measured value, rounded (``n/a``: NULL)."""
    value = f"coalesce(CAST(round({measure}, {digits}) AS VARCHAR), 'n/a')"
    return f"{sql_literal(label + ' ')} || {value}"


def limit_rule(
    name: str, reason: str, measure: str, test: str, label: str, digits: int = 3
) -> Rule:
    """A rule that fires when ``measure`` passes ``test`` (such as ``"> 0.1"``); its detail
    is the measured value after ``label``."""
    return Rule(name, reason, f"{measure} {test}", detail_sql(label, measure, digits))


__all__ = ["detail_sql", "fmt", "limit_rule"]
