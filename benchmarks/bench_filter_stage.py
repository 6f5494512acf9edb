"""Throughput of the whole ``filtered`` stage (``filter_stage.run_stage``), against datatrove.

    .venv/bin/python -m benchmarks.bench_filter_stage generate --kind docs --n 1000000
    .venv/bin/python -m benchmarks.bench_filter_stage compare --kind docs --sizes 20000,100000
    .venv/bin/python -m benchmarks.bench_filter_stage ours --kind docs --n 1000000 --incremental
    .venv/bin/python -m benchmarks.bench_filter_stage ours --kind pairs --n 100000

Corpora are resampled from real data in ``../shared/data`` (without it: ``skipped``, exit 0)
and cached under ``$TMPDIR/bench_filter_stage``:

* ``docs``: web documents of about 1k characters. A document is a window of consecutive
  lines of a real one (the 181 hand-extracted article bodies of the article-extraction
  benchmark, the 37 pages of Dolma's WARC samples, 30 Common Crawl documents), whose
  prose lines have half of their sentences replaced by sentences of other documents:
  real line structure and boilerplate, mostly unique text. 3% are exact copies of an
  earlier document, 7% near copies (0.5-4% of the words edited).
* ``pairs``: alpaca-libre instruction/input/output records with 10/15/20% of their words
  replaced by corpus words (unique variants); 3% exact copies, 7% near copies (1-2 word
  edits).

Records are loaded into a fresh DuckDB warehouse with the declared ingest tables
(``curation/ingest/tables.py``; ``INSERT ... SELECT`` from Parquet, ``example_id`` by
``records.example_id_sql``), in batches of 10,000 (``warc`` batches for documents,
``jsonl`` for pairs). ``ours`` times ``run_stage`` on it, and with ``--incremental`` a
second call after one more batch of 1%.
``datatrove`` runs ``_datatrove_runner.py`` in ``.venv-datatrove`` (``setup_datatrove.sh``)
on the same texts. ``compare`` runs both as subprocesses, interleaved, and records the CPU
time of each and the CPU that other processes used meanwhile (the machine is shared).
"""

import json
import math
import random
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import duckdb
import pyarrow as pa
import pyarrow.parquet as pq

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # runnable as a plain script

from benchmarks import common  # noqa: E402
from benchmarks.common import REPO, Timer  # noqa: E402
from curation_assets.curation.ingest.tables import ensure_tables  # noqa: E402
from curation_assets.curation.records import NO_INPUT_MARKERS, example_id_sql  # noqa: E402

SHARED = common.SHARED_DATA
CACHE = Path(tempfile.gettempdir()) / "bench_filter_stage"
DT_PYTHON = REPO / ".venv-datatrove" / "bin" / "python"
BATCH = 10_000
EXACT_RATE, NEAR_RATE = 0.03, 0.07
_SENTENCE_END = re.compile(r"(?<=[.!?])\s+(?=[A-Z0-9\"“‘'(])")


# --------------------------------------------------------------------------- real data


def document_pool() -> list[str]:
    """Real document texts: article bodies, WARC pages (extracted), Common Crawl docs."""
    texts = [v["articleBody"] for v in common.article_truth().values() if v.get("articleBody")]
    texts += common.warc_texts(sorted(common.DOLMA.glob("*.warc.gz")))
    texts += common.dolma_texts(sorted(common.DOLMA.glob("cc_en_head-*.jsonl")))
    return [t for t in texts if t and t.strip()]


def pair_pool() -> list[tuple[str, str, str]]:
    """Real alpaca-libre (instruction, input, output) records (malformed lines skipped)."""
    return [
        (item["instruction"], str(item.get("input") or ""), str(item.get("output") or ""))
        for item in common.alpaca_raw_records()
        if isinstance(item, dict) and isinstance(item.get("instruction"), str)
    ]


# --------------------------------------------------------------------------- generation


class _Edits(common.WordEdits):
    def substitute_text(self, text: str, rate: float) -> str:
        """``text`` with each space-separated word replaced with probability ``rate``."""
        if rate <= 0 or not text:
            return text
        return " ".join(self.substitute(text.split(" "), rate))

    def edit(self, text: str, k: int) -> str:
        """``k`` random word operations (substitute, delete, insert), newlines kept."""
        tokens = text.split(" ")
        for _ in range(max(1, k)):
            i = self.rng.randrange(len(tokens))
            op = self.rng.randrange(3)
            if op == 0:
                tokens[i] = self.word()
            elif op == 1 and len(tokens) > 1 and "\n" not in tokens[i]:
                del tokens[i]
            else:
                tokens.insert(i, self.word())
        return " ".join(tokens)


class DocumentGenerator:
    def __init__(self, pool: list[str], seed: int) -> None:
        self.rng = random.Random(seed)
        self.docs = [[line.rstrip() for line in d.split("\n")] for d in pool]
        self.sentences = [
            s
            for d in self.docs
            for line in d
            if len(line) >= 60
            for s in _SENTENCE_END.split(line)
            if len(s) >= 20
        ]
        vocab = [w for d in pool for w in d.split() if w.isalpha()]
        self.edits = _Edits(self.rng, vocab)

    def fresh(self) -> str:
        rng = self.rng
        lines = self.docs[rng.randrange(len(self.docs))]
        target = min(4000, max(200, int(rng.lognormvariate(math.log(900), 0.5))))
        i = rng.randrange(len(lines))
        out: list[str] = []
        size = replaced = 0
        for _ in range(len(lines)):
            line = lines[i % len(lines)]
            i += 1
            if len(line) >= 60:
                parts = _SENTENCE_END.split(line)
                for k in range(len(parts)):
                    if rng.random() < 0.5:
                        parts[k] = self.sentences[rng.randrange(len(self.sentences))]
                        replaced += 1
                line = " ".join(parts)
            out.append(line)
            size += len(line) + 1
            if size >= target:
                break
        text = "\n".join(out).strip("\n") or self.sentences[0]
        # a window without prose to swap (menus, one short sentence): vary its words instead
        return text if replaced else self.edits.substitute_text(text, 0.15)

    def near(self, text: str) -> str:
        words = text.count(" ") + 1
        return self.edits.edit(text, round(words * self.rng.choice((0.005, 0.01, 0.02, 0.04))))


class PairGenerator:
    def __init__(self, pool: list[tuple[str, str, str]], seed: int) -> None:
        self.rng = random.Random(seed)
        self.pool = pool
        vocab = [w for row in pool for part in row for w in part.split() if w.isalpha()]
        self.edits = _Edits(self.rng, vocab)

    def fresh(self) -> tuple[str, str, str]:
        instruction, extra, output = self.pool[self.rng.randrange(len(self.pool))]
        e = self.edits
        if extra.strip().lower() not in NO_INPUT_MARKERS:
            extra = e.substitute_text(extra, 0.15)
        return e.substitute_text(instruction, 0.10), extra, e.substitute_text(output, 0.20)

    def near(self, row: tuple[str, str, str]) -> tuple[str, str, str]:
        instruction, extra, output = row
        k = self.rng.choice((1, 2))
        if output.strip() and self.rng.random() < 0.7:
            return instruction, extra, self.edits.edit(output, k)
        return self.edits.edit(instruction, k), extra, output


def corpus_path(kind: str) -> Path:
    return CACHE / f"{kind}-corpus.parquet"


def generate(kind: str, n: int, seed: int = 0) -> Path:
    """The master corpus of ``kind``: ``n`` records plus a 1% increment, in ingest order.

    Smaller corpora are prefixes (whole batches). Cached; regenerated when too small.
    """
    path = corpus_path(kind)
    if path.exists() and pq.read_metadata(path).num_rows >= n + max(BATCH, n // 100):
        return path
    total = n + max(BATCH, n // 100)
    start = time.perf_counter()
    gen = (
        DocumentGenerator(document_pool(), seed)
        if kind == "docs"
        else PairGenerator(pair_pool(), seed)
    )
    made: list = []
    rng = random.Random(seed + 1)
    for _ in range(total):
        roll = rng.random()
        if made and roll < EXACT_RATE:
            made.append(made[rng.randrange(len(made))])
        elif made and roll < EXACT_RATE + NEAR_RATE:
            made.append(gen.near(made[rng.randrange(len(made))]))
        else:
            made.append(gen.fresh())
    idx = list(range(total))
    batch_idx = [i // BATCH for i in idx]
    if kind == "docs":
        ext, fmt = "warc.gz", "warc"
        columns = {"prompt": made, "response": [""] * total}
    else:
        ext, fmt = "jsonl", "jsonl"
        columns = {
            "instruction": [r[0] for r in made],
            "input": [r[1] for r in made],
            "output": [r[2] for r in made],
        }
    table = pa.table(
        {
            "row_idx": idx,
            "batch_idx": batch_idx,
            "batch": [f"{kind}-{b:05d}.{ext}" for b in batch_idx],
            "file_format": [fmt] * total,
            "line_no": [i % BATCH + 1 for i in idx],
            **columns,
        }
    )
    CACHE.mkdir(parents=True, exist_ok=True)
    con = duckdb.connect()
    if kind == "docs":
        select = """*, 'crawl' AS source,
            to_json({'prompt': prompt, 'response': response,
                     'url': 'https://example.org/' || row_idx, 'title': NULL,
                     'record_type': 'response'})::VARCHAR AS original"""
    else:
        markers = ", ".join("'" + m + "'" for m in NO_INPUT_MARKERS)
        select = f"""*, 'alpaca' AS source,
            CASE WHEN lower(trim(input)) IN ({markers}) THEN instruction
                 ELSE instruction || chr(10) || chr(10) || input END AS prompt,
            output AS response,
            to_json({{'instruction': instruction, 'input': input, 'output': output}})::VARCHAR
                AS original"""
    tmp = path.with_suffix(".tmp.parquet")
    with common.registered(con, "_gen", table):
        con.execute(
            f"COPY (SELECT {select} FROM _gen ORDER BY row_idx) TO '{tmp}' (FORMAT parquet)"
        )
    con.close()
    tmp.replace(path)
    print(
        f"generated {total:,} {kind} in {time.perf_counter() - start:.0f} s: {path}",
        file=sys.stderr,
    )
    return path


# --------------------------------------------------------------------------- loading


def _source(kind: str, lo: int, hi: int) -> str:
    return (
        f"(SELECT * FROM read_parquet('{corpus_path(kind)}') "
        f"WHERE row_idx >= {lo} AND row_idx < {hi})"
    )


def load(con: duckdb.DuckDBPyConnection, kind: str, lo: int, hi: int) -> float:
    """Insert corpus rows ``lo..hi`` as their batches (raw_scrapes + ingest_batches)."""
    start = time.perf_counter()
    ensure_tables(con)
    src = _source(kind, lo, hi)
    ts = "TIMESTAMP '2026-11-01 00:00:00' + batch_idx * INTERVAL 1 MINUTE"
    con.execute("BEGIN TRANSACTION")
    con.execute(
        f"""INSERT INTO ingest_batches
            SELECT batch, '/inbox/' || batch, any_value(file_format), sha256(batch),
                   count(*), count(*), 0, any_value({ts}), NULL
            FROM {src} GROUP BY batch"""
    )
    con.execute(
        f"""INSERT INTO raw_scrapes
            SELECT batch || ':' || line_no, {example_id_sql()}, batch, '/inbox/' || batch,
                   line_no, source, prompt, response, original, {ts}
            FROM {src}"""
    )
    con.execute("COMMIT")
    return time.perf_counter() - start


# --------------------------------------------------------------------------- our stage


def _stage_config():
    """Instruction data, English only, near-duplicates at word 5-gram Jaccard 0.8; documents
    get the document rules whatever the task type (their batches are ``warc``)."""
    from curation_assets.curation.filtering import filter_stage

    return filter_stage.FilterConfig(
        task_type="instruction", labels=(), languages=("en",), dedup_threshold=0.8
    )


def _outcome(con: duckdb.DuckDBPyConnection) -> dict:
    kept = common.scalar(con, "SELECT count(*) FROM filtered")
    rejected = common.scalar(con, "SELECT count(DISTINCT record_id) FROM rejections")
    per_rule = dict(
        con.execute(
            "SELECT rule, count(*) FROM rejections GROUP BY rule ORDER BY 2 DESC"
        ).fetchall()
    )
    return {"kept": int(kept), "rejected": int(rejected), "per_rule": per_rule}


def _timed(timer: Timer) -> dict:
    """A stage run's seconds, CPU seconds and what other processes used meanwhile."""
    return {
        "seconds": round(timer.wall, 2),
        "cpu_seconds": round(timer.cpu, 2),
        "other_processes_cpu_seconds": round(timer.others, 1),
        "other_processes_cores": round(timer.other_cores, 2),
        "loadavg_before": round(timer.load_before, 2),
        "loadavg_after": round(timer.load_after, 2),
    }


def run_ours(kind: str, n: int, incremental: bool, keep_db: bool = False) -> dict:
    from curation_assets.curation.filtering import filter_stage

    if n % BATCH:
        raise SystemExit(f"--n must be a multiple of {BATCH:,} (whole batches)")
    generate(kind, n)
    db = CACHE / f"warehouse-{kind}-{n}.duckdb"
    common.remove_database(db)
    con = duckdb.connect(str(db))
    out: dict = {"kind": kind, "records": n, "duckdb_threads": common.duckdb_threads(con)}
    out["load_seconds"] = round(load(con, kind, 0, n), 2)
    cfg = _stage_config()
    with Timer(machine=True) as timer:
        report = filter_stage.run_stage(con, cfg)
    out["full"] = {
        **_timed(timer),
        "steps": dict(report.seconds),
        "new_records": dict(getattr(report, "new_records", {})),
        **_outcome(con),
        "peak_rss_gb": round(common.peak_rss_gib(), 2),
    }
    if incremental:
        extra = max(1, n // 100)  # one new batch of 1% (its rows follow the first n)
        out["increment_records"] = extra
        out["increment_load_seconds"] = round(load(con, kind, n, n + extra), 2)
        with Timer(machine=True) as timer:
            report = filter_stage.run_stage(con, cfg)
        timed = _timed(timer)
        out["incremental"] = {
            **timed,
            "steps": dict(report.seconds),
            "new_records": dict(getattr(report, "new_records", {})),
            **_outcome(con),
            "share_of_full_run": round(timed["seconds"] / out["full"]["seconds"], 4),
            "share_of_full_run_cpu": round(timed["cpu_seconds"] / out["full"]["cpu_seconds"], 4),
        }
    con.close()
    if not keep_db:
        common.remove_database(db)
    return out


# --------------------------------------------------------------------------- datatrove


def datatrove_input(kind: str, n: int, shards: int) -> Path:
    """Parquet shards (``id`` = record_id, ``text`` = prompt) of the first ``n`` records."""
    generate(kind, n)
    folder = CACHE / f"dt-{kind}-{n}"
    if folder.exists() and len(list(folder.glob("*.parquet"))) == shards:
        return folder
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True)
    con = duckdb.connect()
    for s in range(shards):
        con.execute(
            f"""COPY (SELECT batch || ':' || line_no AS id, prompt AS text
                      FROM {_source(kind, 0, n)}
                      WHERE row_idx % {shards} = {s} ORDER BY row_idx)
                TO '{folder / f"shard-{s:03d}.parquet"}' (FORMAT parquet)"""
        )
    con.close()
    return folder


def run_datatrove(kind: str, n: int, workers: int) -> dict:
    if not DT_PYTHON.exists():
        raise SystemExit(f"{DT_PYTHON} missing: run benchmarks/setup_datatrove.sh first")
    folder = datatrove_input(kind, n, shards=max(4, 2 * workers))
    work = CACHE / f"dt-work-{kind}-{n}"
    log = CACHE / f"dt-{kind}-{n}.log"
    with log.open("w") as err:
        proc = subprocess.run(
            [str(DT_PYTHON), str(REPO / "benchmarks" / "_datatrove_runner.py"),
             "--input", str(folder), "--work", str(work), "--workers", str(workers)],
            stdout=subprocess.PIPE, stderr=err, text=True, check=True,
        )  # fmt: skip
    shutil.rmtree(work, ignore_errors=True)
    return {"kind": kind, "records": n, **json.loads(proc.stdout.strip().splitlines()[-1])}


# --------------------------------------------------------------------------- comparison


def measured(cmd: list[str]) -> dict:
    """Run ``cmd`` (prints JSON last); add its total CPU and the CPU of other processes."""
    with Timer(machine=True, cpu_clock=lambda: common.cpu_seconds(own=False, children=True)) as t:
        proc = subprocess.run(cmd, stdout=subprocess.PIPE, text=True, check=True)
    result = json.loads(proc.stdout.strip().splitlines()[-1])
    result["machine"] = {
        "process_wall_seconds": round(t.wall, 1),
        "process_cpu_seconds": round(t.cpu, 1),
        "other_processes_cpu_seconds": round(t.others, 1),
        "other_processes_cores": round(t.other_cores, 2),
        "loadavg_before": round(t.load_before, 2),
    }
    return result


def compare(kind: str, sizes: list[int], workers: int, rounds: int) -> dict:
    me = [sys.executable, "-m", "benchmarks.bench_filter_stage"]
    runs: list[dict] = []
    for n in sizes:
        generate(kind, n)
        datatrove_input(kind, n, shards=max(4, 2 * workers))
        for r in range(rounds):
            order = ("ours", "datatrove") if r % 2 == 0 else ("datatrove", "ours")
            for who in order:
                cmd = me + [who, "--kind", kind, "--n", str(n)]
                if who == "datatrove":
                    cmd += ["--workers", str(workers)]
                result = measured(cmd)
                result["who"], result["round"] = who, r
                runs.append(result)
                with (CACHE / "runs.jsonl").open("a") as handle:  # every run, as it ends
                    handle.write(json.dumps(result, ensure_ascii=False) + "\n")
                common.log_json(_summary(result), file=sys.stderr)
    return {"kind": kind, "runs": runs, "summary": [_summary(r) for r in runs]}


def _summary(run: dict) -> dict:
    n = run["records"]
    if run["who"] == "ours":
        wall, cpu = run["full"]["seconds"], run["full"]["cpu_seconds"]
        kept = run["full"]["kept"]
    else:
        wall, cpu = run["seconds"], run["cpu_seconds"]
        kept = run.get("kept_after_dedup", run.get("kept_after_filters"))
    return {
        "who": run["who"],
        "records": n,
        "seconds": wall,
        "cpu_seconds": cpu,
        "records_per_cpu_second": round(n / cpu, 1),
        "records_per_s_per_core_wall": round(n / wall / 2, 1),
        "kept": kept,
        "other_cores_busy": run["machine"]["other_processes_cores"],
    }


# --------------------------------------------------------------------------- main


def main(argv: list[str] | None = None) -> int:
    parser = common.parser(__doc__)
    parser.add_argument("mode", choices=["generate", "ours", "datatrove", "compare"])
    parser.add_argument("--kind", choices=["docs", "pairs"], default="docs")
    parser.add_argument("--n", type=int, default=100_000)
    parser.add_argument("--sizes", default="20000,100000", help="compare: corpus sizes")
    parser.add_argument("--rounds", type=int, default=1, help="compare: runs of each per size")
    parser.add_argument("--workers", type=int, default=2, help="datatrove processes")
    parser.add_argument("--incremental", action="store_true", help="ours: + a 1%% batch")
    parser.add_argument("--json", type=Path, default=None, help="also write the result here")
    parser.add_argument("--keep-db", action="store_true", help="ours: keep the warehouse file")
    args = parser.parse_args(argv)
    if common.missing(f"skipped: {SHARED} not found (the benchmark needs ../shared)", SHARED):
        return 0
    if args.mode == "generate":
        result: dict = {"corpus": str(generate(args.kind, args.n))}
        table = pq.read_table(corpus_path(args.kind), columns=["prompt", "response"])
        con = duckdb.connect()
        with common.registered(con, "_t", table):
            stats = con.execute(
                f"SELECT count(*), avg(length(prompt) + length(response)), "
                f"count(DISTINCT {example_id_sql()}) FROM _t"
            ).fetchall()[0]
        result.update(records=stats[0], mean_chars=round(stats[1]), distinct_examples=stats[2])
    elif args.mode == "ours":
        result = run_ours(args.kind, args.n, args.incremental, keep_db=args.keep_db)
    elif args.mode == "datatrove":
        result = run_datatrove(args.kind, args.n, args.workers)
    else:
        sizes = [int(s) for s in args.sizes.split(",")]
        result = compare(args.kind, sizes, args.workers, args.rounds)
    if args.json:
        common.write_json(args.json, result)
    print(json.dumps(result, ensure_ascii=False))
    return 0


if __name__ == "__main__":
    sys.exit(main())
