"""Dagster definitions of the export stage (``verified_dataset``: the verified data as a
Hugging Face dataset); its logic lives in ``curation_assets.curation.export``."""
