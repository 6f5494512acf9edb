"""The attributes every dataset asset (one warehouse table) declares the same way.

Group and owners come from the stage folder's ``defs.yaml``; these helpers add what follows
from the table's declaration (kinds, column schema, table name) and, for single-table assets
written, audited and published in their own step, the write-audit-publish attributes.
"""

from collections.abc import Mapping

import dagster as dg

from curation_assets.curation.schema import Table
from curation_assets.defs.automation.conditions import ON_NEW_PASSING_INPUTS
from curation_assets.defs.resources import DUCKDB_POOL
from curation_assets.defs.shared.checks import audit_specs
from curation_assets.defs.shared.metadata import table_metadata


def dataset(table: Table, **attributes: object) -> dict:
    """Keyword arguments of an asset (or ``AssetSpec``) that is ``table``: its kinds and the
    catalog metadata taken from its declaration, plus ``attributes``."""
    return {"kinds": {"duckdb", "table"}, "metadata": table_metadata(table), **attributes}


def published_dataset(
    table: Table,
    audit: str,
    groups: Mapping[str, str],
    *,
    automation_condition: dg.AutomationCondition = ON_NEW_PASSING_INPUTS,
    **attributes: object,
) -> dict:
    """Keyword arguments of a single-table asset that audits its staged version (blocking
    check ``expectations``, described by ``audit``, and one check per expectation group of
    ``groups``) and publishes it only when it passes: no output when the audit fails."""
    return dataset(
        table,
        pool=DUCKDB_POOL,
        automation_condition=automation_condition,
        output_required=False,
        check_specs=audit_specs(table.name, audit, groups),
        **attributes,
    )
