"""Dagster definitions of the evaluation stage; its logic lives in
``curation_assets.curation.evaluation``."""
