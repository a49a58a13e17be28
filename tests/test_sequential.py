"""Sequential: a net of any layers, a user's own layers beside the built-in ones, MLP's weights
and training from the same seed, and the parameters' one home (checkpoints ask the layers)."""

from __future__ import annotations

import numpy as np
import pytest
from helpers import rewrite_checkpoint

import xpnet
from xpnet.layers import ACTIVATIONS, LAYERS


class Square(xpnet.Layer, name="test-square"):
    """y = x * x: a parameterless layer as a user writes it, outside the package."""

    def forward(self, x):
        self.x = x
        return x * x

    def backward(self, grad):
        return 2.0 * self.x * grad


class Scale(xpnet.Layer, name="test-scale"):
    """y = x * s + t per feature: a user's layer with parameters (s starts at 1, t at 0)."""

    def __init__(self, n):
        self.n = self.input_width = n

    def config(self):
        return {"n": self.n}

    def parameter_shapes(self):
        return {"s": (self.n,), "t": (self.n,)}

    def initial_parameters(self, rng):
        return {"s": np.ones(self.n), "t": np.zeros(self.n)}

    def forward(self, x):
        self.x = x
        return x * self.params["s"] + self.params["t"]

    def backward(self, grad):
        xp = self.parameter_buffer.xp
        self.set_grad("s", xp.sum(grad * self.x, axis=0))
        self.set_grad("t", xp.sum(grad, axis=0))
        return grad * self.params["s"]


def _data(n=40, n_in=3, seed=0):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, n_in))
    return X, (X[:, :1] * X[:, 1:2] > 0).astype(np.int64).ravel()


def _host(net):
    return {k: xpnet.to_numpy(v) for k, v in net.parameters().items()}


@pytest.mark.parametrize(("hidden", "output"), [("relu", "identity"), ("sigmoid", "sigmoid")])
def test_a_sequential_of_mlp_layers_has_mlps_weights_and_training(hidden, output):
    mlp = xpnet.MLP([3, 6, 2], hidden, output, dtype="float64", seed=4)
    act = ACTIVATIONS
    layers = [xpnet.Linear(3, 6), act[hidden](), xpnet.Linear(6, 2), act[output]()]
    net = xpnet.Sequential(layers, dtype="float64", seed=4)
    for name, value in _host(mlp).items():
        np.testing.assert_array_equal(_host(net)[name], value)
    X, y = _data()
    for model in (mlp, net):
        xpnet.fit(model, X, y, loss="softmax_ce", optimizer=xpnet.Adam(0.01), epochs=3)
    for name, value in _host(mlp).items():
        np.testing.assert_array_equal(_host(net)[name], value)


def test_linear_init_follows_the_activation_next_to_it():
    net = xpnet.Sequential([xpnet.Linear(3, 4), xpnet.ReLU(), xpnet.Linear(4, 2)])
    assert [layer.init for layer in net.layers[::2]] == ["he", "he"]  # the last: ReLU before it
    net = xpnet.Sequential([xpnet.Linear(3, 4), xpnet.Tanh(), xpnet.Linear(4, 2, init="he")])
    assert [layer.init for layer in net.layers[::2]] == ["xavier", "he"]


@pytest.mark.parametrize("name", ["numpy", "torch"])
def test_a_users_layers_train_with_fit_and_survive_save_and_load(name, tmp_path):
    if xpnet.available_backends()[name] != "ok":
        pytest.skip(f"{name}: {xpnet.available_backends()[name]}")
    layers = [Scale(3), xpnet.Linear(3, 8), Square(), xpnet.Linear(8, 2), xpnet.Identity()]
    net = xpnet.Sequential(layers, backend=name, dtype="float64", seed=2)
    assert list(net.parameters()) == ["s1", "t1", "W2", "b2", "W3", "b3"]
    X, y = _data(n=200)
    before = xpnet.evaluate(net, X, y, loss=xpnet.SoftmaxCrossEntropyLoss())
    xpnet.fit(net, X, y, loss="softmax_ce", optimizer=xpnet.Adam(0.02), epochs=30, batch_size=20)
    after = xpnet.evaluate(net, X, y, loss=xpnet.SoftmaxCrossEntropyLoss())
    assert after["loss"] < 0.5 * before["loss"] and after["accuracy"] > 0.9
    assert not np.array_equal(xpnet.to_numpy(net.parameters()["s1"]), np.ones(3))
    xpnet.save(net, tmp_path / "run")
    back = xpnet.load(tmp_path / "run", backend=name)
    assert type(back) is xpnet.Sequential and [type(x) for x in back.layers] == list(
        map(type, layers)
    )
    for key, value in _host(net).items():
        np.testing.assert_array_equal(_host(back)[key], value)
    np.testing.assert_array_equal(
        xpnet.to_numpy(xpnet.predict(back, X)), xpnet.to_numpy(xpnet.predict(net, X))
    )


def test_a_users_layer_passes_gradcheck():
    net = xpnet.Sequential(
        [Scale(3), xpnet.Linear(3, 4), Square(), xpnet.Linear(4, 2)], dtype="float64", seed=1
    )
    X = xpnet.asarray(_data(n=5)[0], like=net)
    T = xpnet.asarray(np.eye(2)[[0, 1, 1, 0, 1]], like=net)
    errors = xpnet.gradcheck(net, xpnet.SSELoss(), X, T)
    assert set(errors) == {"s1", "t1", "W2", "b2", "W3", "b3", "input"}
    assert max(errors.values()) < 1e-7


@pytest.mark.parametrize("layer", ["linear", "linear-no-bias", *ACTIVATIONS])
def test_every_layer_kind_saves_and_loads(layer, tmp_path):
    kinds = {"linear": xpnet.Linear(4, 4), "linear-no-bias": xpnet.Linear(4, 4, bias=False)}
    middle = kinds[layer] if layer in kinds else ACTIVATIONS[layer]()
    net = xpnet.Sequential([xpnet.Linear(3, 4), middle, xpnet.Linear(4, 2)], seed=3)
    path = xpnet.save(net, tmp_path / "net.safetensors")
    back = xpnet.load(path, backend="numpy")
    assert back.config() == net.config()
    for key, value in _host(net).items():
        np.testing.assert_array_equal(_host(back)[key], value)


def test_a_net_without_biases_saves_loads_evaluates_and_resumes(tmp_path):
    net = xpnet.MLP([3, 4, 2], bias=False, seed=5)
    assert list(net.parameters()) == ["W1", "W2"]
    X, y = _data()
    optimizer = xpnet.Adam(0.01)
    xpnet.fit(net, X, y, optimizer=optimizer, epochs=2)
    xpnet.save(net, tmp_path / "run", optimizer=optimizer, epoch=2)
    ck = xpnet.load_checkpoint(tmp_path / "run", backend="numpy")
    assert ck.net.config() == net.config()
    assert xpnet.evaluate(ck.net, X, y) == xpnet.evaluate(net, X, y)
    xpnet.fit(net, X, y, optimizer=optimizer, epochs=4, initial_epoch=2)
    xpnet.fit(ck.net, X, y, optimizer=ck.optimizer, epochs=4, initial_epoch=2)
    for key, value in _host(net).items():
        np.testing.assert_array_equal(_host(ck.net)[key], value)


def test_a_file_naming_an_unregistered_layer_is_refused_by_name(tmp_path, monkeypatch):
    net = xpnet.Sequential([xpnet.Linear(3, 4), Square(), xpnet.Linear(4, 2)])
    path = xpnet.save(net, tmp_path / "net.safetensors")
    monkeypatch.delitem(LAYERS, "test-square")
    with pytest.raises(
        xpnet.CheckpointError, match=r"unknown layer 'test-square'.*it names .*\.Square\)"
    ):
        xpnet.load(path)


def test_an_unnamed_layer_cannot_be_saved(tmp_path):
    class Unnamed(Square):  # inherits Square's name but not its entry
        pass

    net = xpnet.Sequential([xpnet.Linear(3, 4), Unnamed()])
    with pytest.raises(
        ValueError, match=r"Unnamed has no name of its own.*class Unnamed\(Square, name="
    ):
        xpnet.save(net, tmp_path / "net.safetensors")


def test_a_forged_architecture_is_refused_before_anything_is_allocated(tmp_path):
    path = xpnet.save(xpnet.Sequential([xpnet.Linear(3, 4)]), tmp_path / "net.safetensors")

    def forge(header):  # 16 GB of float32, if it were built
        header["config"]["layers"][0]["config"]["n_in"] = 10**9

    rewrite_checkpoint(path, forge)
    with pytest.raises(xpnet.CheckpointError, match=r"W1 has shape \(3, 4\) but the net needs"):
        xpnet.load(path)


def test_layers_that_do_not_fit_together_are_named():
    with pytest.raises(ValueError, match=r"layer 3 \(Linear\(5, 2\)\) takes 5 .* layer 2 .* 4"):
        xpnet.Sequential([xpnet.Linear(3, 4), xpnet.ReLU(), xpnet.Linear(5, 2)])
    with pytest.raises(ValueError, match="no layer says how many features"):
        xpnet.Sequential([Square()])
    with pytest.raises(TypeError, match=r"layer 2 is 'relu', not an xpnet\.Layer"):
        xpnet.Sequential([xpnet.Linear(3, 4), "relu"])
    shared = xpnet.Linear(3, 3)
    with pytest.raises(ValueError, match=r"Linear\(3, 3\) is in a net already"):
        xpnet.Sequential([shared, shared])


def test_a_layer_built_on_its_own_keeps_its_values_and_another_backend_is_refused():
    own = xpnet.Linear(3, 2, backend="numpy", dtype="float64", seed=9)
    W = np.array(own.W, copy=True)
    net = xpnet.Sequential([own, xpnet.Sigmoid()], dtype="float64", seed=0)
    np.testing.assert_array_equal(xpnet.to_numpy(net.parameters()["W1"]), W)
    assert own.W is net.parameters()["W1"]  # the layer now reads the net's buffer
    if xpnet.available_backends()["array_api_strict"] == "ok":
        other = xpnet.Linear(3, 2, backend="array_api_strict")
        with pytest.raises(
            xpnet.BackendError, match=r"built on array_api_strict.* net is on numpy"
        ):
            xpnet.Sequential([other])


def test_to_moves_a_sequential_with_its_layers():
    net = xpnet.Sequential([Scale(3), xpnet.Linear(3, 2)], dtype="float64", seed=1)
    moved = net.to(dtype="float32")
    assert type(moved) is xpnet.Sequential and moved.dtype_name == "float32"
    assert [type(x) for x in moved.layers] == [Scale, xpnet.Linear]
    np.testing.assert_array_equal(
        xpnet.to_numpy(moved.parameters()["W2"]), _host(net)["W2"].astype(np.float32)
    )
