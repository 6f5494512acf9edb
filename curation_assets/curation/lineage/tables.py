"""The lineage table (declared in ``tables.yaml`` beside this module)."""

from curation_assets.curation.schema import load_tables

(EXAMPLE_LINEAGE,) = load_tables(__file__, "example_lineage")
