"""Review: the decision store (``decisions``: events, accounts, Label Studio files), the
suspect model and scores (``suspects``, ``suspect_model``, ``static_embeddings``), the
queues and the reviewed / verified sets (``review_stage``), reviewer agreement
(``agreement``). Imports the shared core and ``filtering`` only."""
