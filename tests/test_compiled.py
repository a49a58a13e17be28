"""Compiled epochs: on JAX an epoch's full batches run as one jax.jit (a lax.scan of the very
same layers, loss and optimizer rule), and give the op-by-op path's numbers; classes that do
not declare themselves traceable run op by op."""

from __future__ import annotations

import numpy as np
import pytest

import xpnet
from xpnet.compiled import compiled_epochs

jax = pytest.importorskip("jax", reason="jax not installed (pip install 'xpnet[jax]')")


def _x64(dtype):
    """float32 as JAX's users get it; float64 in x64 mode, switched on for the test."""
    before = jax.config.jax_enable_x64
    jax.config.update("jax_enable_x64", dtype == "float64")
    return before


def _data(n=203, seed=0):  # 203 rows: six batches of 32 and a short one of 11
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, 8))
    return X, (X[:, 0] + X[:, 1] ** 2 > 1).astype(np.int64) + (X[:, 2] > 0.5)


OPTIMIZERS = {
    "adam-clip-decay": lambda: xpnet.Adam(0.01, clip_norm=1.0, weight_decay=1e-3),
    "adamw-cosine": lambda: xpnet.AdamW(
        0.01, schedule=xpnet.optim.Cosine(epochs=3, warmup_epochs=1)
    ),
    "momentum": lambda: xpnet.Momentum(0.05),
}


CASES = [
    ("adam-clip-decay", {}, "float32"),
    ("adam-clip-decay", {}, "float64"),
    ("adam-clip-decay", {"norm": "layer", "residual": True}, "float32"),
    ("adamw-cosine", {}, "float32"),
    ("momentum", {"norm": "layer"}, "float64"),
]


@pytest.mark.parametrize(("optimizer_name", "blocks", "dtype"), CASES)
def test_a_compiled_jax_fit_equals_the_op_by_op_one(optimizer_name, blocks, dtype):
    before = _x64(dtype)
    try:
        _compare_compiled_with_eager(OPTIMIZERS[optimizer_name], blocks, dtype)
    finally:
        jax.config.update("jax_enable_x64", before)


def _compare_compiled_with_eager(make_optimizer, blocks, dtype):
    X, y = _data()
    runs = []
    for compiled in (False, True):
        net = xpnet.MLP(
            [8, 16, 16, 3], "relu", "identity", backend="jax", dtype=dtype, seed=1, **blocks
        )
        optimizer = make_optimizer()
        assert compiled_epochs(net, xpnet.SoftmaxCrossEntropyLoss(), optimizer, True) is not None
        history = xpnet.fit(
            net,
            X,
            y,
            loss="softmax_ce",
            optimizer=optimizer,
            epochs=3,
            batch_size=32,
            validation=(X[:50], y[:50]),
            compiled=compiled,
        )
        runs.append((net, optimizer, history))
    (eager, opt_e, hist_e), (compiled, opt_c, hist_c) = runs
    assert opt_c.t == opt_e.t == 3 * 7
    tol = 1e-6 if dtype == "float32" else 1e-12
    for name, value in eager.parameters().items():
        want = xpnet.to_numpy(value)
        got = xpnet.to_numpy(compiled.parameters()[name])
        assert np.abs(got - want).max() <= tol * np.abs(want).max(), name
    for key in ("loss", "accuracy", "val_loss", "lr"):
        np.testing.assert_allclose(hist_c[key], hist_e[key], rtol=10 * tol)
    for key, value in opt_e.state_dict().items():
        if key != "t":
            np.testing.assert_allclose(
                xpnet.to_numpy(opt_c.state_dict()[key]),
                xpnet.to_numpy(value),
                rtol=1e-4 if dtype == "float32" else 1e-9,
                atol=1e-7,
            )
    # the compiled net is an ordinary net afterwards: eager steps and checkpoints work
    xpnet.fit(
        compiled,
        X,
        y,
        loss="softmax_ce",
        optimizer=opt_c,
        epochs=4,
        initial_epoch=3,
        batch_size=32,
        compiled=False,
    )


def test_what_does_not_declare_itself_traceable_runs_op_by_op():
    loss = xpnet.SoftmaxCrossEntropyLoss()

    class Halved(xpnet.SGD, name="test-compiled-halved"):
        def update_rule(self, P, G, state, lr, xp, fns):
            return fns.sgd_update(P, G, lr=lr / 2, xp=xp)

    try:
        jax_net = xpnet.MLP([3, 4, 2], backend="jax")
        assert compiled_epochs(jax_net, loss, xpnet.Adam(), True) is not None
        assert compiled_epochs(jax_net, loss, Halved(0.1), True) is None
        for middle in (xpnet.Dropout(0.5), xpnet.BatchNorm(4)):
            net = xpnet.Sequential([xpnet.Linear(3, 4), middle, xpnet.Linear(4, 2)], backend="jax")
            assert compiled_epochs(net, loss, xpnet.Adam(), True) is None
        assert compiled_epochs(xpnet.MLP([3, 4, 2]), loss, xpnet.Adam(), True) is None  # numpy
    finally:
        xpnet.optim.OPTIMIZERS.pop("test-compiled-halved")


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("make_optimizer", OPTIMIZERS.values(), ids=OPTIMIZERS)
def test_torch_graphed_epochs_run_eagerly_on_the_cpu_give_the_eager_numbers(dtype, make_optimizer):
    """The CUDA-graph path's steps (fixed tensors refilled per step, the optimizer's numbers as
    0-d tensors) run without capture on the CPU: the weights the op-by-op fit gives, to the
    rounding of tensor against Python-float scalars."""
    torch = pytest.importorskip("torch")
    from xpnet.compiled import CompiledEpochs
    from xpnet.ops.torch import GraphedEpochs, compile_epoch
    from xpnet.scoring import Tally

    X, y = _data()
    loss = xpnet.SoftmaxCrossEntropyLoss()
    nets, optimizers = [], []
    for _ in range(2):
        nets.append(xpnet.MLP([8, 16, 3], "relu", "identity", backend="torch", dtype=dtype))
        optimizers.append(make_optimizer())
    eager, graphed = nets
    xpnet.fit(
        eager, X, y, loss=loss, optimizer=optimizers[0], epochs=2, batch_size=32, shuffle=False
    )
    assert compile_epoch(None, None, torch.zeros(1)) is None  # no graphs on the CPU

    def uncaptured(step, score, like):
        return GraphedEpochs(step, score, capture=False)

    runner = CompiledEpochs(graphed, loss, optimizers[1], uncaptured, classify=True)
    Xd, Td = xpnet.asarray(X, like=graphed), xpnet.asarray(np.eye(3)[y], like=graphed)
    with xpnet.sequential.in_mode(graphed, True), loss.checked_targets(Td):
        for epoch in range(2):
            optimizers[1].begin_epoch(epoch)
            tally = Tally(loss, True, torch)
            assert runner.run(Xd, Td, 32, tally) == 192 and tally.n == 192
            xpnet.train.step(graphed, Xd[192:], Td[192:], loss, optimizers[1])
            optimizers[1].end_epoch({"loss": 1.0})
    assert optimizers[1].t == optimizers[0].t == 14
    tol = 1e-5 if dtype == "float32" else 1e-12
    for name, value in eager.parameters().items():
        want = xpnet.to_numpy(value)
        got = xpnet.to_numpy(graphed.parameters()[name])
        assert np.abs(got - want).max() <= tol * np.abs(want).max(), name
