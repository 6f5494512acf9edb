"""Dagster definitions of the filtering stage; its logic lives in
``curation_assets.curation.filtering``."""
