"""scikit-learn's "lbfgs" solver: scipy.optimize.minimize(method="L-BFGS-B") on the flat
parameter vector, with the objective and gradient of xpnet's backprop. scipy works on the host
in float64, so each evaluation copies the parameters to the net's device and the loss and
gradient back (as scikit-learn does on other libraries); the vector is in scikit-learn's order
(every weight matrix, then every bias), so the optimizer sees the numbers it sees there."""

from __future__ import annotations

import dataclasses

import numpy as np
import scipy.optimize
from sklearn.utils.fixes import _get_additional_lbfgs_options_dict
from sklearn.utils.optimize import _check_optimize_result

from ..backend import asarray, to_numpy
from ..model import MLP
from ..optim.hooks import weight_mask
from ._data import Data
from .losses import SklearnLoss, objective

__all__ = ["LbfgsResult", "LbfgsSettings", "fit_lbfgs"]


@dataclasses.dataclass(frozen=True)
class LbfgsSettings:
    """The estimator's parameters that the "lbfgs" solver reads."""

    max_iter: int
    max_fun: int
    tol: float
    alpha: float
    verbose: bool


@dataclasses.dataclass(frozen=True)
class LbfgsResult:
    """What the estimator keeps of an L-BFGS run: its iterations (n_iter_) and final loss
    (loss_)."""

    n_iter: int
    loss: float


def _sklearn_order(net: MLP) -> np.ndarray:
    """Indices into the net's flat parameters that list them in scikit-learn's order."""
    layout = net.parameter_buffer.layout
    weights = [np.arange(s.start, s.stop) for s in layout if len(s.shape) >= 2]
    biases = [np.arange(s.start, s.stop) for s in layout if len(s.shape) < 2]
    return np.concatenate(weights + biases)


def fit_lbfgs(net: MLP, loss: SklearnLoss, data: Data, settings: LbfgsSettings) -> LbfgsResult:
    """Minimise the full-batch objective with at most max_iter iterations and max_fun
    evaluations, stopping when the projected gradient is below tol (scipy's gtol); the net
    ends with the parameters found."""
    buffer = net.parameter_buffer
    order = _sklearn_order(net)
    inverse = np.argsort(order)
    X, T, w = data.batch(0, data.n)
    mask = weight_mask(buffer.flat_parameters(), buffer.layout)

    def value_and_gradient(x: np.ndarray) -> tuple[float, np.ndarray]:
        buffer.store_flat_parameters(asarray(x[inverse], like=net))
        value, G = objective(net, loss, X, T, w, settings.alpha, mask)
        return float(to_numpy(value)), to_numpy(G)[order].astype(np.float64)

    with loss.checked_targets(T):
        result = scipy.optimize.minimize(
            value_and_gradient,
            to_numpy(buffer.flat_parameters())[order].astype(np.float64),
            method="L-BFGS-B",
            jac=True,
            options={
                "maxfun": settings.max_fun,
                "maxiter": settings.max_iter,
                "gtol": settings.tol,
                **_get_additional_lbfgs_options_dict("iprint", 1 if settings.verbose else -1),
            },
        )
    n_iter = _check_optimize_result("lbfgs", result, settings.max_iter)
    buffer.store_flat_parameters(asarray(result.x[inverse], like=net))
    return LbfgsResult(n_iter, float(result.fun))
