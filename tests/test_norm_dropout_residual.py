"""Dropout, LayerNorm, BatchNorm and Residual: forward values and input and parameter gradients
against PyTorch autograd in float64 on every backend, gradcheck, modes, reproducible masks,
running statistics in checkpoints, and the refusals."""

from __future__ import annotations

import numpy as np
import pytest

import xpnet
from xpnet.distributed import SingleProcess

RNG = np.random.default_rng(7)
X_HOST = RNG.normal(2.0, 3.0, size=(6, 5))
G_HOST = RNG.normal(size=(6, 5))
GAMMA, BETA = RNG.normal(1.0, 0.3, size=5), RNG.normal(0.0, 0.5, size=5)


def _host(a):
    return np.asarray(xpnet.to_numpy(a), dtype=np.float64)


def _torch_reference(layer_name):
    """Outputs, dL/dx, dL/dgamma and dL/dbeta of torch's own layer (train mode) for the loss
    sum(y * G)."""
    torch = pytest.importorskip("torch")
    module = {
        "layer_norm": torch.nn.LayerNorm(5, eps=1e-5),
        "batch_norm": torch.nn.BatchNorm1d(5, eps=1e-5, momentum=0.1),
    }[layer_name].double()
    with torch.no_grad():
        module.weight.copy_(torch.tensor(GAMMA))
        module.bias.copy_(torch.tensor(BETA))
    x = torch.tensor(X_HOST, requires_grad=True)
    y = module(x)
    (y * torch.tensor(G_HOST)).sum().backward()
    out = [y.detach().numpy(), x.grad.numpy(), module.weight.grad.numpy(), module.bias.grad]
    stats = {}
    if layer_name == "batch_norm":
        stats = {"running_mean": module.running_mean.numpy(), "running_var": module.running_var}
    return [np.asarray(a) for a in out], {k: np.asarray(v) for k, v in stats.items()}


@pytest.mark.float64
@pytest.mark.parametrize("layer_name", ["layer_norm", "batch_norm"])
def test_normalization_equals_torch_autograd(backend, layer_name):
    (y_want, gx_want, ggamma_want, gbeta_want), stats_want = _torch_reference(layer_name)
    layer = {"layer_norm": xpnet.LayerNorm(5), "batch_norm": xpnet.BatchNorm(5)}[layer_name]
    net = xpnet.Sequential([layer], backend=backend, dtype="float64")
    layer.set_parameter("gamma", xpnet.asarray(GAMMA, like=net))
    layer.set_parameter("beta", xpnet.asarray(BETA, like=net))
    y = net.forward(xpnet.asarray(X_HOST, like=net))
    gx = net.backward(xpnet.asarray(G_HOST, like=net))
    np.testing.assert_allclose(_host(y), y_want, rtol=1e-9, atol=1e-12)
    np.testing.assert_allclose(_host(gx), gx_want, rtol=1e-9, atol=1e-12)
    np.testing.assert_allclose(_host(net.grads["gamma1"]), ggamma_want, rtol=1e-9)
    np.testing.assert_allclose(_host(net.grads["beta1"]), gbeta_want, rtol=1e-9)
    for key, want in stats_want.items():
        np.testing.assert_allclose(_host(net.statistics()[f"{key}1"]), want, rtol=1e-12)


@pytest.mark.float64
def test_batch_norm_in_evaluation_uses_the_running_statistics(backend):
    net = xpnet.Sequential(
        [xpnet.Linear(5, 5), xpnet.BatchNorm(5)], backend=backend, dtype="float64"
    )
    X = xpnet.asarray(X_HOST, like=net)
    for _ in range(3):
        net.forward(X)  # training: the running statistics move
    stats = {k: _host(v) for k, v in net.statistics().items()}
    net.eval()
    h = _host(X) @ _host(net.parameters()["W1"]) + _host(net.parameters()["b1"])
    want = (h - stats["running_mean2"]) / np.sqrt(stats["running_var2"] + 1e-5)
    np.testing.assert_allclose(_host(net.forward(X)), want, rtol=1e-10)
    after = {k: _host(v) for k, v in net.statistics().items()}
    assert all(np.array_equal(after[k], stats[k]) for k in stats)  # evaluation leaves them


@pytest.mark.float64
@pytest.mark.parametrize(
    "middle",
    [
        lambda: xpnet.LayerNorm(4),
        lambda: xpnet.BatchNorm(4),
        lambda: xpnet.Residual([xpnet.Linear(4, 4), xpnet.Tanh(), xpnet.Linear(4, 4)]),
    ],
    ids=["layer_norm", "batch_norm", "residual"],
)
def test_gradcheck_passes_through_each_layer(backend, middle):
    # no bias before the norm layers: batch norm cancels it, so its gradient is 0 exactly
    net = xpnet.Sequential(
        [xpnet.Linear(3, 4, bias=False), middle(), xpnet.Sigmoid(), xpnet.Linear(4, 2)],
        backend=backend,
        dtype="float64",
        seed=2,
    )
    X = xpnet.asarray(RNG.normal(size=(5, 3)), like=net)
    T = xpnet.asarray(np.eye(2)[[0, 1, 1, 0, 1]], like=net)
    errors = xpnet.gradcheck(net, xpnet.SSELoss(), X, T)
    assert len(errors) == len(net.parameters()) + 1
    assert max(errors.values()) < 1e-6


def test_residual_adds_the_skip_path_forward_and_backward():
    inner = [xpnet.Linear(3, 3), xpnet.Tanh()]
    net = xpnet.Sequential([xpnet.Residual(inner)], dtype="float64", seed=1)
    W, b = _host(net.parameters()["W1"]), _host(net.parameters()["b1"])
    X = RNG.normal(size=(4, 3))
    np.testing.assert_allclose(net.forward(X), X + np.tanh(X @ W + b), rtol=1e-14)
    G = RNG.normal(size=(4, 3))
    want = G + (G * (1 - np.tanh(X @ W + b) ** 2)) @ W.T
    np.testing.assert_allclose(net.backward(G), want, rtol=1e-13)
    with pytest.raises(ValueError, match=r"must keep the width: its layers take 3 .* give 2"):
        xpnet.Residual([xpnet.Linear(3, 2)])


def test_dropout_drops_p_scales_the_rest_and_backward_uses_the_same_mask(backend, dtype):
    net = xpnet.Sequential(
        [xpnet.Linear(50, 400), xpnet.Dropout(0.3)], backend=backend, dtype=dtype
    )
    X = xpnet.asarray(np.ones((100, 50)), like=net)
    Y = _host(net.forward(X))
    H = _host(net.layers[0].forward(X))  # what dropout saw
    kept = Y != 0
    assert abs(1 - kept.mean() - 0.3) < 0.01  # 40,000 draws: 5 sigma is 0.012
    np.testing.assert_allclose(Y[kept], H[kept] / 0.7, rtol=1e-5)
    G = _host(net.layers[1].backward(xpnet.asarray(np.ones((100, 400)), like=net)))
    np.testing.assert_array_equal(G != 0, kept)
    np.testing.assert_allclose(G[kept], 1 / 0.7, rtol=1e-6)
    net.eval()
    np.testing.assert_array_equal(_host(net.forward(X)), H)  # evaluation: the identity


def test_dropout_runs_are_reproducible_and_a_resume_draws_the_same_masks(tmp_path):
    X, y = RNG.normal(size=(64, 6)), RNG.integers(0, 3, 64)

    def new():
        layers = [xpnet.Linear(6, 16), xpnet.ReLU(), xpnet.Dropout(0.5), xpnet.Linear(16, 3)]
        return xpnet.Sequential(layers, seed=3), xpnet.Adam(0.01)

    def train(net, optimizer, epochs, initial=0):
        xpnet.fit(
            net,
            X,
            y,
            loss="softmax_ce",
            optimizer=optimizer,
            epochs=epochs,
            initial_epoch=initial,
            batch_size=16,
            seed=5,
        )

    a, opt_a = new()
    train(a, opt_a, 4)
    b, opt_b = new()
    train(b, opt_b, 4)
    for name, value in a.parameters().items():
        np.testing.assert_array_equal(value, b.parameters()[name])  # one seed, one run
    c, opt_c = new()
    train(c, opt_c, 2)
    xpnet.save(c, tmp_path / "run", optimizer=opt_c, epoch=2)
    ck = xpnet.load_checkpoint(tmp_path / "run", backend="numpy")
    train(ck.net, ck.optimizer, 4, initial=2)
    for name, value in a.parameters().items():
        np.testing.assert_array_equal(value, ck.net.parameters()[name])
    no_dropout, opt = (
        xpnet.Sequential(
            [xpnet.Linear(6, 16), xpnet.ReLU(), xpnet.Dropout(0.0), xpnet.Linear(16, 3)], seed=3
        ),
        xpnet.Adam(0.01),
    )
    train(no_dropout, opt, 4)
    assert not np.array_equal(no_dropout.parameters()["W1"], a.parameters()["W1"])


def test_every_new_layer_and_the_running_statistics_survive_save_and_load(tmp_path):
    layers = [
        xpnet.Linear(4, 6),
        xpnet.BatchNorm(6, momentum=0.2),
        xpnet.ReLU(),
        xpnet.Dropout(0.25),
        xpnet.Residual([xpnet.LayerNorm(6, eps=1e-3), xpnet.Linear(6, 6), xpnet.Tanh()]),
        xpnet.Linear(6, 2),
    ]
    net = xpnet.Sequential(layers, dtype="float64", seed=4)
    assert list(net.parameters()) == [
        "W1",
        "b1",
        "gamma2",
        "beta2",
        "gamma3",
        "beta3",
        "W4",
        "b4",
        "W5",
        "b5",
    ]
    assert list(net.statistics()) == ["running_mean2", "running_var2"]
    X = RNG.normal(size=(10, 4))
    xpnet.fit(net, X, RNG.integers(0, 2, 10), loss="softmax_ce", optimizer="adam", epochs=3)
    xpnet.save(net, tmp_path / "net.safetensors")
    back = xpnet.load(tmp_path / "net.safetensors", backend="numpy")
    assert back.config() == net.config()
    for name, value in net.state_dict().items():
        np.testing.assert_array_equal(back.state_dict()[name], value)
    np.testing.assert_array_equal(xpnet.predict(back, X), xpnet.predict(net, X))


def test_bad_layer_arguments_and_batch_norm_across_processes_are_refused():
    with pytest.raises(ValueError, match=r"dropout p must be a probability in \[0, 1\), got 1"):
        xpnet.Dropout(1)
    with pytest.raises(ValueError, match="momentum must be a number in"):
        xpnet.BatchNorm(4, momentum=0)
    with pytest.raises(ValueError, match="eps must be a positive number"):
        xpnet.LayerNorm(4, eps=-1)
    net = xpnet.Sequential([xpnet.Linear(3, 4), xpnet.BatchNorm(4)])
    with pytest.raises(ValueError, match="at least 2 samples per batch"):
        net.forward(np.ones((1, 3), dtype=np.float32))

    class TwoProcesses(SingleProcess):
        size = 2

    with pytest.raises(ValueError, match="use LayerNorm instead of BatchNorm"):
        xpnet.fit(net, np.ones((4, 3)), np.ones((4, 4)), comm=TwoProcesses())
