"""All settings of the product, in one place.

Every field has a default that runs the bundled demo offline, and every field can be
overridden by an environment variable named ``CURATION_<FIELD>`` (upper case), so that
pointing the product at a new dataset needs no code change. Lists are comma-separated;
booleans accept 1/0, true/false, yes/no.
"""

import dataclasses
import os
from dataclasses import dataclass, field
from operator import attrgetter
from pathlib import Path
from typing import Any

from curation_assets.curation.training.params import TrainParams

PROJECT_ROOT = Path(__file__).resolve().parent.parent

#: The bundled demo's label set (10 confusable banking77 intents).
DEMO_LABELS = (
    "card_arrival",
    "card_delivery_estimate",
    "card_not_working",
    "compromised_card",
    "declined_card_payment",
    "lost_or_stolen_card",
    "pending_card_payment",
    "pending_transfer",
    "top_up_failed",
    "transfer_not_received_by_recipient",
)

#: Where everything the product writes lives unless overridden (``CURATION_DATA_DIR``).
DEFAULT_DATA_DIR = PROJECT_ROOT / "var"


@dataclass(frozen=True)
class Settings:
    """Runtime configuration. Paths that are left empty derive from ``data_dir``."""

    # --- where things live -------------------------------------------------------------
    data_dir: Path = DEFAULT_DATA_DIR
    inbox_dir: Path | None = None  # files dropped here become raw_scrapes partitions
    warehouse_path: Path | None = None  # the DuckDB file holding one table per asset
    decision_store_path: Path | None = None  # SQLite file with append-only decisions
    models_dir: Path | None = None  # fine-tuned model folders, one per training run

    # --- the task ----------------------------------------------------------------------
    task_type: str = "classification"  # "classification" (prompt -> label) or "instruction"
    labels: tuple[str, ...] = DEMO_LABELS  # allowed labels; empty = any label
    column_mapping: dict[str, str] = field(default_factory=dict)  # source col -> prompt/response

    # --- ingest ------------------------------------------------------------------------
    max_record_bytes: int = 100_000  # records above this size are quarantined

    # --- filtered ----------------------------------------------------------------------
    min_prompt_chars: int = 8
    max_prompt_chars: int = 2_000
    min_response_chars: int = 1
    max_response_chars: int = 8_000
    languages: tuple[str, ...] = ("en",)  # allowed languages (fastText lid.176 codes); empty: any
    min_language_score: float = 0.65
    # characters of a web document (HTML/WARC/WET batch) the language model reads: its start
    # decides, and the cost is linear (300: 2.4x faster than 1,000, same decision on 99.6% of
    # real page windows); instruction pairs are read up to 1,000 characters
    language_document_chars: int = 300
    near_duplicate_threshold: float = 0.8  # word 5-gram Jaccard (MinHash LSH); 0 turns it off
    decontamination_ngram: int = 8  # word n-grams shared with an evaluation text
    decontamination_files: tuple[str, ...] = ()  # evaluation sets to keep out of training
    pii_kinds: tuple[str, ...] = ("email", "url", "credit_card", "ipv4", "ipv6", "phone")
    max_rule_drop_rate: float = 0.30  # a rule dropping more of one batch stops the graph
    rule_drop_rate_bounds: dict[str, str] = field(default_factory=dict)  # rule=rate overrides

    # --- review ------------------------------------------------------------------------
    validation_fraction: float = 0.2  # share of verified examples held out for evaluation
    coverage_sample_size: int = 500  # examples experts confirm one by one -> verified
    suspect_queue_size: int = 500  # most-likely-wrong examples queued for cleaning
    reviews_required: int = 1  # independent reviews per example; disagreements -> expert
    verified_takes_suspect_fixes: bool = False  # expert fixes from the suspect queue
    min_agreement: float = 0.4  # lowest acceptable Cohen's kappa between reviewers
    min_agreement_items: int = 20  # examples with 2+ reviews needed before kappa is checked
    # suspect scores: "auto" (static embeddings distilled from the packaged MiniLM), "minilm"
    # (the transformer itself, ~90 texts per CPU-second), "static:PATH", a path, or "none"
    suspect_encoder: str = "auto"
    suspect_fit_rows: int = 20_000  # training sample of the suspect models (fit cost cap)
    suspect_fit_rows_per_label: int = 400  # at most this many sample rows per label
    review_host: str = "127.0.0.1"  # the review web app
    review_port: int = 8765

    # --- quality gates (Great Expectations bounds) --------------------------------------
    max_quarantine_rate: float = 0.10
    max_rejection_rate: float = 0.40
    min_verified_examples: int = 100
    min_validation_examples: int = 20
    # keep GX validation results and render the local Data Docs after each audit (~0.3 s
    # per audit, under data_dir/gx); off: results stay in memory, the checks are the same
    data_docs: bool = True

    # --- fine-tune (defaults: curation_assets.curation.training.params.TrainParams) --
    base_model: str = "auto"  # hub id or local path; "auto": packaged MiniLM (SFT: SmolLM2 id)
    epochs: float = TrainParams.epochs
    learning_rate: float = TrainParams.learning_rate
    batch_size: int = TrainParams.batch_size
    max_length: int = TrainParams.max_length  # tokens; 0 = 64 for classification, 512 for SFT
    seed: int = TrainParams.seed
    require_gpu: bool = TrainParams.require_gpu  # fail clearly when torch sees no CUDA GPU
    lora: bool = TrainParams.lora  # LoRA adapters (peft) instead of a full fine-tune
    lora_r: int = TrainParams.lora_r
    packing: str = TrainParams.packing  # SFT batching: auto, bucket, pack, none
    precision: str = TrainParams.precision  # auto (bf16 on a capable GPU), fp32, bf16
    eval_files: tuple[str, ...] = ()  # extra evaluation sets: JSONL/CSV/Parquet prompt+response
    ladder_trainer: str = "head"  # quality_ladder: "head" (frozen encoder) or "finetune"
    ladder_steps: int = 0  # optimizer steps per ladder rung; 0 = `epochs` over the largest rung

    # --- schedule ----------------------------------------------------------------------
    nightly_cron: str = "0 2 * * *"
    timezone: str = "UTC"

    def __post_init__(self) -> None:
        base = Path(self.data_dir)
        object.__setattr__(self, "data_dir", base)
        defaults = {
            "inbox_dir": base / "inbox",
            "warehouse_path": base / "warehouse.duckdb",
            "decision_store_path": base / "decisions.sqlite",
            "models_dir": base / "models",
        }
        for name, default in defaults.items():
            value = getattr(self, name)
            object.__setattr__(self, name, Path(value) if value else default)

    @property
    def allowed_labels(self) -> tuple[str, ...]:
        """The labels a classification response must be one of (empty: any label, and
        always empty for instruction data, whose responses are free text)."""
        return self.labels if self.task_type == "classification" else ()

    # The resolved locations (``__post_init__`` makes each a Path under ``data_dir`` unless set).
    inbox = property(attrgetter("inbox_dir"), doc="The watched inbox folder.")
    warehouse = property(attrgetter("warehouse_path"), doc="The DuckDB file.")
    decision_store = property(attrgetter("decision_store_path"), doc="The SQLite store.")
    models = property(attrgetter("models_dir"), doc="The models folder.")

    @classmethod
    def from_env(cls, environ: dict[str, str] | None = None, **overrides: Any) -> "Settings":
        """Build settings from defaults, then ``CURATION_*`` variables, then ``overrides``."""
        env = os.environ if environ is None else environ
        values: dict[str, Any] = {}
        for f in dataclasses.fields(cls):
            raw = env.get(f"CURATION_{f.name.upper()}")
            if raw is not None:
                values[f.name] = _parse(f.name, f.type, raw)
        values.update(overrides)
        return cls(**values)

    def describe(self) -> dict[str, str]:
        """Every setting as text, lists as comma lists (the form ``CURATION_*`` takes)."""
        out = {}
        for f in dataclasses.fields(self):
            value = getattr(self, f.name)
            if isinstance(value, tuple):
                value = ", ".join(map(str, value))
            elif isinstance(value, dict):
                value = ", ".join(f"{k}={v}" for k, v in value.items())
            out[f.name] = str(value)
        return out


def _parse(name: str, annotation: Any, raw: str) -> Any:
    type_name = getattr(annotation, "__name__", str(annotation))
    if "tuple" in str(annotation):
        return tuple(item.strip() for item in raw.split(",") if item.strip())
    if "dict" in str(annotation):
        pairs = [item.split("=", 1) for item in raw.split(",") if "=" in item]
        return {k.strip(): v.strip() for k, v in pairs}
    if type_name == "bool":
        if raw.lower() not in {"1", "0", "true", "false", "yes", "no"}:
            raise ValueError(f"CURATION_{name.upper()} must be a boolean, got {raw!r}")
        return raw.lower() in {"1", "true", "yes"}
    if type_name == "int":
        return int(raw)
    if type_name == "float":
        return float(raw)
    return raw
