"""A small, fully known dataset for end-to-end tests: files, decisions and settings."""

import dataclasses
import json
import random
import re
from datetime import UTC, datetime, timedelta
from html import unescape
from pathlib import Path

import duckdb
import pandas as pd

from curation_assets.config import Settings
from curation_assets.curation.ingest import tables as ingest_tables
from curation_assets.curation.records import example_id

#: The product's public asset contract, in lineage order.
CONTRACT = (
    "raw_scrapes",
    "filtered",
    "review_queue",
    "reviewed",
    "verified",
    "fine_tuned_model",
    "model_evaluation",
)
LABELS = ("billing", "delivery", "login")
_WORDS = {
    "billing": ["invoice", "charge", "refund", "payment", "bill", "fee"],
    "delivery": ["parcel", "courier", "shipping", "package", "arrive", "tracking"],
    "login": ["password", "account", "sign", "locked", "username", "reset"],
}
_FILLER = ["my", "the", "please", "help", "with", "why", "is", "not", "today", "again"]


def make_rows(n_per_label: int, seed: int = 0) -> list[dict]:
    """Distinct short messages whose label is recoverable from their keywords."""
    rng = random.Random(seed)
    rows, seen = [], set()
    for label in LABELS:
        made = 0
        while made < n_per_label:
            words = rng.sample(_WORDS[label], 2) + rng.sample(_FILLER, 3)
            rng.shuffle(words)
            text = " ".join(words) + f" {rng.randint(0, 9999)}"
            if text in seen:
                continue
            seen.add(text)
            rows.append({"text": text, "label": label})
            made += 1
    rng.shuffle(rows)
    return rows


def write_inbox(
    inbox: Path, rows: list[dict], name: str = "batch_a.jsonl", bad_lines: int = 3
) -> Path:
    """Write rows as JSONL plus ``bad_lines`` broken lines (malformed, bad UTF-8, no label)."""
    inbox.mkdir(parents=True, exist_ok=True)
    path = inbox / name
    broken = [
        b'{"text": "unterminated',
        b'\xff\xfe{"text": "bad bytes", "label": "login"}',
        b'{"text": "where is the label"}',
    ][:bad_lines]
    with path.open("wb") as handle:
        for i, row in enumerate(rows):
            handle.write(json.dumps(row).encode() + b"\n")
            if i < len(broken):
                handle.write(broken[i] + b"\n")
    return path


def write_csv(inbox: Path, rows: list[dict], name: str = "batch_b.csv") -> Path:
    inbox.mkdir(parents=True, exist_ok=True)
    path = inbox / name
    pd.DataFrame(rows).rename(columns={"label": "category"}).to_csv(path, index=False)
    return path


def write_decisions(path: Path, rows: list[dict], expert_share: float = 1.0) -> Path:
    """Reviewer accepts every row; an expert confirms the first ``expert_share`` of them."""
    start = datetime(2026, 11, 1, tzinfo=UTC)
    lines = []
    n_expert = int(len(rows) * expert_share)
    for i, row in enumerate(rows):
        eid = example_id(row["text"], row["label"])
        lines.append(
            {
                "example_id": eid,
                "reviewer": "alice",
                "role": "reviewer",
                "decision": "accept",
                "decided_at": (start + timedelta(minutes=i)).isoformat(),
                "seconds_spent": 10,
            }
        )
        if i < n_expert:
            lines.append(
                {
                    "example_id": eid,
                    "reviewer": "dr_chen",
                    "role": "expert",
                    "decision": "accept",
                    "seconds_spent": 20,
                    "decided_at": (start + timedelta(days=1, minutes=i)).isoformat(),
                }
            )
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("\n".join(json.dumps(x) for x in lines) + "\n")
    return path


def small_settings(data_dir: Path, base_model: str, **overrides) -> Settings:
    """Settings for a tiny end-to-end run (few epochs, small gates)."""
    values = dict(
        data_dir=data_dir,
        labels=LABELS,
        base_model=base_model,
        epochs=3.0,
        learning_rate=5e-3,
        batch_size=16,
        max_length=16,
        min_verified_examples=30,
        min_validation_examples=5,
        max_quarantine_rate=0.2,
        max_rejection_rate=0.3,
    )
    values.update(overrides)
    return Settings(**values)


def settings_env(settings: Settings) -> dict[str, str]:
    """``CURATION_*`` variables that reproduce ``settings`` in another process."""
    default, env = Settings(), {}
    for f in dataclasses.fields(Settings):
        value = getattr(settings, f.name)
        if value == getattr(default, f.name):
            continue
        if isinstance(value, tuple):
            value = ",".join(value)
        elif isinstance(value, dict):
            value = ",".join(f"{k}={v}" for k, v in value.items())
        env[f"CURATION_{f.name.upper()}"] = str(value)
    return env


def page_fields(html: str) -> dict[str, str]:
    """A review-app page's hidden inputs (csrf, token) and the example it shows."""
    found = re.findall(r'<input type="hidden" name="(\w+)" value="([^"]*)"', html)
    out = {name: unescape(value) for name, value in found}
    shown = re.search(r'<code id="example-id">([^<]*)</code>', html)
    if shown:
        out["example_id"] = unescape(shown[1])
    return out


def filter_inbox(settings: Settings) -> duckdb.DuckDBPyConnection:
    """Ingest every file of ``settings.inbox`` (fixed times) and run the filter stage with
    the product's own functions; return the open warehouse connection."""
    from curation_assets.curation.filtering import filter_stage
    from curation_assets.curation.ingest import intake
    from curation_assets.defs.filtering.assets import filter_config

    con = duckdb.connect(str(settings.warehouse))
    for i, path in enumerate(intake.list_inbox(settings.inbox)):
        result = intake.read_file(path, settings.column_mapping, settings.max_record_bytes)
        intake.store_batch(con, result, datetime(2026, 11, 25, 2, i))
    ingest_tables.ensure_tables(con)
    filter_stage.run_stage(con, filter_config(settings))
    return con
