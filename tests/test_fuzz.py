"""Fuzzing the command line: random argument vectors, malformed data files (CSV, npz, IDX) and
damaged checkpoints (bit flips anywhere, truncation, foreign safetensors, pickles) never make a
traceback (an exception escaping `main` fails the test) and never exit 0 with a wrong result.

`main(argv)` runs in-process, so each example costs milliseconds. The default run keeps every
property to a few examples (a few seconds in all); `pytest -m slow` runs the same properties
with many more.
"""

from __future__ import annotations

import gzip
import itertools
import json
import pickle
import re
import shutil
import signal
import struct
import time
from pathlib import Path

import numpy as np
import pytest
import safetensors.numpy
import signals
from helpers import run
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st

import xpnet
from xpnet.cli import main
from xpnet.cli.runs import RUN_FILES
from xpnet.data import load_dataset

FAST, SLOW = 12, 300
COUNTER = itertools.count()


def fuzz(n: int):
    return settings(
        max_examples=n,
        deadline=None,
        database=None,
        derandomize=n == FAST,  # the default run is the same every time
        suppress_health_check=list(HealthCheck),
        phases=tuple(Phase) if n == FAST else (Phase.explicit, Phase.generate, Phase.target),
    )


def new_dir(root: Path) -> Path:
    """A fresh directory per example (examples share the test's tmp_path)."""
    path = root / f"ex{next(COUNTER)}"
    path.mkdir()
    return path


def check_outcome(status, out, err, argv):
    """What any run may end with: 0 (stderr silent), 2 (one line naming the command), 3 (one
    line saying the training diverged); never 1 here (every backward is right)."""
    assert "Traceback" not in out + err, (argv, err)
    # off a terminal, `train` logs one line per epoch on stderr ("epoch 3/40: loss ...")
    err = "".join(line for line in err.splitlines(True) if not re.match(r"epoch \d+/\d+: ", line))
    # a run whose loss exploded but stayed finite ends with a warning line
    err = "".join(line for line in err.splitlines(True) if "train: warning: " not in line)
    if status == 0:
        assert err == "", (argv, err)
    else:
        assert status in (2, 3), (argv, status, out, err)
        assert len(err.splitlines()) == 1 and err.startswith("xpnet"), (argv, err)
        assert status == 2 or "training diverged" in err, (argv, err)


def strict_json(path: Path):
    return json.loads(path.read_text(), parse_constant=lambda name: pytest.fail(f"{name}"))


# -- shared material ----------------------------------------------------------------------------
@pytest.fixture(scope="module")
def material(tmp_path_factory):
    """A trained xor run, inputs for predict, and files that are not what they claim."""
    root = tmp_path_factory.mktemp("fuzz")
    run_dir = root / "run"
    argv = ["train", "--data", "xor", "--epochs", "2", "--hidden", "3", "--out", run_dir]
    assert main([str(a) for a in argv]) == 0
    np.savez(root / "in.npz", X=np.array([[0.0, 1.0], [1.0, 1.0]]))
    np.savez(root / "wide.npz", X=np.zeros((2, 5)))
    (root / "model.pkl").write_bytes(pickle.dumps({"W1": [1.0]}))
    (root / "junk.safetensors").write_bytes(b"\x00" * 40)
    rng = np.random.default_rng(0)
    X = rng.normal(size=(30, 3))
    np.savez(root / "small.npz", X=X, y=(X[:, 0] > 0).astype(int))
    return root


VALUES = {
    "--data": ["xor", "digits", "small.npz", "missing.csv", "model.pkl", "in.npz", ""],
    "--hidden": ["2", "3,2", "0", "a", "2,,3", "-4", "100000000"],
    "--activation": ["sigmoid", "tanh", "relu", "gelu", "mish"],  # gelu is one now; mish is not
    "--loss": ["softmax_ce", "sse", "mse", "bce", "l1"],
    "--optimizer": ["sgd", "momentum", "adam", "adamw", "lbfgs"],
    "--weight-decay": ["0", "0.01", "1e30", "-1", "nan", "x"],
    "--clip-norm": ["1", "1e-30", "0", "-1", "x"],
    "--lr-schedule": ["constant", "step", "cosine", "plateau", "linear"],
    "--warmup-epochs": ["0", "1", "5", "-1", "x"],
    "--early-stopping": ["1", "3", "0", "x"],
    "--test-data": ["xor", "digits", "small.npz", "missing.csv", "in.npz"],
    "--log-every": ["1", "2", "0", "x"],
    "--dropout": ["0", "0.5", "1", "x"],
    "--norm": ["layer", "batch", "group"],
    "--lr": ["0.1", "1e30", "inf", "nan", "0", "-1", "x"],
    "--epochs": ["1", "2", "0", "-1", "1.5", "x"],
    "--batch-size": ["1", "3", "0", "x"],
    "--val-fraction": ["0", "0.5", "0.9", "1", "-0.1", "nan", "x"],
    "--seed": ["0", "7", "-1", "x", "99999999999999999999"],
    "--backend": ["numpy", "array_api_strict", "torch", "cupy", "auto", "jaxx"],
    "--device": ["cpu", "device1", "1", "cuda:1", "mps", "meta", ""],
    "--dtype": ["float32", "float64", "float16"],
    "--samples": ["1", "4", "0", "x"],
    "--depths": ["1,2", "2", "0", "1,x"],
    "--width": ["2", "3", "0"],
    "--activations": ["sigmoid,relu", "tanh", "foo"],
}
OPTIONS = {
    "train": "--data --hidden --activation --loss --optimizer --lr --epochs --batch-size "
    "--val-fraction --seed --backend --device --dtype --weight-decay --clip-norm --lr-schedule "
    "--warmup-epochs --early-stopping --test-data --log-every --dropout --norm".split(),
    "gradcheck": "--data --hidden --activation --loss --seed --backend --device --samples".split(),
    "vanishing": "--depths --width --activations --batch-size --seed --dtype --backend --device "
    "--data --norm --epochs".split(),
    "evaluate": ["--data", "--backend", "--device"],
    "predict": ["--backend", "--device"],
    "info": [],
}
# what keeps every run small: the random options come after these and may override them
SAFE = {
    "train": ["--data", "xor", "--epochs", "1", "--hidden", "2"],
    "gradcheck": ["--data", "xor", "--hidden", "2"],
    "vanishing": ["--data", "xor", "--depths", "1,2", "--width", "2", "--epochs", "1"],
    "evaluate": [],
    "predict": [],
    "info": [],
}
CHEAP = {"--data": "digits", "--epochs": "2"}  # digits only for a single epoch or a gradcheck


@st.composite
def argv_of(draw, root: Path):
    command = draw(st.sampled_from([*OPTIONS, "fly"]))
    if command == "fly":
        return ["fly", *draw(st.lists(st.text(max_size=6), max_size=3))]
    argv = [command, *SAFE[command]]
    out = new_dir(root)
    if command in ("evaluate", "predict"):
        run_dir = draw(st.sampled_from(["run", "missing", "model.pkl", "junk.safetensors"]))
        argv.append(root / run_dir)
    if command == "predict":
        argv.append(root / draw(st.sampled_from(["in.npz", "wide.npz", "missing.npz"])))
        argv += ["-o", out / draw(st.sampled_from(["o.npz", "no/such/o.npz", ""]))]
    pool = OPTIONS[command]
    chosen = draw(st.lists(st.sampled_from(pool), max_size=5, unique=True)) if pool else []
    for option in chosen:
        value = draw(st.sampled_from(VALUES[option]))
        if option == "--data" and value.endswith((".npz", ".csv", ".pkl")):
            value = str(root / value)
        argv += [option, value]
    if command == "train" and "--data" in chosen and argv[argv.index("--data", 3) + 1] == "digits":
        argv += ["--epochs", "1", "--hidden", "2"]  # keep digits cheap, whatever else was drawn
    if command == "train":
        if draw(st.booleans()):
            resumed = out / "resumed"
            shutil.copytree(root / "run", resumed)
            argv += ["--resume", resumed]
        else:
            argv += ["--out", out / "r"]
    if command == "vanishing":
        argv += ["--out", out / "v"]
    if draw(st.booleans()):  # a stray token somewhere
        argv.insert(draw(st.integers(0, len(argv))), draw(st.sampled_from(["--", "-x", "?", "5"])))
    return argv


def check_cli(capsys, material, data):
    argv = data.draw(argv_of(material))
    status, out, err = run(capsys, *argv)
    check_outcome(status, out, err, argv)
    if status == 0 and argv[0] == "train" and "--out" in argv:
        metrics = strict_json(Path(argv[argv.index("--out") + 1]) / "metrics.json")
        assert 0.0 <= metrics["test_accuracy"] <= 1.0 and metrics["diverged"] is False
    if status == 0 and argv[0] == "predict":
        with np.load(argv[argv.index("-o") + 1]) as result:
            assert result["y"].shape == (2,) and result["outputs"].shape == (2, 2)


@fuzz(FAST)
@given(data=st.data())
def test_random_command_lines(capsys, material, data):
    check_cli(capsys, material, data)


@pytest.mark.slow
@fuzz(SLOW)
@given(data=st.data())
def test_random_command_lines_long(capsys, material, data):
    check_cli(capsys, material, data)


# -- malformed data files -----------------------------------------------------------------------
numbers = st.one_of(
    st.integers(-3, 12).map(str),
    st.floats(allow_nan=True, allow_infinity=True, width=32).map(repr),
    st.sampled_from(["", " ", "x", "1e400", "0x10", "nan", "1,5", "\t", ";", '"1"']),
)
csv_text = st.lists(st.lists(numbers, min_size=0, max_size=4), max_size=14).map(
    lambda rows: "\n".join(",".join(r) for r in rows)
)


@st.composite
def npz_bytes(draw, root: Path) -> Path:
    path = new_dir(root) / "d.npz"
    shape = tuple(draw(st.lists(st.integers(0, 5), min_size=0, max_size=4)))
    kind = draw(st.sampled_from(["f8", "f4", "i4", "u1", "?", "U3", "c8", "O"]))
    X = np.zeros(shape, dtype=kind) if kind != "O" else np.empty(shape, dtype=object)
    if kind in ("f8", "f4") and X.size:
        X.flat[draw(st.integers(0, X.size - 1))] = draw(st.sampled_from([np.nan, np.inf, 7.0]))
    n = shape[0] if shape else draw(st.integers(0, 4))
    y = np.asarray(draw(st.lists(st.integers(-1, 3), min_size=n, max_size=n)), dtype=int)
    keys = draw(st.sampled_from([("X", "y"), ("X",), ("x", "y"), ("X", "y", "z")]))
    arrays = {k: v for k, v in zip(keys, (X, y, y), strict=False)}
    np.savez(path, **arrays, allow_pickle=True) if kind == "O" else np.savez(path, **arrays)
    raw = bytearray(path.read_bytes())
    for at in draw(st.lists(st.integers(0, len(raw) - 1), max_size=2)):  # and bit flips
        raw[at] ^= 1 << draw(st.integers(0, 7))
    path.write_bytes(bytes(raw[: draw(st.integers(0, len(raw)))] if draw(st.booleans()) else raw))
    return path


@st.composite
def idx_dir(draw, root: Path) -> Path:
    folder = new_dir(root)
    n = draw(st.integers(0, 6))
    h, w = draw(st.integers(1, 3)), draw(st.integers(1, 3))
    images = struct.pack(">HBB3I", 0, 8, 3, n, h, w) + bytes(n * h * w)
    labels = struct.pack(">HBBI", 0, 8, 1, n) + bytes(
        draw(st.lists(st.integers(0, 3), min_size=n, max_size=n))
    )
    files = {"train-images-idx3-ubyte": images, "train-labels-idx1-ubyte": labels}
    for name in draw(st.lists(st.sampled_from(sorted(files)), max_size=2, unique=True)):
        raw = bytearray(files[name])
        if draw(st.booleans()) and raw:
            raw[draw(st.integers(0, len(raw) - 1))] ^= 1 << draw(st.integers(0, 7))
        files[name] = bytes(raw[: draw(st.integers(0, len(raw)))])
    for name, raw in files.items():
        if draw(st.booleans()):
            (folder / f"{name}.gz").write_bytes(gzip.compress(raw)[: draw(st.integers(5, 60))])
        else:
            (folder / name).write_bytes(raw)
    return folder


def check_data(capsys, material, data):
    kind = data.draw(st.sampled_from(["csv", "npz", "idx"]))
    if kind == "csv":
        path = new_dir(material) / "d.csv"
        path.write_text(data.draw(csv_text))
    elif kind == "npz":
        path = data.draw(npz_bytes(material))
    else:
        path = data.draw(idx_dir(material))
    out = new_dir(material) / "r"
    argv = ["train", "--data", path, "--epochs", "1", "--hidden", "2", "--out", out]
    status, stdout, err = run(capsys, *argv)
    check_outcome(status, stdout, err, argv)
    if status == 0:  # then the file is data, and the run used all of it
        loaded = load_dataset(path)
        metrics = strict_json(out / "metrics.json")
        total = metrics["n_train"] + metrics["n_val"] + metrics["n_test"]
        assert total == len(loaded) or len(loaded) < 10, (metrics, loaded)
        assert np.isfinite(loaded.X).all() and (loaded.y >= 0).all()


@fuzz(FAST)
@given(data=st.data())
def test_malformed_data_files(capsys, material, data):
    check_data(capsys, material, data)


@pytest.mark.slow
@fuzz(SLOW)
@given(data=st.data())
def test_malformed_data_files_long(capsys, material, data):
    check_data(capsys, material, data)


@fuzz(FAST)
@given(
    rows=st.lists(
        st.tuples(st.floats(-1e6, 1e6), st.floats(-1e6, 1e6), st.integers(0, 2)),
        min_size=10,
        max_size=30,
    )
)
def test_a_well_formed_csv_is_read_exactly(tmp_path_factory, rows):
    """No silently wrong parse: what loads is the table that was written."""
    if len({r[2] for r in rows}) < 2:
        return
    path = tmp_path_factory.mktemp("csv") / "t.csv"
    path.write_text("a,b,label\n" + "\n".join(f"{a!r},{b!r},{c}" for a, b, c in rows))
    loaded = load_dataset(path)
    np.testing.assert_array_equal(loaded.X, np.array([r[:2] for r in rows]))
    np.testing.assert_array_equal(loaded.labels, np.array([r[2] for r in rows]))


# -- damaged checkpoints ------------------------------------------------------------------------
@st.composite
def damaged_checkpoint(draw, material: Path) -> tuple[Path, str]:
    """(a file, how it was damaged): a bit flip anywhere, a truncation, a foreign safetensors
    file (with or without an "xpnet" entry), or a pickle."""
    good = (material / "run" / "checkpoint.safetensors").read_bytes()
    how = draw(st.sampled_from(["flip", "truncate", "foreign", "pickle"]))
    if how == "flip":
        raw = bytearray(good)
        for at in draw(st.lists(st.integers(0, len(raw) - 1), min_size=1, max_size=3)):
            raw[at] ^= 1 << draw(st.integers(0, 7))
        content = bytes(raw)
    elif how == "truncate":
        content = good[: draw(st.integers(0, len(good) - 1))]
    elif how == "foreign":
        names = draw(
            st.lists(st.sampled_from(["W1", "b1", "W2", "x", "optimizer/m.W1"]), unique=True)
        )
        tensors = {
            n: np.zeros(draw(st.lists(st.integers(0, 3), max_size=2)), np.float32) for n in names
        }
        header = draw(
            st.one_of(
                st.none(),
                st.dictionaries(
                    st.sampled_from(["format", "version", "config", "sha256", "epoch"]),
                    st.one_of(
                        st.integers(-2, 3),
                        st.text(max_size=4),
                        st.just("xpnet-checkpoint"),
                        st.lists(st.integers(0, 3), max_size=3),
                    ),
                ),
            )
        )
        meta = None if header is None else {"xpnet": json.dumps(header)}
        content = safetensors.numpy.save(tensors, metadata=meta)
    else:
        content = pickle.dumps(draw(st.one_of(st.integers(), st.text(), st.lists(st.floats()))))
    suffix = draw(st.sampled_from([".safetensors", ".pkl", ""]))
    path = new_dir(material) / f"model{suffix}"
    path.write_bytes(content)
    return path, how


def check_checkpoint(capsys, material, data):
    path, how = data.draw(damaged_checkpoint(material))
    argv = ["evaluate", path, "--data", "xor", "--backend", "numpy"]
    status, out, err = run(capsys, *argv)
    check_outcome(status, out, err, argv)
    assert status == 2 or how == "flip", (how, out, err)
    if status == 0:  # a flip that changed nothing that matters: the same net must load
        good = xpnet.load_checkpoint(material / "run", backend="numpy")
        back = xpnet.load_checkpoint(path, backend="numpy")
        assert back.epoch == good.epoch
        for name, value in good.net.state_dict().items():
            np.testing.assert_array_equal(back.net.state_dict()[name], value)


@fuzz(FAST)
@given(data=st.data())
def test_damaged_checkpoints(capsys, material, data):
    check_checkpoint(capsys, material, data)


@pytest.mark.slow
@fuzz(SLOW)
@given(data=st.data())
def test_damaged_checkpoints_long(capsys, material, data):
    check_checkpoint(capsys, material, data)


# -- the signal matrix: SIGINT, SIGTERM and SIGKILL at random moments of training, saving
# and plotting; after each the run resumes to the weights of an uninterrupted run, and no
# stray file remains


@pytest.fixture(scope="module")
def uninterrupted(tmp_path_factory):
    out = tmp_path_factory.mktemp("uninterrupted") / "run"
    assert main(["train", *signals.TRAIN, "--epochs", "8", "--out", str(out)]) == 0
    return signals.weights(out)


MOMENTS = {  # --save-every, and the epochs history.csv holds when the signal is sent
    "training": (["--save-every", "0.05"], (1, 4)),
    "saving": (["--save-every", "0"], (1, 5)),
    "plotting": (["--save-every", "30"], (6, 6)),  # after the last epoch: the final files
}


@pytest.mark.parametrize("moment", list(MOMENTS))
@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM, signal.SIGKILL], ids=str)
def test_signal_matrix(uninterrupted, tmp_path, moment, signum):
    rng = np.random.default_rng([int(signum), len(moment)])
    options, (low, high) = MOMENTS[moment]
    out = tmp_path / "run"
    with signals.start("--epochs", 6, "--out", out, *options) as process:
        signals.wait_for_epochs(process, out, int(rng.integers(low, high + 1)))
        time.sleep(float(rng.uniform(0, 0.03)))
        process.send_signal(signum)
        _, err = process.communicate(timeout=60)
    assert "Traceback" not in err, err
    if process.returncode != 0:  # it may have finished before the signal came
        assert process.returncode == {signal.SIGINT: 130, signal.SIGTERM: 143}.get(signum, -9)
    resume = ["--resume", out] if (out / "checkpoint.safetensors").exists() else ["--out", out]
    overwrite = [] if resume[0] == "--resume" else ["--overwrite"]
    argv = [*resume, "--epochs", 8, *overwrite] + ([] if resume[0] == "--resume" else signals.TRAIN)
    assert main([str(a) for a in ["train", *argv, "--quiet"]]) == 0
    for name, value in signals.weights(out).items():
        np.testing.assert_array_equal(value, uninterrupted[name], err_msg=name)
    assert signals.epochs_logged(out) == 8
    left = sorted(p.name for p in out.iterdir())
    assert set(left) <= set(RUN_FILES) and not any(n.endswith(".tmp") for n in left), left
