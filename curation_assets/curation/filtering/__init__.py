"""Filtering: the rule engine (``rule_engine``: the ``Rule`` type and the cached DuckDB pass
over all rules) and its rules (``generic_rules``, ``pair_rules``, ``document_rules``),
near-duplicates (``dedup``), language, mojibake (``annotators``), PII
and decontamination, run as one stage by ``filter_stage``. Imports the shared core and
``ingest``'s record helpers only."""
