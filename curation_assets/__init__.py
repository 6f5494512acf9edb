"""curation_assets: a Dagster code location that turns raw scrapes into verified datasets."""
