"""The ``curation`` command as a new user meets it: a first run on unreviewed data waits
for review (exit 0) instead of failing, a held batch still fails, and the small things
(``--version``, an empty users list, a closed pipe, the verdict of a duplicate, the source
line of an exported queue item, help on every flag, the same command line on Typer, usage
errors as one line and exit 2, training progress)."""

import json
import logging
import os
import subprocess
import sys
import typing
from pathlib import Path

import duckdb
import pytest
import typer

from curation_assets import cli
from curation_assets.cli import runs
from curation_assets.runs import pipeline
from curation_assets_tests.fixtures import (
    make_rows,
    settings_env,
    small_settings,
    write_two_batches,
)

pytestmark = pytest.mark.integration  # see pyproject: ./scripts/test --fast skips these


@pytest.fixture(scope="module")
def world(tmp_path_factory, support_base):
    """Two inbox files (the CSV repeats 8 rows of the JSONL), no decisions, its own
    DAGSTER_HOME; the CURATION_* variables point ``curation`` at it."""
    root = tmp_path_factory.mktemp("cli")
    rows = make_rows(30)
    settings = small_settings(root / "data", base_model=str(support_base))
    write_two_batches(settings.inbox, rows)
    env = {**settings_env(settings), "DAGSTER_HOME": str(root / "dagster_home")}
    with pytest.MonkeyPatch.context() as patch:
        for name, value in env.items():
            patch.setenv(name, value)
        yield settings, env


@pytest.fixture(scope="module")
def first_run(world):
    """``curation run --skip-training`` on data nobody has reviewed yet."""
    return _main_output(["run", "--skip-training"])


def _main_output(argv: list[str]) -> tuple[int, str]:
    import contextlib
    import io

    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        status = cli.main(argv)
    return status, out.getvalue() + err.getvalue()


def _scalar(settings, sql):
    with duckdb.connect(str(settings.warehouse), read_only=True) as con:
        return con.sql(sql).fetchall()[0][0]


def test_a_first_run_on_unreviewed_data_waits_for_review_and_exits_0(world, first_run):
    settings, _ = world
    status, out = first_run
    assert status == 0, out
    assert "FAILED" not in out
    queued = _scalar(settings, "SELECT count(*) FROM review_queue")
    assert f"waiting for review (not a failure): {queued} items wait in the review queues" in out
    assert f"coverage {queued}, suspects 0" in out
    assert "./scripts/review" in out and "curation decisions import FILE" in out
    assert "30 more verified examples are needed before training (have 0 of" in out
    # one line per finished stage (8 duplicates rejected), not Dagster's DEBUG event log
    assert "✓ filter_raw_scrapes: filtered 90 rows; rejections 8 rows (" in out
    assert " - DEBUG - " not in out and "STEP_START" not in out
    # the audit's GX table is explained by the waiting lines, never printed raw
    assert "|---|" not in out


def test_a_full_run_waiting_for_review_exits_0_and_the_fine_tune_is_not_run(world, first_run):
    status, out = _main_output(["run"])
    assert status == 0, out
    assert "more verified examples are needed before training" in out
    assert "- fine_tuned_model: not run" in out
    assert "Traceback" not in out and "FAILED" not in out


def test_run_from_a_stage_does_not_ingest(world, first_run):
    status, out = _main_output(["run", "--from", "review_queue", "--skip-training"])
    assert status == 0, out
    assert "ingest " not in out and "ingest_inbox_file" not in out
    assert "✓ review_queue: review_queue " in out and "filter_raw_scrapes" not in out
    assert "waiting for review" in out


def test_trace_of_a_duplicate_gives_the_verdict_of_that_record(world, first_run):
    settings, _ = world
    duplicate, kept = _scalar(
        settings,
        "SELECT [r.record_id, f.record_id] FROM rejections r JOIN filtered f USING (example_id) "
        "WHERE r.rule = 'exact_duplicate' ORDER BY r.record_id LIMIT 1",
    )
    status, out = _main_output(["trace", duplicate])
    assert status == 0
    verdict = out.splitlines()[0]
    assert verdict.startswith(f"{duplicate}: rejected by filters: exact_duplicate")
    assert f"the kept copy {kept} is kept by filters; review status: pending" in verdict
    # the kept copy itself is still "kept"
    assert _main_output(["trace", kept])[1].startswith(f"{kept}: kept by filters")


def test_exported_queue_items_name_their_source_file_and_line(world, first_run, tmp_path):
    status, out = _main_output(["decisions", "export-queue", str(tmp_path / "q.jsonl")])
    assert status == 0, out
    items = [json.loads(line) for line in (tmp_path / "q.jsonl").read_text().splitlines()]
    assert items and all(i["source_file"] and i["line_no"] for i in items)
    first = items[0]
    assert first["record_id"] == f"{Path(first['source_file']).name}:{first['line_no']}"
    status, _ = _main_output(
        ["decisions", "export-queue", str(tmp_path / "ls.json"), "--format", "label-studio"]
    )
    tasks = json.loads((tmp_path / "ls.json").read_text())
    assert status == 0 and all(t["data"]["line_no"] for t in tasks)


def test_version_empty_users_list_and_settings_as_comma_lists(world, capsys):
    assert cli.main(["--version"]) == 0  # returned, not raised as SystemExit
    assert capsys.readouterr().out.startswith("curation ")
    status, out = _main_output(["users", "list"])
    assert status == 0
    assert "no users yet" in out and "curation users add NAME --role" in out
    status, out = _main_output(["settings"])
    assert status == 0
    assert json.loads(out)["labels"] == "billing, delivery, login"


def _commands(command, path: str = "curation"):
    """Every (command path, command) of the Typer app, groups included."""
    yield path, command
    for name, child in getattr(command, "commands", {}).items():
        yield from _commands(child, f"{path} {name}")


def test_every_command_and_argument_has_a_help_text():
    missing = []
    for path, command in _commands(typer.main.get_command(cli.app)):
        if not (command.help or command.short_help):
            missing.append(path)
        missing += [f"{path} {param.name}" for param in command.params if not param.help]
    assert missing == []
    assert cli.START_STAGES == pipeline.START_STAGES
    assert typing.get_args(runs.StartStage) == cli.START_STAGES


#: The command line as argparse had it: command -> {option or ARGUMENT: (default, required)}.
COMMAND_LINE = {
    "curation": {"--version": (False, False)},
    "curation demo": {"--fresh": (False, False), "--verbose": (False, False)},
    "curation run": {
        "--skip-training": (False, False),
        "--from": (None, False),
        "--verbose": (False, False),
    },
    "curation trace": {"ID": (None, True), "--json": (False, False)},
    "curation decisions": {},
    "curation decisions import": {"FILE": (None, True), "--role": ("reviewer", False)},
    "curation decisions export-queue": {"FILE": (None, True), "--format": ("jsonl", False)},
    "curation review": {
        "--host": (None, False),
        "--port": (None, False),
        "--secure-cookies": (False, False),
        "--log-level": ("info", False),
    },
    "curation users": {},
    "curation users add": {
        "NAME": (None, True),
        "--role": (None, True),
        "--password-stdin": (False, False),
        "--replace": (False, False),
    },
    "curation users list": {},
    "curation batches": {},
    "curation batches list": {},
    "curation batches accept": {
        "BATCH": (None, True),
        "--reason": (None, True),
        "--by": (None, False),
    },
    "curation settings": {},
}


def test_the_command_line_keeps_every_subcommand_option_and_default():
    found = {
        path: {
            (param.opts[0] if param.opts[0].startswith("-") else param.metavar): (
                param.default,
                param.required,
            )
            for param in command.params
        }
        for path, command in _commands(typer.main.get_command(cli.app))
    }
    assert found == COMMAND_LINE


def test_usage_errors_and_refused_input_are_one_line_and_exit_2(tmp_path, monkeypatch):
    monkeypatch.setenv("CURATION_DATA_DIR", str(tmp_path))
    missing = tmp_path / "missing.jsonl"
    for argv, message in [
        (["run", "--from", "nowhere"], "Invalid value for '--from'"),
        (["decisions", "import", str(tmp_path), "--role", "admin"], "Invalid value for '--role'"),
        (["review", "--port", "http"], "Invalid value for '--port'"),
        (["users", "add", "ann"], "Missing option '--role'"),
        (["no-such-command"], "No such command 'no-such-command'"),
        (["decisions", "import", str(missing)], f"no such file: {missing}"),
        (["decisions", "import", str(tmp_path)], f"not a file: {tmp_path}"),
        (["trace", "x"], "nothing published under"),
        (["batches", "accept", "x.jsonl", "--reason", "r"], "x.jsonl is not held back"),
    ]:
        status, out = _main_output(argv)
        assert status == 2, (argv, out)
        assert message in out and "Traceback" not in out, (argv, out)
    status, out = _main_output([])  # no command: the help, as a usage error
    assert status == 2 and "Usage: curation" in out
    status, out = _main_output(["run", "--help"])
    assert status == 0 and "--skip-training" in out and "--from" in out


def test_help_names_the_exit_codes_and_loads_neither_dagster_nor_torch():
    code = (
        "import sys; from curation_assets import cli; status = cli.main(['--help']); "
        "heavy = sorted({m.split('.')[0] for m in sys.modules} & {'dagster', 'torch', 'pandas'}); "
        "print('heavy:', heavy, 'status:', status)"
    )
    env = {**os.environ, "COLUMNS": "200"}  # rich wraps help at the terminal width
    child = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=120, env=env
    )
    assert "heavy: [] status: 0" in child.stdout, child.stdout + child.stderr
    assert "Exit codes" in child.stdout and "usage error or refused input" in child.stdout


def test_trace_of_an_unknown_id_is_one_line_and_exits_1(world, first_run):
    status, out = _main_output(["trace", "no-such-id"])
    assert status == 1
    assert out.splitlines() == ["no-such-id: unknown id: not in raw_scrapes or quarantine"]


def test_a_closed_output_pipe_ends_quietly(world):
    _, env = world
    command = Path(sys.executable).with_name("curation")
    child = subprocess.Popen(
        [str(command), "settings"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env={**os.environ, **env},
    )
    child.stdout.close()  # the reader is gone before the command writes (like `| head -1`)
    _, err = child.communicate(timeout=120)
    assert child.returncode == 141, err.decode()
    assert b"Traceback" not in err and b"BrokenPipe" not in err


def test_training_progress_shows_one_line_per_tenth_with_rate_and_time_left():
    lines = []
    handler = pipeline._ProgressHandler(lines.append)
    for step in range(1, 116):
        record = logging.LogRecord("x", logging.INFO, "", 0, "", (), None)
        record.dagster_meta = {
            "step_key": "fine_tuned_model",
            "orig_message": f"step {step}/115 epoch 0.1: loss 1.0",
            "dagster_event": None,
        }
        handler.emit(record)
    assert len(lines) == 11 and lines[-1].startswith("  fine_tuned_model: step 115/115")
    assert all("steps/s, about " in line and " s left)" in line for line in lines[1:])


def test_a_held_batch_still_fails(world, first_run):
    """Last in this file: it adds a mostly malformed file to the shared inbox."""
    settings, _ = world
    good = make_rows(2, seed=5)[:4]
    lines = [json.dumps(r) for r in good] + ['{"text": "broken'] * 10
    (settings.inbox / "c_bad.jsonl").write_text("\n".join(lines) + "\n")
    status, out = _main_output(["run", "--skip-training"])
    assert status == 1, out
    assert "ingest c_bad.jsonl: FAILED" in out and "curate run: FAILED" in out
    assert "raw_scrapes:expectations [batch_accounting]" in out
    assert "max_value=0.2, 1 unexpected, observed [0.7143]" in out
    assert "held back: c_bad.jsonl at raw_scrapes" in out
    assert "|---|" not in out
    assert "waiting for review" in out  # still says what review work is missing
