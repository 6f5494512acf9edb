"""Evaluation: the quality ladder: its rungs from the warehouse (``ladder_rungs``), the
same-budget training of each (``ladder_training``) and its Dagster Pipes sessions
(``ladder_sessions``: files, launches, failures). Imports ``training`` and ``review``."""
