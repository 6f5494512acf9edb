"""Running the graph from the command line: one in-process run of every stage
(``pipeline``), its summary lines (``summary``), the "waiting for review" state
(``waiting``) and the compact console log (``progress``); the Dagster instance
(``instance``), crash recovery of killed runs (``recovery``). Imports the Dagster layer."""
