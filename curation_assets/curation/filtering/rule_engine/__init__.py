"""The ``filtered`` stage's rule engine: named rules that annotate raw records, all in one
DuckDB pass.

Each rule is one small unit: a name, a reason a person can read, and a SQL condition that
is TRUE when the rule fires. Rules annotate rather than delete: every rule becomes a
boolean column, the keep/reject decision is derived from them, and a rejected record keeps
every reason that applied (one row per rule in ``rejections``).

Modules: ``rule`` (the ``Rule`` type, its reason SQL, the rule-set fingerprint),
``record_flags`` (the cached flags and reasons of the record-scope rules), ``run``
(:func:`run_filters`: ``filter_flags``, ``rejections`` and the kept records),
``working_table`` (the kept records and the published ``filtered``), ``reports``
(rejections per rule, the per-batch accounting) and ``sync`` (the incremental table
helpers they share). This package exposes their public names
(``rule_engine.run_filters``, ``rule_engine.Rule``, ...).
"""

from curation_assets.curation.filtering.rule_engine.record_flags import (
    RECORD_FLAGS,
    RECORD_REJECTIONS,
    REJECTIONS_SCHEMA,
    update_record_flags,
)
from curation_assets.curation.filtering.rule_engine.reports import (
    batch_accounting,
    batch_accounting_sql,
    rule_counts,
)
from curation_assets.curation.filtering.rule_engine.rule import (
    Rule,
    reason_sql,
    ruleset_fingerprint,
)
from curation_assets.curation.filtering.rule_engine.run import FIRST_SEEN_ORDER, FLAGS, run_filters
from curation_assets.curation.filtering.rule_engine.sync import batch_range, drop_stale
from curation_assets.curation.filtering.rule_engine.working_table import (
    FILTERED_BATCHES,
    FILTERED_SCHEMA,
    WORKING_TABLE,
    publish_filtered,
)

__all__ = [
    "FILTERED_BATCHES",
    "FILTERED_SCHEMA",
    "FIRST_SEEN_ORDER",
    "FLAGS",
    "RECORD_FLAGS",
    "RECORD_REJECTIONS",
    "REJECTIONS_SCHEMA",
    "Rule",
    "WORKING_TABLE",
    "batch_accounting",
    "batch_accounting_sql",
    "batch_range",
    "drop_stale",
    "publish_filtered",
    "reason_sql",
    "rule_counts",
    "ruleset_fingerprint",
    "run_filters",
    "update_record_flags",
]
