"""A small, fully known dataset for end-to-end tests: files, decisions and settings."""

import dataclasses
import json
import os
import random
import re
import shutil
from datetime import UTC, datetime, timedelta
from html import unescape
from pathlib import Path

import duckdb
import pandas as pd

from curation_assets.config import Settings
from curation_assets.curation.records import example_id

#: The repository's root: the dagster.yaml and workspace.yaml that Dagster is started with.
REPO = Path(__file__).resolve().parents[1]

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


def write_two_batches(inbox: Path, rows: list[dict]) -> None:
    """The usual two inbox files: ``rows[:60]`` as JSONL with broken lines, and a CSV of
    the rest that repeats 8 of them (``rows[55:60]`` and ``rows[:3]``)."""
    write_inbox(inbox, rows[:60])
    write_csv(inbox, rows[55:] + rows[:3])


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


def accept_all(settings: Settings, rows: list[dict], path: Path) -> None:
    """Every one of ``rows`` accepted, an expert confirming each: the decisions written to
    ``path`` and imported into the decision store (as ``curation decisions import``)."""
    from curation_assets.curation.review import decisions

    decisions.import_file(write_decisions(path, rows), settings.decision_store)


def reviewed_inbox(settings: Settings, decisions_path: Path) -> list[dict]:
    """``make_rows(30)`` accepted in the decision store, then dropped into the inbox as one
    JSONL file (``batch_a.jsonl``) with broken lines; returns the rows."""
    rows = make_rows(30)
    accept_all(settings, rows, decisions_path)
    write_inbox(settings.inbox, rows)
    return rows


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


def dagster_env(settings: Settings, root: Path) -> dict[str, str]:
    """The environment of a ``curation`` or ``dagster`` process on ``settings``: this one's
    without its ``CURATION_*`` variables, plus those of ``settings`` and a new DAGSTER_HOME
    (``root/dagster_home``, holding the repository's dagster.yaml)."""
    home = root / "dagster_home"
    home.mkdir()
    shutil.copy(REPO / "dagster.yaml", home / "dagster.yaml")
    env = {k: v for k, v in os.environ.items() if not k.startswith("CURATION_")}
    env.update(settings_env(settings), DAGSTER_HOME=str(home), PYTHONUNBUFFERED="1")
    return env


#: Three intents, each told by its keywords: the tiny models' task.
INTENT_KEYWORDS = {
    "refund": ["refund", "money", "reimburse"],
    "shipping": ["delivery", "parcel", "courier"],
    "login": ["password", "login", "locked"],
}
INTENT_FILLER = ("please", "help", "me", "with", "my", "order", "today", "thanks", "the", "a")


def intent_examples(
    n: int,
    seed: int,
    *,
    filler_words: int | tuple[int, int] = 4,
    filler: tuple[str, ...] = INTENT_FILLER,
    id_format: str = "ex-{i:03d}",
) -> list[dict]:
    """``n`` examples (``example_id``, ``prompt``, ``response``), the intents in turn, each
    prompt two of its intent's keywords among ``filler_words`` filler words (a count, or a
    range drawn for each prompt)."""
    rng = random.Random(seed)
    labels = list(INTENT_KEYWORDS)
    rows = []
    for i in range(n):
        label = labels[i % len(labels)]
        k = filler_words if isinstance(filler_words, int) else rng.randint(*filler_words)
        words = rng.sample(filler, k) + rng.sample(INTENT_KEYWORDS[label], 2)
        rng.shuffle(words)
        eid = id_format.format(seed=seed, i=i)
        rows.append({"example_id": eid, "prompt": " ".join(words), "response": label})
    return rows


def page_fields(html: str) -> dict[str, str]:
    """A review-app page's hidden inputs (csrf, token) and the example it shows."""
    found = re.findall(r'<input type="hidden" name="(\w+)" value="([^"]*)"', html)
    out = {name: unescape(value) for name, value in found}
    shown = re.search(r'<code id="example-id">([^<]*)</code>', html)
    if shown:
        out["example_id"] = unescape(shown[1])
    return out


def nothing_left_reasons(html: str) -> dict[str, int]:
    """The review app's "nothing left" page: its counts by reason (and the queue size,
    ``total``)."""
    assert 'id="queue-done"' in html
    rows = re.findall(r'<tr[^>]*data-reason="(\w+)"><td class="num">(\d+)</td>', html)
    return {reason: int(n) for reason, n in rows}


def filter_inbox(settings: Settings) -> duckdb.DuckDBPyConnection:
    """Ingest every file of ``settings.inbox`` (fixed times) and run the filter stage with
    the product's own functions; return the open warehouse connection."""
    from curation_assets.curation.filtering import filter_stage
    from curation_assets.curation.ingest import intake
    from curation_assets.defs.filtering.assets import filter_config

    con = duckdb.connect(str(settings.warehouse))
    intake.store_inbox(
        con,
        settings.inbox,
        settings.column_mapping,
        settings.max_record_bytes,
        datetime(2026, 11, 25, 2, 0),
    )
    filter_stage.run_stage(con, filter_config(settings))
    return con
