"""Mixed precision on the CPU (torch bfloat16 and float16, JAX bfloat16): the products run in
the low dtype, master weights, gradients and optimizer state stay float32, dynamic loss
scaling skips exactly the steps that overflow, and a resumed mixed run is the uninterrupted
one."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest
from helpers import run

import xpnet
from xpnet import loss_scaling
from xpnet.cli.historylog import read_history
from xpnet.compiled import compiled_epochs
from xpnet.data import load_digits, train_test_split
from xpnet.loss_scaling import LossScaler
from xpnet.train import step

torch = pytest.importorskip("torch")

LOW = {"bf16-mixed": torch.bfloat16, "16-mixed": torch.float16}


def _net(precision: str = "32", hidden: str = "tanh", sizes: tuple[int, ...] = (8, 16, 3)) -> Any:
    net = xpnet.MLP(list(sizes), hidden=hidden, output="identity", backend="torch", seed=1)
    net.set_precision(precision)
    return net


def _data(n: int = 64, n_in: int = 8, classes: int = 3) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(0)
    return rng.normal(size=(n, n_in)).astype(np.float32), rng.integers(0, classes, n)


def _host(net: Any) -> dict[str, np.ndarray]:
    return {k: xpnet.to_numpy(v) for k, v in net.state_dict().items()}


@pytest.mark.parametrize("precision", ["bf16-mixed", "16-mixed"])
def test_the_product_runs_in_the_low_dtype_from_the_weights_cast_once(precision: str) -> None:
    low = LOW[precision]
    net = xpnet.Sequential([xpnet.Linear(8, 5)], backend="torch", seed=3)
    net.set_precision(precision)
    X = torch.asarray(_data()[0])
    Y = net.forward(X)
    W, b = net.parameters()["W1"], net.parameters()["b1"]
    want = torch.addmm(b.to(low), X.to(low), W.to(low)).to(torch.float32)
    assert Y.dtype == torch.float32  # the loss sees float32
    assert torch.equal(Y, want)
    assert not torch.equal(Y, X @ W + b)  # not the float32 product
    gY = torch.asarray(np.random.default_rng(1).normal(size=(64, 5)).astype(np.float32))
    net.backward(gY, input_grad=False)
    g = gY.to(low)
    assert net.grads["W1"].dtype == torch.float32
    assert torch.equal(net.grads["W1"], (X.to(low).T @ g).to(torch.float32))
    assert torch.equal(net.grads["b1"], g.sum(0, dtype=torch.float32))


@pytest.mark.parametrize("precision", ["bf16-mixed", "16-mixed"])
def test_master_weights_gradients_and_optimizer_state_stay_float32(precision: str) -> None:
    net, opt = _net(precision), xpnet.Adam(1e-2)
    X, y = _data()
    before = _host(net)
    xpnet.fit(net, X, y, loss=xpnet.SoftmaxCrossEntropyLoss(), optimizer=opt, epochs=2)
    buffer = net.parameter_buffer
    assert {str(p.dtype) for p in net.parameters().values()} == {"torch.float32"}
    assert {str(g.dtype) for g in net.grads.values()} == {"torch.float32"}
    assert {str(s.dtype) for s in opt.state.values()} == {"torch.float32"}
    assert buffer.compute["W1"].dtype == LOW[precision]  # the copy the products use
    assert net.layers[0]._x.dtype == LOW[precision]
    after = _host(net)
    assert all(np.abs(after[k] - before[k]).max() > 1e-4 for k in before)  # it trained
    # the masters keep what the low copy rounds away: float32 values no bf16/f16 holds
    W = after["W1"]
    assert np.any(W != xpnet.to_numpy(buffer.compute["W1"].to(torch.float32)))


def test_a_forced_overflow_skips_exactly_that_step_and_halves_the_scale() -> None:
    net, opt, loss = _net("16-mixed"), xpnet.Adam(1e-2), xpnet.SoftmaxCrossEntropyLoss()
    X, y = _data()
    T = torch.nn.functional.one_hot(torch.asarray(y), 3).to(torch.float32)
    X = torch.asarray(X)
    step(net, X, T, loss, opt)  # a clean step at 2^16: Adam's state exists
    assert net.loss_scaler is not None
    assert net.loss_scaler.state_dict() == {
        "loss_scale": 65536.0,
        "clean_steps": 1,
        "skipped_steps": 0,
    }
    params = _host(net)
    state = {k: np.array(xpnet.to_numpy(v), copy=True) for k, v in opt.state.items()}
    net.loss_scaler = LossScaler(net.parameter_buffer.flat_parameters(), scale=2.0**40)
    step(net, X, T, loss, opt)  # gY * 2^40 is inf in float16
    assert net.loss_scaler.state_dict() == {
        "loss_scale": 2.0**39,
        "clean_steps": 0,
        "skipped_steps": 1,
    }
    for k, v in _host(net).items():
        np.testing.assert_array_equal(v, params[k])
    for k, v in opt.state.items():
        np.testing.assert_array_equal(xpnet.to_numpy(v), state[k])
    assert opt.t == 1  # the skipped step is not counted: Adam's bias corrections stay at t = 1
    net.loss_scaler.scale = net.loss_scaler.scale * 2.0**-30  # back to 2^9: a clean step
    step(net, X, T, loss, opt)
    assert opt.t == 2
    assert net.loss_scaler.state_dict() == {
        "loss_scale": 2.0**9,
        "clean_steps": 1,
        "skipped_steps": 1,
    }
    assert np.abs(_host(net)["W1"] - params["W1"]).max() > 1e-4


def _regression(n: int = 64, poisoned: int | None = None) -> tuple[np.ndarray, np.ndarray]:
    """X, T for an MSE regression; T[poisoned] is 1e6, whose loss gradient times the scale
    overflows float16 in backward (the forward and the float32 loss stay finite)."""
    rng = np.random.default_rng(0)
    X = rng.normal(size=(n, 8)).astype(np.float32)
    T = (0.1 * rng.normal(size=(n, 1))).astype(np.float32)
    if poisoned is not None:
        T[poisoned] = 1e6
    return X, T


def _fp16_regressor(backend: str = "torch", scale: float = 2.0**10) -> Any:
    net = xpnet.MLP([8, 16, 1], hidden="tanh", output="identity", backend=backend, seed=1)
    net.set_precision("16-mixed")
    net.loss_scaler = LossScaler(net.parameter_buffer.flat_parameters(), scale=scale)
    return net


def test_a_skipped_step_keeps_adams_step_count_and_the_next_step_is_the_unskipped_runs() -> None:
    """As torch's GradScaler with Adam: the overflowing step changes neither the parameters,
    nor m and v, nor t; the clean step after it is the one a run without that batch takes."""
    X, T = (torch.asarray(a) for a in _regression(poisoned=16))
    batches = [(X[i : i + 16], T[i : i + 16]) for i in range(0, 48, 16)]  # [1] is poisoned
    loss = xpnet.MSELoss()
    skipping, opt = _fp16_regressor(), xpnet.Adam(1e-2)
    step(skipping, *batches[0], loss, opt)
    before = (_host(skipping), {k: xpnet.to_numpy(v).copy() for k, v in opt.state.items()})
    step(skipping, *batches[1], loss, opt)
    assert skipping.loss_scaler is not None
    assert skipping.loss_scaler.state_dict()["skipped_steps"] == 1
    assert opt.t == 1
    for k, v in _host(skipping).items():
        np.testing.assert_array_equal(v, before[0][k], err_msg=k)
    for k, v in opt.state.items():
        np.testing.assert_array_equal(xpnet.to_numpy(v), before[1][k], err_msg=k)
    step(skipping, *batches[2], loss, opt)
    clean, clean_opt = _fp16_regressor(), xpnet.Adam(1e-2)
    step(clean, *batches[0], loss, clean_opt)
    assert clean.loss_scaler is not None
    clean.loss_scaler.scale = clean.loss_scaler.scale * 0.5  # as the skip halved it
    step(clean, *batches[2], loss, clean_opt)
    assert opt.t == clean_opt.t == 2
    for k, v in _host(clean).items():
        np.testing.assert_array_equal(_host(skipping)[k], v, err_msg=k)
    for k, v in clean_opt.state.items():
        np.testing.assert_array_equal(xpnet.to_numpy(opt.state[k]), xpnet.to_numpy(v), err_msg=k)


@pytest.mark.parametrize("backend", ["jax", "torch"])
def test_compiled_epochs_skip_an_overflowing_step_as_the_eager_step_does(
    backend: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """JAX's jitted epoch, and torch's graphed epoch run uncaptured on the CPU, decide the
    skip on the device: the step count, the scale, the skipped steps and the weights are the
    op-by-op run's, with an overflow inside each epoch."""
    pytest.importorskip(backend)
    if backend == "torch":
        from xpnet.ops.torch import GraphedEpochs

        fast = xpnet.ops.ops_for(xpnet.get_backend("torch").xp)
        monkeypatch.setattr(
            fast, "compile_epoch", lambda step, score, like: GraphedEpochs(step, score, False)
        )
    X, T = _regression(poisoned=20)  # in the second of four batches
    runs = []
    for compiled in (False, True):
        net, opt = _fp16_regressor(backend), xpnet.Adam(1e-2)
        if compiled:  # fit really takes the compiled path
            assert compiled_epochs(net, xpnet.MSELoss(), opt, False) is not None
        hist = xpnet.fit(
            net,
            X,
            T,
            loss="mse",
            optimizer=opt,
            epochs=2,
            batch_size=16,
            shuffle=False,
            compiled=compiled,
        )
        assert opt.t == 6  # 8 steps, 2 skipped
        assert hist["skipped_steps"] == [1, 2]
        assert hist["loss_scale"] == [2.0**9, 2.0**8]
        runs.append((_host(net), opt))
    (eager, opt_e), (fast_run, opt_c) = runs
    for k, v in eager.items():
        np.testing.assert_allclose(fast_run[k], v, rtol=1e-5, atol=1e-6, err_msg=k)
    for k, v in opt_e.state.items():
        np.testing.assert_allclose(
            xpnet.to_numpy(opt_c.state[k]), xpnet.to_numpy(v), rtol=1e-4, atol=1e-7, err_msg=k
        )


def test_a_resumed_run_keeps_the_step_count_across_a_skipped_step(tmp_path: Path) -> None:
    X, T = _regression(poisoned=20)
    options: dict[str, Any] = {"loss": "mse", "batch_size": 16, "shuffle": False}
    whole, opt = _fp16_regressor(), xpnet.Adam(1e-2)
    xpnet.fit(whole, X, T, optimizer=opt, epochs=2, **options)
    first, opt = _fp16_regressor(), xpnet.Adam(1e-2)
    hist = xpnet.fit(first, X, T, optimizer=opt, epochs=1, **options)
    xpnet.save(first, tmp_path, optimizer=opt, epoch=1, history=hist.records)
    ck = xpnet.checkpoint.load_checkpoint(tmp_path, backend="torch")
    assert ck.optimizer is not None and ck.optimizer.t == 3  # 4 steps, 1 skipped
    xpnet.fit(ck.net, X, T, optimizer=ck.optimizer, epochs=2, initial_epoch=1, **options)
    assert ck.optimizer.t == 6
    for k, v in _host(ck.net).items():
        np.testing.assert_array_equal(v, _host(whole)[k], err_msg=k)


def test_the_scale_doubles_after_the_growth_interval_of_clean_steps(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(loss_scaling, "GROWTH_INTERVAL", 3)
    net = _net("16-mixed")
    X, y = _data(n=64)
    hist = xpnet.fit(net, X, y, loss=xpnet.SoftmaxCrossEntropyLoss(), epochs=2, batch_size=16)
    # 4 steps an epoch: doubled after steps 3 and 6, 2 clean steps since
    assert hist["loss_scale"] == [2.0**17, 2.0**18]
    assert hist["skipped_steps"] == [0, 0]
    assert net.loss_scaler is not None and net.loss_scaler.state_dict()["clean_steps"] == 2


def test_bf16_training_on_digits_is_within_1_5_points_of_float32() -> None:
    train, test = train_test_split(load_digits(), seed=0)
    X, Xt = (d.X.astype(np.float32) for d in (train, test))
    accuracy = {}
    for precision in ("32", "bf16-mixed"):
        net = xpnet.MLP([64, 64, 10], hidden="relu", output="identity", backend="torch")
        loss = xpnet.SoftmaxCrossEntropyLoss()
        xpnet.fit(
            net,
            X,
            train.y,
            loss=loss,
            optimizer=xpnet.Adam(1e-2),
            epochs=10,
            batch_size=64,
            precision=precision,
        )
        accuracy[precision] = xpnet.evaluate(net, Xt, test.y, loss=loss)["accuracy"]
    assert accuracy["32"] > 0.95
    assert abs(accuracy["bf16-mixed"] - accuracy["32"]) <= 0.015


@pytest.mark.parametrize("precision", ["bf16-mixed", "16-mixed"])
def test_a_resumed_mixed_run_equals_an_uninterrupted_one(
    precision: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(loss_scaling, "GROWTH_INTERVAL", 5)  # the scale moves mid-run
    X, y = _data()
    loss = xpnet.SoftmaxCrossEntropyLoss()
    whole, opt = _net(precision), xpnet.Adam(1e-2)
    want = xpnet.fit(whole, X, y, loss=loss, optimizer=opt, epochs=4, batch_size=16)
    first, opt = _net(precision), xpnet.Adam(1e-2)
    hist = xpnet.fit(first, X, y, loss=loss, optimizer=opt, epochs=2, batch_size=16)
    xpnet.save(first, tmp_path, optimizer=opt, epoch=2, history=hist.records)
    ck = xpnet.checkpoint.load_checkpoint(tmp_path, backend="torch")
    assert ck.net.precision.name == precision
    assert ck.optimizer is not None
    got = xpnet.fit(
        ck.net,
        X,
        y,
        loss=loss,
        optimizer=ck.optimizer,
        epochs=4,
        batch_size=16,
        initial_epoch=2,
        precision=precision,
    )
    for k, v in _host(ck.net).items():
        np.testing.assert_array_equal(v, _host(whole)[k], err_msg=k)
    columns = ["loss", "loss_scale", "skipped_steps"] if precision == "16-mixed" else ["loss"]
    for column in columns:
        assert got[column] == want[column][2:]
    if precision == "16-mixed":  # the scale grew (every 5 clean steps) and fell (overflow)
        assert want["loss_scale"] == [2.0**16, 2.0**17, 2.0**18, 2.0**18]
        assert want["skipped_steps"] == [0, 0, 0, 1]


def test_predict_and_evaluate_follow_the_policy_and_load_keeps_float32_masters(
    tmp_path: Path,
) -> None:
    net = _net("bf16-mixed")
    X, _ = _data()
    low = xpnet.to_numpy(xpnet.predict(net, X))
    net.set_precision("32")
    full = xpnet.to_numpy(xpnet.predict(net, X))
    assert np.abs(low - full).max() > 1e-4  # bfloat16 products round at 2^-8
    np.testing.assert_allclose(low, full, atol=0.05)
    net.set_precision("bf16-mixed")
    xpnet.save(net, tmp_path)
    loaded = xpnet.load(tmp_path, backend="torch")
    assert loaded.precision.name == "bf16-mixed"
    assert loaded.parameters()["W1"].dtype == torch.float32
    np.testing.assert_array_equal(xpnet.to_numpy(xpnet.predict(loaded, X)), low)
    on_numpy = xpnet.load(tmp_path, backend="numpy")  # no fast bf16 there: the float32 masters
    assert on_numpy.precision.name == "32"
    np.testing.assert_allclose(xpnet.predict(on_numpy, X), full, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize(
    ("backend", "dtype", "precision", "message"),
    [
        ("numpy", "float32", "bf16-mixed", "backend 'numpy' lacks"),
        ("array_api_strict", "float32", "16-mixed", "backend 'array_api_strict' lacks"),
        ("torch", "float64", "bf16-mixed", "keeps float32 master weights"),
        ("torch", "float32", "bf16", "precision must be one of '32', 'bf16-mixed', '16-mixed'"),
    ],
)
def test_a_policy_the_net_cannot_run_is_refused(
    backend: str, dtype: str, precision: str, message: str
) -> None:
    pytest.importorskip(backend)
    net = xpnet.MLP([4, 3], backend=backend, dtype=dtype)
    X, y = _data(n_in=4)
    with pytest.raises(ValueError, match=message):
        xpnet.fit(net, X.astype(dtype), y, epochs=1, precision=precision)
    assert net.precision.name == "32"


def test_bf16_on_jax_compiles_the_epoch_as_the_eager_step_computes_it() -> None:
    pytest.importorskip("jax")
    X, y = _data()
    weights = []
    for compiled in (True, False):
        net = xpnet.MLP([8, 16, 3], hidden="tanh", output="identity", backend="jax", seed=1)
        xpnet.fit(
            net,
            X,
            y,
            loss=xpnet.SoftmaxCrossEntropyLoss(),
            epochs=2,
            batch_size=16,
            compiled=compiled,
            precision="bf16-mixed",
        )
        assert net.parameters()["W1"].dtype.name == "float32"
        weights.append(_host(net)["W1"])
    full = xpnet.MLP([8, 16, 3], hidden="tanh", output="identity", backend="jax", seed=1)
    xpnet.fit(full, X, y, loss=xpnet.SoftmaxCrossEntropyLoss(), epochs=2, batch_size=16)
    np.testing.assert_allclose(weights[0], weights[1], atol=2e-2)  # bf16 rounding, fused
    assert np.abs(weights[0] - _host(full)["W1"]).max() > 1e-4  # not the float32 run


def test_the_cli_saves_precision_with_the_run_and_resume_keeps_it(
    capsys: pytest.CaptureFixture[str], small: Path, tmp_path: Path
) -> None:
    out = tmp_path / "run"
    status, _, err = run(
        capsys,
        "train",
        "--data",
        small,
        "--precision",
        "16-mixed",
        "--backend",
        "torch",
        "--epochs",
        "1",
        "--out",
        out,
        "--quiet",
    )
    assert status == 0, err
    ck = xpnet.checkpoint.load_checkpoint(out, backend="torch")
    assert ck.metadata["options"]["precision"] == "16-mixed"
    assert ck.net.precision.name == "16-mixed"
    status, _, err = run(capsys, "train", "--resume", out, "--epochs", "2", "--quiet")
    assert status == 0, err
    history = read_history(out / "history.csv", 2)
    assert [(r["loss_scale"], r["skipped_steps"]) for r in history] == [(65536.0, 0)] * 2
    assert xpnet.load(out, backend="torch").precision.name == "16-mixed"
    status, _, err = run(
        capsys,
        "train",
        "--data",
        small,
        "--precision",
        "bf16-mixed",
        "--backend",
        "numpy",
        "--out",
        tmp_path / "no",
    )
    assert status == 2
    assert "--precision bf16-mixed: precision 'bf16-mixed' needs fast bfloat16" in err
