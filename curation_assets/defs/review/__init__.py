"""Dagster definitions of the review stage; its logic lives in
``curation_assets.curation.review``."""
