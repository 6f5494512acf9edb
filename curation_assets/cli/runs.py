"""``curation demo`` and ``curation run``: materialize the graph in this process, one
progress line per finished stage (above live progress bars on a terminal), then a
summary of where the results are."""

import contextlib
import os
import shutil
import sys
import time
from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Literal

import typer

from curation_assets.cli.common import FAILED, OK, CurationCommand, load_settings
from curation_assets.cli.decisions import import_decisions
from curation_assets.cli.progress import run_progress
from curation_assets.runs.instance import ensure_dagster_home

if TYPE_CHECKING:
    from curation_assets.config import Settings

#: Stages ``curation run --from`` may start at (pipeline.START_STAGES; not imported here
#: so that light commands do not load Dagster).
START_STAGES = ("filtered", "review_queue", "reviewed", "verified")
#: The same stages as a type, for Typer's choice check (kept equal by a test).
StartStage = Literal["filtered", "review_queue", "reviewed", "verified"]

app = typer.Typer()

Verbose = Annotated[
    bool,
    typer.Option(
        "--verbose", help="show Dagster's full DEBUG event log instead of one line per stage"
    ),
]


@app.command(
    "demo", cls=CurationCommand, short_help="materialize the whole graph on the bundled sample"
)
def demo(
    fresh: Annotated[bool, typer.Option("--fresh", help="start from an empty data folder")] = False,
    verbose: Verbose = False,
) -> int:
    """Copy the bundled sample into the inbox, import its decisions and materialize the
    whole graph, fine-tune included (exit codes as for run)."""
    settings = load_settings()
    from curation_assets.runs.recovery import recover_on_start

    ensure_dagster_home()
    recover_on_start()  # before anything else; run_everything checks again (a no-op then)
    if fresh and settings.data_dir.exists():
        shutil.rmtree(settings.data_dir)
    sample = Path(str(resources.files("curation_assets") / "sample_data"))
    settings.inbox.mkdir(parents=True, exist_ok=True)
    for file in sorted((sample / "inbox").iterdir()):
        if not (settings.inbox / file.name).exists():
            shutil.copy2(file, settings.inbox / file.name)
    for file in sorted((sample / "decisions").glob("*.jsonl")):
        import_decisions(settings, file)
    return run_pipeline(settings, skip_training=False, verbose=verbose)


@app.command(
    "run", cls=CurationCommand, short_help="ingest the inbox and materialize everything downstream"
)
def run(
    skip_training: Annotated[
        bool,
        typer.Option(
            "--skip-training",
            help="stop after verified: no fine-tune, evaluation, quality ladder or lineage",
        ),
    ] = False,
    from_stage: Annotated[
        StartStage | None,
        typer.Option(
            "--from",
            metavar="STAGE",
            show_default=False,
            help="start at STAGE and run only it and what is downstream of it, without "
            "re-ingesting the inbox (after importing decisions: --from review_queue). "
            f"One of: {', '.join(START_STAGES)}",
        ),
    ] = None,
    verbose: Verbose = False,
) -> int:
    """Ingest every inbox file, then materialize filtered -> review_queue -> reviewed ->
    verified -> fine_tuned_model (and the evaluation, ladder and lineage). Exits 0 when
    everything is done or when it only waits for review work, 1 on a failure (a held
    batch, a failed audit, an error)."""
    return run_pipeline(
        load_settings(), skip_training=skip_training, verbose=verbose, from_stage=from_stage
    )


def run_pipeline(
    settings: "Settings",
    skip_training: bool,
    verbose: bool = False,
    from_stage: str | None = None,
) -> int:
    """Run the graph (``run_everything``), then print the summary; 0 when done or only
    waiting for review, 1 on a failure."""
    from curation_assets.runs.pipeline import run_everything

    home = ensure_dagster_home()
    if not verbose:
        _quiet_libraries()
    started = time.perf_counter()
    # run_everything first fails runs left by a killed process and frees their pool slots
    with run_progress(_emit, enabled=not verbose) as emit:
        summary = run_everything(
            settings,
            skip_training=skip_training,
            verbose=verbose,
            from_stage=from_stage,
            emit=emit,
        )
    elapsed = time.perf_counter() - started
    print()
    print("=" * 72)
    for line in summary["lines"]:
        print(line)
    print(f"wall time: {elapsed:.0f} s")
    print()
    print(f"warehouse (DuckDB): {settings.warehouse}")
    print(f"decision store (SQLite): {settings.decision_store}")
    print(f"models: {settings.models}")
    print(f"Dagster instance (DAGSTER_HOME): {home}")
    print("open the UI: ./scripts/ui  (then http://127.0.0.1:3000, Assets > Lineage)")
    print("trace an example: .venv/bin/curation trace <example_id>")
    print("=" * 72)
    if summary["state"] == "waiting":
        print("curate run: waiting for review (see above); nothing failed")
    elif summary["state"] == "failed":
        print("curate run: FAILED (see above)", file=sys.stderr)
    return OK if summary["state"] in ("ok", "waiting") else FAILED


def _emit(line: str) -> None:
    """A progress line, written at once (a closed pipe stops the lines, not the run)."""
    with contextlib.suppress(BrokenPipeError):
        print(line, flush=True)


def _quiet_libraries() -> None:
    """No library progress bars between the stage lines (``--verbose`` keeps them)."""
    os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
    os.environ.setdefault("TQDM_DISABLE", "1")
