"""The decision store's contract with the review app: the published queue, users,
app submissions, Label Studio interop, and many writers at once."""

import json
import multiprocessing
import sqlite3
from pathlib import Path

import pandas as pd
import pytest

from curation_assets.curation.review import decisions
from curation_assets.curation.review.decisions import queue as decision_queue


def _queue(n: int, tag: str = "a", queue: str = "coverage") -> pd.DataFrame:
    return pd.DataFrame(
        {
            "example_id": [f"{tag}{i}" for i in range(n)],
            "queue": queue,
            "priority": range(1, n + 1),
            "prompt": [f"prompt {tag} {i}" for i in range(n)],
            "response": "billing",
        }
    )


def _decision(eid: str, who: str = "ann", role: str = "reviewer", **extra) -> dict:
    return {"example_id": eid, "reviewer": who, "role": role, "decision": "accept", **extra}


def test_publish_queue_replaces_the_whole_queue(tmp_path):
    store = tmp_path / "d.sqlite"
    first = pd.concat([_queue(3, "a"), _queue(2, "s", queue="suspect")])
    first["flags"] = [[{"rule": "r1", "reason": "why"}], None, "[]", None, None]
    first["score"] = [None, None, None, 0.9, 0.4]
    assert decisions.publish_queue(store, first) == 5
    loaded = decisions.load_queue(store)
    assert list(loaded["example_id"]) == ["a0", "a1", "a2", "s0", "s1"]
    assert json.loads(loaded.loc[0, "flags"]) == [{"rule": "r1", "reason": "why"}]
    assert loaded.loc[1, "flags"] is None and pd.isna(loaded.loc[0, "score"])
    assert list(decisions.load_queue(store, "suspect")["score"]) == [0.9, 0.4]

    assert decisions.publish_queue(store, _queue(2, "b")) == 2
    assert list(decisions.load_queue(store)["example_id"]) == ["b0", "b1"]


@pytest.mark.parametrize(
    "broken, message",
    [
        (lambda q: q.assign(priority=[1, 1, 2]), "duplicate priority"),
        (lambda q: q.assign(example_id=["x", "x", "y"]), "duplicate example_id"),
        (lambda q: q.assign(queue="other"), "queue must be one of"),
        (lambda q: q.drop(columns="priority"), "lack column"),
        (lambda q: q.assign(flags="{not json"), "not valid JSON"),
    ],
)
def test_invalid_queue_is_refused_and_the_old_one_stays(tmp_path, broken, message):
    store = tmp_path / "d.sqlite"
    decisions.publish_queue(store, _queue(4, "old"))
    with pytest.raises(ValueError, match=message):
        decisions.publish_queue(store, broken(_queue(3, "new")))
    assert list(decisions.load_queue(store)["example_id"]) == [f"old{i}" for i in range(4)]


def test_a_failing_insert_rolls_the_replacement_back(tmp_path, monkeypatch):
    """Even a failure inside the transaction (after the old rows were deleted) keeps them."""
    store = tmp_path / "d.sqlite"
    decisions.publish_queue(store, _queue(4, "old"))
    rows = decision_queue._queue_rows(_queue(3, "new"))
    rows[2][2] = rows[0][2]  # same priority: the UNIQUE constraint fails mid-insert
    monkeypatch.setattr(decision_queue, "_queue_rows", lambda items: rows)
    with pytest.raises(sqlite3.IntegrityError):
        decisions.publish_queue(store, _queue(3, "new"))
    assert len(decisions.load_queue(store)) == 4


def test_users_are_hashed_with_argon2(tmp_path):
    from argon2 import PasswordHasher

    store = tmp_path / "d.sqlite"
    decisions.add_user(store, "dr_chen", "correct horse", "expert")
    raw = sqlite3.connect(store).execute("SELECT password_hash FROM users").fetchone()[0]
    assert raw.startswith("$argon2id$") and "correct horse" not in raw
    assert not PasswordHasher().check_needs_rehash(raw)  # the library's default costs
    assert decisions.verify_password(store, "dr_chen", "correct horse")["role"] == "expert"
    assert decisions.verify_password(store, "dr_chen", "wrong horse") is None
    assert decisions.verify_password(store, "nobody", "correct horse") is None
    assert decisions.get_user(store, "nobody") is None
    with pytest.raises(ValueError, match="already exists"):
        decisions.add_user(store, "dr_chen", "another one", "reviewer")
    with pytest.raises(ValueError, match="role"):
        decisions.add_user(store, "eve", "long enough", "root")
    with pytest.raises(ValueError, match="at least"):
        decisions.add_user(store, "eve", "short", "reviewer")
    with pytest.raises(ValueError, match="username"):
        decisions.add_user(store, "<script>", "long enough", "reviewer")
    decisions.add_user(store, "dr_chen", "new password", "reviewer", replace=True)
    assert decisions.verify_password(store, "dr_chen", "correct horse") is None
    assert decisions.verify_password(store, "dr_chen", "new password")["role"] == "reviewer"


def test_submissions_are_recorded_once_and_stay_append_only(tmp_path):
    store = tmp_path / "d.sqlite"
    con = decisions.connect(store)
    first = decisions.record_submissions(con, [("n1:e1", _decision("e1", seconds_spent=3))])
    again = decisions.record_submissions(con, [("n1:e1", _decision("e1", seconds_spent=9))])
    assert first[0][1] and not again[0][1] and first[0][0] == again[0][0]
    with pytest.raises(decisions.DecisionError):  # one bad decision: nothing of the batch
        decisions.record_submissions(
            con, [("n2:e2", _decision("e2")), ("n2:e3", _decision("e3", decision="edit"))]
        )
    for statement in ("UPDATE decisions SET decision = 'reject'", "DELETE FROM decisions"):
        with pytest.raises(sqlite3.DatabaseError, match="append-only"):
            con.execute(statement)
    con.close()
    frame = decisions.load_all(store)
    assert list(frame["example_id"]) == ["e1"] and list(frame["origin"]) == ["app"]
    assert frame.loc[0, "seconds_spent"] == 3


def test_label_studio_round_trip(tmp_path):
    store = tmp_path / "d.sqlite"
    decisions.publish_queue(store, _queue(4))
    out = tmp_path / "tasks.json"
    assert decisions.export_queue(store, out, "label-studio") == 4
    tasks = json.loads(out.read_text())
    assert tasks[0]["data"]["example_id"] == "a0" and tasks[0]["data"]["label"] == "billing"
    config = decisions.label_studio_config(["billing", 'odd"label'])
    assert '<Choice value="billing"/>' in config and "value='odd\"label'" in config

    def annotation(who, choices, when, **extra):
        result = [
            {"from_name": name, "to_name": "text", "type": "choices", "value": {"choices": [c]}}
            for name, c in choices.items()
        ]
        return {"completed_by": who, "result": result, "created_at": when, **extra}

    tasks[0]["annotations"] = [annotation({"email": "a@x.org"}, {"label": "billing"}, "2026-11-01")]
    tasks[1]["annotations"] = [annotation(7, {"label": "login"}, "2026-11-02", lead_time=4.5)]
    tasks[2]["annotations"] = [
        annotation({"email": "b@x.org"}, {"verdict": "reject"}, "2026-11-03"),
        annotation({"email": "c@x.org"}, {"label": "login"}, "2026-11-03", was_cancelled=True),
    ]
    tasks[3]["annotations"] = [{"completed_by": 1, "result": [], "created_at": "2026-11-04"}]
    export = tmp_path / "export.json"
    export.write_text(json.dumps(tasks))
    report = decisions.import_file(export, store, label_studio_role="expert")
    assert (report.added, report.errors) == (3, [(4, report.errors[0][1])])
    rows = decisions.load_all(store).set_index("example_id")
    assert rows.loc["a0", ["decision", "reviewer", "role"]].tolist() == [
        "accept",
        "a@x.org",
        "expert",
    ]
    assert rows.loc["a1", ["decision", "corrected_response", "seconds_spent"]].tolist() == [
        "edit",
        "login",
        4.5,
    ]
    assert rows.loc["a1", "reviewer"] == "labelstudio-user-7"
    assert rows.loc["a2", "decision"] == "reject"
    assert decisions.import_file(export, store, label_studio_role="expert").added == 0

    jsonl = tmp_path / "queue.jsonl"
    assert decisions.export_queue(store, jsonl, "jsonl") == 4
    first = json.loads(jsonl.read_text().splitlines()[0])
    assert first["example_id"] == "a0" and first["flags"] == [] and first["priority"] == 1


N_WRITERS, N_EACH = 8, 150


def _writer(store: str, worker: int) -> None:
    con = decisions.connect(Path(store))
    for i in range(N_EACH):
        if i % 2:
            decisions.record(con, _decision(f"w{worker}-{i}", who=f"r{worker}"), origin="test")
        else:
            decisions.record_submissions(
                con, [(f"w{worker}:{i}", _decision(f"w{worker}-{i}", who=f"r{worker}"))]
            )
    con.close()


def _publisher(store: str, stop) -> None:
    """Alternately publish a 50- and a 70-item queue, each a new version, until told."""
    n = 0
    while not stop.is_set() or n < 5:
        decisions.publish_queue(Path(store), _queue(70 if n % 2 else 50, tag=f"v{n}-"))
        n += 1


def _reader(store: str, stop, seen) -> None:
    """Read the queue and the decisions over and over; report what the queue reads were."""
    sizes, path = set(), Path(store)
    while not stop.is_set() or len(sizes) < 2:
        frame = decisions.load_queue(path)
        sizes.add((len(frame), len({eid.split("-")[0] for eid in frame["example_id"]})))
        decisions.load_all(path)
    seen.put(sorted(sizes))


@pytest.mark.integration  # ten forked processes on one store
def test_concurrent_writers_and_publisher_lose_nothing(tmp_path):
    store = str(tmp_path / "d.sqlite")
    decisions.connect(Path(store)).close()
    ctx = multiprocessing.get_context("fork")
    stop, seen = ctx.Event(), ctx.Queue()
    decisions.publish_queue(Path(store), _queue(50, tag="first-"))
    publisher = ctx.Process(target=_publisher, args=(store, stop))
    reader = ctx.Process(target=_reader, args=(store, stop, seen))
    writers = [ctx.Process(target=_writer, args=(store, w)) for w in range(N_WRITERS)]
    for p in [publisher, reader, *writers]:
        p.start()
    for p in writers:
        p.join(120)
        assert p.exitcode == 0
    stop.set()
    sizes = seen.get(timeout=120)
    for p in (publisher, reader):
        p.join(60)
        assert p.exitcode == 0
    # every read saw exactly one whole publication: 50 or 70 items of a single version
    assert set(sizes) == {(50, 1), (70, 1)}
    frame = decisions.load_all(Path(store))
    assert len(frame) == N_WRITERS * N_EACH
    assert frame["example_id"].is_unique
    expected = {f"w{w}-{i}" for w in range(N_WRITERS) for i in range(N_EACH)}
    assert set(frame["example_id"]) == expected


def test_cli_users_and_queue_export(tmp_path, monkeypatch, capsys, quick_password_hash):
    import io

    from curation_assets import cli

    monkeypatch.setenv("CURATION_DATA_DIR", str(tmp_path))
    store = tmp_path / "decisions.sqlite"
    monkeypatch.setattr("sys.stdin", io.StringIO("a long password\n"))
    assert cli.main(["users", "add", "dr_chen", "--role", "expert", "--password-stdin"]) == 0
    assert decisions.verify_password(store, "dr_chen", "a long password")["role"] == "expert"
    monkeypatch.setattr("sys.stdin", io.StringIO("another password\n"))
    assert cli.main(["users", "add", "dr_chen", "--role", "admin", "--password-stdin"]) == 2
    assert cli.main(["users", "list"]) == 0
    assert "dr_chen\texpert" in capsys.readouterr().out

    decisions.publish_queue(store, _queue(3))
    out = tmp_path / "queue.json"
    assert cli.main(["decisions", "export-queue", str(out), "--format", "label-studio"]) == 0
    assert len(json.loads(out.read_text())) == 3
    assert '<Choice value="card_arrival"/>' in (tmp_path / "queue.label_config.xml").read_text()
    tasks = json.loads(out.read_text())
    tasks[0]["annotations"] = [
        {
            "completed_by": {"email": "x@y.z"},
            "created_at": "2026-11-05T10:00:00Z",
            "result": [{"from_name": "label", "value": {"choices": ["billing"]}}],
        }
    ]
    out.write_text(json.dumps(tasks))
    assert cli.main(["decisions", "import", str(out), "--role", "expert"]) == 0
    assert decisions.load_all(store)[["example_id", "role", "decision"]].values.tolist() == [
        ["a0", "expert", "accept"]
    ]
