"""The quality ladder through Dagster Pipes: its rungs are trained by the fine-tune's own
script (``training/pipes_train.py``, extras ``job``: ``run_ladder_session`` of this module),
launched by the same training client as ``fine_tuned_model`` (a subprocess here, a GPU pod with
``PipesK8sClient``).

Files, in the ladder's folder (inside the data folder, so that a pod sees them at the same
path): ``validation.parquet`` and ``rungs/<name>.parquet`` (example_id, prompt, response);
for the head trainer also ``texts.parquet`` (every prompt to embed, sorted) and
``embeddings.npy``, written by the first session that embeds them and loaded by every later
one (no transformers import, no model load).

A session trains the rungs its extras list, in order, and reports Pipes custom messages:
``{"ladder": "embedded", ...}`` (head trainer) and ``{"ladder": "trained", "rung": ...,
scores}`` per rung. A failure closes the session with the exception,
``PermanentTrainingError`` for one a retry cannot fix; the asset reads that class from
Pipes' own report (``ReportedError``), never from message text.

Sessions (``RUNGS_PER_SESSION``): the head trainer's rungs take well under a second each
while a launch costs seconds (python, torch), so they share one session. The session is
all-or-nothing (a failed Pipes session gives back no messages), so when it fails the
ladder runs the embedding alone, then every rung in a session of its own: the rung that
fails is then the one whose session reported the exception. Fine-tuned rungs take minutes
and get a session (a pod) each from the start. A rung that fails permanently, or
``ATTEMPTS`` times for another reason, becomes a failed row with the reported error; the
other rungs keep their scores.

Asset side: ``prepare_ladder`` and ``LadderPlan.drive`` (the Dagster layer passes the
launcher). Script side: ``run_ladder_session``. Plain Python, no Dagster.
"""

import os
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from curation_assets.curation.evaluation.ladder_training import (
    TRAINERS,
    HeadFeatures,
    base_result,
    embed_texts,
    head_texts,
    plan_ladder,
    score_rung,
    skipped_result,
)
from curation_assets.curation.training.launch import TrainingLaunch, training_launch
from curation_assets.curation.training.params import TrainParams
from curation_assets.curation.training.pipes_train import (
    COLUMNS,
    PermanentTrainingError,
    read_rows,
)

#: The ``job`` extra of a ladder session: what ``pipes_train`` runs in it.
LADDER_JOB = f"{__name__}:run_ladder_session"
VALIDATION_NAME = "validation.parquet"
TEXTS_NAME = "texts.parquet"
EMBEDDINGS_NAME = "embeddings.npy"
#: Rungs per Pipes session by trainer (0: all in one session, split only after a failure).
RUNGS_PER_SESSION = {"head": 0, "finetune": 1}
#: Launches of a session of its own (one rung, or the embedding) unless a failure is
#: permanent.
ATTEMPTS = 2
#: The keys of a rung's scores in its ``trained`` message.
SCORES = ("validation_accuracy", "validation_macro_f1", "seconds")


@dataclass(frozen=True)
class ReportedError:
    """The exception a Pipes session closed with, as Pipes reported it."""

    cls_name: str
    message: str

    @property
    def permanent(self) -> bool:
        return self.cls_name == PermanentTrainingError.__name__

    def __str__(self) -> str:
        return f"{self.cls_name}: {self.message.strip()}"


@dataclass
class SessionOutcome:
    """What one Pipes session gave back: its custom messages when it succeeded; else the
    exception Pipes reported (None when the process ended without a report: killed, a
    lost pod, a crash before the session opened) and the launcher's own error text."""

    messages: Sequence[Any] = ()
    failed: bool = False
    error: ReportedError | None = None
    detail: str = ""

    @property
    def permanent(self) -> bool:
        return bool(self.failed and self.error and self.error.permanent)

    @property
    def reason(self) -> str:
        return str(self.error) if self.error else f"no Pipes report ({self.detail})"

    def of_kind(self, kind: str) -> list[Mapping[str, Any]]:
        return [m for m in self.messages if isinstance(m, Mapping) and m.get("ladder") == kind]


class LadderError(Exception):
    """The ladder cannot produce results (its embedding failed, or every rung did)."""

    def __init__(self, message: str, permanent: bool) -> None:
        super().__init__(message)
        self.permanent = permanent


RunSession = Callable[[TrainingLaunch], SessionOutcome]


def rung_path(folder: Path, name: str) -> Path:
    """A rung's rows (Parquet) in the ladder's folder."""
    return folder / "rungs" / f"{name}.parquet"


@dataclass
class LadderPlan:
    """A ladder's files and results (one per rung, in order); the rungs still to train
    have status ``pending``, the others ``skipped``, ``trained`` or ``failed``."""

    folder: Path
    base_model: str
    trainer: str
    steps: int
    params: TrainParams
    results: list[dict[str, Any]]
    python: str = sys.executable
    rungs_per_session: int = 0
    sessions: int = 0  # Pipes sessions launched
    embed_seconds: float | None = None  # set once a session embedded (or loaded) the texts
    failures: dict[str, SessionOutcome] = field(default_factory=dict)

    def with_status(self, status: str) -> list[dict[str, Any]]:
        return [r for r in self.results if r["status"] == status]

    def launch(self, rungs: Sequence[str]) -> TrainingLaunch:
        """The fine-tune's launch of ``pipes_train`` for ``rungs`` (none: only embed)."""
        base = training_launch(
            "classification",
            "",
            self.folder / VALIDATION_NAME,
            self.folder,  # where a failed session leaves its error file
            self.base_model,
            self.params,
            self.python,
        )
        extras = {k: v for k, v in base.extras.items() if k != "train_path"}
        extras.update(
            job=LADDER_JOB,
            trainer=self.trainer,
            steps=self.steps,
            rungs=[{"name": n, "train_path": str(rung_path(self.folder, n))} for n in rungs],
        )
        if self.trainer == "head":
            extras["texts_path"] = str(self.folder / TEXTS_NAME)
            extras["embeddings_path"] = str(self.folder / EMBEDDINGS_NAME)
        return replace(base, extras=extras)

    def _launch(self, run_session: RunSession, rungs: Sequence[str]) -> SessionOutcome:
        self.sessions += 1
        return run_session(self.launch(rungs))

    def _alone(
        self, run_session: RunSession, rungs: Sequence[str], log: Callable[[str], None]
    ) -> SessionOutcome:
        """One rung (or the embedding) in sessions of its own: until it succeeds, fails
        permanently, or failed ``ATTEMPTS`` times."""
        for attempt in range(1, ATTEMPTS + 1):
            outcome = self._launch(run_session, rungs)
            if not outcome.failed or outcome.permanent:
                break
            if attempt < ATTEMPTS:
                log(f"ladder {rungs[0] if rungs else 'embedding'}: {outcome.reason}; again")
        return outcome

    def _absorb(self, outcome: SessionOutcome, rungs: Sequence[str]) -> None:
        """The scores of a successful session; a session that succeeded without reporting
        what it was asked for is the script's bug (permanent)."""
        if self.trainer == "head":
            embedded = outcome.of_kind("embedded")
            if not embedded:
                raise LadderError("a ladder session reported no embedding", permanent=True)
            if not embedded[-1]["cached"] or self.embed_seconds is None:
                self.embed_seconds = float(embedded[-1]["seconds"])
        trained = {m["rung"]: m for m in outcome.of_kind("trained")}
        for result in self.results:
            if result["name"] not in rungs:
                continue
            if result["name"] not in trained:
                message = f"a ladder session reported no scores for rung {result['name']}"
                raise LadderError(message, permanent=True)
            result.update({k: trained[result["name"]][k] for k in SCORES}, status="trained")
            if self.embed_seconds is not None:
                result["embed_seconds"] = self.embed_seconds

    def _fail(self, name: str, outcome: SessionOutcome, log: Callable[[str], None]) -> None:
        self.failures[name] = outcome
        result = next(r for r in self.results if r["name"] == name)
        result.update(validation_accuracy=None, validation_macro_f1=None, seconds=0.0)
        result.update(status="failed", error=outcome.reason)
        result["note"] = "; ".join(x for x in (result.get("note"), "failed") if x)
        log(f"ladder rung {name} failed: {outcome.reason}")

    def drive(self, run_session: RunSession, log: Callable[[str], None] = print) -> None:
        """Train every pending rung through ``run_session`` (see the module's docstring).
        Raises ``LadderError`` when the embedding fails or every rung did (permanent
        when every failure was)."""
        pending = [r["name"] for r in self.with_status("pending")]
        size = self.rungs_per_session or len(pending) or 1
        for start in range(0, len(pending), size):
            batch = pending[start : start + size]
            unembedded = self.trainer == "head" and self.embed_seconds is None
            if len(batch) > 1 or unembedded:  # one session for all (and the embedding)
                outcome = self._launch(run_session, batch)
                if not outcome.failed:
                    self._absorb(outcome, batch)
                    continue
                log(
                    f"the ladder's session for {len(batch)} rung(s) failed ({outcome.reason}): "
                    "training each rung in a session of its own"
                )
            if self.trainer == "head" and self.embed_seconds is None:
                outcome = self._alone(run_session, [], log)
                if outcome.failed:
                    message = f"embedding the ladder's texts failed: {outcome.reason}"
                    raise LadderError(message, outcome.permanent)
                self._absorb(outcome, [])
            for name in batch:
                outcome = self._alone(run_session, [name], log)
                if outcome.failed:
                    self._fail(name, outcome, log)
                else:
                    self._absorb(outcome, [name])
        if self.failures and not self.with_status("trained"):
            raise LadderError(
                "every ladder rung failed: "
                + "; ".join(f"{name}: {o.reason}" for name, o in self.failures.items()),
                all(o.permanent for o in self.failures.values()),
            )


def _write_rows(path: Path, rows: Sequence[Mapping[str, Any]]) -> None:
    import pyarrow as pa
    import pyarrow.parquet as pq

    schema = pa.schema([(c, pa.string()) for c in COLUMNS])
    table = pa.Table.from_pylist([{c: str(row[c]) for c in COLUMNS} for row in rows], schema)
    path.parent.mkdir(parents=True, exist_ok=True)
    pq.write_table(table, path)


def prepare_ladder(
    rungs: Sequence[Mapping[str, Any]],
    validation: Sequence[Mapping[str, Any]],
    base_model: str,
    folder: Path,
    trainer: str = "head",
    steps: int = 0,
    params: TrainParams | None = None,
) -> LadderPlan:
    """Write the ladder's files under ``folder``; a plan whose untrainable rungs are done
    (status ``skipped``, with ``run_ladder``'s note) and the others ``pending``."""
    params = params or TrainParams()
    usable, steps = plan_ladder(rungs, validation, trainer, steps, params)
    folder.mkdir(parents=True, exist_ok=True)
    _write_rows(folder / VALIDATION_NAME, validation)
    results = []
    for rung in rungs:
        result = base_result(rung, steps, params, trainer)
        if rung in usable:
            _write_rows(rung_path(folder, rung["name"]), rung["rows"])
            result["status"] = "pending"
        else:
            skipped_result(result, rung)
        results.append({**result, "error": ""})
    if trainer == "head":
        import pyarrow as pa
        import pyarrow.parquet as pq

        texts = pa.table({"text": pa.array(head_texts(usable, validation), pa.string())})
        pq.write_table(texts, folder / TEXTS_NAME)
    plan = LadderPlan(folder, base_model, trainer, steps, params, results)
    plan.rungs_per_session = RUNGS_PER_SESSION[trainer]
    return plan


# --- the script's side (inside the Pipes session) ------------------------------------------


def _extra(extras: Mapping[str, Any], key: str) -> Any:
    value = extras.get(key)
    if value is None or value == "":
        raise ValueError(f"Pipes extras lack {key!r} for the ladder; got {sorted(extras)}")
    return value


def head_features(
    texts_path: str | Path,
    embeddings_path: str | Path,
    base_model: str,
    params: TrainParams,
    log: Callable[[str], None],
) -> tuple[HeadFeatures, float | None]:
    """The frozen encoder's embeddings of ``texts_path``'s texts: loaded from
    ``embeddings_path`` when it holds one row per text, else computed and saved there
    (atomically). Returns them with the seconds embedding took (None when loaded)."""
    import numpy as np
    import pyarrow.parquet as pq
    import torch

    from curation_assets.curation.base_models import resolve_base_model

    if not Path(texts_path).is_file():
        raise FileNotFoundError(f"no such Parquet file: {texts_path}")
    texts = pq.read_table(texts_path, columns=["text"]).column("text").to_pylist()
    path = Path(embeddings_path)
    if path.is_file():
        matrix = np.load(path)
        if matrix.shape[0] == len(texts):
            return HeadFeatures(texts, torch.from_numpy(matrix)), None
        log(f"{path} holds {matrix.shape[0]} rows for {len(texts)} texts: embedding again")
    started = time.perf_counter()
    max_length = params.max_length_for("classification")
    embedded = embed_texts(resolve_base_model(base_model), texts, max_length)
    seconds = round(time.perf_counter() - started, 2)
    partial = path.with_name(f".{path.stem}-{os.getpid()}.npy")
    np.save(partial, embedded.numpy())
    os.replace(partial, path)
    log(f"embedded {len(texts)} texts in {seconds:.1f} s into {path}")
    return HeadFeatures(texts, embedded), seconds


def run_ladder_session(
    extras: Mapping[str, Any],
    log: Callable[[str], None],
    report: Callable[[dict[str, Any]], None],
) -> None:
    """The ladder's ``job`` in ``pipes_train``: embed the texts (head trainer), then train
    and score each rung of ``extras["rungs"]``, reporting each outcome through ``report``."""
    trainer = _extra(extras, "trainer")
    if trainer not in TRAINERS:
        raise ValueError(f"unknown ladder trainer {trainer!r}; known: {TRAINERS}")
    steps = int(_extra(extras, "steps"))
    if steps < 1:
        raise ValueError(f"the ladder's steps must be >= 1, got {steps}")
    params = TrainParams.from_dict(extras.get("params") or {})
    base_model = extras.get("base_model") or "auto"
    rungs = extras.get("rungs") or []
    features = None
    if trainer == "head":
        texts, embeddings = _extra(extras, "texts_path"), _extra(extras, "embeddings_path")
        features, seconds = head_features(texts, embeddings, base_model, params, log)
        report(
            {
                "ladder": "embedded",
                "texts": len(features.index),
                "seconds": seconds or 0.0,
                "cached": seconds is None,
            }
        )
    if not rungs:
        return
    validation = read_rows(_extra(extras, "validation_path"))
    if not validation:
        raise ValueError("the ladder needs held-out validation rows")
    val_features = features.of(validation) if features else None
    for rung in rungs:
        name, rows = _extra(rung, "name"), read_rows(_extra(rung, "train_path"))
        log(f"ladder rung {name}: {trainer}, {len(rows)} rows, {steps} steps")
        scores = score_rung(
            rows, validation, base_model, trainer, steps, params, features, val_features
        )
        report({"ladder": "trained", "rung": name, **scores})
