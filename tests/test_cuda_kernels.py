"""The CUDA kernels of ops/cupy.py (their source in xpnet.ops.cuda_code) run on the CPU by
tests/cuda_harness.py and compared with ops.generic in float64 and float32, edge values
included; and compiled for the GPU by nvcc where it is installed. No GPU or CuPy needed."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pytest
from array_api_compat import array_namespace
from cuda_harness import GCC, NVCC, ptx_errors, run_elementwise, run_reduction, run_rows

import xpnet
from xpnet import ops
from xpnet.ops import cuda_code as code
from xpnet.ops import generic

pytestmark = pytest.mark.skipif(GCC is None, reason="gcc is needed to run the CUDA kernels")

ACTS = code.FUSED_ACTIVATIONS
EDGES = [np.nan, -np.inf, -1e4, -100.0, -88.0, -30.0, -5.0, -1e-3, -0.0, 0.0, 1e-3, 5.0, 30.0]
EDGES += [100.0, 1e4, np.inf]


@pytest.fixture(params=[np.float64, np.float32])
def dtype(request):
    return request.param


def _close(got, want, dtype, scale=1.0):
    """Equal to rounding (NaN where NaN): `scale` roundings' worth relative."""
    eps = float(np.finfo(dtype).eps)
    tiny = float(np.finfo(dtype).smallest_normal)
    np.testing.assert_allclose(got, want, rtol=8 * eps * scale, atol=tiny)


def _normal(dtype, *shape, seed=0, scale=1.0):
    return np.random.default_rng(seed).normal(0.0, scale, shape).astype(dtype)


def _edges(dtype):
    with np.errstate(over="ignore"):
        return np.array(EDGES, dtype=dtype)


@pytest.mark.parametrize("name", ACTS)
def test_bias_activation_is_the_generic_activation_of_y_plus_b(dtype, name):
    y = np.stack([_edges(dtype), _normal(dtype, len(EDGES), scale=8)])
    b = _normal(dtype, len(EDGES), seed=1)
    b[[0, 1, 2, 8, 9, -1]] = 0.0  # NaN, infinities and zeros reach the activation unchanged
    out = run_elementwise(code.bias_activation(name), dtype, b=b, y=y)["y"]
    with np.errstate(invalid="ignore"):
        want = getattr(generic, name)(y + b, np)
    _close(out, want, dtype)
    if name == "relu":  # the ties: NaN, -0.0 and 0.0 all give 0
        assert out[0, 0] == 0.0 and out[0, 8] == 0.0 and out[0, 9] == 0.0
    if name == "sigmoid":  # the split form keeps the lower tail, and no overflow
        assert out[0, EDGES.index(-100.0)] > 0 and out[0, EDGES.index(1e4)] == 1.0


def test_sigmoid_kernel_is_the_split_form(dtype):
    x = _edges(dtype)
    out = run_elementwise(code.SIGMOID, dtype, x=x)["y"]
    _close(out, generic.sigmoid(x, np), dtype)
    assert np.isnan(out[0]) and out[1] == 0.0 and out[-1] == 1.0


@pytest.mark.parametrize("name", ACTS)
def test_activation_backward_matches_generic(dtype, name):
    x = np.concatenate([_edges(dtype)[2:-1], _normal(dtype, 20, scale=4)])
    y = getattr(generic, name)(x, np)
    g = _normal(dtype, len(x), seed=2)
    out = run_elementwise(code.activation_backward(name), dtype, y=y, g=g)["out"]
    _close(out, getattr(generic, f"{name}_backward")(y, g, np), dtype, scale=2)


def _uniform_with_ties(dtype, p, n):
    u = np.random.default_rng(3).random(n).astype(dtype)
    u[:3] = [dtype(p), np.nextafter(dtype(p), dtype(0)), 0.0]  # u == p keeps, just below drops
    return u


@pytest.mark.parametrize("p", [0.2, 0.5])
def test_dropout_kernel_is_generic_dropout_exactly(dtype, p):
    x = _normal(dtype, 40)
    u = _uniform_with_ties(dtype, p, 40)
    got = run_elementwise(code.dropout(), dtype, u=u, x=x, p=p, scale=1.0 / (1.0 - p))
    want_out, want_mask = generic.dropout(x, u, p, np)
    np.testing.assert_array_equal(got["mask"], want_mask)
    np.testing.assert_array_equal(got["out"], want_out)
    assert got["mask"][0] == dtype(1.0 / (1.0 - p)) and got["mask"][1] == 0.0


@pytest.mark.parametrize("name", ACTS)
def test_bias_activation_dropout_is_activation_then_dropout(dtype, name):
    p = 0.3
    y = _normal(dtype, 4, 10, scale=4)
    y[0, :3] = [0.0, -0.0, 1e4]
    b = _normal(dtype, 10, seed=1)
    b[:3] = 0.0
    u = _uniform_with_ties(dtype, p, 40).reshape(4, 10)
    got = run_elementwise(
        code.bias_activation_dropout(name), dtype, b=b, u=u, p=p, scale=1.0 / (1.0 - p), y=y
    )
    act = getattr(generic, name)(y + b, np)
    want_out, want_mask = generic.dropout(act, u, p, np)
    _close(got["y"], act, dtype)
    np.testing.assert_array_equal(got["mask"], want_mask)
    _close(got["out"], want_out, dtype)


@pytest.mark.parametrize("name", ACTS)
def test_dropout_backward_is_the_activation_backward_of_the_masked_grad(dtype, name):
    p = 0.4
    y = getattr(generic, name)(_normal(dtype, 3, 8, scale=3), np)
    y[0, 0] = 0.0
    _, mask = generic.dropout(y, _uniform_with_ties(dtype, p, 24).reshape(3, 8), p, np)
    grad = _normal(dtype, 3, 8, seed=5)
    got = run_elementwise(code.dropout_backward(name), dtype, y=y, mask=mask, grad=grad)["out"]
    want = getattr(generic, f"{name}_backward")(y, grad * mask, np)
    _close(got, want, dtype, scale=2)


def test_optimizer_kernels_match_generic(dtype):
    p, g = _normal(dtype, 30), _normal(dtype, 30, seed=1)
    v = np.abs(_normal(dtype, 30, seed=2))
    m = _normal(dtype, 30, seed=3)
    got = run_elementwise(code.SGD, dtype, g=g, lr=0.1, p=p)["p"]
    _close(got, generic.sgd_update(p, g, lr=dtype(0.1), xp=np), dtype)
    got = run_elementwise(code.MOMENTUM, dtype, g=g, lr=0.1, mu=0.9, p=p, v=v)
    want_p, want_v = generic.momentum_update(p, g, v, lr=dtype(0.1), momentum=dtype(0.9), xp=np)
    _close(got["p"], want_p, dtype, scale=2)
    _close(got["v"], want_v, dtype, scale=2)
    scalars = generic.AdamScalars.at_step(3, lr=1e-3, beta1=0.9, beta2=0.999, eps=1e-8)
    names = ("step", "b1", "c1", "b2", "c2", "eps", "inv_corr2")
    cast = [dtype(s) for s in scalars]  # ops/cupy.py passes them in p's dtype
    got = run_elementwise(
        code.ADAM, dtype, g=g, **dict(zip(names, cast, strict=True)), p=p, m=m, v=v
    )
    want = generic.adam_update(p, g, m, v, generic.AdamScalars(*cast), xp=np)
    for key, w in zip("pmv", want, strict=True):
        _close(got[key], w, dtype, scale=4)


def test_half_sum_of_squares_is_the_sse_value(dtype):
    Y, T = _normal(dtype, 16, 5), _normal(dtype, 16, 5, seed=1)
    got = run_reduction(code.HALF_SUM_OF_SQUARES, dtype, d=Y - T)
    _close(got, generic.sse(Y, T, np)[0], dtype, scale=80)


def _rows_input(dtype, rows, cols):
    x = _normal(dtype, rows, cols, scale=2)
    x[1] = 3.0  # a constant row: variance 0, x_hat 0
    x[2] += 1e3  # a large offset: the two-pass variance keeps it exact
    return x


@pytest.mark.parametrize("cols", [1, 7, 33])
def test_layer_norm_row_kernel_matches_generic(dtype, cols):
    rows = 5
    x = _rows_input(dtype, rows, cols)
    gamma, beta = _normal(dtype, cols, seed=1), _normal(dtype, cols, seed=2)
    y, x_hat = np.empty_like(x), np.empty_like(x)
    inv_std = np.empty((rows, 1), dtype)
    run_rows(
        "xpnet_layer_norm",
        dtype,
        rows,
        x,
        gamma,
        beta,
        dtype(1e-5),
        np.int32(cols),
        y,
        x_hat,
        inv_std,
    )
    want = generic.layer_norm(x, gamma, beta, 1e-5, np)
    # x - mean rounds to the eps of |x| (the offset row's 1e3), whatever the order of the sums
    atol = 4 * cols * float(np.finfo(dtype).eps) * float(np.abs(x).max() * want[2].max())
    for got, w, factor in zip(
        (y, x_hat, inv_std), want, (np.abs(gamma).max(), 1.0, 0.0), strict=True
    ):
        np.testing.assert_allclose(
            got, w, rtol=8 * cols * float(np.finfo(dtype).eps), atol=atol * factor
        )
    assert np.all(x_hat[1] == 0.0)


@pytest.mark.parametrize("cols", [1, 7, 33])
def test_layer_norm_backward_row_kernel_matches_generic(dtype, cols):
    rows = 5
    x = _rows_input(dtype, rows, cols)
    gamma, beta = _normal(dtype, cols, seed=1), _normal(dtype, cols, seed=2)
    _, x_hat, inv_std = generic.layer_norm(x, gamma, beta, 1e-5, np)
    grad = _normal(dtype, rows, cols, seed=3)
    dx = np.empty_like(x)
    run_rows(
        "xpnet_layer_norm_backward", dtype, rows, grad, x_hat, inv_std, gamma, np.int32(cols), dx
    )
    want = generic.layer_norm_backward(grad, x_hat, inv_std, gamma, np)
    scale = float(np.abs(grad * gamma).max() * inv_std.max())  # what cancels in the sums
    np.testing.assert_allclose(
        dx, want, rtol=0, atol=16 * cols * float(np.finfo(dtype).eps) * scale
    )
    if cols > 1:  # dL/dx of a normalized row sums to 0
        atol = 16 * cols * float(np.finfo(dtype).eps) * scale
        np.testing.assert_allclose(dx.sum(axis=1), 0.0, atol=atol)


def test_softmax_cross_entropy_row_kernel_matches_generic(dtype):
    rows, cols = 6, 10
    Z = _normal(dtype, rows, cols, scale=3)
    Z[1] += 1e4  # large logits: the row max is subtracted first
    Z[2] = 0.0  # a flat row: softmax 1/cols
    Z[3, 0] = -1e4
    T = np.eye(cols, dtype=dtype)[np.arange(rows) % cols]
    T[4] = 1.0 / cols  # soft targets
    grad, row_loss = np.empty_like(Z), np.empty(rows, dtype)
    run_rows(
        "xpnet_softmax_cross_entropy",
        dtype,
        rows,
        Z,
        T,
        dtype(1.0 / rows),
        np.int32(cols),
        grad,
        row_loss,
    )
    want_value, want_grad = generic.softmax_cross_entropy(Z, T, np)
    _close(row_loss.sum(), want_value, dtype, scale=4 * cols)
    np.testing.assert_allclose(grad, want_grad, rtol=0, atol=8 * float(np.finfo(dtype).eps) / rows)
    assert grad[3, 0] == 0.0 - T[3, 0] / rows  # exp(-1e4 - max) underflows to 0


@pytest.mark.parametrize("name", ACTS)
@pytest.mark.parametrize("masked", [False, True])
def test_backward_bias_kernel_is_the_backward_and_its_column_sums(dtype, name, masked):
    rows, cols = 9, 6
    y = getattr(generic, name)(_normal(dtype, rows, cols, scale=3), np)
    y[0, 0] = 0.0
    grad = _normal(dtype, rows, cols, seed=1)
    mask = generic.dropout(
        y, np.random.default_rng(2).random((rows, cols)).astype(dtype), 0.25, np
    )[1]
    dx, db = np.empty_like(y), np.full(cols, np.nan, dtype)
    run_rows(
        code.backward_bias_kernel_name(name),
        dtype,
        cols,  # a warp (here one lane) per column
        y,
        grad,
        mask if masked else grad,
        np.int32(masked),
        np.int32(rows),
        np.int32(cols),
        dx,
        db,
    )
    want = getattr(generic, f"{name}_backward")(y, grad * mask if masked else grad, np)
    _close(dx, want, dtype, scale=2)
    _close(db, want.sum(axis=0), dtype, scale=2 * rows)


@pytest.mark.skipif(NVCC is None, reason="nvcc (the CUDA toolkit) is not installed here")
def test_every_kernel_compiles_for_the_gpu(dtype):
    assert ptx_errors(dtype) == ""


def test_a_planned_dropout_block_runs_the_fused_kernels_with_the_layers_numbers(monkeypatch):
    """Linear -> ReLU -> Dropout in a net, with NumPy's ops given the block's kernels (run by
    the harness) as CuPy gives them: the layers call them, and outputs and gradients are
    those of the unfused layers."""

    def net():
        layers = [xpnet.Linear(5, 8), xpnet.ReLU(), xpnet.Dropout(0.4), xpnet.Linear(8, 3)]
        return xpnet.Sequential(layers, backend="numpy", dtype="float64", seed=2)

    X, G = _normal(np.float64, 6, 5, seed=7), _normal(np.float64, 6, 3, seed=8)
    plain = net()
    want_Y, want_dX = plain.forward(X), plain.backward(G)
    calls = []

    def bias_relu_dropout_inplace(y, b, u, p, xp):
        calls.append("forward")
        kernel = code.bias_activation_dropout("relu")
        got = run_elementwise(kernel, y.dtype, b=b, u=u, p=p, scale=1.0 / (1.0 - p), y=y)
        return got["y"], got["out"], got["mask"]

    def relu_dropout_backward(y, mask, grad, xp):
        calls.append("backward")
        kernel = code.dropout_backward("relu")
        return run_elementwise(kernel, y.dtype, y=y, mask=mask, grad=grad)["out"]

    xp = array_namespace(X)
    overlay = dict(vars(ops.ops_for(xp)))
    overlay.update(bias_relu_dropout_inplace=bias_relu_dropout_inplace)
    overlay.update(relu_dropout_backward=relu_dropout_backward)
    monkeypatch.setitem(ops._CHOSEN, xp.__name__, SimpleNamespace(**overlay))
    fused = net()
    Y, dX = fused.forward(X), fused.backward(G)
    assert calls == ["forward", "backward"]
    np.testing.assert_array_equal(Y, want_Y)
    np.testing.assert_array_equal(dX, want_dX)
    for name, g in plain.grads.items():
        np.testing.assert_array_equal(fused.grads[name], g)


def _harness_backward_ops(name, calls):
    """`<name>_backward_bias_grad` and `<name>_dropout_backward` as ops/cupy.py gives them, with
    their kernels run by the harness on NumPy arrays; each call is logged in `calls`."""

    def backward_bias_grad(y, grad, mask, db, xp):
        calls.append("bias_grad" if mask is None else "bias_grad+mask")
        arrays = (y, grad, db) if mask is None else (y, grad, mask, db)
        assert all(a.flags.c_contiguous and a.dtype == y.dtype for a in arrays)
        dx = np.empty_like(y)
        rows, cols = y.shape
        kernel = code.backward_bias_kernel_name(name)
        masked = np.int32(mask is not None)
        args = (y, grad, grad if mask is None else mask, masked, np.int32(rows), np.int32(cols))
        run_rows(kernel, y.dtype, cols, *args, dx, db)  # one column per block
        return dx

    def dropout_backward(y, mask, grad, xp):
        calls.append("dropout_backward")
        kernel = code.dropout_backward(name)
        return run_elementwise(kernel, y.dtype, y=y, mask=mask, grad=grad)["out"]

    return {
        f"{name}_backward_bias_grad": backward_bias_grad,
        f"{name}_dropout_backward": dropout_backward,
    }


@pytest.mark.parametrize("name", ACTS)
@pytest.mark.parametrize("p", [0.0, 0.3])
def test_planned_blocks_take_the_bias_grad_kernel_with_the_layers_numbers(
    monkeypatch, dtype, name, p
):
    """Each planned Linear -> activation (-> Dropout) block of a net, given NumPy's ops plus
    the harness-run `<name>_backward_bias_grad` (and `<name>_dropout_backward`), takes its
    backward and bias gradient in that one kernel, the first Linear's (fit's input_grad=False)
    included; a Linear without a bias keeps the layers' steps. Outputs, every gradient and
    dL/dX over a few SGD steps are the unfused net's bit for bit: the kernel's serial column
    sums add the rows in np.add.reduce's order, and both nets take the activation's backward
    in generic's order (NumPy's own sigmoid_backward multiplies in another, an ulp apart)."""
    act = xpnet.layers.ACTIVATIONS[name]

    def net():
        def block(n_in, n_out, bias=True):
            dropped = [xpnet.Dropout(p)] if p else []
            return [xpnet.Linear(n_in, n_out, bias=bias), act(), *dropped]

        layers = [*block(5, 8), *block(8, 6, bias=False), *block(6, 4), xpnet.Linear(4, 3), act()]
        return xpnet.Sequential(layers, backend="numpy", dtype=np.dtype(dtype).name, seed=2)

    X, T = _normal(dtype, 7, 5, seed=7), _normal(dtype, 7, 3, seed=8)

    def train(model):
        """Per step: outputs, dL/dX (None in fit's steps) and copies of the gradients."""
        loss, optimizer, seen = xpnet.SSELoss(), xpnet.SGD(lr=0.01), []
        for step in range(4):
            Y = model.forward(X)
            loss.forward(Y, T)
            dX = model.backward(loss.backward(), input_grad=step == 3)  # fit's, then dL/dX
            buffer = model.parameter_buffer  # each gradient written into its view of G
            assert all(g is buffer.grad_target(k) for k, g in model.grads.items())
            seen.append((Y.copy(), dX, {k: g.copy() for k, g in model.grads.items()}))
            optimizer.step(model)
        return seen

    xp = array_namespace(X)
    backward = f"{name}_backward"  # generic's order of operations, as the kernels' (and CuPy's)
    plain_ops = {**vars(ops.ops_for(xp)), backward: getattr(generic, backward)}
    monkeypatch.setitem(ops._CHOSEN, xp.__name__, SimpleNamespace(**plain_ops))
    want, calls = train(net()), []
    fused_ops = {**plain_ops, **_harness_backward_ops(name, calls)}
    monkeypatch.setitem(ops._CHOSEN, xp.__name__, SimpleNamespace(**fused_ops))
    got = train(net())
    for (Y, dX, grads), (want_Y, want_dX, want_grads) in zip(got, want, strict=True):
        np.testing.assert_array_equal(Y, want_Y)
        assert list(grads) == list(want_grads)
        for key, g in want_grads.items():
            np.testing.assert_array_equal(grads[key], g, err_msg=key)
        assert (dX is None) == (want_dX is None)
        if dX is not None:
            np.testing.assert_array_equal(dX, want_dX)
    # per backward, from the last block: the three with a bias fused, the bias-free one not
    fused_call = "bias_grad+mask" if p else "bias_grad"
    unfused = ["dropout_backward"] if p else []
    assert calls == ["bias_grad", fused_call, *unfused, fused_call] * 4


def test_norm_blocks_keep_their_own_backward(monkeypatch):
    """Linear -> BatchNorm/LayerNorm -> activation is no planned block: only the last,
    plain Linear -> ReLU block calls the bias gradient kernel; the others' Linears sum their
    own dL/db."""
    layers = [xpnet.Linear(5, 8), xpnet.BatchNorm(8), xpnet.Tanh(), xpnet.Linear(8, 4)]
    layers += [xpnet.LayerNorm(4), xpnet.ReLU(), xpnet.Linear(4, 3), xpnet.ReLU()]
    X, calls = _normal(np.float64, 6, 5), []
    xp = array_namespace(X)
    overlay = {**vars(ops.ops_for(xp)), **_harness_backward_ops("tanh", calls)}
    overlay.update(_harness_backward_ops("relu", calls))
    monkeypatch.setitem(ops._CHOSEN, xp.__name__, SimpleNamespace(**overlay))
    net = xpnet.Sequential(layers, backend="numpy", dtype="float64", seed=1)
    net.forward(X)
    net.backward(_normal(np.float64, 6, 3, seed=1))
    assert calls == ["bias_grad"]
    assert list(net.grads) == list(net.parameters())


def test_an_activation_that_redefines_backward_keeps_it_in_a_planned_block(monkeypatch):
    """The fused backward ops stand for Activation.backward: a subclass with a backward of
    its own (here twice ReLU's) has it called, with or without a Dropout after it."""

    class TwiceReLU(xpnet.ReLU):
        def backward(self, grad):
            return 2.0 * super().backward(grad)

    X, calls = _normal(np.float64, 6, 5), []
    xp = array_namespace(X)
    overlay = {**vars(ops.ops_for(xp)), **_harness_backward_ops("relu", calls)}
    monkeypatch.setitem(ops._CHOSEN, xp.__name__, SimpleNamespace(**overlay))
    layers = [xpnet.Linear(5, 8), TwiceReLU(), xpnet.Dropout(0.3), xpnet.Linear(8, 4)]
    layers += [TwiceReLU()]
    net = xpnet.Sequential(layers, backend="numpy", dtype="float64", seed=1)
    Y = net.forward(X)
    G = _normal(np.float64, 6, 4, seed=1)
    net.backward(G)
    assert calls == []
    np.testing.assert_array_equal(net.grads["b2"], np.sum(2.0 * G * (Y > 0), axis=0))
