"""The whole graph at scale: ingest -> filtered -> review_queue -> reviewed -> verified.

Generates realistic labelled scrapes (banking77 + CLINC150 messages over 227 intents,
20% confusable label swaps, resampled to N distinct rows, see ``intent_noise``) as JSONL
inbox files of at most 100K rows, runs the product's own Dagster jobs in this process
against a real instance (``DAGSTER_HOME`` in a temporary folder) with the default
settings (suspect scoring on, static embeddings), then drops a 1% increment into the
inbox and runs again, the way the sensor and the nightly refresh do (only the new file
is ingested).

Per step (each asset and each check, from the run's own step events) it prints wall
seconds, CPU seconds and the process's peak RSS during the step (sampled every 0.2 s),
rows/s, and for the increment the ratio to the full run. Precision of the suspect
ranking against the planted swaps is printed too.

    .venv/bin/python -m benchmarks.bench_graph_scale --n 100000 [--json out.json]

Needs ``../shared/data`` (banking77, clinc150); without it, it says so and exits 0.
"""

import json
import os
import platform
import sys
import tempfile
import threading
import time
from pathlib import Path

import pandas as pd
import psutil

from benchmarks import common, intent_noise
from benchmarks.common import Timer

BATCH_ROWS = 100_000


class Sampler:
    """Process CPU seconds and RSS every ``interval`` seconds, in a thread."""

    def __init__(self, interval: float = 0.2) -> None:
        self.interval = interval
        self.samples: list[tuple[float, float, int]] = []
        self._stop = threading.Event()
        self._proc = psutil.Process()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.is_set():
            cpu = self._proc.cpu_times()
            self.samples.append((time.time(), cpu.user + cpu.system, self._proc.memory_info().rss))
            self._stop.wait(self.interval)

    def __enter__(self) -> "Sampler":
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()

    def window(self, start: float, end: float) -> tuple[float, int]:
        """(CPU seconds, peak RSS bytes) between two wall-clock times."""
        inside = [s for s in self.samples if start - self.interval <= s[0] <= end + self.interval]
        if len(inside) < 2:
            return 0.0, max((s[2] for s in inside), default=0)
        return inside[-1][1] - inside[0][1], max(s[2] for s in inside)


def write_inbox(inbox: Path, n: int, seed: int) -> tuple[list[str], str, pd.DataFrame]:
    """Batch files of ``n`` rows plus one 1% increment file; returns (names, increment, truth)."""
    base = intent_noise.with_confusable_noise(intent_noise.intents(), 0.2, seed)
    extra = max(1, n // 100)
    rows = intent_noise.scaled(base, n + extra, seed)
    inbox.mkdir(parents=True, exist_ok=True)
    names = []
    for b, start in enumerate(range(0, n, BATCH_ROWS)):
        name = f"batch-{b:03d}.jsonl"
        part = rows.iloc[start : min(start + BATCH_ROWS, n)]
        part[["text", "label", "source"]].to_json(inbox.parent / name, orient="records", lines=True)
        names.append(name)
    increment = "increment-001.jsonl"
    rows.iloc[n:][["text", "label", "source"]].to_json(
        inbox.parent / increment, orient="records", lines=True
    )
    return names, increment, rows[["text", "label", "true_label", "noisy"]]


def run_graph(settings, instance, keys: list[str]) -> object:
    """Ingest ``keys`` (one run each), then the curate job without training."""
    import dagster as dg

    from curation_assets.curation.review import decisions
    from curation_assets.definitions import build_definitions
    from curation_assets.defs.ingest.assets import inbox_files

    defs = build_definitions(settings)
    instance.add_dynamic_partitions(inbox_files.name, keys)
    results = []
    ingest_job = defs.resolve_job_def("ingest_job")
    for key in keys:
        results.append(ingest_job.execute_in_process(instance=instance, partition_key=key))
    count, newest = decisions.high_water_mark(settings.decision_store)
    instance.report_runless_asset_event(
        dg.AssetMaterialization("review_decisions", metadata={"decisions": count})
    )
    curate = defs.resolve_job_def("curate_job").execute_in_process(
        instance=instance,
        raise_on_error=False,
        asset_selection=[
            dg.AssetKey(k)
            for k in ("filtered", "rejections", "review_queue", "reviewed", "verified")
        ],
    )
    return results + [curate]


def step_table(instance, results, sampler: Sampler) -> dict[str, dict]:
    """Wall, CPU and peak RSS per step name (ingest steps summed over partitions)."""
    out: dict[str, dict] = {}
    for result in results:
        starts = {}
        for entry in instance.all_logs(result.run_id):
            event = entry.dagster_event
            if event is None:
                continue
            if event.event_type_value == "STEP_START":
                starts[event.step_key] = entry.timestamp
            elif event.event_type_value in ("STEP_SUCCESS", "STEP_FAILURE"):
                start = starts.get(event.step_key)
                if start is None:
                    continue
                cpu, rss = sampler.window(start, entry.timestamp)
                name = event.step_key.replace("ingest_inbox_file", "raw_scrapes")
                row = out.setdefault(name, {"wall_s": 0.0, "cpu_s": 0.0, "peak_rss_gb": 0.0})
                row["wall_s"] += entry.timestamp - start
                row["cpu_s"] += cpu
                row["peak_rss_gb"] = max(row["peak_rss_gb"], rss / 2**30)
                row["ok"] = row.get("ok", True) and event.event_type_value == "STEP_SUCCESS"
    return out


def precision(con, truth: pd.DataFrame) -> dict:
    """Suspect ranking precision against the planted swaps (by example text)."""
    columns = {r[0] for r in con.execute("DESCRIBE suspect_scores").fetchall()}
    per_model = [c for c in ("quality_tfidf", "quality_embeddings") if c in columns]
    ranked = con.sql(
        f"SELECT f.prompt, s.score, {''.join(c + ', ' for c in per_model)}q.queue "
        "FROM suspect_scores s JOIN filtered f USING (example_id) "
        "LEFT JOIN review_queue q USING (example_id)"
    ).df()
    noisy = dict(zip(truth["text"], truth["noisy"], strict=False))
    ranked["noisy"] = ranked["prompt"].map(noisy).fillna(False).astype(bool)
    out = {"noise_rate": round(float(ranked["noisy"].mean()), 3)}
    for name, column, ascending in (
        ("product", "score", False),
        ("tfidf_alone", "quality_tfidf", True),
        ("embeddings_alone", "quality_embeddings", True),
    ):
        if column not in ranked:
            continue
        order = ranked.sort_values(column, ascending=ascending, kind="stable")["noisy"].to_numpy()
        out[name] = {f"p@{k}": round(float(order[:k].mean()), 3) for k in (100, 500)}
    queue = ranked[ranked["queue"] == "suspect"]
    out["suspect_queue_precision"] = round(float(queue["noisy"].mean()), 3) if len(queue) else None
    return out


def main(argv: list[str] | None = None) -> int:
    parser = common.parser(__doc__)
    parser.add_argument("--n", type=int, default=100_000)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--json", type=Path)
    parser.add_argument("--workdir", type=Path, help="keep the run here (default: a temp dir)")
    parser.add_argument("--no-increment", action="store_true")
    args = parser.parse_args(argv)
    if not intent_noise.available():
        print(f"skipped: {common.SHARED}/data (banking77, clinc150) not found")
        return 0
    work = args.workdir or Path(tempfile.mkdtemp(prefix=f"bench-graph-{args.n}-"))
    home = work / "dagster_home"
    home.mkdir(parents=True, exist_ok=True)
    (home / "dagster.yaml").write_text((common.REPO / "dagster.yaml").read_text())
    os.environ["DAGSTER_HOME"] = str(home)
    import dagster as dg
    import duckdb

    from curation_assets.config import Settings

    with Timer() as timer:
        names, increment, truth = write_inbox(work / "data" / "inbox", args.n, args.seed)
    staging = work / "data"
    print(f"generated {args.n:,} + {args.n // 100:,} rows in {timer.wall:.0f} s")
    settings = Settings.from_env(
        data_dir=work / "data",
        labels=(),
        min_verified_examples=0,
        min_validation_examples=0,
        max_rule_drop_rate=1.0,
    )
    report: dict = {
        "n": args.n,
        "machine": f"{platform.machine()}, {os.cpu_count()} cores, "
        f"{psutil.virtual_memory().total / 2**30:.0f} GB, Python {platform.python_version()}",
        "suspect_encoder": settings.suspect_encoder,
    }
    instance = dg.DagsterInstance.get()
    for phase, files in (("full", names), ("increment", [increment])):
        if phase == "increment" and args.no_increment:
            break
        for name in files:
            (staging / name).rename(settings.inbox / name)
        keys = [f"{name}" for name in files]
        from curation_assets.curation.ingest import intake

        keys = [intake.batch_key(settings.inbox / name) for name in files]
        with Timer() as timer, Sampler() as sampler:
            results = run_graph(settings, instance, keys)
        wall = timer.wall
        steps = step_table(instance, results, sampler)
        report[phase] = {"wall_s": round(wall, 1), "steps": steps}
        peak = max(s[2] for s in sampler.samples) / 2**30
        print(f"\n{phase}: {wall:.0f} s wall, peak RSS {peak:.2f} GB")
        for name, row in steps.items():
            print(
                f"  {name:40s} {row['wall_s']:8.1f} s wall {row['cpu_s']:8.1f} CPU-s "
                f"{row['peak_rss_gb']:6.2f} GB  {'ok' if row['ok'] else 'FAILED'}"
            )
        with duckdb.connect(str(settings.warehouse), read_only=True) as con:
            counts = dict(
                con.execute(
                    "SELECT 'filtered', count(*) FROM filtered UNION ALL "
                    "SELECT 'raw_scrapes', count(*) FROM raw_scrapes"
                ).fetchall()
            )
            report[phase]["rows"] = counts
            report[phase]["precision"] = precision(con, truth)
            tables = {r[0] for r in con.execute("SHOW TABLES").fetchall()}
            meta = (
                con.execute(
                    "SELECT refit_reason, sample_rows, rows_at_fit FROM suspect_models WHERE active"
                ).fetchall()
                if "suspect_models" in tables
                else []
            )
            report[phase]["suspect_model"] = meta[0] if meta else None
        event = instance.get_latest_materialization_event(dg.AssetKey("review_queue"))
        if event is not None and event.asset_materialization is not None:
            meta = event.asset_materialization.metadata
            for key in ("step_seconds", "suspect_scoring"):
                if key in meta:
                    report[phase][f"review_queue_{key}"] = meta[key].value
            print(f"  review_queue sub-steps: {report[phase].get('review_queue_step_seconds')}")
            scoring = report[phase].get("review_queue_suspect_scoring") or {}
            shown = ("refit", "refit_reason", "newly_scored", "seconds", "fit_seconds")
            print(f"  suspect scoring: {json.dumps({k: scoring.get(k) for k in shown})}")
        print(f"  rows: {counts}; precision: {report[phase]['precision']}")
    if "increment" in report:
        ratios = {}
        for name, row in report["increment"]["steps"].items():
            full = report["full"]["steps"].get(name)
            if full and full["wall_s"] > 0:
                ratios[name] = round(row["wall_s"] / full["wall_s"], 4)
        report["increment_ratio"] = ratios
        print("\nincrement / full (wall):")
        for name, ratio in ratios.items():
            print(f"  {name:40s} {ratio:7.2%}")
    if args.json:
        common.write_json(args.json, report)
    return 0


if __name__ == "__main__":
    sys.exit(main())
