"""The live progress display of ``curation run`` and ``curation demo`` on a terminal: the
stage lines scroll above a bar counting the finished steps (and, while the fine-tune
trains, a bar of its training steps), with the time since the run started; the bars are
cleared when the run ends. Anywhere else (a pipe, a log file, the tests) the lines are
written as they are and nothing else is."""

import contextlib
import re
import sys
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from rich.console import Console
    from rich.progress import Progress, TaskID

Emit = Callable[[str], None]

#: A finished step's line (``runs.progress``): done, failed, not run or skipped.
FINISHED = re.compile(r"^[✓✗-] ")
#: A training progress line: ``  STEP: step N/M ...``.
TRAINING = re.compile(r"^\s+(?P<where>\S+): step (?P<done>\d+)/(?P<total>\d+)\b")


class RunProgress:
    """The bars of one run, moved on by the run's progress lines."""

    def __init__(self, progress: "Progress") -> None:
        self.progress = progress
        self.steps: TaskID = progress.add_task("steps finished", total=None)
        self.training: TaskID | None = None

    def line(self, text: str) -> None:
        """Print ``text`` above the bars (as plain text), then move the bars on."""
        self.progress.console.print(text, markup=False, highlight=False, soft_wrap=True)
        if FINISHED.match(text):
            self.progress.advance(self.steps)
        found = TRAINING.match(text)
        if found:
            self.trained(found["where"], int(found["done"]), int(found["total"]))

    def trained(self, where: str, done: int, total: int) -> None:
        """The fine-tune ``where`` is at training step ``done`` of ``total``."""
        if self.training is None:
            self.training = self.progress.add_task(f"training {where}", total=total)
        self.progress.update(self.training, completed=done, total=total)


def live_bars(console: "Console | None" = None) -> "Progress":
    """The bars' layout: spinner, what, bar, done/total (``?`` while unknown), time."""
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        SpinnerColumn,
        TextColumn,
        TimeElapsedColumn,
    )

    return Progress(
        SpinnerColumn(),
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=console,
        transient=True,
    )


@contextlib.contextmanager
def run_progress(
    emit: Emit, enabled: bool = True, console: "Console | None" = None
) -> Iterator[Emit]:
    """What to send a run's progress lines to: ``emit`` itself, unless ``enabled`` and
    stdout and stderr are both terminals (or ``console`` is given); then a function that
    prints each line above live bars, which end with the block."""
    if not enabled or (console is None and not (sys.stdout.isatty() and sys.stderr.isatty())):
        yield emit
        return
    with live_bars(console) as progress:
        yield RunProgress(progress).line
