"""The CLI's messages say what is true and what to do (issue 21, items 18-26): each case a
new user met, kept fixed."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from helpers import run

from xpnet.cli import main


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


def test_an_unreadable_npz_is_called_unreadable_not_a_zip(capsys, tmp_path, monkeypatch):
    """Item 19: a permission error was reported as "not an .npz (zip) archive"."""
    import builtins

    locked = tmp_path / "locked.npz"
    np.savez(locked, X=np.ones((4, 2)), y=np.arange(4) % 2)
    real_open = builtins.open

    def no_permission(file, *args, **kwargs):  # what chmod 000 does to anyone but root
        if str(file) == str(locked):
            raise PermissionError(13, "Permission denied", str(file))
        return real_open(file, *args, **kwargs)

    monkeypatch.setattr(builtins, "open", no_permission)
    err = one_line_error(capsys, "train", "--data", locked, "--out", tmp_path / "r")
    assert f"Permission denied: {locked}" in err and "zip" not in err


def test_a_pickle_named_checkpoint_safetensors_is_called_a_pickle(capsys, tmp_path):
    """Item 19: the .safetensors name made a pickle a "codec" error."""
    import pickle

    run_dir = tmp_path / "run"
    run_dir.mkdir()
    (run_dir / "checkpoint.safetensors").write_bytes(pickle.dumps({"W1": [1.0]}))
    for command in (["evaluate", run_dir], ["info", run_dir / "checkpoint.safetensors"]):
        err = one_line_error(capsys, *command)
        assert "is not an xpnet checkpoint (it looks like a pickle" in err and "codec" not in err


def test_a_run_that_diverged_before_its_first_checkpoint_says_so(capsys, tmp_path):
    """Item 21: evaluate and predict said "no such file" of a diverged run's checkpoint."""
    argv = ["train", "--data", "xor", "--activation", "relu", "--optimizer", "sgd"]
    status, _, _ = run(capsys, *argv, "--lr", "1e30", "--epochs", "3", "--out", tmp_path / "r")
    assert status == 3 and not (tmp_path / "r" / "checkpoint.safetensors").exists()
    np.savez(tmp_path / "x.npz", X=np.zeros((2, 2)))
    for command in (
        ["evaluate", tmp_path / "r"],
        ["predict", tmp_path / "r", tmp_path / "x.npz", "-o", tmp_path / "p.npz"],
    ):
        err = one_line_error(capsys, *command)
        assert f"the run in {tmp_path / 'r'} diverged in epoch 1, before any epoch" in err
        assert "lower --lr" in err and "no such file" not in err


def test_evaluating_on_changed_data_is_one_plain_sentence(capsys, tmp_path):
    """Item 21: "so it cannot be evaluated (give --data to use it) on it" was garbled."""
    data = tmp_path / "d.npz"
    rng = np.random.default_rng(0)
    np.savez(data, X=rng.normal(size=(40, 3)), y=np.arange(40) % 2)
    argv = ["train", "--data", data, "--epochs", "1", "--quiet", "--out", tmp_path / "r"]
    assert run(capsys, *argv)[0] == 0
    np.savez(data, X=rng.normal(size=(40, 3)), y=np.arange(40) % 2)
    err = one_line_error(capsys, "evaluate", tmp_path / "r")
    assert (
        f"so the run cannot be evaluated on it; restore the original data, or give --data "
        f"{data} to evaluate on all of it as it is now" in err
    )
    assert "accuracy" in run(capsys, "evaluate", tmp_path / "r", "--data", data)[1]


def test_csv_labels_that_name_no_class_are_named_by_their_line(capsys, tmp_path):
    """Item 23: 1e30 got the advice for arrays and the sample's row instead of its line."""
    (tmp_path / "l.csv").write_text("a,b,label\n1,2,1e30\n3,4,0\n5,6,1e30\n7,8,0\n")
    err = one_line_error(capsys, "train", "--data", tmp_path / "l.csv")
    assert "the label 1e+30 on line 2 is no class label (lines 2, 4)" in err
    assert "astype" not in err and "rows" not in err


def test_a_quoted_comma_is_part_of_the_label(capsys, tmp_path):
    """Item 23: `"x,y"` split the label in two and the whole line was quoted back."""
    rows = [f'{i},{i % 3},"x,y"' if i % 2 else f"{i},{i % 3},z" for i in range(12)]
    (tmp_path / "q.csv").write_text("a,b,label\n" + "\n".join(rows) + "\n")
    argv = ["train", "--data", tmp_path / "q.csv", "--epochs", "1", "--quiet"]
    assert run(capsys, *argv, "--out", tmp_path / "r")[0] == 0
    out = run(capsys, "predict", tmp_path / "r", tmp_path / "q.csv", "-o", tmp_path / "p.csv")
    assert out[0] == 0
    assert (tmp_path / "p.csv").read_text().splitlines()[0] == 'label,"p_x,y",p_z'


def test_resume_of_a_file_names_the_run_directory_before_resuming(capsys, tmp_path):
    """Item 20: `--resume FILE` said "resuming at epoch N", then failed with "File exists"
    (or "Not a directory") when the run's files were to be written beside it."""
    run_dir = tmp_path / "run"
    argv = ["train", "--data", "xor", "--epochs", "2", "--quiet"]
    assert run(capsys, *argv, "--out", run_dir)[0] == 0
    copy = tmp_path / "ck"  # a checkpoint under another name
    copy.write_bytes((run_dir / "checkpoint.safetensors").read_bytes())
    for resume, hint in (
        (run_dir / "checkpoint.safetensors", f"give --resume {run_dir}"),
        (copy, "give the directory `xpnet train` wrote (checkpoint.safetensors in it)"),
    ):
        code, out, err = run(capsys, "train", "--resume", resume, "--epochs", "3")
        assert code == 2 and "resuming" not in out, (out, err)
        assert f"--resume takes a run directory, not a file ({resume}); {hint}" in err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["ck", "run"]


def test_a_resumed_run_says_which_epochs_its_wall_time_covers(capsys, tmp_path):
    """The training time of a resumed run counts every epoch, its wall time only the new
    ones: "0.4 s of training (0.1 s with evaluation and saving)" read as a contradiction."""
    argv = ["train", "--data", "xor", "--quiet"]
    assert run(capsys, *argv, "--epochs", "2", "--out", tmp_path / "r")[0] == 0
    out = run(capsys, "train", "--resume", tmp_path / "r", "--epochs", "5", "--quiet")[1]
    assert "s for epochs 3-5 with evaluation and saving)" in out


def _console_output(page: Path, command: str) -> list[str]:
    """The lines `page` shows under `$ <command>` (up to the next prompt or the block's end)."""
    lines = page.read_text(encoding="utf-8").splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith(f"$ {command}"))
    shown = []
    for line in lines[start + 1 :]:
        if line.startswith(("$ ", "```")):
            break
        shown.append(line)
    return shown


def test_the_documented_gradcheck_numbers_reproduce(capsys):
    """Item 26: the README showed numbers an older gradcheck gave (now docs/cli/gradcheck.md)."""
    argv = ["gradcheck", "--data", "xor", "--hidden", "4", "--loss", "sse"]
    out = run(capsys, *argv)[1]
    page = Path(__file__).resolve().parents[1] / "docs" / "cli" / "gradcheck.md"
    assert out.splitlines() == _console_output(page, "xpnet " + " ".join(argv))


def test_the_top_level_help_names_every_backend(capsys):
    """Item 26: `xpnet --help` left out JAX."""
    with pytest.raises(SystemExit):
        main(["--help"])
    help_text = " ".join(capsys.readouterr().out.split())
    assert "NumPy, CuPy, PyTorch, JAX or array-api-strict" in help_text
