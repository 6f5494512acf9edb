"""Run datatrove's FineWeb-style filters and MinHash dedup on a corpus; print JSON.

Executed by the datatrove venv (``benchmarks/setup_datatrove.sh``), never by the
product's: ``.venv-datatrove/bin/python benchmarks/_datatrove_runner.py --input DIR
--work DIR [--workers 2]``. ``--input`` holds Parquet shards with ``id`` and ``text``.

Pipeline (FineWeb's order; a document rejected by one filter is not seen by the next):

1. ``filters``: GopherRepetitionFilter -> GopherQualityFilter -> C4QualityFilter ->
   FineWebQualityFilter, kept documents written as Parquet. Left out: the language filter
   and C4's bad-words filter (both download data at run time).
2. MinHash on the kept documents (FineWeb's settings, 5-grams, 14 buckets x 8 hashes):
   ``signatures``, ``buckets``, ``cluster``, ``filter`` (dedup'd documents written out).

Each stage is timed (wall) and its CPU is measured for this process and its children
(pool workers are forked, so their CPU time is collected when the pool is joined).
"""

import json
import os
import shutil
import sys
from functools import partial
from pathlib import Path

# The datatrove venv does not have the product installed; ``common`` needs the standard
# library only.
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks import common  # noqa: E402

#: CPU of this process and of its pool workers (forked; counted once joined).
_CPU = partial(common.cpu_seconds, own=True, children=True)


def _count(stats, name_part: str, key: str) -> int:
    for step in stats.stats:
        if name_part in step.name:
            value = step.stats.get(key)
            return int(value.total if hasattr(value, "total") else (value or 0))
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = common.parser(__doc__)
    parser.add_argument("--input", type=Path, required=True, help="folder of Parquet shards")
    parser.add_argument("--work", type=Path, required=True, help="scratch folder (emptied)")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--skip-dedup", action="store_true")
    args = parser.parse_args(argv)

    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    from loguru import logger

    logger.remove()
    logger.add(sys.stderr, level="WARNING")

    from datatrove.executor import LocalPipelineExecutor
    from datatrove.pipeline.dedup import (
        MinhashDedupBuckets,
        MinhashDedupCluster,
        MinhashDedupFilter,
        MinhashDedupSignature,
    )
    from datatrove.pipeline.dedup.minhash import MinhashConfig
    from datatrove.pipeline.filters import (
        C4QualityFilter,
        FineWebQualityFilter,
        GopherQualityFilter,
        GopherRepetitionFilter,
    )
    from datatrove.pipeline.readers import ParquetReader
    from datatrove.pipeline.writers import ParquetWriter

    shards = sorted(args.input.glob("*.parquet"))
    tasks = len(shards)
    if args.work.exists():
        shutil.rmtree(args.work)
    work = args.work
    kept, sigs, buckets, clusters, final = (
        str(work / d) for d in ("kept", "sigs", "buckets", "clusters", "final")
    )
    config = MinhashConfig()  # FineWeb: 5-grams, 14 buckets x 8 hashes
    out: dict = {"input_shards": tasks, "workers": args.workers, "stages": {}}

    def run(name: str, pipeline: list, n_tasks: int) -> object:
        executor = LocalPipelineExecutor(
            pipeline=pipeline,
            tasks=n_tasks,
            workers=min(args.workers, n_tasks),
            logging_dir=str(work / "logs" / name),
            start_method="fork",
        )
        with common.Timer(cpu_clock=_CPU) as timer:
            stats = executor.run()
        out["stages"][name] = {"seconds": round(timer.wall, 3), "cpu_seconds": round(timer.cpu, 3)}
        return stats

    stats = run(
        "filters",
        [
            ParquetReader(str(args.input), text_key="text", id_key="id"),
            GopherRepetitionFilter(),
            GopherQualityFilter(),
            C4QualityFilter(),
            FineWebQualityFilter(),
            ParquetWriter(kept, output_filename="${rank}.parquet"),
        ],
        tasks,
    )
    docs = _count(stats, "Parquet", "documents")
    out["documents"] = docs
    out["kept_after_filters"] = _count(stats, "FineWeb", "forwarded")
    out["dropped_by"] = {
        s.name: int(s.stats["dropped"].total if "dropped" in s.stats else 0)
        for s in stats.stats
        if "dropped" in s.stats
    }
    if not args.skip_dedup:
        run(
            "signatures",
            [ParquetReader(kept), MinhashDedupSignature(output_folder=sigs, config=config)],
            tasks,
        )
        run(
            "buckets",
            [MinhashDedupBuckets(input_folder=sigs, output_folder=buckets, config=config)],
            config.num_buckets,
        )
        run(
            "cluster",
            [MinhashDedupCluster(input_folder=buckets, output_folder=clusters, config=config)],
            1,
        )
        stats = run(
            "filter",
            [
                ParquetReader(kept),
                MinhashDedupFilter(input_folder=clusters),
                ParquetWriter(final, output_filename="${rank}.parquet"),
            ],
            tasks,
        )
        out["kept_after_dedup"] = _count(stats, "MinHash", "forwarded")
        out["near_duplicates_removed"] = _count(stats, "MinHash", "dropped")
    out["seconds"] = round(sum(s["seconds"] for s in out["stages"].values()), 3)
    out["cpu_seconds"] = round(sum(s["cpu_seconds"] for s in out["stages"].values()), 3)
    from importlib.metadata import version

    out["versions"] = {p: version(p) for p in ("datatrove", "spacy")}
    print(json.dumps(out))
    return 0


if __name__ == "__main__":
    sys.exit(main())
