"""Curation logic: plain Python and DuckDB SQL, no Dagster imports (tested alone)."""
