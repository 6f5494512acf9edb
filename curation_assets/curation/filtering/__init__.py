"""Filtering: the rule engine and its rules (``rule_engine``, ``pair_rules``,
``document_rules``), near-duplicates (``dedup``), language, mojibake (``annotators``), PII
and decontamination, run as one stage by ``filter_stage``. Imports the shared core and
``ingest``'s record helpers only."""
