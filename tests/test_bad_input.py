"""Bad arguments to the library get a clear error that names the argument and what to do;
none is silently accepted (issue 8's library cases, then hypothesis over random ones)."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import xpnet


@pytest.mark.parametrize(
    ("sizes", "message"),
    [
        ([2.5, 3, 1], r"sizes must be whole numbers, got 2\.5"),
        ([True, 4, 1], r"sizes must be whole numbers, got True"),
        ("2,3,1", r"sizes must be a list of layer widths such as \[64, 32, 10\], got '2,3,1'"),
        ([3], r"at least an input and an output width"),
        ([3, 0, 1], r"all >= 1; got \[3, 0, 1\]"),
        (None, r"sizes must be a list of layer widths"),
    ],
)
def test_mlp_refuses_bad_sizes(sizes, message):
    with pytest.raises(ValueError, match=message):
        xpnet.MLP(sizes)


@pytest.mark.float64
def test_mlp_accepts_whole_numbers_of_any_kind_and_dtype_objects(backend):
    net = xpnet.MLP((np.int64(3), 4, np.uint8(2)), backend=backend, dtype=backend.xp.float64)
    assert net.sizes == [3, 4, 2] and all(type(n) is int for n in net.sizes)
    assert net.dtype_name == "float64" and net.dtype == backend.xp.float64
    assert xpnet.MLP([3, 2], dtype=np.float32).dtype_name == "float32"
    assert xpnet.MLP([3, 2], dtype=np.dtype("float64")).dtype_name == "float64"
    with pytest.raises(xpnet.BackendError, match=r"unsupported dtype.*'float32' or 'float64'"):
        xpnet.MLP([3, 2], dtype=np.int32)
    with pytest.raises(ValueError, match=r"seed must be an integer >= 0, got -1"):
        xpnet.MLP([3, 2], seed=-1)


def test_backward_with_the_wrong_gradient_says_so():
    net = xpnet.MLP([3, 4, 2])
    with pytest.raises(RuntimeError, match=r"backward called before forward"):
        net.backward(np.ones((5, 2), dtype=np.float32))
    net.forward(np.ones((5, 3), dtype=np.float32))
    with pytest.raises(ValueError, match=r"gY has shape \(5, 3\) but the last forward returned"):
        net.backward(np.ones((5, 3), dtype=np.float32))
    with pytest.raises(xpnet.BackendError, match=r"gY is a list, not an array"):
        net.backward([[1.0, 2.0]] * 5)
    net.backward(np.ones((5, 2), dtype=np.float32))  # the right one still works


def test_load_state_dict_takes_nested_lists_and_names_their_shape():
    net = xpnet.MLP([2, 1], dtype="float64")
    net.load_state_dict({"W1": [[1.0], [2.0]], "b1": [0.5]})
    np.testing.assert_array_equal(net.parameters()["W1"], [[1.0], [2.0]])
    with pytest.raises(ValueError, match=r"state_dict\['W1'\] has shape \(1, 2\) but the net"):
        net.load_state_dict({"W1": [[1.0, 2.0]], "b1": [0.5]})


def test_fit_takes_loss_and_optimizer_names_and_checks_its_arguments():
    rng = np.random.default_rng(0)
    X, T = rng.normal(size=(8, 3)), rng.random((8, 1))
    by_name = xpnet.MLP([3, 1], dtype="float64")
    xpnet.fit(by_name, X, T, loss="mse", optimizer="adam", epochs=2)
    by_object = xpnet.MLP([3, 1], dtype="float64")
    xpnet.fit(by_object, X, T, loss=xpnet.MSELoss(), optimizer=xpnet.Adam(), epochs=2)
    for k, v in by_name.parameters().items():
        np.testing.assert_array_equal(v, by_object.parameters()[k])
    net = xpnet.MLP([3, 1], dtype="float64")
    cases = [
        ({"loss": "l2"}, r"loss must be an xpnet Loss or one of 'sse', 'mse'"),
        ({"optimizer": "lbfgs"}, r"optimizer must be an xpnet Optimizer or one of .*'sgd'"),
        ({"validation": (X,)}, r"validation must be a pair \(X_val, T_val\), got 1 items"),
        ({"validation": X}, r"validation must be a pair"),
        ({"batch_size": "32"}, r"batch_size must be an integer >= 1, got '32'"),
        ({"epochs": 2.5}, r"epochs must be an integer >= 0, got 2\.5"),
        ({"seed": -3}, r"seed must be an integer >= 0, got -3"),
    ]
    for kwargs, message in cases:
        with pytest.raises(ValueError, match=message):
            xpnet.fit(net, X, T, **kwargs)


# -- random bad arguments -----------------------------------------------------------------------
_junk = st.one_of(
    st.none(),
    st.booleans(),
    st.text(max_size=5),
    st.floats(allow_nan=True, allow_infinity=True),
    st.integers(-5, 0),
    st.lists(st.integers(-2, 2), max_size=3),
)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    which=st.sampled_from(["lr", "beta1", "beta2", "eps", "momentum", "weight_decay"]),
    value=_junk,
)
def test_random_bad_hyperparameters_name_the_argument(which, value):
    """Every value an optimizer accepts is a valid number for it; every other one raises a
    ValueError naming the argument."""
    make = {
        "momentum": lambda v: xpnet.SGD(lr=0.1, momentum=v),
        "weight_decay": lambda v: xpnet.SGD(lr=0.1, weight_decay=v),
    }.get(which, lambda v: xpnet.Adam(**{which: v}))
    try:
        opt = make(value)
    except ValueError as err:
        assert ("learning rate" if which == "lr" else which) in str(err)
        return
    got = getattr(opt, which)
    assert isinstance(got, float) and np.isfinite(got) and got >= 0
    if which in ("beta1", "beta2", "momentum"):
        assert got < 1
    if which in ("lr", "eps"):
        assert got > 0


@settings(max_examples=60, deadline=None)
@given(sizes=st.one_of(_junk, st.lists(_junk, min_size=1, max_size=4)))
def test_random_bad_sizes_are_refused_by_name(sizes):
    try:
        net = xpnet.MLP(sizes)
    except ValueError as err:
        assert "sizes" in str(err)
        return
    assert len(net.sizes) >= 2 and min(net.sizes) >= 1  # only good ones get through


def test_bce_targets_are_checked_once_per_dataset_in_fit(monkeypatch):
    """A step reads nothing back to the host: fit checks the targets once, up front; a direct
    forward still checks its own targets."""
    calls = []
    original = xpnet.BCELoss.check_targets

    def counting(self, T):
        calls.append(T.shape)
        return original(self, T)

    monkeypatch.setattr(xpnet.BCELoss, "check_targets", counting)
    rng = np.random.default_rng(0)
    X, T = rng.normal(size=(40, 3)), (rng.random((40, 1)) < 0.5).astype(float)
    net = xpnet.MLP([3, 1], dtype="float64")
    xpnet.fit(net, X, T, loss=xpnet.BCELoss(), epochs=3, batch_size=4)
    assert calls == [(40, 1)]  # not once per batch (30 batches)
    with pytest.raises(ValueError, match=r"BCELoss needs targets in \[0, 1\]"):
        xpnet.fit(net, X, T * 2, loss=xpnet.BCELoss(), epochs=1)
    with pytest.raises(ValueError, match=r"BCELoss needs targets in \[0, 1\]"):
        xpnet.BCELoss().forward(np.full((2, 1), 0.5), np.full((2, 1), -1.0))
