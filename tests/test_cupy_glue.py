"""The Python glue of ops/cupy.py (which kernel each function calls, with which arguments in
which order, which outputs it allocates or passes, how it launches a row kernel, when it falls
back to generic) under a fake `cupy`: NumPy's namespace plus ElementwiseKernel,
ReductionKernel and RawModule classes that keep CuPy's calling conventions and run the CUDA
bodies on the CPU with tests/cuda_harness.py. No GPU or CuPy needed, only gcc."""

from __future__ import annotations

import importlib
import re
import sys
import types

import numpy as np
import pytest
from cuda_harness import GCC, run_elementwise, run_reduction, run_rows

from xpnet import ops
from xpnet.ops import cuda_code as code
from xpnet.ops import generic

pytestmark = pytest.mark.skipif(GCC is None, reason="gcc is needed to run the CUDA kernels")

ACTS = code.FUSED_ACTIVATIONS
FLOATS = (np.dtype(np.float32), np.dtype(np.float64))


def _names(params):
    """'T x, T y' -> ['x', 'y'] (every parameter of xpnet's kernels is of type T)."""
    pairs = [p.split() for p in params.split(",")]
    assert all(kind == "T" for kind, _ in pairs), params
    return [name for _, name in pairs]


def _t_dtype(arrays, name):
    """The one dtype of the array arguments (CuPy: TypeError 'Type is mismatched')."""
    dtypes = {a.dtype for a in arrays}
    if len(dtypes) != 1:
        raise TypeError(f"Type is mismatched in {name}: {sorted(map(str, dtypes))}")
    (dtype,) = dtypes
    if dtype not in FLOATS:  # CuPy would compile T = this type; the harness has no such T
        raise NotImplementedError(f"{name} called with T = {dtype}: not what it is written for")
    return dtype


def _check_input(value, name):
    """An array or a scalar: what CuPy takes as an input (a scalar is cast to T)."""
    if not isinstance(value, np.ndarray | np.generic | int | float):
        raise TypeError(f"Unsupported type {type(value)} for {name}")


class ElementwiseKernel:
    """cupy.ElementwiseKernel: called with the inputs, then all outputs or none (TypeError
    otherwise); array inputs broadcast together with the outputs, scalars cast to T; outputs
    given must be arrays of T of the broadcast shape (ValueError) and are written in place;
    missing ones are allocated (here NaN-filled: a body that reads one shows). Returns the
    output, or a tuple of them."""

    def __init__(self, in_params, out_params, operation, name="kernel", **kwargs):
        assert not kwargs, kwargs
        self.kernel = code.Elementwise(in_params, out_params, operation, name)
        self.inputs, self.outputs = _names(in_params), _names(out_params)

    def __call__(self, *args, size=None):
        assert size is None
        nin, nout, name = len(self.inputs), len(self.outputs), self.kernel.name
        if len(args) not in (nin, nin + nout):
            raise TypeError(f"Wrong number of arguments for {name}")
        ins, outs = args[:nin], args[nin:]
        for value, param in zip(ins, self.inputs, strict=True):
            _check_input(value, param)
        if not all(isinstance(o, np.ndarray) for o in outs):
            raise TypeError("Output arguments must be cupy.ndarray")
        arrays = [a for a in (*ins, *outs) if isinstance(a, np.ndarray)]
        dtype = _t_dtype(arrays, name)
        shape = np.broadcast_shapes(*(a.shape for a in arrays))
        if any(o.shape != shape for o in outs):
            raise ValueError(f"Out shape is mismatched in {name}")
        CALLS.append(name)
        start = outs or [np.full(shape, np.nan, dtype) for _ in self.outputs]
        named = dict(zip(self.inputs, ins, strict=True))
        named.update(zip(self.outputs, start, strict=True))
        got = run_elementwise(self.kernel, dtype, **named)
        results = outs or [np.empty(shape, dtype) for _ in self.outputs]
        for out, key in zip(results, self.outputs, strict=True):
            out[...] = got[key]
        return results[0] if nout == 1 else tuple(results)


class ReductionKernel:
    """cupy.ReductionKernel over all axes (the default): a 0-d array of T."""

    def __init__(self, in_params, out_params, map_expr, reduce_expr, post_map_expr, identity, name):
        self.kernel = code.Reduction(
            in_params, out_params, map_expr, reduce_expr, post_map_expr, identity, name
        )
        self.inputs = _names(in_params)

    def __call__(self, *args, out=None, axis=None, keepdims=False):
        assert out is None and axis is None and not keepdims
        if len(args) != len(self.inputs):  # nin + nout is allowed too, but unused here
            raise TypeError(f"Wrong number of arguments for {self.kernel.name}")
        arrays = [a for a in args if isinstance(a, np.ndarray)]
        dtype = _t_dtype(arrays, self.kernel.name)
        CALLS.append(self.kernel.name)
        return np.asarray(
            run_reduction(self.kernel, dtype, **dict(zip(self.inputs, args, strict=True)))
        )


_C_TYPES = {"T": None, "int": np.dtype(np.int32)}


class RawKernel:
    """A row kernel of code.row_source: CuPy passes array pointers and NumPy scalars as they
    are, unchecked, so here the arguments are checked against the C signature (count; T*
    a C-contiguous array of T; T a scalar of T; int a numpy.int32) and the block must be
    one warp; the blocks of the grid then run one by one with WARP 1."""

    def __init__(self, name, ctype, params):
        self.name, self.ctype = name, ctype
        self.dtype = np.dtype(np.float32 if ctype == "float" else np.float64)
        self.params = [p.replace("const", "").split() for p in params.split(",")]

    def __call__(self, grid, block, args):
        grid, block = tuple(grid), tuple(block)
        assert block == (code.WARP,), f"{self.name}: block {block}, not one warp"
        assert len(grid) == 1 and isinstance(grid[0], int), grid
        if grid[0] < 1:  # cuLaunchKernel: CUDA_ERROR_INVALID_VALUE
            raise ValueError(f"{self.name}: a grid of {grid[0]} blocks")
        if len(args) != len(self.params):
            raise TypeError(f"{self.name} takes {len(self.params)} arguments, got {len(args)}")
        for value, (kind, name) in zip(args, self.params, strict=True):
            if kind.endswith("*"):
                ok = isinstance(value, np.ndarray) and value.dtype == self.dtype
                assert ok and value.flags.c_contiguous, f"{self.name}: {name} is {value!r}"
            else:
                want = _C_TYPES[kind] or self.dtype
                assert type(value) is want.type, f"{self.name}: {name} is {value!r}, not {want}"
        CALLS.append(self.name)
        run_rows(self.name, self.dtype, grid[0], *args)


class RawModule:
    """cupy.RawModule(code=...): its get_function(name) gives the kernel of that name."""

    def __init__(self, code, **kwargs):
        ctype = re.match(r"typedef (\w+) T;", code).group(1)
        found = re.findall(r'extern "C" __global__ void (\w+)\(([^)]*)\)', code)
        self.kernels = {name: RawKernel(name, ctype, params) for name, params in found}

    def get_function(self, name):
        return self.kernels[name]


CALLS: list[str] = []  # the kernels run, by name, in order
IMPORTED: list[types.ModuleType] = []  # the modules the fixture gave


def _empty(shape, dtype=float):
    """cupy.empty: uninitialised memory, here NaN where the dtype has it."""
    a = np.empty(shape, dtype)
    if a.dtype.kind == "f":
        a[...] = np.nan
    return a


def _empty_like(a, dtype=None):
    return _empty(a.shape, a.dtype if dtype is None else dtype)


def _fake_modules():
    """cupy, cupyx, cupyx.scipy and cupyx.scipy.special as NumPy with the kernel classes."""
    import scipy.special

    cupy = types.ModuleType("cupy")
    cupy.__dict__.update({k: getattr(np, k) for k in dir(np) if not k.startswith("_")})
    cupy.__dict__.update(empty=_empty, empty_like=_empty_like)
    cupy.__dict__.update(ElementwiseKernel=ElementwiseKernel, ReductionKernel=ReductionKernel)
    cupy.RawModule = RawModule
    special = types.ModuleType("cupyx.scipy.special")
    special.erf, special.erfc = scipy.special.erf, scipy.special.erfc
    cupyx, scipy_ = types.ModuleType("cupyx"), types.ModuleType("cupyx.scipy")
    cupyx.scipy, scipy_.special = scipy_, special
    return {"cupy": cupy, "cupyx": cupyx, "cupyx.scipy": scipy_, "cupyx.scipy.special": special}


@pytest.fixture
def cp(monkeypatch):
    """xpnet.ops.cupy imported afresh under the fake cupy; sys.modules, xpnet.ops' attribute
    and ops_for's cache are put back afterwards."""
    for name, module in _fake_modules().items():
        monkeypatch.setitem(sys.modules, name, module)
    monkeypatch.setitem(sys.modules, "xpnet.ops.cupy", None)  # undone: the real one, or none
    monkeypatch.delitem(sys.modules, "xpnet.ops.cupy")
    monkeypatch.setattr(ops, "cupy", None, raising=False)  # undone: the real one, or none
    monkeypatch.setattr(ops, "_CHOSEN", {})
    CALLS.clear()
    module = importlib.import_module("xpnet.ops.cupy")
    assert module.cupy is sys.modules["cupy"]
    IMPORTED.append(module)
    yield module
    CALLS.clear()


@pytest.fixture(params=FLOATS, ids=str)
def dtype(request):
    return request.param.type


def _normal(dtype, *shape, seed=0, scale=1.0):
    return np.random.default_rng(seed).normal(0.0, scale, shape).astype(dtype)


def _close(got, want, dtype, scale=1.0):
    """Equal to a few roundings (`scale` times 8 ulps, relative)."""
    assert np.asarray(got).dtype == np.dtype(dtype)
    eps = float(np.finfo(dtype).eps)
    np.testing.assert_allclose(got, want, rtol=8 * eps * scale, atol=8 * eps * scale * 1e-3)


# -- the fake itself keeps CuPy's rules -----------------------------------------------------


def test_the_fake_refuses_what_cupy_refuses(cp):
    kernel = cp.cupy.ElementwiseKernel(*code.MOMENTUM)
    g = p = v = np.zeros(3)
    with pytest.raises(TypeError):  # some outputs but not all
        kernel(g, 0.1, 0.9, p)
    with pytest.raises(TypeError):  # T of two dtypes
        kernel(g, 0.1, 0.9, p.astype(np.float32), v)
    with pytest.raises(ValueError):  # an output smaller than the broadcast shape
        kernel(np.zeros((2, 3)), 0.1, 0.9, p, v)
    bias = cp.cupy.ElementwiseKernel(*code.bias_activation("identity"))
    y = np.ones((2, 3))
    assert bias(np.arange(3.0), y) is y and np.all(y == [1.0, 2.0, 3.0])
    assert bias(np.arange(3.0)).shape == (3,)  # y allocated with the broadcast shape


def test_ops_for_the_fake_namespace_takes_the_fused_functions(cp):
    chosen = ops.ops_for(cp.cupy)
    assert chosen.sigmoid is cp.sigmoid and chosen.tanh is generic.tanh


# -- each function against generic, and its fallback ----------------------------------------


def test_sigmoid(cp, dtype):
    x = _normal(dtype, 4, 5, scale=4)
    want = generic.sigmoid(x, np)
    _close(cp.sigmoid(x, cp.cupy), want, dtype)
    y = cp.sigmoid_inplace(x, cp.cupy)
    assert y is x
    _close(x, want, dtype)
    assert CALLS == ["xpnet_sigmoid"] * 2


@pytest.mark.parametrize("name", ["sigmoid", "tanh"])
def test_backward(cp, dtype, name):
    y = getattr(generic, name)(_normal(dtype, 4, 5), np)
    g = _normal(dtype, 4, 5, seed=1)
    want = getattr(generic, f"{name}_backward")(y, g, np)
    _close(getattr(cp, f"{name}_backward")(y, g, cp.cupy), want, dtype, scale=2)
    assert CALLS == [f"xpnet_{name}_bw"]
    y_row = y[:1]  # a broadcast: the generic expression
    want = getattr(generic, f"{name}_backward")(y_row, g, np)
    np.testing.assert_array_equal(getattr(cp, f"{name}_backward")(y_row, g, cp.cupy), want)
    assert len(CALLS) == 1


def test_tanh_inplace(cp, dtype):
    x = _normal(dtype, 3, 4)
    want = np.tanh(x)
    assert cp.tanh_inplace(x, cp.cupy) is x
    np.testing.assert_array_equal(x, want)


@pytest.mark.parametrize("name", ACTS)
def test_bias_activation_inplace(cp, dtype, name):
    y, b = _normal(dtype, 4, 5, scale=3), _normal(dtype, 5, seed=1)
    want = getattr(generic, name)(y + b, np)
    out = getattr(cp, f"bias_{name}_inplace")(y, b, cp.cupy)
    assert out is y
    _close(y, want, dtype)
    assert CALLS == [f"xpnet_bias_{name}"]
    y = _normal(dtype, 4, 5, scale=3)  # a bias of another dtype: the two generic steps
    b64 = b.astype(np.float64 if dtype is np.float32 else np.float32)
    summed = y.copy()
    summed += b64
    want = getattr(generic, name)(summed, np)
    np.testing.assert_array_equal(getattr(cp, f"bias_{name}_inplace")(y, b64, cp.cupy), want)
    assert len(CALLS) == 1


def _uniform(dtype, *shape, seed=3):
    return np.random.default_rng(seed).random(shape).astype(dtype)


def test_dropout(cp, dtype):
    x, u = _normal(dtype, 4, 6), _uniform(dtype, 4, 6)
    out, mask = cp.dropout(x, u, 0.3, cp.cupy)
    want_out, want_mask = generic.dropout(x, u, 0.3, np)
    np.testing.assert_array_equal(mask, want_mask)
    np.testing.assert_array_equal(out, want_out)
    assert CALLS == ["xpnet_dropout"]
    u16 = u.astype(np.float16)  # u of another dtype: generic
    for got, want in zip(
        cp.dropout(x, u16, 0.3, cp.cupy), generic.dropout(x, u16, 0.3, np), strict=True
    ):
        np.testing.assert_array_equal(got, want)
    assert len(CALLS) == 1


@pytest.mark.parametrize("name", ACTS)
def test_bias_activation_dropout_inplace(cp, dtype, name):
    y, b, u = _normal(dtype, 4, 6, scale=3), _normal(dtype, 6, seed=1), _uniform(dtype, 4, 6)
    act = getattr(generic, name)(y + b, np)
    want_out, want_mask = generic.dropout(act, u, 0.25, np)
    got_y, out, mask = getattr(cp, f"bias_{name}_dropout_inplace")(y, b, u, 0.25, cp.cupy)
    assert got_y is y
    _close(y, act, dtype)
    np.testing.assert_array_equal(mask, want_mask)
    _close(out, want_out, dtype)
    assert CALLS == [f"xpnet_bias_{name}_dropout"]
    y = _normal(dtype, 4, 6, scale=3)  # u of one row: the bias kernel, then generic dropout
    got_y, out, mask = getattr(cp, f"bias_{name}_dropout_inplace")(y, b, u[:1], 0.25, cp.cupy)
    _close(got_y, act, dtype)
    for g, w in zip((out, mask), generic.dropout(got_y, u[:1], 0.25, np), strict=True):
        np.testing.assert_array_equal(g, w)
    assert CALLS == [f"xpnet_bias_{name}_dropout", f"xpnet_bias_{name}"]


@pytest.mark.parametrize("name", ACTS)
def test_dropout_backward(cp, dtype, name):
    y = getattr(generic, name)(_normal(dtype, 4, 6), np)
    _, mask = generic.dropout(y, _uniform(dtype, 4, 6), 0.4, np)
    grad = _normal(dtype, 4, 6, seed=5)
    want = getattr(generic, f"{name}_backward")(y, grad * mask, np)
    _close(getattr(cp, f"{name}_dropout_backward")(y, mask, grad, cp.cupy), want, dtype, 2)
    assert CALLS == [f"xpnet_{name}_dropout_bw"]
    got = getattr(cp, f"{name}_dropout_backward")(y, mask, grad[:1], cp.cupy)
    want = getattr(generic, f"{name}_backward")(y, grad[:1] * mask, np)
    np.testing.assert_array_equal(got, want)
    assert len(CALLS) == 1


@pytest.mark.parametrize("name", ACTS)
@pytest.mark.parametrize("masked", [False, True])
def test_backward_bias_grad(cp, dtype, name, masked):
    rows, cols = 7, 5
    y = getattr(generic, name)(_normal(dtype, rows, cols, scale=2), np)
    grad = _normal(dtype, rows, cols, seed=1)
    mask = generic.dropout(y, _uniform(dtype, rows, cols), 0.25, np)[1] if masked else None
    want = getattr(generic, f"{name}_backward")(y, grad * mask if masked else grad, np)
    fused = getattr(cp, f"{name}_backward_bias_grad")
    db = np.full(cols, np.nan, dtype)
    _close(fused(y, grad, mask, db, cp.cupy), want, dtype, scale=2)
    _close(db, want.sum(axis=0), dtype, scale=2 * rows)
    assert CALLS == [code.backward_bias_kernel_name(name)]
    db_strided = np.full((cols, 2), np.nan, dtype)[:, 0]  # not contiguous: generic
    np.testing.assert_array_equal(fused(y, grad, mask, db_strided, cp.cupy), want)
    np.testing.assert_array_equal(db_strided, want.sum(axis=0))
    assert len(CALLS) == 1


def test_layer_norm_and_backward(cp, dtype):
    rows, cols = 5, 7
    x = _normal(dtype, rows, cols, scale=2)
    gamma, beta = _normal(dtype, cols, seed=1), _normal(dtype, cols, seed=2)
    got = cp.layer_norm(x, gamma, beta, 1e-5, cp.cupy)
    want = generic.layer_norm(x, gamma, beta, 1e-5, np)
    for g, w in zip(got, want, strict=True):
        assert g.shape == w.shape
        _close(g, w, dtype, scale=4 * cols)
    grad = _normal(dtype, rows, cols, seed=3)
    _, x_hat, inv_std = want
    got = cp.layer_norm_backward(grad, x_hat, inv_std, gamma, cp.cupy)
    want = generic.layer_norm_backward(grad, x_hat, inv_std, gamma, np)
    scale = float(np.abs(grad * gamma).max() * inv_std.max())
    np.testing.assert_allclose(got, want, atol=16 * cols * float(np.finfo(dtype).eps) * scale)
    assert CALLS == ["xpnet_layer_norm", "xpnet_layer_norm_backward"]
    xt = np.asfortranarray(x)  # not C-contiguous: generic
    for g, w in zip(
        cp.layer_norm(xt, gamma, beta, 1e-5, cp.cupy),
        generic.layer_norm(xt, gamma, beta, 1e-5, np),
        strict=True,
    ):
        np.testing.assert_array_equal(g, w)
    inv_strided = np.repeat(inv_std, 2, axis=1)[:, :1]  # not contiguous: generic
    got = cp.layer_norm_backward(grad, x_hat, inv_strided, gamma, cp.cupy)
    want = generic.layer_norm_backward(grad, x_hat, inv_strided, gamma, np)
    np.testing.assert_array_equal(got, want)
    assert len(CALLS) == 2


@pytest.mark.filterwarnings("ignore::RuntimeWarning")  # generic's means of no columns
@pytest.mark.parametrize("shape", [(0, 5), (4, 0)])
def test_row_kernels_leave_an_empty_batch_to_generic(cp, shape):
    """No rows (or no columns): generic's empty results, not x[0]'s IndexError or a launch of
    no blocks."""
    x, gamma = np.ones(shape), np.ones(shape[1])
    for g, w in zip(
        cp.layer_norm(x, gamma, gamma, 1e-5, cp.cupy),
        generic.layer_norm(x, gamma, gamma, 1e-5, np),
        strict=True,
    ):
        np.testing.assert_array_equal(g, w)
    inv_std = np.ones((shape[0], 1))
    got = cp.layer_norm_backward(x, x, inv_std, gamma, cp.cupy)
    np.testing.assert_array_equal(got, generic.layer_norm_backward(x, x, inv_std, gamma, np))
    db = np.full(shape[1], np.nan)
    np.testing.assert_array_equal(cp.relu_backward_bias_grad(x, x, None, db, cp.cupy), x)
    np.testing.assert_array_equal(db, np.zeros(shape[1]))
    assert CALLS == []


def test_softmax_cross_entropy(cp, dtype):
    rows, cols = 6, 4
    Z = _normal(dtype, rows, cols, scale=3)
    T = np.eye(cols, dtype=dtype)[np.arange(rows) % cols]
    value, grad = cp.softmax_cross_entropy(Z, T, cp.cupy)
    want_value, want_grad = generic.softmax_cross_entropy(Z, T, np)
    _close(value, want_value, dtype, scale=4 * cols)
    np.testing.assert_allclose(grad, want_grad, atol=8 * float(np.finfo(dtype).eps) / rows)
    assert CALLS == ["xpnet_softmax_cross_entropy"]
    got = cp.softmax_cross_entropy(Z[:, :1].ravel(), T[:, :1].ravel(), cp.cupy)  # 1-D: generic
    want = generic.softmax_cross_entropy(Z[:, :1].ravel(), T[:, :1].ravel(), np)
    for g, w in zip(got, want, strict=True):
        np.testing.assert_array_equal(g, w)
    assert len(CALLS) == 1


def test_sse(cp, dtype):
    Y, T = _normal(dtype, 8, 3), _normal(dtype, 8, 3, seed=1)
    value, D = cp.sse(Y, T, cp.cupy)
    want_value, want_D = generic.sse(Y, T, np)
    assert value.shape == ()
    _close(value, want_value, dtype, scale=Y.size)
    np.testing.assert_array_equal(D, want_D)
    assert CALLS == ["xpnet_half_sum_of_squares"]
    for g, w in zip(cp.sse(Y, T[:1], cp.cupy), generic.sse(Y, T[:1], np), strict=True):
        np.testing.assert_array_equal(g, w)
    assert len(CALLS) == 1


def test_optimizer_updates(cp, dtype):
    p, g = _normal(dtype, 6, 3), _normal(dtype, 6, 3, seed=1)
    m, v = _normal(dtype, 6, 3, seed=2), np.abs(_normal(dtype, 6, 3, seed=3))
    want = generic.sgd_update(p, g, lr=0.1, xp=np)
    q = p.copy()
    assert cp.sgd_update(q, g, lr=0.1, xp=cp.cupy) is q
    _close(q, want, dtype, scale=2)
    want_p, want_v = generic.momentum_update(p, g, v, lr=0.1, momentum=0.9, xp=np)
    q, w = p.copy(), v.copy()
    got = cp.momentum_update(q, g, w, lr=0.1, momentum=0.9, xp=cp.cupy)
    assert got[0] is q and got[1] is w
    _close(q, want_p, dtype, scale=2)
    _close(w, want_v, dtype, scale=2)
    scalars = generic.AdamScalars.at_step(3, lr=1e-3, beta1=0.9, beta2=0.999, eps=1e-8)
    want = generic.adam_update(p, g, m, v, scalars, xp=np)
    state = (p.copy(), m.copy(), v.copy())
    got = cp.adam_update(state[0], g, state[1], state[2], scalars, xp=cp.cupy)
    assert all(a is b for a, b in zip(got, state, strict=True))
    for a, b in zip(got, want, strict=True):
        _close(a, b, dtype, scale=4)
    assert CALLS == ["xpnet_sgd", "xpnet_momentum", "xpnet_adam"]


def test_optimizer_updates_fall_back_to_generic(cp, dtype):
    p, g = _normal(dtype, 6, 3), _normal(dtype, 3, seed=1)  # g broadcast along the rows
    v, m = _normal(dtype, 6, 3, seed=2), _normal(dtype, 6, 3, seed=3)
    np.testing.assert_array_equal(
        cp.sgd_update(p, g, lr=0.1, xp=cp.cupy), generic.sgd_update(p, g, lr=0.1, xp=np)
    )
    got = cp.momentum_update(p, g, v, lr=0.1, momentum=0.9, xp=cp.cupy)
    want = generic.momentum_update(p, g, v, lr=0.1, momentum=0.9, xp=np)
    for a, b in zip(got, want, strict=True):
        np.testing.assert_array_equal(a, b)
    scalars = generic.AdamScalars.at_step(1, lr=1e-3, beta1=0.9, beta2=0.999, eps=1e-8)
    got = cp.adam_update(p, g, m, np.abs(v), scalars, xp=cp.cupy)
    want = generic.adam_update(p, g, m, np.abs(v), scalars, xp=np)
    for a, b in zip(got, want, strict=True):
        np.testing.assert_array_equal(a, b)
    assert CALLS == []


@pytest.mark.parametrize("name", ["sigmoid", "sigmoid_inplace"])
def test_sigmoid_falls_back_to_generic(cp, name):
    x = _normal(np.float16, 3, 4)
    np.testing.assert_array_equal(getattr(cp, name)(x, cp.cupy), generic.sigmoid(x, np))
    assert CALLS == []


def test_no_fake_is_left_behind():
    """After the tests above, nothing refers to the fake modules or what they imported."""
    assert IMPORTED
    fakes = {id(m) for m in IMPORTED} | {id(m.cupy) for m in IMPORTED}
    assert all(id(m) not in fakes for m in sys.modules.values())
    assert id(getattr(ops, "cupy", None)) not in fakes
    assert all(
        id(getattr(c, "sigmoid", None)) != id(IMPORTED[0].sigmoid) for c in ops._CHOSEN.values()
    )
    assert "cupy" not in ops._CHOSEN
