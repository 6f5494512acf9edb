"""The Dagster layer, one module per stage: assets, their expectations and automation."""
