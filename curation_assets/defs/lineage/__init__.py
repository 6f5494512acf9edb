"""Dagster definitions of the lineage stage; its logic lives in
``curation_assets.curation.lineage``."""
