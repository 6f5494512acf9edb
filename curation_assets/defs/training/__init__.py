"""Dagster definitions of the training stage; its logic lives in
``curation_assets.curation.training``."""
