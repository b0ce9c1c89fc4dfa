"""What a pipeline run shows: one line per step (step k of n, time, cached or not) and concise training
progress on the terminal; the full kfp / Ray / framework log, colour codes stripped, in a file.

kfp's local runner prints its own log and every step's output to ``sys.stdout``; Ray and C extensions
write to file descriptors 1 and 2. :func:`pipeline_log` points all of them at the log file and reads
the kfp lines that matter (a step starting, finishing, hitting the cache, being skipped) as they go by.
"""

from __future__ import annotations

import io
import logging
import os
import re
import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

ANSI = re.compile(r"\x1b\[[0-9;]*[A-Za-z]")
STARTED = re.compile(r"Executing task '(?P<task>[^']+)'")
FINISHED = re.compile(r"Task '(?P<task>[^']+)' finished with status (?P<status>\w+)")
CACHED = re.compile(r"Task (?P<task>[\w-]+) cache hit")
# Training progress as the library prints it: "[specialist-bags-…] epoch 3/5 …", "[attributes] …", "[finetune] …".
PROGRESS = re.compile(r"(?P<line>\[(?P<run>[^\]\s]+)\] (?:epoch (?P<k>\d+)/(?P<n>\d+)|step (?P<s>\d+)/(?P<t>\d+)|"
                      r"resuming|end-to-end|\+).*)")


@dataclass
class Step:
    started: list[float] = field(default_factory=list)
    finished: int = 0
    cached: int = 0
    failed: int = 0
    seconds: float = 0.0
    shown: bool = False


class StepReporter:
    """Turns kfp's local-runner log lines into one line per step. A step that runs several times (a
    ParallelFor) is shown once, when every instance is done and the pipeline has moved on."""

    def __init__(self, steps: list[str], echo: Callable[[str], None], progress_every_s: float = 30.0,
                 progress_per_step: int = 3, clock: Callable[[], float] = time.monotonic) -> None:
        self.order, self.echo, self.clock = list(steps), echo, clock
        self.progress_every_s, self.progress_per_step = progress_every_s, progress_per_step
        self.in_between = 0  # progress lines shown since the last step line, besides last epochs
        self.steps: dict[str, Step] = {}
        self.shown = 0
        self.last_progress = -float("inf")

    def feed(self, line: str) -> None:
        if match := STARTED.search(line):
            self._flush(except_for=match["task"])
            self._step(match["task"]).started.append(self.clock())
        elif match := FINISHED.search(line):
            step = self._step(match["task"])
            step.seconds = self.clock() - step.started[0]  # a ParallelFor's wall time, first start to last end
            step.finished += 1
            step.failed += match["status"] != "SUCCESS"
            if step.failed:
                self._show(match["task"], step)
        elif match := CACHED.search(line):
            self._flush(except_for=match["task"])
            self._step(match["task"]).cached += 1
        elif match := PROGRESS.search(line):
            self._progress(match)

    def close(self) -> None:
        """The end of the run: every step not shown yet, and the ones that never ran (a false condition)."""
        self._flush()
        for name in self.order:
            if name not in self.steps:
                self.shown += 1
                self.echo(f"[{self.shown}/{len(self.order)}] {name:<24} skipped")

    def _step(self, name: str) -> Step:
        if name not in self.order:
            self.order.append(name)
        return self.steps.setdefault(name, Step())

    def _flush(self, except_for: str | None = None) -> None:
        for name, step in self.steps.items():
            done = step.finished >= len(step.started)
            if name != except_for and not step.shown and done:
                self._show(name, step)

    def _show(self, name: str, step: Step) -> None:
        step.shown = True
        self.shown += 1
        self.in_between = 0
        runs = step.finished + step.cached
        times = f" ×{runs}" if runs > 1 else ""
        if step.failed:
            state = f"FAILED after {step.seconds:.1f} s"
        elif step.finished == 0:
            state = "cached"
        else:
            state = f"{step.seconds:.1f} s" + (f" ({step.cached} cached)" if step.cached else "")
        self.echo(f"[{self.shown}/{max(len(self.order), self.shown)}] {name + times:<24} {state}")

    def _progress(self, match: re.Match) -> None:
        """Every resume and last epoch; in between at most one line per ``progress_every_s`` and
        ``progress_per_step`` lines per step, so a slow machine does not get a longer screen."""
        last = (match["k"] and match["k"] == match["n"]) or (match["s"] and match["s"] == match["t"])
        always = last or "resuming" in match["line"] or "end-to-end" in match["line"]
        now = self.clock()
        if not always and (now - self.last_progress < self.progress_every_s or
                           self.in_between >= self.progress_per_step):
            return
        self.last_progress = now
        self.in_between += not always
        self.echo("      " + match["line"].strip())


class _LogStream(io.TextIOBase):
    """A text stream that appends to the log file (colour codes removed) and hands each line to ``on_line``."""

    def __init__(self, file: io.TextIOBase, on_line: Callable[[str], None]) -> None:
        self.file, self.on_line = file, on_line
        self.pending = ""
        self.lock = threading.RLock()

    def writable(self) -> bool:
        return True

    def write(self, text: str) -> int:
        with self.lock:
            clean = ANSI.sub("", text)
            self.file.write(clean)
            *lines, self.pending = (self.pending + clean).split("\n")
            for line in lines:
                self.on_line(line)
        return len(text)

    def flush(self) -> None:
        self.file.flush()

    def isatty(self) -> bool:
        return False


def shown_path(path: Path) -> str:
    """A path as the terminal shows it: relative to the working folder when it lies below it."""
    path = path.absolute()
    return str(path.relative_to(Path.cwd())) if path.is_relative_to(Path.cwd()) else str(path)


@contextmanager
def pipeline_log(path: Path, steps: list[str]) -> Iterator[Callable[[str], None]]:
    """Sends everything written to stdout/stderr (Python and file descriptors) to ``path`` and shows one
    line per step on the terminal; yields ``echo`` for the caller's own terminal lines."""
    path.parent.mkdir(parents=True, exist_ok=True)
    terminal = os.fdopen(os.dup(sys.stdout.fileno()), "w", buffering=1)
    saved_fds = os.dup(1), os.dup(2)
    saved_streams = sys.stdout, sys.stderr

    def echo(line: str) -> None:
        terminal.write(line + "\n")

    with path.open("a", buffering=1) as file:
        reporter = StepReporter(steps, echo)
        stream = _LogStream(file, reporter.feed)
        sys.stdout.flush()
        sys.stderr.flush()
        os.dup2(file.fileno(), 1)
        os.dup2(file.fileno(), 2)
        sys.stdout = sys.stderr = stream
        # kfp logs cache hits at INFO outside its own logging context: without a handler they vanish.
        handler, level = logging.StreamHandler(stream), logging.getLogger().level
        logging.getLogger().addHandler(handler)
        logging.getLogger().setLevel(logging.INFO)
        try:
            yield echo
            reporter.close()
        finally:
            logging.getLogger().removeHandler(handler)
            logging.getLogger().setLevel(level)
            stream.flush()
            sys.stdout, sys.stderr = saved_streams
            os.dup2(saved_fds[0], 1)
            os.dup2(saved_fds[1], 2)
            for fd in saved_fds:
                os.close(fd)
            terminal.close()
