"""Issue 21's output safety: every file the CLI writes goes through one gate that refuses a
checkpoint, a file the run did not write, a link or anything but a regular file (unless
--overwrite, and then regular files only); predictions as .npz or .csv by the name."""

from __future__ import annotations

import csv
import os

import numpy as np
import pytest
from helpers import run

from xpnet.data import load_digits


@pytest.fixture(scope="module")
def trained(small, tmp_path_factory):
    out = tmp_path_factory.mktemp("runs") / "run"
    argv = ["train", "--data", small, "--epochs", 2, "--hidden", 8, "--out", out, "--quiet"]
    from xpnet.cli import main

    assert main([str(a) for a in argv]) == 0
    return out


@pytest.fixture
def inputs(tmp_path):
    path = tmp_path / "in.npz"
    np.savez(path, X=load_digits().X[:5])
    return path


def refused(capsys, *argv, said):
    status, _, err = run(capsys, *argv)
    assert status == 2 and len(err.splitlines()) == 1 and "Traceback" not in err, err
    assert said in err, err
    return err


def test_predict_never_replaces_the_runs_checkpoint(capsys, trained, inputs):
    checkpoint = trained / "checkpoint.safetensors"
    before = checkpoint.read_bytes()
    for extra in ([], ["--overwrite"]):  # predictions are never a .safetensors file
        refused(capsys, "predict", trained, inputs, "-o", checkpoint, *extra, said=".npz or .csv")
    assert checkpoint.read_bytes() == before


def test_predict_refuses_a_file_it_did_not_write_unless_overwrite(
    capsys, trained, inputs, tmp_path
):
    target = tmp_path / "p.npz"
    target.write_bytes(b"the user's")
    refused(capsys, "predict", trained, inputs, "-o", target, said="--overwrite")
    assert target.read_bytes() == b"the user's"
    assert run(capsys, "predict", trained, inputs, "-o", target, "--overwrite")[0] == 0
    assert np.load(target)["labels"].shape == (5,)


def test_a_link_or_a_special_file_is_never_replaced(capsys, trained, inputs, tmp_path):
    real = tmp_path / "real.npz"
    real.write_bytes(b"kept")
    link = tmp_path / "link.npz"
    link.symlink_to(real)
    for extra in ([], ["--overwrite"]):
        refused(capsys, "predict", trained, inputs, "-o", link, *extra, said="symbolic link")
    assert link.is_symlink() and real.read_bytes() == b"kept"
    fifo = tmp_path / "fifo.npz"
    os.mkfifo(fifo)
    refused(capsys, "predict", trained, inputs, "-o", fifo, "--overwrite", said="not a regular")
    assert not fifo.is_file()


@pytest.mark.parametrize("name", ["p.txt", "p", "p.safetensors"])
def test_predictions_are_refused_under_a_name_of_another_format(
    capsys, trained, inputs, tmp_path, name
):
    refused(capsys, "predict", trained, inputs, "-o", tmp_path / name, said=".npz or .csv")
    assert not (tmp_path / name).exists()


def test_predictions_as_csv_match_the_npz(capsys, trained, inputs, tmp_path):
    assert run(capsys, "predict", trained, inputs, "-o", tmp_path / "p.npz")[0] == 0
    status, out, _ = run(capsys, "predict", trained, inputs, "-o", tmp_path / "p.csv")
    assert status == 0 and "5 predictions -> " in out
    with np.load(tmp_path / "p.npz") as npz:
        labels, probabilities = npz["labels"], npz["probabilities"]
    with (tmp_path / "p.csv").open(newline="") as file:
        rows = list(csv.reader(file))
    assert rows[0] == ["label", *(f"p_{k}" for k in range(10))]
    assert [int(r[0]) for r in rows[1:]] == labels.tolist()
    np.testing.assert_array_equal([[float(c) for c in r[1:]] for r in rows[1:]], probabilities)


def test_predict_reads_csv_with_or_without_the_label_column(capsys, trained, tmp_path):
    digits = load_digits()
    table = np.column_stack([digits.X[:4], digits.y[:4]])
    np.savetxt(tmp_path / "with.csv", table, delimiter=",")
    np.savetxt(tmp_path / "without.csv", digits.X[:4], delimiter=",")
    np.savez(tmp_path / "in.npz", X=digits.X[:4])
    results = []
    for name in ("with.csv", "without.csv", "in.npz"):
        out = tmp_path / f"{name}.out.npz"
        assert run(capsys, "predict", trained, tmp_path / name, "-o", out)[0] == 0
        results.append(np.load(out)["outputs"])
    np.testing.assert_array_equal(results[0], results[2])
    np.testing.assert_array_equal(results[1], results[2])


def test_train_never_overwrites_the_users_files_in_out(capsys, small, tmp_path):
    out = tmp_path / "mine"
    out.mkdir()
    (out / "history.csv").write_text("my own history\n")
    argv = ["train", "--data", small, "--epochs", 1, "--hidden", 4, "--out", out, "--quiet"]
    refused(capsys, *argv, said="history.csv already exists")
    assert (out / "history.csv").read_text() == "my own history\n"
    assert sorted(p.name for p in out.iterdir()) == ["history.csv"]  # nothing else written
    assert run(capsys, *argv, "--overwrite")[0] == 0
    assert (out / "history.csv").read_text().startswith("epoch,")


def test_train_refuses_a_run_and_says_how_to_resume(capsys, small, trained):
    argv = ["train", "--data", small, "--out", trained, "--quiet"]
    refused(capsys, *argv, said=f"continue it with --resume {trained}")


@pytest.mark.parametrize(
    ("argv", "said"),
    [
        (["--out", ""], "expected a path, got an empty one"),
        (["--resume", ""], "expected a path, got an empty one"),
    ],
)
def test_empty_paths_are_refused(capsys, argv, said):
    refused(capsys, "train", *argv, said=said)


def test_out_naming_a_file_is_refused(capsys, small, tmp_path):
    (tmp_path / "good.npz").write_bytes(b"data")
    refused(capsys, "train", "--data", small, "--out", tmp_path / "good.npz", said="is a file")
    assert (tmp_path / "good.npz").read_bytes() == b"data"


def test_resume_of_the_checkpoint_file_names_the_directory(capsys, trained):
    err = refused(
        capsys, "train", "--resume", trained / "checkpoint.safetensors", "--epochs", 9, said=""
    )
    assert f"--resume {trained}" in err and "resuming" not in err


def test_vanishing_refuses_the_users_files(capsys, tmp_path):
    (tmp_path / "vanishing.json").write_text("{}")
    refused(capsys, "vanishing", "--depths", "1", "--out", tmp_path, said="--overwrite")
    assert (tmp_path / "vanishing.json").read_text() == "{}"


def test_stale_temporaries_of_a_killed_save_are_removed_on_resume(capsys, small, tmp_path):
    out = tmp_path / "run"
    argv = ["--data", small, "--hidden", 4, "--quiet"]
    assert run(capsys, "train", *argv, "--epochs", 1, "--out", out)[0] == 0
    stale = out / ".checkpoint.safetensors.0123456789abcdef.tmp"
    stale.write_bytes(b"")
    users = out / ".notes.0123456789abcdef.tmp"  # not a temporary of the run's files
    users.write_bytes(b"kept")
    assert run(capsys, "train", "--resume", out, "--epochs", 2, "--quiet")[0] == 0
    assert not stale.exists() and users.read_bytes() == b"kept"
