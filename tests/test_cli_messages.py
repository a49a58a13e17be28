"""The CLI's messages say what is true and what to do (issue 21, items 18-26): each case a
new user met, kept fixed."""

from __future__ import annotations

import numpy as np
from helpers import run


def one_line_error(capsys, *argv, status=2):
    """Run argv; assert it failed with `status`, one line on stderr and no traceback."""
    code, out, err = run(capsys, *argv)
    assert code == status, (code, out, err)
    assert len(err.splitlines()) == 1 and "Traceback" not in err, err
    return err


def test_values_beyond_float32_are_named_before_the_run_folder_is_made(capsys, tmp_path):
    """Item 18: 1e40 is finite; it was called "NaN or infinite" after training, in a folder
    holding only config.json."""
    rng = np.random.default_rng(0)
    X, y = rng.normal(size=(50, 3)), rng.integers(0, 2, 50)
    X[7, 2] = 1e40
    np.savez(tmp_path / "big.npz", X=X, y=y)
    err = one_line_error(capsys, "train", "--data", tmp_path / "big.npz", "--out", tmp_path / "r")
    assert "the data big has 1 finite value beyond float32's range" in err
    assert "1e+40 at row 7, column 2" in err and "--dtype float64" in err
    assert "NaN" not in err and not (tmp_path / "r").exists()
    argv = ["train", "--data", tmp_path / "big.npz", "--epochs", "1", "--quiet"]
    assert run(capsys, *argv, "--dtype", "float64", "--out", tmp_path / "r64")[0] == 0
