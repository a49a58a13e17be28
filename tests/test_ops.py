"""The fast ops paths (ops/numpy.py, ops/torch.py, ops/cupy.py, ops/jax.py) against
ops/generic.py, the array-API reference, on every backend that has one; the in-place contracts
where arrays are writeable (JAX's are not: new arrays come back there); and a training
run that must not change when the fast paths are switched off."""

from __future__ import annotations

import inspect
import math
import sys

import numpy as np
import pytest
from array_api_compat import is_writeable_array

import xpnet
from xpnet import ops
from xpnet.ops import generic


@pytest.fixture
def fast(xp):
    fns = ops.ops_for(xp)
    if fns is generic:
        pytest.skip(f"{xp.__name__} has no fast path: generic is the reference itself")
    return fns


def _tol(dtype):
    eps = float(np.finfo(dtype).eps)
    return {"rtol": 16 * eps, "atol": float(np.finfo(dtype).smallest_normal)}


def _close(got, want, dtype, scale=1.0, magnitude=0.0):
    """Equal to rounding: `scale` roundings' worth relative, and where a difference of
    operands of size `magnitude` cancels (a fused multiply-add rounds once, not twice), a few
    ulps of that magnitude absolute."""
    tol = _tol(dtype)
    atol = max(tol["atol"], 4 * float(np.finfo(dtype).eps) * magnitude)
    np.testing.assert_allclose(
        xpnet.to_numpy(got), xpnet.to_numpy(want), rtol=tol["rtol"] * scale, atol=atol
    )


def _arr(host, backend, dtype):
    return xpnet.asarray(np.asarray(host), like=backend, dtype=dtype)


def _rand(backend, dtype, *shape, seed=0, scale=1.0):
    return _arr(np.random.default_rng(seed).normal(0.0, scale, shape), backend, dtype)


def test_every_fast_function_overrides_a_generic_one(fast, xp):
    """A fast module's functions replace generic's by name: a misspelt one would never run."""
    module = sys.modules[fast.sigmoid.__module__]
    own = {
        name
        for name, fn in vars(module).items()
        if callable(fn)
        and not name.startswith("_")
        and getattr(fn, "__module__", "") == module.__name__
    }
    acts = ("sigmoid", "tanh", "relu", "identity")
    extras = {f"{act}_inplace" for act in acts} | {f"bias_{act}_inplace" for act in acts}
    extras |= {f"bias_{act}_dropout_inplace" for act in acts}  # Linear -> act -> Dropout
    extras |= {f"{act}_dropout_backward" for act in acts}
    extras |= {f"{act}_backward_bias_grad" for act in acts}
    extras |= {"linear_backward_into", "capture"}  # the flat gradient path; CUDA graphs
    extras |= {"compile_epoch", "GraphedEpochs"}  # compiled epochs (compiled.py)
    assert own - extras <= set(vars(generic)), sorted(own - extras - set(vars(generic)))
    for act in ("sigmoid", "tanh"):
        assert callable(getattr(fast, f"{act}_inplace"))


def test_every_fast_function_takes_generics_arguments(fast):
    """Callers see `ops.Ops`, generic's signatures: a fast function must accept the same
    arguments by the same names (mypy checks generic against Ops, this the overlays)."""
    module = sys.modules[fast.sigmoid.__module__]
    for name in set(module.__all__) & set(generic.__all__):
        want = inspect.signature(getattr(generic, name))
        got = inspect.signature(getattr(module, name))
        assert list(got.parameters.values()) == list(want.parameters.values()), name


def test_adam_scalars_fold_the_bias_corrections_of_step_t():
    s = generic.AdamScalars.at_step(2, lr=0.1, beta1=0.9, beta2=0.99, eps=1e-8)
    assert s.step == pytest.approx(0.1 / (1 - 0.9**2))
    assert s.inv_correction2 == pytest.approx(1 / np.sqrt(1 - 0.99**2))
    assert (s.beta1, s.one_minus_beta1, s.beta2, s.one_minus_beta2, s.eps) == (
        0.9,
        1 - 0.9,
        0.99,
        1 - 0.99,
        1e-8,
    )


def test_adam_step_1_moves_each_weight_by_lr_against_its_gradient_sign():
    """At t = 1 the bias-corrected m / sqrt(v) is g / |g|: every weight moves by lr."""
    xp = xpnet.get_backend("numpy").xp
    p, g = np.zeros(3), np.array([0.5, -2.0, 1e-3])
    scalars = generic.AdamScalars.at_step(1, lr=0.01, beta1=0.9, beta2=0.999, eps=0.0)
    new_p, m, v = generic.adam_update(p, g, np.zeros(3), np.zeros(3), scalars, xp=xp)
    np.testing.assert_allclose(new_p, -0.01 * np.sign(g), rtol=1e-12)
    np.testing.assert_allclose(m, 0.1 * g, rtol=1e-12)
    np.testing.assert_allclose(v, 0.001 * g * g, rtol=1e-12)


def test_dispatch_by_namespace(xp):
    fns = ops.ops_for(xp)
    assert ops.ops_for(xp) is fns  # resolved once
    name = xp.__name__.removeprefix("array_api_compat.")
    expected = {"numpy": "numpy", "torch": "torch", "cupy": "cupy", "jax.numpy": "jax"}.get(name)
    if expected is None:
        assert fns is generic
    else:  # generic's functions, with the fast module's own in their place
        assert fns.sigmoid.__module__ == f"xpnet.ops.{expected}"
        own = sys.modules[fns.sigmoid.__module__].__all__
        kept = [n for n in generic.__all__ if n not in own]
        assert kept and all(getattr(fns, n) is getattr(generic, n) for n in kept)


# the tails: sigmoid(-100) is ~4e-44 (float32 subnormal); +-1e4 overflows a naive exp
EXTREMES = [-1e4, -100.0, -88.0, -30.0, -5.0, -1e-3, 0.0, 1e-3, 5.0, 30.0, 100.0, 1e4]


@pytest.mark.parametrize("n", [500, 9000])  # both sides of the numpy path's errstate switch
def test_sigmoid_matches_the_split_form(fast, xp, backend, dtype, n):
    host = np.concatenate([EXTREMES, np.random.default_rng(1).normal(0, 8, n)])
    x = _arr(host.reshape(2, -1), backend, dtype)
    before = xpnet.to_numpy(x).copy()
    want = generic.sigmoid(x, xp)
    _close(fast.sigmoid(x, xp), want, dtype)
    np.testing.assert_array_equal(xpnet.to_numpy(x), before)  # the plain op leaves x alone
    y = fast.sigmoid_inplace(x, xp)
    _close(y, want, dtype)
    out = xpnet.to_numpy(y)
    assert np.all((out >= 0) & (out <= 1))
    assert out[0, 0] == 0.0 or out[0, 0] < np.finfo(dtype).smallest_normal
    assert out[0, EXTREMES.index(1e4)] == 1.0


@pytest.mark.parametrize("n", [3, 8192])  # both sides of the numpy path's errstate switch
def test_sigmoid_inplace_writes_into_its_input_without_warnings(fast, xp, backend, dtype, n):
    x = _rand(backend, dtype, 1, n, scale=200.0)  # many values overflow a naive exp
    want = generic.sigmoid(x, xp)
    writeable = is_writeable_array(x)
    y = fast.sigmoid_inplace(x, xp)
    _close(y, want, dtype)
    if writeable:
        _close(x, want, dtype)  # x now holds the result (a JAX array cannot: y is new)


@pytest.mark.parametrize("name", ["sigmoid", "tanh", "relu"])
def test_activation_backward_matches_generic(fast, xp, backend, dtype, name):
    x = _rand(backend, dtype, 7, 33)
    y = getattr(generic, name)(x, xp)
    grad = _rand(backend, dtype, 7, 33, seed=2)
    grad_host, y_host = xpnet.to_numpy(grad).copy(), xpnet.to_numpy(y).copy()
    want = getattr(generic, f"{name}_backward")(y, grad, xp)
    got = getattr(fast, f"{name}_backward")(y, grad, xp)
    _close(got, want, dtype, magnitude=float(np.max(np.abs(grad_host))))  # 1 - y*y cancels
    np.testing.assert_array_equal(xpnet.to_numpy(grad), grad_host)
    np.testing.assert_array_equal(xpnet.to_numpy(y), y_host)
    _close(getattr(fast, f"{name}_inplace")(x, xp), y, dtype)


# erf's pieces meet at 0.84375, 1.25 and 1/0.35; erfc underflows past 26.5 (the last normal
# float64 is near 26.5, float32's near 9.2); 1e-300 is far below 2**-28
ERF_POINTS = [0.0, 1e-300, 1e-20, 1e-8, 0.1, 0.84375, 1.0, 1.25, 2.0, 1 / 0.35, 4.0, 6.0]
ERF_POINTS += [9.0, 12.0, 20.0, 26.0, 27.5, 40.0, float("inf")]


def test_erf_and_erfc_match_the_standard_library(xp, backend, dtype):
    """generic's erf and erfc (FDLIBM's approximations in the array API) against Python's
    math.erf and math.erfc to a few ulps, relative, over the whole line: tails, the joins
    of the pieces and 0 included; erfc relative wherever it is a normal number; NaN kept."""
    host = np.concatenate([ERF_POINTS, np.linspace(-30.0, 30.0, 2401), 10.0 ** -np.arange(40)])
    host = np.concatenate([host, -host, [np.nan]])
    x = _arr(host, backend, dtype)
    xh = xpnet.to_numpy(x).astype(np.float64)  # as rounded to dtype
    eps, tiny = float(np.finfo(dtype).eps), float(np.finfo(dtype).smallest_normal)
    for fn, ref in ((generic.erf, math.erf), (generic.erfc, math.erfc)):
        want = np.array([ref(v) for v in xh])
        got = xpnet.to_numpy(fn(x, xp)).astype(np.float64)
        np.testing.assert_allclose(got, want, rtol=4 * eps, atol=tiny, err_msg=fn.__name__)
    assert np.signbit(xpnet.to_numpy(generic.erf(_arr([-0.0], backend, dtype), xp)))[0]


def _new_activation_inputs(backend, dtype):
    host = np.concatenate([EXTREMES[1:-1], [-20.5, 19.5, 20.0, 20.5], np.linspace(-30, 30, 61)])
    return _arr(host.reshape(3, -1), backend, dtype)


NEW_OPS = {
    "gelu": {},
    "silu": {},
    "softplus": {},
    "leaky_relu-0.2": {"slope": 0.2},
    "leaky_relu-neg": {"slope": -0.5},
    "erf": {},
    "erfc": {},
}
# roundings allowed: XLA's erfc is up to ~260 ulps off in the float64 far tail (erfc < 1e-175,
# GELU below x = -28), where generic's and the other libraries' are within 3
ROUNDINGS = {"gelu": 24, "erfc": 24}


@pytest.mark.parametrize("case_id", NEW_OPS)
def test_new_ops_match_generic(fast, xp, backend, dtype, case_id):
    """The fast paths of the new activations (their backward from x, as GELU, SiLU and Softplus
    take it), erf and erfc, equal generic's to rounding: tails and Softplus's threshold too."""
    name, options = case_id.split("-")[0], NEW_OPS[case_id]
    mine = getattr(fast, name)
    if mine is getattr(generic, name):
        pytest.skip(f"{xp.__name__} has no fast {name}: generic is used")
    x = _new_activation_inputs(backend, dtype)
    scale = ROUNDINGS.get(name, 4)
    _close(mine(x, xp, **options), getattr(generic, name)(x, xp, **options), dtype, scale)
    backward = getattr(fast, f"{name}_backward", None)
    if backward is not None:
        grad = _rand(backend, dtype, *x.shape, seed=7)
        want = getattr(generic, f"{name}_backward")(x, grad, xp, **options)
        _close(backward(x, grad, xp, **options), want, dtype, scale, magnitude=4.0)


@pytest.mark.parametrize("slope", [0.01, 0.2])
def test_leaky_relu_inplace_matches_generic(fast, xp, backend, dtype, slope):
    x = _new_activation_inputs(backend, dtype)
    want = generic.leaky_relu(x, xp, slope=slope)
    _close(fast.leaky_relu_inplace(x, xp, slope=slope), want, dtype)


@pytest.mark.parametrize("name", ["sigmoid", "tanh", "relu", "identity"])
@pytest.mark.parametrize("bias", [True, False])
def test_layer_forward_is_the_activation_of_the_affine_map(xp, backend, dtype, name, bias):
    """Activation.forward_linear, as MLP.forward chains a layer pair (on CuPy the bias add and
    the activation in one kernel, `bias_<name>_inplace`), equals generic activation(x @ W + b)
    on every backend, ties at 0 and the sigmoid's far tails included."""
    linear = xpnet.Linear(12, len(EXTREMES), backend=backend, dtype=dtype, seed=3, bias=bias)
    x = _rand(backend, dtype, 9, 12, seed=4)
    if bias:  # product rows + b hit the extremes and exact zeros in column j
        linear.set_parameter("b", _arr(EXTREMES, backend, dtype) - (x @ linear.W)[0, ...])
    affine = x @ linear.W + linear.b if bias else x @ linear.W
    want = getattr(generic, name)(affine, xp)
    activation = xpnet.layers.ACTIVATIONS[name]()
    got = activation.forward_linear(linear, x)
    terms = np.abs(xpnet.to_numpy(x)) @ np.abs(xpnet.to_numpy(linear.W))  # what may cancel
    _close(got, want, dtype, scale=12, magnitude=12 * float(terms.max()))
    grad = _rand(backend, dtype, 9, len(EXTREMES), seed=5)  # backward reads the cached output
    want_grad = getattr(generic, f"{name}_backward")(got, grad, xp)
    _close(activation.backward(grad), want_grad, dtype, magnitude=float(xp.max(xp.abs(grad))))


@pytest.mark.parametrize("name", ["sigmoid", "tanh", "relu", "identity"])
def test_fused_bias_activation_matches_generic(fast, xp, backend, dtype, name):
    op = getattr(fast, f"bias_{name}_inplace", None)
    if op is None:
        pytest.skip(f"{xp.__name__} fuses no bias add with {name}: the layers add, then activate")
    y = _rand(backend, dtype, 6, len(EXTREMES), seed=6)
    b = _arr(EXTREMES, backend, dtype)
    want = getattr(generic, name)(y + b, xp)
    got = op(y, b, xp)
    _close(got, want, dtype)
    if is_writeable_array(y):
        _close(y, want, dtype)  # written into the product it was given


@pytest.mark.parametrize("shape", [(1, 2, 3), (64, 128, 10), (5, 40, 30)])
@pytest.mark.parametrize("bias", [True, False])
def test_linear_forward_and_backward_match_generic(fast, xp, backend, dtype, shape, bias):
    batch, n_in, n_out = shape  # (5, 40, 30) W takes the numpy path's contiguous W.T copy
    x = _rand(backend, dtype, batch, n_in)
    W = _rand(backend, dtype, n_in, n_out, seed=1)
    b = _rand(backend, dtype, n_out, seed=2) if bias else None
    grad = _rand(backend, dtype, batch, n_out, seed=3)
    scale = max(n_in, batch)  # sums of n terms round n times
    _close(fast.linear(x, W, b, xp), generic.linear(x, W, b, xp), dtype, scale)
    for input_grad in (True, False):
        got = fast.linear_backward(x, grad, W, bias, input_grad, xp)
        want = generic.linear_backward(x, grad, W, bias, input_grad, xp)
        for g, w in zip(got, want, strict=True):
            assert (g is None) == (w is None)
            if w is not None:
                _close(g, w, dtype, scale)
        assert got[2] is None or tuple(got[2].shape) == (batch, n_in)
        if is_writeable_array(W):  # the same, written into given arrays (not on JAX)
            dW, db = xp.zeros_like(W), xp.zeros_like(b) if bias else None
            dx = fast.linear_backward_into(x, grad, W, dW, db, input_grad, xp)
            for g, w in zip((dW, db, dx), want, strict=True):
                assert (g is None) == (w is None)
                if w is not None:
                    _close(g, w, dtype, scale)


def test_sse_value_and_gradient_match_generic(fast, xp, backend, dtype):
    Y = _rand(backend, dtype, 16, 5)
    T = _rand(backend, dtype, 16, 5, seed=1)
    value, D = fast.sse(Y, T, xp)
    want_value, want_D = generic.sse(Y, T, xp)
    _close(value, want_value, dtype, 80)
    _close(D, want_D, dtype)
    assert tuple(value.shape) == ()
    np.testing.assert_allclose(
        float(xpnet.to_numpy(value)),
        0.5 * np.sum((xpnet.to_numpy(Y).astype(float) - xpnet.to_numpy(T)) ** 2),
        rtol=100 * np.finfo(dtype).eps,
    )


def _state(backend, dtype, n, seeds):
    return [_rand(backend, dtype, n, seed=s) for s in seeds]


@pytest.mark.parametrize("n", [7, 40_000])  # 40 000 takes the numpy path's blockwise update
def test_sgd_and_momentum_update_in_place_as_generic(fast, xp, backend, dtype, n):
    p, g, v = _state(backend, dtype, n, (1, 2, 3))
    want = generic.sgd_update(p, g, lr=0.3, xp=xp)
    magnitude = 8.0  # |p|, |g|, |v| of normal samples: p - lr * g cancels near zero
    in_place = is_writeable_array(p)  # else (JAX) new arrays come back
    got = fast.sgd_update(p, g, lr=0.3, xp=xp)
    assert (got is p) == in_place
    _close(got, want, dtype, magnitude=magnitude)
    p = got
    want_p, want_v = generic.momentum_update(p, g, v, lr=0.1, momentum=0.9, xp=xp)
    got_p, got_v = fast.momentum_update(p, g, v, lr=0.1, momentum=0.9, xp=xp)
    assert (got_p is p and got_v is v) == in_place
    _close(got_p, want_p, dtype, magnitude=magnitude)
    _close(got_v, want_v, dtype, magnitude=magnitude)


@pytest.mark.parametrize("n", [50, 40_000])  # 40 000 takes the numpy path's blockwise update
def test_adam_update_in_place_as_generic(fast, xp, backend, dtype, n):
    p, g, m, v = _state(backend, dtype, n, (1, 2, 3, 4))
    v = v * v  # a second moment is non-negative
    scalars = generic.AdamScalars.at_step(3, lr=0.01, beta1=0.9, beta2=0.999, eps=1e-8)
    want = generic.adam_update(p, g, m, v, scalars, xp=xp)
    got = fast.adam_update(p, g, m, v, scalars, xp=xp)
    assert (got[0] is p and got[1] is m and got[2] is v) == is_writeable_array(p)
    for a, w in zip(got, want, strict=True):
        _close(a, w, dtype, 4, magnitude=8.0)


def test_numpy_read_only_parameter_is_not_written():
    from xpnet.ops import numpy as fast

    xp = xpnet.get_backend("numpy").xp
    p = np.arange(4.0)
    p.flags.writeable = False
    new = fast.sgd_update(p, np.ones(4), lr=0.5, xp=xp)
    np.testing.assert_array_equal(p, np.arange(4.0))
    np.testing.assert_array_equal(new, np.arange(4.0) - 0.5)


@pytest.mark.float64
@pytest.mark.parametrize("optimizer", [lambda: xpnet.SGD(0.5), lambda: xpnet.Adam(0.01)])
def test_training_is_the_same_with_the_fast_paths_off(backend, fast, monkeypatch, optimizer):
    """Three steps of a sigmoid MLP in float64 with the fast ops and with generic ones."""
    rng = np.random.default_rng(0)
    X, T = rng.random((8, 5)), (rng.random((8, 3)) < 0.5).astype(float)

    def train():
        net = xpnet.MLP([5, 7, 3], backend=backend, dtype="float64", seed=2)
        xpnet.fit(net, X, T, loss=xpnet.SSELoss(), optimizer=optimizer(), epochs=3, batch_size=4)
        return {k: xpnet.to_numpy(v) for k, v in net.parameters().items()}

    fast_params = train()
    monkeypatch.setattr(ops, "_CHOSEN", {})
    monkeypatch.setattr(ops, "_FAST", ())
    generic_params = train()
    for k, v in generic_params.items():
        np.testing.assert_allclose(fast_params[k], v, rtol=1e-12, atol=1e-14)


def _sgd_step(net, x, t, opt):
    loss = xpnet.SSELoss()

    def step():
        value = loss.forward(net.forward(x), t)
        net.backward(loss.backward(), input_grad=False)
        opt.step(net)
        return value

    return step


def test_cuda_graph_replays_the_step():
    """A captured SGD step, replayed, moves the weights as eager steps do (torch-cuda only)."""
    torch = pytest.importorskip("torch", reason="torch not installed")
    if not torch.cuda.is_available():
        pytest.skip("torch has no CUDA device")
    from xpnet.ops.torch import capture

    rng = np.random.default_rng(0)
    X, T = rng.random((16, 4)), (rng.random((16, 2)) < 0.5).astype(float)
    nets = [
        xpnet.MLP([4, 6, 2], backend="torch", device="cuda", dtype="float64", seed=1)
        for _ in range(2)
    ]
    x, t = xpnet.asarray(X, like=nets[0]), xpnet.asarray(T, like=nets[0])
    runs = []
    for net, graphed in zip(nets, (False, True), strict=True):
        opt = xpnet.SGD(lr=0.3)
        step = _sgd_step(net, x, t, opt)
        if graphed:
            replay = capture(step, net, opt)  # two eager steps, then the capture
            values = [float(xpnet.to_numpy(replay())) for _ in range(3)]
        else:
            values = [float(xpnet.to_numpy(step())) for _ in range(5)][2:]
        runs.append((values, net.parameters()))
    np.testing.assert_allclose(runs[1][0], runs[0][0], rtol=1e-12)
    assert runs[0][0][0] != runs[0][0][-1]  # the steps moved the loss: replays are not no-ops
    for k, p in runs[0][1].items():
        np.testing.assert_allclose(xpnet.to_numpy(runs[1][1][k]), xpnet.to_numpy(p), rtol=1e-12)
    with pytest.raises(ValueError, match="Adam cannot be captured in a CUDA graph"):
        capture(step, nets[0], xpnet.Adam())


def test_capture_refuses_a_net_off_the_gpu():
    """A graph records CUDA work only: a CPU net's step would replay as nothing."""
    pytest.importorskip("torch", reason="torch not installed")
    from xpnet.ops.torch import capture

    net = xpnet.MLP([4, 6, 2], backend="torch", device="cpu", seed=1)
    x, t = xpnet.asarray(np.ones((3, 4)), like=net), xpnet.asarray(np.zeros((3, 2)), like=net)
    opt = xpnet.SGD(lr=0.3)
    with pytest.raises(ValueError, match="capture records CUDA work, and this net is on cpu"):
        capture(_sgd_step(net, x, t, opt), net, opt)
    np.testing.assert_array_equal(
        xpnet.to_numpy(net.parameters()["W1"]),
        xpnet.to_numpy(
            xpnet.MLP([4, 6, 2], backend="torch", device="cpu", seed=1).parameters()["W1"]
        ),
    )
