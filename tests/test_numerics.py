"""The generic ops against float64 references computed with Python's math module."""

from __future__ import annotations

import math

import numpy as np
import pytest

import xpnet
from xpnet.ops import generic


def _on(backend, values, dtype):
    return xpnet.asarray(np.asarray(values, dtype=np.float64), like=backend, dtype=dtype)


def _eps(dtype: str) -> float:
    return float(np.finfo(dtype).eps)


def _sigmoid_ref(x: float) -> float:
    return 1.0 / (1.0 + math.exp(-x)) if x >= 0 else math.exp(x) / (1.0 + math.exp(x))


def test_sigmoid_keeps_the_lower_tail_in_float32(backend):
    y = xpnet.to_numpy(generic.sigmoid(_on(backend, [-20.0], "float32"), backend.xp))
    assert y.dtype == np.float32
    assert y[0] == pytest.approx(2.0611536e-9, rel=1e-6)


def _flushes_subnormals(backend, dtype) -> bool:
    """Whether the library's arithmetic flushes subnormal results to zero (XLA on the CPU,
    hence JAX, does: its kernels run with FTZ/DAZ)."""
    tiny = _on(backend, [np.finfo(dtype).tiny], dtype)
    return bool(xpnet.to_numpy(tiny / 4.0)[0] == 0)


def test_sigmoid_matches_math_without_warnings_for_any_finite_input(backend, dtype):
    xs = [-1e30, -1000.0, -88.0, -20.0, -1.0, -1e-8, 0.0, 1e-8, 1.0, 20.0, 88.0, 1000.0, 1e30]
    y = xpnet.to_numpy(generic.sigmoid(_on(backend, xs, dtype), backend.xp))
    expected = np.array([_sigmoid_ref(x) for x in xs], dtype=dtype)
    # sigmoid(-88) is subnormal in float32: 0 where the library flushes subnormals, and only
    # there (the tail above the smallest normal number is kept on every backend)
    atol = float(np.finfo(dtype).tiny) if _flushes_subnormals(backend, dtype) else 0
    np.testing.assert_allclose(y, expected, rtol=4 * _eps(dtype), atol=atol)


def test_sigmoid_backward_is_grad_y_one_minus_y_and_at_most_a_quarter(backend, dtype):
    x = np.linspace(-6, 6, 25)
    y = generic.sigmoid(_on(backend, x, dtype), backend.xp)
    g = xpnet.to_numpy(generic.sigmoid_backward(y, _on(backend, np.ones(25), dtype), backend.xp))
    ref = np.array([_sigmoid_ref(v) * (1 - _sigmoid_ref(v)) for v in x])
    np.testing.assert_allclose(g, ref, rtol=64 * _eps(dtype), atol=8 * _eps(dtype))
    assert g.max() == pytest.approx(0.25, rel=_eps(dtype) * 4)
    assert g.max() <= 0.25


def test_tanh_and_relu_with_their_backward(backend, dtype):
    xp = backend.xp
    x = np.array([-2.0, -0.5, 0.0, 0.5, 2.0])
    grad = _on(backend, [1.0, 2.0, 3.0, 4.0, 5.0], dtype)
    t = generic.tanh(_on(backend, x, dtype), xp)
    r = generic.relu(_on(backend, x, dtype), xp)
    tol = dict(rtol=8 * _eps(dtype), atol=8 * _eps(dtype))
    np.testing.assert_allclose(xpnet.to_numpy(t), np.tanh(x), **tol)
    np.testing.assert_allclose(
        xpnet.to_numpy(generic.tanh_backward(t, grad, xp)),
        [g * (1 - math.tanh(v) ** 2) for g, v in zip([1, 2, 3, 4, 5], x, strict=True)],
        **tol,
    )
    np.testing.assert_array_equal(xpnet.to_numpy(r), [0.0, 0.0, 0.0, 0.5, 2.0])
    np.testing.assert_array_equal(
        xpnet.to_numpy(generic.relu_backward(r, grad, xp)), [0.0, 0.0, 0.0, 4.0, 5.0]
    )


def test_softmax_and_log_softmax_are_stable_for_huge_logits(backend, dtype):
    z = [[1000.0, 0.0, -1000.0], [1.0, 2.0, 3.0]]
    logp = xpnet.to_numpy(generic.log_softmax(_on(backend, z, dtype), backend.xp))
    p = xpnet.to_numpy(generic.softmax(_on(backend, z, dtype), backend.xp))
    lse = math.log(math.exp(1) + math.exp(2) + math.exp(3))
    expected = [[0.0, -1000.0, -2000.0], [1 - lse, 2 - lse, 3 - lse]]
    np.testing.assert_allclose(logp, expected, rtol=8 * _eps(dtype), atol=8 * _eps(dtype))
    np.testing.assert_allclose(p, np.exp(np.array(expected)), rtol=16 * _eps(dtype), atol=1e-30)
    np.testing.assert_allclose(p.sum(axis=1), 1.0, rtol=4 * _eps(dtype))
