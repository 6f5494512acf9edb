"""The curation core: plain Python over DuckDB, grouped by stage, with no Dagster in it.

``ingest`` (reading inbox files into batches), ``filtering`` (rules, dedup, language, PII,
decontamination), ``review`` (queues, decisions, agreement, reviewed and verified),
``training`` (fine-tunes and the model registry), ``evaluation`` (the quality ladder),
``lineage`` (tracing one example). Shared by all stages: ``records`` (identity and
normalization), ``warehouse`` (tables), ``publish`` (write-audit-publish), ``overrides``
(audited accepts of held batches), ``expectations`` (Great Expectations suites).

May import: ``curation_assets.config`` and libraries; never ``dagster`` or ``dagster_*``
(``training/pipes_train.py``, the script Dagster launches, alone uses ``dagster_pipes``).
A test enforces it.
"""
