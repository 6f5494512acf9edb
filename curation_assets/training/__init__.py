"""Fine-tuning: a sequence classifier trained with ``transformers`` (``classifier``) and the
standalone script Dagster launches through Pipes (``pipes_train``). Heavy imports live in
function bodies so that importing the code location stays fast.
"""
