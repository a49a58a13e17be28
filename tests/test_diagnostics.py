"""Per-layer gradient norms, checked against a hand-written NumPy backprop, and the vanishing
gradient of deep sigmoid nets measured against tanh and relu, and against its cures."""

from __future__ import annotations

import itertools
import re

import numpy as np
import pytest

import xpnet
from xpnet.data import load_digits, one_hot, train_test_split
from xpnet.diagnostics import (
    NetKind,
    accuracy_study,
    first_over_last,
    layer_gradient_norms,
    vanishing_study,
)


def test_norms_match_a_hand_written_backprop(case):
    """One sigmoid hidden layer, linear output, softmax cross-entropy, derived by hand."""
    rng = np.random.default_rng(1)
    X = rng.normal(size=(6, 4))
    T = one_hot(rng.integers(0, 3, 6), 3)
    net = xpnet.MLP(
        [4, 5, 3],
        output="identity",
        backend=case.name,
        device=case.device,
        dtype=case.dtype,
        seed=2,
    )
    W1, b1, W2, b2 = (
        xpnet.to_numpy(net.state_dict()[k]).astype(np.float64) for k in ("W1", "b1", "W2", "b2")
    )
    H = 1.0 / (1.0 + np.exp(-(X @ W1 + b1)))
    Z = H @ W2 + b2
    P = np.exp(Z - Z.max(axis=1, keepdims=True))
    P /= P.sum(axis=1, keepdims=True)
    dZ = (P - T) / len(X)
    dW2 = H.T @ dZ
    dW1 = X.T @ ((dZ @ W2.T) * H * (1 - H))
    expected = [np.linalg.norm(dW1), np.linalg.norm(dW2)]

    norms = layer_gradient_norms(net, X, T, xpnet.SoftmaxCrossEntropyLoss())
    rtol = 1e-4 if case.dtype == "float32" else 1e-12
    np.testing.assert_allclose(norms, expected, rtol=rtol)


def test_norms_refuse_arrays_of_another_library():
    """As fit does: an array of another library is not copied behind the caller's back."""
    strict = pytest.importorskip("array_api_strict")
    net = xpnet.MLP([2, 3, 2], backend="numpy")
    X, T = strict.asarray([[0.0, 1.0]]), np.array([[1.0, 0.0]])
    with pytest.raises(xpnet.BackendError, match="X is a array_api_strict array but the net runs"):
        layer_gradient_norms(net, X, T, xpnet.SSELoss())


def test_study_moves_the_data_once(monkeypatch):
    X, T = np.random.default_rng(0).random((7, 3)), np.eye(2)[[0, 1, 0, 1, 1, 0, 0]]
    moved = []
    from_host = xpnet.Backend.from_host
    monkeypatch.setattr(
        xpnet.Backend, "from_host", lambda self, a: moved.append(a.shape) or from_host(self, a)
    )
    vanishing_study([1, 2, 3], ["sigmoid", "relu"], X, T, width=4)
    assert moved.count(X.shape) == 1  # not once per net (6 nets)


@pytest.fixture(scope="module")
def study():
    data = load_digits()
    rows = np.random.default_rng(0).permutation(len(data))[:256]
    X, T = data.X[rows], one_hot(data.y[rows], data.n_classes)
    return vanishing_study(range(1, 11), ["sigmoid", "tanh", "relu"], X, T, width=32)


def test_study_format(study):
    assert list(study) == ["sigmoid", "tanh", "relu"]
    for norms in study.values():
        assert list(norms) == [str(d) for d in range(1, 11)]
        assert [len(v) for v in norms.values()] == list(range(1, 11))  # one norm per layer
        assert all(n > 0 for v in norms.values() for n in v)
    # depth 1 has no hidden layer, so sigmoid and tanh (same init) build the very same net
    assert study["sigmoid"]["1"] == study["tanh"]["1"]


def test_sigmoid_gradients_vanish_and_tanh_relu_keep_theirs(study):
    ratio = {a: study[a]["10"][0] / study[a]["1"][0] for a in study}
    print("layer-1 gradient norm, depth 10 / depth 1:", {a: f"{r:.3g}" for a, r in ratio.items()})
    assert ratio["sigmoid"] < 1e-2  # measured: about 5e-6
    assert ratio["tanh"] > 0.1 and ratio["relu"] > 0.1  # measured: about 0.6 and 1.0
    # each sigmoid layer multiplies the error by at most 1/4, times the weights; on the way
    # down a depth-10 sigmoid net, every layer's gradient is smaller than the one above it
    deep = study["sigmoid"]["10"]
    assert all(lower < upper for lower, upper in itertools.pairwise(deep))


def test_depth_must_be_positive():
    with pytest.raises(ValueError, match="depth must be at least 1"):
        vanishing_study([0], ["sigmoid"], np.zeros((2, 3)), np.eye(2))


# -- the cures (issue 22) --------------------------------------------------------------------
def test_a_net_kind_is_an_activation_then_its_cures():
    kind = NetKind.parse("sigmoid+layer+residual")
    assert kind == NetKind("sigmoid", "layer", True) and kind.name == "sigmoid+layer+residual"
    assert (
        NetKind.parse("relu") == NetKind("relu") and NetKind("tanh", "batch").name == "tanh+batch"
    )
    for bad in ("swish", "sigmoid+group", "sigmoid+residual+layer", "sigmoid+layer+batch"):
        with pytest.raises(ValueError, match=f"unknown net '{re.escape(bad)}'"):
            NetKind.parse(bad)


def test_the_study_measures_cured_nets_as_layer_gradient_norms_does():
    X, T = np.random.default_rng(0).random((9, 3)), np.eye(2)[[0, 1, 0, 1, 1, 0, 0, 1, 1]]
    study = vanishing_study([4], ["sigmoid+batch+residual"], X, T, width=5, seed=3)
    blocks = {"norm": "batch", "residual": True}
    net = xpnet.MLP([3, 5, 5, 5, 2], "sigmoid", "identity", dtype="float64", seed=3, **blocks)
    expected = layer_gradient_norms(net, X, T, xpnet.SoftmaxCrossEntropyLoss())
    assert study == {"sigmoid+batch+residual": {"4": expected}}
    assert first_over_last(expected) == expected[0] / expected[-1]
    assert np.isnan(first_over_last([0.0, 0.0]))


def test_what_the_gradients_predict_the_accuracy_shows():
    """Depth 8, 3 epochs: the plain sigmoid net stays near chance, the cured one learns."""
    train, test = train_test_split(load_digits(), 0.2, 0)
    nets = ["sigmoid", "sigmoid+layer+residual"]
    accuracy = accuracy_study(nets, 8, (train.X, train.y), (test.X, test.y), 10, epochs=3)
    assert [len(a) for a in accuracy.values()] == [3, 3]
    print({net: per_epoch[-1] for net, per_epoch in accuracy.items()})
    assert accuracy["sigmoid"][-1] < 0.2 and accuracy["sigmoid+layer+residual"][-1] > 0.6
