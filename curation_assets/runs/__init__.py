"""Running the graph from the command line: one in-process run of every stage
(``pipeline``), the Dagster instance (``instance``), crash recovery of killed runs
(``recovery``). Imports the Dagster layer."""
