"""Setup the benchmark scripts share: paths, real data, timing, DuckDB and report helpers.

Only the standard library is imported at module level: ``bench_gpu_mfu`` runs where only
torch is installed and ``_datatrove_runner`` runs in its own venv. duckdb, pandas, torch and
transformers are imported inside the helpers that need them.

A script run by path (``python benchmarks/x.py``) puts the repository on ``sys.path`` first:
``sys.path.insert(0, str(Path(__file__).resolve().parents[1]))``.
"""

import argparse
import gzip
import json
import os
import random
import resource
import statistics
import sys
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

REPO = Path(__file__).resolve().parents[1]
#: The shared data folder (``CURATION_SHARED_DIR``, else ``../shared`` beside the repository).
SHARED = Path(os.environ.get("CURATION_SHARED_DIR", REPO.parent / "shared"))
SHARED_DATA = SHARED / "data"
ALPACA_RAW = SHARED_DATA / "instructions" / "alpaca_libre_raw"
SELF_INSTRUCT = (
    SHARED_DATA / "instructions/self_instruct_user_oriented/user_oriented_instructions.jsonl"
)
BANKING77 = SHARED_DATA / "banking77"
ARTICLES = SHARED_DATA / "article_extraction_benchmark"
DOLMA = SHARED_DATA / "web_raw_dolma"
#: The interpreter the ``Reproduce:`` lines of the RESULTS_*.md files name.
RESULTS_PYTHON = "/work/main/.venv/bin/python"


# --------------------------------------------------------------------------- command line


def parser(doc: str | None) -> argparse.ArgumentParser:
    """An argument parser described by the first line of a script's docstring."""
    return argparse.ArgumentParser(description=doc.splitlines()[0] if doc else None)


def missing(message: str, *paths: Path) -> bool:
    """Whether any of ``paths`` is absent; if so ``message`` is printed (the caller exits 0)."""
    if all(path.exists() for path in paths):
        return False
    print(message)
    return True


def reproduce(script: str, *args: str) -> str:
    """The command line that reruns ``benchmarks/<script>``, for a RESULTS file."""
    return " ".join([RESULTS_PYTHON, f"benchmarks/{script}", *args])


# --------------------------------------------------------------------------- real data


def jsonl(path: Path) -> Iterator[tuple[int, Any]]:
    """(line index, parsed value) for each line of a JSONL file; malformed lines skipped."""
    with path.open(encoding="utf-8") as handle:
        for i, line in enumerate(handle):
            try:
                yield i, json.loads(line)
            except json.JSONDecodeError:
                continue  # the raw scrapes have broken lines on purpose


def alpaca_raw_files() -> list[Path]:
    """alpaca-libre's raw generation files (JSONL), in name order."""
    return sorted(ALPACA_RAW.glob("*.jsonl"))


def alpaca_raw_records() -> Iterator[Any]:
    """The parsed lines of alpaca-libre's raw generations, file by file."""
    for path in alpaca_raw_files():
        for _, item in jsonl(path):
            yield item


def banking77(split: str) -> Any:
    """banking77's ``split`` (``train`` or ``test``) as a DataFrame: ``text``, ``label``."""
    import pandas as pd

    frame = pd.read_csv(BANKING77 / f"{split}.csv")
    return frame.rename(columns={"category": "label"})


def article_truth() -> dict[str, dict[str, Any]]:
    """The article-extraction benchmark's ground truth: page id -> fields (``articleBody``)."""
    return json.loads((ARTICLES / "ground-truth.json").read_text(encoding="utf-8"))


def warc_texts(files: Iterable[Path]) -> list[str]:
    """Extracted texts of the documents in WARC ``files`` (documents without text left out)."""
    from curation_assets.curation.ingest.documents import read_warc

    return [t for f in files for t in read_warc(f)["text"].dropna()]


def dolma_texts(files: Iterable[Path]) -> list[str]:
    """The ``text`` of each line of Dolma JSONL ``files``, then of its provided documents."""
    texts = [json.loads(line)["text"] for f in files for line in f.open(encoding="utf-8")]
    with gzip.open(DOLMA / "provided-documents-000.json.gz", "rt", encoding="utf-8") as handle:
        texts += [json.loads(line)["text"] for line in handle]
    return texts


class WordEdits:
    """Word-level edits that draw replacement words from ``vocab`` with ``rng``."""

    def __init__(self, rng: random.Random, vocab: Sequence[str]) -> None:
        self.rng, self.vocab = rng, vocab

    def word(self) -> str:
        """A random word of the vocabulary (frequent words more often)."""
        return self.vocab[self.rng.randrange(len(self.vocab))]

    def substitute(self, tokens: Iterable[str], rate: float) -> list[str]:
        """``tokens`` with each one replaced by a random word with probability ``rate``."""
        rng = self.rng
        return [self.word() if rng.random() < rate else t for t in tokens]


# --------------------------------------------------------------------------- measuring


def cpu_seconds(*, own: bool = True, children: bool = False) -> float:
    """User + system CPU seconds of this process and/or its waited-for child processes."""
    total = 0.0
    for who, wanted in ((resource.RUSAGE_SELF, own), (resource.RUSAGE_CHILDREN, children)):
        if wanted:
            usage = resource.getrusage(who)
            total += usage.ru_utime + usage.ru_stime
    return total


def busy_seconds() -> float:
    """CPU seconds all processes of the machine have used since boot (from /proc/stat)."""
    fields = Path("/proc/stat").read_text().splitlines()[0].split()[1:]
    user, nice, system, _idle, _iowait, irq, softirq, steal = (int(x) for x in fields[:8])
    return (user + nice + system + irq + softirq + steal) / os.sysconf("SC_CLK_TCK")


def peak_rss_gb() -> float:
    """Peak resident memory of this process so far, in GB (10^6 KiB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1e6


def peak_rss_gib() -> float:
    """Peak resident memory of this process so far, in GiB."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20


class Timer:
    """Wall and CPU seconds over a ``with`` block (``wall``, ``cpu``).

    CPU is ``cpu_clock``: this process, all its threads, by default. With ``machine`` also
    the CPU seconds other processes used meanwhile (``others``; the machine may be shared)
    and the 1-minute load average before and after (``load_before``, ``load_after``).
    """

    def __init__(
        self, machine: bool = False, cpu_clock: Callable[[], float] = time.process_time
    ) -> None:
        self.machine, self.cpu_clock = machine, cpu_clock
        self.wall = self.cpu = self.others = self.load_before = self.load_after = 0.0

    def __enter__(self) -> "Timer":
        if self.machine:
            self._busy, self.load_before = busy_seconds(), os.getloadavg()[0]
        self.wall, self.cpu = time.perf_counter(), self.cpu_clock()
        return self

    def __exit__(self, *exc: object) -> None:
        self.wall = time.perf_counter() - self.wall
        self.cpu = self.cpu_clock() - self.cpu
        if self.machine:
            self.others = max(0.0, busy_seconds() - self._busy - self.cpu)
            self.load_after = os.getloadavg()[0]

    @property
    def other_cores(self) -> float:
        """Cores other processes kept busy on average during the block."""
        return self.others / self.wall if self.wall else 0.0


def best_of(run_once: Callable[[], object], repeats: int = 3) -> float:
    """The fastest wall time of ``repeats`` calls of ``run_once``."""
    best = float("inf")
    for _ in range(repeats):
        with Timer() as timer:
            run_once()
        best = min(best, timer.wall)
    return best


# --------------------------------------------------------------------------- DuckDB


@contextmanager
def registered(con: Any, name: str, data: Any) -> Iterator[None]:
    """``data`` (a DataFrame or an Arrow table) visible to ``con`` as view ``name`` in the block."""
    con.register(name, data)
    try:
        yield
    finally:
        con.unregister(name)


def create_table(con: Any, table: str, data: Any, select: str = "*") -> None:
    """Replace ``table`` with ``SELECT select`` over ``data`` (a DataFrame or Arrow table)."""
    with registered(con, "_frame", data):
        con.execute(f"CREATE OR REPLACE TABLE {table} AS SELECT {select} FROM _frame")


def scalar(con: Any, sql: str, params: Sequence[Any] | None = None) -> Any:
    """The first value of the first row of ``sql``."""
    return con.execute(sql, params).fetchall()[0][0]


def duckdb_threads(con: Any) -> int:
    """How many threads DuckDB runs queries with on ``con``."""
    return int(scalar(con, "SELECT current_setting('threads')"))


def remove_database(path: Path) -> None:
    """Delete a DuckDB database file and its write-ahead log, where they exist."""
    for file in (path, path.with_suffix(path.suffix + ".wal")):
        file.unlink(missing_ok=True)


# --------------------------------------------------------------------------- reporting


def log_json(data: Any, file: IO[str] | None = None) -> None:
    """Print ``data`` as one JSON line (values JSON lacks as ``str``), flushed."""
    print(json.dumps(data, default=str), file=file or sys.stdout, flush=True)


def write_json(path: str | Path, data: Any) -> None:
    """Write ``data`` as indented UTF-8 JSON (values JSON lacks as ``str``)."""
    text = json.dumps(data, indent=2, ensure_ascii=False, default=str)
    Path(path).write_text(text + "\n", encoding="utf-8")


def write_report(path: Path, text: str) -> None:
    """Write a Markdown report (UTF-8) and print it."""
    path.write_text(text, encoding="utf-8")
    print(text)


def mean_sd(values: Sequence[float], digits: int = 3) -> str:
    """``mean ± sd`` of ``values`` (the mean alone for a single value)."""
    mean = statistics.mean(values)
    if len(values) < 2:
        return f"{mean:.{digits}f}"
    return f"{mean:.{digits}f} ± {statistics.stdev(values):.{digits}f}"


def md_row(cells: Iterable[object]) -> str:
    """One Markdown table row."""
    return "| " + " | ".join(map(str, cells)) + " |"


def md_table(
    header: Sequence[str],
    rows: Iterable[Iterable[object]] = (),
    align: str = "",
    spaced: bool = False,
) -> list[str]:
    """Markdown table lines: ``header``, its rule, ``rows``.

    ``align`` has a letter per column, ``l`` (the default) or ``r``; ``spaced`` writes the
    rule as ``| --- |`` instead of ``|---|``.
    """
    rule = ["---:" if a == "r" else "---" for a in align.ljust(len(header), "l")]
    return [
        md_row(header),
        md_row(rule) if spaced else "|" + "|".join(rule) + "|",
        *(md_row(row) for row in rows),
    ]


class _Blank(dict):
    """A mapping whose absent keys read as empty strings."""

    def __missing__(self, key: str) -> str:
        return ""


@dataclass(frozen=True)
class Table:
    """A Markdown table of result records: column names, a row template, alignments.

    ``row`` is a whole table row with ``str.format`` fields named after record keys (a key a
    record lacks is left blank); ``align`` as for ``md_table``.
    """

    header: Sequence[str]
    row: str
    align: str = ""

    def lines(self, records: Iterable[dict[str, Any]]) -> list[str]:
        return md_table(self.header, align=self.align) + [
            self.row.format_map(_Blank(record)) for record in records
        ]


def print_summary(summary: dict[str, Any], table: Table, json_path: str | None) -> None:
    """Print ``summary`` as indented JSON, then its ``results`` as ``table``; with
    ``json_path`` also write the JSON there."""
    print(json.dumps(summary, indent=2))
    print("\n" + "\n".join(table.lines(summary["results"])))
    if json_path:
        write_json(json_path, summary)


# --------------------------------------------------------------------------- training


def quiet_transformers() -> None:
    """transformers logs errors only and shows no progress bars."""
    import transformers

    transformers.utils.logging.set_verbosity_error()
    transformers.utils.logging.disable_progress_bar()


def library_versions() -> dict[str, str]:
    """The versions of torch and transformers, for a summary."""
    import torch
    import transformers

    return {"torch": torch.__version__, "transformers": transformers.__version__}


def bf16_available() -> bool:
    """Whether a GPU with bf16 support is there."""
    import torch

    return torch.cuda.is_available() and torch.cuda.is_bf16_supported()


#: ``TrainingArguments`` of a timed run: no reports, checkpoints, logs or progress bars.
QUIET_TRAINING = {
    "report_to": "none",
    "save_strategy": "no",
    "logging_strategy": "no",
    "disable_tqdm": True,
}


def training_arguments(output_dir: str, batch_size: int, **settings: Any) -> Any:
    """``TrainingArguments`` for a timed run (``QUIET_TRAINING``), bf16 where supported, the
    CPU when there is no GPU; ``settings`` add to them (transformers' defaults otherwise)."""
    import torch
    from transformers import TrainingArguments

    device = {"bf16": bf16_available(), "use_cpu": not torch.cuda.is_available()}
    return TrainingArguments(
        output_dir, per_device_train_batch_size=batch_size, **QUIET_TRAINING, **device, **settings
    )


class PaddingCollator:
    """A plain Trainer's batching: pad to the longest example (prompt labels stay -100),
    counting ``real_tokens`` and ``processed_tokens`` (padding included)."""

    def __init__(self, tokenizer: Any) -> None:
        from transformers import DataCollatorForSeq2Seq

        self.inner = DataCollatorForSeq2Seq(tokenizer, padding="longest", label_pad_token_id=-100)
        self.real_tokens = self.processed_tokens = 0

    def __call__(self, batch: list[dict[str, Any]]) -> dict[str, Any]:
        out = self.inner(batch)
        self.real_tokens += int(out["attention_mask"].sum())
        self.processed_tokens += int(out["input_ids"].numel())
        return out
