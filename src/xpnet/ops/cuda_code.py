"""The CUDA source of ops/cupy.py's kernels, as plain text: nothing here imports CuPy, so the
kernels can be compiled and checked without a GPU (tests/cuda_harness.py runs each under gcc
against `generic` and compiles it with nvcc).

Elementwise kernels are `Elementwise` records (cupy.ElementwiseKernel's arguments), the SSE
reduction a `Reduction` (cupy.ReductionKernel's); the row kernels (LayerNorm, softmax with
cross-entropy, an activation's backward with its bias gradient) are one source for
cupy.RawModule, `row_source(ctype)`, written for a warp of `WARP` lanes per row: the lanes
stride over a row's columns and their partial sums meet by `__shfl_xor_sync`. With WARP 1 (the
harness's) the same code runs serially and is the plain loop it stands for.
"""

from __future__ import annotations

from typing import NamedTuple

__all__ = [
    "ACTIVATION_BACKWARD_CODE",
    "ACTIVATION_CODE",
    "ADAM",
    "FUSED_ACTIVATIONS",
    "HALF_SUM_OF_SQUARES",
    "MOMENTUM",
    "ROW_KERNELS",
    "SGD",
    "SIGMOID",
    "WARP",
    "Elementwise",
    "Reduction",
    "activation_backward",
    "backward_bias_kernel_name",
    "bias_activation",
    "bias_activation_dropout",
    "dropout",
    "dropout_backward",
    "elementwise_kernels",
    "row_source",
]

WARP = 32  # lanes per row on the GPU: one warp, so a row's sums need no shared memory


class Elementwise(NamedTuple):
    """cupy.ElementwiseKernel(inputs, outputs, body, name); T is the arrays' dtype."""

    inputs: str
    outputs: str
    body: str
    name: str


class Reduction(NamedTuple):
    """cupy.ReductionKernel(inputs, outputs, map, reduce, post, identity, name): `reduce`
    combines partial values a and b; `post` writes the output from the total a."""

    inputs: str
    outputs: str
    map: str
    reduce: str
    post: str
    identity: str
    name: str


# each activation as CUDA code from x to y; the sigmoid in generic.sigmoid's split form, the
# relu as generic.relu's `where(x > 0, x, 0)` (NaN to 0 alike)
ACTIVATION_CODE = {
    "identity": "y = x;",
    "relu": "y = x > T(0) ? x : T(0);",
    "sigmoid": "T e = exp(-fabs(x)); T r = T(1) / (T(1) + e); y = x >= T(0) ? r : e * r;",
    "tanh": "y = tanh(x);",
}
# each one's backward as CUDA code from the cached output y and dL/dy g to out = dL/dx, in
# generic's order of operations (grad * y * (1 - y), where(y > 0, grad, 0), ...)
ACTIVATION_BACKWARD_CODE = {
    "identity": "out = g;",
    "relu": "out = y > T(0) ? g : T(0);",
    "sigmoid": "out = g * y * (T(1) - y);",
    "tanh": "out = g * (T(1) - y * y);",
}
FUSED_ACTIVATIONS = tuple(ACTIVATION_CODE)
"""The activations (those whose backward reads y) that have fused kernels."""

SIGMOID = Elementwise("T x", "T y", ACTIVATION_CODE["sigmoid"], "xpnet_sigmoid")
HALF_SUM_OF_SQUARES = Reduction(
    "T d", "T s", "d * d", "a + b", "s = T(0.5) * a", "0", "xpnet_half_sum_of_squares"
)
SGD = Elementwise("T g, T lr", "T p", "p = p - lr * g;", "xpnet_sgd")
MOMENTUM = Elementwise(
    "T g, T lr, T mu", "T p, T v", "v = mu * v + g; p = p - lr * v;", "xpnet_momentum"
)
# after g, the scalars in generic.AdamScalars' order
ADAM = Elementwise(
    "T g, T step, T b1, T c1, T b2, T c2, T eps, T inv_corr2",
    "T p, T m, T v",
    "m = b1 * m + c1 * g; v = b2 * v + c2 * (g * g);"
    " p = p - step * m / (sqrt(v) * inv_corr2 + eps);",
    "xpnet_adam",
)
# inverted dropout as Dropout computes it: mask = (u >= p) * scale, scale = 1 / (1 - p)
_MASK = "mask = u >= p ? scale : T(0);"


def bias_activation(name: str) -> Elementwise:
    """y <- activation(y + b), b broadcast along the rows: a layer's product finished in one
    pass."""
    return Elementwise("T b", "T y", "T x = y + b; " + ACTIVATION_CODE[name], f"xpnet_bias_{name}")


def activation_backward(name: str) -> Elementwise:
    """out = dL/dx from the cached output y and dL/dy g."""
    return Elementwise("T y, T g", "T out", ACTIVATION_BACKWARD_CODE[name], f"xpnet_{name}_bw")


def dropout() -> Elementwise:
    """out = x * mask with the mask drawn from uniform numbers u, both written."""
    return Elementwise(
        "T u, T x, T p, T scale", "T out, T mask", _MASK + " out = x * mask;", "xpnet_dropout"
    )


def bias_activation_dropout(name: str) -> Elementwise:
    """The block Linear -> activation -> Dropout after its product: y <- activation(y + b)
    (the activation's cache), then out = y * mask, mask from u (Dropout's cache)."""
    body = f"T x = y + b; {ACTIVATION_CODE[name]} {_MASK} out = y * mask;"
    return Elementwise(
        "T b, T u, T p, T scale", "T y, T out, T mask", body, f"xpnet_bias_{name}_dropout"
    )


def dropout_backward(name: str) -> Elementwise:
    """The activation's backward of Dropout's backward in one pass: generic's grad * mask,
    then the activation's backward from y."""
    body = "T g = grad * mask; " + ACTIVATION_BACKWARD_CODE[name]
    return Elementwise("T y, T mask, T grad", "T out", body, f"xpnet_{name}_dropout_bw")


def elementwise_kernels() -> list[Elementwise]:
    """Every elementwise kernel ops/cupy.py builds (what the tests compile with nvcc)."""
    per_activation = [
        make(name)
        for name in FUSED_ACTIVATIONS
        for make in (
            bias_activation,
            activation_backward,
            bias_activation_dropout,
            dropout_backward,
        )
    ]
    return [SIGMOID, SGD, MOMENTUM, ADAM, dropout(), *per_activation]


def backward_bias_kernel_name(name: str) -> str:
    """The row-source kernel that is `name`'s backward fused with its bias gradient."""
    return f"xpnet_{name}_backward_bias"


_WARP_SUMS = """
#ifndef WARP
#define WARP 32
#endif
/* the sum and the max of v over the lanes of a warp (every lane gets the result) */
__device__ T xpnet_warp_sum(T v) {
    for (int offset = WARP / 2; offset > 0; offset /= 2)
        v += __shfl_xor_sync(0xffffffffu, v, offset);
    return v;
}
__device__ T xpnet_warp_max(T v) {
    for (int offset = WARP / 2; offset > 0; offset /= 2) {
        T other = __shfl_xor_sync(0xffffffffu, v, offset);
        v = other > v ? other : v;
    }
    return v;
}
"""

# one warp per row (blockIdx.x), its lanes (threadIdx.x) striding over the row's columns
_ROWS = """
/* LayerNorm forward of one row: the mean and biased variance, x_hat = (x - mean) * inv_std,
   y = x_hat * gamma + beta, as generic.moments, generic.normalize and the affine step */
extern "C" __global__ void xpnet_layer_norm(const T* x, const T* gamma, const T* beta, T eps,
                                            int cols, T* y, T* x_hat, T* inv_std) {
    const long base = (long)blockIdx.x * cols;
    const int lane = threadIdx.x;
    T s = T(0);
    for (int j = lane; j < cols; j += WARP) s += x[base + j];
    const T mean = xpnet_warp_sum(s) / T(cols);
    T q = T(0);
    for (int j = lane; j < cols; j += WARP) {
        T d = x[base + j] - mean;
        q += d * d;
    }
    const T r = T(1) / sqrt(xpnet_warp_sum(q) / T(cols) + eps);
    for (int j = lane; j < cols; j += WARP) {
        T h = (x[base + j] - mean) * r;
        x_hat[base + j] = h;
        y[base + j] = h * gamma[j] + beta[j];
    }
    if (lane == 0) inv_std[blockIdx.x] = r;
}

/* LayerNorm's dL/dx of one row, as generic.normalize_backward of dxh = grad * gamma:
   inv_std * (dxh - mean(dxh) - x_hat * mean(dxh * x_hat)) */
extern "C" __global__ void xpnet_layer_norm_backward(const T* grad, const T* x_hat,
                                                     const T* inv_std, const T* gamma,
                                                     int cols, T* dx) {
    const long base = (long)blockIdx.x * cols;
    const int lane = threadIdx.x;
    T s = T(0), sx = T(0);
    for (int j = lane; j < cols; j += WARP) {
        T g = grad[base + j] * gamma[j];
        s += g;
        sx += g * x_hat[base + j];
    }
    const T mean_g = xpnet_warp_sum(s) / T(cols);
    const T mean_gx = xpnet_warp_sum(sx) / T(cols);
    const T r = inv_std[blockIdx.x];
    for (int j = lane; j < cols; j += WARP) {
        T g = grad[base + j] * gamma[j];
        dx[base + j] = r * (g - mean_g - x_hat[base + j] * mean_gx);
    }
}

/* softmax cross-entropy of one row of logits z against targets t, as the loss computes it:
   row_loss = -sum(t * log_softmax(z)) * inv_n and grad = (softmax(z) - t) * inv_n */
extern "C" __global__ void xpnet_softmax_cross_entropy(const T* z, const T* t, T inv_n,
                                                       int cols, T* grad, T* row_loss) {
    const long base = (long)blockIdx.x * cols;
    const int lane = threadIdx.x;
    T m = z[base];
    for (int j = lane; j < cols; j += WARP) m = z[base + j] > m ? z[base + j] : m;
    m = xpnet_warp_max(m);
    T s = T(0);
    for (int j = lane; j < cols; j += WARP) s += exp(z[base + j] - m);
    s = xpnet_warp_sum(s);
    const T log_s = log(s);
    T loss = T(0);
    for (int j = lane; j < cols; j += WARP) {
        T shifted = z[base + j] - m;
        loss += t[base + j] * (shifted - log_s);
        grad[base + j] = (exp(shifted) / s - t[base + j]) * inv_n;
    }
    loss = xpnet_warp_sum(loss);
    if (lane == 0) row_loss[blockIdx.x] = -loss * inv_n;
}
"""

# an activation's backward (times a dropout mask where has_mask; mask_ is read only then) and
# its column sums, the bias gradient of the Linear before it: a warp per column (blockIdx.x),
# its lanes striding down the rows, their partial sums meeting by shuffles (a thread per
# column alone would leave all but a few hundred of the GPU's threads idle, each walking every
# row in turn)
_BACKWARD_BIAS = """
extern "C" __global__ void NAME(const T* y_, const T* grad_, const T* mask_, int has_mask,
                                int rows, int cols, T* out_, T* db) {
    const int col = blockIdx.x;
    T sum = T(0);
    for (long r = threadIdx.x; r < rows; r += WARP) {
        const long k = r * cols + col;
        const T y = y_[k];
        const T g = has_mask ? grad_[k] * mask_[k] : grad_[k];
        T out;
        BODY
        out_[k] = out;
        sum += out;
    }
    sum = xpnet_warp_sum(sum);
    if (threadIdx.x == 0) db[col] = sum;
}
"""

ROW_KERNELS = (
    "xpnet_layer_norm",
    "xpnet_layer_norm_backward",
    "xpnet_softmax_cross_entropy",
    *(backward_bias_kernel_name(name) for name in FUSED_ACTIVATIONS),
)
"""The kernels of `row_source`, by name."""


def row_source(ctype: str) -> str:
    """The row kernels for arrays of C type `ctype` ("float" or "double")."""
    backward_bias = "".join(
        _BACKWARD_BIAS.replace("NAME", backward_bias_kernel_name(name)).replace(
            "BODY", ACTIVATION_BACKWARD_CODE[name]
        )
        for name in FUSED_ACTIVATIONS
    )
    return f"typedef {ctype} T;\n{_WARP_SUMS}{_ROWS}{backward_bias}"
