"""Dagster definitions of the ingest stage; its logic lives in
``curation_assets.curation.ingest``."""
