"""The `xpnet` command, run in-process through `main([...])` on small data (fast), plus one run
of the installed console script."""

from __future__ import annotations

import csv
import datetime
import json
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from helpers import assert_same_training, run

import xpnet
import xpnet.files
from xpnet.cli import main
from xpnet.cli.runs import new_run_dir
from xpnet.data import load_dataset, load_digits, train_test_split

PNG = b"\x89PNG\r\n\x1a\n"


@pytest.fixture(scope="module")
def trained_run(small, tmp_path_factory):
    out = tmp_path_factory.mktemp("runs") / "run"
    assert (
        main(
            [
                "train",
                "--data",
                str(small),
                "--epochs",
                "3",
                "--hidden",
                "16",
                "--backend",
                "numpy",
                "--out",
                str(out),
            ]
        )
        == 0
    )
    return out


def read_history(path):
    with path.open() as f:
        return list(csv.DictReader(f))


# -- train ------------------------------------------------------------------------------------
def test_train_writes_the_run(trained_run, small):
    files = sorted(p.name for p in trained_run.iterdir())
    assert files == [
        "checkpoint.safetensors",
        "config.json",
        "curves.png",
        "history.csv",
        "metrics.json",
    ]
    assert (trained_run / "curves.png").read_bytes().startswith(PNG)
    metrics = json.loads((trained_run / "metrics.json").read_text())
    assert metrics["epochs"] == 3 and metrics["backend"] == "numpy" and metrics["device"] == "cpu"
    assert 0.0 <= metrics["test_accuracy"] <= 1.0 and metrics["seconds"] > 0
    # 240 in the training part: 21 of them (10 %, stratified) held out for validation
    assert (metrics["n_train"], metrics["n_val"], metrics["n_test"]) == (219, 21, 60)
    # the reported test metrics are the saved net's, recomputed independently
    _, test = train_test_split(load_dataset(str(small)), 0.2, 0)
    net = xpnet.load(trained_run, backend="numpy")
    again = xpnet.evaluate(net, test.X, test.y, loss=xpnet.SoftmaxCrossEntropyLoss())
    assert metrics["test_accuracy"] == again["accuracy"]
    assert metrics["test_loss"] == pytest.approx(again["loss"], rel=1e-6)
    rows = read_history(trained_run / "history.csv")
    assert [r["epoch"] for r in rows] == ["1", "2", "3"]
    assert list(rows[0]) == [
        "epoch",
        "loss",
        "accuracy",
        "val_loss",
        "val_accuracy",
        "lr",
        "seconds",
    ]
    assert float(rows[-1]["val_accuracy"]) == metrics["val_accuracy"]
    assert float(rows[-1]["accuracy"]) == metrics["train_accuracy"]


def test_train_prints_a_summary_and_makes_a_new_run_dir(capsys, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    for _ in range(2):
        status, out, err = run(capsys, "train", "--data", "xor", "--epochs", "2")
        # stderr is no terminal here: one log line per epoch, nothing else
        assert status == 0 and [line[:10] for line in err.splitlines()] == [
            "epoch 1/2:",
            "epoch 2/2:",
        ]
    runs = sorted((tmp_path / "runs").iterdir())
    assert len(runs) == 2 and all((r / "checkpoint.safetensors").is_file() for r in runs)
    # xor is too small to hold anything out: it trains, validates and tests on its 4 points
    assert "xor: 4 train / 4 validation / 4 test samples; 2 -> 64 -> 2 sigmoid MLP" in out
    assert "after 2 epochs" in out and str(xpnet.get_backend("auto")) in out  # numpy on cpu
    # the last line names every file the run directory holds
    where, _, files = out.splitlines()[-1].partition(": ")
    assert where == f"saved in {runs[1].relative_to(tmp_path)}"
    assert sorted(files.split(", ")) == sorted(p.name for p in runs[1].iterdir())


def test_new_run_dirs_are_made_once_each(tmp_path, monkeypatch):
    """Runs started in the same second (in parallel) get a directory each: it is created when
    its name is chosen, not merely checked to be free."""

    class Frozen(datetime.datetime):
        @classmethod
        def now(cls, tz=None):
            return cls(2026, 1, 2, 3, 4, 5)

    monkeypatch.setattr(datetime, "datetime", Frozen)
    made = [new_run_dir("x", tmp_path / "runs") for _ in range(3)]
    names = ["20260102-030405-x", "20260102-030405-x-2", "20260102-030405-x-3"]
    assert [p.name for p in made] == names and all(p.is_dir() for p in made)


def test_resume_on_another_backend_uses_its_default_device(capsys, tmp_path):
    first = ["--backend", "array_api_strict", "--device", "device1", "--out", tmp_path / "r"]
    assert run(capsys, "train", "--data", "xor", "--epochs", "1", *first)[0] == 0
    status, out, err = run(
        capsys,
        "train",
        "--resume",
        tmp_path / "r",
        "--epochs",
        "2",
        "--backend",
        "numpy",
        "--quiet",
    )
    assert (status, err) == (0, "") and "numpy on cpu" in out
    metrics = json.loads((tmp_path / "r" / "metrics.json").read_text())
    assert (metrics["epochs"], metrics["backend"], metrics["device"]) == (2, "numpy", "cpu")


def test_resume_reads_the_checkpoint_once(capsys, tmp_path, monkeypatch):
    assert run(capsys, "train", "--data", "xor", "--epochs", "1", "--out", tmp_path / "r")[0] == 0
    reads, read_bytes = [], Path.read_bytes
    monkeypatch.setattr(Path, "read_bytes", lambda self: reads.append(self) or read_bytes(self))
    assert run(capsys, "train", "--resume", tmp_path / "r", "--epochs", "2")[0] == 0
    assert reads == [tmp_path / "r" / "checkpoint.safetensors"]


def test_resume_continues_bit_identically(capsys, small, tmp_path):
    common = ["--data", small, "--hidden", "8", "--batch-size", "50", "--backend", "numpy"]
    assert run(capsys, "train", *common, "--epochs", "4", "--out", tmp_path / "straight")[0] == 0
    assert run(capsys, "train", *common, "--epochs", "2", "--out", tmp_path / "split")[0] == 0
    status, out, _ = run(capsys, "train", "--resume", tmp_path / "split", "--epochs", "4")
    assert status == 0 and "resuming at epoch 2" in out
    a = xpnet.load(tmp_path / "straight", backend="numpy").state_dict()
    b = xpnet.load(tmp_path / "split", backend="numpy").state_dict()
    for name in a:
        np.testing.assert_array_equal(a[name], b[name], err_msg=name)
    history = [read_history(tmp_path / d / "history.csv") for d in ("straight", "split")]
    drop = lambda rows: [{k: v for k, v in r.items() if k != "seconds"} for r in rows]  # noqa: E731
    assert drop(history[0]) == drop(history[1]) and len(history[1]) == 4
    assert json.loads((tmp_path / "split" / "metrics.json").read_text())["epochs"] == 4


# -- evaluate, predict, vanishing, info, gradcheck ----------------------------------------------
def test_evaluate_reports_the_test_split_or_given_data(capsys, trained_run, small):
    metrics = json.loads((trained_run / "metrics.json").read_text())
    status, out, _ = run(capsys, "evaluate", trained_run)
    assert status == 0
    assert f"(the test split, 60): accuracy {100 * metrics['test_accuracy']:.2f} %" in out
    net = xpnet.load(trained_run, backend="numpy")
    data = load_dataset(str(small))
    whole = xpnet.evaluate(net, data.X, data.y, loss=xpnet.SoftmaxCrossEntropyLoss())
    status, out, _ = run(capsys, "evaluate", trained_run, "--data", small)
    assert status == 0 and f"(all samples, 300): accuracy {100 * whole['accuracy']:.2f} %" in out


def test_every_file_a_command_writes_is_written_atomically(capsys, small, tmp_path, monkeypatch):
    """train, predict and vanishing write each of their files through files.write_atomic
    (temporary file, fsync, rename), never in place (history.csv then gets one appended line
    per epoch)."""
    written = []

    def recording(target, data):
        written.append(Path(target).name)
        real(target, data)

    real = xpnet.files.write_atomic
    for module in ("xpnet.cli.outputs", "xpnet.plots"):
        monkeypatch.setattr(f"{module}.write_atomic", recording)
    out = tmp_path / "run"
    argv = ["--data", small, "--epochs", "2", "--hidden", "8", "--out", out, "--save-every", 0]
    assert run(capsys, "train", *argv)[0] == 0
    np.savez(tmp_path / "in.npz", X=load_digits().X[:3])
    assert run(capsys, "predict", out, tmp_path / "in.npz", "-o", tmp_path / "p.npz")[0] == 0
    van = tmp_path / "van"
    argv = ["vanishing", "--depths", "1,2", "--out", van, "--batch-size", "16", "--epochs", "1"]
    assert run(capsys, *argv)[0] == 0
    made = {p.name for d in (out, van) for p in d.iterdir()} | {"p.npz"}
    assert made == set(written)
    assert written.count("checkpoint.safetensors") == 2  # after each epoch (--save-every 0)


def test_predict_writes_labels_and_outputs(capsys, trained_run, tmp_path):
    X = load_digits().X[300:340]
    np.savez(tmp_path / "in.npz", X=X)
    status, out, _ = run(
        capsys,
        "predict",
        trained_run,
        tmp_path / "in.npz",
        "-o",
        tmp_path / "out.npz",
        "--backend",
        "numpy",
    )
    assert status == 0 and "40 predictions" in out
    with np.load(tmp_path / "out.npz") as result:
        y, outputs = result["y"], result["outputs"]
    expected = xpnet.to_numpy(xpnet.predict(xpnet.load(trained_run, backend="numpy"), X))
    np.testing.assert_array_equal(outputs, expected)
    np.testing.assert_array_equal(y, expected.argmax(axis=1))
    assert y.dtype == np.int64 and y.shape == (40,)


def test_predict_labels_one_output_by_threshold(capsys, tmp_path):
    """A one-output sigmoid net: label 1 where the output is >= 0.5 (the rule accuracy uses)."""
    net = xpnet.MLP([1, 1], output="sigmoid", dtype="float64")
    net.load_state_dict({"W1": np.array([[1.0]]), "b1": np.array([0.0])})
    xpnet.save(net, tmp_path / "one")
    np.savez(tmp_path / "in.npz", X=np.array([[-1.0], [0.0], [2.0], [-0.01]]))
    status, _, _ = run(
        capsys, "predict", tmp_path / "one", tmp_path / "in.npz", "-o", tmp_path / "o.npz"
    )
    with np.load(tmp_path / "o.npz") as result:
        assert status == 0 and result["y"].tolist() == [0, 1, 1, 0]  # sigmoid(0) is 0.5 exactly
        np.testing.assert_allclose(result["outputs"][:, 0], 1 / (1 + np.exp([1.0, 0, -2, 0.01])))


CURED = ["sigmoid+layer", "sigmoid+residual", "sigmoid+layer+residual"]


def test_vanishing_puts_the_cures_beside_the_disease(capsys, tmp_path):
    """The table and vanishing.json give layer 1's gradient over the last layer's for plain
    nets and the cured sigmoid nets at every depth, and the accuracy each reached in training."""
    argv = ["vanishing", "--depths", "1,2,6", "--width", "16", "--batch-size", "64"]
    status, out, _ = run(capsys, *argv, "--epochs", "3", "--out", tmp_path)
    assert status == 0
    results = json.loads((tmp_path / "vanishing.json").read_text())
    nets = ["sigmoid", "tanh", "relu", *CURED]
    assert list(results["gradients"]) == list(results["accuracy"]) == nets
    for norms in results["gradients"].values():
        assert {d: len(v) for d, v in norms.items()} == {"1": 1, "2": 2, "6": 6}
    assert (tmp_path / "vanishing.png").read_bytes().startswith(PNG)
    ratios = results["first_over_last"]
    for net, norms in results["gradients"].items():
        assert ratios[net] == {d: pytest.approx(v[0] / v[-1], rel=1e-12) for d, v in norms.items()}
    # five sigmoid layers: at most 1/4 each, times the weights; the skip paths keep it
    assert ratios["sigmoid"]["6"] < 0.01 < 0.1 < ratios["sigmoid+layer+residual"]["6"]
    lines = out.splitlines()
    assert lines[1].split() == ["depth", *nets]
    (row,) = [line.split()[1:] for line in lines if line.startswith("6 ")]
    assert [float(c) for c in row] == [pytest.approx(ratios[n]["6"], rel=1e-2) for n in nets]
    training = results["training"]
    assert training == {
        "depth": 6,
        "epochs": 3,
        "optimizer": "adam",
        "lr": 0.001,
        "batch_size": 32,
        "train_samples": 1438,
        "test_samples": 359,
    }
    accuracy = results["accuracy"]
    assert all(len(per_epoch) == 3 for per_epoch in accuracy.values())
    (row,) = [line.split()[1::2] for line in lines if line.startswith("accuracy ")]
    assert row == [f"{100 * accuracy[n][-1]:.0f}" for n in nets]
    assert accuracy["sigmoid"][-1] < 0.2 < 0.5 < accuracy["sigmoid+layer+residual"][-1]


def test_vanishing_cures_follow_norm_and_residual(capsys, tmp_path):
    """--norm batch cures with BatchNorm; --norm none --no-residual --epochs 0 is the plain
    study, with no training."""
    argv = ["vanishing", "--data", "xor", "--depths", "1,3", "--width", "2", "--epochs", "1"]
    assert (
        run(capsys, *argv, "--activations", "tanh,relu", "--norm", "batch", "--out", tmp_path)[0]
        == 0
    )
    results = json.loads((tmp_path / "vanishing.json").read_text())
    assert list(results["accuracy"]) == [
        "tanh",
        "relu",
        "tanh+batch",
        "tanh+residual",
        "tanh+batch+residual",
    ]
    argv[-1] = "0"
    plain = tmp_path / "plain"
    status, out, _ = run(capsys, *argv, "--norm", "none", "--no-residual", "--out", plain)
    results = json.loads((plain / "vanishing.json").read_text())
    assert status == 0 and list(results["gradients"]) == ["sigmoid", "tanh", "relu"]
    assert "accuracy" not in results and "training" not in results and "accuracy" not in out


def test_info_lists_backends_and_reasons(capsys):
    status, out, _ = run(capsys, "info")
    assert status == 0
    assert f"xpnet {xpnet.__version__}" in out
    for name, reason in xpnet.available_backends().items():
        assert f"{name}" in out and reason in out
    assert "GPUs:" in out


def test_gradcheck_passes_and_catches_a_wrong_backward(capsys, monkeypatch):
    argv = ["gradcheck", "--data", "xor", "--hidden", "3", "--loss", "sse", "--backend", "numpy"]
    status, out, _ = run(capsys, *argv)
    assert status == 0 and "ok: largest" in out
    for name in ("W1", "b1", "W2", "b2", "input"):
        assert f"  {name}" in out
    # a sigmoid backward that forgets the factor y (1 - y) must be caught
    monkeypatch.setattr(xpnet.Sigmoid, "backward", lambda self, grad, input_grad=True: grad)
    status, out, _ = run(capsys, *argv)
    assert status == 1 and "FAILED" in out


def test_gradcheck_on_array_api_strict(capsys):
    status, out, err = run(
        capsys,
        "gradcheck",
        "--data",
        "xor",
        "--hidden",
        "3",
        "--backend",
        "array_api_strict",
        "--device",
        "device1",
    )
    assert (status, err) == (0, "") and "backend='array_api_strict'" in out
    assert "4 samples" in out and "ok: largest" in out


def test_without_matplotlib_everything_else_is_written(capsys, tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "matplotlib", None)
    monkeypatch.setitem(sys.modules, "matplotlib.figure", None)
    status, out, _ = run(capsys, "train", "--data", "xor", "--epochs", "1", "--out", tmp_path)
    assert status == 0
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        "checkpoint.safetensors",
        "config.json",
        "history.csv",
        "metrics.json",
    ]
    hint = [line for line in out.splitlines() if "pip install 'xpnet[plot]'" in line]
    assert hint == ["matplotlib is not installed, so no curves.png: pip install 'xpnet[plot]'"]


# -- user mistakes: one line on stderr, exit status 2 -------------------------------------------
def _npz(X, y):
    def write(tmp_path):
        path = tmp_path / "bad.npz"
        np.savez(path, X=np.asarray(X, dtype=float), y=np.asarray(y))
        return ["train", "--data", path]

    return write


def _corrupt_checkpoint(tmp_path):
    (tmp_path / "checkpoint.safetensors").write_bytes(b"\x10\x00\x00\x00\x00\x00\x00\x00{garbage")
    return ["evaluate", tmp_path]


def _unknown_format(tmp_path):
    (tmp_path / "data.txt").write_text("1,2,0\n")
    return ["train", "--data", tmp_path / "data.txt"]


def _resume(*extra):
    def argv(tmp_path):
        assert main(["train", "--data", "xor", "--epochs", "2", "--out", str(tmp_path / "r")]) == 0
        return ["train", "--resume", tmp_path / "r", *extra]

    return argv


def _train_over_a_run(tmp_path):
    assert main(["train", "--data", "xor", "--epochs", "1", "--out", str(tmp_path / "r")]) == 0
    return ["train", "--data", "xor", "--out", tmp_path / "r"]


def _predict_without_X(tmp_path):
    assert main(["train", "--data", "xor", "--epochs", "1", "--out", str(tmp_path / "r")]) == 0
    np.savez(tmp_path / "in.npz", features=np.zeros((2, 2)))
    return ["predict", tmp_path / "r", tmp_path / "in.npz", "-o", tmp_path / "o.npz"]


ERRORS = {
    "missing file": (lambda p: ["train", "--data", p / "missing.npz"], "no such file"),
    "unknown format": (_unknown_format, "unsupported format '.txt'"),
    "X and y lengths": (_npz(np.zeros((5, 2)), [0, 1, 0, 1]), "X has 5 rows but y has 4 labels"),
    "fractional label": (
        _npz(np.zeros((4, 2)), [0, 1, 0.5, 1]),
        "labels must be whole numbers or text, found 0.5",
    ),
    "NaN in X": (_npz([[0, 1], [np.nan, 1], [1, 0], [1, 1]], [0, 1, 1, 0]), "NaN or inf"),
    "unknown backend": (
        lambda p: ["train", "--backend", "jaxx"],
        "argument --backend: invalid choice: 'jaxx'",
    ),
    "option that does not parse": (
        lambda p: ["train", "--epochs", "two"],
        "argument --epochs: expected a positive number, got 'two'",
    ),
    "bad hidden sizes": (
        lambda p: ["train", "--hidden", "64,x"],
        "comma-separated positive integers",
    ),
    "unknown command": (lambda p: ["fly"], "invalid choice: 'fly'"),
    "corrupt checkpoint": (_corrupt_checkpoint, "corrupt or truncated"),
    "missing run": (lambda p: ["evaluate", p / "nowhere"], "no such file or directory"),
    "resume without --epochs": (_resume(), "has 2 epochs; give the total to reach with --epochs N"),
    "resume changing the net": (
        _resume("--epochs", "3", "--hidden", "4"),
        "--hidden cannot change when resuming",
    ),
    "train over a run": (_train_over_a_run, "already holds a run"),
    "predict without X": (_predict_without_X, "has no array X (it has: features)"),
}
if xpnet.available_backends()["cupy"] != "ok":
    ERRORS["cupy without a GPU"] = (
        lambda p: ["train", "--backend", "cupy"],
        "backend 'cupy' is not usable here",
    )


@pytest.mark.parametrize("mistake", list(ERRORS))
def test_each_mistake_is_one_line_and_status_2(mistake, capsys, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    make_argv, message = ERRORS[mistake]
    argv = make_argv(tmp_path)
    capsys.readouterr()
    status, out, err = run(capsys, *argv)
    assert status == 2 and out == ""
    assert len(err.splitlines()) == 1 and err.endswith("\n"), err
    assert err.startswith(f"xpnet {argv[0]}: error: " if argv[0] != "fly" else "xpnet: error: ")
    assert message in err
    assert not (tmp_path / "runs").exists()  # nothing half-made


def test_the_installed_command(tmp_path):
    """The console script itself: status 2 and one line, no traceback, from a real process."""
    exe = shutil.which("xpnet", path=str(Path(sys.executable).parent))
    assert exe, "the xpnet console script is not installed next to this Python"
    done = subprocess.run(
        [exe, "train", "--data", tmp_path / "nope.csv"],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        timeout=120,
    )
    assert done.returncode == 2 and done.stdout == ""
    missing = tmp_path / "nope.csv"
    assert done.stderr == (
        f"xpnet train: error: no such file: {missing} "
        "(built-in datasets are: digits, xor, mnist, fashion-mnist)\n"
    )


# -- issue 8: each case a user met, kept fixed ---------------------------------------------------
RUNS_0_1 = Path(__file__).parent / "data" / "runs-0.1"


def one_line_error(capsys, *argv, status=2):
    """Run argv; assert it failed with `status`, one line on stderr and no traceback."""
    code, out, err = run(capsys, *argv)
    assert code == status, (code, out, err)
    assert len(err.splitlines()) == 1 and "Traceback" not in err, err
    return err


def test_a_net_too_big_for_memory_is_refused_up_front(capsys, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    err = one_line_error(capsys, "train", "--hidden", "100000000")
    assert "64 -> 100000000 -> 10 MLP needs about" in err and "GiB" in err
    assert "7.5e+09 parameters" in err and "--hidden" in err
    assert not (tmp_path / "runs").exists()
    for command in (["gradcheck", "--hidden"], ["vanishing", "--width"]):
        assert "needs about" in one_line_error(capsys, *command, "100000000")
    # the estimate is against what the device has free: the default net needs a few MiB
    monkeypatch.setattr("xpnet.cli.config.available_memory", lambda backend: 2**20)
    free = f"but {xpnet.get_backend('auto')} has 0.000977 GiB free"  # numpy on cpu, or the GPU
    assert free in one_line_error(capsys, "train")
    monkeypatch.setattr("xpnet.cli.config.available_memory", lambda backend: None)  # unknown: go on
    assert run(capsys, "train", "--data", "xor", "--epochs", "1", "--out", tmp_path / "r")[0] == 0


@pytest.mark.skipif(xpnet.available_backends()["torch"] != "ok", reason="torch not installed")
@pytest.mark.parametrize("device", ["mps", "xla", "meta", "cuda:7"])
def test_a_device_torch_rejects_is_one_line(capsys, device):
    err = one_line_error(capsys, "train", "--data", "xor", "--backend", "torch", "--device", device)
    assert f"unknown device '{device}' for backend 'torch'" in err


def test_evaluating_a_file_that_is_not_a_checkpoint_says_so(capsys, tmp_path):
    import pickle

    (tmp_path / "model.pkl").write_bytes(pickle.dumps({"W1": [1.0]}))
    (tmp_path / "notes.txt").write_text("hello")
    err = one_line_error(capsys, "evaluate", tmp_path / "model.pkl")
    assert "model.pkl is not an xpnet checkpoint (it looks like a pickle" in err
    assert "no such file" not in err
    err = one_line_error(
        capsys, "predict", tmp_path / "notes.txt", tmp_path / "x.npz", "-o", tmp_path / "o.npz"
    )
    assert "notes.txt is not an xpnet checkpoint (not a safetensors file)" in err


def test_a_bit_flipped_in_the_header_json_is_a_corrupt_checkpoint(capsys, trained_run, tmp_path):
    data = (trained_run / "checkpoint.safetensors").read_bytes()
    size = int.from_bytes(data[:8], "little")
    for marker in (b"xpnet-checkpoint", b'\\"epoch', b'{\\"format', b'"xpnet"'):
        at = data.index(marker, 8, 8 + size) + 2
        for bit in (0, 5):
            flipped = bytearray(data)
            flipped[at] ^= 1 << bit
            (tmp_path / "c.safetensors").write_bytes(bytes(flipped))
            err = one_line_error(capsys, "evaluate", tmp_path / "c.safetensors")
            assert "corrupt" in err and "not an xpnet checkpoint" not in err, (marker, bit, err)


@pytest.mark.parametrize("command", [["train"], ["gradcheck"], ["vanishing"]])
def test_a_negative_seed_names_the_option(capsys, command):
    err = one_line_error(capsys, *command, "--seed", "-1")
    assert "argument --seed: expected a whole number >= 0, got '-1'" in err


def test_predict_into_a_missing_directory_names_that_path(capsys, trained_run, tmp_path):
    np.savez(tmp_path / "in.npz", X=load_digits().X[:3])
    target = tmp_path / "missing_dir" / "out.npz"
    err = one_line_error(capsys, "predict", trained_run, tmp_path / "in.npz", "-o", target)
    assert err == f"xpnet predict: error: No such file or directory: {target}\n"


def test_resume_refuses_when_the_data_changed(capsys, tmp_path):
    digits = load_digits()
    data = tmp_path / "d.npz"
    np.savez(data, X=digits.X[:100], y=digits.y[:100])
    args = ["--data", data, "--hidden", "8", "--out", tmp_path / "r"]
    assert run(capsys, "train", *args, "--epochs", "1")[0] == 0
    options = xpnet.load_checkpoint(tmp_path / "r").metadata["options"]
    assert len(options["data_sha256"]) == 64
    np.savez(data, X=digits.X[:100], y=np.roll(digits.y[:100], 1))  # same shapes, new labels
    err = one_line_error(capsys, "train", "--resume", tmp_path / "r", "--epochs", "2")
    assert f"the data {data} changed since the run in {tmp_path / 'r'} started" in err
    assert "cannot be evaluated" in one_line_error(capsys, "evaluate", tmp_path / "r")
    assert run(capsys, "evaluate", tmp_path / "r", "--data", data)[0] == 0  # said explicitly
    # the same data written again (another file, same arrays) is the same data
    np.savez(data, X=digits.X[:100], y=digits.y[:100])
    assert run(capsys, "train", "--resume", tmp_path / "r", "--epochs", "2")[0] == 0


def test_a_run_that_recorded_no_digest_resumes_as_before(capsys, tmp_path):
    """Runs saved before the digest (and before --val-fraction) resume; the data is not checked."""
    digits = load_digits()
    data = tmp_path / "d.npz"
    np.savez(data, X=digits.X[:100], y=digits.y[:100])
    assert run(capsys, "train", "--data", data, "--epochs", "1", "--out", tmp_path / "r")[0] == 0
    ck = xpnet.load_checkpoint(tmp_path / "r")
    old = {k: v for k, v in ck.metadata["options"].items() if k not in ("data_sha256",)}
    xpnet.save(ck.net, tmp_path / "r", {"options": old}, optimizer=ck.optimizer, epoch=1, seed=0)
    np.savez(data, X=digits.X[:100], y=np.roll(digits.y[:100], 1))
    assert run(capsys, "train", "--resume", tmp_path / "r", "--epochs", "2")[0] == 0


def test_a_run_with_options_this_version_does_not_know_is_refused(capsys, tmp_path):
    assert run(capsys, "train", "--data", "xor", "--epochs", "1", "--out", tmp_path / "r")[0] == 0
    ck = xpnet.load_checkpoint(tmp_path / "r")
    options = {**ck.metadata["options"], "label_smoothing": 0.1}
    xpnet.save(ck.net, tmp_path / "r", {"options": options}, optimizer=ck.optimizer, epoch=1)
    err = one_line_error(capsys, "train", "--resume", tmp_path / "r", "--epochs", "2")
    assert "has options this xpnet does not know (label_smoothing)" in err and "newer" in err
    del options["label_smoothing"], options["hidden"]
    xpnet.save(ck.net, tmp_path / "r", {"options": options}, optimizer=ck.optimizer, epoch=1)
    err = one_line_error(capsys, "train", "--resume", tmp_path / "r", "--epochs", "2")
    assert "lacks the options hidden" in err


def strict_json(path):
    def refuse(name):
        raise AssertionError(f"{path} holds {name}: not strict JSON")

    return json.loads(path.read_text(), parse_constant=refuse)


def test_a_diverging_run_stops_at_once_with_exit_status_3(capsys, small, tmp_path):
    argv = ["--data", small, "--optimizer", "sgd", "--lr", "1e30", "--activation", "relu"]
    out_dir = tmp_path / "r"
    # pytest turns any RuntimeWarning into an error, so none escapes the command either
    argv += ["--quiet"]  # no per-epoch log lines: the error is all of stderr
    err = one_line_error(capsys, "train", *argv, "--epochs", "10", "--out", out_dir, status=3)
    assert err.startswith("xpnet train: error: training diverged in epoch 1 (loss nan")
    assert "try a lower --lr such as 1e+29" in err and "no checkpoint was saved" in err
    metrics = strict_json(out_dir / "metrics.json")
    assert metrics["epochs"] == 1 and metrics["diverged"] is True
    assert metrics["train_loss"] is None and metrics["test_loss"] is None
    assert read_history(out_dir / "history.csv")[0]["loss"] == "nan"
    assert not (out_dir / "checkpoint.safetensors").exists()  # the NaN net is never saved


def test_a_run_diverging_later_keeps_the_last_finite_checkpoint(
    capsys, small, tmp_path, monkeypatch
):
    out_dir = tmp_path / "r"
    argv = ["train", "--data", small, "--hidden", "8", "--epochs", "2", "--out", out_dir]
    assert run(capsys, *argv)[0] == 0
    before = xpnet.load(out_dir, backend="numpy").state_dict()
    real = xpnet.cli.train.fit

    def poisoned(net, *args, **kwargs):  # weights that overflow: epoch 3's loss is not finite
        for p in net.parameters().values():
            p[...] = np.float32(3e38)
        return real(net, *args, **kwargs)

    monkeypatch.setattr("xpnet.cli.train.fit", poisoned)
    argv = ["train", "--resume", out_dir, "--epochs", "5", "--quiet"]
    err = one_line_error(capsys, *argv, status=3)
    assert "diverged in epoch 3" in err and f"the checkpoint in {out_dir} holds epoch 2" in err
    ck = xpnet.load_checkpoint(out_dir, backend="numpy")
    assert ck.epoch == 2
    for name, value in ck.net.state_dict().items():
        np.testing.assert_array_equal(value, before[name])
    assert strict_json(out_dir / "metrics.json")["epochs"] == 3


def test_gradcheck_bounds_grow_with_float64_rounding_not_a_fixed_1e6(capsys, tmp_path, monkeypatch):
    """A deep sigmoid net on many samples: its small input gradient (and its first layer's)
    sit under the rounding noise of central differences; a fixed 1e-6 called that FAILED."""
    rng = np.random.default_rng(0)
    X = rng.normal(size=(300, 2))
    np.savez(tmp_path / "d.npz", X=X, y=(X[:, 0] * X[:, 1] > 0).astype(int))
    argv = ["gradcheck", "--data", tmp_path / "d.npz", "--hidden", "4,4,4,4,4", "--samples", "300"]
    status, out, _ = run(capsys, *argv)
    assert status == 0 and "ok: largest" in out
    errors = {line.split()[0]: float(line.split()[1]) for line in out.splitlines()[1:-1]}
    assert max(errors.values()) > 1e-6  # the old fixed bound would have failed this net
    assert "  input " in out and "(tolerance " in out
    monkeypatch.setattr(xpnet.Sigmoid, "backward", lambda self, grad, input_grad=True: grad)
    status, out, _ = run(capsys, *argv)
    assert status == 1 and "FAILED" in out  # still catches a wrong backward


def test_a_flattened_image_stack_is_said_in_the_header(capsys, tmp_path):
    digits = load_digits()
    np.savez(tmp_path / "img.npz", X=digits.X[:100].reshape(100, 8, 8), y=digits.y[:100])
    argv = ["train", "--data", tmp_path / "img.npz", "--epochs", "1", "--out", tmp_path / "r"]
    status, out, _ = run(capsys, *argv)
    assert status == 0
    assert "(X stored as (100, 8, 8): each 8 x 8 sample flattened to 64 features)" in out
    status, out, _ = run(capsys, "train", "--data", "xor", "--epochs", "1", "--out", tmp_path / "x")
    assert "flattened" not in out.splitlines()[0]


# -- issue 14: saved runs age well; validation is never the test split ---------------------------
@pytest.mark.parametrize("optimizer", ["adam", "momentum"])
def test_a_run_saved_by_xpnet_0_1_resumes_to_the_same_weights(optimizer, capsys, tmp_path):
    """It lacks val_fraction and data_sha256: val_fraction 0 (its old training set) and no
    digest check reproduce what xpnet 0.1 itself did from epoch 2 to 3."""
    run_dir = tmp_path / "old"
    run_dir.mkdir()
    shutil.copy(RUNS_0_1 / f"{optimizer}-epoch2.safetensors", run_dir / "checkpoint.safetensors")
    argv = ["train", "--resume", run_dir, "--epochs", "3", "--quiet", "--backend", "numpy"]
    status, out, err = run(capsys, *argv)
    assert (status, err) == (0, "")
    assert "digits: 1438 train / 359 test samples" in out and "resuming at epoch 2" in out
    got = xpnet.load(run_dir, backend="numpy").state_dict()
    with np.load(RUNS_0_1 / f"{optimizer}-epoch3-weights.npz") as expected:
        assert sorted(expected.files) == sorted(got)
        for name in expected.files:
            assert_same_training(got[name], expected[name], err_msg=name)
    rows = read_history(run_dir / "history.csv")
    assert [r["val_loss"] != "" for r in rows] == [True, True, False]  # 0.1's val was the test


def test_validation_is_split_off_the_training_part(capsys, trained_run, small):
    """val_ scores are a stratified 10 % of the training part; the test split is scored once."""
    metrics = json.loads((trained_run / "metrics.json").read_text())
    train, test = train_test_split(load_dataset(str(small)), 0.2, 0)
    fit_part, val = train_test_split(train, 0.1, 1)
    assert (len(fit_part), len(val), len(test)) == (219, 21, 60)
    net = xpnet.load(trained_run, backend="numpy")
    loss = xpnet.SoftmaxCrossEntropyLoss()
    scored = {
        k: xpnet.evaluate(net, d.X, d.y, loss=loss) for k, d in (("val", val), ("test", test))
    }
    for part in ("val", "test"):
        assert metrics[f"{part}_accuracy"] == scored[part]["accuracy"]
        assert metrics[f"{part}_loss"] == pytest.approx(scored[part]["loss"], rel=1e-6)
    assert scored["val"]["loss"] != pytest.approx(scored["test"]["loss"], rel=1e-6)


def test_val_fraction_0_trains_on_the_whole_training_part(capsys, small, tmp_path):
    argv = ["--data", small, "--epochs", "1", "--val-fraction", "0", "--out", tmp_path / "r"]
    status, out, _ = run(capsys, "train", *argv)
    assert status == 0 and "small: 240 train / 60 test samples" in out
    assert list(read_history(tmp_path / "r" / "history.csv")[0]) == [
        "epoch",
        "loss",
        "accuracy",
        "lr",
        "seconds",
    ]
    err = one_line_error(capsys, "train", "--resume", tmp_path / "r", "--val-fraction", "0.2")
    assert "--val-fraction cannot change when resuming" in err
    assert "argument --val-fraction" in one_line_error(capsys, "train", "--val-fraction", "1")


def test_vanishing_with_a_zero_gradient_prints_n_a(capsys, tmp_path):
    """Found by the fuzzer: one xor sample can give layer 1 a zero gradient (ZeroDivisionError
    in the ratio row, and a matplotlib warning on the empty log axis)."""
    argv = ["vanishing", "--data", "xor", "--depths", "1,2", "--width", "2", "--dtype"]
    argv += ["float32", "--batch-size", "1", "--seed", "7", "--epochs", "0", "--out", tmp_path]
    status, out, err = run(capsys, *argv)
    assert (status, err) == (0, "")
    assert out.splitlines()[-3].split() == ["1", *["n/a"] * 6]  # 0 / 0: layer 1 is the last


def test_a_checkpoint_without_optimizer_state_does_not_resume(capsys, tmp_path):
    """Saved by xpnet.save without optimizer=: resuming would silently restart the optimizer."""
    assert run(capsys, "train", "--data", "xor", "--epochs", "1", "--out", tmp_path / "r")[0] == 0
    ck = xpnet.load_checkpoint(tmp_path / "r")
    xpnet.save(ck.net, tmp_path / "r", ck.metadata, epoch=1, seed=0)
    err = one_line_error(capsys, "train", "--resume", tmp_path / "r", "--epochs", "2")
    assert "holds no optimizer state, so it cannot resume" in err
