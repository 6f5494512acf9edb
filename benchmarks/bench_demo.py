"""The demo, recorded: is it deterministic, and how much do its figures move across seeds?

Runs ``curation demo`` (the real CLI a user runs, bundled sample, default settings) in a
fresh data folder and a fresh Dagster instance per run, then reads the warehouse:

- counts per stage and a content hash of ``verified`` (every column but timestamps);
- the fine-tune's validation accuracy / macro-F1 (``model_evaluations``);
- every rung of ``quality_ladder``.

The first ``--repeats`` runs use the default seed: identical hashes and figures mean the
demo is deterministic on this machine type. One run per extra seed (``--seeds``, passed
as ``CURATION_SEED``: the suspect model's fit sample, the ladder's random rung and every
training seed) gives the spread a user who picks another seed should expect. The
coverage sample, and so ``verified``, does not depend on the seed.

Writes ``benchmarks/RESULTS_demo.md`` (the README's demo tables come from it).

    .venv/bin/python benchmarks/bench_demo.py [--repeats 2] [--seeds 14,15] [--out PATH]
        [--env CURATION_LADDER_TRAINER=finetune --env CURATION_LADDER_STEPS=125]
"""

import hashlib
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import duckdb

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # runnable as a plain script

from benchmarks import common  # noqa: E402
from benchmarks.common import REPO, md_table  # noqa: E402

DEFAULT_OUT = REPO / "benchmarks/RESULTS_demo.md"
DEFAULT_SEED = 13
#: Columns that record when a run wrote a row, not what (left out of the content hash).
_TIME_COLUMNS = ("published_at", "ingested_at")


def run_demo(seed: int, work: Path, extra_env: dict[str, str] | None = None) -> dict[str, Any]:
    """One fresh ``curation demo``; its figures read back from the warehouse."""
    data, home = work / "data", work / "dagster_home"
    work.mkdir(parents=True)
    env = {
        **os.environ,
        "CURATION_DATA_DIR": str(data),
        "DAGSTER_HOME": str(home),
        "CURATION_SEED": str(seed),
        **(extra_env or {}),
    }
    with common.Timer() as timer:
        done = subprocess.run(
            [str(REPO / ".venv/bin/curation"), "demo"],
            env=env,
            cwd=work,
            capture_output=True,
            text=True,
            check=False,
        )
    if done.returncode != 0:
        sys.exit(f"demo (seed {seed}) failed:\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}")
    with duckdb.connect(str(data / "warehouse.duckdb"), read_only=True) as con:
        return {"seed": seed, "wall_s": round(timer.wall), **read_figures(con)}


def read_figures(con: duckdb.DuckDBPyConnection) -> dict[str, Any]:
    """Counts, the hash of ``verified``'s content, the fine-tune's scores, the ladder."""

    def scalar(sql: str) -> Any:
        return common.scalar(con, sql)

    columns = [
        c
        for (c,) in con.execute(
            "SELECT column_name FROM information_schema.columns "
            "WHERE table_name = 'verified' ORDER BY ordinal_position"
        ).fetchall()
        if c not in _TIME_COLUMNS
    ]
    rows = con.execute(f"SELECT {', '.join(columns)} FROM verified ORDER BY example_id").fetchall()
    digest = hashlib.sha256(json.dumps(rows, default=str).encode()).hexdigest()[:12]
    evaluation = con.execute(
        "SELECT accuracy, macro_f1, examples FROM model_evaluations "
        "WHERE split = 'validation' ORDER BY evaluated_at DESC LIMIT 1"
    ).fetchone()
    ladder = con.execute(
        "SELECT dataset, examples, human_hours, expert_hours, validation_accuracy, "
        "validation_macro_f1, validation_examples, steps, batch_size FROM quality_ladder"
    ).fetchall()
    return {
        "raw": scalar("SELECT count(*) FROM raw_scrapes"),
        "filtered": scalar("SELECT count(*) FROM filtered"),
        "reviewed": scalar("SELECT count(*) FROM reviewed"),
        "verified": scalar("SELECT count(*) FROM verified"),
        "verified_train": scalar("SELECT count(*) FROM verified WHERE split = 'train'"),
        "verified_validation": scalar("SELECT count(*) FROM verified WHERE split = 'validation'"),
        "verified_hash": digest,
        "fine_tune_accuracy": round(evaluation[0], 4),
        "fine_tune_macro_f1": round(evaluation[1], 4),
        "validation_examples": evaluation[2],
        "ladder": [
            {
                "dataset": r[0],
                "examples": r[1],
                "review_hours": r[2],
                "expert_hours": r[3],
                "accuracy": None if r[4] is None else round(r[4], 4),
                "macro_f1": None if r[5] is None else round(r[5], 4),
                "validation_examples": r[6],
                "steps": r[7],
                "batch_size": r[8],
            }
            for r in ladder
        ],
    }


def _same(runs: list[dict[str, Any]]) -> bool:
    """Whether every figure but the wall time is identical across ``runs``."""
    strip = [{k: v for k, v in r.items() if k != "wall_s"} for r in runs]
    return all(s == strip[0] for s in strip)


def _spread(values: list[float]) -> str:
    text = common.mean_sd(values)
    return text if len(values) < 2 else f"{text} ({min(values):.3f}-{max(values):.3f})"


def report(
    repeats: list[dict[str, Any]], others: list[dict[str, Any]], extra_env: dict[str, str]
) -> str:
    """The Markdown write-up."""
    first = repeats[0]
    trainer = extra_env.get("CURATION_LADDER_TRAINER", "head")
    deterministic = _same(repeats)
    lines = [
        "# The demo, recorded (`benchmarks/bench_demo.py`)",
        "",
        f"Machine: {platform.platform()}, {os.cpu_count()} cores, Python "
        f"{platform.python_version()}; {time.strftime('%Y-%m-%d')}. Each run is "
        "`curation demo` in a fresh data folder and a fresh `DAGSTER_HOME`"
        + (
            ", with " + " ".join(f"`{k}={v}`" for k, v in extra_env.items())
            if extra_env
            else ", default settings"
        )
        + ".",
        "",
        f"**Same seed ({DEFAULT_SEED}), {len(repeats)} runs: "
        + (
            "identical** (counts, `verified` content hash, fine-tune and every ladder "
            "rung to 4 places)."
            if deterministic
            else "NOT identical** (see the per-run table)."
        ),
        "",
        *md_table(
            [
                "run",
                "seed",
                "raw",
                "filtered",
                "reviewed",
                "verified (train / validation)",
                "verified hash",
                "fine-tune accuracy",
                "macro-F1",
                "wall s",
            ],
            [
                (
                    i,
                    r["seed"],
                    f"{r['raw']:,}",
                    f"{r['filtered']:,}",
                    f"{r['reviewed']:,}",
                    f"{r['verified']} ({r['verified_train']} / {r['verified_validation']})",
                    f"`{r['verified_hash']}`",
                    f"{r['fine_tune_accuracy']:.3f}",
                    f"{r['fine_tune_macro_f1']:.3f}",
                    r["wall_s"],
                )
                for i, r in enumerate([*repeats, *others], 1)
            ],
            align="lrrrrllrrr",
        ),
    ]
    steps = first["ladder"][0]
    lines += [
        "",
        f"## Quality ladder, seed {DEFAULT_SEED} (the README's table)",
        "",
        f"{first['validation_examples']} validation examples (the same for every rung), "
        f"{steps['steps']} optimizer steps of {steps['batch_size']} per rung, `{trainer}` trainer.",
        "",
        *md_table(
            ["rung", "examples", "review hours (expert)", "validation accuracy", "macro-F1"],
            align="lrrrr",
        ),
    ]
    for rung in first["ladder"]:
        accuracy = "skipped" if rung["accuracy"] is None else f"{rung['accuracy']:.3f}"
        f1 = "" if rung["macro_f1"] is None else f"{rung['macro_f1']:.3f}"
        lines.append(
            common.md_row(
                [
                    rung["dataset"],
                    f"{rung['examples']:,}",
                    f"{rung['review_hours']:.1f} ({rung['expert_hours']:.1f})",
                    accuracy,
                    f1,
                ]
            )
        )
    runs = [first, *others]
    if len(runs) > 1:
        seeds = ", ".join(str(r["seed"]) for r in runs)
        lines += [
            "",
            f"## Spread across seeds {seeds}",
            "",
            "Mean ± standard deviation (min-max) of the validation accuracy.",
            "",
            *md_table(
                ["what", "examples", "accuracy"],
                [
                    (
                        "fine-tune (`fine_tuned_model`)",
                        _values(runs, "verified_train"),
                        _spread([r["fine_tune_accuracy"] for r in runs]),
                    )
                ],
            ),
        ]
        for i, rung in enumerate(first["ladder"]):
            scores = [r["ladder"][i]["accuracy"] for r in runs]
            if None in scores:
                continue
            sizes = [r["ladder"][i]["examples"] for r in runs]
            lines.append(
                common.md_row([f"ladder: {rung['dataset']}", _range(sizes), _spread(scores)])
            )
    lines += ["", "Raw figures:", "", "```json", json.dumps([*repeats, *others], indent=1)]
    lines += ["```", ""]
    return "\n".join(lines)


def _values(runs: list[dict[str, Any]], key: str) -> str:
    return _range([r[key] for r in runs])


def _range(values: list[int]) -> str:
    low, high = min(values), max(values)
    return f"{low:,}" if low == high else f"{low:,}-{high:,}"


def main(argv: list[str] | None = None) -> int:
    parser = common.parser(__doc__)
    parser.add_argument("--repeats", type=int, default=2, help="runs at the default seed")
    parser.add_argument(
        "--seeds", default="14,15", help="extra seeds, one run each (comma list, may be empty)"
    )
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT, help="the Markdown write-up")
    parser.add_argument(
        "--env",
        action="append",
        default=[],
        metavar="NAME=VALUE",
        help="a setting for every run, e.g. CURATION_LADDER_TRAINER=finetune (repeatable)",
    )
    args = parser.parse_args(argv)
    extra_env = dict(item.split("=", 1) for item in args.env)
    seeds = [int(s) for s in args.seeds.split(",") if s.strip()]
    repeats, others = [], []
    with tempfile.TemporaryDirectory(prefix="bench_demo_") as tmp:
        for i in range(args.repeats):
            repeats.append(run_demo(DEFAULT_SEED, Path(tmp) / f"repeat{i}", extra_env))
            print(json.dumps({k: v for k, v in repeats[-1].items() if k != "ladder"}))
        for seed in seeds:
            others.append(run_demo(seed, Path(tmp) / f"seed{seed}", extra_env))
            print(json.dumps({k: v for k, v in others[-1].items() if k != "ladder"}))
    args.out.write_text(report(repeats, others, extra_env))
    print(f"-> {args.out}")
    return 0 if _same(repeats) else 1


if __name__ == "__main__":
    sys.exit(main())
