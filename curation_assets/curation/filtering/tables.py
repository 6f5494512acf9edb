"""The filter stage's published tables (declared in ``tables.yaml`` beside this module)."""

from curation_assets.curation.schema import load_tables

FILTERED, REJECTIONS, PII_REDACTIONS = load_tables(
    __file__, "filtered", "rejections", "pii_redactions"
)
