"""Evaluation: the quality ladder: its rungs from the warehouse (``ladder_rungs``) and the
same-budget training of each (``ladder_training``). Imports ``training`` and ``review``."""
