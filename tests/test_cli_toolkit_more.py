"""Issue 21, item 30: gradcheck's progress and its note on clipped --samples, the versions
`xpnet info` lists, and the plateau schedule's floor on the command line."""

from __future__ import annotations

import numpy as np
from helpers import run

import xpnet


def test_gradcheck_shows_progress_when_asked(capsys):
    net = xpnet.MLP([2, 3, 1], dtype="float64")
    X = xpnet.asarray(np.eye(2), like=net)
    T = xpnet.asarray([[0.0], [1.0]], like=net)
    quiet = xpnet.gradcheck(net, xpnet.SSELoss(), X, T)
    assert capsys.readouterr().err == ""
    shown = xpnet.gradcheck(net, xpnet.SSELoss(), X, T, progress=True)
    err = capsys.readouterr().err
    assert "17/17" in err and "entry" in err  # 6 + 3 + 3 + 1 parameters and 4 inputs
    assert "input" in err and shown == quiet


def test_gradcheck_says_when_samples_are_clipped(capsys):
    status, out, err = run(capsys, "gradcheck", "--data", "xor", "--samples", "100")
    assert status == 0 and "4 samples):" in out
    assert "--samples 100 is more than the 4 samples of xor; checking all 4" in err
    assert run(capsys, "gradcheck", "--data", "xor")[2] == ""  # the default: no note


def test_info_lists_the_optional_libraries(capsys):
    out = run(capsys, "info")[1]
    packages = next(line for line in out.splitlines() if line.startswith("packages: "))
    for name in ("jax", "scikit-learn", "mpi4py"):
        assert f" {name} " in packages


def test_the_plateau_floor_is_an_option(capsys, tmp_path):
    argv = ["train", "--lr-schedule", "plateau", "--epochs", "30", "--quiet"]
    status, out, _ = run(capsys, *argv, "--min-lr-factor", "0.5", "--out", tmp_path / "r")
    assert status == 0 and "plateau schedule (floor 0.5 x lr)" in out
    rates = np.loadtxt(tmp_path / "r" / "history.csv", delimiter=",", skiprows=1, usecols=5)
    assert rates.min() == 0.005 and rates.max() == 0.01  # lowered once, then held at the floor
    opt = xpnet.load_checkpoint(tmp_path / "r", backend="numpy").optimizer
    assert opt.schedule.min_factor == 0.5
    status, _, err = run(capsys, "train", "--min-lr-factor", "0.1", "--out", tmp_path / "s")
    assert status == 2 and "--min-lr-factor is the floor of --lr-schedule plateau or cosine" in err
