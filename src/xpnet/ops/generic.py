"""The math of xpnet in the array API standard only: the reference every fast path is tested
against. Each function takes the namespace `xp` explicitly, resolved once by the caller."""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from types import ModuleType
from typing import Any, NamedTuple

import numpy as np
from array_api_compat import device

__all__ = [
    "AdamScalars",
    "adam_update",
    "dropout",
    "erf",
    "erfc",
    "gelu",
    "gelu_backward",
    "gelu_backward_from_cdf",
    "gelu_from_cdf",
    "identity",
    "identity_backward",
    "identity_inplace",
    "layer_norm",
    "layer_norm_backward",
    "leaky_relu",
    "leaky_relu_backward",
    "leaky_relu_inplace",
    "linear",
    "linear_backward",
    "linear_backward_into",
    "log_softmax",
    "moments",
    "momentum_update",
    "normalize",
    "normalize_backward",
    "relu",
    "relu_backward",
    "relu_inplace",
    "seed_of",
    "sgd_update",
    "sigmoid",
    "sigmoid_backward",
    "sigmoid_inplace",
    "silu",
    "silu_backward",
    "softmax",
    "softmax_cross_entropy",
    "softplus",
    "softplus_backward",
    "sse",
    "tanh",
    "tanh_backward",
    "tanh_inplace",
    "tree_map",
    "uniform_source",
]

Array = Any


def sigmoid(x: Array, xp: ModuleType) -> Array:
    """1 / (1 + exp(-x)) in the split form: no overflow for any finite x, no lost lower tail."""
    e = xp.exp(-xp.abs(x))
    r = 1.0 / (1.0 + e)
    return xp.where(x >= 0, r, e * r)


def sigmoid_inplace(x: Array, xp: ModuleType) -> Array:
    """sigmoid(x), allowed to overwrite x (the caller does not read x again); the array API
    has no `out=`, so here it is a new array."""
    return sigmoid(x, xp)


def sigmoid_backward(y: Array, grad: Array, xp: ModuleType) -> Array:
    """dL/dx from the cached output y = sigmoid(x): grad * y * (1 - y)."""
    return grad * y * (1.0 - y)


def tanh(x: Array, xp: ModuleType) -> Array:
    return xp.tanh(x)


def tanh_inplace(x: Array, xp: ModuleType) -> Array:
    return tanh(x, xp)


def tanh_backward(y: Array, grad: Array, xp: ModuleType) -> Array:
    """dL/dx from the cached output y = tanh(x): grad * (1 - y**2)."""
    return grad * (1.0 - y * y)


def relu(x: Array, xp: ModuleType) -> Array:
    return xp.where(x > 0, x, 0.0)


def relu_inplace(x: Array, xp: ModuleType) -> Array:
    return relu(x, xp)


def relu_backward(y: Array, grad: Array, xp: ModuleType) -> Array:
    """dL/dx from the cached output y = relu(x): grad where y > 0, else 0."""
    return xp.where(y > 0, grad, 0.0)


def identity(x: Array, xp: ModuleType) -> Array:
    return x


def identity_inplace(x: Array, xp: ModuleType) -> Array:
    return x


def identity_backward(y: Array, grad: Array, xp: ModuleType) -> Array:
    return grad


# -- the modern activations: GELU (exact), SiLU, LeakyReLU, Softplus -------------------------
# GELU, SiLU and Softplus take their backward from the input x (their derivatives are not
# functions of y alone); LeakyReLU, like ReLU, from the output y, or from x for a negative
# slope (the same formula serves both). Parameters (LeakyReLU's slope) are keyword arguments.

_SQRT_HALF = math.sqrt(0.5)
_INV_SQRT_2PI = 1.0 / math.sqrt(2.0 * math.pi)
_SOFTPLUS_THRESHOLD = 20.0  # torch.nn.Softplus's default: linear above it


def gelu(x: Array, xp: ModuleType) -> Array:
    """x * Phi(x), Phi the standard normal CDF, as 0.5 * x * erfc(-x / sqrt(2)): exact GELU
    (torch.nn.GELU()'s), without the cancellation of torch's 1 + erf(x / sqrt(2)), so the lower
    tail keeps its relative precision."""
    return gelu_from_cdf(x, 0.5 * erfc(-_SQRT_HALF * x, xp))


def gelu_backward(x: Array, grad: Array, xp: ModuleType) -> Array:
    """dL/dx from the cached input x: grad * (Phi(x) + x * phi(x)), phi the normal density."""
    return gelu_backward_from_cdf(x, 0.5 * erfc(-_SQRT_HALF * x, xp), grad, xp)


def gelu_from_cdf(x: Array, cdf: Array) -> Array:
    """GELU from x and Phi(x): what the fast paths share with `gelu`, computing Phi with their
    library's erfc."""
    return x * cdf


def gelu_backward_from_cdf(x: Array, cdf: Array, grad: Array, xp: ModuleType) -> Array:
    """GELU's backward from x and Phi(x) (see `gelu_from_cdf`)."""
    return grad * (cdf + x * xp.exp(-0.5 * x * x) * _INV_SQRT_2PI)


def silu(x: Array, xp: ModuleType) -> Array:
    """x * sigmoid(x) (SiLU, also called swish), with the split-form sigmoid."""
    return x * sigmoid(x, xp)


def silu_backward(x: Array, grad: Array, xp: ModuleType) -> Array:
    """dL/dx from the cached input x: grad * s * (1 + x * (1 - s)), s = sigmoid(x)."""
    s = sigmoid(x, xp)
    return grad * s * (1.0 + x * (1.0 - s))


def leaky_relu(x: Array, xp: ModuleType, *, slope: float) -> Array:
    """x where x > 0, else slope * x."""
    return xp.where(x > 0, x, slope * x)


def leaky_relu_inplace(x: Array, xp: ModuleType, *, slope: float) -> Array:
    return leaky_relu(x, xp, slope=slope)


def leaky_relu_backward(t: Array, grad: Array, xp: ModuleType, *, slope: float) -> Array:
    """dL/dx: grad where t > 0, else slope * grad; t is the input x, or the output y where
    slope >= 0 (then y > 0 exactly where x > 0). At 0 the slope side, as in PyTorch."""
    return xp.where(t > 0, grad, slope * grad)


def softplus(x: Array, xp: ModuleType) -> Array:
    """log(1 + exp(x)), and x itself above 20 (torch.nn.Softplus()'s threshold); exp is taken
    of min(x, 20), so no value overflows."""
    limited = xp.minimum(x, _SOFTPLUS_THRESHOLD)
    return xp.where(x > _SOFTPLUS_THRESHOLD, x, xp.log1p(xp.exp(limited)))


def softplus_backward(x: Array, grad: Array, xp: ModuleType) -> Array:
    """dL/dx from the cached input x: grad * sigmoid(x), and grad above the threshold."""
    return xp.where(x > _SOFTPLUS_THRESHOLD, grad, grad * sigmoid(x, xp))


# -- erf and erfc: the array API has neither ------------------------------------------------
# The piecewise rational approximations of FDLIBM's s_erf.c (Sun Microsystems, 1993: "Developed
# at SunPro, a Sun Microsystems, Inc. business. Permission to use, copy, modify, and distribute
# this software is freely granted, provided that this notice is preserved."), accurate to about
# one ulp in float64, evaluated for every element with each piece's input clamped into its
# interval and the piece chosen by `where` (no branch per element, no overflow in an unused
# piece). Coefficients as in s_erf.c; erx is erf(1) cut to 24 bits, so 1 - erx is exact.

_ERX = 8.45062911510467529297e-01
# erf(x) = x + x * PP(x^2) / QQ(x^2) for |x| < 0.84375
_PP = (
    1.28379167095512558561e-01,
    -3.25042107247001499370e-01,
    -2.84817495755985104766e-02,
    -5.77027029648944159157e-03,
    -2.37630166566501626084e-05,
)
_QQ = (
    1.0,
    3.97917223959155352819e-01,
    6.50222499887672944485e-02,
    5.08130628187576562776e-03,
    1.32494738004321644526e-04,
    -3.96022827877536812320e-06,
)
# erf(a) = erx + PA(a - 1) / QA(a - 1) for 0.84375 <= a < 1.25
_PA = (
    -2.36211856075265944077e-03,
    4.14856118683748331666e-01,
    -3.72207876035701323847e-01,
    3.18346619901161753674e-01,
    -1.10894694282396677476e-01,
    3.54783043256182359371e-02,
    -2.16637559486879084300e-03,
)
_QA = (
    1.0,
    1.06420880400844228286e-01,
    5.40397917702171048937e-01,
    7.18286544141962662868e-02,
    1.26171219808761642112e-01,
    1.36370839120290507362e-02,
    1.19844998467991074170e-02,
)
# erfc(a) = exp(-a^2 - 0.5625 + R(1/a^2) / S(1/a^2)) / a for 1.25 <= a < 1/0.35 ...
_RA = (
    -9.86494403484714822705e-03,
    -6.93858572707181764372e-01,
    -1.05586262253232909814e01,
    -6.23753324503260060396e01,
    -1.62396669462573470355e02,
    -1.84605092906711035994e02,
    -8.12874355063065934246e01,
    -9.81432934416914548592e00,
)
_SA = (
    1.0,
    1.96512716674392571292e01,
    1.37657754143519042600e02,
    4.34565877475229228821e02,
    6.45387271733267880336e02,
    4.29008140027567833386e02,
    1.08635005541779435134e02,
    6.57024977031928170135e00,
    -6.04244152148580987438e-02,
)
# ... and for 1/0.35 <= a < 28 (erfc(28) is below the smallest float64)
_RB = (
    -9.86494292470009928597e-03,
    -7.99283237680523006574e-01,
    -1.77579549177547519889e01,
    -1.60636384855821916062e02,
    -6.37566443368389627722e02,
    -1.02509513161107724954e03,
    -4.83519191608651397019e02,
)
_SB = (
    1.0,
    3.03380607434824582924e01,
    3.25792512996573918826e02,
    1.53672958608443695994e03,
    3.19985821950859553908e03,
    2.55305040643316442583e03,
    4.74528541206955367215e02,
    -2.24409524465858183362e01,
)
_SMALL, _NEAR_ONE, _TAIL_SPLIT, _TAIL_END = 0.84375, 1.25, 1 / 0.35, 28.0


def _polynomial(z: Array, coefficients: tuple[float, ...]) -> Array:
    """c0 + c1 z + c2 z^2 + ... by Horner's rule."""
    acc = coefficients[-1]
    for c in reversed(coefficients[:-1]):
        acc = acc * z + c
    return acc


def _erf_small_ratio(x: Array) -> Array:
    """erf(x) / x - 1 for |x| < 0.84375."""
    z = x * x
    return _polynomial(z, _PP) / _polynomial(z, _QQ)


def _erf_near_one(a: Array) -> Array:
    """erf(a) - erx for 0.84375 <= a < 1.25."""
    s = a - 1.0
    return _polynomial(s, _PA) / _polynomial(s, _QA)


def _high_part(a: Array, xp: ModuleType) -> Array:
    """a rounded to (p - 1) // 2 significand bits, p its dtype's (Veltkamp's split, the
    array-API stand-in for s_erf.c's zeroed low word): for a <= 28, z * z + 0.5625 is exact."""
    p = round(-math.log2(float(xp.finfo(a.dtype).eps))) + 1  # 53 for float64, 24 for float32
    c = a * (2.0 ** (p - (p - 1) // 2) + 1.0)
    return c - (c - a)


def _erfc_tail(a: Array, xp: ModuleType) -> Array:
    """erfc(a) for 1.25 <= a <= 28, with exp(-a^2) as exp(-z^2) * exp((z - a)(z + a)) for z the
    high part of a, so the rounding of a^2 does not grow with a^2."""
    s = 1.0 / (a * a)
    ratio = xp.where(
        a < _TAIL_SPLIT,
        _polynomial(s, _RA) / _polynomial(s, _SA),
        _polynomial(s, _RB) / _polynomial(s, _SB),
    )
    z = _high_part(a, xp)
    return xp.exp(-z * z - 0.5625) * xp.exp((z - a) * (z + a) + ratio) / a


def erf(x: Array, xp: ModuleType) -> Array:
    """The error function, to about one ulp (FDLIBM's approximations, above); NaN stays NaN."""
    a = xp.abs(x)
    small = xp.clip(x, -_SMALL, _SMALL)
    near = _ERX + _erf_near_one(xp.clip(a, _SMALL, _NEAR_ONE))
    far = 1.0 - _erfc_tail(xp.clip(a, _NEAR_ONE, 6.0), xp)  # 1 - erfc(6) rounds to 1
    large = xp.copysign(xp.where(a < _NEAR_ONE, near, far), x)
    return xp.where(a < _SMALL, small + small * _erf_small_ratio(small), large)


def erfc(x: Array, xp: ModuleType) -> Array:
    """1 - erf(x) without the cancellation: to about one ulp relative, the upper tail down to
    the smallest float (FDLIBM's approximations, above); NaN stays NaN."""
    a = xp.abs(x)
    s = xp.clip(x, -_SMALL, _SMALL)
    sy = s * _erf_small_ratio(s)
    small = xp.where(x < 0.25, 1.0 - (s + sy), 0.5 - (s - 0.5 + sy))
    d = _erf_near_one(xp.clip(a, _SMALL, _NEAR_ONE))
    near = xp.where(x > 0, (1.0 - _ERX) - d, (1.0 + _ERX) + d)
    tail = _erfc_tail(xp.clip(a, _NEAR_ONE, _TAIL_END), xp)
    far = xp.where(x > 0, tail, 2.0 - tail)
    return xp.where(a < _SMALL, small, xp.where(a < _NEAR_ONE, near, far))


def log_softmax(z: Array, xp: ModuleType) -> Array:
    """log(softmax(z)) along the last axis via logsumexp: finite for any finite logits."""
    shifted = z - xp.max(z, axis=-1, keepdims=True)
    return shifted - xp.log(xp.sum(xp.exp(shifted), axis=-1, keepdims=True))


def softmax(z: Array, xp: ModuleType) -> Array:
    """exp(z) / sum(exp(z)) along the last axis, with the row max subtracted first."""
    e = xp.exp(z - xp.max(z, axis=-1, keepdims=True))
    return e / xp.sum(e, axis=-1, keepdims=True)


def softmax_cross_entropy(Z: Array, T: Array, xp: ModuleType) -> tuple[Array, Array]:
    """(mean over the rows of -sum(T * log_softmax(Z)), (softmax(Z) - T) / rows): the loss of
    logits Z against targets T and its gradient, computed together (CuPy: one row kernel)."""
    scale = 1.0 / Z.shape[0]
    return xp.sum(-(T * log_softmax(Z, xp))) * scale, (softmax(Z, xp) - T) * scale


# -- fused steps: the fast paths do these in place; here, the reference in plain array API ----


def linear(x: Array, W: Array, b: Array | None, xp: ModuleType) -> Array:
    """x @ W + b (x @ W when b is None), the bias added into the fresh product (`+=` rebinds
    where a library's arrays are immutable)."""
    y = x @ W
    if b is not None:
        y += b
    return y


def linear_backward(
    x: Array, grad: Array, W: Array, bias: bool, input_grad: bool, xp: ModuleType
) -> tuple[Array, Array | None, Array | None]:
    """(dL/dW, dL/db, dL/dx) of y = x @ W + b: x.T @ grad, the column sums of grad (None
    without a bias) and grad @ W.T (None unless `input_grad`)."""
    db = xp.sum(grad, axis=0) if bias else None
    return x.T @ grad, db, grad @ W.T if input_grad else None


def linear_backward_into(
    x: Array,
    grad: Array,
    W: Array,
    dW: Array,
    db: Array | None,
    input_grad: bool,
    xp: ModuleType,
) -> Array | None:
    """linear_backward writing dL/dW into dW and dL/db into db (views of a model's flat
    gradient array); returns dL/dx, or None unless `input_grad`."""
    new_dW, new_db, dx = linear_backward(x, grad, W, db is not None, input_grad, xp)
    dW[...] = new_dW
    if db is not None:
        db[...] = new_db
    return dx


def sse(Y: Array, T: Array, xp: ModuleType) -> tuple[Array, Array]:
    """(0.5 * sum((Y - T)**2), Y - T): the SSE loss and its gradient from one difference."""
    D = Y - T
    return 0.5 * xp.sum(D * D), D


def sgd_update(p: Array, g: Array, *, lr: Any, xp: ModuleType) -> Array:
    """p - lr * g. (Fast paths update p in place and return it.)"""
    return p - lr * g


def momentum_update(
    p: Array, g: Array, v: Array, *, lr: Any, momentum: float, xp: ModuleType
) -> tuple[Array, Array]:
    """(p - lr * v', v') with v' = momentum * v + g: PyTorch's heavy-ball form."""
    v = momentum * v + g
    return p - lr * v, v


class AdamScalars(NamedTuple):
    """The numbers of one Adam step, as Python floats worked out on the host (no device work,
    so a changing step count costs no synchronisation): what every `adam_update` takes, in
    this order (ops/cupy.py's kernel takes them as its scalar arguments in this order too)."""

    step: float  # lr / (1 - beta1^t): the learning rate with the first bias correction
    beta1: float
    one_minus_beta1: float  # 1 - beta1 in Python's float64, before any cast to p's dtype
    beta2: float
    one_minus_beta2: float
    eps: float
    inv_correction2: float  # 1 / sqrt(1 - beta2^t): the second bias correction, on sqrt(v)

    @classmethod
    def at_step(cls, t: int, *, lr: float, beta1: float, beta2: float, eps: float) -> AdamScalars:
        """The scalars of step t (1, 2, ...) with these hyperparameters."""
        return cls(
            step=lr / (1.0 - beta1**t),
            beta1=beta1,
            one_minus_beta1=1.0 - beta1,
            beta2=beta2,
            one_minus_beta2=1.0 - beta2,
            eps=eps,
            inv_correction2=1.0 / math.sqrt(1.0 - beta2**t),
        )


def adam_update(
    p: Array, g: Array, m: Array, v: Array, scalars: AdamScalars, *, xp: ModuleType
) -> tuple[Array, Array, Array]:
    """Adam's step in PyTorch's form: m' = b1 m + (1 - b1) g, v' = b2 v + (1 - b2) g^2,
    p' = p - lr / (1 - b1^t) * m' / (sqrt(v') / sqrt(1 - b2^t) + eps)."""
    s = scalars
    m = s.beta1 * m + s.one_minus_beta1 * g
    v = s.beta2 * v + s.one_minus_beta2 * (g * g)
    return p - s.step * m / (xp.sqrt(v) * s.inv_correction2 + s.eps), m, v


def tree_map(fn: Callable[..., Any], tree: Any, *others: Any) -> Any:
    """`tree` (a leaf, or tuples and NamedTuples of trees: an optimizer's per-step numbers,
    such as AdamScalars) with each leaf replaced by fn(leaf, the leaves in its place in
    `others`, trees of the same shape): the one walk of those numbers, to stack them for an
    epoch, pick one step's and give them fixed tensors for a CUDA graph."""
    if isinstance(tree, tuple):
        items = [tree_map(fn, *parts) for parts in zip(tree, *others, strict=True)]
        return type(tree)._make(items) if hasattr(tree, "_make") else tuple(items)
    return fn(tree, *others)


# -- normalization --------------------------------------------------------------------------
def moments(x: Array, axis: int, xp: ModuleType) -> tuple[Array, Array]:
    """The mean and the biased variance of x along `axis`, kept as a length-1 axis."""
    mean = xp.mean(x, axis=axis, keepdims=True)
    centred = x - mean
    return mean, xp.mean(centred * centred, axis=axis, keepdims=True)


def normalize(x: Array, mean: Array, var: Array, eps: float, xp: ModuleType) -> tuple[Array, Array]:
    """(x_hat, 1 / sqrt(var + eps)) with x_hat = (x - mean) / sqrt(var + eps)."""
    inv_std = 1.0 / xp.sqrt(var + eps)
    return (x - mean) * inv_std, inv_std


def normalize_backward(
    grad: Array, x_hat: Array, inv_std: Array, axis: int, xp: ModuleType
) -> Array:
    """dL/dx from dL/dx_hat when x_hat was normalized by the mean and variance of x along
    `axis` (they depend on x too): inv_std * (g - mean(g) - x_hat * mean(g * x_hat))."""
    mean_g = xp.mean(grad, axis=axis, keepdims=True)
    mean_gx = xp.mean(grad * x_hat, axis=axis, keepdims=True)
    return inv_std * (grad - mean_g - x_hat * mean_gx)


def layer_norm(
    x: Array, gamma: Array, beta: Array, eps: float, xp: ModuleType
) -> tuple[Array, Array, Array]:
    """(gamma * x_hat + beta, x_hat, inv_std), x normalized over each row (its last axis) by
    the row's mean and biased variance: LayerNorm's forward and what its backward keeps."""
    mean, var = moments(x, 1, xp)
    x_hat, inv_std = normalize(x, mean, var, eps, xp)
    return x_hat * gamma + beta, x_hat, inv_std


def layer_norm_backward(
    grad: Array, x_hat: Array, inv_std: Array, gamma: Array, xp: ModuleType
) -> Array:
    """LayerNorm's dL/dx from dL/dy: normalize_backward of dL/dx_hat = grad * gamma."""
    return normalize_backward(grad * gamma, x_hat, inv_std, 1, xp)


# -- random draws -----------------------------------------------------------------------------
def seed_of(entropy: Sequence[int]) -> int:
    """One 32-bit seed from a tuple of ints (a run's seed, an epoch, a layer's place), for
    libraries whose generators take a single number."""
    return int(np.random.SeedSequence(list(entropy)).generate_state(1)[0])


def dropout(x: Array, u: Array, p: float, xp: ModuleType) -> tuple[Array, Array]:
    """(x * mask, mask), mask = (u >= p) / (1 - p) from uniform draws u shaped like x:
    inverted dropout, keeping each element with probability 1 - p."""
    mask = xp.astype(u >= p, x.dtype) * (1.0 / (1.0 - p))
    return x * mask, mask


def uniform_source(
    entropy: Sequence[int], like: Array, xp: ModuleType
) -> Callable[[tuple[int, ...]], Array]:
    """draw(shape): uniform numbers in [0, 1) of `like`'s dtype on its device, a stream that is
    a function of `entropy` alone. The array API has no random numbers, so here NumPy draws on
    the host and the numbers are moved (no copy for NumPy); fast paths draw on the device."""
    rng = np.random.default_rng(list(entropy))
    host = np.float32 if like.dtype == xp.float32 else np.float64
    where = device(like)

    def draw(shape: tuple[int, ...]) -> Array:
        return xp.asarray(rng.random(shape, dtype=host), device=where)

    return draw
