"""Ingest: every inbox entry becomes a batch (``intake``); web pages and WARC/WET records
are reduced to their main text (``documents``). Imports the shared core only."""
