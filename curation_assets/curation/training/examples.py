"""The training rows both fine-tunes read: (example_id, prompt, response) mappings checked
into ``Example`` records, and the order-independent data version of a train split.

Plain Python, no heavy imports.
"""

import hashlib
import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Example:
    """One training or evaluation row: the prompt as ``text``, the response as ``label``."""

    example_id: str
    text: str
    label: str


def read_examples(rows: Iterable[Mapping[str, Any]], split: str) -> list[Example]:
    """``rows`` as ``Example`` records; a row lacking a field is refused, naming ``split``."""
    out = []
    for i, row in enumerate(rows):
        missing = [k for k in ("example_id", "prompt", "response") if row.get(k) is None]
        if missing:
            raise ValueError(f"{split} row {i} lacks {missing}: {dict(row)!r:.200}")
        out.append(Example(str(row["example_id"]), str(row["prompt"]), str(row["response"])))
    return out


def data_version(rows: Iterable[Mapping[str, Any]]) -> str:
    """sha256 over the sorted (example_id, label, prompt) triples: order-independent."""
    lines = sorted(
        json.dumps([e.example_id, e.label, e.text], ensure_ascii=False)
        for e in read_examples(rows, "data")
    )
    digest = hashlib.sha256()
    for line in lines:
        digest.update(line.encode("utf-8") + b"\n")
    return digest.hexdigest()
