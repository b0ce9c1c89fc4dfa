"""One line per pipeline step on the terminal, everything else in the log file."""

import itertools
import re
import subprocess
import sys
from pathlib import Path

from apparel.runlog import ANSI, StepReporter, pipeline_log

STEPS = ["record-run", "train-specialist", "ingest", "distill", "build-index"]
FIRST_RUN = """\
16:15:55.594 - INFO - Running pipeline: \x1b[95m'apparel-training'\x1b[0m
16:15:55.605 - INFO - Executing task \x1b[96m'ingest'\x1b[0m
    {"config_json": "{\\"data\\": ...}"}
16:15:58.620 - INFO - Task \x1b[96m'ingest'\x1b[0m finished with status \x1b[92mSUCCESS\x1b[0m
16:15:58.624 - INFO - Executing task \x1b[96m'train-specialist'\x1b[0m
16:15:58.629 - INFO - Executing task \x1b[96m'train-specialist'\x1b[0m
    \x1b[36m(RayTrainWorker pid=10490)\x1b[0m [specialist-bags-52] epoch 1/3 loss=0.3273
    \x1b[36m(RayTrainWorker pid=10490)\x1b[0m [specialist-bags-52] epoch 2/3 loss=0.2273
    \x1b[36m(RayTrainWorker pid=10490)\x1b[0m [specialist-bags-52] epoch 3/3 loss=0.1273 val_recall@1=0.5000
16:16:58.620 - INFO - Task \x1b[96m'train-specialist'\x1b[0m finished with status \x1b[92mSUCCESS\x1b[0m
16:16:58.620 - INFO - Task \x1b[96m'train-specialist'\x1b[0m finished with status \x1b[92mSUCCESS\x1b[0m
16:16:58.624 - INFO - Executing task \x1b[96m'train-specialist'\x1b[0m
16:17:58.620 - INFO - Task \x1b[96m'train-specialist'\x1b[0m finished with status \x1b[92mSUCCESS\x1b[0m
Task distill cache hit (key=0123456789ab); skipping execution.
16:18:00.000 - INFO - Executing task \x1b[96m'record-run'\x1b[0m
16:18:01.000 - INFO - Task \x1b[96m'record-run'\x1b[0m finished with status \x1b[92mSUCCESS\x1b[0m
"""


def report(text: str, steps: list[str] = STEPS) -> list[str]:
    shown: list[str] = []
    ticks = itertools.count(0, 10.0)  # ten seconds between log lines
    reporter = StepReporter(steps, shown.append, progress_every_s=30.0, clock=lambda: next(ticks))
    for line in text.splitlines():
        reporter.feed(ANSI.sub("", line))  # what the log stream hands over
    reporter.close()
    return shown


def test_one_line_per_step_with_k_of_n_time_and_cache() -> None:
    shown = report(FIRST_RUN)
    steps = [line for line in shown if line.startswith("[")]
    assert [line.split()[:2] for line in steps] == [["[1/5]", "ingest"], ["[2/5]", "train-specialist"],
                                                    ["[3/5]", "distill"], ["[4/5]", "record-run"],
                                                    ["[5/5]", "build-index"]]
    assert steps[0].endswith("10.0 s") and "×3" in steps[1] and steps[2].endswith("cached")
    assert steps[4].endswith("skipped")  # never started: a false condition or an upstream cache hit
    assert not any("config_json" in line or "\x1b[" in line for line in shown)


def test_training_progress_is_concise() -> None:
    progress = [line.strip() for line in report(FIRST_RUN) if not line.startswith("[")]
    # the first epoch (nothing shown yet), not the second (within 30 s of it), always the last
    assert progress == ["[specialist-bags-52] epoch 1/3 loss=0.3273",
                        "[specialist-bags-52] epoch 3/3 loss=0.1273 val_recall@1=0.5000"]


def test_progress_between_last_epochs_is_capped_per_step() -> None:
    epochs = "".join(f"[unified-1] epoch {k}/50 loss=0.1\n" for k in range(1, 51))
    progress = [line.strip() for line in report(f"Executing task 'distill'\n{epochs}") if not line.startswith("[")]
    assert progress == ["[unified-1] epoch 1/50 loss=0.1", "[unified-1] epoch 4/50 loss=0.1",
                        "[unified-1] epoch 7/50 loss=0.1", "[unified-1] epoch 50/50 loss=0.1"]


def test_a_failed_step_is_shown_at_once() -> None:
    shown = report("Executing task 'ingest'\nTask 'ingest' finished with status FAILURE\n", ["ingest"])
    assert shown == ["[1/1] ingest                   FAILED after 10.0 s"]


def test_everything_written_goes_to_the_file_without_colour(tmp_path: Path, capfd) -> None:
    log = tmp_path / "logs" / "run.log"
    with pipeline_log(log, ["ingest"]) as echo:
        echo("header for the terminal")
        print("\x1b[92mExecuting task 'ingest'\x1b[0m from python")
        subprocess.run([sys.executable, "-c", "import os; os.write(1, b'fd one\\n'); os.write(2, b'fd two\\n')"],
                       check=True)
        print("Task 'ingest' finished with status SUCCESS", file=sys.stderr)
    terminal = capfd.readouterr()
    assert terminal.out.splitlines()[0] == "header for the terminal"
    assert terminal.out.splitlines()[1].startswith("[1/1] ingest")
    assert "fd one" not in terminal.out + terminal.err
    text = log.read_text()
    assert "fd one" in text and "fd two" in text and "Executing task 'ingest' from python" in text
    assert "\x1b[" not in text
    print("after")  # streams are back
    assert capfd.readouterr().out == "after\n"


def test_a_failing_pipeline_shows_the_step_and_points_at_the_log(tmp_path: Path) -> None:
    """A real local run whose ingest fails: the failed step's line, then one error line naming the log."""
    import os

    env = {k: v for k, v in os.environ.items() if not k.startswith(("APPAREL", "RAY_ADDRESS"))}
    result = subprocess.run([sys.executable, "-c", "from apparel.cli import main; main()", "pipeline", "run",
                             "--source", str(tmp_path / "absent")], cwd=tmp_path, capture_output=True, text=True,
                            timeout=600, stdin=subprocess.DEVNULL, env={**env, "RAY_USAGE_STATS_ENABLED": "0"})
    assert result.returncode != 0
    shown = result.stdout.splitlines()
    assert shown[0].startswith("pipeline training: full log in runs/logs/training-") and len(shown) <= 3, shown
    assert any(re.match(r"\[1/\d+\] ingest", line) and "FAILED" in line for line in shown), shown
    error = result.stderr.strip().splitlines()
    assert len(error) == 1 and error[0].startswith("error: ") and "(full log: runs/logs/training-" in error[0]
    log = tmp_path / shown[0].split(" full log in ", 1)[1]
    assert "catalog not found" in log.read_text()
