"""The live progress bars of ``curation run`` (issue #16): on a terminal the stage lines
scroll above a bar of finished steps and one of the fine-tune's training steps; anywhere
else the lines are written as before, with nothing added."""

import functools
import io
import re
import sys
import types

from rich.console import Console

from curation_assets.cli import progress, runs
from curation_assets.config import Settings

LINES = [
    "  ingest: 2 files in the inbox",
    "✓ raw_scrapes[a.jsonl]: raw_scrapes 30 rows (0.4 s)",
    "✗ filtered: FAILED: the store went away",
    "- review_queue: skipped (an input did not pass its checks)",
    "  fine_tuned_model: step 12/115 epoch 0.10: loss 1.0 (3.0 steps/s, about 34 s left)",
    "  fine_tuned_model: step 115/115 epoch 1.00: loss 0.5 (3.1 steps/s, about 0 s left)",
]


def _terminal() -> Console:
    """A console that takes itself for a terminal and keeps what it was sent."""
    return Console(file=io.StringIO(), force_terminal=True, color_system=None, width=120)


def test_the_bars_count_finished_steps_and_training_steps():
    console = _terminal()
    with progress.live_bars(console) as bars:
        board = progress.RunProgress(bars)
        for line in LINES:
            board.line(line)
        steps, training = (bars.tasks[i] for i in (board.steps, board.training))
        assert steps.completed == 3 and steps.total is None  # done, failed and skipped
        assert (training.completed, training.total) == (115, 115)
        assert training.description == "training fine_tuned_model"
    shown = console.file.getvalue()
    assert all(line.strip() in shown for line in LINES)


def test_off_a_terminal_the_lines_go_out_unchanged(capsys):
    assert not sys.stdout.isatty()  # pytest's capture
    with progress.run_progress(print) as emit:
        assert emit is print
    with progress.run_progress(print, enabled=False, console=_terminal()) as emit:
        assert emit is print


def test_run_sends_its_stage_lines_through_the_bars(tmp_path, monkeypatch, capsys):
    def run_everything(settings, emit, **options):
        for line in LINES:
            emit(line)
        return {"lines": ["curate run 1234abcd: ok"], "state": "ok"}

    fake = types.ModuleType("curation_assets.runs.pipeline")
    fake.run_everything = run_everything
    monkeypatch.setitem(sys.modules, "curation_assets.runs.pipeline", fake)
    monkeypatch.setenv("DAGSTER_HOME", str(tmp_path / "dagster_home"))
    settings = Settings(data_dir=tmp_path / "data")
    for verbose in (False, True):
        console = _terminal()
        monkeypatch.setattr(
            runs, "run_progress", functools.partial(progress.run_progress, console=console)
        )
        assert runs.run_pipeline(settings, skip_training=True, verbose=verbose) == 0
        out = capsys.readouterr().out
        assert "curate run 1234abcd: ok" in out
        shown = console.file.getvalue()
        if verbose:  # Dagster's own log: no bars, no lines through them
            assert shown == "" and LINES[1] in out
        else:  # the lines above the bars, and the bars moved on by them
            assert LINES[1] in shown and LINES[1] not in out
            assert re.search(r"steps finished\S* .*\b3/\?", shown), shown[-500:]
            assert re.search(r"training fine_tuned_model\S* .*\b115/115", shown)
