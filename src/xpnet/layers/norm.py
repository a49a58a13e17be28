"""Normalization layers: each feature vector (LayerNorm) or each feature over the batch
(BatchNorm) brought to zero mean and unit variance, then scaled by `gamma` and shifted by
`beta` (learned); their backward includes the statistics' own dependence on x."""

from __future__ import annotations

import numbers
from typing import Any

import numpy as np
from array_api_compat import array_namespace

from .. import ops
from .base import Layer

__all__ = ["BatchNorm", "LayerNorm"]

Array = Any


def _checked(n: Any, eps: Any) -> tuple[int, float]:
    if isinstance(n, bool) or not isinstance(n, numbers.Integral) or n < 1:
        raise ValueError(f"the number of features must be a whole number >= 1, got {n!r}")
    if isinstance(eps, bool) or not isinstance(eps, numbers.Real) or not float(eps) > 0:
        raise ValueError(f"eps must be a positive number, got {eps!r}")
    return int(n), float(eps)


class _Normalization(Layer):
    """What both share: n features, gamma (ones) and beta (zeros), the affine step and its
    gradients."""

    def __init__(self, n: int, eps: float = 1e-5) -> None:
        self.n, self.eps = _checked(n, eps)
        self.input_width = self.n
        self._x_hat: Array = None
        self._inv_std: Array = None

    def parameter_shapes(self) -> dict[str, tuple[int, ...]]:
        return {"gamma": (self.n,), "beta": (self.n,)}

    def initial_parameters(self, rng: np.random.Generator) -> dict[str, np.ndarray]:
        return {"gamma": np.ones(self.n), "beta": np.zeros(self.n)}

    def _input(self, x: Array) -> tuple[Any, Array]:
        """x's namespace and x in the parameters' dtype: under mixed precision the statistics
        are taken in float32 from low-precision inputs (as torch.autocast runs its norms)."""
        xp = array_namespace(x)
        return xp, xp.astype(x, self.params["gamma"].dtype, copy=False)

    def _affine(self, x_hat: Array, inv_std: Array) -> Array:
        """gamma * x_hat + beta, keeping x_hat and inv_std for backward."""
        self._x_hat, self._inv_std = x_hat, inv_std
        params = self.params
        return x_hat * params["gamma"] + params["beta"]

    def _parameter_grads(self, grad: Array) -> Any:
        """Set dL/dgamma and dL/dbeta (column sums); return grad's namespace."""
        if self._x_hat is None:
            raise RuntimeError(f"{type(self).__name__}.backward called before forward")
        xp = array_namespace(grad)
        self.set_grad("gamma", xp.sum(grad * self._x_hat, axis=0))
        self.set_grad("beta", xp.sum(grad, axis=0))
        return xp


class LayerNorm(_Normalization, name="layer_norm"):
    """y = gamma * (x - mean) / sqrt(var + eps) + beta, the mean and (biased) variance taken
    over each sample's n features, as torch.nn.LayerNorm(n, eps)."""

    traceable = True

    def config(self) -> dict[str, Any]:
        return {"n": self.n, "eps": self.eps}

    def forward(self, x: Array) -> Array:
        """ops.layer_norm (CuPy: one row kernel), keeping x_hat and inv_std for backward."""
        xp, x = self._input(x)
        params = self.params
        y, self._x_hat, self._inv_std = ops.ops_for(xp).layer_norm(
            x, params["gamma"], params["beta"], self.eps, xp
        )
        return y

    def backward(self, grad: Array) -> Array:
        """The parameters' gradients as column sums, dL/dx by ops.layer_norm_backward."""
        xp = self._parameter_grads(grad)
        gamma = self.params["gamma"]
        return ops.ops_for(xp).layer_norm_backward(grad, self._x_hat, self._inv_std, gamma, xp)


class BatchNorm(_Normalization, name="batch_norm"):
    """In training, y = gamma * (x - mean) / sqrt(var + eps) + beta with each feature's mean
    and biased variance over the batch, and the running statistics move towards them by
    `momentum` (the variance unbiased, as torch.nn.BatchNorm1d(n, eps, momentum)); in
    evaluation the running statistics normalize. They are statistics of the net: saved in
    checkpoints, never trained."""

    def __init__(self, n: int, momentum: float = 0.1, eps: float = 1e-5) -> None:
        super().__init__(n, eps)
        real = not isinstance(momentum, bool) and isinstance(momentum, numbers.Real)
        if not real or not 0.0 < float(momentum) <= 1.0:
            raise ValueError(f"momentum must be a number in (0, 1], got {momentum!r}")
        self.momentum: float = float(momentum)

    def config(self) -> dict[str, Any]:
        return {"n": self.n, "momentum": self.momentum, "eps": self.eps}

    def statistic_shapes(self) -> dict[str, tuple[int, ...]]:
        return {"running_mean": (self.n,), "running_var": (self.n,)}

    def initial_statistics(self) -> dict[str, np.ndarray]:
        return {"running_mean": np.zeros(self.n), "running_var": np.ones(self.n)}

    def forward(self, x: Array) -> Array:
        xp, x = self._input(x)
        fns = ops.ops_for(xp)
        stats = self.statistics
        if not self.training:
            mean = xp.reshape(stats["running_mean"], (1, -1))
            var = xp.reshape(stats["running_var"], (1, -1))
            return self._affine(*fns.normalize(x, mean, var, self.eps, xp))
        n = x.shape[0]
        if n < 2:
            raise ValueError(
                "BatchNorm in training needs at least 2 samples per batch to estimate a "
                "variance; use a larger batch size"
            )
        mean, var = fns.moments(x, 0, xp)
        m = self.momentum
        self.statistics = {
            "running_mean": (1.0 - m) * stats["running_mean"] + m * xp.reshape(mean, (-1,)),
            "running_var": (1.0 - m) * stats["running_var"]
            + (m * n / (n - 1)) * xp.reshape(var, (-1,)),
        }
        return self._affine(*fns.normalize(x, mean, var, self.eps, xp))

    def backward(self, grad: Array) -> Array:
        xp = self._parameter_grads(grad)
        g = grad * self.params["gamma"]
        if not self.training:  # the running statistics do not depend on x
            return g * self._inv_std
        return ops.ops_for(xp).normalize_backward(g, self._x_hat, self._inv_std, 0, xp)
