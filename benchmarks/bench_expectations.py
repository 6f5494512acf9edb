"""Cost of the Great Expectations audits at N rows: the ``raw_scrapes`` and ``quarantine``
suites of one ingested batch and the ``filtered`` suite over the whole table.

Builds the tables those suites read with DuckDB SQL (synthetic rows of realistic width),
then times ``run_validations`` for each suite (the best of --repeats, after one warm-up that
pays GX's import and object set-up). Runs on any checkout: pass PYTHONPATH=<old tree> to
time an older implementation (before #16 it pulled each query's result into pandas).

    python -m benchmarks.bench_expectations --rows 10000 100000 1000000
"""

import inspect
import json
import tempfile
import time
from pathlib import Path

import duckdb

from benchmarks.common import parser, peak_rss_gib
from curation_assets.config import Settings
from curation_assets.curation import expectations
from curation_assets.defs.filtering.suites import filtered_expectations
from curation_assets.defs.ingest.suites import quarantine_expectations, raw_scrapes_expectations


def build(con: duckdb.DuckDBPyConnection, rows: int) -> None:
    """raw_scrapes (one batch), quarantine (1%), ingest_batches, filtered (90%), rejections."""
    bad = rows // 100
    con.execute(f"""
        CREATE TABLE raw_scrapes AS
        SELECT 'r' || lpad(i::VARCHAR, 12, '0') AS record_id,
               substr(md5(i::VARCHAR), 1, 16) AS example_id, 'b1' AS batch, i AS line_no,
               repeat('how do I reset my card pin ', 4) || i AS prompt,
               'card_' || (i % 20)::VARCHAR AS response
        FROM range({rows}) r(i)""")
    con.execute(f"""
        CREATE TABLE quarantine AS
        SELECT 'b1' AS batch, 'in.jsonl' AS source_file, i AS line_no, 'not JSON' AS reason
        FROM range({bad}) r(i)""")
    con.execute(f"""
        CREATE TABLE ingest_batches AS SELECT 'b1' AS batch, 'jsonl' AS file_format,
               {rows + bad} AS units_read, {rows} AS records_loaded,
               {bad} AS records_quarantined""")
    con.execute("CREATE TABLE filtered AS SELECT * FROM raw_scrapes WHERE line_no % 10 <> 0")
    con.execute("""
        CREATE TABLE rejections AS SELECT record_id, example_id, batch, 'too_short' AS rule,
               'under the minimum length' AS reason FROM raw_scrapes WHERE line_no % 10 = 0""")
    con.execute("CREATE TABLE filtered__working AS SELECT * FROM filtered")


def timed(con, validations, asset: str, docs: Path, repeats: int) -> float:
    kwargs = {}
    if "asset" in inspect.signature(expectations.run_validations).parameters:
        kwargs = {"asset": asset, "docs_dir": docs}
    expectations.run_validations(con, validations, **kwargs)  # warm-up
    best = float("inf")
    for _ in range(repeats):
        started = time.perf_counter()
        result = expectations.run_validations(con, validations, **kwargs)
        best = min(best, time.perf_counter() - started)
    assert result.evaluated > 0
    return best


def main() -> None:
    args = parser(__doc__)
    args.add_argument("--rows", type=int, nargs="+", default=[10_000, 100_000])
    args.add_argument("--repeats", type=int, default=3)
    opts = args.parse_args()
    settings = Settings(labels=tuple(f"card_{i}" for i in range(20)))
    out = []
    for rows in opts.rows:
        with tempfile.TemporaryDirectory() as folder:
            con = duckdb.connect(str(Path(folder) / "w.duckdb"))
            build(con, rows)
            docs = Path(folder) / "gx"
            suites = {
                "raw_scrapes": raw_scrapes_expectations(settings, "b1"),
                "quarantine": quarantine_expectations("b1"),
                "filtered": filtered_expectations(settings),
            }
            times = {name: timed(con, v, name, docs, opts.repeats) for name, v in suites.items()}
            con.close()
        out.append({"rows": rows, **{k: round(v, 3) for k, v in times.items()}})
        print(json.dumps(out[-1]), flush=True)
    print(json.dumps({"peak_rss_gib": round(peak_rss_gib(), 2)}))


if __name__ == "__main__":
    main()
