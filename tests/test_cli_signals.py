"""Issue 21's faults, on a real `xpnet train` process: SIGTERM saves and exits 143 as Ctrl-C
saves and exits 130; history.csv grows as epochs finish (a SIGKILLed run leaves its log); a
reader that leaves the pipe (stdout, or the log on stderr) does not fail the run; Ctrl-C while
the last files are written leaves them whole."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys

import numpy as np
import pytest
from helpers import run
from signals import TRAIN, epochs_logged, start, wait_for_epochs, weights

import xpnet.plots
from xpnet.cli import main

pytestmark = pytest.mark.skipif(os.name != "posix", reason="POSIX signals")


@pytest.fixture(scope="module")
def reference(tmp_path_factory):
    """An uninterrupted run of 12 epochs."""
    out = tmp_path_factory.mktemp("ref") / "run"
    assert main(["train", *TRAIN, "--epochs", "12", "--out", str(out)]) == 0
    return out


def test_sigterm_saves_says_how_to_resume_and_exits_143(reference, tmp_path):
    out = tmp_path / "run"
    with start("--epochs", 400, "--out", out) as process:
        wait_for_epochs(process, out, 3)
        process.send_signal(signal.SIGTERM)
        _, stderr = process.communicate(timeout=60)
    assert process.returncode == 143, stderr
    assert "interrupted (SIGTERM) in epoch" in stderr and "continue with: xpnet train" in stderr
    assert "Traceback" not in stderr
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["interrupted"] is True and metrics["finished"] is False
    saved = xpnet.load_checkpoint(out).epoch
    assert saved == metrics["epochs"] == epochs_logged(out) >= 2  # (3 lines, maybe 1 unsaved)
    assert (out / "curves.png").is_file()
    assert main(["train", "--resume", str(out), "--epochs", "12", "--quiet"]) == 0
    want = weights(reference)
    for name, value in weights(out).items():
        np.testing.assert_array_equal(value, want[name], err_msg=name)


def test_history_grows_as_epochs_finish_and_survives_sigkill(reference, tmp_path):
    out = tmp_path / "run"
    with start("--epochs", 400, "--out", out) as process:  # default --save-every: 30 s
        wait_for_epochs(process, out, 5)
        process.kill()
        process.communicate(timeout=60)
    assert epochs_logged(out) >= 5  # the log is there, though nothing was saved yet
    assert not (out / "checkpoint.safetensors").exists()
    lines = (out / "history.csv").read_text().splitlines()
    assert lines[0].startswith("epoch,loss,") and lines[5].startswith("5,")


def test_a_short_run_writes_its_checkpoint_once_without_the_history_inside(
    capsys, tmp_path, monkeypatch
):
    """1,000 short epochs cost little more than their training: one checkpoint write (at the
    end, with the default --save-every), the history beside it in history.csv."""
    writes = []
    real = xpnet.cli.outputs.write_atomic

    def counting(target, data):
        writes.append(target.name)
        real(target, data)

    monkeypatch.setattr("xpnet.cli.outputs.write_atomic", counting)
    out = tmp_path / "run"
    argv = ["train", "--data", "xor", "--epochs", 1000, "--out", out, "--quiet"]
    status, stdout, _ = run(capsys, *argv)
    assert status == 0 and "s of training (" in stdout and "with evaluation and saving" in stdout
    assert writes.count("checkpoint.safetensors") == 1 and writes.count("history.csv") == 1
    assert xpnet.load_checkpoint(out).history == []
    assert epochs_logged(out) == 1000


def test_a_reader_that_leaves_mid_run_loses_the_log_not_the_run(tmp_path):
    """`xpnet train 2>&1 | head -2`: the per-epoch log (stderr) and the summary (stdout) go on
    into a closed pipe; the run goes on too, and ends as it would have (exit 0: no "Broken
    pipe" at exit either) with every file written."""
    out = tmp_path / "run"
    argv = ["train", *(a for a in TRAIN if a != "--quiet"), "--epochs", "30", "--out", out]
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    command = [sys.executable, "-m", "xpnet", *map(str, argv)]
    with subprocess.Popen(
        command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env
    ) as process:
        assert process.stdout.readline().startswith("digits:")
        assert process.stdout.readline().startswith("epoch 1/30: loss")
        process.stdout.close()  # 29 epochs to go, each logging a line
        process.wait(timeout=60)
    assert process.returncode == 0
    assert xpnet.load_checkpoint(out).epoch == epochs_logged(out) == 30
    assert json.loads((out / "metrics.json").read_text())["finished"] is True


@pytest.mark.parametrize("argv", [["info"], ["vanishing", "--depths", "1,2", "--batch-size", "8"]])
def test_other_commands_ignore_a_reader_that_left(tmp_path, argv):
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    read, write = os.pipe()
    os.close(read)  # the reader is gone before the first line
    done = subprocess.run(
        [sys.executable, "-m", "xpnet", *argv],
        stdout=write,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
        cwd=tmp_path,
        timeout=120,
    )
    os.close(write)
    assert done.returncode == 0 and "Broken pipe" not in done.stderr, done.stderr


def test_ctrl_c_while_the_curves_are_drawn_leaves_every_file_whole(capsys, tmp_path, monkeypatch):
    real = xpnet.plots.plot_curves

    def interrupted_plot(records, path):
        os.kill(os.getpid(), signal.SIGINT)  # Ctrl-C, as the last files are written
        real(records, path)

    monkeypatch.setattr("xpnet.plots.plot_curves", interrupted_plot)
    out = tmp_path / "run"
    status, _, err = run(capsys, "train", *TRAIN, "--epochs", 2, "--out", out)
    assert status == 130
    assert (
        err.strip()
        == f"xpnet train: interrupted after the run finished; every file in {out} is written"
    )
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["finished"] is True and metrics["interrupted"] is False
    assert (out / "curves.png").is_file()
