"""Lineage: where one example came from and where it went (``trace``). Reads every stage's
tables; imports the shared core only."""
