"""The training stage's tables (declared in ``tables.yaml`` beside this module): the model
registry (``models``, ``model_examples``) and ``model_evaluations``; ``registry`` creates
them. The ``quality_ladder`` results are written from a frame (``CREATE TABLE AS``)."""

from curation_assets.curation.schema import load_tables

MODELS, MODEL_EXAMPLES, MODEL_EVALUATIONS = load_tables(
    __file__, "models", "model_examples", "model_evaluations"
)
