"""Training, plain Python (no Dagster): ``params`` (TrainParams, the one home of the
defaults; device and GPU checks), ``classifier`` (sequence classification) with
``classifier_evaluate`` (its predictions and evaluation), ``sft`` (causal-LM supervised
fine-tuning, loss on the response), what both share: ``examples`` (training rows, data
version), ``trainer_hooks`` (metrics callback, logging interval, loss curve) and
``artifacts`` (the one writer of the training manifest and model card); ``lora`` (peft
adapters), ``launch`` (Pipes launch arguments, local or Kubernetes), ``pipes_train`` (the
standalone script Dagster launches through Pipes), ``registry`` (which model saw which
example) and ``tables`` (the registry's tables, declared in ``tables.yaml``). Heavy
imports live in function bodies so that importing the code location stays fast.
"""
