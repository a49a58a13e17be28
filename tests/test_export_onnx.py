"""`xpnet.export_onnx`: onnxruntime runs the exported model and gets xpnet's outputs, and a
run's probabilities and labels, to 1e-5 in float32, for every layer kind; the file is a
function of the net alone."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from helpers import run_python_blocks

import xpnet
from xpnet.backend import to_numpy
from xpnet.cli.evaluate import _probabilities
from xpnet.export import IR_VERSION, OPSET, onnx_bytes
from xpnet.scoring import predicted_labels

pytest.importorskip("onnx", reason="the onnx extra is not installed: pip install 'xpnet[onnx]'")
ort = pytest.importorskip("onnxruntime", reason="onnxruntime runs the exported models")

TOL = 1e-5  # float32
IRIS = np.array(["setosa", "versicolor", "virginica"])


def run_model(model: bytes, X: np.ndarray) -> dict[str, np.ndarray]:
    session = ort.InferenceSession(model, providers=["CPUExecutionProvider"])
    names = [o.name for o in session.get_outputs()]
    return dict(zip(names, session.run(None, {"X": X.astype(np.float32)}), strict=True))


def assert_same_as_xpnet(net, X, classes):
    """onnxruntime's outputs, probabilities and labels are xpnet predict's."""
    got = run_model(onnx_bytes(net, classes=classes), X)
    Y = xpnet.predict(net, X.astype(np.float32))
    outputs = to_numpy(Y)
    np.testing.assert_allclose(got["outputs"], outputs, rtol=TOL, atol=TOL)
    np.testing.assert_allclose(
        got["probabilities"], _probabilities(outputs, net.output), rtol=TOL, atol=TOL
    )
    labels = np.asarray(classes)[to_numpy(predicted_labels(Y, net.backend.xp))]
    assert got["labels"].tolist() == labels.tolist()


def inputs(n_in, n=64, scale=3.0, seed=1):
    return scale * np.random.default_rng(seed).standard_normal((n, n_in))


def trained(net, X, n_classes, epochs=3):
    """net after a few epochs of training, so its weights and statistics are no start values."""
    y = np.arange(len(X)) % n_classes
    loss = "softmax_ce" if net.output == "identity" and net.n_out > 1 else "sse"
    xpnet.fit(net, X, y, loss=loss, optimizer=xpnet.Adam(lr=0.01), epochs=epochs, batch_size=16)
    return net


HIDDEN = {
    "sigmoid": xpnet.Sigmoid,
    "tanh": xpnet.Tanh,
    "relu": xpnet.ReLU,
    "leaky_relu": lambda: xpnet.LeakyReLU(0.2),
    "leaky_relu_negative": lambda: xpnet.LeakyReLU(-0.3),
    "gelu": xpnet.GELU,
    "silu": xpnet.SiLU,
    "softplus": xpnet.Softplus,  # inputs * 10 reach past its threshold of 20
    "identity": xpnet.Identity,
}


@pytest.mark.parametrize("name", HIDDEN)
def test_every_activation(name):
    net = xpnet.Sequential([xpnet.Linear(4, 16), HIDDEN[name](), xpnet.Linear(16, 3)], seed=2)
    X = inputs(4, scale=10.0)
    assert_same_as_xpnet(trained(net, X, 3), X, IRIS)


@pytest.mark.parametrize("output", ["sigmoid", "identity", "tanh"])
@pytest.mark.parametrize("n_out", [1, 3])
def test_outputs_of_each_kind_and_width(output, n_out):
    net = xpnet.MLP([5, 8, n_out], hidden="tanh", output=output, seed=3)
    X = inputs(5)
    classes = ["no", "yes"] if n_out == 1 else [-1, 5, 100]
    assert_same_as_xpnet(trained(net, X, max(n_out, 2)), X, classes)


def test_bias_free_layers():
    layers = [xpnet.Linear(4, 8, bias=False), xpnet.Sigmoid(), xpnet.Linear(8, 2, bias=False)]
    net = xpnet.Sequential([*layers, xpnet.Sigmoid()], seed=4)
    X = inputs(4)
    assert_same_as_xpnet(trained(net, X, 2), X, [0, 1])


def test_layer_norm_batch_norm_dropout_and_residual_in_evaluation_mode():
    block = [xpnet.Linear(8, 8), xpnet.BatchNorm(8, momentum=0.5), xpnet.ReLU()]
    net = xpnet.Sequential(
        [
            xpnet.Linear(4, 8),
            xpnet.LayerNorm(8, eps=1e-3),
            xpnet.GELU(),
            xpnet.Dropout(0.4),
            xpnet.Residual(block),
            xpnet.Linear(8, 3),
        ],
        seed=5,
    )
    X = inputs(4) + 2.0  # shifted: the running mean moves away from 0
    trained(net, X, 3)
    statistics = {k: to_numpy(v) for k, v in net.statistics().items()}
    assert not np.allclose(statistics["running_mean4"], 0.0), "the statistics must have moved"
    assert not np.allclose(statistics["running_var4"], 1.0)
    assert_same_as_xpnet(net, X, IRIS)


def test_digits_and_text_labelled_iris_like_data():
    digits = xpnet.data.load_digits()
    net = xpnet.MLP([64, 32, 10], hidden="relu", output="identity", seed=0)
    xpnet.fit(net, digits.X, digits.y, loss="softmax_ce", optimizer="adam", epochs=2)
    assert_same_as_xpnet(net, digits.X[:200], np.arange(10))
    X, y = iris_like()
    net = xpnet.MLP([4, 16, 3], hidden="sigmoid", output="sigmoid", seed=0)
    xpnet.fit(net, X, y, loss="sse", optimizer=xpnet.Adam(lr=0.05), epochs=20)
    assert_same_as_xpnet(net, X, IRIS)
    assert run_model(onnx_bytes(net, classes=IRIS), X)["labels"].dtype.kind in "OU"


def iris_like(n=150, seed=0):
    """Three species, four measurements each: clusters around iris-like means."""
    rng = np.random.default_rng(seed)
    means = np.array([[5.0, 3.4, 1.5, 0.2], [5.9, 2.8, 4.3, 1.3], [6.6, 3.0, 5.6, 2.0]])
    y = np.arange(n) % 3
    return means[y] + 0.3 * rng.standard_normal((n, 4)), y


def test_a_dynamic_batch_dimension_and_a_pinned_opset():
    import onnx

    net = xpnet.MLP([3, 4, 2], seed=0)
    model = onnx.load_from_string(onnx_bytes(net))
    assert [(o.domain, o.version) for o in model.opset_import] == [("", OPSET)]
    assert model.ir_version == IR_VERSION
    dims = model.graph.input[0].type.tensor_type.shape.dim
    assert [d.dim_param or d.dim_value for d in dims] == ["batch", 3]
    assert [o.name for o in model.graph.output] == ["outputs"]  # a bare net: predict's
    for n in (1, 7):
        got = run_model(onnx_bytes(net), inputs(3, n=n))["outputs"]
        np.testing.assert_allclose(got, to_numpy(xpnet.predict(net, inputs(3, n=n))), atol=TOL)


def test_a_net_on_every_backend_exports(backend, dtype):
    net = xpnet.MLP([3, 6, 2], hidden="silu", norm="batch", backend=backend, dtype=dtype, seed=0)
    X = inputs(3)
    got = run_model(onnx_bytes(net), X)["outputs"]
    np.testing.assert_allclose(got, to_numpy(xpnet.predict(net, X)), rtol=TOL, atol=TOL)


def test_a_float64_net_runs_in_float32():
    net = xpnet.MLP([3, 4, 2], dtype="float64", seed=0)
    X = inputs(3)
    got = run_model(onnx_bytes(net), X)["outputs"]
    assert got.dtype == np.float32
    np.testing.assert_allclose(got, to_numpy(xpnet.predict(net, X)), rtol=TOL, atol=TOL)


def test_standardization_comes_first_and_is_in_the_metadata():
    import onnx

    X = inputs(4, scale=5.0) + 10.0
    mean, std = X.mean(axis=0), X.std(axis=0)
    net = xpnet.MLP([4, 6, 2], hidden="tanh", output="identity", seed=1)
    model = onnx_bytes(net, classes=["a", "b"], standardize=(mean, std))
    expected = to_numpy(xpnet.predict(net, (X - mean) / std))
    np.testing.assert_allclose(run_model(model, X)["outputs"], expected, rtol=TOL, atol=TOL)
    meta = {p.key: json.loads(p.value) for p in onnx.load_from_string(model).metadata_props}
    np.testing.assert_allclose(meta["standardize"]["mean"], mean, rtol=1e-15)
    assert meta["classes"] == ["a", "b"] and meta["architecture"] == net.config()
    with pytest.raises(ValueError, match="std must be positive"):
        onnx_bytes(net, standardize=(mean, 0 * std))
    with pytest.raises(ValueError, match="4 finite numbers"):
        onnx_bytes(net, standardize=(mean[:3], std[:3]))


def test_the_same_net_gives_the_same_bytes(tmp_path):
    for name in ("a.onnx", "b.onnx"):  # two nets, built alike
        net = xpnet.MLP([4, 8, 3], hidden="gelu", output="identity", norm="layer", seed=0)
        xpnet.export_onnx(net, tmp_path / name, classes=IRIS)
    assert (tmp_path / "a.onnx").read_bytes() == (tmp_path / "b.onnx").read_bytes()


def test_a_layer_of_ones_own_is_refused_by_name():
    class Square(xpnet.Layer, name="square_for_export_test"):
        def forward(self, x):
            return x * x

    net = xpnet.Sequential([xpnet.Linear(2, 2), Square()])
    with pytest.raises(ValueError, match=r"Square.*has no ONNX form"):
        onnx_bytes(net)


def test_the_docs_page_runs(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    page = Path(__file__).parents[1] / "docs" / "export.md"
    namespace = run_python_blocks(page)
    assert set(namespace["labels"].tolist()) <= {"no", "yes"}
    assert json.loads(namespace["meta"]["classes"]) == ["no", "yes"]
