"""The dataset card (``README.md``): a YAML header the Hub and ``load_dataset`` read
(licence, task, size, the Parquet files of each split, the features) and a body for the
person who fine-tunes on it (counts, labels or lengths, columns, provenance, licence,
data version, how to load it).

The card depends only on the exported rows and the tables around them, never on the
time or the machine, so the same data gives the same card.
"""

from typing import TYPE_CHECKING

from curation_assets.curation.export.dataset import EXCLUDED, SPLITS, VerifiedRows, exported_columns
from curation_assets.curation.export.licences import UNKNOWN, Licensing
from curation_assets.curation.export.provenance import Provenance

if TYPE_CHECKING:
    import datasets

#: Where each split's Parquet file lies in the folder (the Hub's layout of ``push_to_hub``).
PARQUET_FILE = "data/{split}-00000-of-00001.parquet"
#: The pattern of a split's Parquet files in the card's ``configs`` (as ``push_to_hub``
#: writes it, so the card is right on the Hub too, whatever the number of shards).
PARQUET_PATTERN = "data/{split}-*"
TITLE = "Expert-verified fine-tuning data"
_TASKS = {"classification": ["text-classification"], "instruction": ["text-generation"]}
_SIZES = ((1_000, "n<1K"), (10_000, "1K<n<10K"), (100_000, "10K<n<100K"), (1_000_000, "100K<n<1M"))


def read_header(text: str) -> dict:
    """The YAML header of a card's text (empty when it has none or it does not parse)."""
    import yaml

    if not text.startswith("---\n") or text.count("---\n") < 2:
        return {}
    try:
        meta = yaml.safe_load(text.split("---\n", 2)[1])
    except yaml.YAMLError:
        return {}
    return meta if isinstance(meta, dict) else {}


def header(
    dataset: "datasets.DatasetDict",
    licensing: Licensing,
    task_type: str,
    parquet_bytes: dict[str, int],
    languages: tuple[str, ...] = (),
) -> str:
    """The YAML of the card's header (between the ``---`` lines)."""
    from datasets.info import DatasetInfo, DatasetInfosDict
    from datasets.splits import SplitDict, SplitInfo
    from huggingface_hub import DatasetCardData

    rows = sum(dataset[s].num_rows for s in SPLITS)
    data = DatasetCardData(
        pretty_name=TITLE,
        license=licensing.header,
        language=list(languages) or None,
        task_categories=_TASKS.get(task_type, ["text-generation"]),
        size_categories=[next((name for top, name in _SIZES if rows < top), "n>1M")],
        tags=["expert-verified", "curation_assets"],
        configs=[
            {
                "config_name": "default",
                "data_files": [
                    {"split": s, "path": PARQUET_PATTERN.format(split=s)} for s in SPLITS
                ],
            }
        ],
    )
    splits = SplitDict()
    for split in SPLITS:
        splits.add(
            SplitInfo(
                split, num_bytes=dataset[split].data.nbytes, num_examples=dataset[split].num_rows
            )
        )
    info = DatasetInfo(
        features=dataset[SPLITS[0]].features,
        splits=splits,
        download_size=sum(parquet_bytes.values()),
        dataset_size=sum(dataset[s].data.nbytes for s in SPLITS),
    )
    DatasetInfosDict({"default": info}).to_dataset_card_data(data)
    return data.to_yaml()


def render(
    rows: VerifiedRows,
    provenance: Provenance,
    licensing: Licensing,
    yaml_header: str,
) -> str:
    """The whole card: the ``---`` fenced header, then the body."""
    p = provenance
    train, validation = (rows.counts.get(s, 0) for s in SPLITS)
    kind = "labelled (prompt -> label)" if p.labelled else "instruction (prompt -> response)"
    excluded = "example" if rows.excluded == 1 else "examples"
    review = [
        _section("Review queues, by outcome", p.queue_outcomes),
        _section(
            "Deciding decisions of the examples kept in review (`reviewed`)", p.reviewed_decisions
        ),
        _section("Who decided in review (`reviewed.decided_by`)", p.reviewers),
        _section("Experts who verified the examples of this dataset", p.experts),
    ]
    blocks = [
        f"---\n{yaml_header.strip()}\n---",
        f"# {TITLE}",
        f"{rows.total} {kind} examples, {train} in `train` and {validation} in `validation`, "
        "each confirmed or corrected by an expert: the published `verified` table of a "
        "curation_assets warehouse, whose blocking checks passed (nothing unverified is in "
        "it), audited again after it was written here.",
        f"Data version: `{rows.version}` (SHA-256 of the exported rows; the folder's name).",
        "## Splits",
        _table(p.splits),
        f"Left out: {rows.excluded} {excluded} with split `{EXCLUDED}` in `verified`, train "
        "examples that share word n-grams with a validation example, kept out of training "
        "so that validation stays unseen. The split of each example is fixed by a hash of "
        "its prompt: no prompt is in both splits.",
        *(
            ["## Labels", _table(p.per_label, "(no labels)")]
            if p.labelled
            else ["## Lengths (characters)", _table(p.lengths, "(no examples)")]
        ),
        "## Columns",
        _table(
            [
                {"column": c.name, "type": c.type, "meaning": c.description}
                for c in exported_columns()
            ]
        ),
        "## Provenance",
        "### Batches (inbox files)",
        _table(p.batches, "(no batches)"),
        "### Sources",
        _table(p.sources, "(no sources)"),
        "### Rules that rejected records",
        _rejections(p.rejections),
        "### Review decisions",
        *([b for b in review if b] or ["(the warehouse has no review tables)"]),
        "### Expert time",
        _expert_time(p.expert_time),
        "## Licence",
        _licence_text(licensing),
        "## How to load",
        _how_to_load(),
    ]
    return "\n\n".join(block.strip() for block in blocks) + "\n"


def _rejections(rows: list[dict] | None) -> str:
    if rows is None:
        return "(the warehouse has no `rejections` table)"
    if not rows:
        return "No record was rejected by a filtering rule."
    return (
        "Records of the batches above that a filtering rule rejected (a record can be "
        "rejected by several rules):\n\n" + _table(rows)
    )


def _section(title: str, rows: list[dict]) -> str:
    return f"{title}:\n\n{_table(rows)}" if rows else ""


def _expert_time(time: dict) -> str:
    if not time or not time.get("timed"):
        return "No expert time was recorded for these examples."
    hours = float(time["seconds"]) / 3600
    return (
        f"{hours:.2f} expert hours on the {time['examples']} examples "
        f"({time['seconds_per_example']} s per example on the {time['timed']} with a "
        "recorded time; `verified.expert_seconds`: all expert time spent on the example)."
    )


def _licence_text(licensing: Licensing) -> str:
    lines = []
    if licensing.sources:
        lines.append(
            f"The batches {', '.join(f'`{b}`' for b in licensing.known_batches)} come from "
            "sources with a known licence; attribution:\n"
        )
        lines += [f"- {s.attribution}" for s in licensing.sources]
        lines.append("")
    if licensing.unknown_batches:
        named = ", ".join(f"`{b}`" for b in licensing.unknown_batches)
        if licensing.declared:
            lines.append(
                f"The batches {named} are under `{licensing.declared}`, as declared by "
                "whoever exported them (`CURATION_HF_DATASET_LICENSE` or the asset's "
                "`license` config)."
            )
        else:
            lines.append(
                f"The licence of the batches {named} is not known: the header says "
                f"`license: {UNKNOWN}`. Check that you may share the scraped text, then set "
                "`CURATION_HF_DATASET_LICENSE` (a Hub licence id such as `cc-by-4.0`) and "
                "export again."
            )
    return "\n".join(lines).strip() + "\n"


def _how_to_load() -> str:
    train, validation = (PARQUET_PATTERN.format(split=s) for s in SPLITS)
    return f"""`FOLDER` is this folder: `<data_dir>/datasets/verified/<data version>`, or
`<data_dir>/datasets/verified/latest` for the newest version.

```python
from datasets import load_dataset, load_from_disk

dataset = load_from_disk(FOLDER)  # the DatasetDict as saved (Arrow files)
dataset = load_dataset(FOLDER)  # the Parquet files, through this card's configs
dataset = load_dataset(
    "parquet",
    data_files={{
        "train": f"{{FOLDER}}/{train}.parquet",
        "validation": f"{{FOLDER}}/{validation}.parquet",
    }},
)
train, validation = dataset["train"], dataset["validation"]
```

Pushed to the Hub, the same card and Parquet files load with
`load_dataset("OWNER/NAME")`.
"""


def _table(rows: list[dict], empty: str = "(none)") -> str:
    """Rows as a Markdown table (cells on one line, pipes escaped)."""
    if not rows:
        return f"{empty}\n"
    names = list(rows[0])
    lines = ["| " + " | ".join(names) + " |", "|" + "---|" * len(names)]
    lines += ["| " + " | ".join(_cell(r.get(n)) for n in names) + " |" for r in rows]
    return "\n".join(lines) + "\n"


def _cell(value: object) -> str:
    text = "" if value is None else str(value)
    return text.replace("|", "\\|").replace("\n", " ")
