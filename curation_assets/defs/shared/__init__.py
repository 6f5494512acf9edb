"""Helpers of the Dagster layer: GX results as checks (``checks``), the blocking-check gate
(``gate``), metadata a person reads (``metadata``). No definitions here."""
